"""Real-data loaders: the released BPO preference JSON and LLaVA-style conversation files, on tiny
files written on the fly (a few PNGs, JSON in the exact released layouts)."""

import copy
import json
import os
import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bpo.preference.dataset import Candidate, build_pairs
from bpo.real.conversations import COLUMNS, load_conversations, sample_ground_truths, strip_image_token
from bpo.real.errors import DataError, LoadReport
from bpo.real.preference import LazyImage, load_released_pairs


def write_png(path, seed, mode="RGB"):
    rng = np.random.default_rng(seed)
    shape = (6, 5, 3) if mode == "RGB" else (6, 5)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(path)
    return path


def pixels(image) -> np.ndarray:
    return np.asarray(image)


@pytest.fixture
def images(tmp_path):
    root = tmp_path / "images"
    return root, {name: write_png(root / name, i, mode) for i, (name, mode) in
                  enumerate([("coco/train2017/000000000009.jpg.png", "RGB"), ("coco/b.png", "RGB"),
                             ("ocr/c.png", "L")])}


def released_records():
    return [
        {"prompt": "What is happening?\n<image>", "image": "coco/train2017/000000000009.jpg.png",
         "completions": [{"score": 1, "response": "A cat sits on a mat.", "type": "gt"},
                         {"score": 0, "response": "A dog runs in a park.", "type": "mllm-hal"},
                         {"score": 0, "response": "A cat sits on a sofa.", "type": "llm-hal"}]},
        {"id": "abc", "prompt": "<image>\nRead the sign.", "image": "ocr/c.png",
         "completions": [{"score": 1, "response": "It says STOP.", "type": "gt"},
                         {"score": 1, "response": "The sign reads STOP.", "type": "gt-rephrased"},
                         {"score": 0, "response": "It says GO.", "type": "image_weakening",
                          "noise_place": "pixels", "noise_step": 500}]},
        {"id": "missing-one", "prompt": "How many?\n<image>", "image": "coco/nope.png",
         "completions": [{"score": 1, "response": "Two.", "type": "gt"},
                         {"score": 0, "response": "Three.", "type": "mllm-hal"}]},
        {"prompt": "Describe it.\n<image>", "image": "coco/b.png", "source": "sharegpt4v",
         "completions": [{"score": 1, "response": "A blue car.", "type": "gt"},
                         {"score": 0.0, "response": "A red truck.", "type": "error_injection"}]},
    ]


def write_json(path, data):
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


# ---------------------------------------------------------------- errors


def test_data_error_renders_file_row_id_field_and_survives_pickle():
    e = DataError("data/bpo.json", 17, "completions[2].score", "must be 0 or 1, got 'x'", "abc")
    assert str(e) == "data/bpo.json: row 17 (id 'abc'): field 'completions[2].score': must be 0 or 1, got 'x'"
    assert isinstance(e, ValueError) and (e.path, e.row, e.field) == ("data/bpo.json", 17, "completions[2].score")
    assert str(DataError("f.json", message="not a list")) == "f.json: not a list"
    assert str(DataError("f.json", 3, None, "bad")) == "f.json: row 3: bad"
    back = pickle.loads(pickle.dumps(e))
    assert str(back) == str(e) and back.field == e.field


def test_load_report_counts_every_skip_with_its_reason():
    r = LoadReport("x.json", rows=6, kept=2)
    r.add_missing(4, "/img/a.png")
    r.add_unreadable(1, "/img/b.png", "OSError: truncated")
    r.add_skipped(3, "no image")
    r.add_skipped(5, "no image")
    assert r.n_skipped == 4 and r.rows == r.kept + r.n_skipped
    assert r.skipped_rows() == [1, 3, 4, 5]
    assert r.counts_by_reason() == {"missing image": 1, "unreadable image": 1, "no image": 2}
    assert r.summary() == "x.json: 6 records, 2 kept, 4 skipped (missing image 1, unreadable image 1, no image 2)"
    assert LoadReport("y.json", 3, 3).summary() == "y.json: 3 records, 3 kept, 0 skipped"
    assert json.loads(json.dumps(r.to_dict()))["missing_images"] == [[4, "/img/a.png"]]


# ---------------------------------------------------------------- released preference JSON


