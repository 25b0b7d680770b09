"""The Figure 5 summary on hand-built probe frames whose answers are worked out by hand."""

import pandas as pd
import pytest

from bpo.probing import read_probing, takeover

# (image, step) -> (true, [prior nouns], [control nouns]) log-likelihoods
HAND = {
    (0, 0): (-2.0, [-1.0, -3.0], [-4.0, -6.0]),  # the prior's best (-1) beats the true noun (-2)
    (1, 0): (-1.0, [-2.0, -3.0], [-3.0, -5.0]),  # the true noun wins
    (0, 999): (-4.0, [-1.0, -2.0], [-4.0, -4.0]),
    (1, 999): (-3.0, [-2.0, -5.0], [-3.0, -3.0]),
}


def _frame(cases, place="pixels"):
    rows = []
    for (image, step), (true, prior, control) in cases.items():
        rows.append({"place": place, "image": image, "step": step, "object": "bear", "kind": "true", "logprob": true})
        rows += [{"place": place, "image": image, "step": step, "object": f"p{k}", "kind": "prior", "logprob": v}
                 for k, v in enumerate(prior)]
        rows += [{"place": place, "image": image, "step": step, "object": f"c{k}", "kind": "control", "logprob": v}
                 for k, v in enumerate(control)]
    return pd.DataFrame(rows)


def test_takeover_means_over_images_of_the_best_prior_noun_and_the_evidence():
    table = takeover(_frame(HAND))
    clean, noisy = table.loc[("pixels", 0)], table.loc[("pixels", 999)]
    # step 0: true (-2, -1), best prior (-1, -2), control means (-5, -4); evidence 3 and 3; the prior wins on image 0
    # two images: the evidence is 3 on both (a zero-width interval), the prior wins on one of two
    assert (clean.evidence_lo, clean.evidence_hi, clean["prior_wins_%_lo"], clean["prior_wins_%_hi"]) == (3, 3, 0, 100)
    assert clean[["true", "prior_best", "control", "evidence", "prior_wins_%"]].to_dict() == pytest.approx({"true": -1.5, "prior_best": -1.5, "control": -4.5, "evidence": 3.0,
                                             "prior_wins_%": 50.0})
    # step 999: true (-4, -3), best prior (-1, -2), controls (-4, -3): no evidence left, the prior wins on both
    assert noisy[["true", "prior_best", "control", "evidence", "prior_wins_%"]].to_dict() == pytest.approx({"true": -3.5, "prior_best": -1.5, "control": -3.5, "evidence": 0.0,
                                             "prior_wins_%": 100.0})


def test_read_probing_says_when_the_prior_takes_over():
    said = read_probing(takeover(_frame(HAND)))
    assert "on most images from step 999" in said and "As in the paper's Figure 5" in said
    assert "+3.00 [3.00, 3.00] -> +0.00 [0.00, 0.00] nats" in said
    always = {k: (v[0] - 5, v[1], v[2]) for k, v in HAND.items()}  # the true noun never wins
    assert "already on clean images" in read_probing(takeover(_frame(always)))
    never = {k: (0.0, v[1], v[2]) for k, v in HAND.items()}  # the true noun always wins
    said = read_probing(takeover(_frame(never)))
    assert "at no step" in said and "never overtakes" in said


def test_the_rise_is_paired_over_the_same_images():
    """Image 0's prior wins on the clean image and image 1's does not; at step 999 they swap. The
    share stays 50 %, and so does a rise read from the shares; paired per image the rise is
    (-100 + 100) / 2 = 0 with an interval that spans both images' changes."""
    swap = dict(HAND)
    swap[(0, 999)] = (-1.0, [-2.0], [-4.0])  # the true noun now wins on image 0
    swap[(1, 999)] = (-3.0, [-1.0], [-4.0])  # the prior now wins on image 1
    table = takeover(_frame(swap))
    noisy = table.loc[("pixels", 999)]
    assert (noisy["prior_wins_%"], noisy["prior_rise_%"]) == (50.0, 0.0)
    assert (noisy["prior_rise_%_lo"], noisy["prior_rise_%_hi"]) == (-100.0, 100.0)
    # HAND: the prior already won on image 0, gains image 1: +50 points, each image's change 0 or +100
    rise = takeover(_frame(HAND)).loc[("pixels", 999)]
    assert (rise["prior_rise_%"], rise["prior_rise_%_lo"], rise["prior_rise_%_hi"]) == (50.0, 0.0, 100.0)
    assert table.loc[("pixels", 0), "prior_rise_%"] == 0.0  # the first step against itself
    assert "a rise of +50 points [0, 100]" in read_probing(takeover(_frame(HAND)))
