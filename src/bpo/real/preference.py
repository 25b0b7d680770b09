"""The released BPO preference data (a JSON list of records) as :class:`Candidate` records.

Each record of the released file reads::

    {"prompt": "What is happening?\\n<image>", "image": "coco/train2017/000000000009.jpg",
     "completions": [{"score": 1, "response": "...", "type": "gt"},
                     {"score": 0, "response": "...", "type": "mllm-hal"}, ...]}

``id`` is optional (``row-0000017`` is used when absent); ``image`` is relative to ``image_root``
(or absolute). Score 1 marks a ground truth (chosen), score 0 a negative, as the released trainer
pairs every higher-scored completion with every lower-scored one.

The candidates go straight into :func:`bpo.preference.dataset.build_pairs`. Their images are
:class:`LazyImage`: only the file's header is read here, the pixels on first use, so 180k records
load in the time it takes to read the headers, and the pair data set stores each image's path
rather than a re-encoded copy of its pixels (move the image folder and the saved pairs break).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from PIL import Image
from tqdm.auto import tqdm

from bpo.preference.config import NEGATIVE_TYPES
from bpo.preference.dataset import (
    GT_TYPE,
    IMAGE_TOKEN,
    RELEASED_TYPES,
    Candidate,
    Negative,
    _strip_image_token,
    from_released_type,
)
from bpo.real.errors import DataError, LoadReport, check_missing_policy, is_int, read_json_list, repeated_ids

# Completion types that may score 1. "gt-rephrased" is named in the released error-injection
# script as a possible type; it is a ground truth said differently, so still chosen.
CHOSEN_TYPES = (GT_TYPE, "gt-rephrased")

# Names for negative types that neither the released strings nor ours cover: the paper's own
# name for image-weakened responses. More can be passed as ``type_map``.
TYPE_ALIASES = {"image_weakening": "image_weakened"}

_IMAGE_ERRORS = (OSError, Image.DecompressionBombError)


class LazyImage(Image.Image):
    """A PIL image whose pixels are read from ``filename`` on first use (any method that needs
    them: ``load``, ``convert``, ``np.asarray``, ``copy``, ...). Size, mode and info come from the
    header read at construction. No file stays open in between, so 180k of them cost no file
    handles. Once read, the pixels stay in memory like any loaded PIL image.

    ``filename`` is what lets :class:`datasets.Image` store the path instead of the pixels. As for
    any PIL subclass, ``==`` against a plain ``Image.Image`` is False; compare pixels instead."""

    def __init__(self, path: str | os.PathLike, mode: str, size: tuple[int, int],
                 format: str | None = None, info: dict | None = None):
        super().__init__()
        self._mode = mode
        self._size = tuple(size)
        self.filename = str(path)
        self.format = format
        self.info = dict(info or {})

    @classmethod
    def open(cls, path: str | os.PathLike, verify: bool = False) -> LazyImage:
        """Read ``path``'s header (and, with ``verify``, decode its pixels once to prove the file
        is whole, then drop them). Raises OSError for a file that is not a readable image."""
        with Image.open(path) as im:
            if verify:
                im.load()
            return cls(path, im.mode, im.size, im.format, im.info)

    def _read(self) -> None:
        with Image.open(self.filename) as src:
            src.load()
            if (src.mode, src.size) != (self._mode, self._size):
                raise OSError(f"{self.filename} changed since it was listed: now {src.mode} {src.size}, "
                              f"was {self._mode} {self._size}")
            self._im = src.im
            self.palette = src.palette
            self.info = dict(src.info)

    # Pillow reaches the pixel store through ``im`` (and ``load()`` before most operations):
    # filling it on either path makes every operation see the pixels.
    @property
    def im(self):
        if self._im is None:
            self._read()
        return Image.Image.im.fget(self)

    @im.setter
    def im(self, value) -> None:
        self._im = value

    def load(self):
        if self._im is None:
            self._read()
        return super().load()


def _bare_prompt(prompt: str) -> str | None:
    """The question without the image token, which the released files put at the end or start
    (usually with a newline, which the released loader does not insist on); None if the token is
    missing or elsewhere."""
    bare = _strip_image_token(prompt)
    if bare is not None:
        return bare
    text = prompt.strip()
    if text.count(IMAGE_TOKEN) != 1:
        return None
    if text.startswith(IMAGE_TOKEN):
        return text[len(IMAGE_TOKEN):].strip()
    if text.endswith(IMAGE_TOKEN):
        return text[: -len(IMAGE_TOKEN)].strip()
    return None


def _resolve_image(image_root: Path, image: str) -> Path:
    p = Path(image)
    # abspath, not resolve: keep the user's symlinked layout in the stored paths
    return Path(os.path.abspath(p if p.is_absolute() else image_root / p))


def load_released_pairs(json_path: str | os.PathLike, image_root: str | os.PathLike | None,
                        missing: str = "count", progress: bool = True, verify: bool = False,
                        source: str | None = None, type_map: Mapping[str, str] | None = None,
                        ) -> tuple[list[Candidate], LoadReport]:
    """The released BPO preference JSON (or JSON Lines) at ``json_path`` as candidates, and what
    was read and skipped.

    ``image_root``: the folder the records' image paths are relative to (None: the JSON file's).
    ``missing``: a record whose image file is missing or unreadable is skipped and listed in the
    report (``"count"``) or raises :class:`DataError` (``"raise"``). A record with ``"image":
    null`` is skipped with reason "no image". Only image headers are read unless ``verify``, which
    decodes every image once (slow on large sets; a corrupt body is otherwise found on first use).
    ``source``: the candidates' source when a record has no ``"source"`` key.
    An id that several records share becomes ``"{id}@{row}"`` in all of them (build_pairs needs
    unique ids); a record without id is ``"row-{row:07d}"``.
    ``type_map``: extra released type strings -> our negative types; negative types otherwise
    come from :data:`TYPE_ALIASES` or :func:`from_released_type` and must be one of
    ``NEGATIVE_TYPES``. Score-1 completions must have a type in :data:`CHOSEN_TYPES`.

    A structural error (not a list, a record not an object, a missing field, a wrong type, a score
    not 0/1, a type that does not match its score, no chosen or no negative completion, an empty
    response) raises :class:`DataError` naming the file, row (and id) and field.
    """
    check_missing_policy(missing)
    path = Path(json_path)
    root = path.parent if image_root is None else Path(image_root)
    aliases = {**TYPE_ALIASES, **dict(type_map or {})}
    for k, v in aliases.items():
        if not isinstance(v, str) or not v or v == GT_TYPE or v in RELEASED_TYPES.values():
            raise ValueError(f"type_map[{k!r}] must be one of our negative type names, got {v!r}")
    known = set(NEGATIVE_TYPES) | set(aliases.values())
    accepted = sorted(set(RELEASED_TYPES.values()) | set(aliases) | set(NEGATIVE_TYPES))  # for messages

    data = read_json_list(path)
    report = LoadReport(path=str(path), rows=len(data))
    images: dict[Path, LazyImage | str] = {}  # one object per file: records sharing it share pixels
    repeated = repeated_ids(data)
    out = []
    for row, item in enumerate(tqdm(data, desc=f"reading {path.name}", unit="record", disable=not progress)):
        file_id = item.get("id") if isinstance(item, dict) else None  # as the file has it, for messages

        def fail(fld: str | None, msg: str):
            raise DataError(path, row, fld, msg, file_id)

        if not isinstance(item, dict):
            fail(None, f"a record must be a JSON object, got {type(item).__name__}")
        for key in ("prompt", "image", "completions"):
            if key not in item:
                fail(key, "missing")
        if "id" in item:
            rid = str(file_id) if is_int(file_id) else file_id  # some files number their records
            if not isinstance(rid, str) or not rid:
                fail("id", f"must be a non-empty string, got {file_id!r}")
        else:
            rid = f"row-{row:07d}"
        if rid in repeated:
            rid = f"{rid}@{row}"  # build_pairs needs unique ids

        if not isinstance(item["prompt"], str):
            fail("prompt", f"must be a string, got {type(item['prompt']).__name__}")
        prompt = _bare_prompt(item["prompt"])
        if prompt is None:
            fail("prompt", f"must start or end with the image token {IMAGE_TOKEN!r} (once), got {item['prompt']!r:.120}")
        if not prompt.strip():
            fail("prompt", "empty question")
        rec_source = source if item.get("source") is None else item["source"]
        if rec_source is not None and not isinstance(rec_source, str):
            fail("source", f"must be a string or null, got {rec_source!r}")
        scene_id = item.get("scene_id")
        if scene_id is not None and not isinstance(scene_id, str):
            fail("scene_id", f"must be a string or null, got {scene_id!r}")

        comps = item["completions"]
        if not isinstance(comps, list) or not comps:
            fail("completions", "must be a non-empty list")
        chosen, negatives = [], []
        for j, c in enumerate(comps):
            f = f"completions[{j}]"
            if not isinstance(c, dict):
                fail(f, f"must be an object, got {type(c).__name__}")
            for key in ("score", "response", "type"):
                if key not in c:
                    fail(f"{f}.{key}", "missing")
            score, response, ctype = c["score"], c["response"], c["type"]
            # 1.0 / 0.0 are fine (JSON writers differ); True/False are not scores
            if isinstance(score, bool) or not isinstance(score, (int, float)) or score not in (0, 1):
                fail(f"{f}.score", f"must be 0 or 1, got {score!r}")
            if not isinstance(response, str):
                fail(f"{f}.response", f"must be a string, got {type(response).__name__}")
            if not response.strip():
                fail(f"{f}.response", "empty response")
            if not isinstance(ctype, str) or not ctype:
                fail(f"{f}.type", f"must be a non-empty string, got {ctype!r}")
            if score == 1:
                if ctype not in CHOSEN_TYPES:
                    fail(f"{f}.type", f"score 1 needs a ground-truth type {CHOSEN_TYPES}, got {ctype!r}")
                chosen.append(response)
                continue
            if ctype in CHOSEN_TYPES:
                fail(f"{f}.type", f"ground-truth type {ctype!r} with score 0")
            ntype = aliases.get(ctype) or from_released_type(ctype)
            if ntype not in known:
                fail(f"{f}.type", f"unknown type {ctype!r}: expected one of {accepted} (or pass type_map)")
            place, step = c.get("noise_place"), c.get("noise_step")
            if place is not None and not isinstance(place, str):
                fail(f"{f}.noise_place", f"must be a string or null, got {place!r}")
            if step is not None and (not is_int(step) or step < 0):
                fail(f"{f}.noise_step", f"must be a non-negative int or null, got {step!r}")
            negatives.append(Negative(response, ntype, place, step))
        if not chosen:
            fail("completions", f"no chosen completion (score 1, type in {CHOSEN_TYPES})")
        if not negatives:
            fail("completions", "no negative completion (score 0)")

        # The image last: a structurally broken record raises even when its image is also missing.
        if item["image"] is None:
            report.add_skipped(row, "no image")
            continue
        if not isinstance(item["image"], str) or not item["image"]:
            fail("image", f"must be an image path or null, got {item['image']!r}")
        image_path = _resolve_image(root, item["image"])
        if image_path not in images:
            if not image_path.is_file():
                images[image_path] = "missing"
            else:
                try:
                    images[image_path] = LazyImage.open(image_path, verify=verify)
                except _IMAGE_ERRORS as e:
                    images[image_path] = f"{type(e).__name__}: {e}"
        image = images[image_path]
        if isinstance(image, str):  # "missing" or the error reading it
            report.skip_image(row, image_path, image, missing, record_id=file_id)
            continue
        out.append(Candidate(rid, prompt, image, tuple(chosen), tuple(negatives), rec_source, scene_id))
    report.kept = len(out)
    return out, report