def test_released_pairs_parse_ids_responses_types_prompts_and_pixels(tmp_path, images):
    root, files = images
    path = write_json(tmp_path / "bpo.json", released_records())
    cands, report = load_released_pairs(path, root, progress=False)
    assert [c.id for c in cands] == ["row-0000000", "abc", "row-0000003"]
    a, b, d = cands
    assert a.prompt == "What is happening?" and b.prompt == "Read the sign." and d.prompt == "Describe it."
    assert a.chosen == ("A cat sits on a mat.",)
    assert b.chosen == ("It says STOP.", "The sign reads STOP.")
    assert [(n.response, n.negative_type) for n in a.negatives] == [
        ("A dog runs in a park.", "image_weakened"), ("A cat sits on a sofa.", "error_injection")]
    assert (b.negatives[0].negative_type, b.negatives[0].noise_place, b.negatives[0].noise_step) == \
        ("image_weakened", "pixels", 500)
    assert d.negatives[0].negative_type == "error_injection"
    assert (a.source, d.source) == (None, "sharegpt4v")
    for cand, name in zip(cands, ["coco/train2017/000000000009.jpg.png", "ocr/c.png", "coco/b.png"]):
        assert isinstance(cand.image, Image.Image)
        assert cand.image.filename == str(files[name])  # absolute: the pair set stores it
        with Image.open(files[name]) as im:
            assert cand.image.size == im.size and cand.image.mode == im.mode
            np.testing.assert_array_equal(pixels(cand.image), pixels(im))
    assert (report.rows, report.kept) == (4, 3)
    assert report.missing_images == [(2, str(root / "coco" / "nope.png"))]


def test_released_pairs_accept_absolute_paths_int_ids_and_default_source(tmp_path, images):
    root, files = images
    recs = released_records()[:1]
    recs[0] = {**recs[0], "id": 7, "image": str(files["coco/b.png"])}
    cands, _ = load_released_pairs(write_json(tmp_path / "abs.json", recs), tmp_path / "elsewhere",
                                   progress=False, source="llava")
    assert cands[0].id == "7" and cands[0].source == "llava"
    with Image.open(files["coco/b.png"]) as im:
        np.testing.assert_array_equal(pixels(cands[0].image), pixels(im))


def test_repeated_ids_are_made_unique_with_the_row(tmp_path, images):
    root, _ = images
    recs = [dict(r, id="same") for r in released_records()]
    cands, _ = load_released_pairs(write_json(tmp_path / "dup.json", recs), root, progress=False)
    assert [c.id for c in cands] == ["same@0", "same@1", "same@3"]


def test_images_are_lazy_and_hold_no_file_open(tmp_path, images):
    root, files = images
    path = write_json(tmp_path / "bpo.json", released_records())
    fd_dir = "/proc/self/fd"
    before = len(os.listdir(fd_dir)) if os.path.isdir(fd_dir) else None
    cands, _ = load_released_pairs(path, root, progress=False)
    if before is not None:
        assert len(os.listdir(fd_dir)) == before
    img = cands[0].image
    assert isinstance(img, LazyImage) and img._im is None  # header only so far
    assert img.convert("RGB").size == (5, 6) and img._im is not None
    # copies and pickles are ordinary images with the same pixels
    for other in (copy.deepcopy(cands[1].image), pickle.loads(pickle.dumps(cands[2].image)), cands[0].image.copy()):
        assert other.size == (5, 6)
    np.testing.assert_array_equal(pixels(pickle.loads(pickle.dumps(cands[2].image))), pixels(cands[2].image))


def test_missing_image_raise_names_file_row_and_field(tmp_path, images):
    root, _ = images
    path = write_json(tmp_path / "bpo.json", released_records())
    with pytest.raises(DataError) as e:
        load_released_pairs(path, root, missing="raise", progress=False)
    msg = str(e.value)
    assert "bpo.json" in msg and "row 2" in msg and "'missing-one'" in msg and "field 'image'" in msg
    assert "nope.png" in msg
    with pytest.raises(ValueError, match="missing must be one of"):
        load_released_pairs(path, root, missing="ignore", progress=False)


