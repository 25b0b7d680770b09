"""Our LoRA DPO trainer (``bpo.training.tuning.train_tuning``) against trl's ``DPOTrainer``, same
model, same pairs, same LoRA, same batches, in one run.

    python benchmarks/dpo_throughput.py [--preset smol] [--pairs 64] [--batch-size 8] [--warmup 2] [--steps 6]
    python benchmarks/dpo_throughput.py --random-tiny --pairs 16 --batch-size 4 --warmup 1 --steps 3 --threads 1

``pip install -e .[bench]`` brings trl (>= 1.16); only this script imports it.

What is shared: the model (``--preset``'s trained base from ``bpo.pipeline.load_base``: when it is not
cached yet, the first subprocess below trains it, which takes long; or with ``--random-tiny`` a randomly initialised tiny LLaVA with a 2-layer, 128-wide tower, for quick
checks); N pairs in trl's columns (the preset's saved pairs from ``03_preference_dataset`` when
they exist, else pairs made from rendered world scenes: a scene's description against another
scene's); LoRA r 32, alpha 256, dropout 0.05 on the LM's linear layers only (trl gets
``lm_linear_targets(model)`` as ``target_modules``); pairs per step; beta 0.1; the learning rate
and its schedule (trl's scheduler is replaced by ours, ``bpo.training.loop.lr_at``); AdamW (fused,
no weight decay), clipping at 1.0; bf16 autocast on the CPU (trl: ``bf16=True, use_cpu=True``).
Both see the same batches in the same order: trl reads the pairs in the order our
``length_grouped_batches`` draws them (``train_sampling_strategy="sequential"``), and both log
the same token count at every step, which the script checks.

trl sees exactly our text: the prompt is passed already rendered by our ChatML template (with the
``<image>`` placeholder, which trl's processor call expands to the image tokens) and each
completion as the template renders it after the prompt, end-of-turn token and newline included.
For vision data sets trl 1.16 appends nothing itself: the EOS-appending ``_prepare_dataset`` is
skipped for them (``skip_prepare_dataset = self._is_vision_dataset``), and its collator tokenises
prompt and completion separately, as ``encode_example`` does. The script compares the token ids
and the loss masks of the first batch, sequence by sequence.

Three runs, each in its own subprocess so each peak RSS (``ru_maxrss``) is its own:

1. ``loss``: both trainers for two steps with LoRA dropout 0 (a deterministic first step): the
   first step's loss (log 2 for both: the LoRA B matrices start at zero, so the policy is the
   reference; agreement within 1e-4 is required) and the first batch's mean summed log-probs of
   chosen and rejected; the second step's loss, after one identical AdamW update, is printed too.
   Per sequence, the first batch's summed log-probs are compared as well (each trainer's own
   reference path, which at step 0 is its policy): both make the image embeddings under bf16
   autocast (ours once, trl in every forward), so they agree to a few 1e-5;
2. ``ours`` and 3. ``trl``: ``--warmup`` untimed steps, then ``--steps`` timed ones, dropout 0.05.
   tokens/s = non-padding tokens of the policy forward (chosen + rejected rows) / seconds, the same
   count for both. Our seconds are the steps' own (``log["seconds"]``); trl's run from the end of
   one step to the end of the next, so they include its per-step collation.

Where trl 1.16 does more work per step (read in ``trl/trainer/dpo_trainer.py`` and
``trl/trainer/utils.py`` of trl 1.16.0):

- ``DataCollatorForVisionPreference`` repeats the images for chosen and rejected
  (``images = [...] * 2  # repeat for chosen and rejected``), so for B pairs the vision tower and
  projector run on 2B images in the policy forward and on the same 2B again in the reference
  forward, at every step. Ours runs them once per distinct image for the whole run (``encode_pairs``; the tower and
  projector are frozen).
- ``precompute_ref_log_probs=True`` is refused for vision data sets (``DPOTrainer.__init__`` raises
  "`precompute_ref_log_probs=True` is not supported for vision datasets"), so the reference forward
  (adapters disabled, no gradient) runs at every step. Ours computes the reference log-probs once
  before training (``compute_reference``).
- Also seen there: on a CPU its fused LM head scores every position, prompt and image tokens
  included (it keeps only labelled positions when Triton runs on cuda/xpu), in both forwards; ours
  evaluates the output layer on labelled positions only. And it tokenises and preprocesses images
  at every step (the collator), where ours does it once.
- Two trl defaults are overridden for a like-for-like run: ``gradient_checkpointing`` (True in trl,
  off here as in ours) and ``disable_dropout`` (True in trl, which sets every ``nn.Dropout`` to 0,
  peft's LoRA dropout included; off here, so dropout 0.05 applies in both).

The matmul peak is ``train_throughput.matmul_peak`` (2048x2048, best of 8) with the same thread
count as the runs. The share of it uses FLOPs = 6 x P x tokens (see ``path_params``).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bpo.models.chat import encode_example, to_messages
from bpo.training.data import length_grouped_batches
from bpo.training.loop import OptimConfig, lr_at
from bpo.training.pairs import compute_reference, encode_pairs
from bpo.training.tuning import lm_linear_targets, train_tuning
from bpo.training.tuning_config import TuningConfig

COLUMNS = ["prompt", "chosen", "rejected", "images", "pair_id"]
LOSS_TOLERANCE = 1e-4


# ---------------------------------------------------------------------------------------------
# model and pairs (the same in every subprocess: all of it is seeded)


def synthetic_pairs(n: int, image_size: int, seed: int = 0):
    """``n`` pairs from rendered world scenes: a detail prompt, the scene's description (chosen)
    and another scene's description (rejected), through ``build_pairs`` as the real ones go."""
    from bpo.preference.dataset import Candidate, Negative, build_pairs
    from bpo.world import language
    from bpo.world.render import render
    from bpo.world.scene import item_rng, sample_scenes

    scenes = sample_scenes(seed, "bench-dpo", n + 1)
    records = []
    for i, scene in enumerate(scenes[:n]):
        rng = item_rng(seed, "bench-dpo-text", i)
        chosen = language.describe(scene, rng)
        rejected = language.describe(scenes[i + 1], rng)
        records.append(Candidate(scene.scene_id, language.DETAIL_PROMPTS[i % len(language.DETAIL_PROMPTS)],
                                 render(scene, image_size), (chosen,), (Negative(rejected, "error_injection"),),
                                 "detail", scene.scene_id))
    ds, report = build_pairs(records)
    if len(ds) < n:
        raise RuntimeError(f"only {len(ds)} of {n} synthetic pairs survived validation: {report.counts_by_reason()}")
    return ds


