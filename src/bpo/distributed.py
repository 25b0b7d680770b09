"""BPO / SFT LoRA fine-tuning on several processes (GPUs) with Hugging Face ``accelerate``:
the objective of :func:`bpo.training.tuning.train_tuning`, data-parallel.

- The global batch is ``cfg.batch_size`` pairs, the very batches of the single-process plan
  (``length_grouped_batches``, same seeds); each one is cut into ``num_processes`` contiguous
  shards (sizes differ by at most one, so a batch of lengths sorted together pads little).
- Each rank's loss is ``step_loss`` on its shard (imported, not re-implemented), multiplied by
  ``num_processes * share`` before backward: DDP (or DeepSpeed) *averages* gradients over ranks,
  and the batch loss is a mean, so the shares make the averaged gradient the gradient of the
  global batch's loss, whatever the shard sizes. The share is the shard's fraction of the batch's
  pairs (DPO, mDPO's term: means over pairs) or of its chosen-response tokens (SFT: a mean over
  tokens). A rank with an empty shard (a last batch smaller than the world) runs one pair with
  share 0, so it still joins the gradient all-reduce. ``sft_weight`` > 0 mixes a pair mean and a
  token mean, which no single share can split exactly: it is refused on more than one process.
- Gradients are clipped by ``accelerator.clip_grad_norm_`` (after the all-reduce: the global norm);
  the learning rate follows ``lr_at`` per step, as in ``train_tuning``.
- Reference log-probs are computed once, before LoRA is attached, each rank for its own shards of
  the first epoch's batches (in the shapes its policy sees at step 0, so step 0's loss is log 2 per
  rank, as in ``train_tuning``), then all-gathered so every rank holds every pair's reference.
- Every rank encodes every pair (``encode_pairs``: tokens, and the frozen projector output of each
  distinct image, kept on its device) as ``train_tuning`` does, since the shards change every step.
  For LLaVA-1.5-7B that is 576 x 4096 floats, 9.4 MB, per image on every GPU: it bounds the number
  of distinct images a run can hold (about 4,000 in 40 GB).
- Only the main process writes ``adapter/`` (``save_pretrained``), ``config.json`` and
  ``log.json`` (the per-step keys of ``train_tuning``; loss and metrics are of the global batch).
- Options: ``gradient_checkpointing`` (transformers' ``gradient_checkpointing_enable`` on the LM,
  ``use_reentrant=False``; ``activation_checkpointing_enable``, its new name, where it exists) and bf16 autocast (``cfg.bf16``: ``Accelerator(mixed_precision="bf16")``).
- Not here: the epoch checkpoints and resume of ``train_tuning`` (a finished run in ``directory``
  is loaded, an unfinished one starts again) and its on-disk reference cache.

Launch from the project root with a config of ``configs/accelerate/`` (:func:`launch_command`)::

    accelerate launch --config_file configs/accelerate/8gpu_zero2.yaml --num_processes 8 \\
        -m bpo.distributed --model PATH --pairs PAIRS_DIR --out RUN_DIR --batch-size 32

``PATH`` holds a model saved with ``save_pretrained`` (``bpo.models.llava.load_pretrained``),
``PAIRS_DIR`` the pairs saved with ``datasets.Dataset.save_to_disk``; every ``TuningConfig`` field is
an option (``--lora-r``, ``--no-bf16``, ...).

DeepSpeed (the ``8gpu_zero*.yaml`` configs, ZeRO-2 as in the released BPO/LLaVA code) is optional
and not installed here: it needs CUDA to build (``pip install deepspeed`` on the GPU machine). Under
DeepSpeed the model runs in bf16 weights (fp32 master weights in the optimizer; the reference is
computed in bf16 weights too), the engine clips inside its step, and ZeRO-3 gathers the LoRA weights
before saving. Only the DDP path is tested (CPU, gloo); the DeepSpeed path has never run.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import shlex
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from bpo.models.chat import IGNORE_INDEX
from bpo.paths import PROJECT_ROOT
from bpo.training.data import length_grouped_batches
from bpo.precision import autocast
from bpo.training.loop import OptimConfig, lr_at
from bpo.training.pairs import EncodedPairs, compute_reference, encode_pairs, select_pairs
from bpo.training.tuning import TuningRun, attach_lora, load_tuned, step_loss
from bpo.training.tuning_config import TuningConfig

CONFIG_DIR = PROJECT_ROOT / "configs" / "accelerate"
_MIXED_MEANS = ("sft_weight > 0 adds a token mean to DPO's pair mean: a batch split over processes cannot weight both "
                "exactly; use one process or sft_weight=0")


def split_batch(batch: list[int], n: int) -> list[list[int]]:
    """``batch`` cut into ``n`` contiguous shards whose sizes differ by at most one (first ranks
    take the extra pairs; shards may be empty when the batch is smaller than ``n``)."""
    q, r = divmod(len(batch), n)
    bounds = [k * q + min(k, r) for k in range(n + 1)]
    return [list(batch[bounds[k]:bounds[k + 1]]) for k in range(n)]


def _chosen_tokens(pairs: EncodedPairs, idx: list[int]) -> int:
    # the tokens SFT's mean runs over: labelled positions after token_logprobs' shift by one
    return sum(sum(y != IGNORE_INDEX for y in pairs.chosen[i][1][1:]) for i in idx)


def shard_share(cfg: TuningConfig, pairs: EncodedPairs, shard: list[int], batch: list[int]) -> float:
    """The fraction of the global batch's loss that ``step_loss`` on ``shard`` stands for:
    ``loss(batch) == sum(share * loss(shard))`` over the shards. Pairs for DPO (a mean over
    pairs), chosen tokens for SFT (a mean over tokens)."""
    if not shard:
        return 0.0
    if cfg.method == "sft":
        return _chosen_tokens(pairs, shard) / _chosen_tokens(pairs, batch)
    if cfg.sft_weight and len(shard) != len(batch):
        raise ValueError(_MIXED_MEANS)
    return len(shard) / len(batch)


def _subset(pairs: EncodedPairs, idx: list[int]) -> EncodedPairs:
    return EncodedPairs([pairs.pair_ids[i] for i in idx], [pairs.chosen[i] for i in idx],
                        [pairs.rejected[i] for i in idx], pairs.image_row[idx], pairs.embeds, pairs.weak_embeds)


def sharded_reference(accelerator, model, pairs: EncodedPairs, pad_id: int, shards: list[list[int]], bf16: bool,
                      progress: bool = True) -> dict[str, torch.Tensor]:
    """Every pair's reference log-probs (``compute_reference``'s dict, on the CPU), each rank
    computing ``shards`` (its shard of each first-epoch batch, in that shape), then all-gathered."""
    from accelerate.utils import gather_object

    shards = [s for s in shards if s]
    own = [i for s in shards for i in s]
    local = {}
    if own:
        pos = {i: k for k, i in enumerate(own)}
        local = compute_reference(model, _subset(pairs, own), pad_id, [[pos[i] for i in s] for s in shards], bf16,
                                  progress)
    parts = gather_object([(own, {k: v.cpu() for k, v in local.items()})]) if accelerator.num_processes > 1 \
        else [(own, local)]
    names = ("chosen", "rejected", *(("weak_chosen",) if pairs.weak_embeds is not None else ()))
    result = {name: torch.full((len(pairs),), float("nan")) for name in names}
    seen = []
    for idx, values in parts:
        seen += idx
        for name in names:
            if idx:
                result[name][idx] = values[name]
    if sorted(seen) != list(range(len(pairs))):
        raise RuntimeError(f"the ranks' reference shards cover {len(set(seen))} of {len(pairs)} pairs")
    return result


class _Step(torch.nn.Module):
    """The ``peft`` model with ``step_loss`` as its forward: DDP (and DeepSpeed) synchronise
    gradients only for a backward that follows the wrapper's own forward, and ``step_loss`` calls
    the LLaVA's parts, not its ``forward``."""

    def __init__(self, peft_model, pairs: EncodedPairs, reference: dict, cfg: TuningConfig, pad_id: int):
        super().__init__()
        self.peft = peft_model
        self.config = peft_model.get_base_model().config.text_config  # DeepSpeed's "auto" sizes read hidden_size
        self.pairs, self.reference, self.cfg, self.pad_id = pairs, reference, cfg, pad_id

    def forward(self, batch: list[int]):
        return step_loss(self.peft.get_base_model(), self.pairs, batch, self.reference, self.cfg, self.pad_id)


