"""``repalign run``: one notebook through papermill, its parameters checked before a kernel starts, one line per cell.

Three rules of every run, whoever starts it (``make``, ``make notebook``, ``python -m repalign run``):

- **Numerics.** The kernel starts with :func:`repalign.core.numerics.pinned_environment`: the same code paths, so the
  same bytes, on any x86-64 CPU with AVX2, whatever the host would choose.
- **Folders.** Only ``make replicate`` and ``make paper`` write the folders a scale's yaml names (``figures/``,
  ``results/``, ``*/paper``): their rules pass ``--scale-dirs``, which takes the yaml's parameters alone. Every
  other run writes ``figures/custom/<run name>``, ``results/custom/<run name>`` and ``build/custom/<run name>.ipynb``,
  whatever the yaml says; the run name is ``<notebook>-<scale>-<hash of the parameters>`` or ``--name``. A folder a
  user names is honoured unless it lies in the published ones.
- **Ctrl-C** prints one line and leaves no partial copy.

:func:`write_build_keys` (``python -m repalign.run.notebook keys``, run by the Makefile) writes
``build/<scale>/<notebook>.key``: what a scale's build depends on beyond the notebook, its yaml and its code (the
resolved parameters, the pinned settings, the data root, and the size and time of the data files and checkpoints
the parameters name), rewritten only when it changes, so that ``make`` re-runs a notebook whose key changed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from repalign.core import paths
from repalign.core.files import atomic_write_bytes, atomic_write_text
from repalign.core.numerics import pinned_environment, settings
from repalign.run import params

__all__ = [
    "run_notebook",
    "plan",
    "run_name",
    "kernel_manager_class",
    "NotebookFailed",
    "NotebookInterrupted",
    "build_key",
    "write_build_keys",
]

RUN_EXAMPLES = """\
examples:
  repalign run 03 depth=3 width=256
  repalign run 03_architectures.ipynb seeds=[0,1,2] --scale replicate
  repalign run 07 epochs=5 --name peaks_short
  repalign params 03            (its parameters and defaults)

The notebook runs with the notebooks/ folder as its working directory and the pinned numerical settings (README,
"Reproducibility"). At any scale, figures go to figures/custom/<run name>, verdicts to results/custom/<run name>
and the executed copy to build/custom/<run name>.ipynb; the run name is <notebook>-<scale>-<hash of the
parameters>, or --name. Only make replicate and make paper write figures/, results/ and their paper/ folders.
"""

#: the output parameters a notebook takes, relative to ``notebooks/`` of the checkout
LOCATIONS = ("figures_dir", "results_dir")
#: below ``figures/`` and ``results/``, the folders any run may write (git ignores them)
PRIVATE = ("custom", "smoke")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=,+-]{0,119}$")


class NotebookFailed(RuntimeError):
    """A notebook raised in one of its cells (the partial executed copy is kept)."""


class NotebookInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C); nothing was written."""


# ------------------------------------------------------------------------------------------------ folders
def run_name(notebook: str | os.PathLike[str], scale: str, resolved: Mapping[str, Any]) -> str:
    """``<notebook>-<scale>-<8 hex digits>``: the sha256 of the resolved parameters (output folders left out)."""
    stem = params.resolve_notebook(notebook).stem
    kept = {k: v for k, v in resolved.items() if k not in LOCATIONS}
    digest = hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:8]
    return f"{stem}-{scale}-{digest}"


def _check_name(name: str) -> str:
    """``name`` when it can be one folder's name (``--name``), else a :class:`ParameterError` saying what can."""
    if not _NAME.match(name):
        raise params.ParameterError(
            f"--name {name!r}: a run name is one folder name of letters, digits and ._=,+- (e.g. depth3_wide)"
        )
    return name