def load_inputs(args):
    """(model, processor, N pairs in trl's columns, where the pairs came from)."""
    if args.random_tiny:
        from bpo.models.llava import build_model
        from bpo.presets import model_config
        from bpo.world.sources import build_corpus

        cfg = dataclasses.replace(model_config("tiny"), vision_hidden=128, vision_layers=2)
        model, processor = build_model(cfg, build_corpus(300, 0)["text"], progress=False)
        return model, processor, synthetic_pairs(args.pairs, cfg.image_size).select_columns(COLUMNS), \
            "synthetic (rendered scenes), random tiny model"
    from bpo.pipeline import load_base
    from bpo.preference.bootstrap import load_pairs, pairs_dir
    from bpo.presets import preference_config
    from bpo.training.pairs import select_pairs

    base = load_base(args.preset, progress=False)
    target = pairs_dir(args.preset, base.key, preference_config(args.preset))
    if (target / "report.json").exists():
        ds, report = load_pairs(target)
        ds = select_pairs(ds, tuple(report["training_types"]), max_pairs=args.pairs, seed=0)
        source = f"saved pairs ({', '.join(report['training_types'])}) of {args.preset}"
    else:
        ds = synthetic_pairs(args.pairs, base.model_cfg.image_size)
        source = f"synthetic (rendered scenes; no saved pairs at {target})"
    if len(ds) < args.pairs:
        raise SystemExit(f"only {len(ds)} pairs available, --pairs {args.pairs}")
    return base.model, base.processor, ds.select_columns(COLUMNS), source


def fingerprints(model, ds) -> dict:
    """Checksums that tell whether two subprocesses built the same model and the same pairs."""
    with torch.no_grad():
        weights = sum(float(p.double().sum()) for p in model.parameters())
    h = hashlib.sha1()
    for row in ds:
        h.update("\0".join(row[k] for k in ("pair_id", "prompt", "chosen", "rejected")).encode())
        h.update(row["images"][0].tobytes())
    return {"model": round(weights, 6), "pairs": h.hexdigest()}


def conversation(prompt: str, response: str) -> list[dict]:
    return [{"role": "user", "content": prompt}, {"role": "assistant", "content": response}]


