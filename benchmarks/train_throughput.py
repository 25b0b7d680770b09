"""How fast a LLaVA trains and generates on this machine, against this machine's own matmul peak.

    python benchmarks/train_throughput.py [--preset smol] [--steps 5] [--quick] [--peaks-only]

Prints Markdown tables:

1. the bf16 (and fp32) matmul peak, measured here, in this run (2048x2048 matmuls, best of N), and
   whether ``bpo.precision.bf16_pays`` computes in bf16 on this CPU (``--peaks-only`` stops here;
   ``--peak-size`` makes the matmuls smaller, for CPUs where bf16 is slow);
2. a stage-2 training step as training runs it: 16 examples of ~160 tokens (64 image tokens),
   projector + LM trained on precomputed vision features with ``bpo.models.forward.lm_loss``,
   bf16 autocast where bf16 pays (fp32 elsewhere), gradient clipping, AdamW; median over ``--steps``
   steps after warm-up. Two rows: full fine-tuning (fp32 master weights) and a frozen LM (bf16 where
   bf16 pays) + LoRA (r=64, every linear layer of the LM; projector still fully trained);
3. generation tokens/s for 32 world prompts, batched (32) vs one by one, greedy, 48 new tokens
   (fp32 weights, and where bf16 pays also bf16 weights);
4. vision pre-training (stage 1, ``bpo.training.vision``) in images/s: rendering scenes with their
   masks and patch targets, a supervised training step of the tower and its heads on an already
   rendered batch, and the two together as ``pretrain_supervised`` runs them (one after the other,
   on the same cores) against the next batch rendered on a second thread during each step.

FLOP counts are matmul FLOPs only (see ``train_flops``); the share of peak is what a step achieves
relative to the bf16 matmul peak measured above.
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import torch

from bpo.models.config import ModelConfig
from bpo.precision import autocast, bf16_pays, storage_dtype
from bpo.presets import base_training_config
from bpo.models.llava import build_model
from bpo.models.chat import IGNORE_INDEX, encode_example
from bpo.training.loop import OptimConfig, train_steps
from bpo.models.forward import lm_loss, vision_features
from bpo.models.generate import generate
from bpo.world import language
from bpo.world.render import render
from bpo.world.scene import item_rng, sample_scenes

BATCH = 16
SEQ = 160
GEN_PROMPTS = 32
GEN_TOKENS = 48
LM_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


# ---------------------------------------------------------------------------------------------
# 1. matmul peak


def matmul_peak(dtype: torch.dtype, n: int = 2048, repeats: int = 8) -> float:
    """FLOP/s of the best of ``repeats`` n x n matmuls (best, not mean: the peak, not the noise)."""
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    a @ b  # warm-up: thread pool, kernel selection
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2 * n ** 3 / best


# ---------------------------------------------------------------------------------------------
# 2. training step


def make_batch(model, processor, cfg: ModelConfig):
    """16 detail-description examples cut at exactly SEQ tokens (no padding, like a length-grouped
    batch), with their images' vision features precomputed as training does."""
    n_img = cfg.n_image_tokens
    examples, images = [], []
    scenes = sample_scenes(0, "bench-train", 8 * BATCH)
    for i, scene in enumerate(scenes):
        rng = item_rng(0, "bench-train-text", i)
        # Two descriptions in one answer: the world's single descriptions are often shorter than SEQ.
        turns = [{"role": "user", "content": "Describe this image in detail."},
                 {"role": "assistant", "content": language.describe(scene, rng) + " " + language.describe(scene, rng)}]
        ids, labels = encode_example(processor, turns, n_img)
        if len(ids) >= SEQ:
            examples.append((ids[:SEQ], labels[:SEQ]))
            images.append(render(scene, cfg.image_size))
        if len(examples) == BATCH:
            break
    if len(examples) < BATCH:
        raise RuntimeError(f"only {len(examples)} examples reach {SEQ} tokens")
    input_ids = torch.tensor([e[0] for e in examples])
    labels = torch.tensor([e[1] for e in examples])
    mask = torch.ones_like(input_ids)
    pixels = processor.image_processor(images, return_tensors="pt")["pixel_values"]
    with autocast(True):
        feats = vision_features(model, pixels).to(storage_dtype())  # as training caches them
    return input_ids, mask, feats, labels


