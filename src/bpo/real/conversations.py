"""Ground truths from LLaVA-style conversation files (LLaVA-Instruct, ShareGPT4V, LLaVAR).

Each record reads::

    {"id": "000000033471", "image": "coco/train2017/000000033471.jpg",
     "conversations": [{"from": "human", "value": "<image>\\nWhat is on the table?"},
                       {"from": "gpt", "value": "A red cup."}, ...]}

:func:`load_conversations` turns a file into one row per (human turn, gpt answer), the
(question, ground truth) pairs that negatives are made for; :func:`sample_ground_truths` picks one
turn per record for ``n`` records, as :func:`bpo.preference.bootstrap.ground_truths` does for the
synthetic world. Only the image files' existence is checked here (``verify`` decodes them), as the
sources hold hundreds of thousands of records.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from tqdm.auto import tqdm

from bpo.models.chat import IMAGE_TOKEN
from bpo.real.errors import DataError, LoadReport, check_missing_policy, is_int, read_json_list, repeated_ids

COLUMNS = ("candidate_id", "source", "row", "turn", "image_path", "question", "chosen")
ROLES = ("human", "gpt")  # who speaks at even and odd positions

# The token with the newline (and spaces) that join it to the question, wherever it sits.
_TOKEN_RE = re.compile(r"[ \t]*\n?[ \t]*" + re.escape(IMAGE_TOKEN) + r"[ \t]*\n?[ \t]*")


def strip_image_token(text: str) -> str:
    """``text`` without the image token and the newline around it (``"<image>\\nQ"`` and
    ``"Q\\n<image>"`` both give ``"Q"``; a token mid-text becomes one space)."""
    return _TOKEN_RE.sub(" ", text).strip()


def load_conversations(json_path: str | os.PathLike, image_root: str | os.PathLike | None,
                       source: str | None = None, missing: str = "count", progress: bool = True,
                       verify: bool = False) -> tuple[pd.DataFrame, LoadReport]:
    """One row per (human turn, gpt answer) of the conversation file at ``json_path`` (JSON list,
    or ``.jsonl``), with columns :data:`COLUMNS`: ``candidate_id`` is ``"{id}:{turn}"`` (``turn``
    counts question-answer pairs from 0), ``source`` is ``source`` or the file's stem, ``row`` the
    record's index in the file, ``image_path`` absolute, ``question`` without the image token.
    An id that several records share (LLaVA-Instruct repeats image ids) becomes ``"{id}@{row}"``
    in all of them, so candidate ids stay unique; a record without id is ``"row-{row:07d}"``.

    ``image_root``: the folder the image paths are relative to (None: the JSON file's).
    Records without an image (text-only) are skipped with reason "no image"; records whose image
    file is missing (or, with ``verify``, unreadable) are skipped and listed (``missing="count"``)
    or raise :class:`DataError` (``missing="raise"``). Turns must alternate human/gpt starting with
    human and end with an answer; any structural error raises :class:`DataError` naming the file,
    row (and id) and field, e.g. ``conversations[3].from``.
    """
    check_missing_policy(missing)
    path = Path(json_path)
    root = path.parent if image_root is None else Path(image_root)
    source = path.stem if source is None else source
    data = read_json_list(path)
    report = LoadReport(path=str(path), rows=len(data))
    repeated = repeated_ids(data)
    status: dict[str, str] = {}  # image path -> "" (fine) or why not; files are shared by records
    rows = {k: [] for k in COLUMNS}
    kept = 0
    for row, item in enumerate(tqdm(data, desc=f"reading {path.name}", unit="record", disable=not progress)):
        file_id = item.get("id") if isinstance(item, dict) else None

        def fail(fld: str | None, msg: str):
            raise DataError(path, row, fld, msg, file_id)

        if not isinstance(item, dict):
            fail(None, f"a record must be a JSON object, got {type(item).__name__}")
        if "id" in item:
            rid = str(file_id) if is_int(file_id) else file_id
            if not isinstance(rid, str) or not rid:
                fail("id", f"must be a non-empty string, got {file_id!r}")
        else:
            rid = f"row-{row:07d}"
        if rid in repeated:
            rid = f"{rid}@{row}"
        if "conversations" not in item:
            fail("conversations", "missing")
        conv = item["conversations"]
        if not isinstance(conv, list) or not conv:
            fail("conversations", "must be a non-empty list of turns")
        pairs = []
        for j, turn in enumerate(conv):
            f = f"conversations[{j}]"
            if not isinstance(turn, dict):
                fail(f, f"must be an object, got {type(turn).__name__}")
            for key in ("from", "value"):
                if key not in turn:
                    fail(f"{f}.{key}", "missing")
            want = ROLES[j % 2]
            if turn["from"] != want:
                fail(f"{f}.from", f"turns must alternate human/gpt starting with human: expected {want!r}, "
                                  f"got {turn['from']!r}")
            if not isinstance(turn["value"], str):
                fail(f"{f}.value", f"must be a string, got {type(turn['value']).__name__}")
            text = strip_image_token(turn["value"]) if want == "human" else turn["value"].strip()
            if not text:
                fail(f"{f}.value", "empty" + (" (apart from the image token)" if want == "human" else ""))
            if want == "human":
                question = text
            else:
                pairs.append((question, text))
        if len(conv) % 2:
            fail(f"conversations[{len(conv)}]", "missing: the last human turn has no gpt answer")

        image = item.get("image")
        if image is None:
            report.add_skipped(row, "no image")
            continue
        if not isinstance(image, str) or not image:
            fail("image", f"must be an image path or absent, got {image!r}")
        p = Path(image)
        image_path = os.path.abspath(p if p.is_absolute() else root / p)  # abspath: keep symlinked layouts
        if image_path not in status:
            status[image_path] = "" if os.path.isfile(image_path) else "missing"
            if verify and not status[image_path]:
                try:
                    with Image.open(image_path) as im:
                        im.load()
                except (OSError, Image.DecompressionBombError) as e:
                    status[image_path] = f"{type(e).__name__}: {e}"
        if status[image_path]:
            report.skip_image(row, image_path, status[image_path], missing, record_id=file_id)
            continue
        kept += 1
        for k, (question, answer) in enumerate(pairs):
            for col, v in zip(COLUMNS, (f"{rid}:{k}", source, row, k, image_path, question, answer)):
                rows[col].append(v)
    report.kept = kept
    frame = pd.DataFrame(rows, columns=list(COLUMNS))
    frame["row"] = frame["row"].astype("int64")
    frame["turn"] = frame["turn"].astype("int64")
    return frame, report


def sample_ground_truths(frame: pd.DataFrame, n: int, seed: int) -> pd.DataFrame:
    """``n`` records of ``frame`` (a :func:`load_conversations` frame, or several concatenated;
    a record is a (source, row)), one of its turns each, chosen with a generator seeded by
    ``seed``. The same seed gives the same rows, and a larger ``n`` extends a smaller one's
    choice (records come from one permutation, turns are drawn for every record). Rows are
    returned in (source, row) order with a fresh index. To balance sources, sample each alone."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    missing_cols = [c for c in ("source", "row") if c not in frame.columns]
    if missing_cols:
        raise ValueError(f"frame lacks columns {missing_cols}; pass a load_conversations frame")
    # Sort so that the frame's row order does not change the draw.
    ordered = frame.sort_values(["source", "row"] + (["turn"] if "turn" in frame.columns else []), kind="stable")
    groups = ordered.groupby(["source", "row"], sort=True).indices  # (source, row) -> positions in ordered
    keys = sorted(groups)
    if n > len(keys):
        raise ValueError(f"asked for {n} records but the frame has {len(keys)}")
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(keys))
    u = rng.random(len(keys))  # one draw per record, so a record's turn does not depend on n
    picked = np.sort(order[:n])
    positions = [groups[keys[i]][int(u[i] * len(groups[keys[i]]))] for i in picked]
    return ordered.iloc[positions].reset_index(drop=True)
