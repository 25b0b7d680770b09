"""Yes and no: what the preference pairs teach about answering "yes", and whether that is what makes
BPO say "no" on POPE.

BPO's POPE yes-ratio fell from 70 % to 13 % on smol (``05_benchmarks``). DPO moves probability only
where a pair's chosen and rejected responses differ, so a pair whose chosen reads "no" and whose
rejected reads "yes" teaches "no" directly. Responses are read by POPE's own rule
(``bpo.evaluation.pope.pope_answer``: "no" when the first sentence holds "no", "No" or "not"), the
rule the benchmark reads the models' answers by.

- ``pair_readings``: each pair's chosen and rejected response read as yes or no;
- ``yes_no_makeup``: per negative type, how many pairs prefer "no" to "yes", "yes" to "no", or read
  the same;
- ``agreeing_pairs``: the pairs without those whose two responses read differently, the training set
  of ``04_training``'s ablation (BPO trained without them: if its yes-ratio still falls, they are
  not the cause);
- ``pope_yes_no_table``: the POPE metrics of several models, each with its interval, and each one's
  paired difference from a reference model.
"""

from __future__ import annotations

import pandas as pd

from bpo.comparison import compare, values_table
from bpo.evaluation.pope import pope_answer

COLUMNS = ("prompt", "chosen", "rejected", "negative_type")
YES_NO_OPENINGS = ("Is there", "Are there", "Is the", "Are the", "Does", "Do", "Can", "Is it")
PREFERS_NO, PREFERS_YES, SAME = "chosen no, rejected yes", "chosen yes, rejected no", "read the same"


def pair_readings(ds) -> pd.DataFrame:
    """One row per pair: its negative type, whether its prompt is a yes/no question, and its chosen
    and rejected responses read as "yes" or "no" by POPE's rule."""
    missing = [c for c in COLUMNS if c not in ds.column_names]
    if missing:
        raise ValueError(f"pair_readings: the pairs lack column(s) {missing}; they have {ds.column_names}")
    rows = []
    for i, (prompt, chosen, rejected, kind) in enumerate(zip(*(ds[c] for c in COLUMNS))):
        for name, text in (("prompt", prompt), ("chosen", chosen), ("rejected", rejected)):
            if not isinstance(text, str):
                raise TypeError(f"pair_readings: row {i}'s {name} is {type(text).__name__}, not str")
        rows.append({"negative_type": kind, "yes_no_question": prompt.lstrip().startswith(YES_NO_OPENINGS),
                     "chosen": pope_answer(chosen)[0], "rejected": pope_answer(rejected)[0]})
    return pd.DataFrame(rows, columns=["negative_type", "yes_no_question", "chosen", "rejected"])


def yes_no_makeup(ds) -> pd.DataFrame:
    """Per negative type, and over all pairs: pairs, yes/no questions among them, and how many
    prefer "no" to "yes", "yes" to "no", or read the same (both "yes" or both "no")."""
    r = pair_readings(ds)
    r["reading"] = SAME
    r.loc[(r.chosen == "no") & (r.rejected == "yes"), "reading"] = PREFERS_NO
    r.loc[(r.chosen == "yes") & (r.rejected == "no"), "reading"] = PREFERS_YES
    rows = []
    for kind, group in [*sorted(r.groupby("negative_type")), ("all", r)]:
        rows.append({"negative type": kind, "pairs": len(group), "yes/no questions": int(group.yes_no_question.sum()),
                     **{k: int((group.reading == k).sum()) for k in (PREFERS_NO, PREFERS_YES, SAME)}})
    return pd.DataFrame(rows)


def agreeing_pairs(ds):
    """``ds`` without the pairs whose chosen and rejected responses read differently as yes/no."""
    r = pair_readings(ds)
    return ds.select([i for i, same in enumerate(r.chosen == r.rejected) if same])


def pope_yes_no_table(items: dict[str, list[dict]], responses: dict[str, dict[str, list[str]]], reference: str,
                      n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """POPE accuracy, F1 and yes-ratio of each model (``responses``: name -> benchmark key ->
    answers, one seed) over typical and atypical items together, with 95 % intervals, and each
    model's paired difference from ``reference`` (the same items) with its interval."""
    if reference not in responses:
        raise ValueError(f"pope_yes_no_table: reference {reference!r} is not one of {sorted(responses)}")
    not_pope = [k for k in items if not k.startswith("pope-")]
    if not_pope:
        raise ValueError(f"pope_yes_no_table: {not_pope} are not POPE benchmarks")
    values = values_table(items, {name: [r] for name, r in responses.items()}, n_boot, seed)
    values = values[values.split == "all"]
    diffs = pd.concat([compare(items, [responses[reference]], [r], n_boot, seed).assign(model=name)
                       for name, r in responses.items()])
    out = values.merge(diffs[["model", "benchmark", "metric", "split", "diff", "diff_lo", "diff_hi"]],
                       on=["model", "benchmark", "metric", "split"])
    return out.drop(columns="split").rename(columns={"diff": f"- {reference}"})