def test_unreadable_image_is_listed_with_its_reason_or_raises(tmp_path, images):
    root, _ = images
    (root / "coco" / "broken.png").write_bytes(b"this is not an image")
    recs = released_records()
    recs[3]["image"] = "coco/broken.png"
    recs.append({**released_records()[0], "image": None})  # no image at all: skipped with a reason
    path = write_json(tmp_path / "bpo.json", recs)
    cands, report = load_released_pairs(path, root, progress=False)
    assert [c.id for c in cands] == ["row-0000000", "abc"]
    assert [(r, p) for r, p, _ in report.unreadable_images] == [(3, str(root / "coco" / "broken.png"))]
    assert "UnidentifiedImageError" in report.unreadable_images[0][2]
    assert report.skipped == [(4, "no image")]
    assert report.rows == report.kept + report.n_skipped == 5
    recs[2]["image"] = "coco/b.png"  # so the unreadable image is the first problem met
    with pytest.raises(DataError, match=r"bpo.json: row 3: field 'image': cannot read image"):
        load_released_pairs(write_json(tmp_path / "bpo.json", recs), root, missing="raise", progress=False)


def test_verify_finds_a_truncated_image_body(tmp_path, images):
    root, files = images
    data = files["coco/b.png"].read_bytes()
    (root / "cut.png").write_bytes(data[: len(data) - 30])  # header intact, body cut
    recs = released_records()[:1]
    recs[0]["image"] = "cut.png"
    path = write_json(tmp_path / "cut.json", recs)
    cands, report = load_released_pairs(path, root, progress=False)
    assert len(cands) == 1  # the header alone looks fine
    cands, report = load_released_pairs(path, root, progress=False, verify=True)
    assert cands == [] and report.unreadable_images[0][0] == 0


def _set(keys, value):
    def edit(records):
        target = records[1]
        for k in keys[:-1]:
            target = target[k]
        target[keys[-1]] = value
        return records
    return edit


def _drop(keys):
    def edit(records):
        target = records[1]
        for k in keys[:-1]:
            target = target[k]
        del target[keys[-1]]
        return records
    return edit


MALFORMED = [
    (lambda r: r[:1] + ["not a record"] + r[2:], None),
    (_drop(["prompt"]), "prompt"),
    (_drop(["completions"]), "completions"),
    (_set(["prompt"], "Read the sign."), "prompt"),  # no image token
    (_set(["prompt"], "Read <image> the sign."), "prompt"),  # token in the middle
    (_set(["id"], ""), "id"),
    (_set(["image"], ["a.png"]), "image"),
    (_set(["completions"], []), "completions"),
    (_set(["completions", 2], "oops"), "completions[2]"),
    (_set(["completions", 2, "score"], "x"), "completions[2].score"),
    (_set(["completions", 2, "score"], 2), "completions[2].score"),
    (_set(["completions", 2, "score"], True), "completions[2].score"),
    (_drop(["completions", 0, "response"]), "completions[0].response"),
    (_set(["completions", 0, "response"], "  "), "completions[0].response"),
    (_set(["completions", 2, "response"], 3), "completions[2].response"),
    (_set(["completions", 2, "type"], "made-up"), "completions[2].type"),
    (_set(["completions", 2, "type"], "gt"), "completions[2].type"),  # ground truth scored 0
    (_set(["completions", 0, "type"], "mllm-hal"), "completions[0].type"),  # negative scored 1
    (_set(["completions", 2, "noise_step"], -1), "completions[2].noise_step"),
    (_set(["completions"], [{"score": 0, "response": "x", "type": "llm-hal"}]), "completions"),  # no chosen
    (_set(["completions"], [{"score": 1, "response": "x", "type": "gt"}]), "completions"),  # no negative
]


@pytest.mark.parametrize("edit,field", MALFORMED)
def test_malformed_records_name_file_row_and_field(tmp_path, images, edit, field):
    root, _ = images
    path = write_json(tmp_path / "bad.json", edit(released_records()))
    with pytest.raises(DataError) as e:
        load_released_pairs(path, root, progress=False)
    msg = str(e.value)
    assert msg.startswith(f"{path}: row 1")
    assert e.value.row == 1 and e.value.field == field
    if field is not None:
        assert f"field {field!r}" in msg


def test_malformed_files_are_named(tmp_path, images):
    root, _ = images
    with pytest.raises(DataError, match=r"top level must be a JSON list"):
        load_released_pairs(write_json(tmp_path / "obj.json", {"a": 1}), root, progress=False)
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    with pytest.raises(DataError, match=r"broken.json: not valid JSON"):
        load_released_pairs(tmp_path / "broken.json", root, progress=False)
    with pytest.raises(ValueError, match=r"type_map"):
        load_released_pairs(tmp_path / "obj.json", root, progress=False, type_map={"x": "mllm-hal"})


