"""Does a model know the yes/no answer it does not give? The margin log p("Yes") - log p("No") of
the first answer token to each POPE question, read against the question's label.

POPE accuracy mixes two things: whether the model's state at the answer separates present objects
from absent ones, and where its threshold lies. The area under the ROC curve of the margin (AUC)
measures the first alone: 50 when the margin says nothing about the label, 100 when every present
object out-scores every absent one. A model with a high AUC but chance accuracy knows and answers
"yes" anyway (its threshold is off); one with an AUC near 50 does not look. The prior alone can
separate them too (on typical scenes the present objects are the place's likely ones): the same
margins without the image say how much. :func:`notes_margins` asks the same of the LM alone, with
the scene written out as notes in front (``bpo.training.lm_texts``): can it answer from text at all?
"""

from __future__ import annotations

import numpy as np
from tqdm.auto import tqdm

from bpo.evaluation.uncertainty import percentile_interval
from bpo.models.chat import prompt_text
from bpo.models.scoring import score_continuations
from bpo.precision import answering_copy
from bpo.probing import continuation_logprobs
from bpo.training.lm_texts import presence_texts

# Held-out presence texts are drawn at seed + this: other scenes than those the LM trained on.
HELD_OUT_SEED = 10_000


def answer_margins(model, processor, ds, blind: bool = False, progress: bool = True) -> np.ndarray:
    """log p("Yes") - log p("No") as the answer's opening, per row of a POPE data set (its image
    and question), read from the same copy of the model that answers the benchmarks. ``blind``: the
    prompt without its image, so what is left is the language prior's answer to the question."""
    model = answering_copy(model)
    bar = {"desc": "yes/no margins", "disable": not progress, "leave": False}
    if blind:  # POPE asks each question of many images: without the image, score each question once
        questions = [row["question"] for row in ds]
        prior = {q: score_continuations(model, processor.tokenizer, prompt_text(processor, q, with_image=False),
                                        ["Yes", "No"])[0] for q in tqdm(dict.fromkeys(questions), **bar)}
        out = [prior[q] for q in questions]
    else:
        out = [continuation_logprobs(model, processor, row["image"], prompt_text(processor, row["question"]),
                                     ["Yes", "No"])[0] for row in tqdm(ds, **bar)]
    return np.array([yes - no for yes, no in out], dtype=float)


def notes_margins(model, tokenizer, n: int = 200, seed: int = 0) -> tuple[np.ndarray, list[str]]:
    """(margins, labels): log p(" Yes") - log p(" No") after "Answer:" in ``n`` held-out presence
    texts, read by the LM alone, and whether each asks about a present object ("yes") or not."""
    margins, labels = [], []
    for i, text in enumerate(presence_texts(n, seed + HELD_OUT_SEED)):
        context = text[:text.index(" Answer:") + len(" Answer:")]
        yes, no = score_continuations(model, tokenizer, context, [" Yes", " No"])[0]
        margins.append(yes - no)
        labels.append("yes" if i % 2 == 0 else "no")  # presence_texts alternates, present first
    return np.array(margins, dtype=float), labels


def margin_auc(margins, labels) -> float:
    """AUC x 100 of ``margins`` as a score for ``labels`` ("yes" positive): the share of (present,
    absent) pairs in which the present one has the larger margin, ties counting half."""
    margins, labels = np.asarray(margins, dtype=float), list(labels)
    if len(margins) != len(labels):
        raise ValueError(f"margin_auc: {len(margins)} margins but {len(labels)} labels")
    bad = sorted({l for l in labels if l not in ("yes", "no")})
    if bad:
        raise ValueError(f"margin_auc: labels must be 'yes' or 'no', got {bad}")
    yes = margins[[l == "yes" for l in labels]]
    no = margins[[l == "no" for l in labels]]
    if not len(yes) or not len(no):
        return float("nan")  # no pair to compare
    above = (yes[:, None] > no[None, :]).mean()
    ties = (yes[:, None] == no[None, :]).mean()
    return float(100 * (above + ties / 2))


def auc_interval(margins, labels, n_boot: int = 1000, seed: int = 0) -> tuple[float, float, float]:
    """(AUC, lo, hi): the AUC and its 95 % percentile-bootstrap interval over questions."""
    margins, labels = np.asarray(margins, dtype=float), np.asarray(labels)
    draws = np.random.default_rng(seed).integers(0, len(margins), size=(n_boot, len(margins)))
    lo, hi = percentile_interval([margin_auc(margins[i], labels[i]) for i in draws])
    return margin_auc(margins, labels), lo, hi
