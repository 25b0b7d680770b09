"""The one place that decides where things live: the project root, ``data/<preset>/...``,
``figures/`` and the executed notebooks in ``runs/<preset>/``.

``BPO_DATA_DIR``, ``BPO_FIGURES_DIR`` and ``BPO_RUNS_DIR`` move them elsewhere (the test suite does,
so a test run never touches the repository's own artefacts).
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS_DIR = PROJECT_ROOT / "notebooks"


def _dir(env: str, default: Path) -> Path:
    path = Path(os.environ.get(env) or default)
    path.mkdir(parents=True, exist_ok=True)
    return path


def data_dir(preset: str | None = None) -> Path:
    root = _dir("BPO_DATA_DIR", PROJECT_ROOT / "data")
    return _dir("", root / preset) if preset else root


def figures_dir() -> Path:
    return _dir("BPO_FIGURES_DIR", PROJECT_ROOT / "figures")


def runs_dir(preset: str) -> Path:
    return _dir("", _dir("BPO_RUNS_DIR", PROJECT_ROOT / "runs") / preset)
