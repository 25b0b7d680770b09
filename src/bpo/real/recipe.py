"""The paper's pipeline on real data, for LLaVA-1.5 with the user's own weights and data: a recipe
of five cached stages, driven by one YAML file (``configs/recipes/llava-1.5-7b.yaml``)::

    python -m bpo.real.recipe STAGE --config configs/recipes/llava-1.5-7b.yaml [--set key=value ...]

STAGE is one of ``negatives | pairs | train | answer | score | all``; each writes under the
config's ``output`` folder:

- ``negatives``: ``n`` ground truths per source (LLaVA conversation files, :mod:`bpo.real.conversations`),
  one negative of each type per ground truth (image-weakened sampling and error injection by the LM,
  :mod:`bpo.preference.negatives`), written as the released BPO JSON ``negatives/bpo.json`` (images
  referenced by path, never copied) and ``negatives/report.json``. The work is done in chunks saved
  under ``negatives/parts/``, so a killed run resumes where it stopped.
- ``pairs``: the released JSON (ours, or the user's copy of the released data: ``pairs_json``) read
  with :func:`bpo.real.preference.load_released_pairs`, expanded by :func:`build_pairs` into
  ``pairs/dataset`` (``datasets.save_to_disk``) and ``pairs/report.json``.
- ``train``: LoRA BPO (or SFT) with :func:`bpo.training.tuning.train_tuning` on one device into
  ``train/``; ``train/launch.sh`` holds the ``accelerate launch`` line for 8 GPUs with ZeRO-2, which
  writes the same ``train/`` (run it instead, then go on with ``answer``).
- ``answer``: the base and the tuned model (adapter merged) answer every configured benchmark,
  greedily and in batches: ``answer/{base,tuned}/{benchmark}.json``.
- ``score``: POPE and Object HalBench (CHAIR) by rules, MM-Vet and LLaVA-Bench-in-the-Wild by the
  LLM judge named by ``BPO_JUDGE_*`` (skipped, with a printed reason, without it):
  ``score/results.md`` (base vs tuned per benchmark and metric), ``score/results.json`` and the
  per-item records ``score/{base,tuned}/{benchmark}.json``.

A stage whose output exists is skipped without loading anything; every output is written under a
temporary name and renamed, so an interrupted stage never leaves a file that a rerun trusts. The one
exception to "exists = done" is ``score``: a result that skipped the LLM-judged benchmarks is redone
once a judge is configured (the judge's replies are cached on disk, so that costs nothing twice).

The configuration (:class:`~bpo.real.recipe_config.RecipeConfig`: the YAML file, its ``--set``
overrides and their checks) is :mod:`bpo.real.recipe_config`.
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import hashlib
import json
import math
import os
import shlex
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from tqdm.auto import tqdm

from bpo.real.recipe_config import REAL_NEGATIVE_TYPES, ConfigError, RecipeConfig
from bpo.training.tuning_config import TuningConfig

STAGES = ("negatives", "pairs", "train", "answer", "score")
MODELS = ("base", "tuned")
BENCHMARK_NAMES = {"mmvet": "MM-Vet", "wild": "LLaVA-Wild", "pope": "POPE", "halbench": "Object HalBench"}
JUDGED = ("mmvet", "wild")


# ----------------------------------------------------------------------------------------------------
# small helpers: atomic writes, checks, the model


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _clean(value):
    """JSON without NaN (not JSON): NaN -> null; numpy scalars -> Python."""
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _write_json(path: Path, obj) -> None:
    _atomic_write(path, json.dumps(_clean(obj), indent=1, ensure_ascii=False) + "\n")


def _read_json(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


def _require(path: Path, key: str, cfg: RecipeConfig, kind: str = "file") -> Path:
    ok = path.is_dir() if kind == "folder" else path.is_file() if kind == "file" else path.exists()
    if not ok:
        raise FileNotFoundError(f"{cfg.where}: {key}: {kind} {path} does not exist")
    return path


def _require_stage(path: Path, stage: str, needed_by: str) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{needed_by} needs {path}: run the {stage!r} stage first")
    return path


def _say(message: str) -> None:
    print(message, flush=True)


def _skip(stage: str, path: Path) -> None:
    _say(f"{stage}: done already ({path}); delete it to redo")


def _load_model(cfg: RecipeConfig):
    """The base LLaVA-1.5 and its processor on the configured device and dtype."""
    from bpo.models.llava import load_pretrained

    device = cfg.torch_device()
    model, processor = load_pretrained(cfg.model)
    model = model.to(device=device, dtype=cfg.torch_dtype(device)).eval()
    return model, processor


def _free() -> None:
    """Give freed memory back (a 7B copy on a GPU); callers ``del`` their references first."""
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def _open_images(paths: Sequence[str]) -> list:
    """RGB images of ``paths``, each file decoded once (benchmarks ask several questions per image)."""
    from PIL import Image

    cache: dict[str, Image.Image] = {}
    out = []
    for p in paths:
        if p not in cache:
            with Image.open(p) as im:
                cache[p] = im.convert("RGB")
        out.append(cache[p])
    return out


def _relative_to_root(path: str, root: Path) -> str:
    """``path`` relative to ``root`` when inside it (as the released file has them), else absolute."""
    try:
        return Path(path).relative_to(root).as_posix()
    except ValueError:
        return str(path)


# ----------------------------------------------------------------------------------------------------
# stage 1: negatives


def _ground_truths(cfg: RecipeConfig, progress: bool):
    """The sampled ground truths of every source (one frame) and each source's LoadReport."""
    import pandas as pd

    from bpo.real.conversations import load_conversations, sample_ground_truths

    frames, reports = [], {}
    for i, s in enumerate(cfg.sources):
        _require(s.json, f"sources[{i}].json", cfg)
        _require(s.images, f"sources[{i}].images", cfg, "folder")
        frame, report = load_conversations(s.json, s.images, source=s.name, missing="count", progress=progress)
        reports[s.name] = report
        _say(f"negatives: source {s.name}: {report.summary()}")
        for row, image in report.missing_images[:10]:  # never silently: the first few by name, all in report.json
            _say(f"  row {row}: image missing: {image}")
        if len(report.missing_images) > 10:
            _say(f"  ... and {len(report.missing_images) - 10} more missing images (negatives/report.json lists all)")
        n = report.kept if s.n is None else s.n
        if n > report.kept:
            raise ValueError(f"{cfg.where}: sources[{i}].n: asked for {n} records of {s.name} but {s.json} has "
                             f"{report.kept} usable ones ({report.summary()}); lower n or use n: all")
        picked = sample_ground_truths(frame, n, cfg.seed).copy()
        picked["id"] = s.name + "/" + picked["candidate_id"]  # sources may share images (COCO ids)
        picked["max_new_tokens"] = s.max_new_tokens
        frames.append(picked)
    return pd.concat(frames, ignore_index=True), reports


