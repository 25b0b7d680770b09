"""The paper's comparisons: pooled splits, the tables' metrics in order, and claims (a) and (e)
read from 02's and 04's tables; plus the claims' verdicts following the paired tests."""

import numpy as np
import pandas as pd
import pytest

from bpo.comparison import (FLAT_SHARE, absent_objects, compare, figure6_parts, paper_claims, pooled, takeover_parts,
                            values_table)
from bpo.claims import claims_table
from bpo.world.scene import Scene, SceneObject

PARK = Scene("park-1", "park", (SceneObject("dog", "brown", 2, "top", "left"),))


def halbench_items(n):
    return [{"item_id": f"h{i}", "scene": PARK.to_json(), "question": "Describe the image."} for i in range(n)]


def test_pooled_adds_all_scenes_in_key_order():
    got = pooled({"pope-random/typical": [1, 2], "pope-random/atypical": [3], "mmvet/typical": [4]})
    assert got["pope-random/all"] == [1, 2, 3] and got["mmvet/all"] == [4]
    assert got["pope-random/typical"] == [1, 2]  # the splits stay


def test_values_and_paired_tables_cover_the_splits_and_read_chair_from_the_answers():
    items = {"halbench/typical": halbench_items(4), "halbench/atypical": halbench_items(4)}
    truthful = {k: ["There are two brown dogs."] * 4 for k in items}
    lying = {k: ["There are two brown dogs and a cat."] * 4 for k in items}
    values = values_table(items, {"base": [lying], "BPO": [truthful]}, n_boot=50)
    chair = values[(values.metric == "CHAIR_i")].set_index(["model", "split"]).value
    # "dog" and "cat" named, "cat" absent: CHAIR_i 50 for the liar in every split, 0 for the other
    assert chair["base", "all"] == 50.0 and chair["BPO", "atypical"] == 0.0
    assert list(values[values.model == "base"].split[:3]) == ["typical", "atypical", "all"]
    paired = compare(items, [lying], [truthful], n_boot=50).set_index(["metric", "split"])
    assert paired.loc[("CHAIR_i", "all"), "diff"] == -50.0
    assert paired.loc[("CHAIR_i", "all"), "verdict"] == "better"  # every resample: -50, lower is better


def takeover(wins, lo, hi, rise=(60.0, 40.0, 80.0)):
    frame = pd.DataFrame({"place": ["pixels", "pixels", "features"], "step": [0, 999, 999],
                          "prior_wins_%": [10.0, wins, 90.0], "prior_wins_%_lo": [5.0, lo, 80.0],
                          "prior_wins_%_hi": [15.0, hi, 99.0]})
    if rise is not None:
        for end, v in zip(("", "_lo", "_hi"), rise):
            frame[f"prior_rise_%{end}"] = [0.0, v, 5.0]
    return frame


def test_takeover_reads_the_rise_and_the_majority_at_the_strongest_noise_of_the_place():
    rise, majority = takeover_parts(takeover(70.0, 55.0, 85.0))
    assert (rise.value, rise.lo, rise.hi, rise.better) == (60.0, 40.0, 80.0, 1)
    assert "step 999 minus step 0" in rise.label
    assert (majority.value, majority.lo, majority.hi, majority.better) == (20.0, 5.0, 35.0, 1)
    with pytest.raises(ValueError, match="projector"):
        takeover_parts(takeover(70.0, 55.0, 85.0), "projector")


def test_a_prior_that_already_won_on_clean_images_is_no_takeover():
    """A majority at the strongest noise with no rise over the clean images (the prior won there
    already) does not make claim (a) hold; a table saved without the rise leaves it without a CI."""
    from bpo.claims import Claim

    def verdict(frame):
        return claims_table([Claim("a", "takeover", takeover_parts(frame))]).verdict[0]

    assert verdict(takeover(84.0, 72.0, 97.0)) == "holds"
    assert verdict(takeover(84.0, 72.0, 97.0, rise=(0.0, 0.0, 0.0))) == "unclear (CI overlaps 0)"
    assert verdict(takeover(84.0, 72.0, 97.0, rise=(-20.0, -35.0, -5.0))) == "does not hold"
    old = takeover_parts(takeover(84.0, 72.0, 97.0, rise=None))
    assert "re-run 02" in old[0].label and verdict(takeover(84.0, 72.0, 97.0, rise=None)) == "unclear (no CI)"


