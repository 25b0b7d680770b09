"""The LLaVA forward pass, split so that each part runs only as often as it must.

- ``vision_features``: the frozen vision tower's selected features, computed once per image and
  cached (training never updates the tower after its own pre-training);
- ``token_logprobs``: projector + LM on cached features, with the output layer evaluated only at
  positions that carry a label: SmolLM2's 49k-word softmax at every prompt and image position would
  cost a fifth of the step for nothing.

Numerically this is ``LlavaForConditionalGeneration.forward`` (a test checks the loss matches).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from bpo.models.chat import IGNORE_INDEX


@torch.no_grad()
def vision_features(model, pixel_values: torch.Tensor) -> torch.Tensor:
    """[B, n_image_tokens, vision_hidden]: the tower's ``vision_feature_layer`` output, CLS dropped
    (the "default" strategy), before the projector."""
    cfg = model.config
    out = model.model.vision_tower(pixel_values.to(model.dtype), output_hidden_states=True)
    feats = out.hidden_states[cfg.vision_feature_layer]
    return feats[:, 1:] if cfg.vision_feature_select_strategy == "default" else feats


def input_embeddings(model, input_ids: torch.Tensor, image_features: torch.Tensor, projected: bool = False) -> torch.Tensor:
    """Token embeddings with each image's projected features written over its image tokens
    (``projected``: ``image_features`` already went through the projector)."""
    embeds = model.get_input_embeddings()(input_ids)
    if image_features is None:  # text only: the LM component alone, as in error injection
        if bool((input_ids == model.config.image_token_index).any()):
            raise ValueError("image tokens in a text-only batch")
        return embeds
    if not projected:
        image_features = model.model.multi_modal_projector(image_features)
    projected = image_features.to(embeds.dtype)
    mask = (input_ids == model.config.image_token_index).unsqueeze(-1)
    if int(mask.sum()) != projected.shape[0] * projected.shape[1]:
        raise ValueError(f"{int(mask.sum())} image tokens in the batch but {projected.shape[0] * projected.shape[1]} "
                         "image features: was an example truncated inside its image?")
    return embeds.masked_scatter(mask, projected)


def token_logprobs(model, input_ids, attention_mask, image_features, labels,
                   projected: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probability of each labelled token: (values [n_labelled], row index of each [n_labelled]).

    Labels follow the Hugging Face convention (same positions as ``input_ids``, ``IGNORE_INDEX``
    where nothing is learned); the shift by one happens here.
    """
    embeds = input_embeddings(model, input_ids, image_features, projected)
    hidden = model.model.language_model(inputs_embeds=embeds, attention_mask=attention_mask).last_hidden_state
    target = labels[:, 1:]
    keep = target != IGNORE_INDEX
    logits = model.lm_head(hidden[:, :-1][keep]).float()  # fp32 log-softmax: bf16 would blur small probabilities
    logp = torch.log_softmax(logits, dim=-1).gather(-1, target[keep].unsqueeze(-1)).squeeze(-1)
    rows = torch.arange(labels.shape[0], device=labels.device).unsqueeze(1).expand_as(target)[keep]
    return logp, rows


def lm_loss(model, input_ids, attention_mask, image_features, labels) -> torch.Tensor:
    """Mean next-token cross-entropy over labelled tokens."""
    logp, _ = token_logprobs(model, input_ids, attention_mask, image_features, labels)
    return -logp.mean()


def sequence_logprobs(model, input_ids, attention_mask, image_features, labels, projected: bool = False) -> torch.Tensor:
    """Summed log-probability of each row's labelled tokens (the response): [B]. DPO's unit."""
    logp, rows = token_logprobs(model, input_ids, attention_mask, image_features, labels, projected)
    return torch.zeros(labels.shape[0], dtype=logp.dtype, device=logp.device).index_add(0, rows, logp)


def text_only_loss(model, input_ids, attention_mask) -> torch.Tensor:
    """Causal-LM loss of the LLaVA's LM on plain text, no image (the tiny LM's pre-training)."""
    hidden = model.model.language_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    keep = attention_mask[:, 1:].bool()
    logits = model.lm_head(hidden[:, :-1][keep]).float()
    return F.cross_entropy(logits, input_ids[:, 1:][keep])


def pixel_values(processor, images) -> torch.Tensor:
    """The processor's normalised pixels of ``images`` [N, 3, H, W]."""
    return processor.image_processor(images, return_tensors="pt")["pixel_values"]
