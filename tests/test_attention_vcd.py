"""Visual reliance (attention on image tokens) against transformers' own attention weights, and
VCD decoding: with alpha 0 it is plain greedy decoding, and answer_suite reports its speed."""

import copy

import numpy as np
import pytest
import torch

from bpo.attention import attention_summary, image_attention
from bpo.evaluation.config import AnswerConfig, SuiteConfig
from bpo.evaluation.run import answer_suite
from bpo.evaluation.suite import build_suite, items_of, suite_dataset
from bpo.evaluation.vcd import VCDConfig, vcd_generate
from bpo.models.chat import IGNORE_INDEX, encode_example
from bpo.models.generate import generate
from bpo.models.llava import n_image_features
from bpo.world.render import render
from bpo.world.scene import sample_scenes


@pytest.fixture(scope="module")
def scenes():
    return sample_scenes(5, "attention-test", 3)


def test_image_attention_matches_the_models_own_attention_weights(image_dependent_tiny, scenes):
    model, processor = image_dependent_tiny
    images = [render(s, 128) for s in scenes]
    questions = ["Describe the image."] * 3
    answers = ["A red cup.", "Two dogs sit on the left of a tall blue car.", "Nothing."]
    got = image_attention(model, processor, images, questions, answers, batch_size=2, progress=False)
    assert len(got) == 3 * model.config.text_config.num_hidden_layers
    # independent path: LlavaForConditionalGeneration's forward on pixels, one example at a time
    eager = copy.deepcopy(model)
    eager.set_attn_implementation("eager")
    ids, labels = encode_example(processor, [{"role": "user", "content": questions[1]},
                                             {"role": "assistant", "content": answers[1]}], n_image_features(model))
    pixels = processor.image_processor([images[1]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        out = eager(input_ids=torch.tensor([ids]), pixel_values=pixels, output_attentions=True)
    img = torch.tensor(ids) == model.config.image_token_index
    rows = torch.tensor(labels) != IGNORE_INDEX
    for layer in (0, len(out.attentions) - 1):
        expected = out.attentions[layer][0][:, rows][:, :, img].sum(-1).mean().item()
        share = got[(got.item == 1) & (got.layer == layer)].share.item()
        assert share == pytest.approx(expected, abs=1e-4)
    assert (got[got.item == 1].answer_tokens == int(rows.sum())).all()
    summary = attention_summary({"m": got}, n_boot=50)
    assert len(summary) == model.config.text_config.num_hidden_layers
    assert ((summary.lo <= summary.share) & (summary.share <= summary.hi)).all()


def test_vcd_with_alpha_zero_is_greedy_decoding(image_dependent_tiny, scenes):
    model, processor = image_dependent_tiny
    images = [render(s, 128) for s in scenes]
    questions = ["Describe the image.", "What is on the left?", "Is there a dog?"]
    greedy = generate(model, processor, images, questions, max_new_tokens=8, progress=False, autocast=False)
    same = vcd_generate(model, processor, images, questions, max_new_tokens=8, progress=False, autocast=False,
                        cfg=VCDConfig(alpha=0.0))
    assert same == greedy
    contrast = vcd_generate(model, processor, images, questions, max_new_tokens=12, progress=False, autocast=False,
                            cfg=VCDConfig(alpha=3.0, step=999))
    assert contrast != greedy  # the noisy image's logits change the choice somewhere


def test_vcd_config_rejects_bad_values():
    for kwargs, field in (({"step": 1000}, "step"), ({"noise_place": "ears"}, "noise_place"),
                          ({"alpha": -1.0}, "alpha"), ({"beta": 2.0}, "beta")):
        with pytest.raises(ValueError, match=field):
            VCDConfig(**kwargs)


def test_answer_suite_takes_a_decoder_and_reports_its_speed(image_dependent_tiny):
    model, processor = image_dependent_tiny
    suite = {k: suite_dataset(v, 128) for k, v in
             build_suite(SuiteConfig(n_mmvet=2, n_halbench=2, n_wild=1, n_pope=1, scene_splits=("typical",))).items()}
    cfg = AnswerConfig(max_new_tokens_describe=8, max_new_tokens_short=6, max_new_tokens_yes_no=4)
    plain = answer_suite(model, processor, suite, cfg, progress=False)
    vcd = answer_suite(model, processor, suite, cfg, progress=False, decoder=vcd_generate)
    assert plain.answers.keys() == vcd.answers.keys() and vcd.seconds > 0
    asked = {}  # each distinct (image, question) is answered once; its answer's tokens count once
    for key, ds in suite.items():
        for item, answer in zip(items_of(ds), plain.answers[key]):
            asked[item["scene"], item["question"]] = answer
    n = sum(len(processor.tokenizer(a, add_special_tokens=False).input_ids) for a in asked.values())
    assert plain.new_tokens == n > 0 and np.isfinite(plain.seconds)
