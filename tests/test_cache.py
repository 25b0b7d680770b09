"""Stage caches: a key changes with the parameters and with the code that makes the artefact."""

import sys

import pytest

from bpo import cache
from bpo.cache import STAGE_CODE, code_version, stage_dir


@pytest.fixture
def fake_stage(tmp_path, monkeypatch):
    """A stage made by a module of our own, importable from tmp_path."""
    module = tmp_path / "fake_stage_code.py"
    module.write_text("VERSION = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(STAGE_CODE, "fake", ("fake_stage_code",))
    monkeypatch.setenv("BPO_DATA_DIR", str(tmp_path / "data"))
    yield module
    sys.modules.pop("fake_stage_code", None)


def test_key_changes_when_the_producing_code_changes(fake_stage):
    before = stage_dir("tiny", "fake", {"n": 1})
    assert stage_dir("tiny", "fake", {"n": 1}) == before  # same code, same parameters: same artefact
    assert stage_dir("tiny", "fake", {"n": 2}) != before
    fake_stage.write_text("VERSION = 2\n")
    after = stage_dir("tiny", "fake", {"n": 1})
    assert after != before and after.parent == before.parent


def test_comments_blank_lines_and_docstrings_keep_the_key_and_code_changes_do_not(fake_stage):
    fake_stage.write_text('"""A stage."""\n\ndef f():\n    """Old words."""\n    return "a"  # why\n')
    before = stage_dir("tiny", "fake", {"n": 1})
    fake_stage.write_text('"""Another docstring."""\ndef f():\n\n    """New words."""\n    # a comment\n    return "a"\n')
    assert stage_dir("tiny", "fake", {"n": 1}) == before
    fake_stage.write_text('"""A stage."""\n\ndef f():\n    """Old words."""\n    return "b"  # why\n')
    assert stage_dir("tiny", "fake", {"n": 1}) != before  # a string that is not a docstring is code
    fake_stage.write_text('"""A stage."""\n\ndef f():\n    return "a"\n    """Old words."""\n')
    assert stage_dir("tiny", "fake", {"n": 1}) != before  # the statements' order is code


def test_a_package_counts_with_all_its_modules(tmp_path, monkeypatch):
    package = tmp_path / "fake_stage_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "deep.py").write_text("A = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_version(("fake_stage_pkg",))
    (package / "deep.py").write_text("A = 2\n")
    assert code_version(("fake_stage_pkg",)) != before
    sys.modules.pop("fake_stage_pkg", None)


def test_every_stage_names_real_code_and_unknown_stages_are_refused():
    for stage, modules in STAGE_CODE.items():
        assert len(code_version(modules)) == 12, stage
    with pytest.raises(ValueError, match="STAGE_CODE"):
        stage_dir("tiny", "nowhere", {})
    with pytest.raises(ValueError, match="not an importable module"):
        cache.code_version(("bpo.no_such_module",))


def test_sub_stages_share_their_kind_s_code():
    """"eval/base" and "eval/bpo" are both made by the evaluation code."""
    assert cache.stage_params("eval/base", {})["code"] == cache.stage_params("eval/bpo", {})["code"]
