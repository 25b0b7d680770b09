"""Claims table: verdicts follow the intervals (every part for, one part against, or in between),
the table is read from the numbers, and bad evidence is refused with the claim named."""

import pytest

from bpo.claims import Claim, Part, claim_verdict, claims_table

NAN = float("nan")


def chair(lo, hi, value=None):
    """'BPO - base CHAIR_i': a fall supports "BPO hallucinates less"."""
    return Part("BPO - base CHAIR_i", (lo + hi) / 2 if value is None else value, lo, hi, -1)


def pope(lo, hi):
    return Part("BPO - base POPE accuracy", (lo + hi) / 2, lo, hi, 1)


def test_one_part_verdicts_follow_the_interval():
    assert claim_verdict([chair(-9.0, -2.0)]) == "holds"
    assert claim_verdict([chair(2.0, 9.0)]) == "does not hold"
    assert claim_verdict([chair(-3.0, 1.0)]) == "unclear (CI overlaps 0)"
    assert claim_verdict([chair(-3.0, 0.0)]) == "unclear (CI overlaps 0)"  # touching 0 is not clear of it
    assert claim_verdict([pope(1.0, 4.0)]) == "holds" and claim_verdict([pope(-4.0, -1.0)]) == "does not hold"
    assert claim_verdict([chair(NAN, NAN, value=-5.0)]) == "unclear (no CI)"
    assert claim_verdict([("plain tuple", 1.0, 0.5, 1.5, 1)]) == "holds"


def test_two_parts_need_both_for_and_fail_on_one_against():
    assert claim_verdict([chair(-9.0, -2.0), pope(1.0, 4.0)]) == "holds"
    assert claim_verdict([chair(-9.0, -2.0), pope(-1.0, 4.0)]) == "unclear (CI overlaps 0)"
    assert claim_verdict([chair(-9.0, -2.0), pope(-4.0, -1.0)]) == "does not hold"
    assert claim_verdict([chair(-3.0, 1.0), pope(-4.0, -1.0)]) == "does not hold"
    assert claim_verdict([chair(NAN, NAN), pope(-4.0, -1.0)]) == "does not hold"
    assert claim_verdict([chair(NAN, NAN), pope(1.0, 4.0)]) == "unclear (no CI)"


def test_the_table_prints_the_evidence_and_its_verdict_moves_with_the_numbers():
    def table(pope_lo):
        return claims_table([
            Claim("a", "BPO hallucinates less than the base model.", [chair(-9.04, -2.0, value=-5.54)]),
            Claim("b", "BPO answers POPE better.", [pope(pope_lo, 4.0)]),
        ])

    t = table(1.0)
    assert list(t.columns) == ["claim", "statement", "evidence", "verdict"]
    assert list(t.claim) == ["a", "b"] and t.statement[1] == "BPO answers POPE better."
    assert t.evidence[0] == "BPO - base CHAIR_i: -5.5 [-9.0, -2.0]"
    assert list(t.verdict) == ["holds", "holds"]
    assert list(table(-2.0).verdict) == ["holds", "unclear (CI overlaps 0)"]
    two = claims_table([Claim("c", "both", [chair(NAN, NAN, value=-1.0), pope(1.0, 3.0)])])
    assert two.evidence[0] == "BPO - base CHAIR_i: -1.0; BPO - base POPE accuracy: 2.0 [1.0, 3.0]"
    assert two.verdict[0] == "unclear (no CI)"


def test_bad_evidence_is_refused_with_the_claim_and_part_named():
    with pytest.raises(ValueError, match=r"claim 'd', part 1 \(POPE\): better must be \+1 or -1, got 0"):
        Claim("d", "x", [chair(-2.0, -1.0), ("POPE", 1.0, 0.0, 2.0, 0)])
    with pytest.raises(ValueError, match=r"claim 'e', part 0 \(BPO - base CHAIR_i\): lo 3.0 is above hi 1.0"):
        Claim("e", "x", [chair(3.0, 1.0, value=2.0)])
    with pytest.raises(ValueError, match="claim 'f': needs at least one part"):
        Claim("f", "x", [])
    with pytest.raises(ValueError, match="claim 'g', part 0: expected"):
        Claim("g", "x", [("label", 1.0, 0.0, 2.0)])
    with pytest.raises(ValueError, match=r"claim id\(s\) \['a'\] used more than once"):
        claims_table([Claim("a", "x", [chair(-2.0, -1.0)]), Claim("a", "y", [chair(-2.0, -1.0)])])
