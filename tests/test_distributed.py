"""Data-parallel BPO with accelerate (bpo.distributed): shards of a global batch give the batch's
gradient, two real processes (gloo, CPU) train what one does, one process trains what
train_tuning does, and the launch configs and command are what accelerate accepts."""

import json
import os
import shlex
import socket
import subprocess
import sys

import pytest
import torch
import yaml

from bpo.distributed import (CONFIG_DIR, build_parser, launch_command, shard_share, split_batch,
                             train_tuning_distributed)
from bpo.paths import PROJECT_ROOT
from bpo.preference.dataset import Candidate, Negative, build_pairs
from bpo.training.pairs import compute_reference, encode_pairs
from bpo.training.tuning import attach_lora, step_loss, train_tuning
from bpo.training.tuning_config import TuningConfig
from bpo.world.render import render
from bpo.world.scene import sample_scenes

# 7 pairs in batches of 3: every epoch has two batches split 2/1 over two processes (unequal shares)
# and one of a single pair (the second process runs an empty shard); no dropout, fp32: deterministic.
CFG = dict(epochs=2, batch_size=3, lr=2e-3, lora_r=4, lora_alpha=8, lora_dropout=0.0, bf16=False)
N_PAIRS = 7


def cfg(**kw):
    return TuningConfig(**{**CFG, **kw})


def _cli(c: TuningConfig) -> list[str]:
    return ["--epochs", str(c.epochs), "--batch-size", str(c.batch_size), "--lr", str(c.lr), "--lora-r",
            str(c.lora_r), "--lora-alpha", str(c.lora_alpha), "--lora-dropout", str(c.lora_dropout),
            "--bf16" if c.bf16 else "--no-bf16"]


@pytest.fixture(scope="module")
def saved(image_dependent_tiny, tmp_path_factory):
    """The tiny LLaVA and its processor saved and loaded back (what the worker processes see), and
    pairs whose chosen answers differ in length (SFT's token shares differ from its pair shares)."""
    from bpo.models.llava import load_pretrained

    model, processor = image_dependent_tiny
    root = tmp_path_factory.mktemp("distributed")
    model.save_pretrained(root / "model")
    processor.save_pretrained(root / "model")
    cands = [Candidate(f"c{i}", "Describe the image.", render(s, 128),
                       (f"There is a red cup and {i + 2} dogs." + " The dogs play." * i,),
                       (Negative(f"There is a blue car near {i + 1} cats.", "image_weakened", "pixels", 500),
                        Negative("A cat sits on the left.", "prior_guided")), "detail", f"s{i}")
             for i, s in enumerate(sample_scenes(3, "distributed-test", 4))]
    ds = build_pairs(cands)[0].select(range(N_PAIRS))
    ds.save_to_disk(root / "pairs")
    loaded, processor = load_pretrained(root / "model")
    return root, loaded, processor, ds


@pytest.fixture(scope="module")
def single(saved):
    """train_tuning's run of CFG: the single-process truth."""
    root, model, processor, ds = saved
    return train_tuning(model, processor, ds, cfg(), root / "train_tuning", progress=False)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(root, n: int, name: str) -> tuple[list[dict], dict]:
    out = root / name
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(CONFIG_DIR / "cpu_2proc.yaml"),
           "--num_processes", str(n), "--main_process_port", str(_port()), "-m", "bpo.distributed",
           "--model", str(root / "model"), "--pairs", str(root / "pairs"), "--out", str(out), "--threads", "1",
           "--no-progress", *_cli(cfg())]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=PROJECT_ROOT)
    assert done.returncode == 0, f"{n}-process launch failed:\n{done.stderr[-4000:]}"
    assert sorted(p.name for p in out.iterdir()) == ["adapter", "config.json", "log.json"]
    assert json.loads((out / "config.json").read_text())["batch_size"] == CFG["batch_size"]
    return json.loads((out / "log.json").read_text()), _adapter(out)


def _adapter(directory) -> dict:
    from safetensors.torch import load_file

    return load_file(directory / "adapter" / "adapter_model.safetensors")


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def _rel_diff(a: dict, b: dict) -> float:
    return (sum((a[k] - b[k]).norm() ** 2 for k in a) / sum(b[k].norm() ** 2 for k in b)).sqrt().item()


