"""Test-wide settings: no network, and artefacts written to a temporary folder, never the repo's."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session", autouse=True)
def _isolated_artefacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpo")
    for name in ("DATA", "FIGURES", "RUNS"):
        os.environ[f"BPO_{name}_DIR"] = str(root / name.lower())
    yield root
