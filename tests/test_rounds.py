"""Multi-round BPO: each round's ground truths are new rows, and a later round starts from (and is
referenced to) the round before it, not the base model."""

import glob

import pytest
import torch

from bpo.pipeline import Base, tune
from bpo.preference.config import PreferenceConfig
from bpo.preference.dataset import Candidate, Negative, build_pairs
from bpo.presets import base_training_config, model_config, world_config
from bpo.rounds import bootstrap_rounds, round_preference_config
from bpo.selection import merged_copy
from bpo.training.pairs import compute_reference, encode_pairs
from bpo.training.tuning import train_tuning
from bpo.training.tuning_config import TuningConfig
from bpo.world.render import render
from bpo.world.scene import sample_scenes

TYPES = ("image_weakened", "prior_guided")


def _pairs(tag: str):
    scenes = sample_scenes(5, tag, 4)
    cands = [Candidate(f"{tag}{i}", "Describe the image.", render(s, 128), (f"There is a red cup and {i + 2} dogs.",),
                       (Negative(f"There is a blue car near {i + 1} cats.", "image_weakened", "pixels", 500),
                        Negative("A cat sits on the left.", "prior_guided")), "detail", f"s{i}")
             for i, s in enumerate(scenes)]
    return build_pairs(cands)[0]


def cfg(**kw):
    return TuningConfig(**{"epochs": 2, "batch_size": 4, "lr": 2e-3, "lora_r": 4, "lora_alpha": 8, **kw})


def test_each_round_takes_the_next_block_of_rows():
    first = PreferenceConfig(skip=400, n_per_source=128)
    rows = [range(c.skip, c.skip + c.n_per_source) for c in (round_preference_config(first, r, TYPES) for r in (1, 2, 3))]
    assert rows[0] == range(400, 528) and rows[1] == range(528, 656) and rows[2] == range(656, 784)
    assert round_preference_config(first, 2, TYPES).negative_types == TYPES
    with pytest.raises(ValueError, match="round_index"):
        round_preference_config(first, 0, TYPES)


def test_a_later_round_starts_from_the_round_before(image_dependent_tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("BPO_DATA_DIR", str(tmp_path / "data"))  # its own: the reference cache is found by listing
    model, processor = image_dependent_tiny
    base = Base("tiny", world_config("tiny", size_scale=0.02), model_config("tiny"),
                base_training_config("tiny", train_scale=0.02), {}, model, processor, {})
    round1 = train_tuning(model, processor, _pairs("round-1"), cfg(), tmp_path / "round1", progress=False)
    pairs2 = _pairs("round-2")
    round2 = tune(base, pairs2, "round-2-pairs", TYPES, cfg(), progress=False, start=round1)
    assert round2.finished and round2.log[0]["loss"] == pytest.approx(0.6931, abs=1e-3)

    # Its reference log-probs are round 1's policy's (merged), and not the base model's.
    [path] = glob.glob(str(tmp_path / "data" / "tiny" / "tuning" / "reference" / "*" / "reference.pt"))
    saved = torch.load(path)
    merged1 = merged_copy(round1.model)
    encoded = encode_pairs(merged1, processor, pairs2, max_length=320, progress=False)
    pad = processor.tokenizer.pad_token_id
    of_round1 = compute_reference(merged1, encoded, pad, saved["batches"], progress=False)
    of_base = compute_reference(model, encoded, pad, saved["batches"], progress=False)
    assert torch.equal(of_round1["rejected"], saved["logps"]["rejected"])
    assert (of_base["rejected"] - saved["logps"]["rejected"]).abs().max() > 0.5

    # Cached: the same call loads the finished round; an unfinished start is refused.
    again = tune(base, pairs2, "round-2-pairs", TYPES, cfg(), progress=False, start=round1)
    assert again.directory == round2.directory and again.log == round2.log
    paused = train_tuning(model, processor, _pairs("round-1"), cfg(), tmp_path / "paused", stop_after_epoch=1,
                          progress=False)
    with pytest.raises(ValueError, match="has not finished"):
        tune(base, pairs2, "round-2-pairs", TYPES, cfg(), progress=False, start=paused)


def test_rounds_are_for_bpo_only(image_dependent_tiny):
    with pytest.raises(ValueError, match="for BPO"):
        bootstrap_rounds(None, None, PreferenceConfig(), TYPES, cfg(method="sft"), 2)
    with pytest.raises(ValueError, match="n_rounds"):
        bootstrap_rounds(None, None, PreferenceConfig(), TYPES, cfg(), 0)
