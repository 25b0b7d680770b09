"""The evaluation suite: every world benchmark on every scene split, saved as Hugging Face data
sets with the rendered image, so any MLLM's answers can be produced and scored from disk.

A suite is a dict ``"<benchmark>/<scene split>" -> items`` (POPE: ``"pope-<pope split>/<scene
split>"``); items are the plain dicts of ``bpo.evaluation.benchmarks``.
"""

from __future__ import annotations

import io
import json
from dataclasses import asdict

import datasets
import pandas as pd

from bpo.cache import atomic_dir, save_dataset, stage_dir, stage_params
from bpo.evaluation.benchmarks import (
    POPE_SPLITS, SCENE_SPLITS, build_halbench, build_mmvet, build_pope, build_wild,
)
from bpo.evaluation.config import SuiteConfig
from bpo.evaluation.halbench import score_halbench
from bpo.evaluation.mmvet import score_mmvet
from bpo.evaluation.pope import score_pope
from bpo.evaluation.wild import score_wild
from bpo.world.render import render
from bpo.world.scene import Scene

SUITE_FEATURES = datasets.Features({
    "item_id": datasets.Value("string"),
    "image": datasets.Image(),
    "question": datasets.Value("string"),
    "item": datasets.Value("string"),  # the whole item as JSON: what the judge needs
})


def build_suite(cfg: SuiteConfig) -> dict[str, list[dict]]:
    suite = {}
    for split in cfg.scene_splits:
        suite[f"mmvet/{split}"] = build_mmvet(cfg.n_mmvet, cfg.seed, split, cfg.role)
        suite[f"halbench/{split}"] = build_halbench(cfg.n_halbench, cfg.seed, split, cfg.role)
        suite[f"wild/{split}"] = build_wild(cfg.n_wild, cfg.seed, split, cfg.role)
        for pope_split in POPE_SPLITS:
            suite[f"pope-{pope_split}/{split}"] = build_pope(cfg.n_pope, cfg.seed, pope_split, split, role=cfg.role)
    return suite


def composition_frame(suite: dict[str, list[dict]]) -> pd.DataFrame:
    """Items and distinct images per benchmark and scene split."""
    rows = []
    for key, items in suite.items():
        bench, split = key.split("/")
        rows.append({"benchmark": bench, "split": split, "items": len(items),
                     "images": len({it["scene"] for it in items})})
    return pd.DataFrame(rows)


def benchmark_of(key: str) -> str:
    """'pope-adversarial/atypical' -> 'pope'."""
    return key.split("/")[0].split("-")[0]


_JUDGES = {"mmvet": score_mmvet, "halbench": score_halbench, "wild": score_wild, "pope": score_pope}


def summary_rows(key: str, summary: dict) -> list[dict]:
    """A judge's summary as long-format rows (metric, value), one per headline number."""
    bench, split = key.split("/")
    extra = {m: summary[m] for m in ("truncated_%",) if m in summary}
    if benchmark_of(key) == "pope":
        summary = {m: summary["all"][m] for m in ("accuracy", "precision", "recall", "f1", "yes_ratio")}
    elif benchmark_of(key) == "halbench":
        summary = {"CHAIR_s": summary["response_hall"], "CHAIR_i": summary["object_hall"],
                   "recall": summary["object_recall"]}
    summary = {**summary, **extra}
    return [{"benchmark": bench, "split": split, "metric": m, "value": float(v)}
            for m, v in summary.items() if m != "counts"]


def score_suite(suite: dict[str, list[dict]], responses: dict[str, list[str]],
                truncated: dict[str, list[bool]] | None = None) -> pd.DataFrame:
    """Judge every benchmark that has responses; long format: benchmark, split, metric, value.
    With ``truncated`` (per response, cut at its token budget?) each benchmark also gets the
    metric ``truncated_%``: a judge reads a cut answer as if it were complete."""
    missing = [k for k in responses if k not in suite]
    if missing:
        raise ValueError(f"responses for benchmarks not in the suite: {missing}")
    rows = []
    for key, answers in responses.items():
        _, summary = _JUDGES[benchmark_of(key)](suite[key], answers)
        if truncated is not None:
            if len(truncated[key]) != len(answers):
                raise ValueError(f"score_suite: {key} has {len(answers)} responses but {len(truncated[key])} "
                                 "truncation flags")
            summary = {**summary, "truncated_%": 100 * sum(truncated[key]) / max(1, len(answers))}
        rows += summary_rows(key, summary)
    return pd.DataFrame(rows)


def _png(scene_json: str, size: int, cache: dict) -> bytes:
    # POPE asks several questions about one image: render and encode it once.
    if scene_json not in cache:
        buf = io.BytesIO()
        render(Scene.from_json(scene_json), size).save(buf, format="PNG")
        cache[scene_json] = buf.getvalue()
    return cache[scene_json]


def suite_dataset(items: list[dict], image_size: int) -> datasets.Dataset:
    cache: dict[str, bytes] = {}
    rows = [{"item_id": it["item_id"], "image": {"bytes": _png(it["scene"], image_size, cache), "path": None},
             "question": it["question"], "item": json.dumps(it, sort_keys=True)} for it in items]
    return datasets.Dataset.from_list(rows, features=SUITE_FEATURES)


def items_of(ds: datasets.Dataset) -> list[dict]:
    """The judge's items back from a saved benchmark data set."""
    return [json.loads(x) for x in ds["item"]]


def load_or_build_suite(preset: str, cfg: SuiteConfig) -> dict[str, datasets.Dataset]:
    """The suite of ``cfg`` with rendered images: loaded from ``data/<preset>/suite/<key>``, else built."""
    target = stage_dir(preset, "suite", asdict(cfg))
    if not target.exists():
        with atomic_dir(target, stage_params("suite", asdict(cfg))) as tmp:
            for key, items in build_suite(cfg).items():
                save_dataset(suite_dataset(items, cfg.image_size), tmp / key.replace("/", "__"))
    return {p.name.replace("__", "/"): datasets.load_from_disk(p) for p in sorted(target.iterdir()) if p.is_dir()}
