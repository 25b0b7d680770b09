"""Preference pairs, their validation report, and the released BPO JSON format."""

import json

import datasets
import numpy as np
import pytest
from PIL import Image

from bpo.preference.dataset import (
    DROP_REASONS,
    Candidate,
    Negative,
    PairConfig,
    build_pairs,
    export_bpo_json,
    from_released_type,
    import_bpo_json,
    pair_statistics,
    to_released_type,
)
from bpo.world.render import render
from bpo.world.scene import sample_scenes


def tiny_image(seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (6, 5, 3), dtype=np.uint8), "RGB")


def negs(*types: str) -> tuple[Negative, ...]:
    return tuple(Negative(f"wrong answer {i} of type {t}", t, "pixels" if t == "image_weakened" else None,
                          500 if t == "image_weakened" else None) for i, t in enumerate(types))


def candidate(cid="a", chosen=("a red cup on a table", "there is a red cup"), negatives=None, image="tiny",
              source="detail", scene_id="s0", prompt="Describe the image."):
    if negatives is None:
        negatives = negs("image_weakened", "error_injection", "prior_guided")
    if isinstance(image, str):
        image = tiny_image()
    return Candidate(cid, prompt, image, tuple(chosen), tuple(negatives), source, scene_id)


def test_every_gt_times_every_negative():
    ds, report = build_pairs([candidate()])
    assert len(ds) == 6 and report.total == 6 and report.kept == 6 and report.n_dropped == 0
    assert sorted(ds["pair_id"]) == sorted(f"a:{g}:{n}" for g in range(2) for n in range(3))
    pairs = set(zip(ds["chosen"], ds["rejected"]))
    assert len(pairs) == 6
    assert ds.filter(lambda r: r["pair_id"] == "a:1:1")["rejected"] == ["wrong answer 1 of type error_injection"]


def test_trl_columns_and_types():
    ds, _ = build_pairs([candidate()])
    for col in ("prompt", "chosen", "rejected", "images"):
        assert col in ds.column_names
    assert set(ds.column_names) >= {"source", "negative_type", "noise_place", "noise_step", "scene_id", "pair_id"}
    assert isinstance(ds.features["images"], datasets.List)
    assert isinstance(ds.features["images"].feature, datasets.Image)
    row = ds[0]
    assert len(row["images"]) == 1 and isinstance(row["images"][0], Image.Image)
    assert np.array_equal(np.asarray(row["images"][0]), np.asarray(tiny_image()))
    assert row["prompt"] == "Describe the image." and row["source"] == "detail" and row["scene_id"] == "s0"
    by_type = {r["negative_type"]: r for r in ds.select_columns(["negative_type", "noise_place", "noise_step"])}
    assert by_type["image_weakened"]["noise_place"] == "pixels" and by_type["image_weakened"]["noise_step"] == 500
    assert by_type["prior_guided"]["noise_place"] is None and by_type["prior_guided"]["noise_step"] is None


def test_each_drop_reason_counted_with_ids():
    long = " ".join(["word"] * 351)
    exactly = " ".join(["word"] * 350)
    records = [
        candidate("ok"),  # 6 kept
        candidate("noimg", image=None, negatives=negs("prior_guided")),  # 2 missing_image
        candidate("emptyc", chosen=("  ",), negatives=negs("contrastive")),  # 1 empty_chosen
        candidate("emptyr", chosen=("fine",), negatives=(Negative("\n", "self_generated"),)),  # 1 empty_rejected
        candidate("same", chosen=("a  red\ncup",), negatives=(Negative(" a red cup ", "error_injection"),
                                                              Negative("a blue cup", "error_injection"))),
        candidate("long", chosen=(long, exactly), negatives=(Negative("short", "prior_guided"),
                                                             Negative(exactly + " x", "prior_guided"))),
    ]
    ds, report = build_pairs(records)
    assert report.counts_by_reason() == {"missing_image": 2, "empty_chosen": 1, "empty_rejected": 1,
                                         "identical": 1, "too_long": 3}
    assert sorted(report.dropped_ids("missing_image")) == ["noimg:0:0", "noimg:1:0"]
    assert report.dropped_ids("empty_chosen") == ["emptyc:0:0"]
    assert report.dropped_ids("empty_rejected") == ["emptyr:0:0"]
    assert report.dropped_ids("identical") == ["same:0:0"]
    assert sorted(report.dropped_ids("too_long")) == ["long:0:0", "long:0:1", "long:1:1"]
    # 350 words exactly is kept: the released rule drops responses *over* 350 words.
    assert "long:1:0" in ds["pair_id"] and "same:0:1" in ds["pair_id"]
    # Nothing vanishes: kept + dropped == every candidate pair.
    expected_total = sum(len(r.chosen) * len(r.negatives) for r in records)
    assert report.total == expected_total == 16
    assert report.kept + report.n_dropped == report.total and len(ds) == report.kept == 8
    assert set(ds["pair_id"]).isdisjoint(report.dropped_ids())
    groups = report.counts_by_group()
    assert groups.loc[("detail", "prior_guided"), "too_long"] == 3
    assert groups.loc[("detail", "prior_guided"), "missing_image"] == 2
    assert list(groups.columns) == list(DROP_REASONS)
    d = report.to_dict()
    assert d["total"] == 16 and d["kept"] == 8 and d["dropped"] == 8 and len(d["dropped_ids"]) == 8


