"""The LoRA trainer on a GPU: the same run on CUDA and on the CPU agrees, and resuming on CUDA gives
the uninterrupted run's adapter. Skipped without CUDA (CI has none); run on a lent GPU machine."""

import copy

import pytest
import torch

from bpo.preference.dataset import Candidate, Negative, build_pairs
from bpo.training.tuning import train_tuning
from bpo.training.tuning_config import TuningConfig
from bpo.world.render import render
from bpo.world.scene import sample_scenes

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def pairs():
    scenes = sample_scenes(3, "tuning-cuda-test", 6)
    cands = [Candidate(f"c{i}", "Describe the image.", render(s, 128), (f"There is a red cup and {i + 2} dogs.",),
                       (Negative(f"There is a blue car near {i + 1} cats.", "image_weakened", "pixels", 500),),
                       "detail", f"s{i}") for i, s in enumerate(scenes)]
    return build_pairs(cands)[0]


def cfg(**kw):
    # fp32 and no dropout: the two devices then differ by kernel rounding alone
    return TuningConfig(**{"epochs": 2, "batch_size": 3, "lr": 2e-3, "lora_r": 4, "lora_alpha": 8,
                           "lora_dropout": 0.0, "bf16": False, **kw})


def test_a_cuda_run_matches_the_cpu_run(image_dependent_tiny, pairs, tmp_path):
    model, processor = image_dependent_tiny
    cpu = train_tuning(model, processor, pairs, cfg(), tmp_path / "cpu", progress=False)
    gpu_model = copy.deepcopy(model).to("cuda")
    gpu = train_tuning(gpu_model, processor, pairs, cfg(), tmp_path / "cuda", tmp_path / "ref.pt", progress=False)
    assert next(p for p in gpu.model.parameters() if p.requires_grad).device.type == "cuda"
    assert len(gpu.log) == len(cpu.log) == 4
    for a, b in zip(cpu.log, gpu.log):
        assert b["loss"] == pytest.approx(a["loss"], abs=2e-3), (a["step"], a["loss"], b["loss"])
        assert b["logps/chosen"] == pytest.approx(a["logps/chosen"], rel=1e-3, abs=1e-2)
    assert cpu.log[-1]["loss"] < cpu.log[0]["loss"]  # it learned on both devices
    # bf16 autocast runs on CUDA too, and its first step is log 2 (policy = reference)
    bf16 = train_tuning(gpu_model, processor, pairs, cfg(bf16=True, epochs=1), tmp_path / "bf16", progress=False)
    assert bf16.log[0]["loss"] == pytest.approx(0.693147, abs=1e-4)


def test_resuming_on_cuda_gives_the_uninterrupted_adapter(image_dependent_tiny, pairs, tmp_path):
    model, processor = image_dependent_tiny
    gpu_model = copy.deepcopy(model).to("cuda")
    whole = train_tuning(gpu_model, processor, pairs, cfg(lora_dropout=0.05), tmp_path / "whole", progress=False)
    paused = train_tuning(gpu_model, processor, pairs, cfg(lora_dropout=0.05), tmp_path / "part", progress=False,
                          stop_after_epoch=1)
    assert not paused.finished
    resumed = train_tuning(gpu_model, processor, pairs, cfg(lora_dropout=0.05), tmp_path / "part", progress=False)
    a = {k: v for k, v in whole.model.state_dict().items() if "lora_" in k}
    b = {k: v for k, v in resumed.model.state_dict().items() if "lora_" in k}
    assert a.keys() == b.keys() and a
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=1e-4, atol=1e-5, msg=k)
