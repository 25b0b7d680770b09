"""Fluency guards: the parsed share (world answers read, degenerate text does not), repeated
n-grams, and the base model's response perplexity checked against a hand computation."""

import dataclasses
import math
from collections import Counter

import numpy as np
import pytest
import torch
from PIL import Image

from bpo.evaluation import fluency as F
from bpo.evaluation import text as T
from bpo.evaluation.benchmarks import build_halbench, build_mmvet, build_pope, build_wild
from bpo.models.chat import prompt_text, to_messages
from bpo.world import language as L, vocab
from bpo.world.scene import Scene, SceneObject, Sign, sample_scenes

STREET = Scene("street-1", "street", (
    SceneObject("car", "red", 2, "top", "left"),
    SceneObject("person", "blue", 1, "bottom", "right"),
    SceneObject("teddy bear", "brown", 1, "top", "right"),
), Sign("word", "STOP", "bottom", "left"))


def world_answers() -> list[str]:
    """Every kind of answer the world writes: training templates and benchmark references."""
    texts = []
    for i, scene in enumerate(sample_scenes(0, "test/fluency", 150)):
        rng = np.random.default_rng(i)
        texts += [L.describe(scene), L.describe(scene, rng), L.caption(scene, rng)]
        texts += [a for _, a in L.sign_qa(scene, rng)]
        texts += [t["content"] for t in L.conversation(scene, rng) if t["role"] == "assistant"]
    for split in ("standard", "atypical"):
        texts += [it["reference"] for it in build_mmvet(48, split=split)]  # 3 rounds of the 16 question types
        texts += [it["reference"] for it in build_halbench(10, split=split)]
        texts += [it["reference"] for it in build_wild(15, split=split)]
        texts += [it["reference"] for it in build_pope(5, split="random", scene_split=split)]
    return texts


def test_the_worlds_own_answers_are_all_parsed():
    texts = world_answers()
    assert len(texts) > 1000
    share, flags = F.parsed_share(texts)
    failing = [(t, F.unread_reason(t)) for t, ok in zip(texts, flags) if not ok]
    assert failing == [] and share == 1.0
    # the sample holds the long list sentences (captions, stories), so the length limit is tested
    sentence_lengths = [Counter(t.sentence for t in T.tokenize(text)).values() for text in texts]
    longest = max(max(lengths) for lengths in sentence_lengths)
    assert 25 < longest <= F.MAX_SENTENCE_TOKENS


@pytest.mark.parametrize("response, reason", [
    ("", "no words"),
    ("   \n ", "no words"),
    ("...", "no words"),
    ("the the the", "no full stop"),
    ("There is a red car in the top", "no full stop"),  # cut at the token budget
    ("There are two red cars in the top left. There is a", "no full stop"),
    ("There is a red car in the.", "ends with 'the'"),
    ("The car is red and.", "ends with 'and'"),
    ("The the the car is red.", "repeats 'the'"),
    ("There is a car car in the image.", "repeats 'car'"),
    ("The car is in the top left in the top left.", "repeats 'in the top left'"),
    ("There is a red car. The car is is red.", "sentence 2: repeats 'is'"),
    ("There is a blorp in the image.", "unknown word 'blorp'"),
    ("There is a red car, very shiny and beautiful.", "unknown word 'very'"),
    ('A sign reads "STOPSTOP".', "unknown word 'stopstop'"),
    ("There is a dog # in the image.", "character '#'"),
    ("There is a dog - in the image.", "character '-'"),
    (", there is a dog.", "starts with ','"),
    ("There is " + ", ".join(L.article(name) for name in list(vocab.OBJECTS)[:20]) + " here.",
     "tokens (at most 50)"),  # a run-on list: 63 tokens, no word repeated next to itself
])
def test_degenerate_text_is_not_parsed(response, reason):
    why = F.unread_reason(response)
    assert why is not None and reason in why, why
    assert not F.is_parsed(response)
    assert F.parsed_share([response]) == (0.0, [False])