def test_config_changes_validation():
    rec = candidate("x", chosen=("one two three",), negatives=(Negative("one  two three", "contrastive"),
                                                                Negative("a b c d", "contrastive")))
    _, report = build_pairs([rec], PairConfig(max_words=3, drop_identical=False))
    assert report.counts_by_reason()["identical"] == 0 and report.dropped_ids("too_long") == ["x:0:1"]
    ds, report = build_pairs([candidate(image=None)], PairConfig(require_image=False))
    assert report.kept == 6 and ds[0]["images"] == []


@pytest.mark.parametrize("kwargs, field", [
    ({"max_words": 0}, "max_words"), ({"max_words": 1.5}, "max_words"), ({"max_words": True}, "max_words"),
    ({"require_image": "yes"}, "require_image"), ({"drop_identical": 1}, "drop_identical"),
])
def test_config_rejects_bad_values(kwargs, field):
    with pytest.raises(ValueError, match=f"PairConfig.{field}"):
        PairConfig(**kwargs)


def test_record_models_reject_bad_values():
    with pytest.raises(ValueError, match="released type"):
        Negative("x", "mllm-hal")
    with pytest.raises(ValueError, match="noise_step"):
        Negative("x", "image_weakened", "pixels", -1)
    with pytest.raises(ValueError, match="negatives"):
        candidate(negatives=())
    with pytest.raises(ValueError, match="chosen"):
        candidate(chosen=())
    with pytest.raises(ValueError, match="duplicate"):
        build_pairs([candidate("a"), candidate("a")])


def test_statistics_per_source_and_type():
    records = [candidate("a"), candidate("b", source="textvqa", chosen=("yes",), negatives=negs("prior_guided"))]
    ds, _ = build_pairs(records)
    stats = pair_statistics(ds)
    assert stats.loc[("detail", "image_weakened"), "pairs"] == 2
    assert stats.loc[("textvqa", "prior_guided"), "pairs"] == 1
    assert stats.loc[("all", "all"), "pairs"] == 7
    assert stats.loc[("textvqa", "prior_guided"), "chosen_words_mean"] == 1.0
    assert stats.loc[("detail", "error_injection"), "chosen_words_max"] == 6
    assert stats.loc[("detail", "error_injection"), "chosen_words_mean"] == 5.5
    assert stats.loc[("detail", "prior_guided"), "rejected_words_median"] == 6.0


def test_type_mapping_round_trips():
    assert to_released_type("image_weakened") == "mllm-hal" and to_released_type("error_injection") == "llm-hal"
    assert from_released_type("mllm-hal") == "image_weakened" and from_released_type("llm-hal") == "error_injection"
    for t in ("prior_guided", "self_generated", "contrastive", "brand_new"):
        assert from_released_type(to_released_type(t)) == t


