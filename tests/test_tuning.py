"""LoRA fine-tuning on preference pairs (BPO and SFT): loss, reference cache, shared image pass,
frozen parts, resume, NaN guard, saved adapters, and the two named options."""

import hashlib
import math

import pytest
import torch

from bpo.models.chat import encode_example
from bpo.preference.dataset import Candidate, Negative, build_pairs
from bpo.training.pairs import compute_reference, encode_pairs, pair_batch, select_pairs
from bpo.training.tuning import dpo_loss, lm_linear_targets, train_tuning
from bpo.training.tuning_config import TuningConfig
from bpo.world.render import render
from bpo.world.scene import sample_scenes


@pytest.fixture(scope="module")
def setup(image_dependent_tiny):
    model, processor = image_dependent_tiny
    scenes = sample_scenes(3, "tuning-test", 6)
    cands = [Candidate(f"c{i}", "Describe the image.", render(s, 128), (f"There is a red cup and {i + 2} dogs.",),
                       (Negative(f"There is a blue car near {i + 1} cats.", "image_weakened", "pixels", 500),
                        Negative("A cat sits on the left.", "prior_guided")), "detail", f"s{i}")
             for i, s in enumerate(scenes)]
    ds, report = build_pairs(cands)
    assert report.kept == 12
    return model, processor, ds


def cfg(**kw):
    return TuningConfig(**{"epochs": 2, "batch_size": 4, "lr": 2e-3, "lora_r": 4, "lora_alpha": 8, **kw})


def test_dpo_loss_matches_a_hand_computed_value():
    # log-ratios +1 (chosen) and -1 (rejected), beta 0.1: -log sigmoid(0.2) = log(1 + e^-0.2)
    losses, r_c, r_r = dpo_loss(torch.tensor([-10.0]), torch.tensor([-12.0]), torch.tensor([-11.0]),
                                torch.tensor([-11.0]), beta=0.1)
    assert losses.item() == pytest.approx(0.5981388693815918, abs=1e-6)
    assert r_c.item() == pytest.approx(0.1) and r_r.item() == pytest.approx(-0.1)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "ppo"}, "method"), ({"lr": 0}, "lr"), ({"epochs": 0}, "epochs"), ({"max_pairs": -1}, "max_pairs"),
    ({"lora_dropout": 1.0}, "lora_dropout"), ({"method": "sft", "mdpo_weight": 1.0}, "options of method='bpo'"),
    ({"mdpo_noise_place": "ears"}, "mdpo_noise_place"),
])
def test_config_rejects_bad_values(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TuningConfig(**kwargs)


def test_select_pairs_filters_types_and_subsamples_reproducibly(setup):
    _, _, ds = setup
    assert set(select_pairs(ds, ("prior_guided",))["negative_type"]) == {"prior_guided"}
    a, b = select_pairs(ds, max_pairs=5, seed=1), select_pairs(ds, max_pairs=5, seed=1)
    assert len(a) == 5 and a["pair_id"] == b["pair_id"]
    assert select_pairs(ds, max_pairs=5, seed=2)["pair_id"] != a["pair_id"]
    with pytest.raises(ValueError, match="error_injection"):
        select_pairs(ds, ("error_injection",))


def test_lora_targets_only_the_lm(setup):
    import re

    model, _, _ = setup
    pattern = re.compile(lm_linear_targets(model))
    hits = [n for n, m in model.named_modules() if isinstance(m, torch.nn.Linear) and pattern.fullmatch(n)]
    assert hits and all(n.startswith("model.language_model.") for n in hits)
    lm_linears = [n for n, m in model.model.language_model.named_modules() if isinstance(m, torch.nn.Linear)]
    assert len(hits) == len(lm_linears)


def test_shared_image_pass_equals_the_models_own_forward_per_response(setup):
    """Chosen and rejected in one batch, on image embeddings computed once, give the log-probs that
    LlavaForConditionalGeneration's own forward (pixels in, one response at a time) gives."""
    model, processor, ds = setup
    pairs = encode_pairs(model, processor, ds.select(range(2)), max_length=320, bf16=False, progress=False)
    pad = processor.tokenizer.pad_token_id
    ref = compute_reference(model, pairs, pad, bf16=False, progress=False)
    pix = processor.image_processor(ds[0]["images"], return_tensors="pt")["pixel_values"]
    for name in ("chosen", "rejected"):
        ids, labels = encode_example(processor, [{"role": "user", "content": ds[0]["prompt"]},
                                                 {"role": "assistant", "content": ds[0][name]}],
                                     model.config.image_seq_length)
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([ids]), pixel_values=pix).logits[0, :-1].float()
        target = torch.tensor(labels[1:])
        keep = target != -100
        expected = torch.log_softmax(logits[keep], -1).gather(-1, target[keep, None]).sum()
        assert ref[name][0].item() == pytest.approx(expected.item(), abs=1e-3)