@pytest.mark.parametrize("response", [
    "Yes.", "No.", "The car is red!", "No, I do not see any dog in the image.",  # the parser's negation grammar
    "There isn't a dog in the image.",  # "n't" reads as "not"
    'The sign says "STOP".', 'The sign says "STOP."', "3 + 4 = 7.", "There are 2 cars.",
    "Two red cars are in the top left; a person is in the bottom right.",
    "There are two red cars.\nThere is a teddy bear.",
])
def test_fluent_wordings_beyond_the_templates_are_parsed(response):
    assert F.unread_reason(response) is None


def test_share_and_flags_follow_the_responses():
    responses = [L.describe(STREET), "the the the", "", "The car is red.", "There is a red car in the"]
    share, flags = F.parsed_share(responses)
    assert flags == [True, False, False, True, False] and share == pytest.approx(0.4)
    assert math.isnan(F.parsed_share([])[0]) and F.parsed_share([])[1] == []


def test_bad_input_is_refused_clearly():
    with pytest.raises(TypeError, match="not one string"):
        F.parsed_share("There is a dog.")
    with pytest.raises(TypeError, match=r"responses\[1\] is NoneType"):
        F.parsed_share(["There is a dog.", None])
    with pytest.raises(ValueError, match="n=0"):
        F.repeated_ngram("There is a dog.", n=0)


def test_repeated_ngram_flags_loops_not_world_answers():
    assert F.repeated_ngram("There is a red car. " * 3)
    assert not F.repeated_ngram("There is a red car. " * 2)  # twice is not a loop at times=3
    assert F.repeated_ngram("There is a red car. " * 2, times=2)
    assert F.repeated_ngram("the " * 6) and not F.repeated_ngram("the " * 5)  # 4-grams: 3 needs 6 words
    assert not F.repeated_ngram(L.describe(STREET))
    texts = world_answers()
    assert np.mean([F.repeated_ngram(t) for t in texts]) < 0.01


def test_summary_without_a_model():
    responses = ["There is a dog.", "the " * 8, ""]
    s = F.fluency_summary(responses)
    assert s["parsed_%"] == pytest.approx(100 / 3)
    assert s["mean_words"] == pytest.approx((4 + 8 + 0) / 3)
    assert s["repeated_ngram_%"] == pytest.approx(100 / 3)
    assert math.isnan(s["perplexity"]) and s["n_responses"] == 3
    with pytest.raises(ValueError, match="processor and the questions"):
        F.fluency_summary(responses, model=object())


# ------------------------------------------------------------------------------------- perplexity

@pytest.fixture(scope="module")
def tiny():
    """A random tiny LLaVA, its weights scaled up so that per-token log-probs differ clearly (a
    misaligned label would change the perplexity by far more than the tolerance)."""
    from bpo.models.llava import build_model
    from bpo.presets import model_config
    from bpo.world.sources import build_corpus

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = dataclasses.replace(model_config("tiny"), vision_hidden=128, vision_layers=2)
    model, processor = build_model(cfg, build_corpus(300, 0)["text"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.06, generator=g)
    yield model.eval(), processor
    torch.set_num_threads(threads)


QUESTIONS = ["Is there a dog in the image?", "Describe this image in detail.", "What colour is the car?",
             "Where is it?"]
RESPONSES = ["No, there is no dog in the image.", L.describe(STREET), "The car is red.", "the the the top top"]


def _image(model, seed):
    size = model.config.vision_config.image_size
    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8))


def _by_hand(model, processor, question, response, image=None, shift: int = 0) -> tuple[float, int]:
    """Perplexity of ``response`` from the model's plain forward logits: the conversation rendered
    with the chat template, the prompt's tokens unscored, everything after it scored (``shift``
    moves the scored window earlier: a deliberately misaligned label, to show the test can fail)."""
    tok = processor.tokenizer
    messages = to_messages([{"role": "user", "content": question}, {"role": "assistant", "content": response}],
                           with_image=image is not None)
    full = processor.apply_chat_template(messages, tokenize=False)
    prompt = prompt_text(processor, question, with_image=image is not None)
    assert full.startswith(prompt)
    if image is None:
        prompt_ids = tok(prompt, add_special_tokens=False).input_ids
        inputs = {}
    else:  # the processor expands the image placeholder into the image tokens
        enc = processor(text=prompt, images=image, return_tensors="pt", add_special_tokens=False)
        prompt_ids, inputs = enc.input_ids[0].tolist(), {"pixel_values": enc.pixel_values}
    answer_ids = tok(full[len(prompt):], add_special_tokens=False).input_ids
    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logits = model(input_ids=ids, **inputs).logits[0].float()
    logp = torch.log_softmax(logits[:-1], dim=-1).gather(-1, ids[0, 1:, None])[:, 0]
    start = len(prompt_ids) - 1 - shift  # logp[j] predicts token j + 1: the answer's first is prompt_ids' length
    scored = logp[start:start + len(answer_ids)]
    assert len(scored) == len(answer_ids)
    return math.exp(-scored.double().mean().item()), len(answer_ids)