def test_json_round_trip(tmp_path):
    scenes = sample_scenes(0, "x", 2)
    records = [
        Candidate(s.scene_id, f"What is in the {s.place}?", render(s, 64),
                  ("gt one", "gt two"), negs("image_weakened", "error_injection", "brand_new"), "detail", s.scene_id)
        for s in scenes
    ] + [candidate("odd id/with space", image=None, source=None, scene_id=None)]
    out = export_bpo_json(records, tmp_path / "data" / "bpo.json", tmp_path / "images")
    raw = json.loads(out.read_text())
    assert raw[0]["prompt"].endswith("\n<image>")
    assert [c["type"] for c in raw[0]["completions"]] == ["gt", "gt", "mllm-hal", "llm-hal", "brand_new"]
    assert [c["score"] for c in raw[0]["completions"]] == [1, 1, 0, 0, 0]
    assert raw[2]["image"] is None
    back = import_bpo_json(out)
    assert back == records
    for a, b in zip(records[:2], back[:2]):
        assert a.image.mode == b.image.mode and a.image.size == b.image.size
        assert a.image.tobytes() == b.image.tobytes()
    assert back[2].image is None
    # Re-exporting writes byte-identical files.
    png = (tmp_path / "images" / f"{scenes[0].scene_id}.png").read_bytes()
    out2 = export_bpo_json(back, tmp_path / "again.json", tmp_path / "images2")
    assert (tmp_path / "images2" / f"{scenes[0].scene_id}.png").read_bytes() == png
    assert json.loads(out2.read_text())[1]["completions"] == raw[1]["completions"]
    # And the imported records build the same pairs.
    ds1, _ = build_pairs(records, PairConfig(require_image=False))
    ds2, _ = build_pairs(back, PairConfig(require_image=False))
    assert ds1.remove_columns("images").to_list() == ds2.remove_columns("images").to_list()


def good_record(image="img.png"):
    return {"id": "r1", "prompt": "Describe.\n<image>", "image": image,
            "completions": [{"score": 1, "response": "a cup", "type": "gt"},
                            {"score": 0, "response": "a dog", "type": "mllm-hal"}]}


def _drop(key):
    def f(r):
        del r[key]
    return f


def _drop_comp(j, key):
    def f(r):
        del r["completions"][j][key]
    return f


def _set(path, value):
    def f(r):
        target = r
        for k in path[:-1]:
            target = target[k]
        target[path[-1]] = value
    return f


@pytest.mark.parametrize("mutate, field", [
    (_drop("completions"), "completions"),
    (_drop("image"), "image"),
    (_drop("prompt"), "prompt"),
    (_set(["prompt"], "Describe."), "prompt"),
    (_drop_comp(1, "response"), "completions[1].response"),
    (_drop_comp(0, "score"), "completions[0].score"),
    (_set(["completions", 1, "score"], 0.5), "completions[1].score"),
    (_set(["completions", 1, "score"], 2), "completions[1].score"),
    (_set(["completions", 0, "type"], "mllm-hal"), "completions[0].type"),
    (_set(["completions"], [{"score": 0, "response": "x", "type": "llm-hal"}]), "completions"),
    (_set(["completions"], []), "completions"),
    (_set(["image"], "nowhere.png"), "image"),
    (_set(["completions", 1, "noise_step"], "late"), "completions[1].noise_step"),
])
def test_malformed_record_names_file_row_and_field(tmp_path, mutate, field):
    tiny_image().save(tmp_path / "img.png")
    bad = good_record()
    mutate(bad)
    path = tmp_path / "broken.json"
    path.write_text(json.dumps([good_record(), bad]))
    with pytest.raises(ValueError) as err:
        import_bpo_json(path)
    msg = str(err.value)
    assert str(path) in msg and "row 1" in msg and f"field {field!r}" in msg
    assert "'r1'" in msg  # the id, present in every one of these records
    if field == "image" and "image" in bad:
        assert "missing" in msg


def test_malformed_file_level(tmp_path):
    path = tmp_path / "notlist.json"
    path.write_text(json.dumps({"id": "r1"}))
    with pytest.raises(ValueError, match="notlist.json.*list"):
        import_bpo_json(path)
    path.write_text(json.dumps([good_record(None), "oops"]))
    with pytest.raises(ValueError, match=r"notlist\.json: row 1: field '<record>'"):
        import_bpo_json(path)
    path.write_text(json.dumps([{"prompt": "x\n<image>"}]))
    with pytest.raises(ValueError, match=r"row 0: field 'id': missing"):
        import_bpo_json(path)
