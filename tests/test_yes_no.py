"""What the pairs teach about yes and no: readings by POPE's rule, the make-up per negative type,
the ablation's pair set, and the POPE table of several models against a reference."""

import datasets
import pytest

from bpo.world.scene import Scene, SceneObject
from bpo.yes_no import PREFERS_NO, PREFERS_YES, SAME, agreeing_pairs, pair_readings, pope_yes_no_table, yes_no_makeup

PAIRS = [  # prompt, chosen, rejected, negative type; what each pair prefers by POPE's reading
    ("Is there a dog in the image?", "No, there is no dog in the image.", "Yes, there is a brown dog.",
     "prior_guided"),  # prefers no
    ("Is there a cat in the image?", "Yes, there is a cat at the top.", "There is not a cat here.",
     "image_weakened"),  # prefers yes ("not" reads as no)
    ("Describe the image.", "A park with a dog. No cat.", "A park with a cat.",
     "image_weakened"),  # same: only the first sentence counts
    ("What does the sign say?", "There is no sign in this image.", "The sign says BAKERY.",
     "image_weakened"),  # prefers no, though not a yes/no question
    ("Are there cars?", "No, there are no cars.", "No cars, but there are buses.", "prior_guided"),  # same (no, no)
]


def pairs():
    return datasets.Dataset.from_dict({k: [p[i] for p in PAIRS]
                                       for i, k in enumerate(("prompt", "chosen", "rejected", "negative_type"))})


def test_each_pair_is_read_by_popes_rule():
    r = pair_readings(pairs())
    assert list(r.chosen) == ["no", "yes", "yes", "no", "no"]
    assert list(r.rejected) == ["yes", "no", "yes", "yes", "no"]
    assert list(r.yes_no_question) == [True, True, False, False, True]


def test_the_makeup_counts_pairs_per_negative_type_and_overall():
    m = yes_no_makeup(pairs()).set_index("negative type")
    assert list(m.index) == ["image_weakened", "prior_guided", "all"]
    assert m.loc["image_weakened", [PREFERS_NO, PREFERS_YES, SAME]].tolist() == [1, 1, 1]
    assert m.loc["prior_guided", [PREFERS_NO, PREFERS_YES, SAME]].tolist() == [1, 0, 1]
    assert m.loc["all"].tolist() == [5, 3, 2, 1, 2]  # pairs, yes/no questions, prefers no, prefers yes, same


def test_agreeing_pairs_drops_those_whose_responses_read_differently():
    kept = agreeing_pairs(pairs())
    assert kept["prompt"] == ["Describe the image.", "Are there cars?"]


def test_bad_pairs_are_named():
    with pytest.raises(ValueError, match=r"lack column\(s\) \['negative_type'\]"):
        pair_readings(pairs().remove_columns("negative_type"))
    broken = datasets.Dataset.from_dict({"prompt": ["Hi", "Hi"], "chosen": ["a", "b"], "rejected": ["c", None],
                                         "negative_type": ["x", "x"]})
    with pytest.raises(TypeError, match="row 1's rejected is NoneType"):
        pair_readings(broken)


PARK = Scene("park-1", "park", (SceneObject("dog", "brown", 2, "top", "left"),))


def pope(labels, split):
    return [{"item_id": f"{split}{i}", "scene": PARK.to_json(), "question": "Is there a dog in the image?",
             "object": "dog", "label": label, "split": "adversarial"} for i, label in enumerate(labels)]


def test_the_pope_table_gives_each_model_and_its_difference_from_the_reference():
    items = {f"pope-adversarial/{s}": pope(["yes", "no"] * 5, s) for s in ("typical", "atypical")}
    always_yes = {k: ["Yes."] * 10 for k in items}
    right = {k: [f"{it['label'].capitalize()}." for it in v] for k, v in items.items()}
    table = pope_yes_no_table(items, {"base": always_yes, "BPO": right}, "base", n_boot=50)
    get = table.set_index(["model", "metric"])
    assert get.loc[("base", "yes_ratio"), "value"] == 100 and get.loc[("base", "accuracy"), "value"] == 50
    assert get.loc[("BPO", "yes_ratio"), "value"] == 50 and get.loc[("BPO", "accuracy"), "value"] == 100
    assert get.loc[("BPO", "accuracy"), "- base"] == 50 and get.loc[("base", "accuracy"), "- base"] == 0
    assert get.loc[("BPO", "yes_ratio"), "diff_hi"] < 0  # BPO says yes less on every resample
    with pytest.raises(ValueError, match="reference 'SFT'"):
        pope_yes_no_table(items, {"base": always_yes}, "SFT", n_boot=10)
