"""Loaders and scorers for the real benchmarks the paper reports: MM-Vet, LLaVA-Bench-in-the-Wild,
POPE and Object HalBench (CHAIR on COCO), so real LLaVA-1.5 answers can be scored like the world's.

Loaders read the files as their authors publish them and return ``(items, LoadReport)``. Every item
is a plain dict with ``item_id``, ``image`` (the file name as written), ``image_path`` (absolute) and
``question``, plus the benchmark's fields:

- MM-Vet (``mm-vet.json``): ``answer`` (raw, ``<AND>``/``<OR>`` kept), ``capabilities`` (the paper's
  names Rec/OCR/Know/Gen/Spat/Math, in that order) and ``capability_tags`` (MM-Vet's own);
- LLaVA-Wild (``questions.jsonl`` + ``answers_gpt4.jsonl`` + ``context.jsonl``): ``question_id``,
  ``category`` (the world's names: conv -> conversation, detail, complex -> reasoning),
  ``category_tag`` (LLaVA's), ``reference`` (GPT-4's answer) and ``caption`` (None without their file);
- POPE (``coco_pope_<split>.json``, one JSON object a line): ``question_id``, ``label`` (yes/no),
  ``split`` (given, or read from the file name, else None);
- Object HalBench (description prompts + COCO ``instances_*.json`` [+ ``captions_*.json``]):
  ``image_id``, ``coco_objects`` (COCO class names of the image's segmentation labels) and
  ``captions`` (its COCO captions; [] without the captions file).

Strictness, so that nothing is lost without a word (as in ``bpo.real.errors``): a malformed record
raises ``DataError`` naming the file, the row (and the record's id) and the field. A row counts
records from 0: a JSON list's index, a JSON-lines record's index among the non-blank lines, the
position of a key in MM-Vet's JSON object; a COCO file's entries are named in the field
(``annotations[12].category_id``). Records that two files must share (LLaVA-Wild's answers and
captions, COCO's images) are joined both ways: a question without its answer and an answer without
its question are both errors. Only an image problem is tolerated: with ``missing="count"``
(default) a record whose image file is missing, or does not open as an image (only its header is
read), is skipped and listed in ``LoadReport.missing_images`` / ``unreadable_images`` with its row;
with ``missing="raise"`` it is a ``DataError``. ``rows == kept + n_skipped`` always.

Scorers have the world judges' shape, ``(records per item, summary)``, and reuse their summaries,
so the bootstrap in ``bpo.evaluation.uncertainty`` works on their records unchanged:
- ``score_pope_real``: POPE's reference answer rule and metrics (``bpo.evaluation.pope``);
- ``score_chair_coco``: CHAIR_i, Object HalBench's CHAIR_s and recall (``summarise_halbench``);
- MM-Vet and LLaVA-Wild need an LLM judge (``bpo.evaluation.llm_judge``), so this module only builds
  its records: ``mmvet_judge_inputs`` -> ``MMVetJudge.score`` -> ``bpo.evaluation.mmvet.summarise_mmvet``
  (per capability and Total, x100), and ``wild_judge_inputs`` -> ``WildJudge.score`` ->
  ``summarise_judged_wild`` (relative score per category and ``all``).

CHAIR here follows the definition, not the reference script line by line: words are lower-cased
letter runs ("hot-dog" is "hot dog"), plurals are singularised by a few suffix rules and a short list
of irregular nouns, tried only when the word itself is not a synonym, and the longest synonym phrase
wins ("hot dogs" is hot dog, not dog). The reference's extra hand rules (e.g. "baby elephant" is not a
person, "toilet seat" is not a chair) and its POS-tagged lemmatiser are not reproduced, so its numbers
can differ slightly on responses that use such phrases. Negation is ignored, as in the reference.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError
from tqdm.auto import tqdm

from bpo.evaluation.benchmarks import CAPABILITIES, POPE_SPLITS, WILD_CATEGORIES
from bpo.evaluation.common import check_choice, check_inputs
from bpo.evaluation.halbench import summarise_halbench
from bpo.evaluation.pope import pope_answer, summarise_pope
from bpo.real.errors import DataError, LoadReport, check_missing_policy, is_int, read_json_list

MMVET_CAPABILITIES = {"rec": "Rec", "ocr": "OCR", "know": "Know", "gen": "Gen", "spat": "Spat", "math": "Math"}
WILD_CATEGORY_NAMES = {"conv": "conversation", "detail": "detail", "complex": "reasoning"}

_IMAGE_ERRORS = (OSError, UnidentifiedImageError, Image.DecompressionBombError)


# ----------------------------------------------------------------------------------------------------
# reading files


# errors.py's read_json_list only takes a list; MM-Vet's file and COCO's are JSON objects
def _read_json(path: Path) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise DataError(path, None, None, f"not valid JSON: {e.msg} (line {e.lineno}, column {e.colno})") from e


# read_json_list takes JSON lines only from a *.jsonl; POPE's JSON-lines files are named *.json
def _read_json_lines(path: Path) -> list:
    """The values of a JSON-lines file whatever its suffix; a record's row is its index among the
    non-blank lines (as in ``read_json_list``)."""
    records = []
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]  # a trailing newline or blank line is no record
    for row, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as e:
            raise DataError(path, row, None, f"not valid JSON ({e})") from e
    return records


def _read_records(path: Path) -> list[dict]:
    """The records (JSON objects, at least one) of a JSON list or JSON-lines file. JSON lines are told
    by the ``.jsonl`` suffix or, failing that, by the content not opening with ``[`` (POPE's
    JSON-lines files are called ``*.json``); ``read_json_list`` reads all but the latter."""
    with open(path, encoding="utf-8") as f:
        head = f.read(4096).lstrip()
    records = read_json_list(path) if path.suffix == ".jsonl" or head.startswith("[") else _read_json_lines(path)
    if not records:
        raise DataError(path, None, None, "the file holds no records")
    for row, record in enumerate(records):
        if not isinstance(record, dict):
            raise DataError(path, row, None, f"a record must be a JSON object, got {type(record).__name__}")
    return records


class _Record:
    """One record of a file, for reading its fields with errors that name file, row, id and field."""

    def __init__(self, path: Path, row: int | None, record: Mapping, record_id: Any = None, prefix: str = ""):
        self.path, self.row, self.record, self.record_id, self.prefix = path, row, record, record_id, prefix

    def fail(self, field: str | None, message: str):
        raise DataError(self.path, self.row, None if field is None else self.prefix + field, message, self.record_id)

    def get(self, field: str):
        if field not in self.record:
            self.fail(field, "missing")
        return self.record[field]

    def text(self, field: str) -> str:
        """A non-empty string."""
        value = self.get(field)
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"must be a non-empty string, got {value!r:.80}")
        return value

    def integer(self, field: str) -> int:
        value = self.get(field)
        if not is_int(value):
            self.fail(field, f"must be an integer, got {value!r:.80}")
        return value

    def ident(self, field: str) -> int | str:
        """An id: an integer or a non-empty string (published files use ints; hand-made ones may not)."""
        value = self.get(field)
        if not (is_int(value) or isinstance(value, str) and value.strip()):
            self.fail(field, f"must be an integer or a non-empty string, got {value!r:.80}")
        return value


def _image_dir(image_dir, where: str) -> Path:
    d = Path(os.path.abspath(os.path.expanduser(image_dir)))
    if not d.is_dir():
        # a wrong folder would report every image missing: say so once instead
        raise NotADirectoryError(f"{where}: image_dir {str(d)!r} is not a directory")
    return d


def _keep_with_images(path: Path, pending: list[tuple[int, Any, dict]], image_dir: Path, image_field: str,
                      missing: str) -> tuple[list[dict], LoadReport]:
    """Items (row, record id, item) whose image file exists and opens; the others listed in the
    report (or raised). Only the image header is read: a corrupt body shows on first use."""
    report = LoadReport(path=str(path), rows=len(pending))
    items, checked = [], {}
    for row, record_id, item in pending:
        image_path = image_dir / item["image"]
        if image_path not in checked:  # POPE asks ~6 questions per image: open each once
            if not image_path.is_file():
                checked[image_path] = "missing"
            else:
                try:
                    with Image.open(image_path):
                        checked[image_path] = None
                except _IMAGE_ERRORS as e:
                    checked[image_path] = f"{type(e).__name__}: {e}"
        if checked[image_path] is None:
            items.append({**item, "image_path": str(image_path)})
        else:
            report.skip_image(row, image_path, checked[image_path], missing, image_field, record_id)
    report.kept = len(items)
    return items, report


# ----------------------------------------------------------------------------------------------------
# loaders


def load_mmvet(json_path: str | os.PathLike, image_dir: str | os.PathLike,
               missing: str = "count") -> tuple[list[dict], LoadReport]:
    """MM-Vet's ``mm-vet.json`` (``{"v1_0": {"imagename", "question", "answer", "capability"}}``), in
    file order; item_id is the key, a record's row its position in the file (from 0)."""
    check_missing_policy(missing)
    path, images = Path(json_path), _image_dir(image_dir, "load_mmvet")
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, None, None,
                        f"the top level must be a JSON object keyed by question id, got {type(data).__name__}")
    if not data:
        raise DataError(path, None, None, "the file holds no records")
    pending = []
    for row, (key, record) in enumerate(data.items()):
        r = _Record(path, row, record, key)
        if not isinstance(record, dict):
            r.fail(None, f"a record must be a JSON object, got {type(record).__name__}")
        image, question = r.text("imagename"), r.text("question")
        answer = r.get("answer")
        # a bare number is a plain answer ("42"); anything else non-textual is malformed
        if isinstance(answer, (int, float)) and not isinstance(answer, bool):
            answer = str(answer)
        if not isinstance(answer, str) or not answer.strip():
            r.fail("answer", f"must be a non-empty string, got {answer!r:.80}")
        tags = r.get("capability")
        if not isinstance(tags, list) or not tags or not all(isinstance(t, str) for t in tags):
            r.fail("capability", f"must be a non-empty list of capability tags, got {tags!r:.80}")
        unknown = [t for t in tags if t.strip().lower() not in MMVET_CAPABILITIES]
        if unknown:
            r.fail("capability", f"unknown tag(s) {unknown}; expected some of {tuple(MMVET_CAPABILITIES)}")
        names = {MMVET_CAPABILITIES[t.strip().lower()] for t in tags}
        pending.append((row, key, {"item_id": key, "image": image, "question": question, "answer": answer,
                                   "capabilities": [c for c in CAPABILITIES if c in names],
                                   "capability_tags": list(tags)}))
    return _keep_with_images(path, pending, images, "imagename", missing)


