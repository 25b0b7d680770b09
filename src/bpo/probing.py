"""Bias probing (the paper's Figure 5): as noise weakens the image, does the LM's prior take over?

For an image, the model reads a description prompt and the start of an answer ("This picture shows
a street. There is a brown"), and we score how likely each candidate noun is (" bear", the object
that is there, against " car", " person": what the place's prior expects). Each image
is projected once per noise level and shared by all its candidates, so they are compared on the
same weakened image.
"""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from bpo.evaluation.uncertainty import mean_interval
from bpo.models.chat import IMAGE_TOKEN, prompt_text
from bpo.models.forward import pixel_values, vision_features
from bpo.models.generate import generate
from bpo.models.scoring import score_continuations
from bpo.noise import PLACES, add_noise, weakened
from bpo.world import vocab
from bpo.world.language import article, place_phrase
from bpo.world.scene import Scene

PROBE_QUESTION = "Describe this image in detail."


def answer_prefix(scene: Scene) -> str:
    """The answer so far, up to the noun: our descriptions name the colour first ("There is a red
    bear"), so every candidate noun is scored after the true object's colour."""
    return f"This picture shows {place_phrase(scene.place)}. There is {article(scene.objects[0].colour)}"


def candidates(scene: Scene, n_prior: int = 3, n_control: int = 3) -> list[tuple[str, str]]:
    """(object, kind): the scene's first object ("true"), the place's most expected objects that
    are not in the scene ("prior"), and absent objects the prior never puts there ("control", drawn
    per scene like an atypical scene's own objects). True minus control is what the image adds:
    both are equally unexpected at the place, only one is in the image."""
    prior = [o for o in vocab.typical_objects(scene.place) if o not in scene.object_names][:n_prior]
    pool = [o for o in vocab.atypical_objects(scene.place) if o not in scene.object_names]
    rng = np.random.default_rng(zlib.crc32(scene.scene_id.encode()))
    control = [pool[i] for i in sorted(rng.choice(len(pool), size=min(n_control, len(pool)), replace=False))]
    return [(scene.objects[0].name, "true")] + [(o, "prior") for o in prior] + [(o, "control") for o in control]


@torch.no_grad()
def continuation_logprobs(model, processor, image, prompt: str, continuations: list[str], noise_place: str | None = None,
                          steps=(0,), seed: int = 0) -> np.ndarray:
    """[len(steps), len(continuations)]: summed log-probability of each continuation after
    ``prompt`` (which holds the image placeholder), the image weakened at ``noise_place`` and each
    step (``noise_place=None``: clean, one row). The steps share one batched LM pass."""
    pixels = pixel_values(processor, [image]).to(model.device, model.dtype)
    projected = []
    for step in ([0] if noise_place is None else steps):
        with weakened(model, noise_place, step, seed):
            projected.append(model.model.multi_modal_projector(vision_features(model, pixels)))
    projected = torch.cat(projected)
    return score_continuations(model, processor.tokenizer, prompt.replace(IMAGE_TOKEN, IMAGE_TOKEN * projected.shape[1]),
                               continuations, projected)


def probe(model, processor, scenes: list[Scene], images, steps: list[int], places=PLACES,
          seed: int = 0, progress: bool = True) -> pd.DataFrame:
    """Long frame: place, image, step, object, kind (true | prior), logprob, for every noise place,
    scene and step. Image ``i`` gets the same noise seed at every place and step."""
    out = []
    bar = tqdm(total=len(places) * len(scenes), desc="probing", disable=not progress, leave=False)
    for place in places:
        for i, (scene, image) in enumerate(zip(scenes, images)):
            cands = candidates(scene)
            prompt = prompt_text(processor, PROBE_QUESTION) + answer_prefix(scene)
            texts = [" " + name for name, _ in cands]
            values = continuation_logprobs(model, processor, image, prompt, texts, place, steps, seed + i)
            out += [{"place": place, "image": i, "step": step, "object": name, "kind": kind, "logprob": float(v)}
                    for step, row in zip(steps, values) for (name, kind), v in zip(cands, row)]
            bar.update()
    bar.close()
    return pd.DataFrame(out)


def per_image(frame: pd.DataFrame) -> pd.DataFrame:
    """Per place, image and step: the true noun, the best of the prior's nouns and the mean of the
    controls (columns true, prior, control)."""
    g = frame.groupby(["place", "image", "step", "kind"]).logprob
    return pd.concat([g.max().unstack("kind")[["true", "prior"]], g.mean().unstack("kind")[["control"]]], axis=1)


