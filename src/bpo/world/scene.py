"""Scenes: the complete ground truth of one SceneWorld image, and how scenes are sampled.

A scene is a place plus 1-6 objects (noun, colour, count, cell of a 2x3 grid) and an optional sign
(a word, a number or a short sum). Scenes are drawn from the place -> object prior ("typical"),
against it ("atypical": the prior is wrong about every object), or a mix of both ("mixed").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

import numpy as np

from bpo.world import vocab

TYPICALITIES = ("typical", "mixed", "atypical")
SIGN_KINDS = ("word", "number", "sum")
CELLS: tuple[tuple[str, str], ...] = tuple((r, c) for r in vocab.ROWS for c in vocab.COLUMNS)


@dataclass(frozen=True)
class SceneObject:
    name: str
    colour: str
    count: int
    row: str
    col: str

    @property
    def position(self) -> str:
        """'top left', 'bottom centre', ..."""
        return f"{self.row} {self.col}"


@dataclass(frozen=True)
class Sign:
    kind: str  # "word" | "number" | "sum"
    text: str  # what is written on it: "OPEN", "42", "3+4"
    row: str
    col: str

    @property
    def answer(self) -> str:
        """The value a reader should report: the sum's result for a sum, the text otherwise."""
        if self.kind == "sum":
            a, b = self.text.split("+")
            return str(int(a) + int(b))
        return self.text


@dataclass(frozen=True)
class Scene:
    scene_id: str
    place: str
    objects: tuple[SceneObject, ...]
    sign: Sign | None = None
    typicality: str = "typical"

    def __post_init__(self):
        if self.place not in vocab.PLACES:
            raise ValueError(f"scene {self.scene_id}: unknown place {self.place!r}")
        if self.typicality not in TYPICALITIES:
            raise ValueError(f"scene {self.scene_id}: typicality must be one of {TYPICALITIES}")
        cells = [(o.row, o.col) for o in self.objects] + ([(self.sign.row, self.sign.col)] if self.sign else [])
        if len(set(cells)) != len(cells):
            raise ValueError(f"scene {self.scene_id}: two things share a cell")
        for o in self.objects:
            if o.name not in vocab.OBJECTS or o.colour not in vocab.COLOURS:
                raise ValueError(f"scene {self.scene_id}: unknown object or colour in {o}")
            if not 1 <= o.count <= vocab.MAX_COUNT:
                raise ValueError(f"scene {self.scene_id}: count of {o.name} must be 1..{vocab.MAX_COUNT}")
        if len({o.name for o in self.objects}) != len(self.objects):
            raise ValueError(f"scene {self.scene_id}: an object noun appears twice")

    @property
    def object_names(self) -> frozenset[str]:
        return frozenset(o.name for o in self.objects)

    def get(self, name: str) -> SceneObject | None:
        return next((o for o in self.objects if o.name == name), None)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Scene:
        d = json.loads(text)
        sign = Sign(**d["sign"]) if d.get("sign") else None
        return cls(d["scene_id"], d["place"], tuple(SceneObject(**o) for o in d["objects"]), sign, d["typicality"])


@dataclass(frozen=True)
class SceneSampling:
    """How scenes are drawn. Defaults give training data that mostly agrees with the prior."""

    max_objects: int = 6  # a 2x3 grid holds at most 6 things (a sign takes one cell)
    sign_rate: float = 0.4  # share of scenes with a sign
    typical_rate: float = 0.7  # share of "typical" scenes; the rest are "mixed"
    typical_colour_rate: float = 0.75  # objects the prior expects take a typical colour this often
    count_probs: tuple[float, ...] = (0.6, 0.25, 0.15)  # P(count = 1, 2, 3)
    typicality: str | None = None  # force every scene to one typicality (benchmark splits)

    def __post_init__(self):
        if not 1 <= self.max_objects <= len(CELLS):
            raise ValueError(f"max_objects must be in 1..{len(CELLS)}, got {self.max_objects}")
        for name in ("sign_rate", "typical_rate", "typical_colour_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if len(self.count_probs) != vocab.MAX_COUNT or abs(sum(self.count_probs) - 1) > 1e-9:
            raise ValueError(f"count_probs must be {vocab.MAX_COUNT} probabilities summing to 1")
        if self.typicality is not None and self.typicality not in TYPICALITIES:
            raise ValueError(f"typicality must be None or one of {TYPICALITIES}, got {self.typicality!r}")


def item_rng(seed: int, stream: str, index: int) -> np.random.Generator:
    """An independent generator per (seed, stream, item): held-out streams never share draws with
    training streams, and any item can be regenerated alone."""
    digest = hashlib.sha256(f"{stream}".encode()).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "little"), index])


def sample_scene(rng: np.random.Generator, scene_id: str, cfg: SceneSampling = SceneSampling()) -> Scene:
    place = vocab.PLACES[rng.integers(len(vocab.PLACES))]
    has_sign = rng.random() < cfg.sign_rate
    max_n = min(cfg.max_objects, len(CELLS) - int(has_sign))
    n = int(rng.integers(1, max_n + 1))
    typicality = cfg.typicality or ("typical" if rng.random() < cfg.typical_rate else "mixed")
    if typicality == "mixed" and n == 1:
        typicality = "atypical"  # one object against the prior is an atypical scene

    typical, atypical = vocab.typical_objects(place), vocab.atypical_objects(place)
    n_atypical = int(rng.integers(1, n)) if typicality == "mixed" else (n if typicality == "atypical" else 0)
    n_typical = n - n_atypical
    if n_typical > len(typical):  # a place with few typical nouns: top up against the prior
        n_typical, n_atypical = len(typical), n - len(typical)
    weights = np.array([vocab.PRIOR_WEIGHTS[place][o] for o in typical], dtype=float)
    names = list(rng.choice(typical, size=n_typical, replace=False, p=weights / weights.sum()))
    names += list(rng.choice(atypical, size=n_atypical, replace=False))
    if n_typical and n_atypical:
        typicality = "mixed"
    names = [str(x) for x in rng.permutation(names)]

    cell_order = rng.permutation(len(CELLS))
    objects = []
    for name, cell in zip(names, cell_order):
        info = vocab.OBJECTS[name]
        if name in vocab.PRIOR_WEIGHTS[place] and rng.random() < cfg.typical_colour_rate:
            colour = info.typical_colours[rng.integers(len(info.typical_colours))]
        else:
            colour = list(vocab.COLOURS)[rng.integers(len(vocab.COLOURS))]
        count = int(rng.choice(np.arange(1, vocab.MAX_COUNT + 1), p=cfg.count_probs))
        row, col = CELLS[cell]
        objects.append(SceneObject(name, colour, count, row, col))

    sign = None
    if has_sign:
        row, col = CELLS[cell_order[n]]
        kind = SIGN_KINDS[rng.integers(len(SIGN_KINDS))]
        if kind == "word":
            text = vocab.SIGN_WORDS[rng.integers(len(vocab.SIGN_WORDS))]
        elif kind == "number":
            text = str(int(rng.integers(10, 100)))
        else:
            text = f"{int(rng.integers(1, 10))}+{int(rng.integers(1, 10))}"
        sign = Sign(kind, text, row, col)
    return Scene(scene_id, place, tuple(objects), sign, typicality)


def sample_scenes(seed: int, stream: str, n: int, cfg: SceneSampling = SceneSampling()) -> list[Scene]:
    """``n`` scenes of one stream; scene ids are '<stream>-<index>'."""
    return [sample_scene(item_rng(seed, stream, i), f"{stream}-{i:06d}", cfg) for i in range(n)]
