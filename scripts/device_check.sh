#!/usr/bin/env bash
# The GPU checks, as one prepared run for a machine with a CUDA device (the device tool's `run`, or any GPU box):
#   bash scripts/device_check.sh            # about 2 minutes; writes device_check.log (and to $OUT when set)
# Runs the CUDA tests (alignment, features, training) and the CUDA section of the alignment benchmark
# (50,000 x 2,048 on the device; target < 0.05 s). Uses the machine's python3 with PYTHONPATH=. so no install or
# network is needed where torch, numpy, scipy, scikit-learn and tqdm are present.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-.}/device_check.log"
PY="${PYTHON:-python3}"
{
  echo "== $(date -u) $(uname -m)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: not found"
  PYTHONPATH=. "$PY" -c "import torch, numpy, scipy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
  echo "== CUDA tests"
  PYTHONPATH=. "$PY" -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/test_alignment.py tests/test_features.py tests/test_training.py -k "cuda" -rs
  echo "== CUDA benchmark"
  PYTHONPATH=. "$PY" benchmarks/bench_alignment.py --only cuda
} 2>&1 | tee "$log"