def _published(folder: Path, root: Path) -> bool:
    """Whether ``folder`` lies in ``figures/`` or ``results/`` of the checkout outside their private folders."""
    for top in ("figures", "results"):
        base = (root / top).resolve()
        if folder == base or folder.is_relative_to(base):
            return not any(folder.is_relative_to(base / p) for p in PRIVATE)
    return False


def _relative_base(notebook: Path) -> Path:
    """What a notebook's relative output folders are relative to: ``notebooks/`` of the checkout when there is one
    (:func:`repalign.core.paths.resolve_output_dir`, whatever the notebook's own folder), else its folder."""
    return paths.notebooks_dir() if paths.repo_root() is not None else notebook.parent


def _custom_locations(root: Path, name: str, given: Mapping[str, Any], nbdir: Path) -> dict[str, str]:
    """``figures_dir`` and ``results_dir`` of a custom run: ``*/custom/<name>`` unless ``given`` names others, which
    must lie outside the published folders (relative folders are relative to ``nbdir``)."""
    tops = dict(zip(LOCATIONS, ("figures", "results"), strict=True))
    chosen = {key: os.path.relpath(root / top / "custom" / name, nbdir) for key, top in tops.items()}
    for key in LOCATIONS:
        if key in given:
            folder = Path(os.path.normpath(nbdir / Path(str(given[key])).expanduser())).resolve()
            if _published(folder, root):
                raise params.ParameterError(
                    f"{key}={given[key]}: figures/ and results/ (and their paper/ folders) are written by make "
                    f"replicate and make paper only; a run with other parameters writes {chosen[key]} (choose the "
                    "name with --name, or name a folder outside figures/ and results/)"
                )
            chosen[key] = str(given[key])
    return chosen


