"""Execute notebooks in place at their smoke defaults, refreshing the outputs nbval compares against.

Usage: python scripts/store_outputs.py notebooks/00_quickstart.ipynb [...]

Runs each notebook with nbclient in the ``notebooks/`` folder (as papermill and nbval do), keeps the cell ids,
strips execution timestamps and writes the notebook back atomically. Figures are stored as the PNGs
``plotting.save_figure`` writes (displayed whatever the matplotlib backend); progress bars are off
(``REPALIGN_PROGRESS=off``), so the stored outputs hold no frozen widget.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from repalign.core.files import atomic_write_text
from repalign.core.numerics import pinned_environment

# the same environment `make test` runs nbval in, so the stored verdicts are the ones nbval recomputes, under the
# pinned numerical settings every run gets (README, "Reproducibility"): the kernel inherits this environment
os.environ.update(pinned_environment())
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("REPALIGN_PROGRESS", "off")


def store(path: Path, timeout: int = 600) -> None:
    nb = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
        # the kernel's "running over TCP without encryption" and the "KeyboardInterrupt caught in kernel" that
        # jupyter_client's shutdown interrupt provokes: both harmless, both silenced
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
    ).execute()
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
    nb.metadata.pop("papermill", None)
    atomic_write_text(path, nbformat.writes(nb) + "\n")
    print(f"{path}: executed in {time.perf_counter() - start:.1f} s")


def main(argv: list[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    for name in argv:
        store(Path(name))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
