"""Atomic file writes: every result the project writes goes through here.

:func:`atomic_write_bytes` writes to a temporary sibling file, ``fsync``s it, then ``os.replace``s it into place, so
an interrupted run never leaves a half-written file that a later run would load.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.arrays import to_numpy

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "json_default",
    "atomic_write_json",
    "atomic_save_npz",
    "sha256_file",
]


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


def sha256_file(path: str | os.PathLike[str]) -> str:
    """The sha256 of a file's bytes, as hex, read in 1 MiB blocks (a file of any size in constant memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