def _plan(cfg: RecipeConfig, gts) -> dict:
    """What the negatives depend on: parts made under another plan must not be mixed in."""
    ids = hashlib.sha256("\n".join(gts["id"]).encode()).hexdigest()
    return {"model": cfg.model, "seed": cfg.seed, "noise_place": cfg.noise_place, "noise_step": cfg.noise_step,
            "temperature": cfg.temperature, "chunk_size": cfg.chunk_size,
            "sources": [{"name": s.name, "json": str(s.json), "n": s.n, "max_new_tokens": s.max_new_tokens}
                        for s in cfg.sources],
            "ground_truths": len(gts), "ids_sha256": ids}


def _chunks(cfg: RecipeConfig, gts) -> list[tuple[str, list[int]]]:
    """(name, row positions) per chunk: each source alone (its own token budget), chunk_size rows."""
    out = []
    for s in cfg.sources:
        rows = [i for i, name in enumerate(gts["source"]) if name == s.name]
        for k in range(0, len(rows), cfg.chunk_size):
            out.append((f"{s.name}-{k // cfg.chunk_size:05d}", rows[k:k + cfg.chunk_size]))
    return out


def _make_negatives(kind: str, model, processor, gts, rows: list[int], cfg: RecipeConfig, seed: int,
                    progress: bool) -> list[str]:
    from bpo.preference.negatives import error_injection_negatives, sample_negatives

    budget = int(gts["max_new_tokens"].iloc[rows[0]])
    questions = [gts["question"].iloc[i] for i in rows]
    if kind == "error_injection":  # the LM alone rewrites the ground truth (Table 1): no image
        answers = [gts["chosen"].iloc[i] for i in rows]
        return error_injection_negatives(model, processor, questions, answers, seed=seed, temperature=cfg.temperature,
                                         max_new_tokens=budget, batch_size=cfg.batch_size, progress=progress)
    images = _open_images([gts["image_path"].iloc[i] for i in rows])
    place = cfg.noise_place if kind == "image_weakened" else None  # self_generated: the clean image
    return sample_negatives(model, processor, images, questions, place, cfg.noise_step, seed=seed,
                            temperature=cfg.temperature, max_new_tokens=budget, batch_size=cfg.batch_size,
                            progress=progress)