def count_params(module, names=None, trainable=None) -> int:
    total = 0
    for name, p in module.named_parameters():
        if trainable is not None and p.requires_grad != trainable:
            continue
        if names is None or any(f".{n}." in f".{name}" for n in names):
            total += p.numel()
    return total


def train_flops(model, input_ids, labels, lora: bool) -> tuple[float, str]:
    """Matmul FLOPs of one step, and a sentence saying what was counted.

    A weight matrix of P entries costs 2*P per token forward, 2*P backward for the input gradient and
    2*P for its own gradient: 6*P if trained, 4*P if frozen (its input still needs a gradient for the
    layers below). The LM's linear layers see every token, the projector the image tokens, the
    output layer only labelled positions (``lm_loss`` skips the rest). Attention scores and values:
    2 matmuls of 2*S*S*d per layer forward, halved for the causal mask, x3 for the backward.
    """
    lm = model.model.language_model
    tc = model.config.text_config
    tokens = input_ids.numel()
    n_image = int((input_ids == model.config.image_token_index).sum())
    n_labelled = int((labels[:, 1:] != IGNORE_INDEX).sum())
    base_linear = count_params(lm, [f"{n}.base_layer" for n in LM_LINEARS] if lora else LM_LINEARS)
    lora_params = count_params(lm, ["lora_A", "lora_B"]) if lora else 0
    projector = count_params(model.model.multi_modal_projector)
    head = model.lm_head.weight.numel()
    w = 4 if lora else 6  # frozen vs trained LM weights (the output layer is tied to the embedding)
    attention = 3 * 2 * input_ids.shape[1] ** 2 * tc.hidden_size * tc.num_hidden_layers * input_ids.shape[0]
    flops = (w * base_linear * tokens + 6 * lora_params * tokens + 6 * projector * n_image
             + w * head * n_labelled + attention)
    what = (f"{w}x{base_linear / 1e6:.1f}M LM linear weights x {tokens} tokens"
            + (f" + 6x{lora_params / 1e6:.1f}M LoRA x {tokens}" if lora else "")
            + f" + 6x{projector / 1e6:.2f}M projector x {n_image} image tokens"
            + f" + {w}x{head / 1e6:.1f}M output layer x {n_labelled} labelled tokens"
            + " + causal attention 6*S^2*d*layers per row")
    return flops, what


def to_lora(model):
    """Frozen copy of the model (LM in bf16 where bf16 pays) with LoRA (r=64) on every linear layer
    of the LM; the LoRA weights and the projector stay fp32 (master weights) and trainable."""
    from peft import LoraConfig, inject_adapter_in_model

    model = copy.deepcopy(model)
    model.model.language_model.to(storage_dtype())
    config = LoraConfig(r=64, lora_alpha=128, lora_dropout=0.0,
                        target_modules=rf".*language_model.*\.({'|'.join(LM_LINEARS)})")
    inject_adapter_in_model(config, model)
    for name, p in model.named_parameters():
        p.requires_grad = "lora_" in name or "multi_modal_projector" in name
        if p.requires_grad:
            p.data = p.data.float()
    return model


def time_steps(model, batch, steps: int, warmup: int) -> list[float]:
    """Seconds of each timed step (after ``warmup`` untimed ones), run by the training loop itself
    (``bpo.training.loop.train_steps``: bf16 autocast, clipping, fused AdamW)."""
    input_ids, mask, feats, labels = batch
    model.train()
    log = train_steps(list(model.parameters()), iter(range(warmup + steps)),
                      lambda _: (lm_loss(model, input_ids, mask, feats, labels), 0), warmup + steps,
                      OptimConfig(lr=1e-5), "benchmark", progress=False)
    return [row["seconds"] for row in log[warmup:]]


# ---------------------------------------------------------------------------------------------
# 4. vision pre-training


