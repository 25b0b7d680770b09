"""Benchmark items on held-out SceneWorld scenes: MM-Vet-, Object-HalBench-, LLaVA-Wild- and POPE-world.

Every item is a plain JSON-serialisable dict with at least
``item_id``, ``benchmark``, ``split``, ``scene`` (``Scene.to_json()``, the complete ground truth),
``question`` and ``reference`` (an answer that the benchmark's judge scores perfectly), plus the
fields its judge needs (see each builder).

Scenes come from streams named ``<role>/<benchmark>/<scene split>``, which no training data set uses
(those are "detail", "textvqa", "conversation", "caption", "corpus"), so a benchmark image is never a
training image. The role is "bench" for the items that report results and "val" for a validation
copy of every benchmark on which the pipeline makes its choices (noise setting, sizes,
hyperparameters): the two never share a scene, and the benchmarks are read once per model. Each item is drawn from its own generator (``item_rng``): the same seed gives the
same items, and item i does not depend on the size asked for.

Scene splits (the ``split`` argument; POPE calls it ``scene_split``):
- "standard": the world's usual mix, like the training data (mostly typical scenes, some mixed);
- "typical": the place's prior is right about every object;
- "atypical": the prior is wrong about every object (a bear on a street): a model that leans on the
  prior fails here.

Default sizes follow the real benchmarks: MM-Vet has 218 questions, Object HalBench 300 images,
LLaVA-Bench (in the wild) 60 questions, POPE 500 images x 6 questions per split.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from bpo.evaluation import text as T
from bpo.evaluation.common import check_choice, check_seed, check_size
from bpo.world import vocab
from bpo.world.language import article as _a, be as _be, describe, listing as _listing, noun_phrase as _np
from bpo.world.language import place_phrase, the as _the
from bpo.world.scene import Scene, SceneObject, SceneSampling, item_rng, sample_scene, sample_scenes

SCENE_SPLITS: dict[str, SceneSampling] = {
    "standard": SceneSampling(),
    "typical": SceneSampling(typicality="typical"),
    "atypical": SceneSampling(typicality="atypical"),
}
CAPABILITIES = ("Rec", "OCR", "Know", "Gen", "Spat", "Math")
WILD_CATEGORIES = ("conversation", "detail", "reasoning")
POPE_SPLITS = ("random", "popular", "adversarial")

# Object HalBench's 8 description prompts, verbatim (reference-facts.md).
HALBENCH_PROMPTS = (
    "Provide a thorough description of the given image.",
    "What is this photo about? Please answer in great detail.",
    "Provide a thorough description of the given picture.",
    "Explain the narrative or story that the image seems to convey, detailing each part that contributes to it.",
    "Please provide a detailed description of the image. Describe the visual elements, colors, shapes, textures, "
    "and any objects or people present along with the overall mood or atmosphere portrayed in the image.",
    "Please provide a detailed description of the image, including its visual elements, such as colors, shapes, "
    "textures, objects, and people.",
    "Provide an intricate description of the image, capturing its visual elements, including colors, shapes, "
    "textures, objects, and any people present.",
    "Compose a detailed account of the image, encompassing its visual characteristics, like colors, shapes, "
    "textures, objects, and any human subjects, by paying careful attention to the specifics.",
)

_MAX_TRIES = 300  # scenes drawn per item until one fits its question type; a fit takes ~10 at most


# ----------------------------------------------------------------------------------------- phrasing

def _plural(o: SceneObject | str) -> str:
    return vocab.OBJECTS[o if isinstance(o, str) else o.name].plural


def _at_place(place: str) -> str:
    return place_phrase(place, preposition=True)


def _pick(rng: np.random.Generator, options):
    return options[int(rng.integers(len(options)))]


# Words for categories in questions and answers. "plant" is left out: vocab makes "plant" a synonym
# of "potted plant", so an answer "the tree is a plant" would read as naming a potted plant.
_CATEGORY_PHRASE = {
    "animal": "an animal", "vehicle": "a vehicle", "food": "a kind of food", "furniture": "a piece of furniture",
    "kitchenware": "a piece of kitchenware", "appliance": "an appliance", "electronics": "an electronic device",
    "stationery": "a piece of stationery", "toy": "a toy", "sports equipment": "a piece of sports equipment",
    "accessory": "an accessory", "street furniture": "a piece of street furniture", "household": "a household item",
}
_TOTAL_PHRASE = {"animal": "animals", "vehicle": "vehicles", "food": "pieces of food"}


def _usable_uses() -> dict[str, list[str]]:
    # A use that itself names an object ("carries people on roads") would make the answer name two.
    uses: dict[str, list[str]] = {}
    for info in vocab.OBJECTS.values():
        if info.use and info.category != "person" and not T.mentioned_objects(info.use):
            uses.setdefault(info.use, []).append(info.name)
    return uses


_USES = _usable_uses()


# ------------------------------------------------------------------------------------------ MM-Vet

def _q(question, reference, caps, kind, answer):
    return {"question": question, "reference": reference, "capabilities": list(caps),
            "answer_kind": kind, "answer": answer}


def _mmvet_colour(scene, rng):
    o = _pick(rng, scene.objects)
    return _q(f"What colour {_be(o)} {_the(o)}?", f"{_the(o).capitalize()} {_be(o)} {o.colour}.",
              ("Rec",), "colour", o.colour)


def _mmvet_count(scene, rng):
    o = _pick(rng, scene.objects)
    ref = f"There is one {o.name}." if o.count == 1 else f"There are {vocab.COUNT_NAMES[o.count]} {_plural(o)}."
    return _q(f"How many {_plural(o)} are there in the image?", ref, ("Rec",), "number", o.count)


def _mmvet_place(scene, rng):
    q = _pick(rng, ("What kind of place is shown in this image?", "Where was this picture taken?"))
    return _q(q, f"This picture was taken {_at_place(scene.place)}.", ("Rec",), "place", scene.place)


def _mmvet_ocr(scene, rng):
    s = scene.sign
    if s is None or s.kind == "sum":
        return None
    if s.kind == "word":
        return _q("What is written on the sign?", f'The sign says "{s.text}".', ("OCR",), "text", s.text)
    return _q("What number is written on the sign?", f"The number on the sign is {s.text}.", ("OCR",), "number", int(s.text))


def _mmvet_sum(scene, rng):
    s = scene.sign
    if s is None or s.kind != "sum":
        return None
    return _q("What is the result of the sum on the sign?", f"The sign shows {s.text}, which equals {s.answer}.",
              ("OCR", "Math"), "number", int(s.answer))


def _mmvet_plus(scene, rng):
    s = scene.sign
    if s is None or s.kind != "number":
        return None
    k = int(rng.integers(1, 10))
    return _q(f"What is the number on the sign plus {k}?", f"{s.text} + {k} = {int(s.text) + k}.",
              ("OCR", "Math"), "number", int(s.text) + k)


def _mmvet_category(scene, rng):
    by_cat: dict[str, list[str]] = {}
    for o in scene.objects:
        by_cat.setdefault(vocab.OBJECTS[o.name].category, []).append(o.name)
    cats = sorted(c for c, names in by_cat.items() if len(names) == 1 and c in _CATEGORY_PHRASE)
    if not cats:
        return None
    cat = _pick(rng, cats)
    name, phrase = by_cat[cat][0], _CATEGORY_PHRASE[cat]
    return _q(f"Which object in the image is {phrase}?", f"The {name} is {phrase}.", ("Rec", "Know"), "objects", [name])


def _mmvet_use(scene, rng):
    present = scene.object_names
    uses = sorted(u for u, names in _USES.items() if len(present.intersection(names)) == 1)
    if not uses:
        return None
    use = _pick(rng, uses)
    name = next(n for n in _USES[use] if n in present)
    return _q(f"Which object here {use}?", f"The {name} {use}.", ("Rec", "Know"), "objects", [name])


def _mmvet_story(scene, rng):
    q = _pick(rng, ("Write a short story about this scene.", "Write a short poem inspired by this image.",
                    "Write a short social media post about this picture."))
    ref = (f"One sunny day {_at_place(scene.place)}, there were {_listing([_np(o) for o in scene.objects])}. "
           "They spent the whole afternoon together, and the day ended happily.")
    return _q(q, ref, ("Rec", "Gen"), "objects", sorted(scene.object_names))


def _mmvet_cell(scene, rng):
    o = _pick(rng, scene.objects)
    return _q(f"What is in the {o.row} {o.col} of the image?", f"There {_be(o)} {_np(o)} in the {o.row} {o.col}.",
              ("Rec", "Spat"), "objects", [o.name])


def _mmvet_where(scene, rng):
    o = _pick(rng, scene.objects)
    return _q(f"Where in the image {_be(o)} {_the(o)}?", f"{_the(o).capitalize()} {_be(o)} in the {o.row} {o.col} of the image.",
              ("Rec", "Spat"), "position", [o.row, o.col])


def _mmvet_relation(scene, rng):
    pairs = [(a, b) for a in scene.objects for b in scene.objects if a.col != b.col]
    if not pairs:
        return None
    a, b = pairs[int(rng.integers(len(pairs)))]
    side = _pick(rng, ("left", "right"))
    true_side = "left" if vocab.COLUMNS.index(a.col) < vocab.COLUMNS.index(b.col) else "right"
    yes = side == true_side
    ref = f"{'Yes' if yes else 'No'}, the {a.name} is to the {true_side} of the {b.name}."
    return _q(f"Is the {a.name} to the {side} of the {b.name}?", ref, ("Rec", "Spat"), "yesno", "yes" if yes else "no")


def _mmvet_total(scene, rng):
    by_cat: dict[str, list[SceneObject]] = {}
    for o in scene.objects:
        by_cat.setdefault(vocab.OBJECTS[o.name].category, []).append(o)
    cats = sorted(c for c in _TOTAL_PHRASE if len(by_cat.get(c, [])) >= 2)
    if not cats:
        return None
    cat = _pick(rng, cats)
    total = sum(o.count for o in by_cat[cat])
    phrase = _TOTAL_PHRASE[cat]
    return _q(f"How many {phrase} are there in total?", f"There are {total} {phrase} in total.", ("Rec", "Math"), "number", total)


def _mmvet_difference(scene, rng):
    pairs = [(a, b) for a in scene.objects for b in scene.objects if a.count > b.count]
    if not pairs:
        return None
    a, b = pairs[int(rng.integers(len(pairs)))]
    d = a.count - b.count
    more = f"is {d} more {a.name}" if d == 1 else f"are {d} more {_plural(a)}"
    return _q(f"How many more {_plural(a)} than {_plural(b)} are there?", f"There {more} than {_plural(b)}.",
              ("Rec", "Math"), "number", d)


# One entry per item, in turn; the first six cover all six capabilities, so even a tiny set has each.
MMVET_TYPES: tuple[tuple[str, Callable], ...] = (
    ("rec_colour", _mmvet_colour), ("ocr_text", _mmvet_ocr), ("know_category", _mmvet_category),
    ("gen_story", _mmvet_story), ("spat_cell", _mmvet_cell), ("math_total", _mmvet_total),
    ("rec_count", _mmvet_count), ("ocr_sum", _mmvet_sum), ("know_use", _mmvet_use),
    ("spat_where", _mmvet_where), ("ocr_plus", _mmvet_plus), ("rec_place", _mmvet_place),
    ("spat_relation", _mmvet_relation), ("math_difference", _mmvet_difference), ("gen_story", _mmvet_story),
    ("know_use", _mmvet_use),
)


# Whom a suite serves: "bench" items report results, "val" items make choices (noise, sizes,
# hyperparameters). The role starts every scene stream and scene id, so the two never share a draw.
ROLES = ("bench", "val")


def _check_role(role: str, where: str) -> str:
    return check_choice(role, ROLES, "role", where) or role


def _fit(seed: int, stream: str, index: int, cfg: SceneSampling, makers: list[tuple[str, Callable]]):
    """Draw scenes for item ``index`` until one suits a maker, trying ``makers`` in order."""
    scene_rng, question_rng = item_rng(seed, stream, index), item_rng(seed, f"{stream}/question", index)
    for kind, make in makers:
        for _ in range(_MAX_TRIES):
            scene = sample_scene(scene_rng, f"{stream}-{index:06d}", cfg)
            fields = make(scene, question_rng)
            if fields is not None:
                return kind, scene, fields
    raise RuntimeError(f"{stream}: no scene fits item {index} after {_MAX_TRIES} draws per question type")


def build_mmvet(n: int = 218, seed: int = 0, split: str = "standard", role: str = "bench") -> list[dict]:
    """MM-Vet-world items. Extra fields: ``capabilities`` (tags from CAPABILITIES), ``type``,
    ``answer_kind`` (number, colour, place, text, objects, position, yesno) and ``answer``."""
    where = "build_mmvet"
    check_size(n, "n", where), check_seed(seed, where), check_choice(split, SCENE_SPLITS, "split", where)
    stream, items = f"{_check_role(role, where)}/mmvet/{split}", []
    for i in range(n):
        start = i % len(MMVET_TYPES)
        makers = [MMVET_TYPES[(start + k) % len(MMVET_TYPES)] for k in range(len(MMVET_TYPES))]
        kind, scene, fields = _fit(seed, stream, i, SCENE_SPLITS[split], makers)
        items.append({"item_id": f"mmvet-{split}-{i:05d}", "benchmark": "mmvet", "split": split,
                      "scene": scene.to_json(), "type": kind, **fields})
    return items


# --------------------------------------------------------------------------------- Object HalBench

def build_halbench(n: int = 300, seed: int = 0, split: str = "standard", role: str = "bench") -> list[dict]:
    """Object-HalBench-world items: one image each, the 8 prompts in turn. Extra: ``prompt_index``."""
    where = "build_halbench"
    check_size(n, "n", where), check_seed(seed, where), check_choice(split, SCENE_SPLITS, "split", where)
    scenes = sample_scenes(seed, f"{_check_role(role, where)}/halbench/{split}", n, SCENE_SPLITS[split])
    return [{"item_id": f"halbench-{split}-{i:05d}", "benchmark": "halbench", "split": split,
             "scene": s.to_json(), "question": HALBENCH_PROMPTS[i % len(HALBENCH_PROMPTS)],
             "prompt_index": i % len(HALBENCH_PROMPTS), "reference": describe(s)}
            for i, s in enumerate(scenes)]


# ------------------------------------------------------------------------------------- LLaVA-Wild

def _facts_of(o: SceneObject, kinds=("object", "colour", "count", "row", "col")) -> list[list]:
    value = {"colour": o.colour, "count": o.count, "row": o.row, "col": o.col}
    return [["object", o.name] if k == "object" else [k, o.name, value[k]] for k in kinds]


def _wild_conversation(scene, rng):
    o = _pick(rng, scene.objects)
    kind = _pick(rng, ("colour", "count", "where", "what_at"))
    if kind == "colour":
        return (f"What colour {_be(o)} {_the(o)}?", f"{_the(o).capitalize()} {_be(o)} {o.colour}.",
                _facts_of(o, ("object", "colour")))
    if kind == "count":
        ref = f"There is one {o.name}." if o.count == 1 else f"There are {vocab.COUNT_NAMES[o.count]} {_plural(o)}."
        return f"How many {_plural(o)} are there?", ref, _facts_of(o, ("object", "count"))
    if kind == "where":
        return (f"Where {_be(o)} {_the(o)}?", f"{_the(o).capitalize()} {_be(o)} in the {o.row} {o.col} of the image.",
                _facts_of(o, ("object", "row", "col")))
    return (f"What is in the {o.row} {o.col} of the picture?", f"There {_be(o)} {_np(o)} in the {o.row} {o.col}.",
            _facts_of(o))


def _wild_detail(scene, rng):
    q = _pick(rng, ("Describe this image in detail.", "What is happening in this picture? Describe it thoroughly.",
                    "Give a detailed description of everything you see in the image."))
    return q, describe(scene), [f for o in scene.objects for f in _facts_of(o)]


def _wild_reasoning(scene, rng):
    options = []
    odd = [o for o in scene.objects if o.name not in vocab.PRIOR_WEIGHTS[scene.place]]
    if odd:  # what the place's prior would not expect
        options.append(("What is unusual about this scene?",
                        f"It is unusual to see {_listing([_np(o) for o in odd])} {_at_place(scene.place)}.",
                        [f for o in odd for f in _facts_of(o, ("object",))]))
    present = scene.object_names
    uses = sorted(u for u, names in _USES.items() if len(present.intersection(names)) == 1)
    if uses:
        use = _pick(rng, uses)
        o = scene.get(next(n for n in _USES[use] if n in present))
        noun = o.name if o.count == 1 else _plural(o)
        options.append((f"If someone here needed something that {use}, what in the image could they use?",
                        f"They could use the {o.colour} {noun}.", _facts_of(o, ("object", "colour"))))
    for category, verb in (("vehicle", "ride or drive"), ("food", "eat")):
        found = [o for o in scene.objects if vocab.OBJECTS[o.name].category == category]
        if found:
            options.append((f"Which things in this image could someone {verb}?",
                            f"They could {verb} {_listing([f'the {o.colour} {o.name if o.count == 1 else _plural(o)}' for o in found])}.",
                            [f for o in found for f in _facts_of(o, ("object", "colour"))]))
    return _pick(rng, options) if options else None


_WILD_MAKERS = {"conversation": _wild_conversation, "detail": _wild_detail, "reasoning": _wild_reasoning}


def build_wild(n: int = 60, seed: int = 0, split: str = "standard", role: str = "bench") -> list[dict]:
    """LLaVA-Wild-world items, categories in turn. Extra: ``category`` and ``reference_facts`` (a list
    of facts as lists, e.g. ["colour", "car", "red"]: what a good answer must state)."""
    where = "build_wild"
    check_size(n, "n", where), check_seed(seed, where), check_choice(split, SCENE_SPLITS, "split", where)
    stream, items = f"{_check_role(role, where)}/wild/{split}", []
    for i in range(n):
        category = WILD_CATEGORIES[i % len(WILD_CATEGORIES)]
        make = _WILD_MAKERS[category]

        def fields(scene, rng, make=make):
            out = make(scene, rng)
            return None if out is None else dict(zip(("question", "reference", "reference_facts"), out))

        _, scene, f = _fit(seed, stream, i, SCENE_SPLITS[split], [(category, fields)])
        items.append({"item_id": f"wild-{split}-{i:05d}", "benchmark": "wild", "split": split,
                      "scene": scene.to_json(), "category": category, **f})
    return items


# ------------------------------------------------------------------------------------------- POPE

def _popularity() -> dict[str, float]:
    # How often the prior puts each object in a scene, averaged over places (places are uniform).
    return {o: float(np.mean([vocab.prior_probability(p, o) for p in vocab.PLACES])) for o in vocab.OBJECTS}


POPULARITY = _popularity()


def cooccurrence(obj: str, present) -> float:
    """How strongly the prior ties ``obj`` to the objects ``present``: sum over places of
    P(obj | place) * sum P(p | place), averaged over places."""
    return float(np.mean([vocab.prior_probability(pl, obj) * sum(vocab.prior_probability(pl, p) for p in present)
                          for pl in vocab.PLACES]))


def pope_negatives(scene: Scene, k: int, split: str, rng: np.random.Generator | None = None) -> list[str]:
    """``k`` objects absent from ``scene``, chosen as POPE's ``split`` says:
    random (uniform), popular (most frequent under the prior overall), adversarial (most likely under
    this place's prior, then most co-occurring with the objects present)."""
    check_choice(split, POPE_SPLITS, "POPE split", "pope_negatives")
    absent = [o for o in vocab.OBJECTS if o not in scene.object_names]
    if split == "random":
        if rng is None:
            raise ValueError("pope_negatives: the random split needs a generator")
        return [absent[j] for j in rng.choice(len(absent), size=k, replace=False)]
    if split == "popular":
        return sorted(absent, key=lambda o: (-POPULARITY[o], o))[:k]
    present = scene.object_names
    key = {o: (-vocab.prior_probability(scene.place, o), -cooccurrence(o, present), o) for o in absent}
    return sorted(absent, key=key.__getitem__)[:k]


def _pope_question(name: str) -> str:
    return f"Is there {_a(name)} in the image?"


def build_pope(n_images: int = 500, seed: int = 0, split: str = "adversarial", scene_split: str = "standard",
               per_label: int = 3, role: str = "bench") -> list[dict]:
    """POPE-world items for one POPE split: per image, up to ``per_label`` present objects (label
    "yes") and as many absent ones (label "no"), so every split is balanced. The images and the
    "yes" questions are the same in all three splits; only the absent objects differ.
    Extra fields: ``object``, ``label`` ("yes"/"no"), ``scene_split``, ``image_index``."""
    where = "build_pope"
    check_size(n_images, "n_images", where), check_size(per_label, "per_label", where), check_seed(seed, where)
    check_choice(split, POPE_SPLITS, "split", where), check_choice(scene_split, SCENE_SPLITS, "scene_split", where)
    stream = f"{_check_role(role, where)}/pope/{scene_split}"
    scenes = sample_scenes(seed, stream, n_images, SCENE_SPLITS[scene_split])
    items = []
    for i, scene in enumerate(scenes):
        k = min(per_label, len(scene.objects))
        present_rng = item_rng(seed, f"{stream}/present", i)
        present = [scene.objects[j].name for j in present_rng.choice(len(scene.objects), size=k, replace=False)]
        absent = pope_negatives(scene, k, split, item_rng(seed, f"{stream}/random", i))
        for j, (name, label) in enumerate(x for pair in zip(present, absent) for x in ((pair[0], "yes"), (pair[1], "no"))):
            ref = f"Yes, there is {_a(name)} in the image." if label == "yes" else f"No, there is no {name} in the image."
            items.append({"item_id": f"pope-{split}-{scene_split}-{i:05d}-{j}", "benchmark": "pope", "split": split,
                          "scene_split": scene_split, "image_index": i, "scene": scene.to_json(),
                          "question": _pope_question(name), "object": name, "label": label, "reference": ref})
    return items