def test_split_batch_cuts_contiguous_near_equal_shards():
    assert split_batch([5, 6, 7], 2) == [[5, 6], [7]]
    assert split_batch([1, 2, 3, 4, 5, 6, 7, 8], 3) == [[1, 2, 3], [4, 5, 6], [7, 8]]
    assert split_batch([9], 2) == [[9], []]
    assert split_batch([4, 2], 1) == [[4, 2]]


def test_shares_make_the_shard_gradients_sum_to_the_batch_gradient(saved):
    """The identity the multi-process step rests on (DDP averages, so each rank scales its loss
    by world * share): sum over shards of share * grad(loss(shard)) == grad(loss(batch)), for
    DPO (pair means) and SFT (token means), with a 2/1 split; the plain mean does not."""
    root, base, processor, ds = saved
    pad = processor.tokenizer.pad_token_id
    pairs = encode_pairs(base, processor, ds, 320, bf16=False, progress=False)
    reference = compute_reference(base, pairs, pad, bf16=False, progress=False)
    import copy

    model = attach_lora(copy.deepcopy(base).float(), cfg())
    with torch.no_grad():  # B = 0 would make the policy the reference: move off it
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(1))
    params = [p for p in model.parameters() if p.requires_grad]
    batch = [0, 2, 4]  # chosen answers of 8, 11 and 14 words (candidates c0, c1, c2)

    def grad(c, idx, weight):
        loss, _ = step_loss(model.get_base_model(), pairs, idx, reference, c, pad)
        return torch.cat([g.flatten() for g in torch.autograd.grad(loss * weight, params)])

    for method in ("bpo", "sft"):
        c = cfg(method=method)
        full = grad(c, batch, 1.0)
        shards = split_batch(batch, 2)
        shares = [shard_share(c, pairs, s, batch) for s in shards]
        assert sum(shares) == pytest.approx(1.0)
        weighted = sum(grad(c, s, w) for s, w in zip(shards, shares))
        plain = sum(grad(c, s, 0.5) for s in shards)
        assert (weighted - full).norm() / full.norm() < 1e-5, method
        assert (plain - full).norm() / full.norm() > 0.05, method
    assert shares != [2 / 3, 1 / 3]  # SFT's token shares are not pair shares here
    with pytest.raises(ValueError, match="sft_weight"):
        shard_share(cfg(sft_weight=0.5), pairs, [0], [0, 2])


def test_two_processes_train_what_one_process_and_train_tuning_train(saved, single):
    root = saved[0]
    log2, w2 = _launch(root, 2, "two")
    log1, w1 = _launch(root, 1, "one")
    steps = CFG["epochs"] * -(-N_PAIRS // CFG["batch_size"])
    assert len(single.log) == len(log1) == len(log2) == steps
    assert list(log1[0]) == list(log2[0]) == list(single.log[0])  # train_tuning's per-step keys
    assert log2[0]["loss"] == pytest.approx(0.6931471805599453, abs=1e-6)  # per-rank reference: exact at step 0
    for a, b, t in zip(log1, log2, single.log):
        assert (a["step"], a["epoch"], a["tokens"]) == (b["step"], b["epoch"], b["tokens"]) == (t["step"], t["epoch"],
                                                                                              t["tokens"])
        assert a["loss"] == t["loss"]  # one process under accelerate is train_tuning, bit for bit
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-4, abs=1e-5)  # measured: 3.5e-5 rel, 9e-7 abs
        for key in ("rewards/margins", "logps/chosen", "logps/rejected"):
            assert b[key] == pytest.approx(a[key], rel=1e-4, abs=1e-5), key
    assert log2[-1]["loss"] < 0.5 * log2[0]["loss"]  # it learned
    w = _adapter(single.directory)
    assert _max_diff(w1, w) == 0.0
    # Adam divides by the gradient's scale: where a gradient is nearly zero (lora_A while B is still
    # ~0), float32 rounding of the shards' other shapes moves a weight by a fraction of a step (3e-4 at
    # lr 2e-3 in 6 steps; 6e-5 of the adapter's norm). Averaging the ranks' losses unweighted, DDP's
    # plain mean, moves them by 1e-2 (7e-2 of the norm).
    assert _max_diff(w2, w1) < 1e-3
    assert _rel_diff(w2, w1) < 1e-3


