"""One function per figure. Plots take numbers (data frames, images), never models, and save
themselves to ``figures/`` as PNG and PDF."""

from __future__ import annotations

import math

import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from bpo.paths import figures_dir


def _save(fig, name: str):
    fig.savefig(figures_dir() / f"{name}.png", dpi=150, bbox_inches="tight")
    # no creation date: the same figure gives the same PDF bytes, so the manifest's hashes repeat
    fig.savefig(figures_dir() / f"{name}.pdf", bbox_inches="tight", metadata={"CreationDate": None})
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


PLACE_COLOURS = {"pixels": "#1f77b4", "features": "#2ca02c", "projector": "#d62728"}


def probe_curves(probe: pd.DataFrame, summary: pd.DataFrame, example: int = 0, name: str = "probing"):
    """Figure 5 analogue: log-likelihood of the true object's noun and of the prior's nouns as the
    noise step grows, mean with a 95 % band over images per noise place; last panel, one image.
    ``probe`` is the long frame of ``bpo.probing.probe``, ``summary`` its ``per_image`` summary."""
    places = list(dict.fromkeys(probe.place))
    fig, axes = plt.subplots(1, len(places) + 1, figsize=(4.2 * (len(places) + 1), 3.6), sharey=True)
    per_image = summary.stack().rename("logprob").reset_index()
    names = {"true": "true object", "prior": "prior's best absent object", "control": "unrelated absent objects"}
    palette = {"true": "#1f77b4", "prior": "#d62728", "control": "#7f7f7f"}
    for ax, place in zip(axes, places):
        sns.lineplot(per_image[per_image.place == place], x="step", y="logprob", hue="kind",
                     hue_order=list(names), palette=palette, errorbar=("ci", 95), marker="o", ax=ax)
        ax.set_title(f"noise on {place} (mean, 95 % CI, {per_image.image.nunique()} images)", fontsize=9)
        ax.set_xlabel("noise step")
        handles, _ = ax.get_legend_handles_labels()
        ax.legend(handles, list(names.values()), fontsize=8)
    ax = axes[-1]
    one = probe[(probe.place == places[0]) & (probe.image == example)]
    styles = {"true": ("-", 2.5, "in the image"), "prior": ("--", 1.2, "prior"), "control": (":", 1.2, "control")}
    for obj, rows in one.groupby("object", sort=False):
        ls, lw, what = styles[rows.kind.iloc[0]]
        ax.plot(rows.step, rows.logprob, marker="o", ls=ls, lw=lw, label=f"{obj} ({what})",
                color="black" if what == "in the image" else None)
    ax.set_title(f"one atypical image, noise on {places[0]}", fontsize=9)
    ax.set_xlabel("noise step")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    axes[0].set_ylabel("log-likelihood of the noun")
    fig.tight_layout()
    return _save(fig, name)


def noisy_responses(images: list, steps: list[int], responses: list[str], hallucinated: list[list[str]],
                    name: str = "noisy_responses", width: int = 34):
    """Figure 4 analogue: one image at growing noise, the model's answer under each; the objects it
    names that are not in the image in red."""
    import textwrap

    fig, axes = plt.subplots(1, len(images), figsize=(2.9 * len(images), 6.2))
    for ax, image, step, text, hall in zip(axes, images, steps, responses, hallucinated):
        ax.imshow(image, interpolation="nearest")
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(f"step {step}", fontsize=10)
        ax.annotate("not in the image: " + (", ".join(hall) or "none"), (0, -0.03), xycoords="axes fraction",
                    va="top", fontsize=7.5, color="#d62728" if hall else "#2ca02c", annotation_clip=False)
        ax.annotate(textwrap.fill(text, width), (0, -0.11), xycoords="axes fraction", va="top", fontsize=7,
                    family="monospace")
    fig.subplots_adjust(wspace=0.08, bottom=0.45)
    return _save(fig, name)


