"""Where things are on disk: the repository checkout, its notebooks, and a notebook's output folders."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["repo_root", "notebooks_dir", "resolve_output_dir"]


def repo_root() -> Path | None:
    """The repository checkout this package runs from (it has ``notebooks/``), or None for a plain install."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "notebooks").is_dir() and (root / "pyproject.toml").is_file() else None


def notebooks_dir() -> Path:
    """``<repository>/notebooks``; raises ``FileNotFoundError`` outside a checkout (the notebooks do not install)."""
    root = repo_root()
    if root is None:
        raise FileNotFoundError(
            "the notebooks are not installed with the package: clone the repository "
            "(git clone … && cd repalign) and run from the checkout"
        )
    return root / "notebooks"


def resolve_output_dir(folder: str | os.PathLike[str]) -> Path:
    """Where a notebook's output folder (``figures_dir``, ``results_dir``) is.

    An absolute path as it is. A relative one, in a Jupyter kernel running from a repository checkout, against the
    checkout's ``notebooks/`` folder: the notebooks' defaults such as ``../figures/smoke`` mean
    ``<repository>/figures/smoke`` whatever the kernel's working directory (plain ``papermill
    notebooks/00_quickstart.ipynb out.ipynb`` from the repository root writes there too). Elsewhere (scripts, the
    command line, an installed package) against the working directory, as usual.
    """
    path = Path(folder).expanduser()
    if path.is_absolute() or not _in_kernel():
        return path
    root = repo_root()
    return (root / "notebooks" / path).resolve() if root is not None else path


def _in_kernel() -> bool:
    import sys

    if "ipykernel" not in sys.modules:
        return False
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover
        return False
    return get_ipython() is not None