def templated(ds, processor):
    """The pairs as trl should see them: the prompt rendered by our chat template (``<image>``
    placeholder kept: trl's processor call expands it) and each completion as the template renders
    it after the prompt (end-of-turn token and newline included), as ``encode_example`` splits them."""

    def render(row):
        prompt = processor.apply_chat_template(to_messages(conversation(row["prompt"], "")[:1]),
                                               add_generation_prompt=True, tokenize=False)
        out = {"prompt": prompt}
        for key in ("chosen", "rejected"):
            full = processor.apply_chat_template(to_messages(conversation(row["prompt"], row[key])), tokenize=False)
            if not full.startswith(prompt):
                raise ValueError("the chat template does not render the prompt as a prefix")
            out[key] = full[len(prompt):]
        return out

    return ds.map(render)


def encoded(ds, processor, n_image_tokens: int, max_length: int) -> list[tuple]:
    """Our (ids, labels) of chosen and of rejected of every pair (``encode_pairs``' tokenisation)."""
    return [tuple(encode_example(processor, conversation(row["prompt"], row[k]), n_image_tokens,
                                 max_length=max_length) for k in ("chosen", "rejected")) for row in ds]


def batch_order(examples: list[tuple], cfg: TuningConfig) -> list[int]:
    """The pair indices in the order ``train_tuning`` visits them (all epochs, batch after batch)."""
    lengths = [max(len(c[0]), len(r[0])) for c, r in examples]  # EncodedPairs.lengths
    return [i for epoch in range(cfg.epochs)
            for batch in length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed * 1009 + epoch) for i in batch]


def path_params(peft_model) -> int:
    """P of the FLOP estimate 6 x P x tokens: every parameter of the LM's decoder layers (frozen
    weights and LoRA adapters) plus the output layer, i.e. the matmuls the loss's gradient flows
    back through. 6 x P per token is the usual forward (2P) + backward (4P) count. It counts
    neither trl's extra reference forward and vision-tower passes nor our skipped output-layer rows,
    and overstates the frozen weights' backward (no weight gradient: 4P, not 6P), so it is the same
    "useful work" for both rows and the share of the peak compares like with like."""
    lm = sum(p.numel() for n, p in peft_model.named_parameters() if ".language_model." in n and "embed_tokens" not in n)
    return lm + peft_model.get_output_embeddings().weight.numel()


# ---------------------------------------------------------------------------------------------
# the two trainers


def run_ours(model, processor, ds, cfg: TuningConfig, workdir: Path) -> dict:
    start = time.perf_counter()
    run = train_tuning(model, processor, ds, cfg, workdir / "ours", progress=False)
    wall = time.perf_counter() - start
    steps = [{k: row[k] for k in ("loss", "tokens", "seconds", "logps/chosen", "logps/rejected")} for row in run.log]
    return {"steps": steps, "wall": wall, "setup": wall - sum(s["seconds"] for s in steps),
            "path_params": path_params(run.model), "lora_dropout": cfg.lora_dropout}


def trl_trainer(model, processor, ds_trl, cfg: TuningConfig, total: int, workdir: Path):
    """A trl ``DPOTrainer`` set up as ``cfg`` (and our trainer) says; it records every step's loss,
    token count, metrics and end time."""
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import DPOConfig, DPOTrainer

    optim_cfg = OptimConfig(cfg.lr, cfg.warmup_ratio, max_grad_norm=cfg.max_grad_norm, bf16=cfg.bf16)

    class Recording(DPOTrainer):
        records: list

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
            metrics = self._metrics["train"]
            self.records.append({"loss": float(loss), "tokens": int(inputs["attention_mask"].sum()),
                                 "logps/chosen": metrics["logps/chosen"][-1],
                                 "logps/rejected": metrics["logps/rejected"][-1]})
            return loss

        def create_scheduler(self, num_training_steps, optimizer=None):
            if self.lr_scheduler is None:  # our schedule (linear warm-up from lr/warmup, cosine), not HF's
                self.lr_scheduler = torch.optim.lr_scheduler.LambdaLR(
                    optimizer or self.optimizer, lambda step: lr_at(step, num_training_steps, optim_cfg) / cfg.lr)
            return self.lr_scheduler

    class Clock(TrainerCallback):
        def __init__(self):
            self.ends = []

        def on_train_begin(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

        def on_step_end(self, args, state, control, **kwargs):
            self.ends.append(time.perf_counter())

    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lm_linear_targets(model), bias="none")
    args = DPOConfig(
        output_dir=str(workdir / "trl"), per_device_train_batch_size=cfg.batch_size, gradient_accumulation_steps=1,
        max_steps=total, learning_rate=cfg.lr, weight_decay=0.0, max_grad_norm=cfg.max_grad_norm,
        optim="adamw_torch_fused", beta=cfg.beta, loss_type="sigmoid", max_length=cfg.max_length,
        bf16=cfg.bf16, use_cpu=True, gradient_checkpointing=False, disable_dropout=False,
        train_sampling_strategy="sequential", dataloader_num_workers=0, seed=cfg.seed,
        logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True, log_level="error")
    clock = Clock()
    trainer = Recording(model=model, args=args, train_dataset=ds_trl, processing_class=processor, peft_config=lora,
                        callbacks=[clock])
    trainer.records = []
    return trainer, clock


