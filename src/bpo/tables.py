"""Save a results table three ways next to the figures: Markdown (to read), CSV (to reuse) and
LaTeX (to paste into a paper)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from bpo.paths import figures_dir


def to_markdown(df: pd.DataFrame, floatfmt: str = ".1f") -> str:
    """A GitHub Markdown table (pandas' own needs the extra ``tabulate`` package)."""
    def cell(v):
        # a bare "|" inside a cell would start a new column
        return format(v, floatfmt) if isinstance(v, float) else str(v).replace("|", "\\|")
    header = [str(c) for c in df.columns]
    rows = [[cell(v) for v in row] for row in df.itertuples(index=False)]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"


def save_table(df: pd.DataFrame, name: str, floatfmt: str = ".1f") -> Path:
    """Write ``figures/<name>.{md,csv,tex}``; returns the Markdown path."""
    out = figures_dir() / name
    df.to_csv(out.with_suffix(".csv"), index=False)
    out.with_suffix(".tex").write_text(df.to_latex(index=False, float_format=lambda x: format(x, floatfmt)))
    out.with_suffix(".md").write_text(to_markdown(df, floatfmt))
    return out.with_suffix(".md")
