"""The paper's claims, each judged from measured differences and their intervals, never typed in.

A claim's evidence is a list of parts, each a difference with its 95 % interval and ``better``: the
sign of the difference that supports the claim (+1: a rise supports it; -1: a fall does, as for
"BPO - base CHAIR_i"). The verdict reads the intervals only:

- "holds": every part's interval lies strictly on its supporting side of 0;
- "does not hold": some part's interval lies strictly on the other side (one part against is enough);
- "unclear (no CI)": otherwise, when some part has no interval (NaN: not measured, too few items);
- "unclear (CI overlaps 0)": otherwise: some interval contains 0 (touching 0 counts as containing it).

All verdicts that are neither "holds" nor "does not hold" start with "unclear".
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import NamedTuple

import pandas as pd

from bpo.evaluation.uncertainty import with_ci

HOLDS, DOES_NOT_HOLD = "holds", "does not hold"
UNCLEAR_OVERLAP, UNCLEAR_NO_CI = "unclear (CI overlaps 0)", "unclear (no CI)"


class Part(NamedTuple):
    """One piece of evidence: a difference ``value`` with interval [lo, hi]; ``better`` is the sign
    (+1 or -1) that supports the claim."""
    label: str
    value: float
    lo: float
    hi: float
    better: int


@dataclass
class Claim:
    """A claim: ``id`` ("a"), its statement ``text`` and its ``evidence`` (Parts or 5-tuples)."""
    id: str
    text: str
    evidence: list

    def __post_init__(self):
        if not self.evidence:
            raise ValueError(f"claim {self.id!r}: needs at least one part of evidence")
        parts = []
        for i, part in enumerate(self.evidence):
            if not isinstance(part, (tuple, list)) or len(part) != len(Part._fields):
                raise ValueError(f"claim {self.id!r}, part {i}: expected {Part._fields}, got {part!r}")
            p = Part(*part)
            if isinstance(p.better, bool) or p.better not in (1, -1):
                raise ValueError(f"claim {self.id!r}, part {i} ({p.label}): better must be +1 or -1, got {p.better!r}")
            if math.isfinite(p.lo) and math.isfinite(p.hi) and p.lo > p.hi:
                raise ValueError(f"claim {self.id!r}, part {i} ({p.label}): lo {p.lo} is above hi {p.hi}")
            parts.append(p)
        self.evidence = parts


def _side(part: Part) -> int:
    """+1 if the interval supports the claim, -1 if it opposes it, 0 if it holds 0 or is missing."""
    if not (math.isfinite(part.lo) and math.isfinite(part.hi)):
        return 0
    if part.lo > 0:
        return part.better
    if part.hi < 0:
        return -part.better
    return 0


def claim_verdict(parts) -> str:
    """The verdict of the module docstring for a list of Parts (or 5-tuples)."""
    parts = [Part(*p) for p in parts]
    if not parts:
        raise ValueError("claim_verdict: no parts of evidence")
    sides = [_side(p) for p in parts]
    if -1 in sides:
        return DOES_NOT_HOLD
    if all(s == 1 for s in sides):
        return HOLDS
    if any(not (math.isfinite(p.lo) and math.isfinite(p.hi)) for p in parts):
        return UNCLEAR_NO_CI
    return UNCLEAR_OVERLAP


def claims_table(claims: list[Claim], digits: int = 1) -> pd.DataFrame:
    """One row per claim: claim (id), statement, evidence ('label: value [lo, hi]; ...'), verdict."""
    ids = [c.id for c in claims]
    repeated = sorted({i for i in ids if ids.count(i) > 1})
    if repeated:
        raise ValueError(f"claims_table: claim id(s) {repeated} used more than once")
    rows = [{"claim": c.id, "statement": c.text,
             "evidence": "; ".join(f"{p.label}: {with_ci(p.value, p.lo, p.hi, digits)}" for p in c.evidence),
             "verdict": claim_verdict(c.evidence)} for c in claims]
    return pd.DataFrame(rows, columns=["claim", "statement", "evidence", "verdict"])
