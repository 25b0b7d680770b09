"""Every notebook runs headlessly through papermill on the tiny preset with small parameters, and
writes its figures."""

import time

import pytest

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


@pytest.mark.notebook
@pytest.mark.parametrize("path", notebooks(), ids=lambda p: p.stem)
def test_notebook_runs_on_tiny(path):
    assert path.stem in SMALL, f"add small parameters for {path.name} to tests/test_notebooks.py"
    start = time.time()
    out = run_notebook(path, "tiny", SMALL[path.stem], progress=False)
    assert out.exists() and out.parent.name == "tiny"
    written = [p.name for p in figures_dir().glob("*.png") if p.stat().st_mtime >= start - 1]
    assert written, f"{path.name} wrote no figure to {figures_dir()}"