def test_type_map_adds_released_type_names(tmp_path, images):
    root, _ = images
    recs = released_records()[:1]
    recs[0]["completions"][1]["type"] = "vcd"
    path = write_json(tmp_path / "vcd.json", recs)
    with pytest.raises(DataError, match=r"row 0: field 'completions\[1\].type': unknown type 'vcd'"):
        load_released_pairs(path, root, progress=False)
    cands, _ = load_released_pairs(path, root, progress=False, type_map={"vcd": "contrastive"})
    assert cands[0].negatives[0].negative_type == "contrastive"


def test_released_pairs_go_straight_into_build_pairs(tmp_path, images):
    root, files = images
    path = write_json(tmp_path / "bpo.jsonl", [])  # JSON Lines: one record a line
    path.write_text("\n".join(json.dumps(r) for r in released_records()) + "\n", encoding="utf-8")
    cands, report = load_released_pairs(path, root, progress=False)
    assert all(isinstance(c, Candidate) for c in cands) and report.kept == 3
    ds, pair_report = build_pairs(cands)
    assert len(ds) == pair_report.kept == pair_report.total == 2 * 1 + 1 * 2 + 1 * 1
    assert ds[0]["prompt"] == "What is happening?" and ds[0]["negative_type"] == "image_weakened"
    assert ds.data.column("images").to_pylist()[0] == [{"bytes": None, "path": str(files[
        "coco/train2017/000000000009.jpg.png"])}]  # the path, not a re-encoded copy
    with Image.open(files["ocr/c.png"]) as im:
        row = next(r for r in ds if r["pair_id"] == "abc:1:0")
        assert row["chosen"] == "The sign reads STOP."
        np.testing.assert_array_equal(pixels(row["images"][0]), pixels(im))


# ---------------------------------------------------------------- conversations


def conversation_records():
    return [
        {"id": "000000033471", "image": "coco/b.png",
         "conversations": [{"from": "human", "value": "<image>\nWhat is on the table?"},
                           {"from": "gpt", "value": "A red cup."},
                           {"from": "human", "value": "What colour is the wall?"},
                           {"from": "gpt", "value": "White."}]},
        {"id": "text-only", "conversations": [{"from": "human", "value": "Tell me a joke."},
                                              {"from": "gpt", "value": "No."}]},
        {"id": "gone", "image": "coco/gone.png",
         "conversations": [{"from": "human", "value": "Q\n<image>"}, {"from": "gpt", "value": "A"}]},
        {"id": 12, "image": "ocr/c.png",
         "conversations": [{"from": "human", "value": "What does the sign say?\n<image>"},
                           {"from": "gpt", "value": "STOP"}]},
        {"id": "x3", "image": "coco/train2017/000000000009.jpg.png",
         "conversations": [{"from": "human", "value": "<image>\nOne?"}, {"from": "gpt", "value": "1"},
                           {"from": "human", "value": "Two?"}, {"from": "gpt", "value": "2"},
                           {"from": "human", "value": "Three?"}, {"from": "gpt", "value": "3"}]},
    ]


def test_conversations_pair_turns_strip_the_token_and_count_skips(tmp_path, images):
    root, files = images
    path = write_json(tmp_path / "llava_instruct.json", conversation_records())
    frame, report = load_conversations(path, root, progress=False)
    assert list(frame.columns) == list(COLUMNS)
    assert list(frame.candidate_id) == ["000000033471:0", "000000033471:1", "12:0", "x3:0", "x3:1", "x3:2"]
    assert list(frame.question) == ["What is on the table?", "What colour is the wall?", "What does the sign say?",
                                    "One?", "Two?", "Three?"]
    assert list(frame.chosen) == ["A red cup.", "White.", "STOP", "1", "2", "3"]
    assert list(frame.row) == [0, 0, 3, 4, 4, 4] and list(frame.turn) == [0, 1, 0, 0, 1, 2]
    assert set(frame.source) == {"llava_instruct"}
    assert frame.image_path[0] == str(files["coco/b.png"]) and os.path.isabs(frame.image_path[2])
    assert report.skipped == [(1, "no image")]
    assert report.missing_images == [(2, str(root / "coco" / "gone.png"))]
    assert (report.rows, report.kept, report.n_skipped) == (5, 3, 2)
    named, _ = load_conversations(path, root, source="llava", progress=False)
    assert set(named.source) == {"llava"}
    with pytest.raises(DataError, match=r"llava_instruct.json: row 2 \(id 'gone'\): field 'image': image file missing"):
        load_conversations(path, root, missing="raise", progress=False)


