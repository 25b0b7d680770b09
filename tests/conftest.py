"""Test-wide settings: no network, and artefacts written to a temporary folder, never the repo's."""

import os

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
# Under pytest-xdist (`make test` runs a worker per core) each worker computes on one thread, so the
# workers do not fight over the cores; notebook kernels and launched processes inherit the setting.
if os.environ.get("PYTEST_XDIST_WORKER"):
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"


@pytest.fixture(scope="session", autouse=True)
def _isolated_artefacts(tmp_path_factory):
    root = tmp_path_factory.mktemp("bpo")
    for name in ("DATA", "FIGURES", "RUNS"):
        os.environ[f"BPO_{name}_DIR"] = str(root / name.lower())
    yield root


@pytest.fixture(scope="module")
def image_dependent_tiny():
    """A tiny LLaVA with larger random weights, so its answers depend on the image; one thread, as
    tiny models run faster alone than oversubscribed. Built once per test module."""
    import dataclasses

    import torch

    from bpo.models.llava import build_model
    from bpo.presets import model_config
    from bpo.world.sources import build_corpus

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # the small tower (2 layers, 128 wide) the tests were measured with: random wide towers amplify
    # even step-0 noise, and this one is faster
    small = dataclasses.replace(model_config("tiny"), vision_hidden=128, vision_layers=2)
    model, processor = build_model(small, build_corpus(300, 0)["text"])
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.ndim == 2:
                p.normal_(0.0, 0.15, generator=g)
    yield model.eval(), processor
    torch.set_num_threads(threads)