def shape(pos_lo, pos_hi, neg=(-3.0, -4.0, -2.0), sft=(0.1, 0.05, 0.15)):
    return pd.DataFrame({"curve": ["BPO positives", "BPO negatives", "SFT ground truth"],
                         "change": [(pos_lo + pos_hi) / 2, neg[0], sft[0]], "lo": [pos_lo, neg[1], sft[1]],
                         "hi": [pos_hi, neg[2], sft[2]]})


def test_flat_positives_are_an_equivalence_test_against_the_fall():
    # fall 3: flat means the positives' whole interval within 0.75 of 0
    flat = figure6_parts(shape(-0.5, 0.3))[1]
    assert flat.lo == pytest.approx(-FLAT_SHARE) and flat.hi == pytest.approx(0.5 / 3 - FLAT_SHARE)
    assert claims_table([_claim(shape(-0.5, 0.3))]).verdict[0] == "holds"
    assert claims_table([_claim(shape(-1.5, -1.0))]).verdict[0] == "does not hold"  # positives fell by a third
    assert claims_table([_claim(shape(-0.9, 0.1))]).verdict[0].startswith("unclear")  # could be 0.9 of 3


def _claim(frame):
    from bpo.claims import Claim

    return Claim("e", "shape", figure6_parts(frame))


def paired_frame(mmvet, chair_all, chair_atypical):
    rows = [("mmvet", "Total", "all", *mmvet), ("halbench", "CHAIR_i", "all", *chair_all),
            ("halbench", "CHAIR_i", "atypical", *chair_atypical)]
    return pd.DataFrame(rows, columns=["benchmark", "metric", "split", "diff", "diff_lo", "diff_hi"])


def test_claims_follow_the_numbers():
    good = paired_frame((3, 1, 5), (-4, -6, -2), (-5, -8, -1))
    mixed = paired_frame((3, 1, 5), (-4, -6, 1), (-5, -8, -1))
    worse = paired_frame((-3, -5, -1), (-4, -6, -2), (-5, -8, -1))
    table = claims_table(paper_claims(takeover(70, 55, 85), good, mixed, worse, shape(-0.5, 0.3)))
    assert list(table.verdict) == ["holds", "holds", "unclear (CI overlaps 0)", "does not hold", "holds"]
    missing = claims_table(paper_claims(None, good, good, None, None))
    assert list(missing.verdict[[0, 3, 4]]) == ["unclear (no CI)"] * 3


def test_absent_objects_are_named_and_not_negated():
    assert absent_objects("There is a dog and a cat, but no bird.", {"dog"}) == ["cat"]


def test_compact_table_has_one_row_per_model_and_blanks_for_unread_benchmarks():
    from bpo.comparison import compact_table

    values = pd.DataFrame([("base", "mmvet", "all", "Total", 30.0, 25.0, 35.0),
                           ("BPO", "mmvet", "all", "Total", 40.0, 35.0, 45.0),
                           ("BPO", "halbench", "all", "CHAIR_i", 10.0, 8.0, 12.0),
                           ("BPO", "halbench", "typical", "CHAIR_i", 99.0, 98.0, 100.0)],
                          columns=["model", "benchmark", "split", "metric", "value", "lo", "hi"])
    t = compact_table(values, ["base", "BPO"]).set_index("model")
    assert t.loc["BPO", "MM-Vet Total"] == "40.0 [35.0, 45.0]" and t.loc["BPO", "CHAIR_i ↓"] == "10.0 [8.0, 12.0]"
    assert t.loc["base", "CHAIR_i ↓"] == "" and t.loc["base", "MM-Vet Total"] == "30.0 [25.0, 35.0]"