def run_trl(model, processor, ds_trl, cfg: TuningConfig, total: int, workdir: Path, probe=None) -> dict:
    """``probe(trainer)``, when given, runs after set-up and before training (not timed)."""
    start = time.perf_counter()
    trainer, clock = trl_trainer(model, processor, ds_trl, cfg, total, workdir)
    probed = None
    if probe is not None:
        probe_start = time.perf_counter()
        probed = probe(trainer)
        start += time.perf_counter() - probe_start
    trainer.train()
    wall = time.perf_counter() - start
    seconds = [b - a for a, b in zip(clock.ends, clock.ends[1:])]
    steps = [{**r, "seconds": s} for r, s in zip(trainer.records, seconds)]
    return {"steps": steps, "wall": wall, "setup": wall - sum(seconds), "probe": probed,
            "path_params": path_params(trainer.model), "lora_dropout": cfg.lora_dropout}


def ours_sequence_logps(model, processor, ds, cfg: TuningConfig) -> list[float]:
    """Our summed log-probs of chosen then rejected of each pair of ``ds`` at step 0 (adapters
    start as the identity, so policy = reference): ``encode_pairs`` + ``compute_reference``."""
    model = copy.deepcopy(model).float().eval()
    pairs = encode_pairs(model, processor, ds, cfg.max_length, bf16=cfg.bf16, progress=False)
    ref = compute_reference(model, pairs, processor.tokenizer.pad_token_id, bf16=cfg.bf16, progress=False)
    return ref["chosen"].tolist() + ref["rejected"].tolist()


def trl_sequence_logps(trainer, batch_size: int) -> list[float]:
    """trl's summed log-probs of chosen then rejected of its first batch at step 0 (policy =
    reference): its own reference path (``compute_ref_log_probs``: adapters disabled, autocast,
    fused LM head) on its own collated batch."""
    rows = [dict(trainer.train_dataset[i]) for i in range(batch_size)]
    chosen, rejected = trainer.compute_ref_log_probs(trainer.model, trainer.data_collator(rows))
    return chosen.float().tolist() + rejected.float().tolist()


def token_check(processor, ds_trl, ours_examples: list[tuple], order: list[int], batch_size: int,
                max_length: int) -> dict:
    """trl's collated first batch against our token ids and labels, sequence by sequence."""
    from trl.trainer.dpo_trainer import DataCollatorForVisionPreference

    first = order[:batch_size]
    rows = [dict(ds_trl[i]) for i in range(batch_size)]  # ds_trl is already in ``order``
    out = DataCollatorForVisionPreference(processor, max_length=max_length)(rows)
    same_ids = same_labels = 0
    for row in range(2 * batch_size):
        pair, kind = first[row % batch_size], row // batch_size  # trl stacks [chosen..., rejected...]
        ids, labels = ours_examples[pair][kind]
        keep = out["attention_mask"][row].bool()
        trl_ids = out["input_ids"][row][keep].tolist()
        trl_labelled = out["completion_mask"][row][keep].bool().tolist()
        same_ids += trl_ids == ids
        same_labels += trl_labelled == [label != -100 for label in labels]
    return {"sequences": 2 * batch_size, "same_ids": same_ids, "same_labels": same_labels,
            "image_rows": int(out["pixel_values"].shape[0])}


# ---------------------------------------------------------------------------------------------
# subprocesses


def tuning_config(args, lora_dropout: float, epochs: int) -> TuningConfig:
    return TuningConfig(batch_size=args.batch_size, epochs=epochs, lora_dropout=lora_dropout)


