"""The torch boundary's two rules: where a computation runs (:func:`get_device`) and how it is seeded (:func:`seeded`).

**Device.** Every function of the library that takes ``device`` resolves it here, the same way: ``None`` and
``"auto"`` mean the first CUDA device when torch sees one, else the CPU; anything else is passed to
``torch.device`` (``"cpu"``, ``"cuda:1"``, a ``torch.device``). Models and inputs are moved to that device; results
come back to the host as NumPy arrays.

**Seeding.** :func:`seeded` runs a block with torch's global RNG seeded and restores the caller's RNG state
afterwards; model initialisation and training runs use it, so a seed means the same weights everywhere.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch

__all__ = ["get_device", "seeded"]


def get_device(device: Any = None) -> Any:
    """Resolve a device: ``None`` or ``"auto"`` picks CUDA when available, else CPU."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return int(seed)


@contextlib.contextmanager
def seeded(seed: int | None) -> Iterator[None]:
    """Run the block with torch's global RNG seeded, then restore the caller's RNG state.

    ``torch.manual_seed(seed)`` (CPU and CUDA) inside ``torch.random.fork_rng`` over the CPU and every CUDA
    device. ``seed=None`` seeds nothing (the block draws from the global RNG as it is). The package's one
    seeding rule: model initialisation (:func:`init_model`, factories' ``seed=``) and the global RNG of a
    :func:`train` run use it.

    Raises:
        ValueError: ``seed`` is not a non-negative int (or None).
    """
    if seed is None:
        yield
        return
    seed = _check_seed(seed)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield
