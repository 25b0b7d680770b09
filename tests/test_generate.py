"""Batched generation: same answers as one-by-one, input order kept, seeded sampling, input checks."""

import pytest
import torch

from bpo.models.config import ModelConfig
from bpo.models.llava import build_model
from bpo.models import generate as generate_module
from bpo.models.generate import generate
from bpo.world.sources import build_corpus
from bpo.world.render import render
from bpo.world.scene import sample_scenes

# Prompt lengths differ a lot, so batches of 4 carry real left padding.
QUESTIONS = ["Describe this image.", "What is on the left of the sign in this picture?", "Hi",
             "Is there a red car?", "How many dogs are there in the image, and what colour are they?", "Read the sign."]


@pytest.fixture(scope="module")
def tiny():
    # One thread: this model's matmuls are too small to gain from two, and when other processes share
    # the CPU, two threads waiting on each other at every op made this module ~50x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    cfg = ModelConfig("tiny", vision_layers=2, lm_layers=2)
    model, processor = build_model(cfg, build_corpus(300, 0)["text"])
    # A fresh model's small init (std 0.02) answers every prompt with one repeated token, which would
    # make "batched == one-by-one" hold trivially; larger random weights give varied, image-dependent text.
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.15, generator=g)
    images = [render(s, cfg.image_size) for s in sample_scenes(0, "generate-test", len(QUESTIONS))]
    yield model, processor, images
    torch.set_num_threads(threads)


def test_batched_greedy_matches_one_by_one_in_input_order(tiny):
    model, processor, images = tiny
    batched = generate(model, processor, images, QUESTIONS, max_new_tokens=10, batch_size=4, autocast=False,
                       progress=False)
    single = [generate(model, processor, [im], [q], max_new_tokens=10, batch_size=1, autocast=False, progress=False)[0]
              for im, q in zip(images, QUESTIONS)]
    assert batched == single
    assert len(set(batched)) > 1  # the check above is not trivially true
    assert all(a == a.strip() for a in batched)
    reversed_ = generate(model, processor, images[::-1], QUESTIONS[::-1], max_new_tokens=10, batch_size=4,
                         autocast=False, progress=False)
    assert reversed_ == batched[::-1]


def test_sampling_is_seeded(tiny):
    model, processor, images = tiny
    kw = dict(max_new_tokens=8, batch_size=4, do_sample=True, temperature=1.0, progress=False)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    a = generate(model, processor, images, QUESTIONS, seed=1, **kw)
    assert torch.equal(torch.rand(3), expected_next)  # the caller's global RNG is left alone
    b = generate(model, processor, images, QUESTIONS, seed=1, **kw)
    c = generate(model, processor, images, QUESTIONS, seed=2, **kw)
    assert a == b
    assert a != c


def test_input_checks(tiny):
    model, processor, images = tiny
    with pytest.raises(ValueError, match="3 images but 2 questions"):
        generate(model, processor, images[:3], QUESTIONS[:2], progress=False)
    with pytest.raises(TypeError, match=r"questions\[1\]"):
        generate(model, processor, images[:2], ["ok", 7], progress=False)
    with pytest.raises(ValueError, match=r"images\[0\] is None"):
        generate(model, processor, [None], ["ok"], progress=False)
    assert generate(model, processor, [], [], progress=False) == []


def test_the_image_token_is_never_generated(tiny):
    import copy

    model, processor, images = tiny
    model = copy.deepcopy(model)
    image_id = model.config.image_token_index
    with torch.no_grad():  # the output layer is tied: a huge <image> row makes it the top token everywhere
        model.get_input_embeddings().weight[image_id] *= 1000
    answers = generate(model, processor, images[:2], QUESTIONS[:2], max_new_tokens=5, autocast=False, progress=False)
    ids = processor.tokenizer(answers, add_special_tokens=False).input_ids
    assert all(image_id not in row for row in ids) and all(answers)


def test_answers_that_use_the_whole_budget_without_ending_are_flagged_truncated(tiny):
    """A row is cut when it fills max_new_tokens and its last token is neither end nor padding."""
    model, processor, images = tiny
    tok = processor.tokenizer
    word = tok("dog", add_special_tokens=False).input_ids[0]
    ended = [word, tok.eos_token_id, tok.pad_token_id]  # ended early, padded after
    full = [word, word, word]  # still talking at the budget
    last_is_end = [word, word, tok.eos_token_id]  # ended exactly at the budget

    def decode(inputs, b):
        return torch.tensor([ended, full, last_is_end][:inputs["input_ids"].shape[0]])

    out = generate_module.decode_batches(model, processor, images[:3], ["Hi"] * 3, decode, max_new_tokens=3,
                                         batch_size=3, progress=False)
    assert out.truncated == [False, True, False]
    assert out.texts[1] == tok.decode(full, skip_special_tokens=True).strip()
    short = generate_module.decode_batches(model, processor, images[:3], ["Hi"] * 3, decode, max_new_tokens=4,
                                           batch_size=3, progress=False)
    assert short.truncated == [False, False, False]  # fewer new tokens than the budget: nothing was cut


def test_generate_reports_truncation_when_asked(tiny):
    model, processor, images = tiny
    kw = dict(max_new_tokens=4, min_new_tokens=4, batch_size=3, autocast=False, progress=False)
    out = generate(model, processor, images[:3], QUESTIONS[:3], with_truncation=True, **kw)
    assert out.truncated == [True] * 3  # end of sequence is suppressed until the budget is spent
    assert out.texts == generate(model, processor, images[:3], QUESTIONS[:3], **kw)