def child(args) -> None:
    torch.set_num_threads(args.threads)
    os.environ["TQDM_DISABLE"] = "1"
    model, processor, ds, source = load_inputs(args)
    model = model.float()  # both trainers train on fp32 master weights under bf16 autocast
    result = {"source": source, "threads": torch.get_num_threads(), **fingerprints(model, ds)}
    if args.child != "ours":
        import trl

        result["trl_version"] = trl.__version__
    n_image_tokens = model.config.image_seq_length
    with tempfile.TemporaryDirectory(prefix="dpo_throughput_") as tmp:
        workdir = Path(tmp)
        if args.child == "loss":
            # Two steps, LoRA dropout 0: the first step is deterministic, the second follows one AdamW update.
            ds = ds.select(range(2 * args.batch_size))
            cfg = tuning_config(args, 0.0, epochs=1)
            examples = encoded(ds, processor, n_image_tokens, cfg.max_length)
            order = batch_order(examples, cfg)
            ds_trl = templated(ds, processor).select(order)
            result["tokens_check"] = token_check(processor, ds_trl, examples, order, cfg.batch_size, cfg.max_length)
            first = ds.select(order[:cfg.batch_size])
            result["ours_logps"] = ours_sequence_logps(model, processor, first, cfg)
            result["ours"] = run_ours(model, processor, ds, cfg, workdir)
            result["trl"] = run_trl(copy.deepcopy(model), processor, ds_trl, cfg, len(order) // cfg.batch_size,
                                    workdir, probe=lambda trainer: trl_sequence_logps(trainer, cfg.batch_size))
        else:
            per_epoch = len(ds) // args.batch_size
            epochs = math.ceil((args.warmup + args.steps) / per_epoch)
            cfg = tuning_config(args, TuningConfig().lora_dropout, epochs=epochs)
            if args.child == "ours":
                result["run"] = run_ours(model, processor, ds, cfg, workdir)
            else:
                order = batch_order(encoded(ds, processor, n_image_tokens, cfg.max_length), cfg)
                ds_trl = templated(ds, processor).select(order)
                result["run"] = run_trl(model, processor, ds_trl, cfg, len(order) // cfg.batch_size, workdir)
        result["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB
    Path(args.out).write_text(json.dumps(result))


def spawn(name: str) -> dict:
    with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
        out = Path(f.name)
    try:
        proc = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child", name, "--out", str(out)],
                              capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
            raise SystemExit(f"the {name!r} subprocess failed (exit {proc.returncode})")
        return json.loads(out.read_text())
    finally:
        out.unlink(missing_ok=True)


def timed(run: dict, warmup: int, steps: int) -> tuple[int, float]:
    window = run["steps"][warmup:warmup + steps]
    if len(window) < steps:
        raise SystemExit(f"only {len(run['steps'])} steps ran; --warmup {warmup} + --steps {steps} needed")
    return sum(s["tokens"] for s in window), sum(s["seconds"] for s in window)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="smol", choices=("tiny", "smol"))
    parser.add_argument("--random-tiny", action="store_true",
                        help="a randomly initialised tiny model (2-layer, 128-wide tower), synthetic pairs: quick check")
    parser.add_argument("--pairs", type=int, default=64, help="N pairs (a multiple of --batch-size)")
    parser.add_argument("--batch-size", type=int, default=TuningConfig().batch_size, help="pairs per step")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (>= 1)")
    parser.add_argument("--steps", type=int, default=6, help="timed steps")
    parser.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads, every process")
    parser.add_argument("--child", choices=("loss", "ours", "trl"), help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.pairs % args.batch_size or args.pairs < 2 * args.batch_size:
        parser.error("--pairs must be a multiple of --batch-size and at least two batches")
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be >= 1 (trl's first step has no start mark of its own)")
    if args.child:
        return child(args)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from train_throughput import matmul_peak  # noqa: E402  (a sibling script, not a package)

    wall = time.perf_counter()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, load average {os.getloadavg()[0]:.1f} "
          "(other processes on these cores lower every number below)\n")
    peak = matmul_peak(torch.bfloat16)

    loss = spawn("loss")
    ours, trl = spawn("ours"), spawn("trl")
    for name, r in (("ours", ours), ("trl", trl)):
        if (r["model"], r["pairs"]) != (loss["model"], loss["pairs"]):
            raise SystemExit(f"the {name} subprocess built another model or other pairs than the loss subprocess")
    for phase, a, b in (("loss", loss["ours"], loss["trl"]), ("speed", ours["run"], trl["run"])):
        ta, tb = [s["tokens"] for s in a["steps"]], [s["tokens"] for s in b["steps"]]
        if ta != tb:
            raise SystemExit(f"{phase}: the two trainers saw different batches (tokens per step {ta} vs {tb})")

    first = {k: loss[k]["steps"][0] for k in ("ours", "trl")}
    rate = {}
    for k, r in (("ours", ours), ("trl", trl)):
        tokens, seconds = timed(r["run"], args.warmup, args.steps)
        rate[k] = tokens / seconds
    p = ours["run"]["path_params"]
    if trl["run"]["path_params"] != p:
        print(f"(warning: the FLOP estimate's P differs: ours {p:,}, trl {trl['run']['path_params']:,})")

    n_steps = len(ours["run"]["steps"])
    print(f"Pairs: {loss['source']}; {args.pairs} pairs, {args.batch_size} pairs per step, beta 0.1, LoRA r 32 / "
          f"alpha 256 on the LM's linear layers, bf16 autocast, {args.threads} threads. tokens/s over steps "
          f"{args.warmup + 1}-{args.warmup + args.steps} of {n_steps} (LoRA dropout 0.05); first loss and log-probs "
          f"from the separate two-step run with dropout 0 (batch 1 = the same pairs for both).\n")
    print("| implementation | first loss | first logps/chosen | first logps/rejected | tokens/s | peak RSS MiB "
          "| ratio ours/trl (tokens/s) | share of bf16 peak |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for k, label in (("ours", "ours (bpo.training.tuning)"), ("trl", f"trl {trl['trl_version']} DPOTrainer")):
        f = first[k]
        rss = (ours if k == "ours" else trl)["peak_rss_mib"]
        ratio = rate["ours"] / rate["trl"] if k == "ours" else 1.0
        print(f"| {label} | {f['loss']:.6f} | {f['logps/chosen']:.4f} | {f['logps/rejected']:.4f} | {rate[k]:,.0f} "
              f"| {rss:,.0f} | {ratio:.2f} | {6 * p * rate[k] / peak:.1%} |")

    d_loss = abs(first["ours"]["loss"] - first["trl"]["loss"])
    tc = loss["tokens_check"]
    print(f"\n- first loss: |ours - trl| = {d_loss:.2e} "
          f"({'within' if d_loss <= LOSS_TOLERANCE else 'NOT within'} {LOSS_TOLERANCE:g}); log 2 = {math.log(2):.6f}. "
          f"logps differences: chosen {first['ours']['logps/chosen'] - first['trl']['logps/chosen']:+.2e}, "
          f"rejected {first['ours']['logps/rejected'] - first['trl']['logps/rejected']:+.2e} (batch means of summed "
          "log-probs, as both trainers log them).")
    seq = max(abs(a - b) for a, b in zip(loss["ours_logps"], loss["trl"]["probe"]))
    print(f"- per sequence (first batch at step 0, where policy = reference): max |ours - trl| of the summed "
          f"log-probs {seq:.1e}.")
    print(f"- second-step loss, after one identical AdamW step (same seed, hence same LoRA A init): ours "
          f"{loss['ours']['steps'][1]['loss']:.6f}, trl {loss['trl']['steps'][1]['loss']:.6f}.")
    print(f"- tokenisation, first batch: {tc['same_ids']}/{tc['sequences']} sequences with identical token ids, "
          f"{tc['same_labels']}/{tc['sequences']} with identical loss masks; trl's collator sent {tc['image_rows']} "
          f"images through the tower for {tc['sequences'] // 2} pairs (and does so again for the reference forward).")
    print(f"- one-time work outside the timed steps: ours {ours['run']['setup']:.1f} s (tokenising, image "
          f"embeddings, reference log-probs, the model copy), trl {trl['run']['setup']:.1f} s (trainer set-up); "
          f"whole runs {ours['run']['wall']:.1f} s and {trl['run']['wall']:.1f} s.")
    print("- peak RSS is each whole subprocess's (model, pairs, training); ours holds two copies of the model "
          "(train_tuning trains a deep copy of the model it is given), trl one (it wraps the model it is given).")
    print(f"- FLOPs = 6 x P x tokens, P = {p / 1e6:.2f}M (LM decoder layers incl. LoRA + output layer); bf16 matmul "
          f"peak {peak / 1e9:,.0f} GFLOP/s (2048x2048, best of 8, {args.threads} threads).")
    print(f"\nTotal {time.perf_counter() - wall:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")
    if d_loss > LOSS_TOLERANCE:
        raise SystemExit(f"first-step losses differ by {d_loss:.2e} > {LOSS_TOLERANCE:g}")


if __name__ == "__main__":
    main()
