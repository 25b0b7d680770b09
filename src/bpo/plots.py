"""One function per figure. Plots take numbers (data frames, images), never models, and save
themselves to ``figures/`` as PNG."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bpo.paths import figures_dir


def _save(fig, name: str):
    fig.savefig(figures_dir() / f"{name}.png", dpi=150, bbox_inches="tight")
    return fig


def sample_grid(images: list, annotations: list[str], name: str = "world_samples", columns: int = 4):
    """Images in a grid, each above its ground-truth annotation."""
    rows = math.ceil(len(images) / columns)
    fig, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 4.4 * rows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, image, text in zip(axes.flat, images, annotations):
        ax.imshow(image, interpolation="nearest")
        ax.set_title(text, fontsize=7, loc="left", y=-0.02, va="top", family="monospace")
    fig.subplots_adjust(hspace=0.9, wspace=0.1)
    return _save(fig, name)


def prior_heatmap(prior: pd.DataFrame, name: str = "world_prior"):
    """P(object | place): where the language prior comes from."""
    fig, ax = plt.subplots(figsize=(14, 4.2))
    sns.heatmap(prior, cmap="rocket_r", ax=ax, cbar_kws={"label": "P(object | place)"},
                linewidths=0.3, linecolor="white", mask=prior == 0)
    ax.set_facecolor("#f2f2f2")  # blank cells: the prior never expects that object there (atypical)
    ax.set_xlabel("object (most frequent under the prior first)")
    ax.set_ylabel("place")
    ax.set_title("The world's prior: grey cells are objects the prior never expects at that place")
    return _save(fig, name)


def benchmark_composition(counts: pd.DataFrame, name: str = "world_benchmarks"):
    """Items per benchmark and split (columns: benchmark, split, items)."""
    fig, ax = plt.subplots(figsize=(10, 3.4))
    sns.barplot(counts, x="benchmark", y="items", hue="split", ax=ax)
    for container in ax.containers:
        ax.bar_label(container, fontsize=7)
    ax.set_yscale("log")  # POPE asks ~5 questions per image: a linear axis would flatten the rest
    ax.set_title("Held-out benchmark items per scene split")
    ax.set_xlabel("")
    ax.tick_params(axis="x", labelsize=8)
    return _save(fig, name)


def training_curves(log: pd.DataFrame, name: str = "base_training"):
    """Loss per step of each training stage (columns: stage, step, loss), raw and smoothed."""
    stages = list(dict.fromkeys(log["stage"]))
    fig, axes = plt.subplots(1, len(stages), figsize=(3.6 * len(stages), 3), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        part = log[log.stage == stage]
        ax.plot(part.step, part.loss, color="0.8", lw=0.8, label="per step")
        window = max(1, len(part) // 20)
        ax.plot(part.step, part.loss.rolling(window, min_periods=1).mean(), color="C0", lw=1.8, label=f"mean of {window}")
        ax.set_title(stage, fontsize=10)
        ax.set_xlabel("step")
    axes[0][0].set_ylabel("loss")
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, name)


def typical_vs_atypical(scores: pd.DataFrame, name: str = "base_benchmarks"):
    """Headline metrics per benchmark on the typical and the atypical split (long format:
    benchmark, split, metric, value). Hallucination rates are marked lower-is-better."""
    short = scores.benchmark.str.replace("pope-adversarial", "POPE adv.").str.replace("pope-popular", "POPE pop.") \
        .str.replace("pope-random", "POPE rand.")
    scores = scores.assign(label=short + "\n" + scores.metric.where(
        ~scores.metric.str.startswith("CHAIR"), scores.metric + " ↓"))
    fig, ax = plt.subplots(figsize=(max(6, 0.9 * scores.label.nunique()), 3.4))
    sns.barplot(scores, x="label", y="value", hue="split", ax=ax, hue_order=["typical", "atypical"],
                palette={"typical": "#4C72B0", "atypical": "#DD8452"})
    for container in ax.containers:
        ax.bar_label(container, fmt="%.0f", fontsize=7)
    ax.set_xlabel("")
    ax.set_ylabel("score (0-100)")
    ax.tick_params(axis="x", labelsize=7)
    ax.set_title("Typical scenes vs scenes against the prior")
    return _save(fig, name)
