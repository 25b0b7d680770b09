"""Stage artefacts keyed by their parameters, written atomically.

A stage writes into ``data/<preset>/<stage>/<key>/`` where ``key`` is a hash of the parameters that
made it *and of the source of the code that made it* (:data:`STAGE_CODE`), next to a
``params.json`` that says what they were. Editing a stage's code therefore gives it a new key: an
artefact made by older code is never reused (a stale world once survived a change to the captions).
The code is read as its syntax tree without docstrings, so comments, blank lines and docstrings can
change without throwing away a base model that took an hour to train. Writes go to a temporary
sibling that is renamed into place only when complete, so an interrupted run never leaves a
half-written artefact that a later run would trust.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import importlib.util
import json
import os
import shutil
from contextlib import contextmanager
from pathlib import Path

from bpo.paths import data_dir
from bpo.precision import bf16_pays


# The modules (or whole packages) whose source makes each stage's artefact. A stage's key also
# holds the keys of the stages it reads (a base model's key holds its world's), so a change
# upstream reaches every artefact downstream.
STAGE_CODE: dict[str, tuple[str, ...]] = {
    "world": ("bpo.world",),
    "suite": ("bpo.world", "bpo.evaluation.benchmarks", "bpo.evaluation.suite"),
    "base": ("bpo.models.chat", "bpo.models.config", "bpo.models.forward", "bpo.models.llava", "bpo.models.lm",
             "bpo.training"),
    "eval": ("bpo.models.generate", "bpo.evaluation.run", "bpo.evaluation.config"),
    "preference": ("bpo.preference", "bpo.models.generate", "bpo.models.scoring", "bpo.noise", "bpo.evaluation.text",
                   "bpo.evaluation.facts"),
    "vcd": ("bpo.models.generate", "bpo.evaluation.run", "bpo.evaluation.config", "bpo.evaluation.vcd",
            "bpo.preference.contrastive", "bpo.noise"),
    "tuning": ("bpo.training.tuning", "bpo.training.tuning_config", "bpo.training.pairs", "bpo.training.data",
               "bpo.training.loop", "bpo.training.lora_dropout", "bpo.models.chat", "bpo.models.forward", "bpo.noise"),
}
# Stages that only draw and render data: the same on every machine, so their keys hold no precision.
DATA_STAGES = ("world", "suite")
# Modules inside a package of STAGE_CODE that do not make that stage: the LoRA fine-tuning lives in
# bpo.training beside the base model's stages but does not change how a base model is trained.
NOT_STAGE_CODE: dict[str, tuple[str, ...]] = {
    "base": ("bpo.training.tuning", "bpo.training.tuning_config", "bpo.training.pairs", "bpo.training.lora_dropout"),
}


def _sources(module: str) -> list[Path]:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ValueError(f"STAGE_CODE names {module!r}, which is not an importable module")
    origin = Path(spec.origin)
    return sorted(origin.parent.rglob("*.py")) if spec.submodule_search_locations else [origin]


@functools.lru_cache(maxsize=512)  # a run asks for keys many times; parsing is the slow part
def _code(source: bytes) -> str:
    """What in a source file can change an artefact: its syntax tree without line numbers,
    comments or docstrings."""
    tree = ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:]
    return ast.dump(tree)


def code_version(modules: tuple[str, ...], exclude: tuple[str, ...] = ()) -> str:
    """A hash of the code of ``modules`` (a package counts with all its modules but those named in
    ``exclude``), read as :func:`_code` reads it."""
    skip = {_sources(m)[0] for m in exclude}
    digest = hashlib.sha256()
    for module in modules:
        for path in _sources(module):
            if path in skip:
                continue
            digest.update(f"{module}:{path.name}\0{_code(path.read_bytes())}".encode())
    return digest.hexdigest()[:12]


def params_key(params: dict) -> str:
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()[:12]


def stage_params(stage: str, params: dict) -> dict:
    """``params`` with the version of the code that makes ``stage`` ("eval/base" is an "eval" stage)
    and, for a stage that computes with a model, whether it computes in bf16 (``bpo.precision``)."""
    kind = stage.split("/")[0]
    if kind not in STAGE_CODE:
        raise ValueError(f"stage {stage!r} has no entry in bpo.cache.STAGE_CODE: say which code makes it")
    out = {**params, "code": code_version(STAGE_CODE[kind], NOT_STAGE_CODE.get(kind, ()))}
    if kind not in DATA_STAGES:
        out["cpu_bf16"] = bf16_pays("cpu")
    return out


def stage_dir(preset: str, stage: str, params: dict) -> Path:
    """Where the artefact of ``stage`` made with ``params`` by the current code lives (it may not
    exist yet)."""
    return data_dir(preset) / stage / params_key(stage_params(stage, params))


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
