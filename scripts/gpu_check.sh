#!/usr/bin/env bash
# The prepared device check (benchmarks/gpu_check.py): on a GPU machine where only PyTorch and
# NumPy are installed (no SimpleITK, batchgenerators or acvl-utils), from a checkout, without installing it.
#   here:  .venv/bin/python -m benchmarks.gpu_check -prepare .gpu_check/phantom.tar.gz
#   there: bash scripts/gpu_check.sh            (writes $OUT or ./gpu_check_out: gpu_check.json, gpu_check.md)
# Extra arguments go to the check (e.g. --device cpu --quick for a smoke run here).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
PYTHON=${PYTHON:-python3}
if ! "$PYTHON" -c "import torch" 2>/dev/null && [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; fi
exec "$PYTHON" -m benchmarks.gpu_check -o "${OUT:-gpu_check_out}" -phantom .gpu_check/phantom.tar.gz "$@"
