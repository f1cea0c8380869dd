"""Array helpers shared by every layer: NumPy views of tensors and content fingerprints for cache keys."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = [
    "data_fingerprint",
    "to_numpy",
]


def data_fingerprint(*arrays: np.ndarray) -> str:
    """A short content hash of arrays (shape, dtype and bytes), for cache keys."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def to_numpy(x: Any) -> np.ndarray:
    """Return ``x`` as a NumPy array (torch tensors are detached and moved to the CPU)."""
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        return x.detach().cpu().numpy()
    return np.asarray(x)
