"""A faster LM head for generation: the prompt pass hands the head a contiguous hidden state.

transformers computes a prompt's next-token logits as ``lm_head(hidden[:, -1:, :])``
(``logits_to_keep=1``). That slice is not contiguous, so torch's matmul cannot fold
[batch, 1, width] into one matrix product: it expands the head's weight to one copy per row and
multiplies row by row. For ``smol`` at batch 32 that copies 32 x 49,153 x 576 numbers (1.8 GB) on
every prompt pass, 1.5 s of a 5 s POPE batch on this CPU. A contiguous input gives the same
product in one matmul (``benchmarks/decode_speed.py`` measures both).

The numbers do not change (tests/test_generate.py checks the logits and the answers), so this is
applied where models are loaded (``bpo.pipeline.load_base``) and is not part of any cache key.
"""

from __future__ import annotations

import torch

_MARK = "_bpo_contiguous_head"


def _contiguous_input(module, args):
    return (args[0].contiguous(), *args[1:])


def contiguous_head(model) -> torch.nn.Module:
    """Make ``model``'s output embedding read a contiguous input (once; copies of the model keep
    it); returns the model."""
    head = model.get_output_embeddings()
    if head is None:
        raise ValueError(f"{type(model).__name__} has no output embeddings to speed up")
    if not getattr(head, _MARK, False):
        head.register_forward_pre_hook(_contiguous_input)
        setattr(head, _MARK, True)
    return model