def takeover(frame: pd.DataFrame, n_boot: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Per place and step, means over images: log-likelihood of the true noun, of the prior's best
    noun and of the control nouns; ``evidence`` = true minus mean control (what the image adds for
    the object that is there); the share (%) of images where the prior's best noun beats the true
    one; ``prior_rise_%``, that share minus the same images' share at the place's first step (paired
    per image: a takeover is a rise over the clean image, not a majority the clean image already
    had). ``evidence``, ``prior_wins_%`` and ``prior_rise_%`` carry ``_lo``/``_hi``: 95 % bootstrap
    intervals over images."""
    best = per_image(frame).sort_index()
    best = best.assign(evidence=best.true - best.control, prior_wins=100.0 * (best.prior > best.true))
    first = best.prior_wins.groupby(level=["place", "image"]).transform("first")  # each image's first step
    best = best.assign(prior_rise=best.prior_wins - first)
    rows = {}
    for key, g in best.groupby(["place", "step"], sort=False):
        row = {"true": g.true.mean(), "prior_best": g.prior.mean(), "control": g.control.mean()}
        for col, name in (("evidence", "evidence"), ("prior_wins", "prior_wins_%"), ("prior_rise", "prior_rise_%")):
            row[name], row[f"{name}_lo"], row[f"{name}_hi"] = mean_interval(g[col], n_boot, seed)
        rows[key] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["place", "step"])
    return table.sort_index()


def noisy_view(processor, image, step: int, seed: int = 0):
    """What the vision tower sees with pixel noise at ``step``, mapped back to a viewable image."""
    from PIL import Image

    pixels = pixel_values(processor, [image])
    noisy = add_noise(pixels, step, torch.Generator().manual_seed(seed))[0]
    ip = processor.image_processor
    mean, std = (torch.tensor(v).view(3, 1, 1) for v in (ip.image_mean, ip.image_std))
    rgb = ((noisy * std + mean).clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
    return Image.fromarray(rgb)


def responses_by_step(model, processor, image, question: str, steps: list[int], place: str = "pixels",
                      seed: int = 0, max_new_tokens: int = 96) -> list[str]:
    """The model's greedy answer to one image weakened at each step (Figure 4)."""
    out = []
    for step in steps:
        with weakened(model, place, step, seed):
            out += generate(model, processor, [image], [question], max_new_tokens=max_new_tokens, progress=False)
    return out


def _ci(row: pd.Series, name: str, digits: int) -> str:
    """'[lo, hi]' of a takeover row's interval, or '' for a table without intervals."""
    if f"{name}_lo" not in row:
        return ""
    return f"[{row[f'{name}_lo']:.{digits}f}, {row[f'{name}_hi']:.{digits}f}]"


def read_probing(table: pd.DataFrame) -> str:
    """In words, per noise place: how often the prior's best noun beats the true one on clean
    images and at the strongest noise, from which step it wins on most images, and how much the
    image's evidence for the true object (true minus control) falls."""
    lines = []
    for place, t in table.groupby(level="place", sort=False):
        t = t.droplevel("place")
        clean, last = t.iloc[0], t.iloc[-1]
        over = t.index[t["prior_wins_%"] > 50]
        when = ("already on clean images" if len(over) and over[0] == t.index[0] else
                f"from step {over[0]}" if len(over) else "at no step")
        lines.append(f"- **{place}**: the prior's best noun beats the true one on {clean['prior_wins_%']:.0f} % of "
                     f"images at step {t.index[0]} {_ci(clean, 'prior_wins_%', 0)} and {last['prior_wins_%']:.0f} % "
                     f"{_ci(last, 'prior_wins_%', 0)} at step {t.index[-1]} (on most "
                     f"images {when}); on the same images that is a rise of {last['prior_rise_%']:+.0f} points "
                     f"{_ci(last, 'prior_rise_%', 0)}. Log-likelihood of the true noun {clean.true:.2f} -> {last.true:.2f}, of the "
                     f"prior's best {clean.prior_best:.2f} -> {last.prior_best:.2f}; the image's evidence for the "
                     f"true object (true minus control) {clean.evidence:+.2f} {_ci(clean, 'evidence', 2)} -> "
                     f"{last.evidence:+.2f} {_ci(last, 'evidence', 2)} nats.")
    first = table.xs(table.index.get_level_values("step")[0], level="step")
    loss = (first.evidence - table.groupby(level="place").evidence.last()).sort_values()
    if (first["prior_wins_%"] > 50).all():
        verdict = ("**Not as in the paper's Figure 5**: the prior's noun already wins on clean images, so noise has no "
                   "takeover left to cause.")
    elif (table["prior_wins_%"] > 50).any():
        verdict = "**As in the paper's Figure 5**: the prior's noun overtakes the true one as the noise grows."
    else:
        verdict = "**Not as in the paper's Figure 5**: the prior's noun never overtakes the true one."
    lines.append(f"\n{verdict} The image's evidence for the true object falls most with noise on the "
                 f"**{loss.index[-1]}** ({loss.iloc[-1]:+.2f} nats from the first to the last step).")
    return "\n".join(lines)