def load_llava_wild(questions_jsonl: str | os.PathLike, image_dir: str | os.PathLike,
                    answers_jsonl: str | os.PathLike | None = None, context_jsonl: str | os.PathLike | None = None,
                    missing: str = "count") -> tuple[list[dict], LoadReport]:
    """LLaVA-Bench-in-the-Wild: questions joined with GPT-4's reference answers (by question_id) and
    the image captions (by image), when those files are given. Every row of every file must join:
    a question without its answer or caption, or an answer or caption without its question, raises."""
    check_missing_policy(missing)
    qpath, images = Path(questions_jsonl), _image_dir(image_dir, "load_llava_wild")
    pending, first_row = [], {}
    for row, record in enumerate(_read_records(qpath)):
        r = _Record(qpath, row, record, record.get("question_id"))
        qid = r.ident("question_id")
        if str(qid) in first_row:
            r.fail("question_id", f"duplicate of row {first_row[str(qid)]}")
        first_row[str(qid)] = row
        image, question, tag = r.text("image"), r.text("text"), r.text("category")
        if tag not in WILD_CATEGORY_NAMES:
            r.fail("category", f"unknown category {tag!r}; expected one of {tuple(WILD_CATEGORY_NAMES)}")
        pending.append((row, qid, {"item_id": str(qid), "question_id": qid, "image": image, "question": question,
                                   "category": WILD_CATEGORY_NAMES[tag], "category_tag": tag,
                                   "reference": None, "caption": None}))

    if answers_jsonl is not None:
        apath, answers = Path(answers_jsonl), {}
        for row, record in enumerate(_read_records(apath)):
            r = _Record(apath, row, record, record.get("question_id"))
            qid = r.ident("question_id")
            if str(qid) not in first_row:
                r.fail("question_id", f"no question with question_id {qid!r} in {qpath}")
            if str(qid) in answers:
                r.fail("question_id", f"a second answer for question_id {qid!r}")
            answers[str(qid)] = r.text("text")
        for row, qid, item in pending:
            if item["item_id"] not in answers:
                raise DataError(qpath, row, "question_id", f"question_id {qid!r} has no reference answer in {apath}", qid)
            item["reference"] = answers[item["item_id"]]

    if context_jsonl is not None:
        cpath, captions = Path(context_jsonl), {}
        asked = {item["image"] for _, _, item in pending}
        for row, record in enumerate(_read_records(cpath)):
            r = _Record(cpath, row, record, record.get("id"))
            image = r.text("image")
            if image in captions:
                r.fail("image", f"a second caption for image {image!r}")
            if image not in asked:
                r.fail("image", f"no question in {qpath} is about image {image!r}")
            captions[image] = r.text("caption")
        for row, qid, item in pending:
            if item["image"] not in captions:
                raise DataError(qpath, row, "image", f"image {item['image']!r} has no caption in {cpath}", qid)
            item["caption"] = captions[item["image"]]
    return _keep_with_images(qpath, pending, images, "image", missing)


