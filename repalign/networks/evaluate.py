r"""Batched evaluation of a network: outputs, predictions, accuracy and summed scores, without gradients.

The one home of "run the model over these inputs without training it". :func:`evaluating` is the context every
evaluation runs in (the device rule of :func:`repalign.networks.runtime.get_device`, ``eval()`` mode,
``torch.no_grad()``, and the model put back as it was); on top of it

- :func:`predict` (and :func:`predict_classes`, :func:`accuracy`) runs a model over unlabelled inputs batch by batch
  and returns its outputs: fine-tuning's test scores (:mod:`repalign.networks.finetune`), the recipes' accuracies;
- :func:`batch_sums` adds up per-batch scores over labelled batches: the validation loss and accuracy of
  :func:`repalign.networks.training.train` and :func:`repalign.networks.ensemble.train_ensemble`, pre-training's
  validation pass (:mod:`repalign.networks.pretrain`);
- :func:`repalign.networks.features.extract` reads layers inside :func:`evaluating`.

.. math::  \hat Y = [\, f_\theta(x_{1:b});\ f_\theta(x_{b+1:2b});\ \dots \,], \qquad
           \mathrm{acc} = \tfrac1m \textstyle\sum_j [\arg\max_c \hat Y_{jc} = y_j], \qquad
           S_k = \textstyle\sum_B \mathrm{score}_k(f_\theta(x_B), y_B)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from repalign.core.arrays import to_numpy
from repalign.networks.runtime import get_device, model_device, model_dtype

__all__ = ["evaluating", "predict", "predict_classes", "accuracy", "batch_sums"]


@contextlib.contextmanager
def evaluating(model: nn.Module, device: Any = None) -> Iterator[torch.device]:
    """Run the block with ``model`` on the device, in ``eval()`` mode, under ``torch.no_grad()``; yields the device.

    The device is :func:`~repalign.networks.runtime.get_device` ``(device)`` (the package's device rule). Afterwards,
    also when the block raises, every submodule's train/eval flag is restored and a model that was moved goes
    back to the device it came from, so an evaluation leaves the model as it found it.
    """
    dev = get_device(device)
    home = model_device(model)
    modes = {module: module.training for module in model.modules()}
    try:
        if dev != home:
            model.to(dev)
        model.eval()
        with torch.no_grad():
            yield dev
    finally:
        for module, mode in modes.items():
            module.training = mode
        if dev != home:
            model.to(home)


def predict(
    model: nn.Module,
    x: Any,
    *,
    batch_size: int = 256,
    device: Any = None,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    r"""The model's outputs on ``x``, ``batch_size`` rows at a time, inside :func:`evaluating`.

    .. math::  \hat Y = [\, r(f_\theta(x_{1:b}));\ r(f_\theta(x_{b+1:2b}));\ \dots \,]

    The model runs on :func:`~repalign.networks.runtime.get_device` ``(device)`` (the device rule: ``None`` and
    ``"auto"`` mean CUDA when torch sees one, else the CPU); floating inputs are cast to the model's float dtype
    (:func:`~repalign.networks.runtime.model_dtype`), integer inputs are passed as they are. ``reduce`` (:math:`r`)
    is applied to each batch's output on the device (e.g. ``lambda out: out.argmax(1)``), so only what is kept
    comes back to the host.

    Shape: x (m, ...) inputs the model accepts (array or tensor) → (m, ...) outputs (after ``reduce``); no rows
    give an empty ``(0,)`` float32 array.

    Raises:
        ValueError: ``batch_size`` < 1, or a ``device`` torch does not know.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    dtype = model_dtype(model)
    xt = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    outputs = []
    with evaluating(model, device) as dev:
        for start in range(0, xt.shape[0], batch_size):
            xb = xt[start : start + batch_size].to(device=dev)
            if xb.is_floating_point():
                xb = xb.to(dtype=dtype)
            out = model(xb)
            outputs.append(to_numpy(reduce(out) if reduce is not None else out))
    if not outputs:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(outputs)


def predict_classes(model: nn.Module, x: Any, *, batch_size: int = 256, device: Any = None) -> np.ndarray:
    """Argmax class of each row of the model's outputs (:func:`predict`; same device rule).

    Shape: x (m, ...) → (m,) int64.
    """
    return predict(model, x, batch_size=batch_size, device=device, reduce=lambda out: out.argmax(dim=1))


def accuracy(model: nn.Module, x: Any, y: Any, *, batch_size: int = 256, device: Any = None) -> float:
    r"""Argmax accuracy on (x, y), :math:`\tfrac1m \sum_j [\arg\max_c f_\theta(x_j)_c = y_j]`; NaN for no rows.

    Runs :func:`predict_classes` (same device rule).

    Shape: x (m, ...), y (m,) int labels (any shape with m entries is flattened).
    """
    labels = to_numpy(y).reshape(-1)
    if labels.size == 0:
        return float("nan")
    return float(np.mean(predict_classes(model, x, batch_size=batch_size, device=device) == labels))


def batch_sums(
    forward: Callable[[torch.Tensor], Any],
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    score: Callable[[Any, torch.Tensor], Sequence[float]],
) -> tuple[list[float], int]:
    r"""Per-batch scores added up over labelled batches, under ``torch.no_grad()``.

    .. math::  S_k = \textstyle\sum_B \mathrm{score}_k(\mathrm{forward}(x_B), y_B), \qquad n = \sum_B |B|,

    each sum a Python float started at ``0.0`` and added to in batch order. The caller gives the batches already on
    the model's device and the model already in ``eval()`` mode (e.g. inside :func:`evaluating`), and turns sums
    into means (a size-weighted mean loss is ``score = float(mean_loss) * b``, an accuracy ``score = n_correct``).
    ``forward`` may return anything ``score`` reads (one output, or one per model of an ensemble).

    Shape: batches yield ``(x_B (b, ...), y_B (b, ...))``; ``score`` returns K floats; returns (K sums, n).
    No batch gives ``([], 0)``.
    """
    sums: list[float] = []
    count = 0
    with torch.no_grad():
        for xb, yb in batches:
            values = score(forward(xb), yb)
            if not sums:
                sums = [0.0] * len(values)
            for k, value in enumerate(values):
                sums[k] += value
            count += yb.shape[0]
    return sums, count
