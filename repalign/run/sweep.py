"""Parameter sweeps: one notebook run by papermill at every point of a grid, on dask.distributed.

A **grid file** (YAML) names the notebook, the base scale and what varies::

    notebook: 03_architectures        # a name, a unique prefix, or a path to an .ipynb
    scale: smoke                      # base parameters: smoke (the parameters cell) / replicate / paper yamls
    name: depth_width                 # optional; default the grid file's stem
    parameters: {epochs: 5}           # optional; fixed for every point
    seeds: [0, 1, 2]                  # optional; every point runs these seeds (the notebook's `seeds`)
    grid:                             # a product of lists
      depth: [1, 2, 3]
      width: [64, 128]
    zip:                              # optional; lists that vary together (a mapping, or a list of mappings)
      lr: [0.001, 0.0003]
      epochs: [10, 20]
    plot: {x: depth, y: AUC_last_hidden}   # optional; the figure (x: a varied parameter, y: a table column)

The points are the product of ``grid`` and of each ``zip`` group; every point's parameters are checked with
:func:`repalign.run.params.validate` before anything runs, so a misspelt name fails at once, listing the notebook's
parameters. The file holds plain values only (:func:`repalign.run.params.load_yaml`): papermill writes anything but
a string unescaped into the kernel's cell, so tags (``!!binary``, ``!!pairs``, ``!!python/…``), aliases and keys
given twice are refused, one line each; ``1e-3`` is a number and ``03`` text. The sweep's name is a folder name
(:func:`sweep_name`), never a path.

**Seeds**: each point runs all of its seeds in one notebook (the claims' noise rule needs at least two
seeds per point); to repeat a sweep on independent seed sets, vary them: ``grid: {seeds: [[0, 1, 2], [3, 4, 5]]}``.

**Layout** under ``<out>/<name>/`` (default ``results/custom/sweeps/<name>/``: like every run but ``make``'s scale
builds, a sweep never writes the published ``figures/`` and ``results/``)::

    <point>/             e.g. depth=3,width=128 (the varied values)
      point.json         the point's full parameters, the notebook, its key
      <notebook>.ipynb   the executed notebook (papermill)
      claims/<nb>.json   the claim file (results_dir = this folder)
      figures/           the notebook's figures (figures_dir)
      kernel.log         the kernel's own stdout/stderr (crashes, warnings)
      record.json        the completion record, written atomically LAST: status ok / failed, error, seconds, the
                         sha256 of each claim file (a claim file lost or changed later: the point runs again)
    workers.log          the local cluster's workers' own output
    table.csv            one row per point: varied values, status, every claim's outcome and scalar evidence
    SUMMARY.md           the same as a Markdown table, with the claims' statements and the failures
    figure.png/.pdf      plot.y against plot.x, one line per combination of the other varied parameters

**Done-ness.** A point's key is :math:`\\mathrm{sha256}(\\text{code cells of the notebook}, \\text{its full
parameters}, \\text{code version})`, the code version being :func:`repalign.core.cache.code_version` of the repalign
modules the notebook imports (their closure: a change elsewhere in the library leaves the point done); a point
whose ``record.json`` has status ``ok`` and the same key is not run again. An interrupted point has no record and
is run again from scratch; a failed point is run again unless ``--skip-failed``.

**Execution.** Each point is one dask task: papermill's Python API in the worker process (a ``LocalCluster`` of
processes with one thread each, so a worker runs one point at a time), and the notebook's kernel, a process of
its own, started in the notebook's folder with the point's environment by a kernel manager (never papermill's
``cwd=``, an ``os.chdir`` of the whole process: nteract/papermill#473). The kernel gets ``OMP_NUM_THREADS`` and
friends set to ``--threads-per-point`` (torch takes ``OMP_NUM_THREADS`` at import), ``PYTHONHASHSEED=0`` and the
client's ``REPALIGN_CACHE``, ``REPALIGN_DATA`` and Hugging Face offline settings. A notebook error (papermill's
``PapermillExecutionError``) is recorded with the cell that raised and never retried; an infrastructure error
(the kernel died at start, nteract/papermill#511; a dead kernel) is retried ``--retries`` times, and a lost worker
is rescheduled by dask.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import itertools
import json
import logging
import math
import os
import re
import shutil
import signal
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from repalign.core import cache, closure, paths
from repalign.core.files import atomic_write_json, atomic_write_text
from repalign.core.numerics import pinned_environment
from repalign.core.provenance import provenance
from repalign.run import params as _params
from repalign.run.userfiles import check_writable_folder

__all__ = [
    "Point",
    "SweepSpec",
    "expand",
    "point_name",
    "sweep_name",
    "load_grid",
    "point_key",
    "point_state",
    "run_point",
    "slurm_cluster",
    "SweepResult",
    "run_sweep",
    "collect",
    "main",
]

GRID_KEYS = {"notebook", "scale", "name", "parameters", "seeds", "grid", "zip", "plot"}
#: set by the sweep in every point; not part of the point's key
LOCATION_PARAMETERS = ("figures_dir", "results_dir")
#: environment variables passed from the client to every point's kernel when set
PASS_THROUGH = (
    "REPALIGN_CACHE",
    "REPALIGN_DATA",
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_HOME",
    "TORCH_HOME",
    "REPALIGN_PROGRESS",
)
RECORD, POINT, ERROR = "record.json", "point.json", "error.json"


# ---------------------------------------------------------------------------------------------------------------
# the grid
@dataclass
class Point:
    """One point of a sweep: its folder name, the values that vary, and the notebook's full parameters."""

    name: str
    varied: dict[str, Any]
    params: dict[str, Any]


@dataclass
class SweepSpec:
    """A parsed, validated grid file (:func:`load_grid`)."""

    name: str
    notebook: Path
    scale: str
    points: list[Point]
    varied: list[str]
    plot: dict[str, str] = field(default_factory=dict)
    source: Path | None = None


