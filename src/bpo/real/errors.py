"""What every real-data loader shares: the error for a malformed file, the report of what was read
and skipped, the reading of a JSON (or JSON Lines) list of records, and small checks.

A malformed record is a bug in the file, so it raises :class:`DataError` naming the file, the row
(and the record's id) and the field. A record that is well formed but cannot be used (its image
file is missing or unreadable, it has no image) is skipped, and :class:`LoadReport` lists it with
its row and reason: nothing is dropped silently.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

MISSING_POLICIES = ("count", "raise")


class DataError(ValueError):
    """A malformed data file. Renders as
    ``data/bpo.json: row 17 (id 'abc'): field 'completions[2].score': must be 0 or 1, got 'x'``;
    ``row``, ``record_id`` and ``field`` are optional (a file-level problem has none); ``row`` is
    usually the record's index, or its key in a file that is a JSON object."""

    def __init__(self, path: str | os.PathLike, row: int | str | None = None, field: str | None = None,
                 message: str = "malformed", record_id: Any = None):
        self.path = str(path)
        self.row = row
        self.field = field
        self.message = message
        self.record_id = record_id
        parts = [self.path]
        if row is not None:
            parts.append(f"row {row}" + (f" (id {record_id!r})" if record_id is not None else ""))
        if field is not None:
            parts.append(f"field {field!r}")
        parts.append(message)
        super().__init__(": ".join(parts))

    def __reduce__(self):
        # The default would call DataError(rendered message), losing path/row/field (e.g. across
        # a multiprocessing worker).
        return (type(self), (self.path, self.row, self.field, self.message, self.record_id))


def is_int(x: Any) -> bool:
    """An int that is not a bool (JSON's true/false are not numbers here)."""
    return isinstance(x, int) and not isinstance(x, bool)


def repeated_ids(records: list) -> set[str]:
    """The ``"id"`` values (ints as strings) used by more than one record: LLaVA-Instruct, for one,
    reuses the image id for each of an image's conversations. Loaders make those ids unique."""
    seen, repeated = set(), set()
    for item in records:
        rid = item.get("id") if isinstance(item, dict) else None
        rid = str(rid) if is_int(rid) else rid
        if isinstance(rid, str):
            (repeated if rid in seen else seen).add(rid)
    return repeated


def check_missing_policy(missing: str) -> None:
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {MISSING_POLICIES}, got {missing!r}")


@dataclass
class LoadReport:
    """What a loader read from ``path``: ``rows`` records, ``kept`` of them used; every other row is
    in exactly one list with its reason, so ``rows == kept + n_skipped``.

    - ``missing_images``: (row, image path looked for) of records whose image file does not exist;
    - ``unreadable_images``: (row, image path, error) of records whose image could not be read;
    - ``skipped``: (row, reason) of records skipped for any other reason (e.g. "no image").
    """

    path: str
    rows: int = 0
    kept: int = 0
    missing_images: list[tuple[int, str]] = field(default_factory=list)
    unreadable_images: list[tuple[int, str, str]] = field(default_factory=list)
    skipped: list[tuple[int, str]] = field(default_factory=list)

    def add_missing(self, row: int, image_path: str | os.PathLike) -> None:
        self.missing_images.append((row, str(image_path)))

    def add_unreadable(self, row: int, image_path: str | os.PathLike, error: str) -> None:
        self.unreadable_images.append((row, str(image_path), error))

    def add_skipped(self, row: int, reason: str) -> None:
        self.skipped.append((row, reason))

    def skip_image(self, row: int, image_path: str | os.PathLike, problem: str, missing: str,
                   field: str = "image", record_id: Any = None) -> None:
        """A row whose image cannot be used (``problem``: "missing", or the error reading it): listed
        here with ``missing="count"``, a :class:`DataError` with ``missing="raise"``."""
        if missing == "raise":
            what = "image file missing" if problem == "missing" else f"cannot read image ({problem})"
            raise DataError(self.path, row, field, f"{what}: {image_path}", record_id)
        if problem == "missing":
            self.add_missing(row, image_path)
        else:
            self.add_unreadable(row, image_path, problem)

    @property
    def n_skipped(self) -> int:
        return len(self.missing_images) + len(self.unreadable_images) + len(self.skipped)

    def skipped_rows(self) -> list[int]:
        """Every skipped row, sorted."""
        return sorted([r for r, _ in self.missing_images] + [r for r, _, _ in self.unreadable_images]
                      + [r for r, _ in self.skipped])

    def counts_by_reason(self) -> dict[str, int]:
        counts = Counter({"missing image": len(self.missing_images),
                          "unreadable image": len(self.unreadable_images)})
        counts.update(reason for _, reason in self.skipped)
        return {k: v for k, v in counts.items() if v}

    def summary(self) -> str:
        """One line, e.g. ``bpo.json: 180000 records, 179991 kept, 9 skipped (missing image 7, no image 2)``."""
        line = f"{self.path}: {self.rows} records, {self.kept} kept, {self.n_skipped} skipped"
        reasons = self.counts_by_reason()
        if reasons:
            line += " (" + ", ".join(f"{k} {v}" for k, v in reasons.items()) + ")"
        return line

    def to_dict(self) -> dict:
        return {"path": self.path, "rows": self.rows, "kept": self.kept, "skipped": self.n_skipped,
                "by_reason": self.counts_by_reason(),
                "missing_images": [list(x) for x in self.missing_images],
                "unreadable_images": [list(x) for x in self.unreadable_images],
                "skipped_rows": [list(x) for x in self.skipped]}


def read_json_list(path: str | os.PathLike) -> list:
    """The records of a JSON list file, or of a JSON Lines file (``.jsonl``: one record a line,
    the row being the line's index among non-blank lines). Raises :class:`DataError` if the file
    is not valid JSON or not a list."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":
        records = []
        for i, line in enumerate(x for x in text.splitlines() if x.strip()):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise DataError(path, i, None, f"not valid JSON ({e})") from e
        return records
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise DataError(path, message=f"not valid JSON ({e})") from e
    if not isinstance(data, list):
        raise DataError(path, message=f"the top level must be a JSON list of records, got {type(data).__name__}")
    return data
