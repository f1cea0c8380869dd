"""Small shared helpers: devices, array conversion, provenance and atomic file writes.

Everything that writes a result goes through :func:`atomic_write_bytes` (write to a temporary file in the same
folder, ``fsync``, then ``os.replace``), so an interrupted run never leaves a half-written file that a later run
would load.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import platform
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "get_device",
    "to_numpy",
    "provenance",
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "atomic_save_npz",
    "json_default",
    "resolve_output_dir",
    "progress_bar",
]


def get_device(device: Any = None) -> Any:
    """Resolve a device: ``None`` or ``"auto"`` picks CUDA when available, else CPU."""
    import torch

    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return np.asarray(x)


def provenance(*, timestamp: bool = True, **extra: Any) -> dict[str, Any]:
    """What made a result: package versions, platform and (``timestamp``) a UTC timestamp, plus ``extra`` entries.

    Every result file the project writes embeds this dictionary. Files a user re-creates and compares byte for
    byte (claim verdicts, ``make replicate``'s outputs) pass ``timestamp=False``: same inputs, same bytes.
    """
    from repalign import __version__

    info: dict[str, Any] = {
        "repalign": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    if timestamp:
        info["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    import sys

    if "torch" in sys.modules:  # with its build tag (e.g. 2.14.1+cu130)
        info["torch"] = sys.modules["torch"].__version__
    else:  # the installed version, without importing torch (seconds, and heavy) for a NumPy-only measure
        with contextlib.suppress(ImportError):
            from importlib.metadata import version

            info["torch"] = version("torch")
    info.update(extra)
    return info


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
    from repalign.params import repo_root

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


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar that reads well wherever it runs: ``$REPALIGN_PROGRESS`` ``"off"`` (none), ``"text"`` (plain text,
    at most one update every 10 s) or ``"auto"`` (the default: tqdm.auto, a widget in a live Jupyter session;
    papermill and nbval runs started by ``python -m repalign run`` / ``make`` set ``text`` / ``off``, so stored
    notebooks hold no widget frozen at 0 %). ``kwargs`` go to tqdm (``disable=True`` still disables)."""
    mode = os.environ.get("REPALIGN_PROGRESS", "auto")
    if mode == "off":
        kwargs["disable"] = True
    if mode == "text":
        from tqdm import tqdm

        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("ascii", True)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm(iterable, **kwargs)


def _write(text: str, **kwargs: Any) -> None:
    """``tqdm.write``: print a line without breaking a running bar."""
    from tqdm import tqdm

    tqdm.write(text, **kwargs)


progress_bar.write = _write  # type: ignore[attr-defined]  # a drop-in for `from tqdm.auto import tqdm`


@contextlib.contextmanager
def _temporary_sibling(path: Path) -> Iterator[Path]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp creates 0600; give the file the permissions open() would
    try:
        yield tmp_path
        with open(tmp_path, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary sibling file, fsync, rename)."""
    path = Path(path)
    with _temporary_sibling(path) as tmp:
        tmp.write_bytes(data)
    return path


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_default(obj: Any) -> Any:
    """``json.dumps`` fallback for NumPy scalars/arrays, torch tensors, paths and sets."""
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if hasattr(obj, "detach") and hasattr(obj, "tolist"):
        return obj.detach().cpu().tolist()
    if isinstance(obj, (Path, os.PathLike)):
        return os.fspath(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"object of type {type(obj).__name__} is not JSON serialisable")


def atomic_write_json(path: str | os.PathLike[str], obj: Any, *, indent: int = 2) -> Path:
    """Serialise ``obj`` to JSON (NumPy/torch aware) and write it atomically."""
    text = json.dumps(obj, indent=indent, sort_keys=True, default=json_default)
    return atomic_write_text(path, text + "\n")


def atomic_save_npz(path: str | os.PathLike[str], arrays: Mapping[str, Any]) -> Path:
    """Save a mapping of arrays as an ``.npz`` file atomically (no pickles inside)."""
    path = Path(path)
    with _temporary_sibling(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: to_numpy(v) for k, v in arrays.items()})
    return path
