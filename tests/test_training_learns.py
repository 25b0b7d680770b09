"""Each base-training stage learns: its loss on held-out examples (never trained on) drops on tiny."""

import dataclasses

import pytest
import torch

from bpo.models.forward import lm_loss, text_only_loss
from bpo.models.llava import build_model
from bpo.presets import base_training_config, model_config, world_config
from bpo.training.base import _freeze, pretrain_lm, train_on_conversations
from bpo.training.data import collate, encode_all, image_features
from bpo.world.sources import load_or_build_world


@pytest.fixture(scope="module")
def setting(tmp_path_factory):
    import os

    os.environ["BPO_DATA_DIR"] = str(tmp_path_factory.mktemp("learns"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: a second thread only waits
    world = load_or_build_world("tiny", world_config("tiny", size_scale=0.1), progress=False)
    cfg = dataclasses.replace(base_training_config("tiny"), lm_epochs=1, batch_size=8)
    torch.manual_seed(0)
    model, processor = build_model(model_config("tiny"), list(world["corpus"]["text"]), progress=False)
    yield world, model.float().train(), processor, cfg
    torch.set_num_threads(threads)


@torch.no_grad()
def _text_loss(model, processor, texts):
    tok = processor.tokenizer
    ids, mask, _ = collate([(x, x) for x in (tok(t, add_special_tokens=False).input_ids for t in texts)],
                           tok.pad_token_id)
    return float(text_only_loss(model, ids, mask))


@torch.no_grad()
def _conversation_loss(model, processor, feats, conversations, cfg):
    encoded = encode_all(processor, conversations, feats.shape[1], cfg.max_length)
    ids, mask, labels = collate(encoded, processor.tokenizer.pad_token_id)
    with torch.autocast("cpu", dtype=torch.bfloat16):  # as in training: the cached features are bf16
        return float(lm_loss(model, ids, mask, feats, labels))


def test_lm_pretraining_lowers_held_out_text_loss(setting):
    world, model, processor, cfg = setting
    texts = list(world["corpus"]["text"])
    train, held_out = texts[:-64], texts[-64:]
    before = _text_loss(model, processor, held_out)
    _freeze(model, ("lm",))
    pretrain_lm(model, processor, train, cfg, progress=False)
    after = _text_loss(model, processor, held_out)
    assert after < 0.7 * before, (before, after)


@pytest.mark.parametrize("stage", ["align", "sft"])
def test_alignment_and_instruction_tuning_lower_held_out_answer_loss(setting, stage):
    world, model, processor, cfg = setting
    ds = world["caption"] if stage == "align" else world["detail"]
    n_held = 16
    images = [ds[i]["image"] for i in range(len(ds))]
    conversations = ds["conversations"]
    _freeze(model, ("projector",) if stage == "align" else ("projector", "lm"))
    feats = image_features(model, processor, images, progress=False)
    held = slice(len(ds) - n_held, len(ds))
    before = _conversation_loss(model, processor, feats[held], conversations[held], cfg)
    lr = cfg.align_lr if stage == "align" else 3e-4
    epochs = 4 if stage == "align" else 2  # only the projector learns in alignment: it needs more steps
    train_on_conversations(model, processor, feats[:-n_held], conversations[:-n_held], lr, epochs, cfg, stage, False)
    after = _conversation_loss(model, processor, feats[held], conversations[held], cfg)
    assert after < 0.95 * before, (stage, before, after)
