"""Sweep engine costs, measured in one run (ratios are the point; absolute seconds depend on the machine's load).

Prints:

1. **Per-point overhead** (kernel start + papermill + the point's bookkeeping) on a trivial notebook (a parameters
   cell and ``x + 1``): the mean of the points' recorded run times over ``--trivial`` points on one worker, next
   to the time of running the same cell in this process (~0), plus the LocalCluster's start-up time.
2. **Speed-up of 2 workers over 1** on 8 smoke points of ``notebooks/00_quickstart.ipynb`` (its smoke defaults,
   ``data_seed`` 0–7 so that every point costs the same), each run with a fresh ``REPALIGN_CACHE`` so that no run
   reuses the other's trained networks. Ideal: 2.0 on two free cores; below that on a loaded machine.

Usage: ``python benchmarks/bench_sweep.py [--trivial 4] [--points 8] [--notebook 00_quickstart]``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

import repalign.core.cache
from repalign.run import sweep


def trivial_notebook(folder: Path) -> Path:
    """A notebook with a ``parameters`` cell (x, figures_dir, results_dir) and one cell computing ``x + 1``."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    params = nbformat.v4.new_code_cell('x = 0\nfigures_dir = "figures"\nresults_dir = "results"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell("x + 1")]
    path = folder / "trivial.ipynb"
    nbformat.write(nb, path)
    return path


def timed_sweep(grid: dict, folder: Path, workers: int, cache: Path) -> tuple[float, float, list[float]]:
    """Run a sweep on a fresh LocalCluster; returns (cluster start s, sweep s, each point's recorded seconds)."""
    from distributed import Client

    path = folder / f"{grid['name']}.yaml"
    path.write_text(yaml.safe_dump(grid, sort_keys=False))
    spec = sweep.load_grid(path)
    os.environ["REPALIGN_CACHE"] = str(cache)
    start = time.perf_counter()
    with sweep.local_cluster(workers=workers) as cluster, Client(cluster) as client:
        client.wait_for_workers(workers)
        ready = time.perf_counter()
        result = sweep.run_sweep(spec, folder / "out", client=client, progress=False)
        done = time.perf_counter()
    if result.failed:
        raise RuntimeError(f"points failed: {result.failed}; see {result.folder}")
    seconds = [json.loads((result.folder / p.name / "record.json").read_text())["seconds"] for p in spec.points]
    return ready - start, done - ready, seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trivial", type=int, default=4, help="trivial points for the overhead (default 4)")
    parser.add_argument("--points", type=int, default=8, help="smoke points for the speed-up (default 8)")
    parser.add_argument("--notebook", default="00_quickstart", help="the real notebook (default 00_quickstart)")
    args = parser.parse_args()
    repalign.core.cache.code_version = lambda *_: "bench"  # every point of every run is new: folders are fresh anyway
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    with tempfile.TemporaryDirectory(prefix="bench_sweep_") as tmp:
        tmp = Path(tmp)
        nb = trivial_notebook(tmp)
        t0 = time.perf_counter()
        exec("x = 0\nx + 1", {})
        inline = time.perf_counter() - t0
        grid = {"notebook": str(nb), "name": "trivial", "grid": {"x": list(range(args.trivial))}}
        start, total, secs = timed_sweep(grid, tmp, 1, tmp / "cache0")
        print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
        print(f"LocalCluster start (1 worker): {start:.2f} s")
        print(
            f"per-point overhead (trivial notebook, {args.trivial} points, 1 worker): mean {statistics.mean(secs):.2f} s,"
            f" min {min(secs):.2f} s (the same cell in-process: {inline * 1e6:.0f} µs); sweep wall {total:.2f} s"
        )
        real = {"notebook": args.notebook, "scale": "smoke", "grid": {"data_seed": list(range(args.points))}}
        walls = {}
        for workers in (1, 2):
            grid = {**real, "name": f"real{workers}"}
            start, total, secs = timed_sweep(grid, tmp, workers, tmp / f"cache{workers}")
            walls[workers] = total
            print(
                f"{args.notebook} smoke, {args.points} points, {workers} worker(s): sweep {total:.1f} s "
                f"(+ cluster start {start:.1f} s), per point mean {statistics.mean(secs):.1f} s"
            )
        print(f"speed-up of 2 workers over 1: {walls[1] / walls[2]:.2f}x (ideal 2.0 on two free cores)")
        print(f"load average at end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
