#!/usr/bin/env bash
# The GPU check of the LoRA trainer and the notebooks, for a machine with CUDA and no network.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]
#
# What it needs beside the repository (prepared on a machine with network):
#   .whl/       wheels the GPU machine lacks (papermill, ipykernel and their dependencies, datasets,
#               dill, multiprocess, gguf, platformdirs; transformers and peft at this repository's
#               versions): `pip download --no-deps --only-binary=:all: --python-version 3.12 ...`
#   .gpu/smol-lm/  SmolLM2's config.json and tokenizer files (not its weights), copied from
#               data/smol/lm/SmolLM2-135M-Instruct/
#   data/smol/preference/<key>/dataset   smol's saved pairs from 03 (for real token counts)
# Each step has its own time limit and the next runs anyway; results go to OUT_DIR (default $OUT).
out=${1:-${OUT:-gpu_check}}; mkdir -p "$out"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 MPLBACKEND=Agg TRANSFORMERS_NO_ADVISORY_WARNINGS=1
t0=$(date +%s)
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src
python3 -m ipykernel install --prefix /tmp/jup --name python3 >/dev/null && export JUPYTER_PATH=/tmp/jup/share/jupyter
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
  python3 -c "import torch, transformers, peft, papermill; print('torch', torch.__version__, 'transformers', transformers.__version__, 'peft', peft.__version__, torch.cuda.get_device_name())"
  nproc; echo "setup $(( $(date +%s) - t0 )) s"; } 2>&1 | tee "$out/env.txt"
pairs=$(dirname "$(ls data/smol/preference/*/dataset/report.json | head -1)")
s=$(date +%s); timeout 150 python3 -m pytest -q -p no:cacheprovider tests/test_tuning_cuda.py tests/test_tuning.py 2>&1 | tail -25 | tee "$out/pytest_tuning.txt"
echo "tuning tests $(( $(date +%s) - s )) s" | tee -a "$out/pytest_tuning.txt"
s=$(date +%s); timeout 200 python3 benchmarks/tuning_device.py --device cuda --lm-dir .gpu/smol-lm --pairs-dir "$pairs" 2>&1 | grep -v Warning | tail -12 | tee "$out/tuning_cuda.md"
echo "smol-shaped runs $(( $(date +%s) - s )) s" | tee -a "$out/tuning_cuda.md"
s=$(date +%s); timeout 420 python3 -m pytest -q -p no:cacheprovider --durations=8 tests/test_notebooks.py 2>&1 | tail -40 | tee "$out/pytest_notebooks.txt"
echo "notebook tests $(( $(date +%s) - s )) s; total $(( $(date +%s) - t0 )) s" | tee -a "$out/pytest_notebooks.txt"
