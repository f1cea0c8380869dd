r"""Batched evaluation of a network: outputs, predictions and accuracy, in eval mode and without gradients.

The one home of "run the model over these inputs": every evaluation in the library (fine-tuning's test score,
pre-training's and transfer's accuracies, the peaks source's test loss) goes through :func:`predict`, so eval mode,
``no_grad``, the device rule (:func:`repalign.networks.runtime.get_device`) and the input dtype are handled once.

.. math::  \hat Y = [\, f_\theta(x_{1:b});\ f_\theta(x_{b+1:2b});\ \dots \,], \qquad
           \mathrm{acc} = \tfrac1m \textstyle\sum_j [\arg\max_c \hat Y_{jc} = y_j]
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from repalign.core.arrays import to_numpy
from repalign.networks.runtime import get_device

__all__ = ["predict", "predict_classes", "accuracy"]


def predict(
    model: nn.Module,
    x: Any,
    *,
    batch_size: int = 256,
    device: Any = None,
    reduce: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> np.ndarray:
    """The model's outputs on ``x``, batch by batch, in eval mode under ``torch.no_grad()``.

    The model runs on :func:`~repalign.networks.runtime.get_device` ``(device)`` (``None``/``"auto"``: CUDA when
    there is one); floating inputs are cast to the model's parameter dtype. The model's training mode is restored
    afterwards. ``reduce`` is applied to each batch's output on the device (e.g. ``lambda out: out.argmax(1)``),
    so only what is kept comes back to the host.

    Shape: x (m, ...) inputs the model accepts (array or tensor) → (m, ...) outputs (after ``reduce``).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dev = get_device(device)
    ref = next(model.parameters(), None)
    dtype = ref.dtype if ref is not None else torch.float32
    model.to(dev)
    xt = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with torch.no_grad():
            for start in range(0, xt.shape[0], batch_size):
                xb = xt[start : start + batch_size].to(device=dev)
                if xb.is_floating_point():
                    xb = xb.to(dtype=dtype)
                out = model(xb)
                outputs.append(to_numpy(reduce(out) if reduce is not None else out))
    finally:
        model.train(was_training)
    if not outputs:
        return np.zeros((0,), dtype=np.float32)
    return np.concatenate(outputs)


def predict_classes(model: nn.Module, x: Any, *, batch_size: int = 256, device: Any = None) -> np.ndarray:
    """Argmax class of each row of the model's outputs. Shape: x (m, ...) → (m,) int64."""
    return predict(model, x, batch_size=batch_size, device=device, reduce=lambda out: out.argmax(dim=1))


def accuracy(model: nn.Module, x: Any, y: Any, *, batch_size: int = 256, device: Any = None) -> float:
    """Argmax accuracy on (x, y): the share of rows whose predicted class is the label. NaN for no rows.

    Shape: x (m, ...), y (m,) int labels.
    """
    labels = to_numpy(y).reshape(-1)
    if labels.size == 0:
        return float("nan")
    return float(np.mean(predict_classes(model, x, batch_size=batch_size, device=device) == labels))
