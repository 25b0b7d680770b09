"""Kill ``reproduce`` in the middle of 04 and start it again (tiny): it resumes the interrupted run
from its epoch checkpoint, leaves 00-03's artefacts alone, and ends with the numbers of an
uninterrupted run. Runs after test_notebooks.py, whose artefacts it reuses (it makes them itself
when run alone)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from bpo.paths import data_dir
from test_notebooks import SMALL

# epochs 3: a configuration no other test trains, so 04's runs start from nothing here
PARAMS = {**SMALL["04_training"], "n_seeds": 1, "epochs": 3}


def _reproduce(only: str, params: dict) -> list[str]:
    return [sys.executable, "-m", "bpo.reproduce", "--preset", "tiny", "--only", only,
            *[f"-p{k}={v!r}" for k, v in params.items()]]  # repr: "0,500,999" must stay a string, not a tuple


def _files(*stages) -> dict[str, int]:
    root = data_dir("tiny")
    return {str(p): p.stat().st_mtime_ns for s in stages for p in (root / s).rglob("*") if p.is_file()}


@pytest.mark.notebook
def test_a_killed_reproduce_resumes_04_without_redoing_00_to_03_and_gives_the_same_numbers(tmp_path):
    from bpo.pipeline import load_base, load_preference_pairs
    from bpo.presets import tuning_config
    from bpo.training.pairs import select_pairs
    from bpo.training.tuning import train_tuning

    if not (data_dir("tiny") / "preference").exists():  # run alone: make 00-03's artefacts first
        for nb in ("00", "01", "02", "03"):
            name = next(k for k in SMALL if k.startswith(nb))
            subprocess.run(_reproduce(nb, SMALL[name]), check=True, capture_output=True)
    upstream = _files("world", "base", "preference")
    tuning = data_dir("tiny") / "tuning"
    before = set(tuning.glob("*/checkpoint.pt")) if tuning.exists() else set()
    proc = subprocess.Popen(_reproduce("04", PARAMS), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)  # its own group: the kernel dies with it
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        paused = set(tuning.glob("*/checkpoint.pt")) - before
        if paused:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "04 ended before any epoch checkpoint appeared: nothing to kill"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert paused, "no epoch checkpoint appeared within 300 s"
    interrupted = next(iter(paused)).parent
    assert not (interrupted / "log.json").exists()  # it was killed mid-run
    saved = [r["seconds"] for r in torch.load(interrupted / "checkpoint.pt", weights_only=False)["log"]]

    subprocess.run(_reproduce("04", PARAMS), check=True, capture_output=True)
    assert _files("world", "base", "preference") == upstream  # 00-03 were not redone
    log = json.loads((interrupted / "log.json").read_text())
    # the finished epochs were read from the checkpoint, not trained again: their timings are the first run's
    assert [r["seconds"] for r in log[:len(saved)]] == saved and len(log) > len(saved)

    # the same run, uninterrupted, in a fresh directory
    base = load_base("tiny", size_scale=PARAMS["size_scale"], train_scale=PARAMS["train_scale"], progress=False)
    pairs, report, _ = load_preference_pairs(base, 0, PARAMS["size_scale"], PARAMS["train_scale"], contrastive=True)
    method = json.loads((interrupted / "params.json").read_text())["config"]["method"]
    cfg = tuning_config("tiny", method, 0, epochs=3)
    whole = train_tuning(base.model, base.processor, select_pairs(pairs, tuple(report["training_types"])), cfg,
                         tmp_path / "whole", progress=False)
    assert [r["loss"] for r in log] == pytest.approx([r["loss"] for r in whole.log], abs=1e-5)
