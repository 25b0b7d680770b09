"""Preference data for BPO: candidates, DPO pairs in trl's format, and the released JSON records."""

from bpo.preference.dataset import (
    DROP_REASONS,
    NEGATIVE_TYPES,
    PAIR_FEATURES,
    RELEASED_TYPES,
    Candidate,
    Negative,
    PairConfig,
    PairReport,
    build_pairs,
    export_bpo_json,
    from_released_type,
    import_bpo_json,
    pair_statistics,
    to_released_type,
)

__all__ = [
    "DROP_REASONS", "NEGATIVE_TYPES", "PAIR_FEATURES", "RELEASED_TYPES", "Candidate", "Negative",
    "PairConfig", "PairReport", "build_pairs", "export_bpo_json", "from_released_type",
    "import_bpo_json", "pair_statistics", "to_released_type",
]