def stage_negatives(cfg: RecipeConfig, progress: bool = True) -> Path:
    """``negatives/bpo.json`` (released format) and ``negatives/report.json``; see the module docstring."""
    from bpo.preference.dataset import IMAGE_TOKEN, to_released_type

    out = cfg.stage_dir("negatives")
    target = out / "bpo.json"
    if target.exists():
        _skip("negatives", target)
        return target
    if not cfg.sources:
        raise ConfigError(cfg.where, "sources", "the negatives stage needs ground-truth sources")
    start = time.perf_counter()
    gts, reports = _ground_truths(cfg, progress)
    parts = out / "parts"
    plan = _plan(cfg, gts)
    plan_path = parts / "plan.json"
    if plan_path.exists():
        old = _read_json(plan_path)
        changed = sorted(k for k in set(plan) | set(old) if plan.get(k) != old.get(k))
        if changed:
            raise ValueError(f"{parts} holds negatives made with other settings ({', '.join(changed)} changed): "
                             f"delete {parts} to start again, or set another output")
    else:
        _write_json(plan_path, plan)
    chunks = _chunks(cfg, gts)
    model = processor = None
    todo = [(name, rows, kind) for name, rows in chunks for kind in cfg.negative_types
            if not (parts / kind / f"{name}.json").exists()]
    _say(f"negatives: {len(gts)} ground truths from {len(cfg.sources)} source(s), {len(chunks)} chunk(s) x "
         f"{len(cfg.negative_types)} type(s); {len(todo)} part(s) to make")
    index = {name: k for k, (name, _) in enumerate(chunks)}
    for name, rows, kind in tqdm(todo, desc="negatives", unit="part", disable=not progress):
        if model is None:
            model, processor = _load_model(cfg)
        # a seed per (type, chunk): resumed and uninterrupted runs draw the same negatives
        seed = cfg.seed + 1_000_003 * (1 + REAL_NEGATIVE_TYPES.index(kind)) + 10_007 * index[name]
        t0 = time.perf_counter()
        responses = _make_negatives(kind, model, processor, gts, rows, cfg, seed, progress)
        seconds = time.perf_counter() - t0
        tokens = sum(len(ids) for ids in processor.tokenizer(responses, add_special_tokens=False).input_ids) \
            if responses else 0
        _write_json(parts / kind / f"{name}.json", {"ids": [gts["id"].iloc[i] for i in rows],
                                                    "responses": responses, "seconds": seconds,
                                                    "new_tokens": tokens})
    if model is not None:
        del model
        _free()

    # assemble: every ground truth with its non-empty negatives, in the released record format
    made = {kind: {} for kind in cfg.negative_types}
    seconds = {kind: 0.0 for kind in cfg.negative_types}
    new_tokens = {kind: 0 for kind in cfg.negative_types}
    for name, rows in chunks:
        for kind in cfg.negative_types:
            part = _read_json(parts / kind / f"{name}.json")
            if part["ids"] != [gts["id"].iloc[i] for i in rows]:
                raise ValueError(f"{parts / kind / name}.json belongs to other ground truths: delete {parts}")
            made[kind].update(zip(part["ids"], part["responses"]))
            seconds[kind] += part["seconds"]
            new_tokens[kind] += part["new_tokens"]
    records, empty, dropped = [], {kind: 0 for kind in cfg.negative_types}, []
    for i in range(len(gts)):
        rid = gts["id"].iloc[i]
        completions = [{"score": 1, "response": gts["chosen"].iloc[i], "type": "gt"}]
        for kind in cfg.negative_types:
            response = made[kind][rid]
            if not response.strip():  # the released loader refuses empty responses: count them instead
                empty[kind] += 1
                continue
            weakened = kind == "image_weakened"
            completions.append({"score": 0, "response": response, "type": to_released_type(kind),
                                "noise_place": cfg.noise_place if weakened else None,
                                "noise_step": cfg.noise_step if weakened else None})
        if len(completions) == 1:
            dropped.append(rid)
            continue
        records.append({"id": rid, "prompt": f"{gts['question'].iloc[i]}\n{IMAGE_TOKEN}",
                        "image": _relative_to_root(gts["image_path"].iloc[i], cfg.data_root),
                        "completions": completions, "source": gts["source"].iloc[i]})
    counts = {kind: sum(1 for r in records for c in r["completions"] if c["type"] == to_released_type(kind))
              for kind in cfg.negative_types}
    report = {
        "ground_truths": len(gts), "records": len(records),
        "per_source": {s.name: int((gts["source"] == s.name).sum()) for s in cfg.sources},
        "negatives": counts, "empty_negatives": empty, "records_without_negatives": dropped,
        "generation_seconds": seconds, "new_tokens": new_tokens,
        "tokens_per_s": {k: new_tokens[k] / seconds[k] if seconds[k] else None for k in seconds},
        "seconds": time.perf_counter() - start,  # this call's wall time (a resumed run counts its own)
        "load_reports": {name: r.to_dict() for name, r in reports.items()},
        "settings": {**plan, "negative_types": list(cfg.negative_types)},
    }
    _write_json(out / "report.json", report)
    _write_json(target, records)  # last: its existence means the stage is done
    _say(f"negatives: {len(records)} records, negatives per type {counts}, empty {empty}; wrote {target}")
    return target


