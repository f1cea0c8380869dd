"""``repalign run``: one notebook through papermill, its parameters checked before a kernel starts, one line per cell."""

from __future__ import annotations

import argparse
import os
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repalign.core import paths
from repalign.core.files import atomic_write_bytes
from repalign.run import params

__all__ = [
    "run_notebook",
]

RUN_EXAMPLES = """\
examples:
  repalign run 03 depth=3 width=256
  repalign run 03_architectures.ipynb seeds=[0,1,2] --scale replicate
  repalign params 03            (its parameters and defaults)

The notebook runs with the notebooks/ folder as its working directory; the executed copy goes to
build/custom/<notebook>.ipynb, figures to figures/custom and verdicts to results/custom (unless given).
"""


def _line_progress_engine(label: str) -> str:
    """Register a papermill engine that prints one line as each code cell starts (busy told from hung)."""
    from papermill.engines import NBClientEngine, papermill_engines

    class LineProgress(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            start, t0 = nb_man.cell_start, time.monotonic()
            code = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]

            def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                if cell.cell_type == "code" and cell_index in code:
                    first = next((ln for ln in cell.source.splitlines() if ln and not ln.startswith("#")), "")
                    print(
                        f"[{label}] cell {code.index(cell_index) + 1}/{len(code)} "
                        f"({time.monotonic() - t0:.0f} s): {first[:70]}",
                        flush=True,
                    )
                return start(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("repalign-lines", LineProgress)
    return "repalign-lines"


def run_notebook(
    notebook: str | os.PathLike[str],
    given: Mapping[str, Any],
    *,
    scale: str = "smoke",
    output: str | os.PathLike[str] | None = None,
    custom_dirs: bool = True,
    progress: str = "lines",
    log_output: bool = False,
    timeout: int | None = None,
) -> Path:
    """Check the parameters, then execute the notebook with papermill in ``notebooks/`` and return the output path.

    ``given`` overrides the scale's parameters (``notebooks/params/<scale>/<stem>.yaml``); with ``custom_dirs`` the
    figures and verdicts go to ``figures/custom`` and ``results/custom`` unless ``given`` names folders. The
    executed copy is written atomically (``build/custom/<stem>.ipynb`` by default). ``progress``: ``"lines"`` (a
    line per code cell), ``"bar"`` (papermill's bar) or ``"none"``.
    """

    path = params.resolve_notebook(notebook)
    chosen = {**params.scale_parameters(path, scale), **dict(given)}
    if custom_dirs:
        chosen.setdefault("figures_dir", "../figures/custom")
        chosen.setdefault("results_dir", "../results/custom")
    params.validate(path, chosen)  # before any kernel starts: one clear message
    root = paths.repo_root() or Path.cwd()
    out = Path(output) if output else root / "build" / "custom" / f"{path.stem}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.stem}.part.ipynb")
    import papermill as pm

    engine = _line_progress_engine(path.stem) if progress == "lines" else None
    _quiet_kernel_logs()
    os.environ.setdefault("REPALIGN_PROGRESS", "text")  # the kernel's bars: plain text, no widget frozen at 0 %
    try:
        _execute(pm, path, part, chosen, progress, log_output, timeout, engine)
    except pm.PapermillExecutionError as err:
        raise NotebookFailed(
            f"{path.stem} stopped in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"the executed part, with the traceback: {part}"
        ) from None
    atomic_write_bytes(out, part.read_bytes())
    part.unlink()
    return out


class NotebookFailed(RuntimeError):
    """A notebook raised in one of its cells (the partial executed copy is kept)."""


def _execute(pm: Any, path: Path, part: Path, chosen: Mapping[str, Any], progress: str, log_output: bool,
             timeout: int | None, engine: str | None) -> None:  # fmt: skip
    pm.execute_notebook(
        str(path),
        str(part),
        parameters=chosen,
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar={"desc": path.stem, "unit": "cell"} if progress == "bar" else False,
        log_output=log_output,
        execution_timeout=timeout,
        engine_name=engine,
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
    )


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

    given = params.parse_assignments(args.assignments)
    out = run_notebook(
        args.notebook,
        given,
        scale=args.scale,
        output=args.output,
        custom_dirs=not args.scale_dirs,
        progress=args.progress,
        log_output=args.log_output,
        timeout=args.timeout,
    )
    values = {**params.scale_parameters(args.notebook, args.scale), **given}
    if not args.scale_dirs:
        values = {"figures_dir": "../figures/custom", "results_dir": "../results/custom", **values}
    nbdir = params.resolve_notebook(args.notebook).parent
    shown = {k: _short(nbdir / str(values[k])) for k in ("figures_dir", "results_dir") if k in values}
    print(f"executed copy: {_short(out)}; figures in {shown.get('figures_dir', '?')}, verdicts in "
          f"{shown.get('results_dir', '?')}")  # fmt: skip
    return 0