# ------------------------------------------------------------------------------------------------ running
def _tracking_engine(label: str, lines: bool, state: dict[str, Any]) -> str:
    """Register a papermill engine that notes the running code cell in ``state`` (``"cell"``: its number among the
    code cells) and, with ``lines``, prints one line as each code cell starts (busy told from hung) and one when a
    cell that took a minute or more ends."""
    from papermill.engines import NBClientEngine, papermill_engines

    class Tracked(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            start, complete, t0 = nb_man.cell_start, nb_man.cell_complete, time.monotonic()
            code = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]

            def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                if cell.cell_type == "code" and cell_index in code:
                    state.update(cell=code.index(cell_index) + 1, started=time.monotonic())
                    first = next((ln for ln in cell.source.splitlines() if ln and not ln.startswith("#")), "")
                    if lines:
                        print(f"[{label}] cell {state['cell']}/{len(code)} ({time.monotonic() - t0:.0f} s): "
                              f"{first[:70]}", flush=True)  # fmt: skip
                return start(cell, cell_index, **kw)

            def cell_complete(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                took = time.monotonic() - state.get("started", time.monotonic())
                if lines and cell_index in code and took >= 60:
                    print(f"[{label}] cell {code.index(cell_index) + 1}/{len(code)} done in {_duration(took)}",
                          flush=True)  # fmt: skip
                return complete(cell, cell_index, **kw)

            nb_man.cell_start, nb_man.cell_complete = cell_start, cell_complete
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("repalign-tracked", Tracked)
    return "repalign-tracked"


def _duration(seconds: float) -> str:
    """``"42 s"``, ``"12 min"``, ``"2 h 05 min"``."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60):02d} min"


def kernel_manager_class(env: Mapping[str, str], cwd: str | os.PathLike[str], log: str | None = None) -> type:
    """A jupyter_client ``AsyncKernelManager`` whose kernels start with ``env`` in ``cwd`` (this process's own
    environment and working directory stay as they are: papermill's ``cwd=`` is an ``os.chdir`` of the whole
    process, nteract/papermill#473), their stdout and stderr appended to ``log`` when given."""
    from jupyter_client.manager import AsyncKernelManager

    class PinnedKernelManager(AsyncKernelManager):
        async def start_kernel(self, **kw: Any) -> None:
            kw.update(env=dict(env), cwd=str(cwd))
            if log is None:
                await super().start_kernel(**kw)
                return
            with open(log, "ab") as fh:  # the kernel holds its own copy of the descriptor
                await super().start_kernel(**kw, stdout=fh, stderr=fh)

    return PinnedKernelManager


def run_notebook(
    notebook: str | os.PathLike[str],
    given: Mapping[str, Any],
    *,
    scale: str = "smoke",
    output: str | os.PathLike[str] | None = None,
    scale_dirs: bool = False,
    name: str | None = None,
    progress: str = "lines",
    log_output: bool = False,
    timeout: int | None = None,
) -> Path:
    """Check the parameters, then execute the notebook with papermill in ``notebooks/`` and return the output path.

    ``given`` overrides the scale's parameters (``notebooks/params/<scale>/<stem>.yaml``). The kernel runs with the
    pinned numerical settings. A custom run (the default) writes its figures and verdicts to ``figures/custom/<run
    name>`` and ``results/custom/<run name>`` (:func:`run_name`, or ``name``) whatever the yaml says, and its
    executed copy to ``build/custom/<run name>.ipynb``; ``scale_dirs`` (make's scale builds only) keeps the yaml's
    folders and refuses ``given``. The executed copy is written atomically (``output`` overrides where).
    ``progress``: ``"lines"`` (a line per code cell), ``"bar"`` (papermill's bar) or ``"none"``.

    Raises:
        NotebookFailed: a cell raised (the partial copy, with the traceback, is kept beside the output).
        NotebookInterrupted: Ctrl-C; no partial copy is left.
    """
    path = params.resolve_notebook(notebook)
    chosen, out = plan(path, given, scale=scale, output=output, scale_dirs=scale_dirs, name=name)
    return _run_planned(path, chosen, out, progress, log_output, timeout)


def plan(notebook: str | os.PathLike[str], given: Mapping[str, Any], *, scale: str = "smoke",
         output: str | os.PathLike[str] | None = None, scale_dirs: bool = False,
         name: str | None = None) -> tuple[dict[str, Any], Path]:  # fmt: skip
    """The parameters a run passes to papermill and where its executed copy goes (see :func:`run_notebook`),
    checked before any kernel starts; raises :class:`~repalign.run.params.ParameterError` naming the problem."""
    path = params.resolve_notebook(notebook)
    root = paths.repo_root() or Path.cwd()
    if scale_dirs and given:
        raise params.ParameterError(
            f"--scale-dirs builds take the {scale} yaml's parameters alone (make replicate, make paper); "
            f"with other parameters ({', '.join(given)}) run without it: the run writes under */custom/<run name>"
        )
    chosen = {**params.scale_parameters(path, scale), **dict(given)}
    resolved = params.validate(path, chosen)  # before any kernel starts: one clear message
    if scale_dirs:
        return chosen, Path(output) if output else root / "build" / scale / f"{path.stem}.ipynb"
    run = _check_name(name) if name else run_name(path, scale, resolved)
    locations = _custom_locations(root, run, given, _relative_base(path))
    chosen.update({k: v for k, v in locations.items() if k in resolved})  # the output folders the notebook has
    return chosen, Path(output) if output else root / "build" / "custom" / f"{run}.ipynb"


def kernel_environment() -> dict[str, str]:
    """The environment a notebook's kernel starts with: the pinned numerics (:func:`pinned_environment`), progress
    bars as plain text (no widget frozen at 0 %), and the data root as an absolute path (``$REPALIGN_DATA``, else
    ``./data`` of the folder the run starts from), so that the kernel, whose working folder is ``notebooks/``, reads
    the data that paper-check and the command line look for."""
    from repalign.data.base import data_root  # lazily, as in build_key: the runner's import stays light

    return {"REPALIGN_PROGRESS": "text", **pinned_environment(), "REPALIGN_DATA": str(data_root().absolute())}


def _run_planned(path: Path, chosen: Mapping[str, Any], out: Path, progress: str, log_output: bool,
                 timeout: int | None) -> Path:  # fmt: skip
    """Execute a planned run; the executed copy is written atomically, and nothing at all on Ctrl-C."""
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.stem}.part.ipynb")
    env = kernel_environment()
    try:
        _execute(path, part, chosen, env, progress, log_output, timeout)
    except KeyboardInterrupt:
        part.unlink(missing_ok=True)
        raise NotebookInterrupted(f"{path.stem}: interrupted; nothing was written") from None
    atomic_write_bytes(out, part.read_bytes())
    part.unlink()
    return out


def _execute(path: Path, part: Path, chosen: Mapping[str, Any], env: Mapping[str, str], progress: str,
             log_output: bool, timeout: int | None) -> None:  # fmt: skip
    """papermill on the notebook, its kernel started with ``env`` in the notebook's folder; ``timeout``: seconds a
    cell may run (None: no limit), a cell past it ends in one :class:`NotebookFailed` line."""
    import papermill as pm
    from nbclient.exceptions import CellTimeoutError

    state: dict[str, Any] = {}
    engine = _tracking_engine(path.stem, progress == "lines", state)
    _quiet_kernel_logs()
    try:
        pm.execute_notebook(
            str(path),
            str(part),
            parameters=dict(chosen),
            kernel_name="python3",
            kernel_manager_class=kernel_manager_class(env, path.parent),
            progress_bar={"desc": path.stem, "unit": "cell"} if progress == "bar" else False,
            log_output=log_output,
            execution_timeout=timeout,
            engine_name=engine,
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
        )
    except CellTimeoutError:
        kept = f"\nthe executed part: {part}" if part.is_file() else ""
        raise NotebookFailed(
            f"{path.stem} stopped in cell {state.get('cell', '?')}: it ran past the per-cell limit of {timeout} s "
            "(--timeout; make paper sets none unless PAPER_TIMEOUT is given). The units its recipes finished are "
            f"cached: run it again without a limit, or with a larger one, and they are not recomputed{kept}"
        ) from None
    except pm.PapermillExecutionError as err:
        if err.ename == "KeyboardInterrupt":  # Ctrl-C reached the kernel (same process group) before us
            raise KeyboardInterrupt from None
        raise NotebookFailed(
            f"{path.stem} stopped in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"the executed part, with the traceback: {part}"
        ) from None


def _quiet_kernel_logs() -> None:
    """papermill logs every cell's start at INFO; keep its warnings. (The kernel's own "running over TCP without
    encryption" and the "KeyboardInterrupt caught in kernel" that jupyter_client's shutdown interrupt provokes are
    silenced by starting the kernel with ``--IPKernelApp.log_level=CRITICAL``: both are harmless here.)"""
    import logging

    logging.getLogger("papermill").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="jupyter_client")


