"""Visual reliance: the share of attention that a model's answer tokens pay to the image tokens,
per LM layer. Does BPO make the model look more?

Each (image, question, answer) is run once, teacher-forced on the answer the model itself gave,
with eager attention so the weights come back. For every layer, an answer token's attention row
(which sums to 1 over the positions before it) is summed over the image-token columns; that share
is averaged over heads and over the answer's tokens (its end-of-turn token included), giving one
number per item and layer. Causal attention spreads over everything before a token, so a longer
answer dilutes the image's share; the mean answer length is reported beside the shares.
"""

from __future__ import annotations

import copy

import pandas as pd
import torch
from tqdm.auto import tqdm

from bpo.evaluation.uncertainty import mean_interval
from bpo.models.chat import IGNORE_INDEX, encode_example
from bpo.models.forward import input_embeddings, pixel_values, vision_features
from bpo.training.data import collate


@torch.no_grad()
def image_attention(model, processor, images, questions: list[str], answers: list[str], batch_size: int = 8,
                    progress: bool = True) -> pd.DataFrame:
    """Long frame (item, layer, share, answer_tokens): per item and LM layer, the mean share of
    the answer tokens' attention that lands on image tokens."""
    if not (len(images) == len(questions) == len(answers)):
        raise ValueError(f"image_attention: {len(images)} images, {len(questions)} questions and {len(answers)} "
                         "answers; they must pair up")
    model = copy.deepcopy(model).eval()
    model.set_attn_implementation("eager")  # the fused kernels do not return attention weights
    # one image's features on the model's device (llava.n_image_features builds its probe on the CPU)
    n_img = vision_features(model, pixel_values(processor, images[:1]).to(model.device)).shape[1]
    image_id = model.config.image_token_index
    pad = processor.tokenizer.pad_token_id
    examples = [encode_example(processor, [{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                               n_img) for q, a in zip(questions, answers)]
    rows = []
    for start in tqdm(range(0, len(examples), batch_size), desc="attention", disable=not progress, leave=False):
        idx = list(range(start, min(start + batch_size, len(examples))))
        ids, mask, labels = (t.to(model.device) for t in collate([examples[i] for i in idx], pad))
        feats = vision_features(model, pixel_values(processor, [images[i] for i in idx]).to(model.device))
        embeds = input_embeddings(model, ids, feats)
        out = model.model.language_model(inputs_embeds=embeds, attention_mask=mask, output_attentions=True)
        on_image = (ids == image_id).to(out.attentions[0].dtype)  # [B, T]
        answer = labels != IGNORE_INDEX  # [B, T]: the answer's tokens (padding and prompt are not)
        for layer, att in enumerate(out.attentions):  # [B, heads, T, T]
            share = (att.float() * on_image[:, None, None, :]).sum(-1).mean(1)  # [B, T]
            for b, i in enumerate(idx):
                rows.append({"item": i, "layer": layer, "share": float(share[b][answer[b]].mean()),
                             "answer_tokens": int(answer[b].sum())})
    return pd.DataFrame(rows)


def attention_summary(frames: dict[str, pd.DataFrame], n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per model (the keys of ``frames``) and layer: the mean share over items with its 95 %
    bootstrap interval, and the mean answer length."""
    rows = []
    for name, frame in frames.items():
        for layer, group in frame.groupby("layer"):
            mean, lo, hi = mean_interval(group.share.to_numpy(), n_boot, seed)
            rows.append({"model": name, "layer": int(layer), "share": mean, "lo": lo, "hi": hi,
                         "answer_tokens": group.answer_tokens.mean()})
    return pd.DataFrame(rows)