def expand(grid: Mapping[str, Sequence[Any]], zips: Sequence[Mapping[str, Sequence[Any]]] = ()) -> list[dict]:
    """The points of a grid: the product of ``grid``'s lists and of each ``zips`` group (lists zipped together).

    Shape: grid maps k names to lists of lengths n_1 … n_k; each zip group maps names to lists of one length m_g;
    the result has n_1 ⋯ n_k · ∏ m_g points, in file order (the last name varies fastest).
    """
    axes: list[list[dict[str, Any]]] = []
    seen: set[str] = set()
    for key, values in grid.items():
        _check_list(key, values, "grid")
        axes.append([{key: v} for v in values])
    for group in zips:
        lengths = {k: len(_check_list(k, v, "zip")) for k, v in group.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"zip: the lists must have one length, got {lengths}; pad or split the group")
        if group:
            axes.append([dict(zip(group, values, strict=True)) for values in zip(*group.values(), strict=True)])
    for axis in axes:
        dup = seen & set(axis[0])
        if dup:
            raise ValueError(f"{sorted(dup)} vary in two places (grid and zip); name each parameter once")
        seen |= set(axis[0])
    return [dict(item for part in combo for item in part.items()) for combo in itertools.product(*axes)]


def _check_list(key: str, values: Any, where: str) -> list:
    if not isinstance(values, list) or not values:
        raise ValueError(f"{where}: {key} must be a non-empty list of values, e.g. {key}: [1, 2], got {values!r}")
    return values


def _text(value: Any) -> str:
    if isinstance(value, list | tuple):
        return "-".join(_text(v) for v in value)
    if isinstance(value, dict):
        return "-".join(f"{k}_{_text(v)}" for k, v in value.items())
    return str(value)


def point_name(varied: Mapping[str, Any]) -> str:
    """A readable folder name from the varied values: ``depth=3,width=256``; lists join with ``-``
    (``seeds=0-1-2``); characters other than letters, digits and ``.=,+-_`` become ``_``; names over 120
    characters are cut and end in a hash. No varied parameter: ``base``."""
    if not varied:
        return "base"
    name = ",".join(f"{k}={_text(v)}" for k, v in varied.items())
    name = re.sub(r"[^A-Za-z0-9.=,+_-]", "_", name)
    if len(name) > 120:
        name = name[:100] + "~" + hashlib.sha256(name.encode()).hexdigest()[:12]
    return name


#: a sweep's name is a folder name under ``--out``, never a path
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._=,+-]{0,119}$")


def sweep_name(name: str) -> str:
    """``name`` when it is a folder name: letters, digits and ``. _ - = , +``, starting with a letter, a digit or
    ``_``, at most 120 characters (so no ``/``, ``\\``, ``..`` or absolute path); raises ``ValueError`` otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValueError(
            f"sweep name {name!r} is not a folder name: use letters, digits and . _ - = , + (starting with a letter, "
            "a digit or _, at most 120 characters), so that the sweep stays inside --out"
        )
    return name


def _default_name(stem: str) -> str:
    """The grid file's stem as a sweep name: every other character becomes ``_`` (``my grid`` → ``my_grid``)."""
    name = re.sub(r"[^A-Za-z0-9._=,+-]", "_", stem)[:120]
    return "_" + name[1:] if not name or not re.match(r"[A-Za-z0-9_]", name) else name


def _read_yaml(path: Path) -> dict[str, Any]:
    """The grid file as plain values (:func:`repalign.run.params.load_yaml`, then :func:`~repalign.run.params.
    check_plain` on all of it), its keys and their kinds checked; one-line ``ValueError`` for any mistake."""
    if not path.is_file():
        raise FileNotFoundError(f"grid file {path} does not exist; see sweeps/ for examples")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        problem = f"byte {err.start}: {raw[err.start]:#04x}"
        raise ValueError(f"{path} is not UTF-8 text ({problem}); save it as UTF-8") from None
    data = _params.load_yaml(text, source=str(path))
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a grid file is a mapping (notebook:, scale:, grid:, ...), got {type(data).__name__}")
    _params.check_plain(data, str(path))
    unknown = sorted(set(data) - GRID_KEYS)
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {unknown}; a grid file has {sorted(GRID_KEYS)}")
    if "notebook" not in data:
        raise ValueError(f"{path}: name the notebook, e.g. `notebook: 03_architectures`")
    _check_kinds(data, path)
    return data


