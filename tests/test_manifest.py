"""The reproduction manifest: what it records, the files each notebook wrote, failures, ``--seeds``,
``--only`` merging and :func:`bpo.manifest.trace`. Fake notebooks, nothing executed."""

import hashlib
import importlib.metadata
import json
import platform
import shutil
import subprocess
from datetime import datetime

import pytest

from bpo import reproduce
from bpo.manifest import PACKAGES, manifest_path, trace
from bpo.paths import PROJECT_ROOT


def _notebook(parameters: str) -> dict:
    cell = {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": [parameters],
            "outputs": [], "execution_count": None}
    return {"cells": [cell], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


@pytest.fixture
def fake(tmp_path, monkeypatch):
    """Two fake notebooks (only 01 declares n_seeds) in a tmp folder, figures and runs in tmp folders,
    and a ``run_notebook`` that writes ``<stem>.csv`` holding ``fake.content[stem]``."""
    monkeypatch.setenv("BPO_FIGURES_DIR", str(tmp_path / "figures"))
    monkeypatch.setenv("BPO_RUNS_DIR", str(tmp_path / "runs"))
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    (nbdir / "00_a.ipynb").write_text(json.dumps(_notebook('preset = "smol"\nseed = 0\n')))
    (nbdir / "01_b.ipynb").write_text(json.dumps(_notebook('preset = "smol"\nn_seeds = 1  # runs\n')))
    monkeypatch.setattr(reproduce, "NOTEBOOKS_DIR", nbdir)

    class Fake:
        content = {"00_a": b"a,b\n1,2\n", "01_b": b"c\n3\n"}
        calls: dict = {}
        fail: str | None = None

    def run_notebook(path, preset, parameters=None, progress=True):
        from bpo.paths import figures_dir
        Fake.calls[path.stem] = dict(parameters or {})
        (figures_dir() / f"{path.stem}.csv").write_bytes(Fake.content[path.stem])
        if path.stem == Fake.fail:
            raise RuntimeError("boom in the fake notebook")
        return reproduce.executed_path(path, preset)

    monkeypatch.setattr(reproduce, "run_notebook", run_notebook)
    return Fake


def _manifest(preset="tiny") -> dict:
    return json.loads(manifest_path(preset).read_text())


def _entry(data: dict, name: str) -> dict:
    return next(e for e in data["notebooks"] if e["name"] == name)


def _head() -> str | None:
    if shutil.which("git") is None:
        return None
    out = subprocess.run(["git", "-C", str(PROJECT_ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() if out.returncode == 0 else None


def test_manifest_records_the_run_and_the_files_each_notebook_wrote(fake):
    assert reproduce.main(["--preset", "tiny"]) == 0
    data = _manifest()
    assert data["preset"] == "tiny" and data["n_seeds"] is None and data["parameters"] == {}
    assert datetime.fromisoformat(data["started"]).utcoffset().total_seconds() == 0
    head = _head()
    if head is not None:
        assert data["git"]["commit"] == head and isinstance(data["git"]["dirty"], bool)
    else:
        assert data["git"]["commit"] is None and data["git"]["error"]
    assert set(data["packages"]) == {"python", *PACKAGES}
    assert data["packages"]["python"] == platform.python_version()
    assert data["packages"]["numpy"] == importlib.metadata.version("numpy")
    m = data["machine"]
    assert isinstance(m["platform"], str) and isinstance(m["logical_cores"], int) and m["logical_cores"] >= 1
    assert m["ram_bytes"] is None or m["ram_bytes"] > 0
    assert m["gpus"] is None or isinstance(m["gpus"], list)
    assert m["cpu_capability"] is None or isinstance(m["cpu_capability"], str)

    assert [e["name"] for e in data["notebooks"]] == ["00_a.ipynb", "01_b.ipynb"]
    for e in data["notebooks"]:
        assert e["status"] == "ok" and e["error"] is None
        assert isinstance(e["wall_s"], float) and e["wall_s"] >= 0
        assert e["executed"].endswith(e["name"]) and e["commit"] == data["git"]["commit"]
        assert e["started"] >= data["started"]
    # each file appears under the notebook that wrote it, and only there
    assert _entry(data, "00_a.ipynb")["outputs"] == [
        {"file": "00_a.csv", "sha256": hashlib.sha256(b"a,b\n1,2\n").hexdigest(), "bytes": 8}]
    assert _entry(data, "01_b.ipynb")["outputs"] == [
        {"file": "01_b.csv", "sha256": hashlib.sha256(b"c\n3\n").hexdigest(), "bytes": 4}]


def test_a_failing_notebook_is_recorded_as_failed_and_the_error_propagates(fake):
    fake.fail = "01_b"
    with pytest.raises(RuntimeError, match="boom in the fake notebook"):
        reproduce.main(["--preset", "tiny"])
    data = _manifest()
    assert _entry(data, "00_a.ipynb")["status"] == "ok"
    failed = _entry(data, "01_b.ipynb")
    assert failed["status"] == "failed" and "boom" in failed["error"] and failed["wall_s"] >= 0
    assert [o["file"] for o in failed["outputs"]] == ["01_b.csv"]  # what it wrote before failing


def test_seeds_go_only_to_notebooks_that_declare_n_seeds(fake):
    reproduce.main(["--preset", "tiny", "--seeds", "2"])
    assert "n_seeds" not in fake.calls["00_a"] and fake.calls["01_b"]["n_seeds"] == 2
    data = _manifest()
    assert data["n_seeds"] == 2
    assert _entry(data, "00_a.ipynb")["n_seeds"] is None and _entry(data, "01_b.ipynb")["n_seeds"] == 2

    reproduce.main(["--preset", "tiny"])  # without --seeds nothing is passed: the notebook's default applies
    assert "n_seeds" not in fake.calls["01_b"]
    assert _entry(_manifest(), "01_b.ipynb")["n_seeds"] == 1

    for bad in ("0", "-1", "two"):
        with pytest.raises(SystemExit):
            reproduce.main(["--preset", "tiny", "--seeds", bad])


def test_only_merges_into_the_existing_manifest(fake):
    reproduce.main(["--preset", "tiny"])
    first = _manifest()
    fake.content["01_b"] = b"c\n4\n"
    reproduce.main(["--preset", "tiny", "--only", "01"])
    merged = _manifest()
    assert _entry(merged, "00_a.ipynb") == _entry(first, "00_a.ipynb")
    assert _entry(merged, "01_b.ipynb")["outputs"][0]["sha256"] == hashlib.sha256(b"c\n4\n").hexdigest()
    # a run without --only starts afresh: an entry of a notebook it did not run is gone
    (reproduce.NOTEBOOKS_DIR / "01_b.ipynb").unlink()
    reproduce.main(["--preset", "tiny"])
    assert [e["name"] for e in _manifest()["notebooks"]] == ["00_a.ipynb"]


def test_trace_names_the_notebook_that_wrote_a_file(fake):
    with pytest.raises(FileNotFoundError, match="no manifest"):
        trace("00_a.csv", "tiny")
    reproduce.main(["--preset", "tiny"])
    found = trace("00_a.csv", "tiny")
    assert found["notebook"] == "00_a.ipynb" and found["status"] == "ok" and found["current"]
    assert found["sha256"] == hashlib.sha256(b"a,b\n1,2\n").hexdigest()
    assert found["commit"] == _manifest()["git"]["commit"]
    with pytest.raises(LookupError, match="nope.png"):
        trace("nope.png", "tiny")
