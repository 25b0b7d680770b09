"""Real-benchmark loaders and scorers (``bpo.real.benchmarks``) on tiny files written in the published
layouts: MM-Vet, LLaVA-Bench-in-the-Wild, POPE, Object HalBench with a mini COCO and a mini CHAIR
synonym list. MM-Vet and LLaVA-Wild are scored end to end through the real LLM judges
(``bpo.evaluation.llm_judge``) talking HTTP to a stand-in server on 127.0.0.1 with canned replies.
Every expected number is worked out by hand in a comment."""

from __future__ import annotations

import json
import math
import re
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
from PIL import Image

from bpo.evaluation.benchmarks import CAPABILITIES, WILD_CATEGORIES
from bpo.evaluation.llm_judge import ChatClient, JudgeConfig, MMVetJudge, WildJudge, summarise_judged_wild
from bpo.evaluation.mmvet import summarise_mmvet
from bpo.real.benchmarks import (
    coco_objects_in, load_chair_synonyms, load_llava_wild, load_mmvet, load_object_halbench, load_pope,
    mmvet_judge_inputs, score_chair_coco, score_pope_real, wild_judge_inputs,
)
from bpo.real.errors import DataError


class StandInJudge:
    """What the stand-in server answers (``replies``: text the request's last message contains ->
    the judge's reply; exactly one must match, else HTTP 418, which the client does not retry) and
    the request bodies it received."""

    def __init__(self):
        self.replies: dict[str, str] = {}
        self.requests: list[dict] = []