def test_gradient_checkpointing_changes_nothing(saved, single, tmp_path):
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

    root, model, processor, ds = saved
    # calls of the first layer's MLP: checkpointing runs it again in each backward (a pre-hook: the
    # recomputation stops, before the MLP returns, once it has the tensors backward needs)
    calls = []
    hook = model.model.language_model.layers[0].mlp.register_forward_pre_hook(lambda *_: calls.append(1))
    accelerator = Accelerator(mixed_precision="no", cpu=True)
    try:
        run = train_tuning_distributed(model, processor, ds, cfg(), tmp_path / "gc", accelerator, progress=False,
                                       gradient_checkpointing=True)
        steps = len(run.log)
        assert len(calls) == steps // CFG["epochs"] + 2 * steps  # the reference's batches, then 2 per step
        assert [r["loss"] for r in run.log] == [r["loss"] for r in single.log]
        assert _max_diff(_adapter(tmp_path / "gc"), _adapter(single.directory)) == 0.0
        with pytest.raises(ValueError, match="mixed_precision"):
            train_tuning_distributed(model, processor, ds, cfg(bf16=True), tmp_path / "bf16", accelerator)
    finally:
        hook.remove()
        AcceleratorState._reset_state(True)


def test_accelerate_configs_parse_and_name_their_zero_stage():
    from accelerate.commands.config.config_args import load_config_from_file

    names = {p.stem for p in CONFIG_DIR.glob("*.yaml")}
    assert names == {"1gpu", "8gpu_zero2", "8gpu_zero3", "cpu_2proc"}
    for name in names:
        raw = yaml.safe_load((CONFIG_DIR / f"{name}.yaml").read_text())
        parsed = load_config_from_file(str(CONFIG_DIR / f"{name}.yaml"))  # accelerate's own reader
        assert parsed.num_processes == raw["num_processes"]
    assert load_config_from_file(str(CONFIG_DIR / "1gpu.yaml")).mixed_precision == "bf16"
    cpu = yaml.safe_load((CONFIG_DIR / "cpu_2proc.yaml").read_text())
    assert (cpu["num_processes"], cpu["use_cpu"], cpu["mixed_precision"]) == (2, True, "no")
    for stage in (2, 3):
        raw = yaml.safe_load((CONFIG_DIR / f"8gpu_zero{stage}.yaml").read_text())
        assert raw["distributed_type"] == "DEEPSPEED" and raw["num_processes"] == 8
        assert "mixed_precision" not in raw  # accelerate refuses it next to a deepspeed_config_file
        ds = json.loads((PROJECT_ROOT / raw["deepspeed_config"]["deepspeed_config_file"]).read_text())
        assert ds["zero_optimization"]["stage"] == stage
        assert ds["bf16"]["enabled"] is True
        for key in ("train_micro_batch_size_per_gpu", "train_batch_size", "gradient_accumulation_steps"):
            assert ds[key] == "auto", key
    assert {p.name for p in CONFIG_DIR.glob("*.json")} == {"zero2.json", "zero3.json"}


@pytest.mark.parametrize("config, n", [("1gpu", 1), ("8gpu_zero2", 8), ("8gpu_zero3", 8), ("cpu_2proc", 2)])
def test_launch_command_is_what_accelerate_launch_accepts(config, n, monkeypatch):
    from accelerate.commands.launch import launch_command_parser

    monkeypatch.setattr(sys, "argv", ["accelerate", "launch", "--help"])  # its help hides flags by sys.argv

    line = launch_command(config, n, ["--model", "models/llava-1.5-7b", "--pairs", "data/pairs", "--out", "runs/bpo",
                                      "--batch-size", "32", "--gradient-checkpointing"])
    tokens = shlex.split(line)
    assert tokens[:2] == ["accelerate", "launch"]
    parser = launch_command_parser()
    help_text = parser.format_help()  # what `accelerate launch --help` prints: every flag
    launch_flags = [t for t in tokens[2:tokens.index("bpo.distributed")] if t.startswith("-")]
    assert launch_flags == ["--config_file", "--num_processes", "-m"]
    assert all(flag in help_text for flag in launch_flags)
    args = parser.parse_args(tokens[2:])
    assert (PROJECT_ROOT / args.config_file).is_file() and args.num_processes == n
    assert args.module and args.training_script == "bpo.distributed"
    ours = build_parser().parse_args(args.training_script_args)
    assert (ours.batch_size, ours.gradient_checkpointing, ours.bf16) == (32, True, True)
    with pytest.raises(FileNotFoundError, match="8gpu_zero2"):
        launch_command("16gpu", 16)