# ----------------------------------------------------------------------------------------------------
# stage 2: pairs


def stage_pairs(cfg: RecipeConfig, progress: bool = True) -> Path:
    """``pairs/dataset`` (trl's columns, images by path) and ``pairs/report.json``."""
    from bpo.preference.dataset import PairConfig, build_pairs, pair_statistics
    from bpo.real.preference import load_released_pairs

    out = cfg.stage_dir("pairs")
    marker = out / "report.json"
    if marker.exists():
        _skip("pairs", marker)
        return out / "dataset"
    if cfg.pairs_json is not None:
        json_path = _require(cfg.pairs_json, "pairs_json", cfg)
        image_root = _require(cfg.pairs_images or cfg.data_root, "pairs_images" if cfg.pairs_images else "data_root",
                              cfg, "folder")
    else:
        json_path = _require_stage(cfg.stage_dir("negatives") / "bpo.json", "negatives", "pairs")
        image_root = cfg.data_root
    candidates, load_report = load_released_pairs(json_path, image_root, missing="count", progress=progress)
    _say(f"pairs: {load_report.summary()}")
    for row, image in load_report.missing_images[:10]:
        _say(f"  row {row}: image missing: {image}")
    pair_config = PairConfig()
    ds, pair_report = build_pairs(candidates, pair_config)
    if len(ds) == 0:
        raise ValueError(f"pairs: no pair survived from {json_path} ({pair_report.to_dict()['by_reason']})")
    dataset = out / "dataset"
    tmp = out / ".dataset.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    ds.save_to_disk(str(tmp))
    shutil.rmtree(dataset, ignore_errors=True)  # a leftover of a run killed before its report
    tmp.rename(dataset)
    stats = pair_statistics(ds).reset_index()
    _write_json(marker, {"source_json": str(json_path), "image_root": str(image_root), "pairs": len(ds),
                         "load": load_report.to_dict(), "build": pair_report.to_dict(),
                         "pair_config": dataclasses.asdict(pair_config),
                         "statistics": stats.to_dict(orient="records")})
    _say(f"pairs: {pair_report.kept} of {pair_report.total} pairs kept (dropped {pair_report.counts_by_reason()}); "
         f"wrote {dataset}")
    return dataset


# ----------------------------------------------------------------------------------------------------
# stage 3: train


