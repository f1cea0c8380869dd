#!/usr/bin/env bash
# The GPU checks, as one prepared run for a machine with a CUDA device (the device tool's `run`, or any GPU box):
#   bash scripts/device_check.sh            # about 6-8 minutes; writes device_check.log (and to $OUT when set)
# Runs the CUDA tests (alignment, features, training, scores), the CUDA sections of the alignment and scores benchmarks
# (50,000 x 2,048 on the device; target < 0.05 s) and repalign.networks.pretrain on a generated ImageFolder (NCCL, one
# process per GPU, AMP; resnet18 and t2t_vit, about 1 minute: images/s per epoch, resume, the checkpoint loads).
# Then the rehearsal of make paper's notebooks 08-11 on the device (rehearsal_check, below).
# Uses the machine's python3 with PYTHONPATH=. so no install or network is needed where torch, numpy, scipy,
# scikit-learn and tqdm are present; pure-Python extras (vit-pytorch and einops for t2t_vit) are picked up from
# build/device_vendor/ when the machine lacks them (copy them there from a venv and carry that folder).
# Sections do not stop each other: a failure is printed and the next section runs.
set -uo pipefail
cd "$(dirname "$0")/.."
log="${OUT:-.}/device_check.log"
PY="${PYTHON:-python3}"
export PYTHONPATH=".${PYTHONPATH:+:$PYTHONPATH}"
[ -d build/device_vendor ] && export PYTHONPATH="$PYTHONPATH:$PWD/build/device_vendor"

# repalign.networks.pretrain on the GPU: 1 process per GPU under torchrun (NCCL), AMP, 2,000 generated 64 px images in 10
# classes trained at 224 px, 3 epochs per arch (the epoch lines give images/s; epoch 1 includes warm-up); then
# the finished run is started again (must do nothing) and the checkpoint is loaded with load_pretrained.
pretrain_check() {
  echo "== pretrain (torch.distributed, NCCL, AMP, a generated ImageFolder)"
  local tmp ngpu arch out size="${PRETRAIN_CHECK_SIZE:-224}" n="${PRETRAIN_CHECK_N:-200}" batch="${PRETRAIN_CHECK_BATCH:-128}"
  tmp="$(mktemp -d)"
  ngpu="$("$PY" -c 'import torch; print(max(1, torch.cuda.device_count()))')"
  timeout 60 "$PY" - "$tmp/data" "$n" <<'PYEOF' || return 1
import sys, numpy as np
from pathlib import Path
from PIL import Image
rng = np.random.default_rng(0)
for split, n in (("train", int(sys.argv[2])), ("val", max(1, int(sys.argv[2]) // 10))):
    for k in range(10):
        d = Path(sys.argv[1]) / split / f"class{k}"
        d.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            a = rng.random((64, 64, 3)); a[..., k % 3] += 0.3 * (k + 1) / 10
            Image.fromarray((a / a.max() * 255).astype(np.uint8)).save(d / f"{i}.png")
print("generated", sys.argv[1])
PYEOF
  for arch in resnet18 t2t_vit; do
    out="$tmp/run_$arch"
    echo "-- $arch: torchrun --nproc_per_node=$ngpu, global batch $batch, $size px, amp auto"
    timeout 150 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$ngpu" -m repalign.networks.pretrain \
      --arch "$arch" --data "$tmp/data" --out "$out" --epochs 3 --batch-size "$batch" --image-size "$size" \
      --workers 8 --no-progress || { echo "$arch: pretrain FAILED"; continue; }
    timeout 60 "$PY" -m torch.distributed.run --standalone --nproc_per_node="$ngpu" -m repalign.networks.pretrain \
      --arch "$arch" --data "$tmp/data" --out "$out" --epochs 3 --batch-size "$batch" --image-size "$size" \
      --workers 8 --no-progress | grep -q "nothing to do" && echo "$arch: finished run not redone: ok" \
      || echo "$arch: re-run of a finished run FAILED"
    timeout 60 "$PY" - "$out" <<'PYEOF' || echo "$arch: load_pretrained FAILED"
import sys, torch
from repalign.networks.pretrain import checkpoint_info, load_pretrained
info = checkpoint_info(sys.argv[1])
device = "cuda" if torch.cuda.is_available() else "cpu"
size = int(info["config"]["image_size"])
model = load_pretrained(sys.argv[1], map_location=device).eval()
with torch.no_grad():
    out = model(torch.zeros(2, 3, size, size, device=device))
print(f"load_pretrained ok: {info['config']['arch']} epoch {info['epoch']} done {info['done']} amp {info['config']['amp']}"
      f" world {info['world_size']} output {tuple(out.shape)} provenance torch {info['provenance']['torch']}")
PYEOF
  done
  rm -rf "$tmp"
}

# make paper's code paths on the GPU (issue #23): the rehearsal's 08-11 (generated data in the real formats, random
# weight files, 09's tiny checkpoints) through the runner at the rehearsal scale, device: auto -> cuda; prints each
# notebook's wall time. Needs papermill and nbclient on the machine (or in build/device_vendor).
rehearsal_check() (
  echo "== rehearsal 08-11 on the device (generated data, tiny sizes, device: auto)"
  local r="$PWD/build/rehearsal" nb start
  export REPALIGN_DATA="$r/data" TORCH_HOME="$r/torch" REPALIGN_CACHE="$r/cache" HF_HUB_OFFLINE=1
  timeout 300 "$PY" -m repalign.run.rehearsal prepare --root build/rehearsal --steps data,weights,checkpoints || return 1
  for nb in 08 09 10 11; do
    start=$SECONDS
    timeout 300 "$PY" -m repalign run "$nb" --scale rehearsal --name "device-check-$nb" >/dev/null \
      && echo "rehearsal $nb on the device: $((SECONDS - start)) s" || echo "rehearsal $nb FAILED"
  done
)

{
  echo "== $(date -u) $(uname -m)"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || echo "nvidia-smi: not found"
  PYTHONPATH=. "$PY" -c "import torch, numpy, scipy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__, 'scipy', scipy.__version__)"
  echo "== CUDA tests"
  PYTHONPATH=. "$PY" -m pytest -q -p no:cacheprovider -o addopts="" \
    tests/test_alignment.py tests/test_features.py tests/test_training.py -k "cuda" -rs
  echo "== CUDA benchmark"
  PYTHONPATH=. "$PY" benchmarks/bench_alignment.py --only cuda
  echo "== transferability scores on CUDA (tests and benchmark)"
  PYTHONPATH=. "$PY" -m pytest -q -p no:cacheprovider -o addopts="" tests/test_scores.py -k cuda -rs
  PYTHONPATH=. timeout 180 "$PY" benchmarks/bench_scores.py --only cuda || echo "bench_scores FAILED"
  pretrain_check || echo "pretrain section FAILED (exit $?)"
  rehearsal_check || echo "rehearsal section FAILED (exit $?)"
} 2>&1 | tee "$log"