def make_accelerator(cfg: TuningConfig, cpu: bool | None = None):
    """An ``Accelerator`` for ``cfg``: bf16 mixed precision when ``cfg.bf16``; ``cpu`` (default:
    when there is no CUDA) makes a multi-process launch use gloo on the CPU."""
    from accelerate import Accelerator

    cpu = not torch.cuda.is_available() if cpu is None else cpu
    return Accelerator(mixed_precision="bf16" if cfg.bf16 else "no", cpu=cpu)


def _zero_stage(accelerator) -> int:
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    return int(plugin.deepspeed_config.get("zero_optimization", {}).get("stage", 0)) if plugin is not None else 0


def _fill_deepspeed(accelerator, cfg: TuningConfig) -> None:
    # we pass no dataloader, so accelerate cannot fill the batch sizes; clipping follows cfg
    plugin = getattr(accelerator.state, "deepspeed_plugin", None)
    if plugin is None:
        return
    ds = plugin.deepspeed_config
    micro = -(-cfg.batch_size // accelerator.num_processes)
    for key, value in (("train_micro_batch_size_per_gpu", micro), ("gradient_accumulation_steps", 1),
                       ("train_batch_size", micro * accelerator.num_processes),
                       ("gradient_clipping", cfg.max_grad_norm)):
        if ds.get(key, "auto") == "auto":
            ds[key] = value
    if str(ds.get("bf16", {}).get("enabled", cfg.bf16)).lower() != str(cfg.bf16).lower():
        raise ValueError(f"the DeepSpeed config's bf16 {ds['bf16']} disagrees with TuningConfig.bf16={cfg.bf16}")


def _adapter_state(accelerator, peft_model):
    """The LoRA weights, gathered first under ZeRO-3 (every rank must call this); None elsewhere
    (``save_pretrained`` reads them from the model)."""
    if _zero_stage(accelerator) != 3:
        return None
    import deepspeed

    params = {n: p for n, p in peft_model.named_parameters() if p.requires_grad}
    with deepspeed.zero.GatheredParameters(list(params.values())):
        return {n: p.detach().cpu().clone() for n, p in params.items()}


def _checkpoint_activations(lm) -> None:
    # non-reentrant: no inputs that require grad needed (the embeddings are frozen), works with DDP
    kwargs = {"use_reentrant": False}
    if hasattr(lm, "activation_checkpointing_enable"):  # transformers >= 5.x's name; the old one warns
        lm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        lm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def train_tuning_distributed(model, processor, ds, cfg: TuningConfig, directory: Path, accelerator=None,
                             progress: bool = True, gradient_checkpointing: bool = False,
                             base_path: str | None = None, copy_model: bool = True) -> TuningRun:
    """``train_tuning``'s run of ``cfg`` on the pairs ``ds``, data-parallel over the processes of
    ``accelerator`` (default: :func:`make_accelerator`), saved into ``directory`` by the main
    process. A finished run there is loaded. ``copy_model=False`` trains ``model`` itself (spares a
    copy of a 7B model per process); ``base_path`` goes into the adapter's config."""
    directory = Path(directory)
    if (directory / "log.json").exists():  # written last: the run finished
        return TuningRun(load_tuned(model, directory), json.loads((directory / "log.json").read_text()), directory,
                         True)
    accelerator = accelerator or make_accelerator(cfg)
    if (accelerator.mixed_precision == "bf16") != cfg.bf16:
        raise ValueError(f"accelerator mixed_precision={accelerator.mixed_precision!r} but TuningConfig.bf16="
                         f"{cfg.bf16}: make them agree")
    world, rank, main = accelerator.num_processes, accelerator.process_index, accelerator.is_main_process
    if world > 1 and cfg.sft_weight:
        raise ValueError(_MIXED_MEANS)
    _fill_deepspeed(accelerator, cfg)
    show = progress and main
    # DeepSpeed's bf16 runs the model in bf16 weights (fp32 master copies in the optimizer), not in
    # autocast: the reference is then computed in bf16 weights too, so that at step 0 policy == reference
    deepspeed = getattr(accelerator.state, "deepspeed_plugin", None) is not None
    amp, dtype = cfg.bf16 and not deepspeed, torch.bfloat16 if cfg.bf16 and deepspeed else torch.float32

    ds = select_pairs(ds, max_pairs=cfg.max_pairs, seed=cfg.seed)
    weaken = (cfg.mdpo_noise_place, cfg.mdpo_noise_step) if cfg.mdpo_weight else None
    model = (copy.deepcopy(model) if copy_model else model).to(accelerator.device, dtype)
    model.eval()
    pad = processor.tokenizer.pad_token_id
    pairs = encode_pairs(model, processor, ds, cfg.max_length, weaken, cfg.seed, cfg.bf16, show)
    plan = [length_grouped_batches(pairs.lengths(), cfg.batch_size, seed=cfg.seed * 1009 + e) for e in range(cfg.epochs)]
    plan = [[[int(i) for i in b] for b in epoch] for epoch in plan]  # train_tuning's batches, exactly
    shards = [[split_batch(b, world) for b in epoch] for epoch in plan]
    reference = sharded_reference(accelerator, model, pairs, pad, [s[rank] for s in shards[0]], cfg.bf16, show)

    model = attach_lora(model, cfg)  # seeded: the same adapters on every rank (DDP broadcasts rank 0's anyway)
    model.train()
    if gradient_checkpointing:
        _checkpoint_activations(model.get_base_model().model.language_model)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0, fused=True)
    step_module, opt = accelerator.prepare(_Step(model, pairs, reference, cfg, pad), opt)
    optim_cfg = OptimConfig(cfg.lr, cfg.warmup_ratio, max_grad_norm=cfg.max_grad_norm, bf16=cfg.bf16)
    total = sum(len(epoch) for epoch in plan)
    log: list[dict] = []
    bar = tqdm(total=total, desc=f"{cfg.method} (LoRA, {world} processes)", disable=not show, leave=False)
    for epoch in range(cfg.epochs):
        for batch, split in zip(plan[epoch], shards[epoch]):
            step = len(log)
            start = time.perf_counter()
            for group in opt.param_groups:
                group["lr"] = lr_at(step, total, optim_cfg)
            shard = split[rank]
            loss_share, pair_share = shard_share(cfg, pairs, shard, batch), len(shard) / len(batch)
            with autocast(amp, pairs.embeds.device.type):
                # an empty shard runs one pair with share 0: this rank still joins the all-reduce
                loss, row = step_module(shard or batch[:1])
            keys = [k for k in row if k != "tokens"]
            local = [loss_share * loss.item(), *(pair_share * row[k] for k in keys), row["tokens"] if shard else 0]
            summed = accelerator.reduce(torch.tensor(local, dtype=torch.float64, device=accelerator.device), "sum")
            summed = summed.tolist()
            where = (f"{cfg.method} run {directory.name}: step {step} (epoch {epoch}), "
                     f"pairs {[pairs.pair_ids[i] for i in batch]}")
            if not math.isfinite(summed[0]):  # the same sum on every rank: all stop together
                raise FloatingPointError(f"loss is {summed[0]} at {where}")
            accelerator.backward(loss * (world * loss_share))
            norm = accelerator.clip_grad_norm_(params, cfg.max_grad_norm)  # DeepSpeed: its norm (it clipped in backward)
            if norm is not None and not math.isfinite(float(norm)):
                raise FloatingPointError(f"gradient norm is {float(norm)} at {where}")
            opt.step()
            opt.zero_grad(set_to_none=True)
            seconds = time.perf_counter() - start
            glob = dict(zip(keys, summed[1:-1]))
            tokens = int(round(summed[-1]))
            row = {k: tokens if k == "tokens" else glob[k] for k in row}  # step_loss's key order
            log.append({"step": step, "epoch": epoch, "loss": summed[0], "lr": opt.param_groups[0]["lr"], **row,
                        "seconds": seconds, "tokens/s": tokens / seconds})
            bar.update()
            bar.set_postfix(loss=f"{summed[0]:.3f}")
    bar.close()
    peft_model = accelerator.unwrap_model(step_module).peft
    state = _adapter_state(accelerator, peft_model)
    if main:
        if base_path is not None:
            peft_model.peft_config["default"].base_model_name_or_path = str(base_path)
        peft_model.save_pretrained(directory / "adapter", **({"state_dict": state} if state is not None else {}))
        (directory / "config.json").write_text(json.dumps(dataclasses.asdict(cfg), indent=1))
        (directory / "log.json").write_text(json.dumps(log))
    accelerator.wait_for_everyone()
    peft_model.eval()
    return TuningRun(peft_model, log, directory, True)