def noise_effects(sweep: pd.DataFrame, name: str = "noise_effects",
                  metrics=("chair_i", "object_recall", "place_named", "pope_adv_accuracy")):
    """CHAIR_i, recall, place named and POPE-adversarial accuracy vs noise step, a line per noise
    place (shaded: its 95 % interval, where the sweep has one), a row per scene split."""
    labels = {"chair_i": "CHAIR_i (%) ↓", "chair_s": "CHAIR_s (%) ↓", "object_recall": "object recall (%) ↑",
              "place_named": "names the right place (%)", "pope_adv_accuracy": "POPE adversarial acc. (%) ↑",
              "pope_adv_yes_ratio": "POPE yes-ratio (%)"}
    splits = list(dict.fromkeys(sweep.split))
    fig, axes = plt.subplots(len(splits), len(metrics), figsize=(3.6 * len(metrics), 3.0 * len(splits)),
                             squeeze=False, sharex=True)
    for r, split in enumerate(splits):
        for c, metric in enumerate(metrics):
            ax = axes[r, c]
            d = sweep[(sweep.split == split) & (sweep.metric == metric)]
            for place, g in d.groupby("place", sort=False):
                ax.plot(g.step, g.value, marker="o", color=PLACE_COLOURS.get(place), label=place)
                if "lo" in g and g.lo.notna().any():  # the 95 % interval over items
                    ax.fill_between(g.step, g.lo, g.hi, color=PLACE_COLOURS.get(place), alpha=0.12, lw=0)
            ax.set_title(f"{split}: {labels.get(metric, metric)}", fontsize=9)
            if metric == "pope_adv_accuracy":
                ax.axhline(50, color="grey", lw=0.8, ls=":")
    for ax in axes[-1]:
        ax.set_xlabel("noise step")
    axes[0, 0].legend(title="noise on", fontsize=8)
    fig.tight_layout()
    return _save(fig, name)


def negative_statistics(checked: pd.DataFrame, name: str = "preference_negatives"):
    """Per negative type: response lengths (ground truth for reference), the share that states a
    fact the world contradicts, and hallucinated objects per negative, by source."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 3.8))
    lengths = pd.concat([checked.drop_duplicates("candidate_id").assign(negative_type="ground truth",
                                                                        words=lambda f: f.chosen.str.split().str.len()),
                         checked])
    order = ["ground truth"] + list(dict.fromkeys(checked.negative_type))
    sns.boxplot(lengths, x="words", y="negative_type", hue="source", order=order, ax=axes[0], fliersize=1.5)
    axes[0].set_title("response length (words)", fontsize=10)
    axes[0].set_ylabel(None)
    rates = checked.groupby(["negative_type", "source"], sort=False).differs.mean().mul(100).rename("%").reset_index()
    sns.barplot(rates, x="%", y="negative_type", hue="source", ax=axes[1], order=order[1:])
    axes[1].set_title("states a fact the world contradicts (%)", fontsize=10)
    axes[1].set_ylabel(None)
    axes[1].set_xlim(0, 100)
    sns.barplot(checked, x="hallucinated_objects", y="negative_type", hue="source", ax=axes[2], order=order[1:],
                errorbar=("ci", 95))
    axes[2].set_title("objects not in the image, per negative (mean, 95 % CI)", fontsize=10)
    axes[2].set_ylabel(None)
    axes[2].set_xlabel("objects")
    handles, labels = axes[0].get_legend_handles_labels()
    for ax in axes:
        ax.get_legend().remove()
    fig.legend(handles, labels, title="source", loc="lower center", ncol=len(labels), bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout()
    return _save(fig, name)


_CURVE_COLOURS = {"BPO positives": "C2", "BPO negatives": "C3", "SFT ground truth": "C0"}


def logprob_curves(curves: pd.DataFrame, name: str = "figure6_logprobs"):
    """Figure 6: summed log-probs of BPO's positives and negatives and of SFT's ground truths per
    interval of steps (mean and std band), raw and as the change from the base on the same pairs."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6))
    titles = {"logps": "summed log-prob of the batch's responses", "delta": "change from the base model (same pairs)"}
    for ax, kind in zip(axes, ("logps", "delta")):
        for curve, part in curves[curves.kind == kind].groupby("curve", sort=False):
            colour = _CURVE_COLOURS.get(curve)
            ax.plot(part.step, part["mean"], marker="o", ms=3, lw=1.8, color=colour, label=curve)
            ax.fill_between(part.step, part["mean"] - part["std"], part["mean"] + part["std"], color=colour, alpha=0.15)
        if kind == "delta":
            ax.axhline(0, color="0.5", lw=0.8, ls="--")
        ax.set_title(titles[kind], fontsize=10)
        ax.set_xlabel("training step")
    axes[0].set_ylabel("log-prob (nats)")
    axes[1].legend(fontsize=8)
    fig.suptitle("Log-probs during training: mean ± std per interval of steps, over seeds", fontsize=10)
    fig.tight_layout()
    return _save(fig, name)