def pope_split_of(path: str | os.PathLike) -> str | None:
    """The POPE split a file name names (``coco_pope_adversarial.json`` -> adversarial), else None."""
    name = Path(path).name.lower()
    found = [s for s in POPE_SPLITS if s in name]
    return found[0] if len(found) == 1 else None


def load_pope(jsonl_path: str | os.PathLike, image_dir: str | os.PathLike, split: str | None = None,
              missing: str = "count") -> tuple[list[dict], LoadReport]:
    """One POPE file (one JSON object a line, whatever its suffix). ``split`` defaults to the one its
    file name names, else None; item_id is ``<split>-<question_id>`` (POPE's three files reuse the
    same question ids), or the question_id alone when the split is unknown."""
    check_missing_policy(missing)
    if split is not None:
        check_choice(split, POPE_SPLITS, "POPE split", "load_pope")
    path, images = Path(jsonl_path), _image_dir(image_dir, "load_pope")
    split = split if split is not None else pope_split_of(path)
    pending, first_row = [], {}
    for row, record in enumerate(_read_records(path)):
        r = _Record(path, row, record, record.get("question_id"))
        qid = r.ident("question_id")
        if str(qid) in first_row:
            r.fail("question_id", f"duplicate of row {first_row[str(qid)]}")
        first_row[str(qid)] = row
        image, question = r.text("image"), r.text("text")
        label = r.text("label").strip().lower()
        if label not in ("yes", "no"):
            r.fail("label", f"must be 'yes' or 'no', got {record['label']!r:.80}")
        pending.append((row, qid, {"item_id": f"{split}-{qid}" if split else str(qid), "question_id": qid,
                                   "image": image, "question": question, "label": label, "split": split}))
    return _keep_with_images(path, pending, images, "image", missing)