def vision_rates(model, batch_size: int, steps: int, warmup: int) -> dict[str, float]:
    """Images/s of rendering a batch (scenes, masks, patch targets), of one supervised step on a
    rendered batch (bf16 autocast, AdamW: the training loop), and of both, in turn or overlapped."""
    from bpo.training.vision import SeeingHeads, render_batch, scene_stream, tower_features

    tower, vcfg = model.model.vision_tower, model.config.vision_config
    layer = model.config.vision_feature_layer
    tower.requires_grad_(True).train()
    heads = SeeingHeads(vcfg.hidden_size)
    start = time.perf_counter()
    batches = [render_batch(scene_stream(0, "benchmark", i * batch_size, batch_size), vcfg.image_size, vcfg.patch_size)
               for i in range(steps)]
    render_s = (time.perf_counter() - start) / steps
    pixels, targets = batches[0]
    log = train_steps([*tower.parameters(), *heads.parameters()], iter(range(warmup + steps)),
                      lambda _: (SeeingHeads.loss(heads(tower_features(tower, pixels, layer)), targets), batch_size),
                      warmup + steps, OptimConfig(lr=1e-4), "benchmark", progress=False)
    step_s = statistics.median(row["seconds"] for row in log[warmup:])
    rates = {"render": batch_size / render_s, "train step": batch_size / step_s}

    def one(i):
        return render_batch(scene_stream(1, "benchmark", i * batch_size, batch_size), vcfg.image_size, vcfg.patch_size)

    def ahead(n):  # the candidate: the next batch rendered on a second thread during this step
        with ThreadPoolExecutor(max_workers=1) as pool:
            pending = pool.submit(one, 0)
            for i in range(n):
                current = pending.result()
                if i + 1 < n:
                    pending = pool.submit(one, i + 1)
                yield current

    stamps = []

    def stamped_loss(batch):  # wall time between steps' starts counts the wait for the batch too
        stamps.append(time.perf_counter())
        return SeeingHeads.loss(heads(tower_features(tower, batch[0], layer)), batch[1]), batch_size

    for name, batches in (("render + train step, in turn (as the stage runs)", map(one, range(warmup + steps))),
                          ("render + train step, next batch rendered ahead", ahead(warmup + steps))):
        stamps.clear()
        train_steps([*tower.parameters(), *heads.parameters()], batches, stamped_loss, warmup + steps,
                    OptimConfig(lr=1e-4), "benchmark", progress=False)
        rates[name] = batch_size * (len(stamps) - 1 - warmup) / (stamps[-1] - stamps[warmup])
    tower.requires_grad_(False)
    return rates


# ---------------------------------------------------------------------------------------------
# 3. generation


def gen_inputs(cfg: ModelConfig, n: int):
    """n world images with different questions: detail prompts and object questions."""
    scenes = sample_scenes(0, "bench-gen", n)
    questions = []
    for i, scene in enumerate(scenes):
        rng = item_rng(0, "bench-gen-text", i)
        questions.append(language.DETAIL_PROMPTS[i % len(language.DETAIL_PROMPTS)] if i % 2
                         else language.object_qa(scene, rng)[0])
    return [render(s, cfg.image_size) for s in scenes], questions


