"""Benchmark: the cost of the pinned numerical code paths (``repalign.core.numerics``) against the host's own choice.

Setting (issue 21): the same workload in fresh processes, once with the host's choice (one thread, as ``make
replicate`` runs every notebook; nothing else set) and once under :func:`repalign.core.numerics.pinned_environment`
(MKL's COMPATIBLE branch, ATen and oneDNN at AVX2, OpenBLAS's Haswell kernels, NumPy without its AVX-512 loops, one
thread). The workload is what the replicate notebooks spend their time on, uncached:

- ``mlp``: ``layerwise.train_and_measure`` on embedded MNIST 3 vs 8, 500 + 500 images, the demo's MLP
  (784-128-128-128-1, Adam 1e-3, batch 64), 3 seeds x 30 epochs, every layer measured before and after (00-06);
- ``cnn``: ``small_cnn`` trained 5 epochs on 2,000 embedded Fashion-MNIST images, 10 classes (09, 10);
- ``measure``: ``spectrum`` of (5,000, 1,024) float64 features with 10 one-vs-rest targets (the measure, 07, 08, 11).

The runs alternate (host, pinned, host, ...) ``--repeats`` times; the best time of each part is reported (the CPU
may be shared), with the ratio pinned / host and a hash of each part's numbers (they differ: the pinned paths are
other code). Run: ``python benchmarks/bench_numerics.py [--repeats 2]`` (about a minute and a half on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys

from repalign.core.numerics import THREAD_VARIABLES, pinned_environment

WORKLOAD = r"""
import hashlib, json, time
import numpy as np
import torch
import repalign as ra
from repalign import data
from repalign.networks.models import small_cnn
from repalign.networks.training import train
from repalign.recipes import layerwise

def digest(*arrays):
    return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()[:12]

out = {}
ds = data.prepare_task("mnist_embedded", classes=[3, 8], n_per_class=500, demo_normalize=True, seed=0)
x, _, _ = layerwise.flat_task(ds, "mnist_embedded")
config = layerwise.MLPConfig(depth=3, width=128, lr=1e-3, batch_size=64, epochs=30)
start = time.perf_counter()
runs = layerwise.train_and_measure(x, ds.y, task="binary", seeds=[0, 1, 2], config=config, cache=False)
out["mlp"] = (time.perf_counter() - start, digest(*(r.after["hidden3"].singular_values for r in runs)))

fashion = data.load("fashion_mnist_embedded", "train")
images = np.asarray(fashion.x[:2000], dtype=np.float32).reshape(-1, 1, 28, 28)
start = time.perf_counter()
net = train(lambda: small_cnn(10), images, np.asarray(fashion.y[:2000]), task="multiclass", epochs=5, lr=1e-3,
            batch_size=64, seed=0, device="cpu", progress=False)
params = [p.detach().numpy() for p in net.model.parameters()]
out["cnn"] = (time.perf_counter() - start, digest(*params))

rng = np.random.default_rng(0)
features, labels = rng.standard_normal((5000, 1024)), rng.integers(0, 10, 5000)
start = time.perf_counter()
spec = ra.spectrum(features, ra.one_vs_rest_targets(labels))
out["measure"] = (time.perf_counter() - start, digest(spec.singular_values, spec.mass))
print(json.dumps(out))
"""


def host_environment() -> dict[str, str]:
    """This process's environment without any pinned or cleared variable, one thread per library."""
    pinned = pinned_environment({})
    env = {k: v for k, v in os.environ.items() if k not in pinned}
    env.update(dict.fromkeys(THREAD_VARIABLES, "1"), PYTHONHASHSEED="0", REPALIGN_PROGRESS="off")
    return env


def cpu_name() -> str:
    """The CPU's model name (Linux), else the machine type."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            return next(line.split(":", 1)[1].strip() for line in fh if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.machine()


def run(env: dict[str, str]) -> dict[str, list]:
    """The workload in a fresh interpreter: {part: [seconds, hash]}."""
    done = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    host = host_environment()
    envs = {"host": host, "pinned": {**pinned_environment(host), "REPALIGN_PROGRESS": "off"}}
    best: dict[str, dict[str, float]] = {name: {} for name in envs}
    hashes: dict[str, dict[str, str]] = {name: {} for name in envs}
    for _ in range(args.repeats):
        for name, env in envs.items():
            for part, (seconds, digest) in run(env).items():
                best[name][part] = min(seconds, best[name].get(part, float("inf")))
                hashes[name][part] = digest
    print(f"{cpu_name()}, one thread, best of {args.repeats} (seconds)")
    print(f"{'part':<8} {'host':>8} {'pinned':>8} {'ratio':>6}  numbers")
    for part in best["host"]:
        h, p = best["host"][part], best["pinned"][part]
        same = "same" if hashes["host"][part] == hashes["pinned"][part] else "differ"
        print(f"{part:<8} {h:>8.2f} {p:>8.2f} {p / h:>6.2f}  {same}")
    total_h, total_p = sum(best["host"].values()), sum(best["pinned"].values())
    print(f"{'total':<8} {total_h:>8.2f} {total_p:>8.2f} {total_p / total_h:>6.2f}")


if __name__ == "__main__":
    main()