def test_training_learns_keeps_frozen_parts_and_caches_the_reference(setup, tmp_path):
    model, processor, ds = setup
    frozen = {n: p.detach().clone() for n, p in model.named_parameters()}
    run = train_tuning(model, processor, ds, cfg(epochs=4), tmp_path / "run", reference_cache=tmp_path / "ref.pt",
                       progress=False)
    assert all(torch.equal(p, frozen[n]) for n, p in model.named_parameters()), "the caller's model changed"
    inner = run.model.get_base_model()
    changed = {n for n, p in inner.named_parameters()
               if "lora_" not in n and not torch.equal(p, frozen[n.replace(".base_layer", "")])}
    assert not changed, f"frozen parameters changed: {sorted(changed)[:3]}"
    assert any("lora_B" in n and p.abs().sum() > 0 for n, p in inner.named_parameters())
    first, last = run.log[0], run.log[-1]
    assert first["loss"] == pytest.approx(math.log(2), abs=1e-4)  # adapters start at zero: policy == reference
    assert last["rewards/margins"] > 0.5 and last["rewards/accuracies"] == 1.0
    assert last["logps/rejected"] < first["logps/rejected"] - 5

    # the cached reference equals the trained model with its adapters disabled, and not enabled
    saved = torch.load(tmp_path / "ref.pt")
    pairs = encode_pairs(inner, processor, ds, max_length=320, progress=False)
    assert pairs.pair_ids == saved["pair_ids"]
    with run.model.disable_adapter():
        again = compute_reference(inner, pairs, processor.tokenizer.pad_token_id, saved["batches"], progress=False)
    assert torch.equal(again["chosen"], saved["logps"]["chosen"])  # same batches: bit for bit
    assert torch.equal(again["rejected"], saved["logps"]["rejected"])
    tuned = compute_reference(inner, pairs, processor.tokenizer.pad_token_id, saved["batches"], progress=False)
    assert (tuned["rejected"] - saved["logps"]["rejected"]).abs().max() > 1.0


def test_sft_raises_the_chosen_log_probs(setup, tmp_path):
    model, processor, ds = setup
    run = train_tuning(model, processor, ds, cfg(method="sft", epochs=4), tmp_path / "sft", progress=False)
    assert "logps/rejected" not in run.log[0]
    assert run.log[-1]["logps/chosen"] > run.log[0]["logps/chosen"] + 5


def test_resuming_after_a_stop_between_epochs_gives_the_same_adapter(setup, tmp_path):
    model, processor, ds = setup
    whole = train_tuning(model, processor, ds, cfg(), tmp_path / "whole", progress=False)
    paused = train_tuning(model, processor, ds, cfg(), tmp_path / "resumed", stop_after_epoch=1, progress=False)
    assert not paused.finished and (tmp_path / "resumed" / "checkpoint.pt").exists()
    resumed = train_tuning(model, processor, ds, cfg(), tmp_path / "resumed", progress=False)
    assert resumed.finished and len(resumed.log) == len(whole.log)
    a, b = whole.model.state_dict(), resumed.model.state_dict()
    lora = [k for k in a if "lora_" in k]
    assert lora and all(torch.equal(a[k], b[k]) for k in lora)
    assert [r["loss"] for r in whole.log] == [r["loss"] for r in resumed.log]


