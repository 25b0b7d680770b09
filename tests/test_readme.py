"""README tables copied from figures/: found between their markers, refreshed from their files, and
reported when out of date; the repository's own README is checked against its figures."""

import pytest

from bpo.paths import PROJECT_ROOT
from bpo.readme import blocks, main, refreshed, stale

README = """# Title

Prose before.

<!-- table: figures/a.md -->
| x | y |
| --- | --- |
| 1 | old |
<!-- /table -->

Prose between, with a number 3.

<!-- table: figures/b.md -->
| z |
| --- |
| 9 |
<!-- /table -->
Last line.
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "a.md").write_text("| x | y |\n| --- | --- |\n| 1 | new |\n| 2 | added |\n")
    (tmp_path / "figures" / "b.md").write_text("| z |\n| --- |\n| 9 |\n")
    (tmp_path / "README.md").write_text(README)
    return tmp_path


def test_blocks_are_found_with_their_file_and_line():
    found = blocks(README)
    assert [(b.file, b.line) for b in found] == [("figures/a.md", 5), ("figures/b.md", 13)]
    assert found[1].body == "| z |\n| --- |\n| 9 |"


def test_only_the_changed_table_is_stale(project):
    assert stale(README, project) == ["README.md:5: the table differs from figures/a.md"]


def test_refresh_replaces_the_table_and_keeps_every_other_line(project):
    out = refreshed(README, project)
    assert out == README.replace("| 1 | old |", "| 1 | new |\n| 2 | added |")
    assert stale(out, project) == []


def test_the_command_checks_then_refreshes(project, capsys):
    readme = project / "README.md"
    assert main(["--check", "--readme", str(readme)]) == 1
    assert "README.md:5" in capsys.readouterr().out
    assert main(["--readme", str(readme)]) == 0
    assert main(["--check", "--readme", str(readme)]) == 0
    assert "| 2 | added |" in readme.read_text()


@pytest.mark.parametrize("text, message", [
    ("<!-- table: figures/a.md -->\n| x |\n", "README.md:1: the table of figures/a.md is never closed"),
    ("| x |\n<!-- /table -->\n", "README.md:2: '<!-- /table -->' closes no table"),
    ("<!-- table: figures/a.md -->\n<!-- table: figures/b.md -->\n", "README.md:2: a table marker opens inside"),
])
def test_broken_markers_name_their_line(text, message):
    with pytest.raises(ValueError, match=message):
        blocks(text)


def test_a_missing_figure_file_names_the_readme_line(project):
    with pytest.raises(FileNotFoundError, match="README.md:1: the table copies figures/gone.md"):
        stale("<!-- table: figures/gone.md -->\n<!-- /table -->\n", project)


def test_the_repository_readme_quotes_the_latest_figures():
    text = (PROJECT_ROOT / "README.md").read_text()
    assert len(blocks(text)) >= 5, "the README's results tables should be marked copies of figures/"
    assert stale(text) == [], "run `python -m bpo.readme` after a new reproduction"


def test_reproduce_says_when_the_readme_quotes_old_tables(project, monkeypatch, capsys):
    import bpo.reproduce as reproduce

    monkeypatch.setattr(reproduce, "PROJECT_ROOT", project)
    reproduce._say_if_readme_is_stale()
    assert "1 README tables differ" in capsys.readouterr().out
    (project / "README.md").write_text(refreshed(README, project))
    reproduce._say_if_readme_is_stale()
    assert capsys.readouterr().out == ""
    (project / "README.md").write_text("<!-- table: figures/gone.md -->\n<!-- /table -->\n")
    reproduce._say_if_readme_is_stale()  # a finished run does not fail on a broken README
    assert "cannot be checked" in capsys.readouterr().out
