"""Plain-language readings of scores say what the numbers show, whichever regime it is."""

import pandas as pd

from bpo.evaluation.report import read_regime, split_table


def _scores(chair_t, chair_a, rec_t, rec_a, pope_r, pope_adv, yes=50.0):
    rows = [("halbench", "typical", "CHAIR_i", chair_t), ("halbench", "atypical", "CHAIR_i", chair_a),
            ("halbench", "typical", "recall", rec_t), ("halbench", "atypical", "recall", rec_a),
            ("pope-random", "atypical", "accuracy", pope_r), ("pope-adversarial", "atypical", "accuracy", pope_adv),
            ("pope-adversarial", "atypical", "yes_ratio", yes), ("pope-random", "typical", "accuracy", pope_r),
            ("pope-adversarial", "typical", "accuracy", pope_adv), ("pope-adversarial", "typical", "yes_ratio", yes),
            ("halbench", "typical", "CHAIR_s", 10.0), ("halbench", "atypical", "CHAIR_s", 20.0)]
    return pd.DataFrame(rows, columns=["benchmark", "split", "metric", "value"])


def test_each_regime_is_named():
    assert "paper's regime holds" in read_regime(_scores(10, 40, 80, 60, 85, 70))
    assert "blind" in read_regime(_scores(50, 60, 5, 3, 50, 49))
    assert "near perfect" in read_regime(_scores(1, 2, 99, 98, 99, 98))
    assert "does **not**" in read_regime(_scores(40, 10, 80, 60, 70, 85))


def test_caveats_flag_prior_talk_and_yes_bias():
    text = read_regime(_scores(60, 96, 33, 3, 50, 47, yes=95))
    assert "Even on typical scenes" in text and "yes to 95 %" in text
    assert "Even on typical" not in read_regime(_scores(10, 40, 80, 60, 85, 70))


def test_split_table_puts_typical_and_atypical_side_by_side():
    table = split_table(_scores(10, 40, 80, 60, 85, 70))
    row = table[(table.benchmark == "halbench") & (table.metric == "CHAIR_i")].iloc[0]
    assert (row.typical, row.atypical, row["atypical - typical"]) == (10, 40, 30)


def test_split_table_keeps_a_metric_that_could_not_be_computed():
    scores = _scores(float("nan"), float("nan"), 0, 0, 50, 50)
    table = split_table(scores)
    assert len(table) == 6 and table[table.metric == "CHAIR_i"].typical.isna().all()