@pytest.fixture
def judge(monkeypatch):
    """A ``ChatClient`` (no cache, no retries) on a stand-in chat-completions server, and its ``StandInJudge``."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # a proxy must not capture loopback requests
    standin = StandInJudge()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            standin.requests.append(request)
            content = request["messages"][-1]["content"]
            hits = [reply for key, reply in standin.replies.items() if key in content]
            if len(hits) == 1:
                code, body = 200, {"choices": [{"index": 0, "message": {"role": "assistant", "content": hits[0]}}]}
            else:
                code, body = 418, {"error": f"{len(hits)} canned replies match this request"}
            payload = json.dumps(body).encode()
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):  # keep pytest's output clean
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    config = JudgeConfig(base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1", model="judge-4",
                         api_key="EMPTY", timeout_s=5.0, max_retries=0)
    yield ChatClient(config), standin
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=2)


def _image(path: Path, colour=(200, 30, 30)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (4, 4), colour).save(path)  # PNG or JPEG by the suffix
    return path


def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _raises(call, path: Path, row, field, record_id=None) -> DataError:
    with pytest.raises(DataError) as info:
        call()
    e = info.value
    assert (e.path, e.row, e.field) == (str(path), row, field), str(e)
    if record_id is not None:
        assert e.record_id == record_id
    return e


# ----------------------------------------------------------------------------------------------------
# MM-Vet


MMVET = {
    "v1_0": {"imagename": "v1_0.png", "question": "What is x in the equation?", "answer": "-1 <AND> -5",
             "capability": ["ocr", "math"]},
    "v1_1": {"imagename": "v1_1.png", "question": "What brand is the phone?", "answer": "Apple <OR> iPhone",
             "capability": ["rec", "ocr", "know"]},
    "v1_2": {"imagename": "v1_2.jpg", "question": "Where is the cup?", "answer": "left",
             "capability": ["spat", "rec"]},
}


def _mmvet(tmp_path, data=MMVET, images=("v1_0.png", "v1_1.png", "v1_2.jpg")):
    for name in images:
        _image(tmp_path / "images" / name)
    path = tmp_path / "mm-vet.json"
    path.write_text(json.dumps(data))
    return path, tmp_path / "images"


def test_mmvet_fields_and_capability_names(tmp_path):
    path, images = _mmvet(tmp_path)
    items, report = load_mmvet(path, images)
    assert [it["item_id"] for it in items] == ["v1_0", "v1_1", "v1_2"]
    first = items[0]
    assert first["answer"] == "-1 <AND> -5"  # raw, for the judge
    assert first["question"] == "What is x in the equation?"
    assert first["image_path"] == str((images / "v1_0.png").absolute()) and Path(first["image_path"]).is_absolute()
    # the paper's names, in Table 3's order, whatever the file's order
    assert [it["capabilities"] for it in items] == [["OCR", "Math"], ["Rec", "OCR", "Know"], ["Rec", "Spat"]]
    assert items[2]["capability_tags"] == ["spat", "rec"]
    assert (report.rows, report.kept, report.missing_images) == (3, 3, [])


def test_mmvet_missing_image_is_counted_with_row_and_path(tmp_path):
    path, images = _mmvet(tmp_path, images=("v1_0.png", "v1_2.jpg"))
    items, report = load_mmvet(path, images)
    assert [it["item_id"] for it in items] == ["v1_0", "v1_2"]
    assert (report.rows, report.kept) == (3, 2)
    assert report.missing_images == [(1, str(images / "v1_1.png"))]
    assert "1 skipped" in report.summary()
    e = _raises(lambda: load_mmvet(path, images, missing="raise"), path, 1, "imagename", "v1_1")
    assert "v1_1.png" in str(e)


def test_mmvet_unreadable_image_is_counted(tmp_path):
    path, images = _mmvet(tmp_path)
    (images / "v1_2.jpg").write_bytes(b"not an image")
    items, report = load_mmvet(path, images)
    assert len(items) == 2 and [r[:2] for r in report.unreadable_images] == [(2, str(images / "v1_2.jpg"))]


@pytest.mark.parametrize("key, change, field", [
    ("v1_1", {"question": ""}, "question"),
    ("v1_1", {"imagename": None}, "imagename"),
    ("v1_2", {"answer": ["left"]}, "answer"),
    ("v1_2", {"capability": "rec"}, "capability"),
    ("v1_2", {"capability": []}, "capability"),
    ("v1_0", {"capability": ["ocr", "vision"]}, "capability"),
])
def test_mmvet_malformed_record_names_file_row_and_field(tmp_path, key, change, field):
    data = {k: dict(v) for k, v in MMVET.items()}
    data[key].update(change)
    path, images = _mmvet(tmp_path, data)
    _raises(lambda: load_mmvet(path, images), path, list(data).index(key), field, key)


def test_mmvet_missing_field_and_non_object(tmp_path):
    data = {k: dict(v) for k, v in MMVET.items()}
    del data["v1_1"]["answer"]
    path, images = _mmvet(tmp_path, data)
    _raises(lambda: load_mmvet(path, images), path, 1, "answer", "v1_1")
    path.write_text(json.dumps({"v1_0": ["not", "a", "record"]}))
    _raises(lambda: load_mmvet(path, images), path, 0, None, "v1_0")
    path.write_text(json.dumps([MMVET["v1_0"]]))
    _raises(lambda: load_mmvet(path, images), path, None, None)


def test_mmvet_through_the_judge_by_hand(tmp_path, judge):
    path, images = _mmvet(tmp_path)
    items, _ = load_mmvet(path, images)
    inputs = mmvet_judge_inputs(items, {"v1_0": "x = -1 or x = -5", "v1_1": "It is an Apple iPhone.",
                                        "v1_2": "On the right."})
    # exactly what MMVetJudge reads and passes through
    assert all(set(r) == {*MMVetJudge.required, *MMVetJudge.passthrough} for r in inputs)
    assert inputs[0] == {"item_id": "v1_0", "question": "What is x in the equation?", "answer": "-1 <AND> -5",
                         "response": "x = -1 or x = -5", "capabilities": ["OCR", "Math"]}
    client, server = judge
    server.replies = {"What is x in the equation?": "1.0",
                      "What brand is the phone?": "0.5\nApple is right; the model adds nothing wrong.",
                      "Where is the cup?": "Score: 0.2"}
    results = MMVetJudge(client).score(inputs, progress=False)
    assert len(server.requests) == 3 and client.calls == 3
    # the judge is shown the raw ground truth, then the response
    assert server.requests[0]["messages"][-1]["content"].endswith(
        "What is x in the equation? | -1 <AND> -5 | x = -1 or x = -5 | ")
    assert [r["score"] for r in results] == [1.0, 0.5, 0.2]
    assert [r["capabilities"] for r in results] == [["OCR", "Math"], ["Rec", "OCR", "Know"], ["Rec", "Spat"]]
    s = summarise_mmvet(results)
    # v1_0 OCR+Math 1.0, v1_1 Rec+OCR+Know 0.5, v1_2 Rec+Spat 0.2; an item counts toward each of its tags
    assert s["Rec"] == pytest.approx(100 * (0.5 + 0.2) / 2)       # 35
    assert s["OCR"] == pytest.approx(100 * (1.0 + 0.5) / 2)       # 75
    assert s["Know"] == pytest.approx(50.0)
    assert math.isnan(s["Gen"])                                   # no Gen item
    assert s["Spat"] == pytest.approx(20.0)
    assert s["Math"] == pytest.approx(100.0)
    assert s["Total"] == pytest.approx(100 * 1.7 / 3)             # 56.7: each item once
    assert s["counts"] == {"Rec": 2, "OCR": 2, "Know": 1, "Gen": 0, "Spat": 1, "Math": 1, "Total": 3}


@pytest.mark.parametrize("capabilities", [["ocr"], [], "OCR", ["OCR", "Vision"]])
def test_mmvet_judge_inputs_want_the_papers_capability_names(capabilities):
    # summarise_mmvet would count an unknown name in Total but under no capability
    items = [{"item_id": "x", "question": "q?", "answer": "a", "capabilities": capabilities}]
    with pytest.raises(ValueError, match=re.escape(f"expected a non-empty list from {CAPABILITIES}")):
        mmvet_judge_inputs(items, ["r"])


# ----------------------------------------------------------------------------------------------------
# LLaVA-Bench-in-the-Wild


QUESTIONS = [
    {"question_id": 0, "image": "001.jpg", "text": "What is the name of this famous sight?", "category": "conv"},
    {"question_id": 1, "image": "001.jpg", "text": "Describe this photo in detail.", "category": "detail"},
    {"question_id": 2, "image": "002.jpg", "text": "Why might these people be here?", "category": "complex"},
]
ANSWERS = [{"question_id": 0, "text": "It is the Diamond Head."},
           {"question_id": 2, "text": "They came to watch the game."},
           {"question_id": 1, "text": "A crater by the sea."}]  # out of order: joined by question_id
CONTEXT = [{"id": "001", "image": "001.jpg", "caption": "An aerial view of Diamond Head."},
           {"id": "002", "image": "002.jpg", "caption": "A crowd in a stadium."}]


def _wild(tmp_path, questions=QUESTIONS, answers=ANSWERS, context=CONTEXT, images=("001.jpg", "002.jpg")):
    for name in images:
        _image(tmp_path / "images" / name)
    q = _jsonl(tmp_path / "questions.jsonl", questions)
    a = _jsonl(tmp_path / "answers_gpt4.jsonl", answers) if answers is not None else None
    c = _jsonl(tmp_path / "context.jsonl", context) if context is not None else None
    return q, tmp_path / "images", a, c


def test_wild_joins_answers_and_captions(tmp_path):
    q, images, a, c = _wild(tmp_path)
    items, report = load_llava_wild(q, images, a, c)
    assert [it["item_id"] for it in items] == ["0", "1", "2"]
    assert [it["category"] for it in items] == ["conversation", "detail", "reasoning"]
    assert [it["category_tag"] for it in items] == ["conv", "detail", "complex"]
    assert [it["reference"] for it in items] == ["It is the Diamond Head.", "A crater by the sea.",
                                                 "They came to watch the game."]
    assert [it["caption"] for it in items] == ["An aerial view of Diamond Head."] * 2 + ["A crowd in a stadium."]
    assert items[2]["image_path"] == str((images / "002.jpg").absolute())
    assert (report.rows, report.kept) == (3, 3)
    inputs = wild_judge_inputs(items, {"0": "Diamond Head.", "1": "A volcano.", "2": "A match."})
    assert inputs[2] == {"item_id": "2", "question": "Why might these people be here?",
                         "caption": "A crowd in a stadium.", "reference": "They came to watch the game.",
                         "response": "A match.", "category": "reasoning"}
    # exactly what WildJudge reads and passes through
    assert all(set(r) == {*WildJudge.required, *WildJudge.passthrough} for r in inputs)


def test_wild_without_answers_or_context(tmp_path):
    q, images, _, _ = _wild(tmp_path, answers=None, context=None)
    items, _ = load_llava_wild(q, images)
    assert all(it["reference"] is None and it["caption"] is None for it in items)
    with pytest.raises(ValueError, match="no reference; load the benchmark with answers_jsonl"):
        wild_judge_inputs(items, ["a", "b", "c"])


def test_wild_missing_image_is_counted(tmp_path):
    q, images, a, c = _wild(tmp_path, images=("001.jpg",))
    items, report = load_llava_wild(q, images, a, c)
    assert [it["item_id"] for it in items] == ["0", "1"]
    assert report.missing_images == [(2, str(images / "002.jpg"))]
    _raises(lambda: load_llava_wild(q, images, a, c, missing="raise"), q, 2, "image", 2)


def test_wild_question_without_reference_answer_names_its_id(tmp_path):
    q, images, a, c = _wild(tmp_path, answers=ANSWERS[:2])
    e = _raises(lambda: load_llava_wild(q, images, a, c), q, 1, "question_id", 1)
    assert "question_id 1 has no reference answer" in str(e)


@pytest.mark.parametrize("which, records, row, field", [
    ("questions", QUESTIONS[:1] + [{**QUESTIONS[1], "category": "chat"}] + QUESTIONS[2:], 1, "category"),
    ("questions", QUESTIONS[:2] + [{**QUESTIONS[2], "question_id": 0}], 2, "question_id"),
    ("questions", [QUESTIONS[0], {k: v for k, v in QUESTIONS[1].items() if k != "text"}, QUESTIONS[2]], 1, "text"),
    ("questions", [QUESTIONS[0], QUESTIONS[1], "{not json"], 2, None),
    ("answers", ANSWERS + [{"question_id": 7, "text": "An answer to nothing."}], 3, "question_id"),
    ("answers", ANSWERS + [{"question_id": 2, "text": "A second answer."}], 3, "question_id"),
    ("answers", ANSWERS[:1] + [{"question_id": 2, "text": ""}] + ANSWERS[2:], 1, "text"),
    ("context", CONTEXT + [{"id": "003", "image": "003.jpg", "caption": "No question is about me."}], 2, "image"),
    ("context", [CONTEXT[0], {"id": "002", "image": "002.jpg"}], 1, "caption"),
])
def test_wild_malformed_rows_name_file_row_and_field(tmp_path, which, records, row, field):
    files = {"questions": QUESTIONS, "answers": ANSWERS, "context": CONTEXT, which: records}
    q, images, a, c = _wild(tmp_path, files["questions"], files["answers"], files["context"])
    path = {"questions": q, "answers": a, "context": c}[which]
    _raises(lambda: load_llava_wild(q, images, a, c), path, row, field)


def test_wild_question_without_caption(tmp_path):
    q, images, a, c = _wild(tmp_path, context=CONTEXT[:1])
    _raises(lambda: load_llava_wild(q, images, a, c), q, 2, "image", 2)


def test_wild_through_the_judge_by_hand(tmp_path, judge):
    # a second conversation question, so a category sums over two items
    questions = QUESTIONS + [{"question_id": 3, "image": "002.jpg", "text": "What are they watching?", "category": "conv"}]
    answers = ANSWERS + [{"question_id": 3, "text": "A football match."}]
    q, images, a, c = _wild(tmp_path, questions, answers)
    items, _ = load_llava_wild(q, images, a, c)
    inputs = wild_judge_inputs(items, ["Diamond Head.", "A volcano by the sea.", "To watch a match.", "A game."])
    client, server = judge
    # the first line holds (reference = Assistant 1, model = Assistant 2)
    server.replies = {"What is the name of this famous sight?": "8 6\nAssistant 2 is right but terse.",
                      "Describe this photo in detail.": "7 7\nBoth are brief.",
                      "Why might these people be here?": "6 9\nAssistant 2 explains more.",
                      "What are they watching?": "Assistant 1: 9, Assistant 2: 7\nAssistant 1 names the sport."}
    results = WildJudge(client).score(inputs, progress=False)
    assert len(server.requests) == 4 and client.calls == 4
    # the caption stands in for the image; GPT-4's answer is Assistant 1, the model's Assistant 2
    user = server.requests[2]["messages"][-1]["content"]
    for text in ("[Context]\nA crowd in a stadium.", "[Assistant 1]\nThey came to watch the game.",
                 "[Assistant 2]\nTo watch a match."):
        assert text in user
    assert [(r["reference_score"], r["model_score"]) for r in results] == [(8, 6), (7, 7), (6, 9), (9, 7)]
    assert [r["category"] for r in results] == ["conversation", "detail", "reasoning", "conversation"]
    assert [r["score"] for r in results] == pytest.approx([75.0, 100.0, 150.0, 700 / 9])
    s = summarise_judged_wild(results)
    assert set(s) == {*WILD_CATEGORIES, "all", "counts"}  # the world's category names
    assert s["conversation"] == pytest.approx(100 * (6 + 7) / (8 + 9))   # 76.5
    assert s["detail"] == pytest.approx(100.0)
    assert s["reasoning"] == pytest.approx(150.0)
    # a ratio of sums, 100 * 29 / 30 = 96.7, not the mean of the per-item ratios (100.7)
    assert s["all"] == pytest.approx(100 * (6 + 7 + 9 + 7) / (8 + 7 + 6 + 9))
    assert s["counts"] == {"conversation": 2, "detail": 1, "reasoning": 1, "all": 4}


def test_wild_judge_inputs_want_the_worlds_category_names(tmp_path):
    q, images, a, c = _wild(tmp_path)
    items, _ = load_llava_wild(q, images, a, c)
    items[0] = {**items[0], "category": "conv"}  # LLaVA's tag, not the name summarise_judged_wild reports
    with pytest.raises(ValueError, match=re.escape("item 0 (0) has unknown category 'conv'")):
        wild_judge_inputs(items, ["a", "b", "c"])


# ----------------------------------------------------------------------------------------------------
# POPE


POPE = [
    {"question_id": 1, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a snowboard in the image?", "label": "yes"},
    {"question_id": 2, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a person in the image?", "label": "yes"},
    {"question_id": 3, "image": "COCO_val2014_000000310196.jpg", "text": "Is there a dog in the image?", "label": "no"},
    {"question_id": 4, "image": "COCO_val2014_000000210789.jpg", "text": "Is there a car in the image?", "label": "no"},
    {"question_id": 5, "image": "COCO_val2014_000000210789.jpg", "text": "Is there a bus in the image?", "label": "Yes"},
]


def _pope(tmp_path, records=POPE, name="coco_pope_adversarial.json",
          images=("COCO_val2014_000000310196.jpg", "COCO_val2014_000000210789.jpg")):
    for image in images:
        _image(tmp_path / "val2014" / image)
    return _jsonl(tmp_path / name, records), tmp_path / "val2014"  # POPE's files are JSON lines named *.json


def test_pope_fields_and_split_from_file_name(tmp_path):
    path, images = _pope(tmp_path)
    items, report = load_pope(path, images)
    assert [it["item_id"] for it in items] == [f"adversarial-{i}" for i in range(1, 6)]
    assert {it["split"] for it in items} == {"adversarial"}
    assert [it["label"] for it in items] == ["yes", "yes", "no", "no", "yes"]
    assert items[0]["question"] == "Is there a snowboard in the image?"
    assert (report.rows, report.kept) == (5, 5)
    items, _ = load_pope(path, images, split="random")
    assert items[0]["item_id"] == "random-1"
    plain, images = _pope(tmp_path, name="my_questions.jsonl")
    items, _ = load_pope(plain, images)
    assert items[0]["item_id"] == "1" and items[0]["split"] is None
    with pytest.raises(ValueError, match="unknown POPE split"):
        load_pope(path, images, split="hard")


def test_pope_missing_image_is_counted(tmp_path):
    path, images = _pope(tmp_path, images=("COCO_val2014_000000310196.jpg",))
    items, report = load_pope(path, images)
    assert len(items) == 3
    missing = str(images / "COCO_val2014_000000210789.jpg")
    assert report.missing_images == [(3, missing), (4, missing)]
    _raises(lambda: load_pope(path, images, missing="raise"), path, 3, "image", 4)


@pytest.mark.parametrize("row, change, field", [
    (2, {"label": "maybe"}, "label"),
    (0, {"label": None}, "label"),
    (3, {"text": 5}, "text"),
    (1, {"question_id": True}, "question_id"),
    (4, {"question_id": 1}, "question_id"),
    (4, {"image": ""}, "image"),
])
def test_pope_malformed_rows_name_file_row_and_field(tmp_path, row, change, field):
    records = [dict(r) for r in POPE]
    records[row].update(change)
    path, images = _pope(tmp_path, records)
    _raises(lambda: load_pope(path, images), path, row, field)


def test_pope_bad_json_line_and_empty_file(tmp_path):
    path, images = _pope(tmp_path, POPE[:2] + ["[1, 2"] + POPE[2:])
    _raises(lambda: load_pope(path, images), path, 2, None)
    path.write_text("\n\n")
    _raises(lambda: load_pope(path, images), path, None, None)


def test_pope_metrics_by_hand(tmp_path):
    path, images = _pope(tmp_path)
    items, _ = load_pope(path, images)
    # labels yes, yes, no, no, yes; read answers yes, no, yes, no, yes (the last by POPE's default)
    responses = ["Yes, there is a snowboard.", "No, there is not.", "Yes.", "No", "I cannot tell"]
    records, s = score_pope_real(items, responses)
    assert [r["answer"] for r in records] == ["yes", "no", "yes", "no", "yes"]
    assert records[4]["decided_by"] == "default"
    # TP = 2 (q1, q5), FP = 1 (q3), FN = 1 (q2), TN = 1 (q4)
    for key in ("adversarial", "all"):
        m = s[key]
        assert m["accuracy"] == pytest.approx(60.0)        # 3 of 5 right
        assert m["precision"] == pytest.approx(200 / 3)    # 2 / (2 + 1)
        assert m["recall"] == pytest.approx(200 / 3)       # 2 / (2 + 1)
        assert m["f1"] == pytest.approx(200 / 3)
        assert m["yes_ratio"] == pytest.approx(60.0)       # 3 of 5 answers "yes"
        assert (m["n"], m["n_unparsed"]) == (5, 1)
    assert set(s) == {"adversarial", "all"}
    by_id = score_pope_real(items, {it["item_id"]: r for it, r in zip(items, responses)})[1]
    assert by_id == s
    with pytest.raises(ValueError, match="4 responses for 5 items"):
        score_pope_real(items, responses[:4])


# ----------------------------------------------------------------------------------------------------
# Object HalBench: mini COCO, mini synonyms, CHAIR


SYNONYMS = """person, girl, boy, man, woman, people
cat, kitten
dog, puppy,  pup ,
hot dog, hotdog
cell phone, mobile phone, phone, iPhone
"""
COCO_IMAGES = [{"id": 139, "file_name": "COCO_val2014_000000000139.jpg", "height": 4, "width": 4},
               {"id": 285, "file_name": "COCO_val2014_000000000285.jpg", "height": 4, "width": 4},
               {"id": 632, "file_name": "COCO_val2014_000000000632.jpg", "height": 4, "width": 4}]
CATEGORIES = [{"id": 1, "name": "person", "supercategory": "person"}, {"id": 17, "name": "cat", "supercategory": "animal"},
              {"id": 18, "name": "dog", "supercategory": "animal"}, {"id": 58, "name": "hot dog", "supercategory": "food"}]
ANNOTATIONS = [{"id": 1, "image_id": 139, "category_id": 1}, {"id": 2, "image_id": 139, "category_id": 1},
               {"id": 3, "image_id": 139, "category_id": 18}, {"id": 4, "image_id": 285, "category_id": 58},
               {"id": 5, "image_id": 632, "category_id": 17}]
CAPTIONS = [{"id": 11, "image_id": 139, "caption": "A man walking his puppy."},
            {"id": 12, "image_id": 285, "caption": "A hot dog on a plate next to a phone."},
            {"id": 13, "image_id": 139, "caption": "Two people and a dog on a street."},
            {"id": 14, "image_id": 632, "caption": "A kitten asleep."}]
PROMPTS = [{"image_id": 139, "image": "COCO_val2014_000000000139.jpg", "question": "Describe this image in detail."},
           {"image_id": 285, "image": "COCO_val2014_000000000285.jpg", "question": "Describe this image in detail."},
           {"image_id": 139, "question": "Provide a thorough description of the given image."}]


def _halbench(tmp_path, prompts=PROMPTS, annotations=ANNOTATIONS, captions=CAPTIONS, as_list=False,
              images=("COCO_val2014_000000000139.jpg", "COCO_val2014_000000000285.jpg")):
    for name in images:
        _image(tmp_path / "val2014" / name, (10, 120, 10))
    (tmp_path / "synonyms.txt").write_text(SYNONYMS)
    instances = tmp_path / "instances_val2014.json"
    instances.write_text(json.dumps({"images": COCO_IMAGES, "annotations": annotations, "categories": CATEGORIES}))
    caps = tmp_path / "captions_val2014.json"
    caps.write_text(json.dumps({"images": COCO_IMAGES, "annotations": captions}))
    if as_list:
        (p := tmp_path / "halbench.json").write_text(json.dumps(prompts))
    else:
        p = _jsonl(tmp_path / "halbench.jsonl", prompts)
    return p, instances, tmp_path / "val2014", caps


def test_chair_synonyms_format(tmp_path):
    path = tmp_path / "synonyms.txt"
    path.write_text("\n" + SYNONYMS)
    syn = load_chair_synonyms(path)
    assert syn["person"] == "person" and syn["woman"] == "person" and syn["people"] == "person"
    assert syn["pup"] == "dog"              # stray spaces and a trailing comma are fine
    assert syn["iphone"] == "cell phone"    # lower-cased
    assert syn["mobile phone"] == "cell phone" and syn["hot dog"] == "hot dog"
    assert set(syn.values()) == {"person", "cat", "dog", "hot dog", "cell phone"}
    path.write_text(SYNONYMS + "pet, dog, cat\n")  # dog is already under dog
    e = _raises(lambda: load_chair_synonyms(path), path, 5, None)
    assert "'dog' is listed under 'pet' here and under 'dog' in row 2" in str(e)
    path.write_text(SYNONYMS + ", orphan\n")
    _raises(lambda: load_chair_synonyms(path), path, 5, None)
    path.write_text("\n")
    _raises(lambda: load_chair_synonyms(path), path, None, None)


def test_coco_objects_in_two_word_names_plurals_and_synonyms(tmp_path):
    path = tmp_path / "synonyms.txt"
    path.write_text(SYNONYMS)
    syn = load_chair_synonyms(path)
    assert coco_objects_in("Two hot dogs on a plate.", syn) == ["hot dog"]      # not "dog"
    assert coco_objects_in("A hot-dog stand.", syn) == ["hot dog"]
    assert coco_objects_in("Dogs, puppies and a hot dog.", syn) == ["dog", "hot dog"]
    assert coco_objects_in("Three men, two women and some kittens.", syn) == ["person", "cat"]
    assert coco_objects_in("Their cell phones and an iPhone.", syn) == ["cell phone"]  # once per response
    assert coco_objects_in("The boy's pup.", syn) == ["person", "dog"]
    assert coco_objects_in("There is no cat here.", syn) == ["cat"]  # CHAIR ignores negation
    assert coco_objects_in("A sunny glass house.", syn) == []
    # where a phrase's first word is a name too, the longer phrase wins
    drinks = {"wine glass": "wine glass", "wine": "bottle", "glass": "cup"}
    assert coco_objects_in("Two wine glasses.", drinks) == ["wine glass"]
    assert coco_objects_in("Wine in a glass.", drinks) == ["bottle", "cup"]


def test_object_halbench_fields_and_ground_truth(tmp_path):
    p, instances, images, caps = _halbench(tmp_path)
    items, report = load_object_halbench(p, instances, images, caps, progress=False)
    # image 139 has two prompts: the item ids carry the row
    assert [it["item_id"] for it in items] == ["139@0", "285", "139@2"]
    assert [it["image_id"] for it in items] == [139, 285, 139]
    assert items[2]["image"] == "COCO_val2014_000000000139.jpg"  # from COCO when the prompt has none
    assert items[0]["image_path"] == str((images / "COCO_val2014_000000000139.jpg").absolute())
    assert items[0]["coco_objects"] == ["dog", "person"] and items[1]["coco_objects"] == ["hot dog"]
    assert items[0]["captions"] == ["A man walking his puppy.", "Two people and a dog on a street."]
    assert items[1]["question"] == "Describe this image in detail."
    assert (report.rows, report.kept) == (3, 3)
    listed, _ = load_object_halbench(_halbench(tmp_path, as_list=True)[0], instances, images, progress=False)
    assert [it["item_id"] for it in listed] == ["139@0", "285", "139@2"] and listed[0]["captions"] == []
    with_ids = [{**pr, "question_id": f"q{i}"} for i, pr in enumerate(PROMPTS)]
    items, _ = load_object_halbench(_halbench(tmp_path, with_ids)[0], instances, images, progress=False)
    assert [it["item_id"] for it in items] == ["q0", "q1", "q2"]


def test_object_halbench_missing_image_is_counted(tmp_path):
    p, instances, images, caps = _halbench(tmp_path, images=("COCO_val2014_000000000285.jpg",))
    items, report = load_object_halbench(p, instances, images, caps, progress=False)
    assert [it["image_id"] for it in items] == [285]
    missing = str(images / "COCO_val2014_000000000139.jpg")
    assert report.missing_images == [(0, missing), (2, missing)] and (report.rows, report.kept) == (3, 1)
    _raises(lambda: load_object_halbench(p, instances, images, caps, missing="raise", progress=False), p, 0, "image")


@pytest.mark.parametrize("target, change, row, field", [
    ("prompts", (0, {"image_id": 999}), 0, "image_id"),
    ("prompts", (1, {"image_id": "285"}), 1, "image_id"),
    ("prompts", (1, {"image": "COCO_val2014_000000000139.jpg"}), 1, "image"),
    ("prompts", (2, {"question": ""}), 2, "question"),
    ("annotations", (3, {"category_id": 99}), None, "annotations[3].category_id"),
    ("annotations", (1, {"image_id": 7}), None, "annotations[1].image_id"),
    ("annotations", (0, {"image_id": None}), None, "annotations[0].image_id"),
    ("captions", (2, {"caption": 3}), None, "annotations[2].caption"),
])
def test_object_halbench_malformed_inputs_name_file_row_and_field(tmp_path, target, change, row, field):
    data = {"prompts": [dict(x) for x in PROMPTS], "annotations": [dict(x) for x in ANNOTATIONS],
            "captions": [dict(x) for x in CAPTIONS]}
    i, update = change
    data[target][i].update(update)
    p, instances, images, caps = _halbench(tmp_path, data["prompts"], data["annotations"], data["captions"])
    path = {"prompts": p, "annotations": instances, "captions": caps}[target]
    _raises(lambda: load_object_halbench(p, instances, images, caps, progress=False), path, row, field)


def test_object_halbench_image_without_captions(tmp_path):
    p, instances, images, caps = _halbench(tmp_path, captions=CAPTIONS[:1])  # none for 285
    _raises(lambda: load_object_halbench(p, instances, images, caps, progress=False), p, 1, "image_id")


def test_chair_by_hand(tmp_path):
    p, instances, images, caps = _halbench(tmp_path)
    items, _ = load_object_halbench(p, instances, images, caps, progress=False)
    syn = load_chair_synonyms(tmp_path / "synonyms.txt")
    responses = [
        "A woman and two men walk their puppies past a cat.",  # 139 {person, dog}: person, dog, cat -> cat made up
        "Two hot dogs on a plate.",                            # 285 {hot dog} + caption's cell phone: hot dog
        "A sunny day in the city.",                            # 139: names nothing
    ]
    records, s = score_chair_coco(items, responses, syn)
    assert records[0]["mentioned"] == ["cat", "dog", "person"] and records[0]["hallucinated"] == ["cat"]
    assert records[1]["truth"] == ["cell phone", "hot dog"]   # the caption's phone counts as truth
    assert records[1]["mentioned"] == ["hot dog"] and records[1]["hallucinated"] == []
    assert s["object_hall"] == pytest.approx(100 * 1 / 4)     # CHAIR_i: 1 made up of 3 + 1 mentions
    assert s["response_hall"] == pytest.approx(100 * 1 / 2)   # of the 2 responses that name objects
    assert s["object_recall"] == pytest.approx(100 * 3 / 6)   # (2 + 1 + 0) of (2 + 2 + 2) true objects
    assert (s["n_responses"], s["n_no_object"], s["n_mentions"], s["n_hallucinated_mentions"]) == (3, 1, 4, 1)

    # the first names an absent cat (1 of its 3 objects), the second 2 true ones: CHAIR_i 1/5; the
    # phone is true only through the captions
    records, s = score_chair_coco(items[:2], ["A man with his dog and a kitten.", "A hotdog and a phone."], syn)
    assert s["object_hall"] == pytest.approx(100 * 1 / 5) and s["response_hall"] == pytest.approx(50.0)
    no_captions, _ = load_object_halbench(p, instances, images, progress=False)
    records, s = score_chair_coco(no_captions[1:2], ["A hotdog and a phone."], syn)
    assert records[0]["hallucinated"] == ["cell phone"] and s["object_hall"] == pytest.approx(50.0)


def test_chair_rejects_bad_inputs(tmp_path):
    p, instances, images, caps = _halbench(tmp_path)
    items, _ = load_object_halbench(p, instances, images, caps, progress=False)
    syn = load_chair_synonyms(tmp_path / "synonyms.txt")
    with pytest.raises(ValueError, match="2 responses for 3 items"):
        score_chair_coco(items, ["a", "b"], syn)
    with pytest.raises(TypeError, match="synonyms must be a non-empty dict"):
        score_chair_coco(items, ["a", "b", "c"], {})
    with pytest.raises(ValueError, match="COCO class 'hot dog' is not in the synonym list"):
        score_chair_coco(items, ["a", "b", "c"], {k: v for k, v in syn.items() if v != "hot dog"})
