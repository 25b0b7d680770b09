"""The real-scale recipe (``bpo.real.recipe``) end to end on a tiny LLaVA saved as a "checkpoint" and
tiny data written in the published layouts (LLaVA conversation JSON, MM-Vet, LLaVA-Bench-in-the-Wild,
POPE, Object HalBench with a mini COCO and CHAIR synonyms): every stage's outputs, a rerun that does
no work, bad configs that name the key and the file, and the LLM-judged benchmarks through a
stand-in judge on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import json
import shlex
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image, ImageDraw

from bpo.real import recipe
from bpo.real.preference import load_released_pairs
from bpo.real.recipe import main
from bpo.real.recipe_config import ConfigError, RecipeConfig
from bpo.training.tuning_config import TuningConfig

JUDGE_ENV = ("BPO_JUDGE_BASE_URL", "BPO_JUDGE_MODEL", "BPO_JUDGE_API_KEY", "OPENAI_BASE_URL", "OPENAI_API_KEY")


# ----------------------------------------------------------------------------------------------------
# tiny data in the real layouts


def _image(path: Path, colour, shape: str = "square") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    im = Image.new("RGB", (96, 80), (230, 230, 230))  # not square: the processor resizes and crops
    draw = ImageDraw.Draw(im)
    (draw.rectangle if shape == "square" else draw.ellipse)([20, 15, 70, 65], fill=colour)
    im.save(path)  # JPEG or PNG by the suffix


def _jsonl(path: Path, records: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))


def _json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj))


def write_data(root: Path) -> None:
    """Two ground-truth sources and four benchmarks, a few images each, under ``root``."""
    for i, colour in enumerate([(200, 30, 30), (30, 160, 40), (40, 40, 200)], start=1):
        _image(root / f"coco/train2017/{i:012d}.jpg", colour, "square" if i % 2 else "circle")
    # LLaVA-Instruct: image paths relative to coco/train2017; the 4th image is missing (reported)
    _json(root / "llava_instruct_150k.json", [
        {"id": "000000000001", "image": "000000000001.jpg", "conversations": [
            {"from": "human", "value": "<image>\nWhat colour is the square?"}, {"from": "gpt", "value": "The square is red."},
            {"from": "human", "value": "Where is it?"}, {"from": "gpt", "value": "It is in the middle of the picture."}]},
        {"id": "000000000002", "image": "000000000002.jpg", "conversations": [
            {"from": "human", "value": "What shape is in the image?\n<image>"}, {"from": "gpt", "value": "A green circle."}]},
        {"id": "000000000003", "image": "000000000003.jpg", "conversations": [
            {"from": "human", "value": "<image>\nDescribe the image."}, {"from": "gpt", "value": "A blue square on grey."}]},
        {"id": "000000000004", "image": "000000000004.jpg", "conversations": [
            {"from": "human", "value": "<image>\nWhat is this?"}, {"from": "gpt", "value": "A cup."}]},
    ])
    # ShareGPT4V: image paths relative to the data root (its images live in several folders)
    _json(root / "sharegpt4v/sharegpt4v_cap.json", [
        {"id": f"sg{i}", "image": f"coco/train2017/{i:012d}.jpg", "conversations": [
            {"from": "human", "value": "<image>\nDescribe the image in detail."},
            {"from": "gpt", "value": f"The image shows one shape number {i} on a light grey background."}]}
        for i in (1, 2, 3)])

    _image(root / "mm-vet/images/v1_0.png", (200, 30, 30))
    _image(root / "mm-vet/images/v1_1.png", (30, 160, 40), "circle")
    _json(root / "mm-vet/mm-vet.json", {
        "v1_0": {"imagename": "v1_0.png", "question": "What colour is the square?", "answer": "red",
                 "capability": ["rec"]},
        "v1_1": {"imagename": "v1_1.png", "question": "Which shape is it?", "answer": "circle<OR>disc",
                 "capability": ["rec", "spat"]}})

    wild = root / "llava-bench-in-the-wild"
    _image(wild / "images/001.jpg", (40, 40, 200))
    _jsonl(wild / "questions.jsonl", [
        {"question_id": 0, "image": "001.jpg", "text": "What is in the image?", "category": "conv"},
        {"question_id": 1, "image": "001.jpg", "text": "Describe the image in detail.", "category": "detail"}])
    _jsonl(wild / "answers_gpt4.jsonl", [{"question_id": 0, "text": "A blue square."},
                                         {"question_id": 1, "text": "A blue square on a grey background."}])
    _jsonl(wild / "context.jsonl", [{"id": "001", "image": "001.jpg", "caption": "A blue square on grey."}])

    for image_id, colour in ((11, (120, 80, 40)), (12, (200, 30, 30))):
        _image(root / f"coco/val2014/COCO_val2014_{image_id:012d}.jpg", colour)
    _jsonl(root / "pope/coco/coco_pope_random.json", [
        {"question_id": 1, "image": "COCO_val2014_000000000011.jpg", "text": "Is there a dog in the image?", "label": "yes"},
        {"question_id": 2, "image": "COCO_val2014_000000000011.jpg", "text": "Is there a cat in the image?", "label": "no"},
        {"question_id": 3, "image": "COCO_val2014_000000000012.jpg", "text": "Is there a person in the image?",
         "label": "yes"}])
    _jsonl(root / "pope/coco/coco_pope_adversarial.json", [
        {"question_id": 1, "image": "COCO_val2014_000000000012.jpg", "text": "Is there a dog in the image?", "label": "no"}])

    _jsonl(root / "object-halbench/prompts.jsonl", [
        {"image_id": 11, "question": "Provide a thorough description of the given image."},
        {"image_id": 12, "question": "What is this photo about? Please answer in great detail."}])
    _json(root / "coco/annotations/instances_val2014.json", {
        "images": [{"id": 11, "file_name": "COCO_val2014_000000000011.jpg"},
                   {"id": 12, "file_name": "COCO_val2014_000000000012.jpg"}],
        "categories": [{"id": 1, "name": "person"}, {"id": 18, "name": "dog"}, {"id": 17, "name": "cat"}],
        "annotations": [{"image_id": 11, "category_id": 18}, {"image_id": 12, "category_id": 1}]})
    _json(root / "coco/annotations/captions_val2014.json", {
        "annotations": [{"image_id": 11, "caption": "A brown dog on the grass."},
                        {"image_id": 12, "caption": "A man in a red coat."}]})
    (root / "object-halbench/synonyms.txt").write_text("person, man, woman, people\ndog, puppy\ncat, kitten\n")


def recipe_dict(root: Path) -> dict:
    """A recipe with the tiny sizes: 2 ground truths per source, 1 epoch, batch 2, short answers."""
    return {
        "model": "llava-tiny",  # relative: resolved against data_root
        "output": "run",
        "data_root": str(root),
        "seed": 0,
        "noise_place": "pixels",
        "noise_step": 700,
        "temperature": 1.0,
        "batch_size": 2,
        "chunk_size": 1,  # 2 parts per source and type: resuming is part by part
        "sources": [
            {"name": "llava_instruct", "json": "llava_instruct_150k.json", "images": "coco/train2017", "n": 2,
             "max_new_tokens": 6},
            {"name": "sharegpt4v", "json": "sharegpt4v/sharegpt4v_cap.json", "images": ".", "n": 2,
             "max_new_tokens": 6},
        ],
        "tuning": {"method": "bpo", "lr": 1e-3, "epochs": 1, "batch_size": 2, "lora_r": 4, "lora_alpha": 8},
        "benchmarks": {
            "mmvet": {"json": "mm-vet/mm-vet.json", "images": "mm-vet/images"},
            "wild": {"questions": "llava-bench-in-the-wild/questions.jsonl",
                     "answers": "llava-bench-in-the-wild/answers_gpt4.jsonl",
                     "context": "llava-bench-in-the-wild/context.jsonl", "images": "llava-bench-in-the-wild/images"},
            "pope": {"files": ["pope/coco/coco_pope_random.json", "pope/coco/coco_pope_adversarial.json"],
                     "images": "coco/val2014"},
            "halbench": {"prompts": "object-halbench/prompts.jsonl",
                         "instances": "coco/annotations/instances_val2014.json",
                         "captions": "coco/annotations/captions_val2014.json",
                         "synonyms": "object-halbench/synonyms.txt", "images": "coco/val2014"},
        },
        "answer": {"batch_size": 4, "max_new_tokens": {"mmvet": 4, "wild": 4, "pope": 3, "halbench": 6}},
        "device": "cpu",
    }


def write_recipe(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def data(image_dependent_tiny, tmp_path_factory):
    """The data root (with the tiny LLaVA saved in it as ``llava-tiny``) and its recipe file."""
    model, processor = image_dependent_tiny
    torch.set_num_threads(1)  # a tiny model runs fastest alone (the fixture restores the count afterwards)
    root = tmp_path_factory.mktemp("recipe-data")
    model.save_pretrained(root / "llava-tiny")
    processor.save_pretrained(root / "llava-tiny")
    write_data(root)
    return root, write_recipe(root / "recipe.yaml", recipe_dict(root))


def _run(config: Path, stage: str, *overrides: str) -> None:
    args = [stage, "--config", str(config), "--no-progress"]
    for o in overrides:
        args += ["--set", o]
    assert main(args) == 0


@pytest.fixture(scope="module")
def finished(data):
    """Every stage run in order, without an LLM judge in the environment."""
    root, config = data
    with pytest.MonkeyPatch.context() as mp:
        for name in JUDGE_ENV:
            mp.delenv(name, raising=False)
        for stage in recipe.STAGES:
            _run(config, stage)
    return root / "run", root, config


# ----------------------------------------------------------------------------------------------------
# the config


def test_config_resolves_paths_and_reads_numbers(data):
    root, config = data
    cfg = RecipeConfig.from_yaml(config, ["tuning.lr=2e-6", "sources.1.n=all", "answer.max_new_tokens.pope=9"])
    assert cfg.model == str(root / "llava-tiny")  # found under data_root: a local path, not a Hub id
    assert cfg.output == root / "run" and cfg.sources[0].json == root / "llava_instruct_150k.json"
    assert cfg.sources[1].images == root and cfg.sources[1].n is None
    assert cfg.benchmarks["pope"]["files"][1] == root / "pope/coco/coco_pope_adversarial.json"
    assert cfg.tuning.lr == 2e-6 and isinstance(cfg.tuning.lr, float)  # YAML 1.1 would read "2e-6" as text
    assert cfg.tuning.lora_r == 4 and cfg.tuning.seed == 0
    assert cfg.answer.max_new_tokens["pope"] == 9 and cfg.answer.max_new_tokens["mmvet"] == 4
    assert cfg.answer.prompt_suffix["pope"].startswith("\nAnswer the question using a single word")
    assert RecipeConfig.from_mapping({**recipe_dict(root), "model": "llava-hf/llava-1.5-7b-hf"}).model == \
        "llava-hf/llava-1.5-7b-hf"  # not on disk: a Hub id


def test_shipped_recipe_reads(tmp_path):
    from bpo.paths import PROJECT_ROOT

    cfg = RecipeConfig.from_yaml(PROJECT_ROOT / "configs/recipes/llava-1.5-7b.yaml", [f"data_root={tmp_path}"])
    assert cfg.tuning.lora_r == 32 and cfg.tuning.lora_alpha == 256 and cfg.tuning.lr == 2e-6
    assert cfg.tuning.beta == 0.1 and cfg.tuning.epochs == 2
    assert cfg.negative_types == ("image_weakened", "error_injection")
    assert set(cfg.benchmarks) == {"mmvet", "wild", "pope", "halbench"}
    assert cfg.model == str(tmp_path / "llava-1.5-7b-hf")  # a local copy under data_root
    assert cfg.output == tmp_path / "runs/llava-1.5-7b-bpo" and cfg.sources[1].n is None


@pytest.mark.parametrize("change, key", [
    ({"colour": 1}, "colour"),
    ({"tuning": {"lora_rank": 8}}, "tuning.lora_rank"),
    ({"tuning": {"lr": "fast"}}, "tuning.lr"),
    ({"tuning": {"epochs": 0}}, "tuning"),
    ({"noise_step": 5000}, "noise_step"),
    ({"noise_place": "ears"}, "noise_place"),
    ({"negative_types": ["prior_guided"]}, "negative_types"),
    ({"device": "tpu"}, "device"),
    ({"model": None}, "model"),
    ({"sources": [{"name": "a", "json": "x.json", "images": ".", "n": 0}]}, "sources[0].n"),
    ({"sources": [{"name": "a", "json": "x.json", "images": ".", "n": 1, "size": 3}]}, "sources[0].size"),
    ({"benchmarks": {"pope": {"images": "coco/val2014"}}}, "benchmarks.pope.files"),
    ({"benchmarks": {"vqa": {}}}, "benchmarks.vqa"),
    ({"answer": {"max_new_tokens": {"pope": -1}}}, "answer.max_new_tokens.pope"),
])
def test_bad_config_names_the_key_and_the_file(data, tmp_path, change, key):
    root, _ = data
    path = write_recipe(tmp_path / "bad.yaml", {**recipe_dict(root), **change})
    with pytest.raises(ConfigError) as info:
        RecipeConfig.from_yaml(path)
    assert info.value.key == key and str(path) in str(info.value), str(info.value)


def test_missing_file_names_the_key_and_the_file(data, tmp_path):
    root, _ = data
    raw = recipe_dict(root)
    raw["output"] = str(tmp_path / "out")
    raw["sources"][1]["json"] = "sharegpt4v/missing.json"
    path = write_recipe(tmp_path / "missing.yaml", raw)
    with pytest.raises(FileNotFoundError, match=r"sources\[1\]\.json.*sharegpt4v/missing\.json"):
        main(["negatives", "--config", str(path), "--no-progress"])
    with pytest.raises(FileNotFoundError, match="run the 'negatives' stage first"):
        main(["pairs", "--config", str(path), "--no-progress"])


# ----------------------------------------------------------------------------------------------------
# the stages


def test_negatives_are_released_json_with_images_by_path(finished):
    out, root, _ = finished
    records = json.loads((out / "negatives/bpo.json").read_text())
    assert len(records) == 4  # 2 ground truths x 2 sources (unless a record lost both negatives: reported)
    for r in records:
        assert r["prompt"].endswith("\n<image>") and r["image"].startswith("coco/train2017/")
        assert r["completions"][0] == {"score": 1, "response": r["completions"][0]["response"], "type": "gt"}
        assert {c["type"] for c in r["completions"][1:]} <= {"mllm-hal", "llm-hal"}
    assert not list(out.rglob("*.png")) and not list(out.rglob("*.jpg"))  # images stay where they are
    candidates, report = load_released_pairs(out / "negatives/bpo.json", root)
    assert len(candidates) == 4 and report.n_skipped == 0
    weakened = [n for c in candidates for n in c.negatives if n.negative_type == "image_weakened"]
    assert weakened and all((n.noise_place, n.noise_step) == ("pixels", 700) for n in weakened)

    rep = json.loads((out / "negatives/report.json").read_text())
    assert rep["ground_truths"] == 4 and rep["per_source"] == {"llava_instruct": 2, "sharegpt4v": 2}
    made = {k: rep["negatives"][k] + rep["empty_negatives"][k] for k in ("image_weakened", "error_injection")}
    assert made == {"image_weakened": 4, "error_injection": 4}
    assert all(rep["tokens_per_s"][k] > 0 for k in made)
    missing = rep["load_reports"]["llava_instruct"]["missing_images"]  # the 4th record's image
    assert len(missing) == 1 and missing[0][1].endswith("000000000004.jpg")
    assert len(list((out / "negatives/parts").rglob("*-*.json"))) == 2 * 2 * 2  # 2 chunks a source x 2 types


def test_negatives_resume_from_their_parts(finished):
    out, _, config = finished
    target, part = out / "negatives/bpo.json", out / "negatives/parts/image_weakened/sharegpt4v-00001.json"
    records, saved = target.read_text(), json.loads(part.read_text())
    others = {p: p.stat().st_mtime_ns for p in (out / "negatives/parts").rglob("*-*.json") if p != part}
    target.unlink()
    part.unlink()  # as if killed while making this part
    _run(config, "negatives")
    assert json.loads(part.read_text())["responses"] == saved["responses"]  # its own seed: the same draw
    assert target.read_text() == records
    assert {p: p.stat().st_mtime_ns for p in others} == others  # the finished parts were not redone
    with pytest.raises(ValueError, match=r"other settings \(temperature changed\)"):
        target.unlink()
        try:
            _run(config, "negatives", "temperature=0.7")
        finally:
            target.write_text(records)


def test_pairs_are_saved_with_their_report(finished):
    import datasets

    out, _, _ = finished
    ds = datasets.load_from_disk(str(out / "pairs/dataset"))
    rep = json.loads((out / "pairs/report.json").read_text())
    assert len(ds) == rep["pairs"] == rep["build"]["kept"] > 0
    assert rep["build"]["kept"] + rep["build"]["dropped"] == rep["build"]["total"] == 8
    assert {"prompt", "chosen", "rejected", "images", "negative_type", "source"} <= set(ds.column_names)
    assert set(ds["source"]) <= {"llava_instruct", "sharegpt4v"}


def test_train_saves_an_adapter_and_the_8_gpu_command(finished):
    out, _, config = finished
    assert (out / "train/adapter/adapter_config.json").is_file()
    log = json.loads((out / "train/log.json").read_text())
    assert len(log) == -(-json.loads((out / "pairs/report.json").read_text())["pairs"] // 2)  # 1 epoch, batch 2
    script = (out / "train/launch.sh").read_text()
    assert "accelerate launch --config_file configs/accelerate/8gpu_zero2.yaml --num_processes 8" in script
    assert "-m bpo.distributed" in script and f"--pairs {out / 'pairs/dataset'}" in script
    assert "--lora-r 4" in script and "--lr 0.001" in script and "--epochs 1" in script
    # the line's options give bpo.distributed the very TuningConfig of the recipe
    from bpo.distributed import build_parser

    args = build_parser().parse_args(shlex.split(script.splitlines()[-1].split("-m bpo.distributed", 1)[1]))
    cfg = RecipeConfig.from_yaml(config)
    assert TuningConfig(**{f.name: getattr(args, f.name) for f in dataclasses.fields(TuningConfig)}) == cfg.tuning
    assert args.model == cfg.model and args.out == str(out / "train")


def test_answers_for_base_and_tuned_on_every_benchmark(finished):
    out, _, _ = finished
    sizes = {"mmvet": 2, "wild": 2, "pope": 4, "halbench": 2}
    for model in ("base", "tuned"):
        for bench, n in sizes.items():
            saved = json.loads((out / f"answer/{model}/{bench}.json").read_text())
            assert saved["model"] == model and len(saved["answers"]) == n
            assert all(isinstance(a["response"], str) for a in saved["answers"])
    pope = json.loads((out / "answer/base/pope.json").read_text())
    assert [a["item_id"] for a in pope["answers"]] == ["random-1", "random-2", "random-3", "adversarial-1"]
    assert pope["answers"][0]["question"].endswith("Answer the question using a single word or phrase.")


def test_score_tables_rule_benchmarks_and_says_the_judged_ones_were_skipped(finished):
    out, _, _ = finished
    md = (out / "score/results.md").read_text()
    results = json.loads((out / "score/results.json").read_text())
    rows = results["rows"]
    assert {r["benchmark"] for r in rows} == {"POPE", "Object HalBench"}
    assert any(r["metric"] == "all accuracy" for r in rows) and any(r["metric"].startswith("CHAIR_i") for r in rows)
    for r in rows:
        if r["metric"] != "all precision":  # precision of a model that never says yes is 0, still a number
            assert r["base"] is not None and r["tuned"] is not None
    assert "| POPE | all accuracy |" in md and "| Object HalBench | CHAIR_s (Response Hall) ↓ |" in md
    assert "**MM-Vet was not scored**" in md and "**LLaVA-Wild was not scored**" in md
    assert "BPO_JUDGE_BASE_URL" in md and set(results["skipped"]) == {"mmvet", "wild"}
    assert (out / "score/tuned/pope.json").is_file() and (out / "score/base/halbench.json").is_file()


def test_a_rerun_does_no_work(finished, monkeypatch):
    out, _, config = finished
    for name in JUDGE_ENV:
        monkeypatch.delenv(name, raising=False)
    watched = [out / "negatives/bpo.json", out / "pairs/report.json", out / "train/log.json",
               out / "train/launch.sh", out / "answer/tuned/mmvet.json", out / "score/results.json"]
    before = [p.stat().st_mtime_ns for p in watched]

    def no_model(cfg):
        raise AssertionError("a finished stage loaded the model")

    monkeypatch.setattr(recipe, "_load_model", no_model)
    _run(config, "all")
    assert [p.stat().st_mtime_ns for p in watched] == before


# ----------------------------------------------------------------------------------------------------
# the LLM-judged benchmarks, through a stand-in judge


@pytest.fixture
def standin_judge(monkeypatch):
    """A chat-completions stand-in on 127.0.0.1: Wild's review asks for two scores, MM-Vet's for one."""
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", *JUDGE_ENV):
        monkeypatch.delenv(name, raising=False)
    requests = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            request = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))))
            requests.append(request)
            content = request["messages"][-1]["content"]
            reply = "8 6\nThe second answer is vaguer." if "[Assistant 1]" in content else "0.5"
            payload = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant", "content": reply}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setenv("BPO_JUDGE_BASE_URL", f"http://127.0.0.1:{httpd.server_address[1]}/v1")
    monkeypatch.setenv("BPO_JUDGE_MODEL", "judge-4")
    monkeypatch.setenv("BPO_JUDGE_API_KEY", "EMPTY")
    yield requests
    httpd.shutdown()
    httpd.server_close()
    thread.join(timeout=2)


def test_a_configured_judge_adds_mmvet_and_wild(finished, standin_judge):
    out, _, config = finished
    _run(config, "score")  # the earlier result skipped them: redone now that a judge is configured
    results = json.loads((out / "score/results.json").read_text())
    assert results["skipped"] == {} and results["judge"]["model"] == "judge-4"
    # (MM-Vet 2 + Wild 2 items) x (base, tuned); the tiny tuned model may repeat a base answer, which
    # the judge's disk cache then serves without a request
    judged = results["judge"]
    assert judged["calls"] + judged["cache_hits"] == 8 and len(standin_judge) == judged["calls"] >= 4
    rows = {(r["benchmark"], r["metric"]): r for r in results["rows"]}
    assert rows["MM-Vet", "Total"]["base"] == pytest.approx(50.0) == rows["MM-Vet", "Total"]["tuned"]
    assert rows["MM-Vet", "Rec"]["tuned"] == pytest.approx(50.0) and rows["MM-Vet", "OCR"]["base"] is None  # no OCR item
    assert rows["LLaVA-Wild", "all"]["base"] == pytest.approx(75.0)  # 100 x 6 / 8
    md = (out / "score/results.md").read_text()
    assert "| MM-Vet | Total |" in md and "| LLaVA-Wild | all |" in md and "not scored" not in md
    _run(config, "score")  # done, with nothing skipped: no request at all
    assert len(standin_judge) == judged["calls"]