def _check_kinds(data: Mapping[str, Any], path: Path) -> None:
    """Each key of a grid file holds what it must; figures_dir and results_dir are the sweep's to set."""
    if not isinstance(data["notebook"], str):
        raise ValueError(
            f"{path}: notebook: write the notebook's name or its two-digit prefix as text (notebook: 03_architectures "
            f"or notebook: '03'), got {data['notebook']!r}"
        )
    for key in ("scale", "name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise ValueError(f"{path}: {key}: write it as text, got {data[key]!r}")
    for key in ("parameters", "grid", "plot"):
        if data.get(key) is not None and not isinstance(data[key], dict):
            raise ValueError(f"{path}: {key}: must be a mapping (name: value), got {data[key]!r}")
    zips = data.get("zip")
    if not (
        zips is None or isinstance(zips, dict) or isinstance(zips, list) and all(isinstance(z, dict) for z in zips)
    ):
        raise ValueError(f"{path}: zip: must be a mapping or a list of mappings (name: [values]), got {zips!r}")
    groups = [data.get("parameters") or {}, data.get("grid") or {}, *([zips] if isinstance(zips, dict) else zips or [])]
    for key in LOCATION_PARAMETERS:
        if any(key in group for group in groups):
            raise ValueError(f"{path}: {key} is set by the sweep (each point's own folder under --out); remove it")


def _resolve(notebook: str, base: Path | None) -> Path:
    candidate = (base / notebook) if base is not None else Path(notebook)
    if str(notebook).endswith(".ipynb") and candidate.is_file():
        return candidate.resolve()
    return _params.resolve_notebook(notebook)


def load_grid(path: str | os.PathLike[str], *, name: str | None = None, notebook: str | None = None) -> SweepSpec:
    """Read and check a grid file; every point's parameters pass :func:`repalign.run.params.validate`.

    The file holds plain values only (:func:`repalign.run.params.load_yaml`: no YAML tags but the core ones, no
    aliases, no key twice); its name (``name``, or ``name:``, else its stem made safe) is a folder name
    (:func:`sweep_name`). ``notebook`` (optional) must agree with the file's (``make sweep NB=…``). Raises
    ``ValueError`` (a :class:`repalign.run.params.ParameterError` for a wrong parameter name, type or value) in one
    line before anything runs.
    """
    path = Path(path)
    data = _read_yaml(path)
    nb = _resolve(data["notebook"], path.parent)
    if notebook is not None and _resolve(notebook, None).stem != nb.stem:
        raise ValueError(f"{path} sweeps {nb.stem}, not {notebook}; pass the grid file written for {notebook}")
    scale = str(data.get("scale", "smoke"))
    base = {**_params.scale_parameters(nb, scale), **dict(data.get("parameters") or {})}
    grid = dict(data.get("grid") or {})
    zips = data.get("zip") or []
    zips = [zips] if isinstance(zips, Mapping) else list(zips)
    if "seeds" in data:
        if "seeds" in grid or any("seeds" in z for z in zips):
            raise ValueError(f"{path}: `seeds` is both fixed (seeds:) and varied (grid/zip); keep one")
        base["seeds"] = data["seeds"]
    points = []
    for varied in expand(grid, zips):
        pname = point_name(varied)
        given = {**base, **varied}
        merged = _params.validate(nb, given, name=f"{nb.stem} at point {pname}")
        points.append(Point(pname, varied, merged))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise ValueError(f"{path}: two points share a folder name; make the varied values distinct: {names}")
    varied_names = list(points[0].varied) if points else []
    plot = dict(data.get("plot") or {})
    if plot and plot.get("x") not in varied_names:
        raise ValueError(f"{path}: plot.x must be a varied parameter ({varied_names}), got {plot.get('x')!r}")
    chosen = name or data.get("name")
    folder = sweep_name(chosen) if chosen else _default_name(path.stem)
    return SweepSpec(folder, nb, scale, points, varied_names, plot, path.resolve())


# ---------------------------------------------------------------------------------------------------------------
# keys and state
def notebook_hash(notebook: str | os.PathLike[str]) -> str:
    """sha256 of the notebook's code cells (sources, in order): stored outputs and prose do not change it."""
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    code = [("".join(c["source"]) if isinstance(c["source"], list) else c["source"]) for c in cells]
    code = [src for c, src in zip(cells, code, strict=True) if c["cell_type"] == "code"]
    return hashlib.sha256(json.dumps(code).encode()).hexdigest()


def point_key(nb_hash: str, params: Mapping[str, Any], version: str) -> str:
    """The point's key: sha256 of (notebook hash, parameters without figures_dir/results_dir, code version)[:32]."""
    kept = {k: v for k, v in params.items() if k not in LOCATION_PARAMETERS}
    text = json.dumps({"notebook": nb_hash, "params": kept, "version": version}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def _read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``; None when it is missing, unreadable, not JSON or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _record(point_dir: Path) -> dict[str, Any] | None:
    """The point's completion record, None unless it is one (an object with a key and status ok or failed)."""
    record = _read_json(point_dir / RECORD)
    if record is None or not isinstance(record.get("key"), str) or record.get("status") not in ("ok", "failed"):
        return None
    return record


def _claims(file: Path) -> list[dict[str, Any]] | None:
    """The claims of a claim file, None unless it is one (an object whose ``claims`` are objects with a statement)."""
    claims = (_read_json(file) or {}).get("claims")
    if not isinstance(claims, list):
        return None
    return claims if all(isinstance(c, dict) and isinstance(c.get("statement"), str) for c in claims) else None


def _outputs(point_dir: Path) -> dict[str, str]:
    """The point's claim files and their sha256, as its record keeps them: ``{"claims/<nb>.json": sha256}``."""
    return {
        f"claims/{f.name}": hashlib.sha256(f.read_bytes()).hexdigest()
        for f in sorted((point_dir / "claims").glob("*.json"))
    }


def point_state(point_dir: str | os.PathLike[str], key: str) -> str:
    """``"done"`` (a record with status ok and this key, its claim files intact), ``"damaged"`` (the same, but a
    claim file is missing, not one, or changed since the record: run again), ``"failed"`` (a notebook error, this
    key), ``"stale"`` (a record made by other parameters, notebook or library), ``"error"`` (an infrastructure
    error) or ``"todo"`` (no record, or a file that is not one)."""
    point_dir = Path(point_dir)
    record = _record(point_dir)
    if record is not None:
        if record["key"] != key:
            return "stale"
        if record["status"] != "ok":
            return "failed"
        files = sorted((point_dir / "claims").glob("*.json"))
        intact = all(_claims(f) is not None for f in files)
        if "outputs" in record:
            intact = intact and record["outputs"] == _outputs(point_dir)
        return "done" if intact else "damaged"
    return "error" if (point_dir / ERROR).is_file() else "todo"


# ---------------------------------------------------------------------------------------------------------------
# one point (runs on a dask worker)
def point_environment(threads: int, passed: Mapping[str, str]) -> dict[str, str]:
    """The environment of a point's papermill process and kernel: this process's, the client's pass-through
    variables, and the pinned numerical settings (:func:`repalign.core.numerics.pinned_environment`: the same code
    paths on any x86-64 CPU with AVX2, fixed hashing) with ``threads`` threads for every library (torch takes
    ``OMP_NUM_THREADS`` at import; bytes match ``make``'s one-thread runs only at ``threads=1``)."""
    env = pinned_environment({**os.environ, **passed}, threads=threads)
    env.update(MPLBACKEND="Agg", PYDEVD_DISABLE_FILE_VALIDATION="1", REPALIGN_THREADS=str(threads))
    return env


def _kernel_manager_class(env: Mapping[str, str], cwd: str, log: str) -> type:
    """A jupyter_client ``AsyncKernelManager`` whose kernels start with ``env`` in ``cwd``, their stdout and stderr
    appended to ``log``: the point's thread count and paths reach its kernel without touching this process's
    environment or working directory (papermill's own ``cwd=`` is an ``os.chdir`` of the whole worker process,
    nteract/papermill#473)."""
    from jupyter_client.manager import AsyncKernelManager

    class PointKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            with open(log, "ab") as fh:  # the kernel holds its own copy of the descriptor
                kw.update(env=dict(env), cwd=cwd, stdout=fh, stderr=fh)
                await super().start_kernel(**kw)

    return PointKernelManager


_INFRASTRUCTURE = re.compile(r"kernel (died|didn't respond|not respond)|dead ?kernel|zmq|address already in use", re.I)


def _error_info(exc: BaseException) -> dict[str, Any]:
    """What went wrong, and whether it is the notebook's error or the infrastructure's (which is retried)."""
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        lines = (exc.source or "").strip().splitlines()
        return {
            "kind": "notebook",
            "ename": exc.ename,
            "evalue": str(exc.evalue),
            "cell_index": exc.cell_index,
            "cell_source": "\n".join(lines[:3]) + (" ..." if len(lines) > 3 else ""),
        }
    text = f"{type(exc).__name__}: {exc}"
    kind = "infrastructure" if type(exc).__name__ == "DeadKernelError" or _INFRASTRUCTURE.search(text) else "setup"
    return {"kind": kind, "ename": type(exc).__name__, "evalue": str(exc)}


def _attempt(task: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
    """One papermill run of the point in this (worker) process; the kernel is its own process."""
    import papermill

    notebook = Path(task["notebook"])
    try:
        papermill.execute_notebook(
            str(notebook),
            str(Path(task["dir"]) / notebook.name),
            parameters=dict(task["params"]),
            kernel_name=task["kernel"],
            progress_bar=False,
            execution_timeout=task["cell_timeout"],
            start_timeout=task["start_timeout"],
            kernel_manager_class=_kernel_manager_class(
                env, str(notebook.parent), str(Path(task["dir"]) / "kernel.log")
            ),
        )
    except Exception as exc:  # noqa: BLE001 - every failure is recorded, classified and returned
        return {"status": "failed", "error": _error_info(exc)}
    return {"status": "ok"}


def run_point(task: Mapping[str, Any]) -> dict[str, Any]:
    """Run one point (a dask task): papermill in this worker process, infrastructure errors retried.

    ``task``: ``dir`` (the point's folder), ``key``, ``notebook``, ``params``, ``varied``, ``kernel``, ``threads``,
    ``env`` (pass-through variables), ``retries``, ``cell_timeout``, ``start_timeout``. Returns the record; writes
    ``record.json`` LAST (atomically) for an ok run (with the sha256 of its claim files) or a notebook error,
    ``error.json`` for an infrastructure error that outlived its retries (so that the point runs again next time).
    """
    out = Path(task["dir"])
    if point_state(out, task["key"]) == "done":  # a resubmitted task whose first run finished
        return {**(_read_json(out / RECORD) or {}), "skipped": True}
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    atomic_write_json(out / POINT, {k: task[k] for k in ("notebook", "key", "varied", "params")})
    env = point_environment(int(task["threads"]), task["env"])
    attempts = []
    for attempt in range(max(int(task["retries"]), 0) + 1):
        start = time.perf_counter()
        outcome = _attempt(task, env)
        seconds = round(time.perf_counter() - start, 2)
        attempts.append(outcome.get("error", {}).get("ename", "ok"))
        if outcome.get("error", {}).get("kind") != "infrastructure":
            break
        time.sleep(min(1.0 + attempt, 5.0))
    record = {"key": task["key"], "point": out.name, "seconds": seconds, "attempts": len(attempts), **outcome}
    if outcome.get("error", {}).get("kind") == "infrastructure":
        atomic_write_json(out / ERROR, record)
        return record
    if outcome["status"] == "ok":
        record["outputs"] = _outputs(out)  # a claim file damaged later makes the point run again
    atomic_write_json(out / RECORD, record)
    return record


# ---------------------------------------------------------------------------------------------------------------
# the engine (client side)
def slurm_cluster(
    *,
    queue: str | None = None,
    account: str | None = None,
    cores: int = 8,
    memory: str = "32GB",
    walltime: str = "02:00:00",
    threads_per_point: int = 1,
    job_extra: Sequence[str] = (),
    prologue: Sequence[str] = (),
    python: str | None = None,
) -> Any:
    """A dask-jobqueue ``SLURMCluster`` whose every job runs ``cores // threads_per_point`` single-threaded worker
    processes (one point each). Call ``.scale(jobs=n)`` (or ``.adapt``) to submit jobs; ``.job_script()`` shows the
    batch script. The workers' memory limit is off: a point's memory is in its kernel, which a worker cannot see;
    Slurm's ``--mem`` (``memory``) bounds the job instead.
    """
    from dask_jobqueue import SLURMCluster

    if cores % threads_per_point:
        raise ValueError(f"cores={cores} is not a multiple of threads_per_point={threads_per_point}")
    return SLURMCluster(
        queue=queue,
        account=account,
        cores=cores,
        processes=cores // threads_per_point,
        memory=memory,
        walltime=walltime,
        job_extra_directives=list(job_extra),
        job_script_prologue=list(prologue),
        worker_extra_args=["--memory-limit", "0"],  # after jobqueue's own --memory-limit, so it wins
        python=python or sys.executable,
        job_name="repalign-sweep",
    )


def _default_workers(threads: int) -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // threads)


def local_cluster(workers: int | None = None, threads_per_point: int = 1) -> Any:
    """The default engine: ``LocalCluster`` on loopback with worker processes of one thread each (a worker runs one
    point at a time), as many as cores // threads_per_point unless told, no dashboard, and no memory limit (a
    point's memory is in its kernel, a process the worker's monitor does not see)."""
    from distributed import LocalCluster

    return LocalCluster(
        n_workers=workers or _default_workers(threads_per_point),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        memory_limit=0,
        preload=["repalign.run.sweep"],  # dask_setup, in every worker
    )


def dask_setup(worker: Any) -> None:
    """The preload of :func:`local_cluster`'s workers. Ctrl-C in a terminal reaches every process of its process
    group, the workers too: they ignore it, so that the sweep (the client) alone stops them, and they log errors
    only (a task cancelled or a worker killed while the sweep stops is no news)."""
    with contextlib.suppress(ValueError):  # signals belong to the main thread; elsewhere leave them be
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.getLogger("distributed").setLevel(logging.ERROR)


class _QuietShutdown:
    """A context whose exit by Ctrl-C silences dask's loggers (and asyncio's, tornado's) in this process while the
    cluster stops (the nanny killing busy workers, the scheduler losing their tasks, workers that never started);
    :meth:`restore` gives them their levels back."""

    def __init__(self) -> None:
        self.levels: dict[str, int] = {}

    def __enter__(self) -> _QuietShutdown:
        return self

    def __exit__(self, kind: Any, *_: Any) -> None:
        if kind is not None and issubclass(kind, KeyboardInterrupt):
            names = ["asyncio", "tornado", "distributed"]  # asyncio: tasks of a cluster stopped while it started
            names += [n for n in logging.root.manager.loggerDict if n.startswith(("distributed.", "tornado."))]
            for name in names:
                self.levels.setdefault(name, logging.getLogger(name).level)
                logging.getLogger(name).setLevel(logging.CRITICAL + 1)

    def restore(self) -> None:
        for name, level in self.levels.items():
            logging.getLogger(name).setLevel(level)


@contextlib.contextmanager
def _stderr_to(path: Path) -> Iterator[None]:
    """This process's stderr (file descriptor 2) goes to ``path`` inside the block, and so does the stderr of every
    process started meanwhile for good (the local cluster's workers: their warnings, and their tracebacks should a
    Ctrl-C reach them while they start), whatever happens to this one's afterwards."""
    path.parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    with open(path, "ab") as log:
        os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


@dataclass
class SweepResult:
    """What a sweep did: the points it ran, those it found done, and their states after the run."""

    spec: SweepSpec
    folder: Path
    ran: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    states: dict[str, str] = field(default_factory=dict)
    interrupted: bool = False

    @property
    def failed(self) -> list[str]:
        """Points that failed (notebook error) or could not run (infrastructure error)."""
        return [p for p, s in self.states.items() if s in ("failed", "error")]


def _point_cache() -> Path:
    """The result cache of every point's kernel: the client's ``REPALIGN_CACHE``, else ``<repo>/.cache/repalign``
    (as ``make`` sets it)."""
    return Path(os.environ.get("REPALIGN_CACHE") or (paths.repo_root() or Path.cwd()) / ".cache" / "repalign")


def _tasks(spec: SweepSpec, folder: Path, options: Mapping[str, Any]) -> list[dict[str, Any]]:

    nb_hash = notebook_hash(spec.notebook)
    version = cache.code_version(closure.notebook_modules(spec.notebook))  # the code the notebook imports
    env = {k: os.environ[k] for k in PASS_THROUGH if k in os.environ}
    root = paths.repo_root() or Path.cwd()
    env["REPALIGN_CACHE"] = str(_point_cache())
    env.setdefault("REPALIGN_DATA", str(root / "data"))
    env.setdefault("REPALIGN_PROGRESS", "off")  # no progress bars frozen into the executed notebooks
    env = {k: (str(Path(v).resolve()) if k in ("REPALIGN_CACHE", "REPALIGN_DATA") else v) for k, v in env.items()}
    tasks = []
    for p in spec.points:
        out = folder / p.name
        params = {**p.params, "figures_dir": str(out / "figures"), "results_dir": str(out)}
        key = point_key(nb_hash, params, version)
        tasks.append(
            {"dir": str(out), "key": key, "notebook": str(spec.notebook), "params": params, "varied": p.varied}
            | {"env": env, **options}
        )
    return tasks


def _submit_all(client: Any, todo: list[dict[str, Any]], result: SweepResult, progress: bool, total: int) -> None:
    from distributed import as_completed
    from tqdm.auto import tqdm

    futures = {
        client.submit(run_point, t, key=f"sweep-{Path(t['dir']).name}-{t['key'][:12]}", pure=False): t for t in todo
    }
    bar = tqdm(total=total, initial=total - len(todo), unit="point", desc=result.spec.name, disable=not progress)
    try:
        for future in as_completed(futures):
            task = futures[future]
            name = Path(task["dir"]).name
            try:
                future.result()
            except Exception as exc:  # noqa: BLE001 - a lost worker (KilledWorker) or a cancelled task
                error = {"kind": "infrastructure", "ename": type(exc).__name__, "evalue": str(exc)}
                atomic_write_json(Path(task["dir"]) / ERROR, {"key": task["key"], "status": "failed", "error": error})
            result.ran.append(name)
            result.states[name] = point_state(task["dir"], task["key"])
            bar.update()
    finally:
        bar.close()
        for future in futures:
            if not future.done():
                future.cancel()


def _check_counts(**counts: int | None) -> None:
    """``ValueError`` in one line for a count a sweep cannot run with (``retries`` may be 0, the others not)."""
    for name, value in counts.items():
        least = 0 if name == "retries" else 1
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < least):
            what = "0 or more" if least == 0 else "a positive integer"
            raise ValueError(f"{name} must be {what}, got {value!r}")


def _settle(result: SweepResult, tasks: list[dict[str, Any]]) -> None:
    """After Ctrl-C, once the workers are gone: each point's state as its folder says (a point may have finished
    while the workers stopped)."""
    for t in tasks:
        name = Path(t["dir"]).name
        state = point_state(t["dir"], t["key"])
        if state in ("done", "failed") and state != result.states.get(name) and name not in result.ran:
            result.ran.append(name)
        result.states[name] = state


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike[str] = "results/custom/sweeps",
    *,
    client: Any = None,
    workers: int | None = None,
    threads_per_point: int = 1,
    retries: int = 2,
    skip_failed: bool = False,
    kernel: str = "python3",
    cell_timeout: int = 3600,
    start_timeout: int = 120,
    progress: bool = True,
) -> SweepResult:
    """Run every point of ``spec`` that is not done on ``client`` (a ``distributed.Client``; None: a
    :func:`local_cluster` of ``workers`` started only when a point needs to run), then write the table, summary
    and figure (:func:`collect`).

    Counts below one (``retries`` below zero) and a name that is not a folder name (:func:`sweep_name`) raise
    ``ValueError`` before anything is written. A Ctrl-C stops it (``interrupted``): the workers of a local cluster
    ignore it and are stopped by the sweep, quietly; the points that finished, during the shutdown too, keep their
    records and are in the table; the others run next time. (The workers of another ``client`` finish the points
    they had begun: their records come after the table; ``--collect`` brings it up to date.)
    """
    _check_counts(workers=workers, threads_per_point=threads_per_point, retries=retries, cell_timeout=cell_timeout,
                  start_timeout=start_timeout)  # fmt: skip
    sweep_name(spec.name)
    folder = Path(out).resolve() / spec.name
    options = {"kernel": kernel, "threads": threads_per_point, "retries": retries}
    options |= {"cell_timeout": cell_timeout, "start_timeout": start_timeout}
    tasks = _tasks(spec, folder, options)
    result = SweepResult(spec, folder)
    todo = []
    for t in tasks:
        state = point_state(t["dir"], t["key"])
        result.states[Path(t["dir"]).name] = state
        if state == "done" or (state == "failed" and skip_failed):
            result.skipped.append(Path(t["dir"]).name)
        else:
            todo.append(t)
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_json(folder / "sweep.json", _sweep_record(spec, tasks))
    quiet = _QuietShutdown()
    try:
        if todo and client is None:
            from distributed import Client

            with quiet, _stderr_to(folder / "workers.log"):
                cluster = local_cluster(workers, threads_per_point)
            with cluster, Client(cluster) as own, quiet:
                _submit_all(own, todo, result, progress, len(tasks))
        elif todo:
            with quiet:
                _submit_all(client, todo, result, progress, len(tasks))
    except KeyboardInterrupt:
        result.interrupted = True
        _settle(result, tasks)
    if not result.interrupted:  # after Ctrl-C this process ends: dask's own clean-up at exit stays quiet
        quiet.restore()
    collect(spec, folder)
    return result


def _sweep_record(spec: SweepSpec, tasks: list[dict[str, Any]]) -> dict[str, Any]:

    return {
        "name": spec.name,
        "notebook": str(spec.notebook),
        "scale": spec.scale,
        "grid_file": str(spec.source) if spec.source else None,
        "varied": spec.varied,
        "points": {Path(t["dir"]).name: t["key"] for t in tasks},
        "provenance": provenance(),
    }


# ---------------------------------------------------------------------------------------------------------------
# the table, summary and figure
STATUS = {
    "done": "ok",
    "failed": "failed",
    "error": "error",
    "stale": "not run",
    "damaged": "not run",
    "todo": "not run",
}
SHORT = {"holds": "holds", "does not hold": "fails", "indistinguishable from seed noise": "noise"}


def flatten_evidence(evidence: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The scalar evidence of a claim as ``{prefix.name: value}``: numbers and booleans as they are, a mean ± std
    pair (:func:`repalign.run.claims.mean_std`, two floats) as ``name.mean`` and ``name.std``, mappings by their keys
    (``mean_AUC.depth 1``); text and other lists are left out (they are in the claim file)."""
    out: dict[str, Any] = {}
    for k, v in evidence.items():
        key = f"{prefix}.{k}"
        if isinstance(v, bool | int | float):
            out[key] = v
        elif isinstance(v, list) and len(v) == 2 and all(isinstance(x, float) for x in v):
            out[f"{key}.mean"], out[f"{key}.std"] = v
        elif isinstance(v, Mapping):
            out.update(flatten_evidence(v, key))
    return out


def _claim_file(point_dir: Path) -> list[dict[str, Any]]:
    """The claims of the point's (first) claim file; none when there is no claim file or it is not one."""
    files = sorted((point_dir / "claims").glob("*.json"))
    return (_claims(files[0]) or []) if files else []


def _error_text(error: Mapping[str, Any]) -> str:
    text = f"{error.get('ename', '')}: {error.get('evalue', '')}".strip()
    if "cell_index" in error:
        text += f" (cell {error['cell_index']}: {error.get('cell_source', '')})"
    return text[:300]


def _row(spec: SweepSpec, point: Point, point_dir: Path, key: str, legend: dict[str, str]) -> dict[str, Any]:
    state = point_state(point_dir, key)
    record = _read_json(point_dir / (ERROR if state == "error" else RECORD)) or {}
    row: dict[str, Any] = {"point": point.name, **point.varied, "status": STATUS[state]}
    row["seconds"] = record.get("seconds", "") if state in ("done", "failed") else ""
    error = record.get("error")
    row["error"] = _error_text(error) if state in ("failed", "error") and isinstance(error, Mapping) else ""
    claims = _claim_file(point_dir) if state == "done" else []
    row["claims_hold"] = sum(c.get("outcome") == "holds" for c in claims) if claims else ""
    for c in claims:
        cid = legend.setdefault(c["statement"], f"c{len(legend) + 1}")
        row[cid] = c.get("outcome", "")
        evidence = c.get("evidence")
        row.update(flatten_evidence(evidence if isinstance(evidence, Mapping) else {}, cid))
    return row


def collect(spec: SweepSpec, folder: str | os.PathLike[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Gather every point's record and claim file into ``table.csv``, ``SUMMARY.md`` and ``figure.png/.pdf``.

    Rows follow the grid's order; columns: ``point``, the varied parameters, ``status`` (ok / failed / error /
    not run), ``seconds``, ``error``, ``claims_hold``, then per claim ``c<i>`` (its outcome; the statements are in
    SUMMARY.md) and ``c<i>.<evidence>`` (:func:`flatten_evidence`). Returns the rows and the claim legend.
    """
    folder = Path(folder)
    keys = (_read_json(folder / "sweep.json") or {}).get("points", {})
    legend: dict[str, str] = {}
    rows = [_row(spec, p, folder / p.name, keys.get(p.name, ""), legend) for p in spec.points]
    columns: list[str] = []
    for row in rows:
        columns += [c for c in row if c not in columns]
    atomic_write_text(folder / "table.csv", _csv(rows, columns))
    plot = _figure(spec, rows, columns, folder)
    atomic_write_text(folder / "SUMMARY.md", _summary(spec, rows, legend, plot))
    return rows, legend


def _cell_text(value: Any) -> str:
    if isinstance(value, list | dict):
        return json.dumps(value)
    return repr(value) if isinstance(value, float) else str(value)


def _csv(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell_text(row[c]) if c in row else "" for c in columns])
    return buf.getvalue()


def _plot_column(y: str, columns: list[str]) -> str:
    """The table column ``y`` names: itself, or the one column ending in ``.y`` / ``.y.mean``."""
    if y in columns:
        return y
    matches = [c for c in columns if c.endswith(f".{y}") or c.endswith(f".{y}.mean")]
    if len(matches) != 1:
        what = f"matches several columns {matches}" if matches else "matches no column"
        raise ValueError(f"plot.y {y!r} {what}; the table's columns are {columns}")
    return matches[0]


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value in ("", None):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _figure(spec: SweepSpec, rows: list[dict[str, Any]], columns: list[str], folder: Path) -> dict[str, str]:
    """``figure.png/.pdf``: plot.y (± its std when the evidence is a mean ± std) against plot.x, one line per
    combination of the other varied parameters. Returns {x, y, column} or {problem} when nothing can be drawn."""
    from repalign.report import plotting  # lazily: matplotlib only when a sweep is plotted

    if not spec.varied:
        return {"problem": "no varied parameter to plot against"}
    x = spec.plot.get("x") or spec.varied[0]
    try:
        column = _plot_column(spec.plot.get("y") or "claims_hold", columns)
    except ValueError as exc:
        return {"problem": str(exc)}
    std = column[: -len(".mean")] + ".std" if column.endswith(".mean") else None
    xs = [r[x] for r in rows]
    numeric = all(_number(v) is not None for v in xs)
    ticks = {} if numeric else {_cell_text(v): i for i, v in enumerate(dict.fromkeys(map(_cell_text, xs)))}
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in rows:
        label = ", ".join(f"{k}={_cell_text(r[k])}" for k in spec.varied if k != x)
        groups.setdefault(label, []).append(r)
    fig, axes = plotting.new_figure(width=5.0, height=3.6)
    ax = axes[0, 0]
    drawn = 0
    for label, members in groups.items():
        pts = [(r[x], _number(r.get(column)), _number(r.get(std)) if std else None) for r in members]
        pts = [(float(a) if numeric else ticks[_cell_text(a)], b, c or 0.0) for a, b, c in pts if b is not None]
        if pts:
            pts.sort()
            ax.errorbar(*zip(*pts, strict=True), fmt="o-", capsize=2, label=label or None)
            drawn += 1
    if not numeric:
        ax.set_xticks(list(ticks.values()), list(ticks))
    elif len(set(xs)) <= 12:
        ax.set_xticks(sorted({float(v) for v in xs}), [_cell_text(v) for v in sorted(set(xs), key=float)])
    ax.set_xlabel(x)
    ax.set_ylabel(f"{column} (± std)" if std and std in columns else column)
    ax.set_title(f"{spec.name}: {spec.notebook.stem}", fontsize="medium")
    if drawn > 1:
        ax.legend(fontsize="small", frameon=False)
    ax.grid(alpha=0.3)
    plotting.save_figure(fig, "figure", folder, show=False)
    return {"x": x, "column": column} if drawn else {"problem": f"no point has a value of {column}"}


def _summary(spec: SweepSpec, rows: list[dict[str, Any]], legend: dict[str, str], plot: dict[str, str]) -> str:
    counts = {s: sum(r["status"] == s for r in rows) for s in ("ok", "failed", "error", "not run")}
    ids = list(legend.values())
    extra = [plot["column"]] if "column" in plot and plot["column"] not in ids + ["claims_hold"] else []
    head = ["point", *spec.varied, "status", *ids, "claims_hold", *extra, "seconds"]
    lines = [
        f"# Sweep `{spec.name}`: {spec.notebook.stem} at the {spec.scale} scale",
        "",
        f"{len(rows)} points: {counts['ok']} ok, {counts['failed']} failed (the notebook raised), "
        f"{counts['error']} could not run (infrastructure), {counts['not run']} not run yet. "
        f"Grid file: `{spec.source.name if spec.source else '-'}`; every number in `table.csv`.",
        "",
        "Claims (outcomes: holds; fails = does not hold; noise = indistinguishable from seed noise):",
        "",
        *[f"- **{cid}**: {statement}" for statement, cid in legend.items()],
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    for r in rows:
        cells = [SHORT.get(r.get(c, ""), r.get(c, "")) if c in ids else r.get(c, "") for c in head]
        lines.append("| " + " | ".join(_cell_text(v).replace("|", "\\|") for v in cells) + " |")
    failures = [f"- `{r['point']}` ({r['status']}): {r['error']}" for r in rows if r["error"]]
    if failures:
        lines += ["", "## Failures", "", *failures]
    shown = f"`{plot['column']}` against `{plot['x']}`" if "column" in plot else plot.get("problem", "")
    lines += ["", f"Figure (`figure.png`, `figure.pdf`): {shown}.", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# command line
EXAMPLES = """examples:
  python -m repalign.run.sweep sweeps/depth_width.yaml                       # local: one worker per core
  python -m repalign.run.sweep sweeps/depth_width.yaml --dry-run             # list the points and what is done
  python -m repalign.run.sweep sweeps/depth_width.yaml --workers 4 --threads-per-point 2
  python -m repalign.run.sweep sweeps/depth_width.yaml --scheduler tcp://10.0.0.5:8786   # an existing cluster
  python -m repalign.run.sweep sweeps/depth_width.yaml --slurm --queue cpu --account proj --cores 16 \\
      --memory 64GB --walltime 04:00:00 --jobs 4                         # Slurm jobs via dask-jobqueue
  srun -n 10 python -m repalign.run.sweep sweeps/depth_width.yaml --slurm-runner   # inside one allocation
  make sweep NB=03_architectures GRID=sweeps/depth_width.yaml

exit status: 0 when every point is ok, 1 when any failed or could not run, 2 for a mistake (the grid file, an
option, a missing extra, an --out that cannot be written: one line), 130 on Ctrl-C.
See docs/SWEEPS.md."""


def build_parser() -> argparse.ArgumentParser:
    """The ``python -m repalign.run.sweep`` / ``python -m repalign sweep`` argument parser."""
    p = _params.CommandLineParser(
        prog="python -m repalign.run.sweep",
        description="Run a notebook over a grid of parameters (papermill on dask.distributed) and tabulate its claims.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("grid", help="grid file (YAML): notebook, scale, grid, zip, seeds, name, plot")
    p.add_argument("--notebook", "--nb", help="check that the grid file sweeps this notebook (make sweep NB=...)")
    p.add_argument("--name", help="sweep name (folder under --out); default the grid file's name: or stem")
    p.add_argument(
        "--out", default="results/custom/sweeps", help="parent folder of sweeps (default results/custom/sweeps)"
    )
    p.add_argument("--dry-run", action="store_true", help="list the points and what is done; run nothing")
    p.add_argument("--collect", action="store_true", help="only rebuild table.csv, SUMMARY.md and the figure")
    p.add_argument("--skip-failed", action="store_true", help="do not re-run points whose notebook raised")
    count, retries = _params.positive_int, _params.non_negative_int
    p.add_argument("--workers", type=count, help="local worker processes (default cores // threads-per-point)")
    p.add_argument("--threads-per-point", type=count, default=1, help="BLAS/torch threads of each point (default 1)")
    p.add_argument("--retries", type=retries, default=2, help="retries of an infrastructure error (default 2)")
    p.add_argument("--kernel", default="python3", help="Jupyter kernel name (default python3)")
    p.add_argument("--cell-timeout", type=count, default=3600, help="seconds a cell may run (default 3600)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    e = p.add_argument_group("engines (default: a LocalCluster on 127.0.0.1)")
    e.add_argument("--scheduler", help="address of a running dask scheduler, e.g. tcp://host:8786")
    e.add_argument("--slurm", action="store_true", help="submit Slurm jobs of workers (dask-jobqueue SLURMCluster)")
    e.add_argument("--slurm-runner", action="store_true", help="inside one allocation: srun -n N python -m ... ")
    e.add_argument("--scheduler-file", default="repalign-sweep-{job_id}.json", help="--slurm-runner's file")
    s = p.add_argument_group("--slurm options")
    s.add_argument("--queue", help="partition (#SBATCH -p)")
    s.add_argument("--account", help="account (#SBATCH -A)")
    s.add_argument("--cores", type=count, default=8, help="cores per job (default 8)")
    s.add_argument("--memory", default="32GB", help="memory per job (default 32GB)")
    s.add_argument("--walltime", default="02:00:00", help="walltime per job (default 02:00:00)")
    s.add_argument("--jobs", type=count, default=1, help="number of jobs (default 1)")
    s.add_argument("--job-extra", action="append", default=[], help="extra #SBATCH option, e.g. --job-extra=--qos=low")
    s.add_argument("--prologue", action="append", default=[], help="shell line run before the worker, e.g. module load")
    s.add_argument("--print-job-script", action="store_true", help="print the Slurm job script and exit")
    return p


def _slurm_from(args: argparse.Namespace) -> Any:
    return slurm_cluster(
        queue=args.queue,
        account=args.account,
        cores=args.cores,
        memory=args.memory,
        walltime=args.walltime,
        threads_per_point=args.threads_per_point,
        job_extra=args.job_extra,
        prologue=args.prologue,
    )


def _dry_run(spec: SweepSpec, out: Path, args: argparse.Namespace) -> int:
    tasks = _tasks(spec, out.resolve() / spec.name, {})
    print(
        f"sweep {spec.name}: {spec.notebook.stem} at the {spec.scale} scale, {len(tasks)} points in {out / spec.name}"
    )
    todo = 0
    for point, task in zip(spec.points, tasks, strict=True):
        state = point_state(task["dir"], task["key"])
        run = state not in ("done",) and not (state == "failed" and args.skip_failed)
        todo += run
        print(f"  {'run ' if run else 'skip'} {state:<7} {point.name}")
    one_seed = [p.name for p in spec.points if isinstance(p.params.get("seeds"), list) and len(p.params["seeds"]) < 2]
    if one_seed:
        print(f"note: {len(one_seed)} point(s) have one seed: every comparison there is seed noise (needs >= 2)")
    print(f"{todo} to run")
    return 0


def _run_with_client(spec: SweepSpec, args: argparse.Namespace) -> SweepResult:
    from distributed import Client

    kw = {"threads_per_point": args.threads_per_point, "retries": args.retries, "skip_failed": args.skip_failed}
    kw |= {"kernel": args.kernel, "cell_timeout": args.cell_timeout, "progress": not args.no_progress}
    if args.scheduler:
        with Client(args.scheduler) as client:
            return run_sweep(spec, args.out, client=client, **kw)
    if args.slurm:
        with _slurm_from(args) as cluster, Client(cluster) as client:
            cluster.scale(jobs=args.jobs)
            return run_sweep(spec, args.out, client=client, **kw)
    return run_sweep(spec, args.out, workers=args.workers, **kw)  # a LocalCluster only if a point needs to run


def _run_in_allocation(spec: SweepSpec, args: argparse.Namespace) -> SweepResult | None:
    """``--slurm-runner``: rank 0 is the scheduler, rank 1 runs the sweep, the others are workers."""
    from dask_jobqueue.slurm import SLURMRunner
    from distributed import Client

    worker_options = {"nthreads": 1, "memory_limit": 0}
    runner = SLURMRunner(scheduler_file=args.scheduler_file, worker_options=worker_options)
    try:
        with runner, Client(runner) as client:
            kw = {"threads_per_point": args.threads_per_point, "retries": args.retries, "progress": False}
            return run_sweep(spec, args.out, client=client, skip_failed=args.skip_failed, **kw)
    except KeyboardInterrupt:  # the scheduler and workers stop with a SIGINT when the client closes
        if getattr(runner, "role", None) is not None and runner.role.name == "client":
            raise
        return None


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repalign.run.sweep GRID.yaml [options]``; returns the exit status (see ``--help``).

    Everything a user can get wrong is said in one line, ``error: …``, with status 2, before anything runs: the
    command line, the grid file, a missing extra (``pip install 'repalign[notebooks,sweep]'``), an ``--out`` that
    cannot be written. A cache the points cannot write is one warning; they then run without it.
    """
    try:
        args = build_parser().parse_args(argv)
        runs = not (args.dry_run or args.print_job_script)
        _params.require("repalign sweep", *(("notebooks", "sweep") if runs else ("sweep",)))
        spec = load_grid(args.grid, name=args.name, notebook=args.notebook)
        if runs:
            check_writable_folder(args.out, "--out")
        if runs and not args.collect:
            cache.writable(_point_cache())
        return _main(spec, args)
    except KeyboardInterrupt:
        print("\ninterrupted: the finished points keep their records; run the same command again to finish")
        return 130
    except (ValueError, FileNotFoundError, ModuleNotFoundError) as exc:
        return _params.user_error(exc)


def _main(spec: SweepSpec, args: argparse.Namespace) -> int:
    if args.print_job_script:
        print(_slurm_from(args).job_script())
        return 0
    if args.dry_run:
        return _dry_run(spec, Path(args.out), args)
    if args.collect:
        collect(spec, Path(args.out).resolve() / spec.name)
        return 0
    result = _run_in_allocation(spec, args) if args.slurm_runner else _run_with_client(spec, args)
    if result is None:
        return 0
    return _report(result)


def _report(result: SweepResult) -> int:
    failed = result.failed
    n = len(result.states)
    ok = sum(s == "done" for s in result.states.values())
    print(
        f"sweep {result.spec.name}: {n} points, {ok} ok, {len(failed)} failed; ran {len(result.ran)}, "
        f"{len(result.skipped)} already done"
    )
    for name in failed:
        print(f"  failed: {name} ({result.folder / name})")
    print(f"table: {result.folder / 'table.csv'}; summary: {result.folder / 'SUMMARY.md'}")
    if result.interrupted:
        print("interrupted: run the same command again to finish")
        return 130
    return 1 if failed else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