def test_a_nan_in_a_batch_stops_the_run_naming_it_and_keeps_the_last_checkpoint(setup, tmp_path):
    model, processor, ds = setup
    train_tuning(model, processor, ds, cfg(), tmp_path / "run", reference_cache=tmp_path / "ref.pt",
                 stop_after_epoch=1, progress=False)
    ckpt = tmp_path / "run" / "checkpoint.pt"
    before = hashlib.sha1(ckpt.read_bytes()).hexdigest()
    saved = torch.load(tmp_path / "ref.pt")
    saved["logps"]["rejected"][3] = float("nan")  # a corrupted reference value for one pair
    torch.save(saved, tmp_path / "ref.pt")
    with pytest.raises(FloatingPointError, match=rf"step \d+ \(epoch 1\), pairs .*{saved['pair_ids'][3]}"):
        train_tuning(model, processor, ds, cfg(), tmp_path / "run", reference_cache=tmp_path / "ref.pt", progress=False)
    assert hashlib.sha1(ckpt.read_bytes()).hexdigest() == before
    assert not (tmp_path / "run" / "log.json").exists()


def test_saved_adapter_reloads_with_plain_peft_and_transformers(setup, tmp_path):
    from peft import PeftModel
    from transformers import LlavaForConditionalGeneration

    model, processor, ds = setup
    model.save_pretrained(tmp_path / "base")
    run = train_tuning(model, processor, ds, cfg(epochs=1), tmp_path / "run", base_path=str(tmp_path / "base"),
                       progress=False)
    config = (run.adapter_dir / "adapter_config.json").read_text()
    assert str(tmp_path / "base") in config
    plain = PeftModel.from_pretrained(LlavaForConditionalGeneration.from_pretrained(tmp_path / "base"),
                                      run.adapter_dir).eval()
    ids, _ = encode_example(processor, [{"role": "user", "content": ds[0]["prompt"]},
                                        {"role": "assistant", "content": ds[0]["chosen"]}], model.config.image_seq_length)
    pix = processor.image_processor(ds[0]["images"], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        ours = run.model.eval()(input_ids=torch.tensor([ids]), pixel_values=pix).logits
        theirs = plain(input_ids=torch.tensor([ids]), pixel_values=pix).logits
        base = model(input_ids=torch.tensor([ids]), pixel_values=pix).logits
    assert torch.allclose(ours, theirs, atol=1e-5)
    assert not torch.allclose(ours, base, atol=1e-3)  # the adapter does something


def test_options_add_their_terms_to_the_first_step(setup, tmp_path):
    model, processor, ds = setup
    run = train_tuning(model, processor, ds, cfg(epochs=1, sft_weight=0.5, mdpo_weight=2.0, mdpo_noise_step=900),
                       tmp_path / "opt", progress=False)
    first = run.log[0]
    # step 0: policy == reference, so both preference terms are log 2
    assert first["mdpo"] == pytest.approx(math.log(2), abs=1e-4)
    assert first["loss"] == pytest.approx(math.log(2) + 0.5 * first["nll"] + 2.0 * math.log(2), abs=1e-4)
    pairs = encode_pairs(model, processor, ds.select(range(2)), 320, weaken=("pixels", 900), progress=False)
    assert (pairs.weak_embeds - pairs.embeds).abs().mean() > 1e-3
    ids, mask, labels, embeds = pair_batch(pairs, [0, 1], processor.tokenizer.pad_token_id, "cr", weak_chosen=True)
    assert ids.shape[0] == 6 and torch.equal(embeds[4:], pairs.weak_embeds[pairs.image_row[[0, 1]]])