def test_perplexity_matches_a_hand_computation_text_only(tiny):
    model, processor = tiny
    result = F.response_perplexity(model, processor, QUESTIONS, RESPONSES, batch_size=3)
    assert result.per_response.shape == (4,) and result.n_tokens.shape == (4,)
    for i, (q, r) in enumerate(zip(QUESTIONS, RESPONSES)):
        ppl, n = _by_hand(model, processor, q, r)
        assert result.n_tokens[i] == n
        assert result.per_response[i] == pytest.approx(ppl, rel=1e-4)
        # one position off would be seen: the tolerance is far tighter than that error
        assert result.per_response[i] != pytest.approx(_by_hand(model, processor, q, r, shift=1)[0], rel=1e-2)
    # the overall value is token-weighted, not the mean of the per-response values
    log_ppl = np.log(result.per_response)
    weighted = math.exp((log_ppl * result.n_tokens).sum() / result.n_tokens.sum())
    assert result.overall == pytest.approx(weighted, rel=1e-9)
    assert result.overall != pytest.approx(result.per_response.mean(), rel=1e-3)
    assert model.training is False


def test_perplexity_does_not_depend_on_batching(tiny):
    model, processor = tiny
    together = F.response_perplexity(model, processor, QUESTIONS, RESPONSES, batch_size=4)
    alone = [F.response_perplexity(model, processor, [q], [r], batch_size=1).per_response[0]
             for q, r in zip(QUESTIONS, RESPONSES)]
    np.testing.assert_allclose(together.per_response, alone, rtol=1e-4)
    bf16 = F.response_perplexity(model, processor, QUESTIONS, RESPONSES, autocast=True)
    np.testing.assert_allclose(bf16.per_response, together.per_response, rtol=0.1)


def test_perplexity_with_images_matches_the_full_llava(tiny):
    model, processor = tiny
    images = [_image(model, 0), _image(model, 1)]
    qs, rs = QUESTIONS[:2], RESPONSES[:2]
    with_images = F.response_perplexity(model, processor, qs, rs, images=images, batch_size=2)
    text_only = F.response_perplexity(model, processor, qs, rs)
    np.testing.assert_array_equal(with_images.n_tokens, text_only.n_tokens)  # image tokens are not scored
    for i in range(2):
        ppl, _ = _by_hand(model, processor, qs[i], rs[i], images[i])
        assert with_images.per_response[i] == pytest.approx(ppl, rel=1e-4)
    assert not np.allclose(with_images.per_response, text_only.per_response, rtol=1e-3)


def test_perplexity_refuses_mismatched_inputs(tiny):
    model, processor = tiny
    with pytest.raises(ValueError, match="got 3 questions but 2 responses"):
        F.response_perplexity(model, processor, QUESTIONS[:3], RESPONSES[:2])
    with pytest.raises(ValueError, match="got 1 images but 2 questions"):
        F.response_perplexity(model, processor, QUESTIONS[:2], RESPONSES[:2], images=[_image(model, 0)])
    with pytest.raises(ValueError, match="batch_size"):
        F.response_perplexity(model, processor, QUESTIONS[:1], RESPONSES[:1], batch_size=0)
    empty = F.response_perplexity(model, processor, [], [])
    assert empty.per_response.shape == (0,) and math.isnan(empty.overall)


def test_summary_with_the_model(tiny):
    model, processor = tiny
    s = F.fluency_summary(RESPONSES, model, processor, QUESTIONS)
    assert s["perplexity"] == pytest.approx(F.response_perplexity(model, processor, QUESTIONS, RESPONSES).overall)
    assert s["parsed_%"] == pytest.approx(75.0)  # the stutter is the one unread response