def config_path(config: str | Path) -> Path:
    """A config of ``configs/accelerate`` by name ("8gpu_zero2"), or any path to a YAML file."""
    path = Path(config)
    if path.suffix not in (".yaml", ".yml"):
        path = CONFIG_DIR / f"{config}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
        raise FileNotFoundError(f"no accelerate config {config!r}: use one of {known} or a path to a YAML file")
    return path


def launch_command(config: str | Path, n_processes: int, args: Sequence[str] = ()) -> str:
    """The shell line that runs this module's training on ``n_processes`` processes (GPUs) with an
    accelerate config (a name in ``configs/accelerate`` or a path); ``args`` go to :func:`main`.
    Run it from the project root: the DeepSpeed configs name their JSON relative to it."""
    if isinstance(n_processes, bool) or not isinstance(n_processes, int) or n_processes < 1:
        raise ValueError(f"n_processes must be an int >= 1, got {n_processes!r}")
    path = config_path(config)
    try:
        path = path.resolve().relative_to(PROJECT_ROOT)
    except ValueError:
        pass
    return shlex.join(["accelerate", "launch", "--config_file", str(path), "--num_processes", str(n_processes),
                       "-m", "bpo.distributed", *map(str, args)])


def build_parser() -> argparse.ArgumentParser:
    """``python -m bpo.distributed``'s options: the run's inputs, then every ``TuningConfig`` field."""
    p = argparse.ArgumentParser(prog="python -m bpo.distributed", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="a directory written by save_pretrained (model and processor)")
    p.add_argument("--pairs", required=True, help="the preference pairs, a directory of Dataset.save_to_disk")
    p.add_argument("--out", required=True, help="the run's directory: adapter/, config.json, log.json")
    p.add_argument("--gradient-checkpointing", action="store_true", help="recompute the LM's activations in backward")
    p.add_argument("--cpu", action="store_true", help="train on the CPU (gloo) even where CUDA is available")
    p.add_argument("--threads", type=int, default=None, help="torch threads per process (CPU runs)")
    p.add_argument("--no-progress", action="store_true")
    config = p.add_argument_group("TuningConfig")
    for field in dataclasses.fields(TuningConfig):
        flag = "--" + field.name.replace("_", "-")
        if isinstance(field.default, bool):
            config.add_argument(flag, dest=field.name, action=argparse.BooleanOptionalAction, default=field.default)
        else:
            config.add_argument(flag, dest=field.name, type=type(field.default), default=field.default)
    return p


def main(argv: Sequence[str] | None = None) -> TuningRun:
    args = build_parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    import datasets

    from bpo.models.llava import load_pretrained

    cfg = TuningConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TuningConfig)})
    accelerator = make_accelerator(cfg, cpu=True if args.cpu else None)
    model, processor = load_pretrained(args.model)
    ds = datasets.load_from_disk(args.pairs)
    run = train_tuning_distributed(model, processor, ds, cfg, Path(args.out), accelerator,
                                   progress=not args.no_progress, gradient_checkpointing=args.gradient_checkpointing,
                                   base_path=args.model, copy_model=False)
    if accelerator.is_main_process:
        last = run.log[-1]
        print(f"{cfg.method}: {len(run.log)} steps on {accelerator.num_processes} processes, last loss "
              f"{last['loss']:.4f}; saved to {run.directory}", file=sys.stderr)
    accelerator.end_training()
    return run


if __name__ == "__main__":
    main()