def _coco_entries(path: Path, data: Mapping, key: str, progress: bool = False):
    """(index, _Record) for each entry of COCO's ``data[key]`` list; fields read as ``key[i].field``."""
    if not isinstance(data.get(key), list):
        raise DataError(path, None, key, "missing or not a list")
    for i, entry in enumerate(tqdm(data[key], desc=f"{path.name}: {key}", disable=not progress)):
        r = _Record(path, None, entry, prefix=f"{key}[{i}].")
        if not isinstance(entry, dict):
            raise DataError(path, None, f"{key}[{i}]", f"must be a JSON object, got {type(entry).__name__}")
        yield i, r


def _read_coco_instances(path: Path, progress: bool) -> tuple[dict[int, str], dict[int, set[str]]]:
    """(image id -> file name, image id -> COCO class names) from an ``instances_*.json``."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, None, None, "the top level must be a COCO annotation object")
    files: dict[int, str] = {}
    for _, r in _coco_entries(path, data, "images"):
        image_id = r.integer("id")
        if image_id in files:
            r.fail("id", f"duplicate image id {image_id}")
        files[image_id] = r.text("file_name")
    names: dict[int, str] = {}
    for _, r in _coco_entries(path, data, "categories"):
        names[r.integer("id")] = r.text("name")
    objects: dict[int, set[str]] = {image_id: set() for image_id in files}
    # val2014 has ~290k annotations: worth a bar
    for _, r in _coco_entries(path, data, "annotations", progress):
        image_id, category_id = r.integer("image_id"), r.integer("category_id")
        if image_id not in files:
            r.fail("image_id", f"image id {image_id} is not among the file's images")
        if category_id not in names:
            r.fail("category_id", f"unknown category id {category_id}")
        objects[image_id].add(names[category_id])
    return files, objects


def _read_coco_captions(path: Path, wanted: set[int], progress: bool) -> dict[int, list[str]]:
    """image id -> its captions, for the ``wanted`` images, from a ``captions_*.json``."""
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(path, None, None, "the top level must be a COCO annotation object")
    captions: dict[int, list[str]] = {}
    for _, r in _coco_entries(path, data, "annotations", progress):
        image_id, caption = r.integer("image_id"), r.text("caption")
        if image_id in wanted:
            captions.setdefault(image_id, []).append(caption)
    return captions


def load_object_halbench(prompts_path: str | os.PathLike, instances_json: str | os.PathLike,
                         image_dir: str | os.PathLike, captions_json: str | os.PathLike | None = None,
                         missing: str = "count", progress: bool = True) -> tuple[list[dict], LoadReport]:
    """Object HalBench: description prompts (JSON lines or a JSON list of ``{"image_id", "question"}``,
    optionally ``"image"`` and ``"question_id"``) with each image's COCO ground truth: the classes of
    its segmentation labels (``instances_json``) and its captions (``captions_json``, optional; CHAIR
    uses both).

    ``image`` defaults to COCO's file name and must agree with it when given. item_id is the
    prompt's question_id when it has one, else the image id, or ``<image_id>@<row>`` when several
    prompts share an image."""
    check_missing_policy(missing)
    ppath, ipath, images = Path(prompts_path), Path(instances_json), _image_dir(image_dir, "load_object_halbench")
    prompts = []
    for row, record in enumerate(_read_records(ppath)):
        r = _Record(ppath, row, record, record.get("question_id", record.get("image_id")))
        image_id, question = r.integer("image_id"), r.text("question")
        image = r.text("image") if "image" in record else None
        qid = r.ident("question_id") if "question_id" in record else None
        prompts.append((r, image_id, image, question, qid))
    files, objects = _read_coco_instances(ipath, progress)
    uses = Counter(image_id for _, image_id, *_ in prompts)
    captions = None if captions_json is None else _read_coco_captions(Path(captions_json), set(uses), progress)

    pending, first_row = [], {}
    for r, image_id, image, question, qid in prompts:
        if image_id not in files:
            r.fail("image_id", f"image id {image_id} is not in {ipath}")
        if image is not None and image != files[image_id]:
            r.fail("image", f"{image!r:.80} is not COCO's file {files[image_id]!r} for image id {image_id}")
        if captions is not None and image_id not in captions:
            r.fail("image_id", f"image id {image_id} has no caption in {captions_json}")
        iid = str(qid) if qid is not None else str(image_id) if uses[image_id] == 1 else f"{image_id}@{r.row}"
        if iid in first_row:
            r.fail("question_id", f"item id {iid!r} is also row {first_row[iid]}'s")
        first_row[iid] = r.row
        pending.append((r.row, r.record_id, {
            "item_id": iid, "image_id": image_id, "image": files[image_id], "question": question,
            "coco_objects": sorted(objects[image_id]),
            "captions": list(captions[image_id]) if captions is not None else []}))
    return _keep_with_images(ppath, pending, images, "image", missing)


# ----------------------------------------------------------------------------------------------------
# CHAIR words


def _words(text: str) -> list[str]:
    # letter runs only: "hot-dog" -> hot dog, "man's" -> man s, digits and punctuation dropped
    return re.findall(r"[a-z]+", text.lower())


def load_chair_synonyms(path: str | os.PathLike) -> dict[str, str]:
    """CHAIR's ``synonyms.txt``: per line, a COCO class then its synonyms, comma-separated. Returns
    word or phrase (lower-case letter runs, single-spaced) -> class; each class maps to itself. A
    record's row is its index among the non-blank lines. A word listed under two classes is an error;
    repeats under one class (the standard file has some) are harmless."""
    path = Path(path)
    synonyms: dict[str, str] = {}
    first_row: dict[str, int] = {}
    with open(path, encoding="utf-8") as f:
        lines = [line for line in f if line.strip()]
    for row, line in enumerate(lines):
        raw = [e.strip() for e in line.split(",")]
        entries = [" ".join(_words(e)) for e in raw]
        if not entries[0]:
            raise DataError(path, row, None, f"a line must start with a COCO class name, got {line.strip()!r:.80}")
        for text, entry in zip(raw, entries):
            if not entry:
                if text:  # text without letters (e.g. "123"): no response word could ever match it
                    raise DataError(path, row, None, f"synonym {text!r} has no letters", entries[0])
                continue  # an empty entry (a trailing comma) names nothing
            if synonyms.get(entry, entries[0]) != entries[0]:
                raise DataError(path, row, None, f"{entry!r} is listed under {entries[0]!r} here and under "
                                f"{synonyms[entry]!r} in row {first_row[entry]}", entries[0])
            synonyms.setdefault(entry, entries[0])
            first_row.setdefault(entry, row)
    if not synonyms:
        raise DataError(path, None, None, "the file holds no synonyms")
    return synonyms


# irregular plurals of nouns that COCO's synonym lists use; regular ones follow the suffix rules
_IRREGULAR = {"men": "man", "women": "woman", "children": "child", "people": "person", "mice": "mouse",
              "geese": "goose", "oxen": "ox", "feet": "foot", "teeth": "tooth", "knives": "knife",
              "wolves": "wolf", "leaves": "leaf", "shelves": "shelf", "loaves": "loaf"}


def _singulars(word: str) -> list[str]:
    """Possible singulars of ``word``, most specific first; the caller keeps the first that is a synonym."""
    out = [_IRREGULAR[word]] if word in _IRREGULAR else []
    if word.endswith("ies") and len(word) > 4:
        out.append(word[:-3] + "y")  # puppies -> puppy
    if word.endswith("ves"):
        out += [word[:-3] + "f", word[:-3] + "fe"]  # shelves, knives
    if word.endswith("es"):
        out.append(word[:-2])  # buses, benches, boxes
    if word.endswith("s") and not word.endswith("ss"):
        out.append(word[:-1])  # cars, bikes ("glass" is no plural)
    return [w for w in out if w]


def _max_words(synonyms: Mapping[str, str]) -> int:
    return max(len(k.split()) for k in synonyms)


def _objects_in(words: list[str], synonyms: Mapping[str, str], max_words: int) -> list[str]:
    """COCO classes named in ``words``, each once, in order of first mention; longest phrase first."""
    found: list[str] = []
    i = 0
    while i < len(words):
        step, cls = 1, None
        for n in range(min(max_words, len(words) - i), 0, -1):
            head, last = words[i:i + n - 1], words[i + n - 1]
            cls = next((synonyms[p] for p in (" ".join([*head, w]) for w in [last, *_singulars(last)])
                        if p in synonyms), None)
            if cls is not None:
                step = n
                break
        if cls is not None and cls not in found:
            found.append(cls)
        i += step
    return found


def coco_objects_in(text: str, synonyms: Mapping[str, str]) -> list[str]:
    """COCO classes ``text`` names (CHAIR's reading; see the module docstring), each once."""
    return _objects_in(_words(text), synonyms, _max_words(synonyms))


def _check_synonyms(synonyms, where: str) -> dict[str, str]:
    if not isinstance(synonyms, Mapping) or not synonyms:
        raise TypeError(f"{where}: synonyms must be a non-empty dict word -> COCO class (load_chair_synonyms), "
                        f"got {type(synonyms).__name__}")
    return dict(synonyms)


def score_chair_coco(items: list[dict], responses, synonyms: Mapping[str, str]) -> tuple[list[dict], dict]:
    """CHAIR on COCO for Object HalBench items (``load_object_halbench``). An image's truth is its
    segmentation classes plus the classes its COCO captions name; each class counts once per response.
    Records: mentioned / hallucinated / recalled classes, n_truth, truth. Summary (x100, as
    ``summarise_halbench``): object_hall = CHAIR_i, response_hall = CHAIR_s over responses naming >= 1
    object, object_recall, and the counts behind them."""
    where = "score_chair_coco"
    responses = check_inputs(items, responses, where, ("item_id", "coco_objects", "captions"))
    synonyms = _check_synonyms(synonyms, where)
    max_words = _max_words(synonyms)
    records = []
    for i, (item, response) in enumerate(zip(items, responses)):
        truth = set()
        for name in item["coco_objects"]:
            key = " ".join(_words(name))
            if key not in synonyms:
                raise ValueError(f"{where}: item {i} ({item['item_id']}): COCO class {name!r} is not in the synonym list")
            truth.add(synonyms[key])
        for caption in item["captions"]:
            truth.update(_objects_in(_words(caption), synonyms, max_words))
        mentioned = set(_objects_in(_words(response), synonyms, max_words))
        records.append({"item_id": item["item_id"], "mentioned": sorted(mentioned),
                        "hallucinated": sorted(mentioned - truth), "recalled": sorted(mentioned & truth),
                        "n_truth": len(truth), "truth": sorted(truth)})
    return records, summarise_halbench(records)


# ----------------------------------------------------------------------------------------------------
# POPE


def score_pope_real(items: list[dict], responses) -> tuple[list[dict], dict]:
    """POPE with the reference reading of answers (``pope_answer``): records (answer, decided_by,
    correct) and accuracy, precision, recall, F1 and yes-ratio (x100) per split present and ``all``."""
    where = "score_pope_real"
    responses = check_inputs(items, responses, where, ("item_id", "label"))
    records = []
    for i, (item, response) in enumerate(zip(items, responses)):
        if item["label"] not in ("yes", "no"):
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has label {item['label']!r}; "
                             "expected 'yes' or 'no'")
        split = item.get("split")
        if split is not None and split not in POPE_SPLITS:
            raise ValueError(f"{where}: item {i} ({item['item_id']}) has unknown split {split!r}; "
                             f"expected one of {POPE_SPLITS}")
        answer, decided_by = pope_answer(response)
        records.append({"item_id": item["item_id"], "split": split, "label": item["label"],
                        "answer": answer, "decided_by": decided_by, "correct": answer == item["label"]})
    # items without a split count in "all" only
    return records, summarise_pope(records)