def reward_curves(frame: pd.DataFrame, name: str = "bpo_rewards"):
    """BPO's implicit rewards per step (thin: each seed; thick: mean over seeds, smoothed)."""
    metrics = ["rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies"]
    part = frame[frame.method == "bpo"]
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3))
    for ax, metric in zip(axes, metrics):
        for _, seed_part in part.groupby("seed"):
            ax.plot(seed_part.step, seed_part[metric], color="0.75", lw=0.8)
        mean = part.groupby("step")[metric].mean()
        ax.plot(mean.index, mean.rolling(max(1, len(mean) // 12), min_periods=1).mean(), color="C3", lw=2)
        ax.axhline(0.5 if metric.endswith("accuracies") else 0, color="0.5", lw=0.8, ls="--")
        ax.set_title(metric, fontsize=10)
        ax.set_xlabel("step")
    fig.tight_layout()
    return _save(fig, name)


_MODEL_COLOURS = {"base": "0.45", "SFT": "C0", "BPO": "C3", "base + VCD": "C2"}


def visual_reliance(summary: pd.DataFrame, name: str = "visual_reliance"):
    """Share of the answer tokens' attention on image tokens per LM layer, one line per model,
    with its 95 % interval over items as a band."""
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    for model, part in summary.groupby("model", sort=False):
        colour = _MODEL_COLOURS.get(model)
        label = f"{model} (answers of {part.answer_tokens.iloc[0]:.0f} tokens)"
        sns.lineplot(x=part.layer, y=100 * part.share, marker="o", ax=ax, color=colour, label=label)
        ax.fill_between(part.layer, 100 * part.lo, 100 * part.hi, color=colour, alpha=0.15)
    ax.set_xlabel("LM layer")
    ax.set_ylabel("attention on image tokens (%)")
    ax.set_title("Visual reliance: where the answer tokens look", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, name)


def same_question(image, question: str, answers: dict[str, str], hallucinated: dict[str, list[str]],
                  name: str = "figure2", width: int = 46):
    """Figure 2 analogue: one image and question, each model's answer under it, the objects it
    names that are not in the image in red."""
    import textwrap

    fig, axes = plt.subplots(1, 1 + len(answers), figsize=(3.2 + 3.6 * len(answers), 4.2),
                             gridspec_kw={"width_ratios": [1] + [1.2] * len(answers)})
    axes[0].imshow(image, interpolation="nearest")
    axes[0].set_title(textwrap.fill(question, 40), fontsize=8)
    for ax in axes:
        ax.axis("off")
    for ax, (model, text) in zip(axes[1:], answers.items()):
        hall = hallucinated[model]
        ax.set_title(model, fontsize=10, color=_MODEL_COLOURS.get(model, "k"), loc="left")
        ax.text(0, 1, textwrap.fill(text, width), va="top", fontsize=7.5, family="monospace", transform=ax.transAxes)
        ax.text(0, 0.02, "not in the image: " + (", ".join(hall) or "none"), fontsize=8,
                color="#d62728" if hall else "#2ca02c", transform=ax.transAxes)
    fig.tight_layout()
    return _save(fig, name)


def dataset_scaling(frame: pd.DataFrame, name: str = "figure7_scaling"):
    """Figure 7: gain over the base against preference pairs, one panel per (preset, metric); seeds
    as points, the mean over seeds as a line with its 95 % interval. Method "bpo rounds" (multi-round
    BPO) is drawn at the pairs of all its rounds together, dashed."""
    presets = list(dict.fromkeys(frame.preset)) if "preset" in frame else [None]
    metrics = list(dict.fromkeys(frame.metric))
    fig, axes = plt.subplots(len(presets), len(metrics), figsize=(4.6 * len(metrics), 3.3 * len(presets)),
                             squeeze=False)
    colours = {"bpo": _MODEL_COLOURS["BPO"], "sft": _MODEL_COLOURS["SFT"], "bpo rounds": "#7b3294"}
    labels = {"bpo": "BPO", "sft": "SFT", "bpo rounds": "BPO, rounds 1, 2, ..."}
    for row, preset in zip(axes, presets):
        part = frame if preset is None else frame[frame.preset == preset]
        for ax, metric in zip(row, metrics):
            here = part[part.metric == metric]
            for method, m in here.groupby("method"):
                colour = colours.get(method)
                points = m[m.seed != "mean"]
                sns.scatterplot(x=points.pairs, y=points.gain, ax=ax, color=colour, alpha=0.5, s=18, legend=False)
                mean = m[m.seed == "mean"].sort_values("pairs")
                ax.errorbar(mean.pairs, mean.gain, yerr=[mean.gain - mean.lo, mean.hi - mean.gain], color=colour,
                            marker="o", lw=2, capsize=3, ls="--" if method == "bpo rounds" else "-",
                            label=labels.get(method, method))
            ax.axhline(0, color="0.5", lw=0.8, ls="--")
            ax.set_title(f"{preset}: {metric}" if preset else metric, fontsize=10)
            ax.set_xlabel("preference pairs (all rounds together)" if "bpo rounds" in set(here.method)
                          else "preference pairs")
            ax.set_ylabel("gain over the base (positive = better)")
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, name)
