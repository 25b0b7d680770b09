"""Presence questions before stage-2 conversations: first, balanced, true to the scene, not repeated."""

import re

import pytest

from bpo.training.config import BaseTrainingConfig
from bpo.training.presence_turns import with_presence_turns
from bpo.world.scene import Scene, SceneObject

KITCHEN = Scene("kitchen-1", "kitchen", (SceneObject("dog", "brown", 2, "top", "left"),
                                         SceneObject("cup", "red", 1, "bottom", "right")))
DESCRIBE = [{"role": "user", "content": "Describe the image."},
            {"role": "assistant", "content": "This picture shows a kitchen. Two brown dogs, one red cup."}]
ASKED_NOUN = re.compile(r"^Is there a (.+) in the image\?$")


def _added(conversation, n):
    return [(conversation[i]["content"], conversation[i + 1]["content"]) for i in range(0, 2 * n, 2)]


def test_questions_come_first_alternate_yes_and_no_and_are_true_to_the_scene():
    out = with_presence_turns([DESCRIBE] * 6, [KITCHEN] * 6, 2, seed=0)
    assert all(c[4:] == DESCRIBE for c in out)  # the example's own turns follow, unchanged
    answers = []
    for conversation in out:
        assert [t["role"] for t in conversation[:4]] == ["user", "assistant"] * 2
        for q, a in _added(conversation, 2):
            noun = ASKED_NOUN.match(q).group(1)
            answers.append(a.split(",")[0])
            # "yes" exactly when the scene holds the noun
            assert (noun in KITCHEN.object_names) == (answers[-1] == "Yes"), (q, a)
    assert answers == ["Yes", "No"] * 6


def test_a_question_the_conversation_already_asks_is_not_asked_again():
    asks_dog = [{"role": "user", "content": "Is there a dog in the image?"},
                {"role": "assistant", "content": "Yes, there are two brown dogs in the top left corner."}]
    for seed in range(5):
        (conversation,) = with_presence_turns([asks_dog], [KITCHEN], 1, seed)
        assert conversation[0]["content"] == "Is there a cup in the image?"  # the only other present object
        (conversation,) = with_presence_turns([asks_dog], [KITCHEN], 2, seed)
        assert conversation[2]["content"] not in ("Is there a dog in the image?", "Is there a cup in the image?")


def test_the_same_seed_gives_the_same_turns_and_zero_adds_none():
    a = with_presence_turns([DESCRIBE] * 4, [KITCHEN] * 4, 1, seed=3)
    assert a == with_presence_turns([DESCRIBE] * 4, [KITCHEN] * 4, 1, seed=3)
    assert with_presence_turns([DESCRIBE], [KITCHEN], 0, seed=3) == [DESCRIBE]


def test_bad_input_is_refused_with_what_is_wrong():
    with pytest.raises(ValueError, match="2 conversations but 1 scenes"):
        with_presence_turns([DESCRIBE, DESCRIBE], [KITCHEN], 1, seed=0)
    with pytest.raises(ValueError, match="n must be >= 0"):
        with_presence_turns([DESCRIBE], [KITCHEN], -1, seed=0)
    for bad in (-1, 1.5):
        with pytest.raises(ValueError, match="sft_yes_no_turns must be an int >= 0"):
            BaseTrainingConfig(sft_yes_no_turns=bad)
