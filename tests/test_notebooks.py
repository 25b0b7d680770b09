"""Every notebook runs headlessly through papermill on the tiny preset with small parameters, and
writes the figures and tables it promises, with the content they promise."""

import time

import nbformat
import pandas as pd
import pytest
from PIL import Image

from bpo.paths import figures_dir
from bpo.reproduce import notebooks, run_notebook

# Small parameters per notebook: a new notebook must say here how to run it quickly.
SMALL = {
    "00_world": {"size_scale": 0.02, "n_samples": 8},
    "01_base_mllm": {"size_scale": 0.02, "train_scale": 0.02, "n_examples": 1},
    "02_bias_probing": {"size_scale": 0.02, "train_scale": 0.02, "n_probe": 3, "probe_steps": "0,500,999",
                        "sweep_steps": "999", "n_describe": 2, "n_pope": 3},
    "03_preference_dataset": {"size_scale": 0.02, "train_scale": 0.02, "contrastive": True, "n_examples": 1},
}


def _table(name: str) -> pd.DataFrame:
    return pd.read_csv(figures_dir() / f"{name}_tiny.csv")


def _check_00():
    sources = pd.read_csv(figures_dir() / "table2_world_sources.csv")
    assert len(sources) >= 3 and (sources.select_dtypes("number").fillna(0) >= 0).all().all()


def _check_01():
    scores = _table("base_scores")
    keys = set(zip(scores.benchmark, scores.split))
    assert keys == {(b, s) for s in ("typical", "atypical")
                    for b in ("mmvet", "halbench", "wild", "pope-random", "pope-popular", "pope-adversarial")}
    percent = scores[scores.metric.isin(["accuracy", "yes_ratio", "Total", "truncated_%"])].value
    assert percent.between(0, 100).all() and len(percent) >= 2 * 6
    assert set(_table("base_stages").stage) == {"lm", "vision", "align", "sft"}
    assert set(_table("base_truncation").benchmark) == {b for b, _ in keys}


def _check_02():
    takeover = _table("probing_takeover")
    assert len(takeover) == 3 * 3  # three noise places x the three probe steps asked for
    assert sorted(set(takeover.step)) == [0, 500, 999]
    sweep = _table("noise_effects")
    assert set(sweep.step) == {0, 999} and set(sweep.split) == {"typical", "atypical"}


def _check_03():
    facts = _table("preference_fact_difference")
    assert set(facts.negative_type) == {"image_weakened", "error_injection", "prior_guided", "self_generated",
                                        "contrastive"}
    # 0.02 x 128 ground truths per source = 3 per source, 9 in all, one negative of each type
    assert (facts.negatives == 9).all()
    table2 = _table("table2_preference")
    assert table2[table2.source == "all"].pairs.iloc[0] <= 9 * 5


CHECKS = {"00_world": _check_00, "01_base_mllm": _check_01, "02_bias_probing": _check_02,
          "03_preference_dataset": _check_03}


@pytest.mark.notebook
@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_on_tiny(path):
    assert path.stem in SMALL and path.stem in CHECKS, f"add small parameters and checks for {path.name}"
    start = time.time()
    out = run_notebook(path, "tiny", SMALL[path.stem], progress=False)
    assert out.exists() and out.parent.name == "tiny"
    executed = nbformat.read(out, as_version=4)
    errors = [o for c in executed.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    written = [p for p in figures_dir().glob("*.png") if p.stat().st_mtime >= start - 1]
    assert written, f"{path.name} wrote no figure to {figures_dir()}"
    for png in written:
        with Image.open(png) as image:
            assert min(image.size) >= 200 and image.getextrema() != ((255, 255),) * len(image.getbands()), png.name
    CHECKS[path.stem]()