def _short(path: Path) -> str:
    """``path`` resolved, relative to the working directory when it lies below it."""
    path = Path(os.path.normpath(path.resolve()))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _run(args: argparse.Namespace) -> int:
    """``repalign run``: run one notebook and say where its outputs are; Ctrl-C prints one line (status 130)."""
    try:
        path = params.resolve_notebook(args.notebook)
        name = getattr(args, "name", None)
        chosen, out = plan(path, params.parse_assignments(args.assignments), scale=args.scale, output=args.output,
                           scale_dirs=args.scale_dirs, name=name)  # fmt: skip
        out = _run_planned(path, chosen, out, args.progress, args.log_output, args.timeout)
    except KeyboardInterrupt as err:
        said = err if isinstance(err, NotebookInterrupted) else "interrupted; nothing was written"
        print(f"\n{said}", file=sys.stderr)
        return 130
    shown = {k: _short(_relative_base(path) / str(chosen[k])) for k in LOCATIONS if k in chosen}
    print(f"executed copy: {_short(out)}; figures in {shown.get('figures_dir', '?')}, verdicts in "
          f"{shown.get('results_dir', '?')}")  # fmt: skip
    return 0


# ------------------------------------------------------------------------------------------------ build keys
def _strings(value: Any) -> Iterator[str]:
    """Every string in a parameter value (nested lists and mappings, their keys included)."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for k, v in value.items():
            yield from _strings(k)
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def _identity(path: Path) -> Any:
    """Cheap identity of a file (size, modification time in ns) or a folder (its own time and its entries')."""
    stat = path.stat()
    if not path.is_dir():
        return [stat.st_size, stat.st_mtime_ns]
    entries = sorted(path.iterdir())[:2000]
    return {
        "mtime_ns": stat.st_mtime_ns,
        "entries": {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in entries},
    }


def _named_files(resolved: Mapping[str, Any], nbdir: Path, package: Path) -> dict[str, Any]:
    """The data files and checkpoints the parameters name: registered data sources by name (their location under
    the data root or in an installed package) and existing paths (relative to ``notebooks/``), with their identity.
    Files of this package are left out: they are part of every notebook's code closure already."""
    from repalign.data import base  # lazily: only make's build keys look up data sources

    found: dict[str, Any] = {}
    for key, value in resolved.items():
        if key in LOCATIONS:
            continue
        for text in _strings(value):
            try:
                where = base.source(text).where()
            except (KeyError, ValueError):  # a path: relative to notebooks/ or under the data root ($REPALIGN_DATA)
                where = (
                    Path(os.path.normpath(nbdir / base.resolve_path(text))) if ("/" in text or os.sep in text) else None
                )
            if where is None or (where := where.resolve()).is_relative_to(package) or str(where) in found:
                continue
            found[str(where)] = _identity(where) if where.exists() else None
    return dict(sorted(found.items()))


def build_key(notebook: str | os.PathLike[str], scale: str) -> dict[str, Any]:
    """What ``build/<scale>/<notebook>.ipynb`` depends on beyond the notebook, its yaml and its code closure."""
    from repalign.data.base import data_root  # lazily: only make's build keys look up data sources

    path = params.resolve_notebook(notebook)
    resolved = params.validate(path, params.scale_parameters(path, scale))
    return {
        "notebook": path.stem,
        "scale": scale,
        "parameters": resolved,
        "numerics": settings(),
        "environment": {
            "data_root": str(data_root().resolve()),
            "CUDA_VISIBLE_DEVICES": os.environ.get("CUDA_VISIBLE_DEVICES"),
        },
        "files": _named_files(resolved, path.parent, Path(paths.__file__).resolve().parents[1]),
    }


def write_build_keys(build: str | os.PathLike[str], scales: Sequence[str], notebooks: Sequence[str] = ()) -> list[Path]:
    """Write ``<build>/<scale>/<notebook>.key`` for every scale and notebook (default all), each only when its
    content changed (its time then tells make what to re-run); returns the files rewritten."""
    written = []
    for scale in scales:
        for stem in notebooks or params.list_notebooks():
            file = Path(build) / scale / f"{params.resolve_notebook(stem).stem}.key"
            text = json.dumps(build_key(stem, scale), indent=1, sort_keys=True, default=str) + "\n"
            if not file.is_file() or file.read_text(encoding="utf-8") != text:
                written.append(atomic_write_text(file, text))
    return written


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repalign.run.notebook keys [--build build] --scale S ... [NOTEBOOK ...]`` (the Makefile's)."""
    parser = argparse.ArgumentParser(prog="python -m repalign.run.notebook")
    sub = parser.add_subparsers(dest="command", required=True)
    k = sub.add_parser("keys", help="write build/<scale>/<notebook>.key where it changed")
    k.add_argument("notebooks", nargs="*")
    k.add_argument("--build", default="build")
    k.add_argument("--scale", action="append", required=True)
    args = parser.parse_args(argv)
    written = write_build_keys(args.build, args.scale, args.notebooks)
    print(f"keys ok ({len(written)} changed)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