def test_strip_image_token_placements():
    assert strip_image_token("<image>\nWhat?") == "What?"
    assert strip_image_token("What?\n<image>") == "What?"
    assert strip_image_token("<image>What?") == "What?"
    assert strip_image_token("Look at <image> this.") == "Look at this."
    assert strip_image_token("No token.") == "No token."


def test_conversations_with_repeated_ids_stay_unique(tmp_path, images):
    root, _ = images
    recs = conversation_records()
    recs[3]["id"] = recs[0]["id"]  # LLaVA-Instruct reuses image ids
    frame, _ = load_conversations(write_json(tmp_path / "c.json", recs), root, progress=False)
    assert frame.candidate_id.is_unique
    assert list(frame.candidate_id[:3]) == ["000000033471@0:0", "000000033471@0:1", "000000033471@3:0"]


@pytest.mark.parametrize("edit,field", [
    (lambda r: r[0]["conversations"].__setitem__(3, {"from": "human", "value": "again?"}), "conversations[3].from"),
    (lambda r: r[0]["conversations"].__setitem__(0, {"from": "gpt", "value": "hi"}), "conversations[0].from"),
    (lambda r: r[0]["conversations"].pop(), "conversations[3]"),  # the last question has no answer
    (lambda r: r[0]["conversations"][1].__setitem__("value", " "), "conversations[1].value"),
    (lambda r: r[0]["conversations"][0].__setitem__("value", "<image>\n"), "conversations[0].value"),
    (lambda r: r[0]["conversations"][2].pop("from"), "conversations[2].from"),
    (lambda r: r[0].__setitem__("conversations", []), "conversations"),
    (lambda r: r[0].pop("conversations"), "conversations"),
    (lambda r: r[0].__setitem__("image", 5), "image"),
])
def test_bad_conversations_name_row_and_field(tmp_path, images, edit, field):
    root, _ = images
    recs = conversation_records()
    edit(recs)
    path = write_json(tmp_path / "conv.json", recs)
    with pytest.raises(DataError) as e:
        load_conversations(path, root, progress=False)
    assert str(e.value).startswith(f"{path}: row 0 (id '000000033471'): field {field!r}")


def test_sample_ground_truths_is_seeded_one_turn_per_record(tmp_path, images):
    root, files = images
    recs = []
    for i in range(40):
        n_turns = 1 + i % 3
        conv = []
        for t in range(n_turns):
            conv += [{"from": "human", "value": ("<image>\n" if t == 0 else "") + f"q{i}.{t}"},
                     {"from": "gpt", "value": f"a{i}.{t}"}]
        recs.append({"id": f"r{i}", "image": "coco/b.png", "conversations": conv})
    frame, _ = load_conversations(write_json(tmp_path / "many.json", recs), root, progress=False)
    a = sample_ground_truths(frame, 10, seed=0)
    assert len(a) == 10 and a.row.is_unique and list(a.columns) == list(frame.columns)
    assert list(a.row) == sorted(a.row)
    pd.testing.assert_frame_equal(a, sample_ground_truths(frame, 10, seed=0))
    pd.testing.assert_frame_equal(a, sample_ground_truths(frame.sample(frac=1, random_state=1), 10, seed=0))
    b = sample_ground_truths(frame, 10, seed=1)
    assert list(a.candidate_id) != list(b.candidate_id)
    # a larger sample extends a smaller one (same records, same turns)
    assert set(a.candidate_id) <= set(sample_ground_truths(frame, 20, seed=0).candidate_id)
    # every turn is reachable across seeds
    seen = set().union(*(set(sample_ground_truths(frame, 40, seed=s).turn) for s in range(5)))
    assert seen == {0, 1, 2}
    assert len(sample_ground_truths(frame, 0, seed=0)) == 0
    with pytest.raises(ValueError, match="asked for 41 records but the frame has 40"):
        sample_ground_truths(frame, 41, seed=0)