def time_generate(model, processor, images, questions, batch_size: int) -> float:
    start = time.perf_counter()
    # min_new_tokens = max_new_tokens: no row stops early at EOS, so every run makes exactly
    # len(questions) * GEN_TOKENS tokens and tokens/s compare like for like.
    generate(model, processor, images, questions, max_new_tokens=GEN_TOKENS, min_new_tokens=GEN_TOKENS,
             batch_size=batch_size, progress=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="smol")
    parser.add_argument("--steps", type=int, default=5, help="timed training steps per variant (median reported)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--vision-steps", type=int, default=30, help="timed vision pre-training steps (fast: a fraction of a second each)")
    parser.add_argument("--sequential", type=int, default=8,
                        help="prompts generated one by one (of the 32; tokens/s is per token, so a subset suffices)")
    parser.add_argument("--quick", action="store_true", help="smoke check: 1 warm-up, 1 step, 4 one-by-one prompts")
    parser.add_argument("--peaks-only", action="store_true", help="only the matmul peaks and the bf16 decision")
    parser.add_argument("--peak-size", type=int, default=2048, help="n of the n x n matmuls of the peaks")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup, args.sequential = 1, 1, 4
    wall = time.perf_counter()
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()[0]:.1f} "
          "(other processes on these cores lower every number below)\n")

    peak = {dt: matmul_peak(dt, args.peak_size) for dt in (torch.bfloat16, torch.float32)}
    n = args.peak_size
    print(f"| matmul {n}x{n} (best of 8) | GFLOP/s |\n| --- | ---: |")
    for dt, f in peak.items():
        print(f"| {str(dt).removeprefix('torch.')} | {f / 1e9:,.1f} |")
    print(f"\nbf16 / fp32: {peak[torch.bfloat16] / peak[torch.float32]:.3g}x; torch's CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}; bpo.precision.bf16_pays('cpu'): {bf16_pays('cpu')} "
          f"(the repository computes in {'bf16' if bf16_pays('cpu') else 'fp32'} here)\n")
    if args.peaks_only:
        return

    low = "bf16" if bf16_pays("cpu") else "fp32"  # what the repository computes in here
    cfg = ModelConfig(args.preset)
    texts = None
    if args.preset == "tiny":
        from bpo.world.sources import build_corpus
        texts = build_corpus(500, 0)["text"]
    model, processor = build_model(cfg, texts, progress=False)
    model.model.vision_tower.requires_grad_(False)  # stage 2: the tower is frozen, its features cached
    batch = make_batch(model, processor, cfg)
    n_labelled = int((batch[3][:, 1:] != IGNORE_INDEX).sum())
    print(f"Training step: batch {BATCH} x {SEQ} tokens ({cfg.n_image_tokens} image tokens, "
          f"{n_labelled / BATCH:.0f} labelled per row), {low} compute, fused AdamW, clip 1.0 (the training loop itself); "
          f"median of {args.steps} steps after {args.warmup} warm-up.\n")
    rows = []
    compute_peak = peak[torch.bfloat16 if low == "bf16" else torch.float32]
    for name, lora in (("full FT (fp32 master)", False), (f"LoRA r=64, frozen {low} LM", True)):
        m = to_lora(model) if lora else model
        trainable = count_params(m, trainable=True)
        step = statistics.median(time_steps(m, batch, args.steps, args.warmup))
        flops, what = train_flops(m, batch[0], batch[3], lora)
        rows.append((name, trainable, step, flops, what))
        del m
    print(f"| variant | trainable params | s/step | tokens/s | achieved GFLOP/s | share of {low} peak |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, trainable, step, flops, _ in rows:
        print(f"| {name} | {trainable / 1e6:.1f}M | {step:.2f} | {BATCH * SEQ / step:,.0f} "
              f"| {flops / step / 1e9:,.0f} | {flops / step / compute_peak:.0%} |")
    print("\nFLOPs counted per step (matmuls only; embedding lookups, norms, softmax, optimizer not counted):")
    for name, _, _, flops, what in rows:
        print(f"- {name}: {flops / 1e12:.2f} TFLOP = {what}")
    print()

    model.eval()
    images, questions = gen_inputs(cfg, GEN_PROMPTS)
    seq_n = min(args.sequential, GEN_PROMPTS)
    gen = {}
    variants = {"fp32 weights": model}
    if low == "bf16":
        variants = {"fp32 weights + bf16 autocast": model, "bf16 weights": copy.deepcopy(model).to(torch.bfloat16)}
    for label, m in variants.items():
        generate(m, processor, images[:2], questions[:2], max_new_tokens=2, progress=False)  # warm-up
        batched = time_generate(m, processor, images, questions, batch_size=GEN_PROMPTS)
        single = time_generate(m, processor, images[:seq_n], questions[:seq_n], batch_size=1)
        gen[label] = (GEN_PROMPTS * GEN_TOKENS / batched, seq_n * GEN_TOKENS / single)
    print(f"Generation: greedy, {GEN_TOKENS} new tokens per prompt (EOS suppressed until then, so every "
          f"prompt makes exactly {GEN_TOKENS}); batched = {GEN_PROMPTS} prompts in one batch, one by one = "
          f"the first {seq_n} prompts with batch_size 1.\n")
    print("| model weights | batched tokens/s | one-by-one tokens/s | speed-up |\n| --- | ---: | ---: | ---: |")
    for label, (b, s) in gen.items():
        print(f"| {label} | {b:,.1f} | {s:,.1f} | {b / s:.1f}x |")
    print()

    vb = base_training_config(args.preset).vision_batch if args.preset in ("tiny", "smol") else 32
    rates = vision_rates(model, vb, args.vision_steps, args.warmup)
    print(f"Vision pre-training (supervised, {cfg.image_size}px images, batch {vb}; rendering is single-threaded "
          f"numpy/PIL, the step uses every thread; {args.vision_steps} steps after {args.warmup} warm-up):\n")
    print("| part | images/s |\n| --- | ---: |")
    for part, r in rates.items():
        print(f"| {part} | {r:,.0f} |")
    print(f"\nTotal {time.perf_counter() - wall:.0f} s; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
