"""One architecture at every scale: ``transformers.LlavaForConditionalGeneration`` (CLIP-style
vision tower -> 2-layer GELU projector -> causal LM) and its ``LlavaProcessor``.

``build_model(cfg)`` makes a fresh model for ``tiny`` and ``smol`` (SmolLM2 weights in the LM,
a vision tower to be trained here), or loads the user's LLaVA-1.5 weights for the paper's scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import (
    AutoProcessor, CLIPImageProcessorPil, CLIPVisionConfig, LlamaForCausalLM, LlavaConfig,
    LlavaForConditionalGeneration, LlavaProcessor,
)

from bpo.models.config import ModelConfig
from bpo.models.chat import CHAT_TEMPLATE, IMAGE_TOKEN, prompt_text
from bpo.models.lm import load_smollm2, tiny_lm_config, train_world_tokenizer

# CLIP's normalisation constants: our towers are trained from scratch, but keeping CLIP's input
# convention means a real CLIP/LLaVA tower and ours see identically prepared pixels.
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def make_processor(tokenizer, cfg: ModelConfig) -> LlavaProcessor:
    size = cfg.image_size
    image_processor = CLIPImageProcessorPil(size={"shortest_edge": size}, crop_size={"height": size, "width": size},
                                         image_mean=CLIP_MEAN, image_std=CLIP_STD)
    # num_additional_image_tokens=1: the tower emits a CLS token that "default" selection drops.
    processor = LlavaProcessor(image_processor=image_processor, tokenizer=tokenizer, patch_size=cfg.patch_size,
                               vision_feature_select_strategy="default", num_additional_image_tokens=1,
                               chat_template=CHAT_TEMPLATE, image_token=IMAGE_TOKEN)
    processor.tokenizer.padding_side = "left"  # batched generation continues every row at its end
    return processor


def _assemble(lm, tokenizer, cfg: ModelConfig) -> LlavaForConditionalGeneration:
    vision = CLIPVisionConfig(hidden_size=cfg.vision_hidden, intermediate_size=4 * cfg.vision_hidden,
                              num_hidden_layers=cfg.vision_layers, num_attention_heads=cfg.vision_heads,
                              image_size=cfg.image_size, patch_size=cfg.patch_size, projection_dim=cfg.vision_hidden)
    config = LlavaConfig(vision_config=vision, text_config=lm.config,
                         image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_TOKEN),
                         image_seq_length=cfg.n_image_tokens, vision_feature_layer=-2,
                         vision_feature_select_strategy="default", projector_hidden_act="gelu",
                         tie_word_embeddings=lm.config.tie_word_embeddings)
    model = LlavaForConditionalGeneration(config)
    model.model.language_model.load_state_dict(lm.model.state_dict())
    if not config.tie_word_embeddings:
        model.lm_head.load_state_dict(lm.lm_head.state_dict())
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    return model


def build_model(cfg: ModelConfig, tokenizer_texts=None, progress: bool = True):
    """(model, processor) for a preset. ``tiny`` trains its tokenizer on ``tokenizer_texts``."""
    torch.manual_seed(0)  # fresh weights (vision tower, projector, tiny LM) are the same every time
    if cfg.preset == "tiny":
        if tokenizer_texts is None:
            raise ValueError("the tiny preset trains its tokenizer: pass tokenizer_texts (world text)")
        tokenizer = train_world_tokenizer(tokenizer_texts, cfg.tokenizer_vocab)
        lm = LlamaForCausalLM(tiny_lm_config(tokenizer, cfg.lm_hidden, cfg.lm_layers, cfg.lm_heads, cfg.lm_intermediate))
    elif cfg.preset == "smol":
        lm, tokenizer = load_smollm2(progress)
        # Its first load builds a model from the GGUF, drawing random numbers; a cached load draws
        # none. Seed again, so the new tower and projector do not depend on the LM cache (they did:
        # a fresh clone trained another base than a machine with the LM cached).
        torch.manual_seed(0)
    else:
        return load_pretrained(cfg.checkpoint)
    model = _assemble(lm, tokenizer, cfg)
    processor = make_processor(tokenizer, cfg)
    check_processor(model, processor)
    return model, processor


def load_pretrained(path_or_id: str | Path):
    """(model, processor) saved with ``save_pretrained``: ours, or LLaVA-1.5 weights (a local
    directory or a Hub id; offline, a Hub id must already be in the local cache)."""
    path = Path(path_or_id).expanduser()
    # A Hub id is "name" or "owner/name"; a deeper path can only be a local directory.
    looks_local = (path.is_absolute() or str(path_or_id).startswith((".", "~")) or path.exists()
                   or len(path.parts) > 2)
    if looks_local:
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"no model at {path}: expected a directory with config.json written by "
                                    "save_pretrained (download LLaVA-1.5, e.g. llava-hf/llava-1.5-7b-hf, there first)")
        path_or_id = str(path)  # from_pretrained does not expand "~"
    model = LlavaForConditionalGeneration.from_pretrained(path_or_id)
    processor = AutoProcessor.from_pretrained(path_or_id)
    processor.tokenizer.padding_side = "left"
    if processor.tokenizer.pad_token is None:
        processor.tokenizer.pad_token = processor.tokenizer.unk_token or processor.tokenizer.eos_token
    check_processor(model, processor)
    return model, processor


def n_image_features(model) -> int:
    """How many feature vectors the model produces for one image (what the prompt must match)."""
    cfg = model.config.vision_config
    pixels = torch.zeros(1, 3, cfg.image_size, cfg.image_size, dtype=model.dtype)
    with torch.no_grad():
        feats = model.model.get_image_features(pixel_values=pixels)
    feats = feats.pooler_output if hasattr(feats, "pooler_output") else feats
    return sum(f.shape[0] for f in feats) if isinstance(feats, (list, tuple)) else feats.shape[-2]


def check_processor(model, processor) -> None:
    """Fail early, with a fix, if the processor's image-token count or id disagrees with the model."""
    image_id = processor.tokenizer.convert_tokens_to_ids(processor.image_token)
    if image_id != model.config.image_token_index:
        raise ValueError(f"processor's {processor.image_token!r} token id {image_id} != model's image_token_index "
                         f"{model.config.image_token_index}: save and load model and processor together")
    size = model.config.vision_config.image_size
    image = Image.fromarray(np.zeros((size, size, 3), dtype=np.uint8))
    ids = processor(text=prompt_text(processor, "?"), images=image, return_tensors="pt").input_ids
    n_tokens, n_feats = int((ids == image_id).sum()), n_image_features(model)
    if n_tokens != n_feats:
        raise ValueError(f"processor writes {n_tokens} image tokens but the model makes {n_feats} image features: "
                         "set patch_size, vision_feature_select_strategy and num_additional_image_tokens of the "
                         "processor to match the model's vision config")
