"""Stage artefacts keyed by their parameters, written atomically.

A stage writes into ``data/<preset>/<stage>/<key>/`` where ``key`` is a hash of the parameters that
made it, next to a ``params.json`` that says what they were. Writes go to a temporary sibling that
is renamed into place only when complete, so an interrupted run never leaves a half-written
artefact that a later run would trust.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from bpo.paths import data_dir


def params_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def stage_dir(preset: str, stage: str, params: dict) -> Path:
    """Where the artefact of ``stage`` made with ``params`` lives (it may not exist yet)."""
    return data_dir(preset) / stage / params_key(params)


def save_dataset(ds, path: Path) -> None:
    """``save_to_disk`` without its per-save progress bar (our own bars report the long work)."""
    import datasets

    datasets.disable_progress_bars()
    try:
        ds.save_to_disk(path)
    finally:
        datasets.enable_progress_bars()


@contextmanager
def atomic_dir(target: Path, params: dict | None = None):
    """Yield a temporary directory that becomes ``target`` only if the block completes."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        if params is not None:
            (tmp / "params.json").write_text(json.dumps(params, indent=2, sort_keys=True))
        shutil.rmtree(target, ignore_errors=True)  # a stale copy from an older run of the same key
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
