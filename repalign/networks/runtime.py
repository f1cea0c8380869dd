"""The torch boundary's two rules: where a computation runs (:func:`get_device`) and how it is seeded (:func:`seeded`).

**Device.** Every function of :mod:`repalign.networks` that takes ``device`` resolves it here, the same way, and
defaults to ``device=None``:

- ``None`` and ``"auto"``: the first CUDA device when torch sees one (``torch.cuda.is_available()``), else the CPU;
- anything else (``"cpu"``, ``"cuda"``, ``"cuda:1"``, a ``torch.device``): ``torch.device(device)``.

The model and the inputs are moved to that device; results come back to the host as NumPy arrays. (The measure's
:class:`repalign.measure.alignment.AlignmentAccumulator` is not on this floor: it measures a tensor on the device
the tensor is on.) The distributed pre-training (:mod:`repalign.networks.pretrain`) adds one thing: under
``torchrun`` a CUDA device without an index is the process's local-rank GPU.

**Seeding.** :func:`seeded` runs a block with torch's global RNG seeded and restores the caller's RNG state
afterwards; model initialisation and training runs use it, so a seed means the same weights everywhere.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

__all__ = ["get_device", "seeded", "model_device", "model_dtype"]


def get_device(device: Any = None) -> torch.device:
    """The device a computation runs on, by the package's one device rule (module docstring).

    ``None`` or ``"auto"`` → ``cuda`` when torch sees a GPU, else ``cpu``; any other value → ``torch.device(value)``.

    Raises:
        ValueError: ``device`` is not something ``torch.device`` understands (the message lists what is).
    """
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise ValueError(
            f"unknown device {device!r}: use None or 'auto' (a GPU when torch sees one, else the CPU), 'cpu', "
            "'cuda', 'cuda:<index>' or a torch.device"
        ) from e


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


def model_device(model: nn.Module) -> torch.device:
    """Where ``model`` lives: the device of its first parameter (or buffer); the CPU for a module with neither."""
    for t in itertools.chain(model.parameters(), model.buffers()):
        return t.device
    return torch.device("cpu")


def model_dtype(model: nn.Module) -> torch.dtype:
    """The float dtype inputs are cast to for ``model``: its first floating parameter's (else buffer's) dtype.

    ``torch.get_default_dtype()`` for a module with no floating parameter or buffer.
    """
    for t in itertools.chain(model.parameters(), model.buffers()):
        if t.is_floating_point():
            return t.dtype
    return torch.get_default_dtype()
