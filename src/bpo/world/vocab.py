"""The SceneWorld lexicon: places, object nouns (with plurals, synonyms and world knowledge),
colours, positions, count words, sign words, and the place -> object prior.

Everything that the world says in words and everything that the judges read back lives here, so the
language templates and the rule judges can never drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

PLACES: tuple[str, ...] = (
    "street", "beach", "farm", "kitchen", "forest", "park", "harbour", "office",
)


@dataclass(frozen=True)
class ObjectInfo:
    """One noun of the world. ``synonyms`` are words a response may use for it instead."""

    name: str
    plural: str
    category: str  # animal, vehicle, food, furniture, ... (the "Know" questions ask about it)
    typical_colours: tuple[str, ...]  # the colour prior: a yellow banana is typical, a blue one is not
    synonyms: tuple[str, ...] = ()
    use: str = ""  # what it is for, in a short verb phrase ("tells the time"): world knowledge


def _o(name, plural, category, colours, synonyms=(), use=""):
    return ObjectInfo(name, plural, category, tuple(colours.split()), tuple(synonyms), use)


# 40 everyday nouns; categories and uses give the MM-Vet "Know" capability something to ask.
OBJECTS: dict[str, ObjectInfo] = {o.name: o for o in (
    _o("car", "cars", "vehicle", "red blue white black", ("automobile", "sedan"), "carries passengers on roads"),
    _o("bus", "buses", "vehicle", "yellow red", ("coach",), "carries many passengers"),
    _o("truck", "trucks", "vehicle", "red blue white", ("lorry",), "carries heavy loads"),
    _o("bicycle", "bicycles", "vehicle", "red blue black", ("bike", "cycle"), "is pedalled to ride"),
    _o("motorcycle", "motorcycles", "vehicle", "red black", ("motorbike",), "is ridden on roads"),
    _o("traffic light", "traffic lights", "street furniture", "black gray", ("traffic signal", "stoplight"), "controls traffic"),
    _o("fire hydrant", "fire hydrants", "street furniture", "red yellow", ("hydrant",), "supplies water to firefighters"),
    _o("person", "people", "person", "blue red green",
       ("man", "men", "woman", "women", "pedestrian", "pedestrians", "child", "children", "boy", "boys", "girl", "girls", "persons"),
       "walks and talks"),
    _o("dog", "dogs", "animal", "brown black white", ("puppy", "puppies"), "barks"),
    _o("cat", "cats", "animal", "orange black gray", ("kitten", "kittens"), "meows"),
    _o("bird", "birds", "animal", "white gray black", ("seagull", "seagulls", "gull", "gulls", "pigeon", "pigeons"), "flies"),
    _o("umbrella", "umbrellas", "accessory", "red blue yellow", ("parasol", "parasols"), "gives shade from the sun"),
    _o("boat", "boats", "vehicle", "white blue red", ("ship", "ships", "sailboat", "sailboats"), "floats on water"),
    _o("surfboard", "surfboards", "sports equipment", "yellow blue orange", (), "is ridden on waves"),
    _o("ball", "balls", "sports equipment", "red white orange", (), "is thrown and kicked"),
    _o("kite", "kites", "toy", "red yellow purple", (), "flies in the wind"),
    _o("cow", "cows", "animal", "white black brown", ("cattle", "calf", "calves"), "gives milk"),
    _o("horse", "horses", "animal", "brown black white", ("pony", "ponies"), "can be ridden"),
    _o("sheep", "sheep", "animal", "white gray", ("lamb", "lambs"), "gives wool"),
    _o("pig", "pigs", "animal", "pink", ("piglet", "piglets"), "oinks"),
    _o("tractor", "tractors", "vehicle", "green red", (), "pulls farm machines"),
    _o("bear", "bears", "animal", "brown black", (), "lives in the wild"),
    _o("deer", "deer", "animal", "brown", ("stag", "stags"), "lives in the wild"),
    _o("tree", "trees", "plant", "green", (), "grows leaves"),
    _o("mushroom", "mushrooms", "food", "brown white red", ("toadstool", "toadstools"), "grows on the forest floor"),
    _o("bench", "benches", "furniture", "brown green", (), "is for sitting outdoors"),
    _o("frisbee", "frisbees", "toy", "orange red blue", (), "is thrown to catch"),
    _o("cup", "cups", "kitchenware", "white blue red", ("mug", "mugs"), "holds a drink"),
    _o("bowl", "bowls", "kitchenware", "white blue", (), "holds food"),
    _o("bottle", "bottles", "kitchenware", "green blue", (), "holds a liquid"),
    _o("oven", "ovens", "appliance", "white gray black", ("stove", "stoves"), "bakes food"),
    _o("banana", "bananas", "food", "yellow", (), "can be eaten"),
    _o("apple", "apples", "food", "red green", (), "can be eaten"),
    _o("cake", "cakes", "food", "pink white brown", (), "can be eaten"),
    _o("laptop", "laptops", "electronics", "gray black", ("computer", "computers"), "is used for work"),
    _o("book", "books", "stationery", "red blue green", (), "is read"),
    _o("clock", "clocks", "household", "white black", (), "tells the time"),
    _o("chair", "chairs", "furniture", "brown black", (), "is for sitting"),
    _o("teddy bear", "teddy bears", "toy", "brown yellow", ("teddy", "teddies"), "is a soft toy"),
    _o("potted plant", "potted plants", "plant", "green", ("houseplant", "houseplants"), "decorates a room"),
)}

# Flat RGB fills. Background palettes (see render.py) use none of these, which lets a test tell
# every drawn object from the scenery pixel by pixel.
COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "orange": (245, 140, 20),
    "yellow": (250, 220, 30),
    "green": (40, 160, 50),
    "blue": (40, 80, 220),
    "purple": (140, 50, 180),
    "pink": (245, 130, 190),
    "brown": (130, 80, 35),
    "white": (252, 252, 252),
    "gray": (128, 128, 128),
    "black": (15, 15, 15),
}
COLOUR_SYNONYMS: dict[str, str] = {"grey": "gray", "violet": "purple"}

# The place -> object prior: relative co-occurrence weights, skewed like the real world. An object
# with no weight for a place is *atypical* there (a bear on a street, a cow in an office).
PRIOR_WEIGHTS: dict[str, dict[str, float]] = {
    "street": {"car": 10, "person": 9, "bus": 6, "truck": 5, "traffic light": 6, "bicycle": 4,
               "motorcycle": 3, "fire hydrant": 3, "dog": 3, "bird": 1, "umbrella": 1, "tree": 1},
    "beach": {"umbrella": 10, "person": 9, "boat": 6, "bird": 5, "surfboard": 5, "ball": 4,
              "chair": 3, "dog": 2, "kite": 2, "frisbee": 1},
    "farm": {"cow": 10, "horse": 7, "sheep": 7, "tractor": 6, "pig": 5, "dog": 4, "person": 4,
             "bird": 3, "tree": 3, "truck": 2, "cat": 1},
    "kitchen": {"cup": 10, "oven": 8, "bowl": 7, "bottle": 6, "person": 5, "banana": 4, "apple": 4,
                "cake": 3, "chair": 3, "clock": 2, "cat": 1, "potted plant": 1},
    "forest": {"tree": 10, "bird": 7, "deer": 6, "bear": 6, "mushroom": 5, "person": 2, "dog": 1},
    "park": {"person": 10, "dog": 8, "bench": 7, "tree": 7, "bicycle": 4, "kite": 4, "frisbee": 4,
             "ball": 3, "bird": 3, "umbrella": 1},
    "harbour": {"boat": 10, "bird": 7, "person": 6, "truck": 2, "bicycle": 1, "dog": 1, "umbrella": 1},
    "office": {"laptop": 10, "chair": 9, "person": 8, "book": 6, "cup": 6, "clock": 4,
               "potted plant": 4, "bottle": 2, "teddy bear": 1},
}

ROWS: tuple[str, ...] = ("top", "bottom")
COLUMNS: tuple[str, ...] = ("left", "centre", "right")
# Words a response may use for a row or a column.
POSITION_WORDS: dict[str, str] = {
    "top": "top", "upper": "top", "above": "top",
    "bottom": "bottom", "lower": "bottom", "below": "bottom",
    "left": "left", "right": "right",
    "centre": "centre", "center": "centre", "middle": "centre",
}

MAX_COUNT = 3
NUMBER_WORDS: dict[str, int] = {
    "zero": 0, "no": 0, "a": 1, "an": 1, "one": 1, "single": 1, "two": 2, "pair": 2, "three": 3,
    "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10,
}
COUNT_NAMES: dict[int, str] = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}

SIGN_WORDS: tuple[str, ...] = (
    "OPEN", "STOP", "SALE", "CAFE", "EXIT", "SLOW", "HELLO", "FISH", "TAXI", "BAKERY", "HOTEL",
    "WELCOME", "DANGER", "QUIET", "MILK", "WOOD", "NORTH", "SOUTH", "PIZZA", "LUNCH",
)  # never a noun, place, colour or number word of the lexicon: reading a sign must not name an object


def typical_objects(place: str) -> tuple[str, ...]:
    """Objects the prior expects at ``place``, most likely first."""
    weights = PRIOR_WEIGHTS[place]
    return tuple(sorted(weights, key=lambda o: (-weights[o], o)))


def atypical_objects(place: str) -> tuple[str, ...]:
    """Objects the prior never puts at ``place``: the prior is always wrong about them."""
    return tuple(o for o in OBJECTS if o not in PRIOR_WEIGHTS[place])


def prior_probability(place: str, obj: str, atypical_mass: float = 0.0) -> float:
    """P(object | place) of the prior, with ``atypical_mass`` spread evenly over atypical objects."""
    weights = PRIOR_WEIGHTS[place]
    if obj in weights:
        return (1.0 - atypical_mass) * weights[obj] / sum(weights.values())
    return atypical_mass / len(atypical_objects(place))


def _check_lexicon() -> None:
    # Fail at import if an edit breaks the lexicon: judges depend on every word mapping to one class.
    assert set(PRIOR_WEIGHTS) == set(PLACES), "PRIOR_WEIGHTS must cover exactly PLACES"
    seen: dict[str, str] = {}
    for info in OBJECTS.values():
        assert all(c in COLOURS for c in info.typical_colours), f"unknown colour for {info.name}"
        for word in (info.name, info.plural, *info.synonyms):
            assert seen.setdefault(word, info.name) == info.name, f"'{word}' names two objects"
    lexical = set(seen) | set(PLACES) | set(COLOURS) | set(NUMBER_WORDS) | set(POSITION_WORDS)
    assert not lexical & {w.lower() for w in SIGN_WORDS}, "a sign word is also a lexicon word"
    for place, weights in PRIOR_WEIGHTS.items():
        assert all(o in OBJECTS for o in weights), f"unknown object in prior of {place}"


_check_lexicon()