# ----------------------------------------------------------------------------------------------------
# MM-Vet and LLaVA-Wild: the records the LLM judges (``bpo.evaluation.llm_judge``) score


def mmvet_judge_inputs(items: list[dict], responses) -> list[dict]:
    """The records ``MMVetJudge.score`` reads, one per item: item_id, question, answer (MM-Vet's
    ground truth, ``<AND>``/``<OR>`` kept), response, and capabilities (the paper's names, which the
    judge passes through so ``bpo.evaluation.mmvet.summarise_mmvet`` summarises its results)."""
    where = "mmvet_judge_inputs"
    responses = check_inputs(items, responses, where, ("item_id", "question", "answer", "capabilities"))
    for i, it in enumerate(items):
        caps = it["capabilities"]
        # summarise_mmvet would count an unknown name in Total but in no capability: refuse it here
        if isinstance(caps, (str, bytes)) or not isinstance(caps, Sequence) or not caps \
                or any(c not in CAPABILITIES for c in caps):
            raise ValueError(f"{where}: item {i} ({it['item_id']}) has capabilities {caps!r}; "
                             f"expected a non-empty list from {CAPABILITIES}")
    return [{"item_id": it["item_id"], "question": it["question"], "answer": it["answer"], "response": r,
             "capabilities": list(it["capabilities"])} for it, r in zip(items, responses)]


def wild_judge_inputs(items: list[dict], responses) -> list[dict]:
    """The records ``WildJudge.score`` reads, one per item: item_id, question, caption (the context
    LLaVA's judge is shown instead of the image), reference (GPT-4's answer), response, and category
    (the world's names, which the judge passes through, so ``summarise_judged_wild`` reports
    conversation / detail / reasoning). Items need both reference and caption."""
    where = "wild_judge_inputs"
    responses = check_inputs(items, responses, where, ("item_id", "question", "reference", "category", "caption"))
    for i, it in enumerate(items):
        for field, source in (("reference", "answers_jsonl"), ("caption", "context_jsonl")):
            if not isinstance(it[field], str):
                raise ValueError(f"{where}: item {i} ({it['item_id']}) has no {field}; load the benchmark with {source}")
        if it["category"] not in WILD_CATEGORIES:
            raise ValueError(f"{where}: item {i} ({it['item_id']}) has unknown category {it['category']!r}; "
                             f"expected one of {WILD_CATEGORIES}")
    return [{"item_id": it["item_id"], "question": it["question"], "caption": it["caption"],
             "reference": it["reference"], "response": r, "category": it["category"]}
            for it, r in zip(items, responses)]