def _head_inputs(model):
    """Record whether each input the LM head receives is contiguous (a hook registered last sees
    what the earlier hooks made of the input)."""
    seen = []
    model.get_output_embeddings().register_forward_pre_hook(lambda m, args: seen.append(args[0].is_contiguous()))
    return seen


def test_contiguous_head_gives_the_same_answers_from_one_matmul(tiny):
    import copy

    from bpo.models.fast_head import contiguous_head

    model, processor, images = tiny
    plain, fast = copy.deepcopy(model), contiguous_head(contiguous_head(copy.deepcopy(model)))
    assert len(fast.get_output_embeddings()._forward_pre_hooks) == 1  # applied once, however often called
    seen_plain, seen_fast = _head_inputs(plain), _head_inputs(fast)
    kw = dict(max_new_tokens=8, batch_size=4, autocast=False, progress=False)
    assert generate(fast, processor, images, QUESTIONS, **kw) == generate(plain, processor, images, QUESTIONS, **kw)
    # The premise: without the hook the prompt pass hands the head a strided slice; with it, never.
    assert not all(seen_plain)
    assert all(seen_fast) and len(seen_fast) == len(seen_plain)
    fast_copy = copy.deepcopy(fast)  # tuned models are copies of the loaded base: they keep it
    seen_copy = _head_inputs(fast_copy)
    generate(fast_copy, processor, images[:2], QUESTIONS[:2], **kw)
    assert all(seen_copy)


def _transformers_generate(model, processor, image, question, seed, **kw):
    """transformers' own ``model.generate`` on one prompt (no padding), the peer of our decoding loop."""
    from bpo.models.chat import prompt_text

    tok = processor.tokenizer
    inputs = processor(text=[prompt_text(processor, question)], images=[image], return_tensors="pt")
    torch.manual_seed(seed)
    out = model.generate(**inputs, pad_token_id=tok.pad_token_id, suppress_tokens=[model.config.image_token_index],
                         **kw)
    return tok.decode(out[0, inputs["input_ids"].shape[1]:], skip_special_tokens=True).strip()


@pytest.mark.parametrize("kw", [dict(do_sample=False, temperature=None, top_p=None, top_k=None),
                                dict(do_sample=False, min_new_tokens=12, temperature=None, top_p=None, top_k=None),
                                dict(do_sample=True, temperature=0.7, top_p=0.9)])
def test_our_decoding_loop_chooses_the_tokens_transformers_generate_chooses(tiny, kw):
    model, processor, images = tiny
    ours_kw = {k: v for k, v in kw.items() if v is not None}
    ours = [generate(model, processor, [im], [q], max_new_tokens=16, batch_size=1, seed=5, autocast=False,
                     progress=False, **ours_kw)[0] for im, q in zip(images, QUESTIONS)]
    theirs = [_transformers_generate(model, processor, im, q, 5, max_new_tokens=16, **kw)
              for im, q in zip(images, QUESTIONS)]
    assert ours == theirs
    assert len(set(ours)) > 1


def test_rows_that_ended_leave_the_batch_and_the_others_are_unchanged(tiny):
    import copy

    model, processor, images = tiny
    model = copy.deepcopy(model)
    eos = processor.tokenizer.eos_token_id
    with torch.no_grad():  # a larger end-of-sequence row (tied head): some rows end early, others do not
        model.get_input_embeddings().weight[eos] *= 3
    sizes = []
    model.model.language_model.register_forward_pre_hook(
        lambda m, args, kwargs: sizes.append(kwargs["inputs_embeds"].shape[0]), with_kwargs=True)
    kw = dict(max_new_tokens=12, autocast=False, progress=False)
    batched = generate(model, processor, images, QUESTIONS, batch_size=len(QUESTIONS), **kw)
    steps = list(sizes)
    single = [generate(model, processor, [im], [q], batch_size=1, **kw)[0] for im, q in zip(images, QUESTIONS)]
    assert batched == single
    lengths = [len(ids) for ids in processor.tokenizer(batched, add_special_tokens=False).input_ids]
    assert min(lengths) < 11 < max(lengths)  # the premise: some rows ended early and some did not
    assert steps[0] == len(QUESTIONS) and steps[-1] < len(QUESTIONS)  # the prompt pass had all; the last step fewer
    assert steps == sorted(steps, reverse=True)


def test_the_kv_cache_goes_by_the_name_this_transformers_takes(tiny):
    """transformers 5.24 renamed ``past_key_values`` to ``cache`` (the old name goes in 5.40, when a
    stray ``past_key_values`` would vanish into ``**kwargs``): the loop passes the name the forward
    takes, through a peft wrapper too, so decoding warns of no deprecated argument."""
    import inspect
    import warnings

    from peft import LoraConfig, get_peft_model

    from bpo.models.generate import with_cache

    model, processor, images = tiny
    name = next(iter(with_cache(model, None)))
    assert name in inspect.signature(type(model).forward).parameters
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    try:
        assert with_cache(wrapped, None) == {name: None}
    finally:
        wrapped.unload()

    class Old(torch.nn.Module):  # a forward from before the rename
        def forward(self, input_ids=None, past_key_values=None, **kwargs):
            return input_ids

    assert with_cache(Old(), "kv") == {"past_key_values": "kv"}
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*past_key_values.*")
        generate(model, processor, images[:2], QUESTIONS[:2], max_new_tokens=4, progress=False)
