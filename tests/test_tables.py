"""Markdown tables: a pipe inside a cell stays inside it."""

import pandas as pd

from bpo.tables import to_markdown


def test_a_pipe_in_a_cell_does_not_start_a_column():
    text = to_markdown(pd.DataFrame({"a": ["|x| / y"], "b": [1.25]}), ".1f")
    row = text.strip().splitlines()[-1]
    assert row == "| \\|x\\| / y | 1.2 |"
    assert row.replace("\\|", "").count("|") == 3  # two columns: three unescaped bars
