"""Preference data: candidates, DPO pairs in trl's format, and the released BPO JSON records.

A :class:`Candidate` holds, for one (image, prompt), the ground-truth responses (chosen) and the
negatives (rejected), each negative tagged with how it was made. :func:`build_pairs` expands every
ground truth x every negative, as the released BPO code does, into a Hugging Face data set with trl's
columns ``prompt``, ``chosen``, ``rejected``, ``images`` plus metadata. Pairs that fail validation
(missing image, empty response, chosen == rejected, a response over the word limit) are never dropped
silently: :class:`PairReport` counts them by reason, source and negative type and keeps their ids.

:func:`export_bpo_json` / :func:`import_bpo_json` write and read the released record format::

    {"id", "prompt": "question\\n<image>", "image": path,
     "completions": [{"score": 1, "response": ..., "type": "gt"},
                     {"score": 0, "response": ..., "type": "mllm-hal"}, ...]}

Negative types map to the released "type" strings as follows (:data:`RELEASED_TYPES`):

- ``image_weakened``  <-> ``mllm-hal`` (responses of the MLLM shown a weakened image)
- ``error_injection`` <-> ``llm-hal``  (the LLM rewrote the ground truth with injected errors)
- any other type (``prior_guided``, ``self_generated``, ``contrastive``, or a new one) is written
  unchanged, so it round-trips; the released strings themselves ("gt", "mllm-hal", "llm-hal") are
  therefore refused as our own negative types, as they would read back as something else.

Our extra metadata (``source``, ``scene_id`` per record; ``noise_place``, ``noise_step`` per
completion) is written as additional keys, which the released loader ignores.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import datasets
import pandas as pd
from PIL import Image

from bpo.models.chat import IMAGE_TOKEN  # the released JSON marks the image as LLaVA does
from bpo.preference.config import NEGATIVE_TYPES

RELEASED_TYPES = {"image_weakened": "mllm-hal", "error_injection": "llm-hal"}
_FROM_RELEASED = {v: k for k, v in RELEASED_TYPES.items()}
GT_TYPE = "gt"

# Fixed order: a pair failing several checks is reported under the first one, so each candidate
# pair is counted exactly once (kept + dropped == total).
DROP_REASONS = ("missing_image", "empty_chosen", "empty_rejected", "identical", "too_long")

PAIR_FEATURES = datasets.Features({
    "prompt": datasets.Value("string"),
    "chosen": datasets.Value("string"),
    "rejected": datasets.Value("string"),
    "images": datasets.List(datasets.Image()),
    "source": datasets.Value("string"),
    "negative_type": datasets.Value("string"),
    "noise_place": datasets.Value("string"),
    "noise_step": datasets.Value("int32"),
    "scene_id": datasets.Value("string"),
    "pair_id": datasets.Value("string"),
})


def to_released_type(negative_type: str) -> str:
    """Our negative type as the released "type" string (unknown types unchanged)."""
    return RELEASED_TYPES.get(negative_type, negative_type)


def from_released_type(released: str) -> str:
    """The released "type" string as our negative type (unknown strings unchanged)."""
    return _FROM_RELEASED.get(released, released)


def _norm(text: str) -> str:
    return " ".join(text.split())


def n_words(text: str) -> int:
    return len(text.split())


@dataclass(frozen=True)
class Negative:
    """One rejected response and how it was made."""

    response: str
    negative_type: str
    noise_place: str | None = None  # where an image was weakened, for image_weakened negatives
    noise_step: int | None = None

    def __post_init__(self):
        if not isinstance(self.response, str):
            raise ValueError(f"Negative.response must be a string, got {type(self.response).__name__}")
        if not isinstance(self.negative_type, str) or not self.negative_type:
            raise ValueError(f"Negative.negative_type must be a non-empty string, got {self.negative_type!r}")
        if self.negative_type == GT_TYPE or self.negative_type in _FROM_RELEASED:
            raise ValueError(f"Negative.negative_type {self.negative_type!r} is a released type string; "
                             f"use our name ({', '.join(NEGATIVE_TYPES)}) so it round-trips")
        if self.noise_place is not None and not isinstance(self.noise_place, str):
            raise ValueError(f"Negative.noise_place must be a string or None, got {self.noise_place!r}")
        if self.noise_step is not None and (isinstance(self.noise_step, bool) or not isinstance(self.noise_step, int)
                                            or self.noise_step < 0):
            raise ValueError(f"Negative.noise_step must be a non-negative int or None, got {self.noise_step!r}")


@dataclass(frozen=True)
class Candidate:
    """Ground truths and negatives for one (image, prompt). ``prompt`` is the bare question (no
    image token). Equality ignores the image object; compare pixels separately."""

    id: str
    prompt: str
    image: Image.Image | None = field(compare=False, repr=False)
    chosen: tuple[str, ...]
    negatives: tuple[Negative, ...]
    source: str | None = None
    scene_id: str | None = None

    def __post_init__(self):
        if not isinstance(self.id, str) or not self.id:
            raise ValueError(f"Candidate.id must be a non-empty string, got {self.id!r}")
        if not isinstance(self.prompt, str):
            raise ValueError(f"candidate {self.id}: prompt must be a string")
        if self.image is not None and not isinstance(self.image, Image.Image):
            raise ValueError(f"candidate {self.id}: image must be a PIL image or None")
        # Tuples keep the record hashable-ish and immutable; accept lists for convenience.
        object.__setattr__(self, "chosen", tuple(self.chosen))
        object.__setattr__(self, "negatives", tuple(self.negatives))
        if not self.chosen or not all(isinstance(c, str) for c in self.chosen):
            raise ValueError(f"candidate {self.id}: chosen must be one or more strings")
        if not self.negatives or not all(isinstance(n, Negative) for n in self.negatives):
            raise ValueError(f"candidate {self.id}: negatives must be one or more Negative")


@dataclass(frozen=True)
class PairConfig:
    """Validation settings for :func:`build_pairs`."""

    max_words: int = 350  # the released code drops samples whose responses exceed 350 words
    require_image: bool = True
    drop_identical: bool = True  # chosen == rejected teaches nothing and gives a zero DPO margin

    def __post_init__(self):
        if isinstance(self.max_words, bool) or not isinstance(self.max_words, int) or self.max_words < 1:
            raise ValueError(f"PairConfig.max_words must be a positive int, got {self.max_words!r}")
        for name in ("require_image", "drop_identical"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"PairConfig.{name} must be a bool, got {getattr(self, name)!r}")


@dataclass
class PairReport:
    """What :func:`build_pairs` kept and dropped. ``dropped`` has one row per dropped pair:
    pair_id, id, reason, source, negative_type."""

    total: int
    kept: int
    dropped: pd.DataFrame

    @property
    def n_dropped(self) -> int:
        return len(self.dropped)

    def counts_by_reason(self) -> dict[str, int]:
        """Every reason, including those with zero drops."""
        counts = self.dropped["reason"].value_counts()
        return {r: int(counts.get(r, 0)) for r in DROP_REASONS}

    def counts_by_group(self) -> pd.DataFrame:
        """Dropped pairs per (source, negative_type) and reason."""
        if self.dropped.empty:
            return pd.DataFrame(columns=list(DROP_REASONS))
        d = self.dropped.fillna({"source": ""})
        return (d.groupby(["source", "negative_type", "reason"]).size().unstack("reason", fill_value=0)
                .reindex(columns=list(DROP_REASONS), fill_value=0))

    def dropped_ids(self, reason: str | None = None) -> list[str]:
        d = self.dropped if reason is None else self.dropped[self.dropped["reason"] == reason]
        return list(d["pair_id"])

    def to_dict(self) -> dict:
        return {"total": self.total, "kept": self.kept, "dropped": self.n_dropped,
                "by_reason": self.counts_by_reason(), "dropped_ids": self.dropped_ids()}


def _check_unique(records: Sequence[Candidate]) -> None:
    seen = set()
    for r in records:
        if r.id in seen:
            raise ValueError(f"duplicate candidate id {r.id!r}: pair ids and image files would collide")
        seen.add(r.id)


def _drop_reason(rec: Candidate, chosen: str, rejected: str, cfg: PairConfig) -> str | None:
    if cfg.require_image and rec.image is None:
        return "missing_image"
    if not chosen.strip():
        return "empty_chosen"
    if not rejected.strip():
        return "empty_rejected"
    if cfg.drop_identical and _norm(chosen) == _norm(rejected):
        return "identical"
    if n_words(chosen) > cfg.max_words or n_words(rejected) > cfg.max_words:
        return "too_long"
    return None


def build_pairs(records: Iterable[Candidate], cfg: PairConfig = PairConfig()) -> tuple[datasets.Dataset, PairReport]:
    """Every ground truth x every negative of each record, validated; see :class:`PairReport`.
    ``pair_id`` is ``"{id}:{gt index}:{negative index}"``."""
    records = list(records)
    _check_unique(records)
    rows = {k: [] for k in PAIR_FEATURES}
    dropped = []
    total = 0
    for rec in records:
        for gi, chosen in enumerate(rec.chosen):
            for ni, neg in enumerate(rec.negatives):
                total += 1
                pair_id = f"{rec.id}:{gi}:{ni}"
                reason = _drop_reason(rec, chosen, neg.response, cfg)
                if reason is not None:
                    dropped.append({"pair_id": pair_id, "id": rec.id, "reason": reason,
                                    "source": rec.source, "negative_type": neg.negative_type})
                    continue
                values = {"prompt": rec.prompt, "chosen": chosen, "rejected": neg.response,
                          "images": [rec.image] if rec.image is not None else [],
                          "source": rec.source, "negative_type": neg.negative_type,
                          "noise_place": neg.noise_place, "noise_step": neg.noise_step,
                          "scene_id": rec.scene_id, "pair_id": pair_id}
                for k, v in values.items():
                    rows[k].append(v)
    ds = datasets.Dataset.from_dict(rows, features=PAIR_FEATURES)
    report = PairReport(total=total, kept=len(ds),
                        dropped=pd.DataFrame(dropped, columns=["pair_id", "id", "reason", "source", "negative_type"]))
    return ds, report


def pair_statistics(ds: datasets.Dataset) -> pd.DataFrame:
    """Pairs per (source, negative_type) with word-length summaries of chosen and rejected (the
    analogue of the paper's Table 2), plus an ``("all", "all")`` row."""
    # Only the text columns: decoding the images would be slow and is not needed.
    df = ds.select_columns(["source", "negative_type", "chosen", "rejected"]).to_pandas()
    df["source"] = df["source"].fillna("")
    df["chosen_words"] = df["chosen"].map(n_words)
    df["rejected_words"] = df["rejected"].map(n_words)

    def summary(g: pd.DataFrame) -> pd.Series:
        out = {"pairs": len(g)}
        for side in ("chosen", "rejected"):
            w = g[f"{side}_words"]
            out.update({f"{side}_words_mean": float(w.mean()) if len(w) else 0.0,
                        f"{side}_words_median": float(w.median()) if len(w) else 0.0,
                        f"{side}_words_max": int(w.max()) if len(w) else 0})
        return pd.Series(out)

    parts = [summary(g).rename(key) for key, g in df.groupby(["source", "negative_type"], sort=True)]
    parts.append(summary(df).rename(("all", "all")))
    out = pd.DataFrame(parts)
    out.index = pd.MultiIndex.from_tuples(out.index, names=["source", "negative_type"])
    out["pairs"] = out["pairs"].astype(int)
    for side in ("chosen", "rejected"):
        out[f"{side}_words_max"] = out[f"{side}_words_max"].astype(int)
    return out


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG", optimize=False)  # fixed settings: byte-identical output
    return buf.getvalue()


def _file_stem(record_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", record_id)


def export_bpo_json(records: Iterable[Candidate], path: str | os.PathLike, image_dir: str | os.PathLike) -> Path:
    """Write ``records`` as the released BPO JSON list at ``path``, images as PNG files in
    ``image_dir``. Image paths are stored relative to the JSON file's folder when possible."""
    records = list(records)
    _check_unique(records)
    path, image_dir = Path(path), Path(image_dir)
    image_dir.mkdir(parents=True, exist_ok=True)
    stems = [_file_stem(r.id) for r in records]
    if len(set(stems)) != len(stems):
        raise ValueError("two candidate ids map to the same image file name; make ids filename-safe")
    out = []
    for rec, stem in zip(records, stems):
        image_field = None
        if rec.image is not None:
            image_path = image_dir / f"{stem}.png"
            image_path.write_bytes(_png(rec.image))
            try:
                image_field = os.path.relpath(image_path.resolve(), path.parent.resolve())
            except ValueError:  # another drive on Windows
                image_field = str(image_path.resolve())
        completions = [{"score": 1, "response": c, "type": GT_TYPE} for c in rec.chosen]
        completions += [{"score": 0, "response": n.response, "type": to_released_type(n.negative_type),
                         "noise_place": n.noise_place, "noise_step": n.noise_step} for n in rec.negatives]
        out.append({"id": rec.id, "prompt": f"{rec.prompt}\n{IMAGE_TOKEN}", "image": image_field,
                    "completions": completions, "source": rec.source, "scene_id": rec.scene_id})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return path


def _strip_image_token(prompt: str) -> str | None:
    if prompt.endswith("\n" + IMAGE_TOKEN):
        return prompt[: -len(IMAGE_TOKEN) - 1]
    if prompt.startswith(IMAGE_TOKEN + "\n"):  # LLaVA's other placement
        return prompt[len(IMAGE_TOKEN) + 1:]
    return None


def import_bpo_json(path: str | os.PathLike) -> list[Candidate]:
    """Read a released-format BPO JSON list back into candidates. A malformed record raises
    ValueError naming the file, the row (and id) and the field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    if not isinstance(data, list):
        raise ValueError(f"{path}: the top level must be a JSON list of records")
    records = []
    for row, item in enumerate(data):
        def fail(fld: str, msg: str):
            rid = f" (id {item['id']!r})" if isinstance(item, dict) and "id" in item else ""
            raise ValueError(f"{path}: row {row}{rid}: field {fld!r}: {msg}")

        if not isinstance(item, dict):
            fail("<record>", "a record must be a JSON object")
        for key in ("id", "prompt", "image", "completions"):
            if key not in item:
                fail(key, "missing")
        if not isinstance(item["id"], str) or not item["id"]:
            fail("id", "must be a non-empty string")
        if not isinstance(item["prompt"], str):
            fail("prompt", "must be a string")
        prompt = _strip_image_token(item["prompt"])
        if prompt is None:
            fail("prompt", f"must end with '\\n{IMAGE_TOKEN}' (or start with '{IMAGE_TOKEN}\\n')")
        image = None
        if item["image"] is not None:
            if not isinstance(item["image"], str):
                fail("image", "must be a file path or null")
            image_path = Path(item["image"])
            if not image_path.is_absolute():
                image_path = path.parent / image_path
            if not image_path.is_file():
                fail("image", f"image file missing: {image_path}")
            try:
                with Image.open(image_path) as im:
                    im.load()
                    image = im.copy()
            except OSError as e:
                fail("image", f"cannot read image {image_path}: {e}")
        for key in ("source", "scene_id"):
            if item.get(key) is not None and not isinstance(item[key], str):
                fail(key, "must be a string or null")
        comps = item["completions"]
        if not isinstance(comps, list) or not comps:
            fail("completions", "must be a non-empty list")
        chosen, negatives = [], []
        for j, c in enumerate(comps):
            f = f"completions[{j}]"
            if not isinstance(c, dict):
                fail(f, "must be an object")
            for key in ("score", "response", "type"):
                if key not in c:
                    fail(f"{f}.{key}", "missing")
            if isinstance(c["score"], bool) or c["score"] not in (0, 1):
                fail(f"{f}.score", f"must be 0 or 1, got {c['score']!r}")
            if not isinstance(c["response"], str):
                fail(f"{f}.response", "must be a string")
            if not isinstance(c["type"], str) or not c["type"]:
                fail(f"{f}.type", "must be a non-empty string")
            if (c["score"] == 1) != (c["type"] == GT_TYPE):
                fail(f"{f}.type", f"score {c['score']} with type {c['type']!r}: only 'gt' completions score 1")
            if c["score"] == 1:
                chosen.append(c["response"])
                continue
            step = c.get("noise_step")
            if step is not None and (isinstance(step, bool) or not isinstance(step, int) or step < 0):
                fail(f"{f}.noise_step", f"must be a non-negative int or null, got {step!r}")
            place = c.get("noise_place")
            if place is not None and not isinstance(place, str):
                fail(f"{f}.noise_place", f"must be a string or null, got {place!r}")
            negatives.append(Negative(c["response"], from_released_type(c["type"]), place, step))
        if not chosen:
            fail("completions", "no gt completion (score 1, type 'gt')")
        if not negatives:
            fail("completions", "no negative completion (score 0)")
        records.append(Candidate(item["id"], prompt, image, tuple(chosen), tuple(negatives),
                                 item.get("source"), item.get("scene_id")))
    return records
