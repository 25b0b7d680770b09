"""Choosing BPO's and SFT's hyperparameters on the *validation* copy of Object HalBench-world
(other scenes than the benchmarks), by a rule fixed before any run:

- **score**: atypical CHAIR_i (the share of named objects that are not there, on scenes where the
  prior and the image disagree), lower is better;
- **guard 1, recall**: object recall (typical and atypical scenes together) at most
  ``RECALL_DROP`` points below the base model's: a model that names nothing hallucinates nothing;
- **guard 2, fluency**: the share of descriptions the world's parser reads at most ``PARSED_DROP``
  points below the base's, and the frozen base LM's perplexity of them at most
  ``PERPLEXITY_RATIO`` x the base's: DPO's likelihood displacement shows as degenerate text.

Among the settings that pass both guards the lowest score wins; when none passes, the notebook
says so and the preset keeps the paper's values (lr 2e-6, beta 0.1).

``python -m bpo.selection --preset smol`` runs the grid of :data:`bpo.presets.TUNING_GRID` and
writes ``figures/tuning_grid_<preset>.md``; the choice is then written into ``presets.py`` by hand
with the table beside it, so notebooks do not re-run the grid.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import json
from dataclasses import asdict

import pandas as pd

from bpo.evaluation.config import AnswerConfig
from bpo.evaluation.fluency import fluency_summary
from bpo.evaluation.run import answer_suite
from bpo.evaluation.suite import items_of, load_or_build_suite, score_suite
from bpo.presets import TUNING_GRID, suite_config, tuning_config

RECALL_DROP = 5.0
PARSED_DROP = 5.0
PERPLEXITY_RATIO = 1.5


def _validation(preset: str, benchmark: str, seed: int, size_scale: float) -> dict:
    """The validation copy of one benchmark (its typical and atypical scenes)."""
    suite = load_or_build_suite(preset, suite_config(preset, seed, size_scale, role="val"))
    return {k: v for k, v in suite.items() if k.startswith(f"{benchmark}/")}


def validation_halbench(preset: str, seed: int = 0, size_scale: float = 1.0) -> dict:
    """Object HalBench-world's validation copy (typical and atypical scenes)."""
    return _validation(preset, "halbench", seed, size_scale)


def validation_pope(preset: str, seed: int = 0, size_scale: float = 1.0, split: str = "adversarial") -> dict:
    """One POPE-world split's validation copy (typical and atypical scenes)."""
    return _validation(preset, f"pope-{split}", seed, size_scale)


def merged_copy(tuned):
    """A plain LLaVA with the LoRA weights merged in (generation needs no ``peft`` then)."""
    return copy.deepcopy(tuned).merge_and_unload() if hasattr(tuned, "merge_and_unload") else tuned


def validation_row(model, base_model, processor, halbench: dict, progress: bool = False) -> dict:
    """Score and guards of ``model`` on the validation descriptions; perplexity under ``base_model``."""
    answers = answer_suite(merged_copy(model), processor, halbench, AnswerConfig(), progress=progress)
    items = {k: items_of(ds) for k, ds in halbench.items()}
    scores = score_suite(items, answers.answers).set_index(["split", "metric"]).value
    texts = [a for k in halbench for a in answers.answers[k]]
    questions = [it["question"] for k in halbench for it in items[k]]
    fluency = fluency_summary(texts, base_model, processor, questions, autocast=True)
    return {"atypical_chair_i": scores["atypical", "CHAIR_i"], "typical_chair_i": scores["typical", "CHAIR_i"],
            "recall": (scores["typical", "recall"] + scores["atypical", "recall"]) / 2,
            "parsed_%": fluency["parsed_%"], "perplexity": fluency["perplexity"],
            "repeated_ngram_%": fluency["repeated_ngram_%"], "answers": answers.answers}


def choose(table: pd.DataFrame, base: dict) -> pd.DataFrame:
    """``table`` (one row per setting) with each guard's verdict and the chosen row per method."""
    out = table.copy()
    out["recall_ok"] = out.recall >= base["recall"] - RECALL_DROP
    out["fluency_ok"] = (out["parsed_%"] >= base["parsed_%"] - PARSED_DROP) & \
                        (out.perplexity <= PERPLEXITY_RATIO * base["perplexity"])
    out["chosen"] = False
    for _, group in out[out.recall_ok & out.fluency_ok].groupby("method"):
        out.loc[group.atypical_chair_i.idxmin(), "chosen"] = True
    return out


def run_grid(base, pairs, pairs_key: str, negative_types: tuple[str, ...], seed: int = 0, size_scale: float = 1.0,
             val_scale: float = 0.4, grid: dict = TUNING_GRID, progress: bool = True) -> tuple[pd.DataFrame, dict]:
    """Train every setting of ``grid`` (``{method: {field: values}}``) on the pairs and score it on
    the validation descriptions; returns (table, base row). Runs are cached like any other."""
    from bpo.pipeline import tune

    halbench = validation_halbench(base.preset, seed, val_scale * size_scale)
    base_row = validation_row(base.model, base.model, base.processor, halbench)
    rows = []
    for method, fields in grid.items():
        for values in itertools.product(*fields.values()):
            setting = dict(zip(fields, values))
            cfg = dataclasses.replace(tuning_config(base.preset, method, seed), **setting)
            run = tune(base, pairs, pairs_key, negative_types, cfg, progress=progress)
            trained = sum(r["seconds"] for r in run.log)
            saved = run.directory / f"validation_{val_scale * size_scale:g}.json"  # a re-run reads, not re-answers
            if not saved.exists():
                row = validation_row(run.model, base.model, base.processor, halbench)
                saved.write_text(json.dumps({k: v for k, v in row.items() if k != "answers"}))
            rows.append({"method": method, **{k: setting.get(k, getattr(cfg, k)) for k in ("lr", "beta")},
                         "train_s": trained, **json.loads(saved.read_text())})
    return choose(pd.DataFrame(rows), base_row), base_row


def main(argv: list[str] | None = None) -> int:
    from bpo.pipeline import load_base, load_preference_pairs
    from bpo.tables import save_table, to_markdown

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="smol")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    base = load_base(args.preset, seed=args.seed)
    pairs, report, target = load_preference_pairs(base, seed=args.seed)
    table, base_row = run_grid(base, pairs, target.parent.name, tuple(report["training_types"]), args.seed)
    base_line = {"method": "base", **{k: v for k, v in base_row.items() if k != "answers"}}
    full = pd.concat([pd.DataFrame([base_line]), table], ignore_index=True)
    save_table(full, f"tuning_grid_{args.preset}", floatfmt=".3g")
    print(to_markdown(full, ".3g"))
    print(asdict(tuning_config(args.preset, "bpo", args.seed)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
