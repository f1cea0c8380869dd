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


def provenance(**extra: Any) -> dict[str, Any]:
    """What made a result: package versions, platform and a UTC timestamp, plus ``extra`` entries.

    Every result file the project writes embeds this dictionary.
    """
    from repalign import __version__

    info: dict[str, Any] = {
        "repalign": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }
    with contextlib.suppress(ImportError):
        import torch

        info["torch"] = torch.__version__
    info.update(extra)
    return info


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