def launch_line(cfg: RecipeConfig, n_gpus: int = 8, accelerate_config: str = "8gpu_zero2") -> str:
    """The ``accelerate launch`` line that trains ``cfg.tuning`` on ``n_gpus`` GPUs (ZeRO-2) into
    ``train/``: every TuningConfig field spelled out, so the run does not depend on defaults."""
    from bpo.distributed import launch_command

    args = ["--model", cfg.model, "--pairs", str(cfg.stage_dir("pairs") / "dataset"),
            "--out", str(cfg.stage_dir("train"))]
    for f in dataclasses.fields(TuningConfig):
        value = getattr(cfg.tuning, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            args.append(flag if value else "--no-" + f.name.replace("_", "-"))
        else:
            args += [flag, repr(value) if isinstance(value, float) else str(value)]
    return launch_command(accelerate_config, n_gpus, args)


def _write_launch_script(cfg: RecipeConfig) -> Path:
    from bpo.paths import PROJECT_ROOT

    line = launch_line(cfg)
    script = (f"#!/usr/bin/env bash\n# BPO on 8 GPUs with DeepSpeed ZeRO-2 (pip install deepspeed first), instead of the\n"
              f"# one-device train stage; it writes the same train/ folder, then run the 'answer' stage.\n"
              f"# The accelerate config names its DeepSpeed JSON relative to the project root.\n"
              f"set -euo pipefail\ncd {shlex.quote(str(PROJECT_ROOT))}\n{line}\n")
    path = cfg.stage_dir("train") / "launch.sh"
    if not path.exists() or path.read_text(encoding="utf-8") != script:
        _atomic_write(path, script)
        path.chmod(0o755)
    return path


def embedding_note(model, ds, tuning: TuningConfig) -> str:
    """What ``train_tuning`` will hold on the model's device before its first step: the projector
    output of every distinct image of the pairs it trains on (float32). Counted per candidate, an
    upper bound (records that share an image count once each); a warning when it nears the GPU."""
    from bpo.training.pairs import select_pairs

    chosen = select_pairs(ds, max_pairs=tuning.max_pairs, seed=tuning.seed)
    records = len({pair_id.rsplit(":", 2)[0] for pair_id in chosen["pair_id"]})  # "{id}:{gt}:{negative}"
    per_image = model.config.image_seq_length * model.config.text_config.hidden_size * 4
    gb = records * per_image / 1e9
    note = (f"train: {len(chosen)} pairs of at most {records} distinct images, whose projector outputs "
            f"({per_image / 1e6:.1f} MB each) stay on {model.device}: up to {gb:.2f} GB")
    if model.device.type == "cuda":
        import torch

        total = torch.cuda.get_device_properties(model.device).total_memory / 1e9
        if gb > 0.5 * total:
            note += (f"\nWARNING: that is over half of the GPU's {total:.0f} GB, besides the model and its fp32 "
                     f"copy: the run will likely run out of memory while encoding. Train on fewer pairs "
                     f"(--set tuning.max_pairs=N; about {int(0.3 * total / per_image * 1e9 * len(chosen) / records)} "
                     f"fit in 30 % of it).")
    return note


def stage_train(cfg: RecipeConfig, progress: bool = True) -> Path:
    """LoRA fine-tuning on one device into ``train/`` (adapter/, config.json, log.json)."""
    out = cfg.stage_dir("train")
    script = _write_launch_script(cfg)
    _say(f"train: for 8 GPUs (ZeRO-2) run instead: bash {script}")
    marker = out / "log.json"  # train_tuning writes it last
    if marker.exists():
        _skip("train", marker)
        return out
    import datasets

    from bpo.training.tuning import train_tuning

    _require_stage(cfg.stage_dir("pairs") / "report.json", "pairs", "train")
    ds = datasets.load_from_disk(str(cfg.stage_dir("pairs") / "dataset"))
    model, processor = _load_model(cfg)
    _say(f"train: {cfg.tuning.method} on {len(ds)} pairs, {cfg.tuning.epochs} epoch(s), batch {cfg.tuning.batch_size}, "
         f"on {model.device}")
    _say(embedding_note(model, ds, cfg.tuning))
    run = train_tuning(model, processor, ds, cfg.tuning, out, reference_cache=out / "reference.pt",
                       base_path=cfg.model, progress=progress)
    last = run.log[-1]
    _say(f"train: {len(run.log)} steps, last loss {last['loss']:.4f}; adapter in {run.adapter_dir}")
    del run, model
    _free()
    return out


# ----------------------------------------------------------------------------------------------------
# stage 4: answer


def load_benchmark(cfg: RecipeConfig, name: str, progress: bool = True) -> tuple[list[dict], dict]:
    """A configured benchmark's items and what its loader skipped (LoadReport dicts)."""
    from bpo.real.benchmarks import load_llava_wild, load_mmvet, load_object_halbench, load_pope

    files = cfg.benchmarks[name]
    key = f"benchmarks.{name}"
    for k, v in files.items():
        for j, p in enumerate(v if isinstance(v, list) else [v]):
            _require(p, f"{key}.{k}" + (f"[{j}]" if isinstance(v, list) else ""), cfg,
                     "folder" if k == "images" else "file")
    if name == "mmvet":
        items, report = load_mmvet(files["json"], files["images"])
        reports = {"mm-vet": report}
    elif name == "wild":
        items, report = load_llava_wild(files["questions"], files["images"], files["answers"], files["context"])
        reports = {"questions": report}
    elif name == "pope":
        items, reports = [], {}
        for p in files["files"]:
            part, report = load_pope(p, files["images"])
            items += part
            reports[Path(p).name] = report
    else:
        items, report = load_object_halbench(files["prompts"], files["instances"], files["images"],
                                             files.get("captions"), progress=progress)
        reports = {"prompts": report}
    for label, report in reports.items():
        if report.n_skipped:
            _say(f"{BENCHMARK_NAMES[name]}: {report.summary()}")
    if not items:
        raise ValueError(f"{cfg.where}: {key}: no item with an image was read "
                         f"({'; '.join(r.summary() for r in reports.values())})")
    return items, {label: r.to_dict() for label, r in reports.items()}


def _answer_file(cfg: RecipeConfig, model_name: str, bench: str) -> Path:
    return cfg.stage_dir("answer") / model_name / f"{bench}.json"


def _answer(model, processor, items: list[dict], bench: str, cfg: RecipeConfig, progress: bool) -> dict:
    from bpo.models.generate import generate

    suffix = cfg.answer.prompt_suffix.get(bench, "")
    budget = cfg.answer.max_new_tokens[bench]
    questions = [it["question"] + suffix for it in items]
    images = _open_images([it["image_path"] for it in items])
    t0 = time.perf_counter()
    answers = generate(model, processor, images, questions, max_new_tokens=budget, batch_size=cfg.answer.batch_size,
                       do_sample=False, progress=progress, with_truncation=True)
    seconds = time.perf_counter() - t0
    return {"benchmark": bench, "max_new_tokens": budget, "prompt_suffix": suffix, "seconds": seconds,
            "n_truncated": sum(answers.truncated),
            "answers": [{"item_id": it["item_id"], "question": q, "response": r, "truncated": t}
                        for it, q, r, t in zip(items, questions, answers.texts, answers.truncated)]}


def stage_answer(cfg: RecipeConfig, progress: bool = True) -> Path:
    """``answer/{base,tuned}/{benchmark}.json`` for every configured benchmark."""
    from bpo.selection import merged_copy
    from bpo.training.tuning import load_tuned

    out = cfg.stage_dir("answer")
    benches = list(cfg.benchmarks)
    if not benches:
        _say(f"answer: no benchmark configured in {cfg.where} (key 'benchmarks'): nothing to answer")
        return out
    todo = {m: [b for b in benches if not _answer_file(cfg, m, b).exists()] for m in MODELS}
    if not any(todo.values()):
        _skip("answer", out)
        return out
    train_dir = cfg.stage_dir("train")
    if todo["tuned"]:
        _require_stage(train_dir / "log.json", "train", "answer (the tuned model)")
    items = {b: load_benchmark(cfg, b, progress) for b in set(todo["base"]) | set(todo["tuned"])}
    model, processor = _load_model(cfg)
    for model_name in MODELS:
        if not todo[model_name]:
            continue
        if model_name == "tuned":
            # one copy at a time: the base is dropped before the adapter is merged (7B on one GPU)
            tuned = load_tuned(model, train_dir)
            del model
            _free()
            model = merged_copy(tuned).eval()
            del tuned
            _free()
        for bench in tqdm(todo[model_name], desc=f"answer ({model_name})", unit="benchmark", disable=not progress):
            bench_items, reports = items[bench]
            result = _answer(model, processor, bench_items, bench, cfg, progress)
            path = _answer_file(cfg, model_name, bench)
            _write_json(path, {"model": model_name, **result, "load_reports": reports})
            _say(f"answer: {model_name} {BENCHMARK_NAMES[bench]}: {len(bench_items)} answers "
                 f"({result['n_truncated']} cut at {result['max_new_tokens']} tokens) in {result['seconds']:.1f} s")
    del model
    _free()
    return out


# ----------------------------------------------------------------------------------------------------
# stage 5: score


POPE_METRICS = ("accuracy", "precision", "recall", "f1", "yes_ratio")
CHAIR_METRICS = {"response_hall": "CHAIR_s (Response Hall) ↓", "object_hall": "CHAIR_i (Object Hall) ↓",
                 "object_recall": "object recall"}
WILD_COLUMNS = ("conversation", "detail", "reasoning", "all")


def judge_config(cfg: RecipeConfig):
    """(JudgeConfig, None) from ``BPO_JUDGE_*``, or (None, why not)."""
    from bpo.evaluation.llm_judge import JudgeConfig

    try:
        return JudgeConfig.from_env(cache_dir=cfg.stage_dir("score") / "judge_cache"), None
    except ValueError as e:
        return None, str(e)


def _responses(cfg: RecipeConfig, model_name: str, bench: str, items: list[dict]) -> list[str]:
    path = _require_stage(_answer_file(cfg, model_name, bench), "answer", "score")
    answers = _read_json(path)["answers"]
    if [a["item_id"] for a in answers] != [it["item_id"] for it in items]:
        raise ValueError(f"{path} answers other items than {BENCHMARK_NAMES[bench]} now has "
                         f"(the benchmark files changed?): delete it and rerun the 'answer' stage")
    return [a["response"] for a in answers]


def _rows(bench: str, summary: dict) -> list[tuple[str, float]]:
    """(metric, value) rows of one model's summary, in table order."""
    if bench == "pope":
        return [(f"{split} {m}", summary[split][m]) for split in summary for m in POPE_METRICS]
    if bench == "halbench":
        return [(label, summary[k]) for k, label in CHAIR_METRICS.items()]
    if bench == "mmvet":
        from bpo.evaluation.benchmarks import CAPABILITIES

        return [(c, summary[c]) for c in (*CAPABILITIES, "Total")]
    return [(c, summary[c]) for c in WILD_COLUMNS if c in summary]


def _score_one(bench: str, items: list[dict], responses: list[str], cfg: RecipeConfig, client, progress: bool):
    from bpo.evaluation.llm_judge import MMVetJudge, WildJudge, summarise_judged_wild
    from bpo.evaluation.mmvet import summarise_mmvet
    from bpo.real.benchmarks import (load_chair_synonyms, mmvet_judge_inputs, score_chair_coco, score_pope_real,
                                     wild_judge_inputs)

    if bench == "pope":
        return score_pope_real(items, responses)
    if bench == "halbench":
        return score_chair_coco(items, responses, load_chair_synonyms(cfg.benchmarks["halbench"]["synonyms"]))
    if bench == "mmvet":
        records = MMVetJudge(client).score(mmvet_judge_inputs(items, responses), progress=progress)
        return records, summarise_mmvet(records)
    records = WildJudge(client).score(wild_judge_inputs(items, responses), progress=progress)
    return records, summarise_judged_wild(records)


def _fmt(value) -> str:
    return "—" if value is None or (isinstance(value, float) and not math.isfinite(value)) else f"{value:.1f}"


def results_markdown(rows: list[dict], skipped: dict[str, str], counts: dict) -> str:
    lines = ["# BPO recipe: base vs tuned", "",
             "| benchmark | metric | base | tuned | tuned − base |", "| --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['benchmark']} | {r['metric']} | {_fmt(r['base'])} | {_fmt(r['tuned'])} | "
                     f"{_fmt(r['delta'])} |")
    lines += ["", "Scores x100; ↓ lower is better. Items per benchmark: "
              + ", ".join(f"{BENCHMARK_NAMES[b]} {n}" for b, n in counts.items()) + "."]
    for bench, why in skipped.items():
        lines += ["", f"**{BENCHMARK_NAMES[bench]} was not scored**: {why}"]
    return "\n".join(lines) + "\n"


def stage_score(cfg: RecipeConfig, progress: bool = True) -> Path:
    """``score/results.md``, ``score/results.json`` and per-item records; see the module docstring."""
    from bpo.evaluation.llm_judge import ChatClient

    out = cfg.stage_dir("score")
    marker = out / "results.json"
    judge, why_not = judge_config(cfg)
    if marker.exists():
        skipped_before = _read_json(marker).get("skipped", {})
        if not (judge is not None and any(b in JUDGED for b in skipped_before)):
            _skip("score", marker)
            return marker
        _say(f"score: an LLM judge is configured now: scoring {', '.join(BENCHMARK_NAMES[b] for b in skipped_before)}")
    benches = list(cfg.benchmarks)
    if not benches:
        _say(f"score: no benchmark configured in {cfg.where} (key 'benchmarks'): nothing to score")
    skipped: dict[str, str] = {}
    if judge is None and any(b in JUDGED for b in benches):
        how = why_not.removeprefix("JudgeConfig.from_env: ")
        reason = f"no LLM judge configured: {how}; the paper used GPT-4. Then rerun the score stage."
        for b in benches:
            if b in JUDGED:
                skipped[b] = reason
        _say(f"score: {' and '.join(BENCHMARK_NAMES[b] for b in skipped)} skipped: {reason}")
    client = ChatClient(judge) if judge is not None else None
    rows, summaries, counts = [], {m: {} for m in MODELS}, {}
    for bench in tqdm(benches, desc="score", unit="benchmark", disable=not progress):
        if bench in skipped:
            continue
        items, _ = load_benchmark(cfg, bench, progress)
        counts[bench] = len(items)
        values = {}
        for model_name in MODELS:
            records, summary = _score_one(bench, items, _responses(cfg, model_name, bench, items), cfg, client, progress)
            _write_json(out / model_name / f"{bench}.json", {"summary": summary, "records": records})
            summaries[model_name][bench] = summary
            values[model_name] = dict(_rows(bench, summary))
        for metric, base in values["base"].items():
            tuned = values["tuned"].get(metric)
            delta = tuned - base if tuned is not None and base is not None else None
            rows.append({"benchmark": BENCHMARK_NAMES[bench], "metric": metric, "base": base, "tuned": tuned,
                         "delta": delta})
    judge_info = None if judge is None else {"base_url": judge.base_url, "model": judge.model,
                                              "calls": client.calls, "cache_hits": client.cache_hits}
    _atomic_write(out / "results.md", results_markdown(rows, skipped, counts))
    _write_json(marker, {"rows": rows, "summaries": summaries, "skipped": skipped, "items": counts,
                         "judge": judge_info})  # last: its existence means the stage is done
    _say(results_markdown(rows, skipped, counts))
    _say(f"score: wrote {out / 'results.md'}")
    return marker


# ----------------------------------------------------------------------------------------------------
# CLI

RUNNERS = {"negatives": stage_negatives, "pairs": stage_pairs, "train": stage_train, "answer": stage_answer,
           "score": stage_score}


def run(cfg: RecipeConfig, stage: str, progress: bool = True) -> None:
    """Run one stage, or every stage in order (``all``; without ``negatives`` when ``pairs_json`` is set)."""
    if stage == "all":
        for name in STAGES:
            if name == "negatives" and cfg.pairs_json is not None:
                _say(f"negatives: skipped, pairs_json ({cfg.pairs_json}) provides the preference data")
                continue
            RUNNERS[name](cfg, progress)
        return
    if stage not in RUNNERS:
        raise ValueError(f"unknown stage {stage!r}; choose one of {(*STAGES, 'all')}")
    RUNNERS[stage](cfg, progress)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bpo.real.recipe", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", choices=(*STAGES, "all"))
    p.add_argument("--config", required=True, help="the recipe YAML (configs/recipes/llava-1.5-7b.yaml)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a key (dotted for nested ones: tuning.lr=1e-5, sources.0.n=100); repeatable")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    cfg = RecipeConfig.from_yaml(args.config, args.overrides)
    _say(f"recipe {args.config}: model {cfg.model}, output {cfg.output}")
    run(cfg, args.stage, progress=not args.no_progress)
    return 0


if __name__ == "__main__":
    sys.exit(main())
