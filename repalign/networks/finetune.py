r"""Fine-tuning: a (pre-trained) network trained further on a target task, then scored on a test set.

The transfer experiments' learner (:mod:`repalign.recipes.transfer`, notebooks 09 and 10; the peaks source's
fine-tuning in :mod:`repalign.recipes.peaks`). :func:`fine_tune` gives the network an output head of the target's
size (drawn afresh under ``seed`` when it must be replaced, :func:`repalign.networks.models.replace_head`),
optionally freezes everything else (``freeze_backbone``: a linear probe trained by the optimizer), trains the
whole network with :func:`repalign.networks.training.train` and scores it with the batched evaluation of
:mod:`repalign.networks.evaluate`:

.. math::  \text{classification:}\quad \min_\theta -\tfrac1n \textstyle\sum_j \log \mathrm{softmax}(f_\theta(x_j))_{y_j},
           \quad \mathrm{acc} = \tfrac1m \textstyle\sum_j [\arg\max_c f_\theta(x'_j)_c = y'_j];

.. math::  \text{regression:}\quad \min_\theta \tfrac1n \textstyle\sum_j \lVert f_\theta(x_j) - y_j \rVert^2 / k,
           \quad \mathrm{mse} = \tfrac{1}{mk} \textstyle\sum_j \lVert f_\theta(x'_j) - y'_j \rVert^2.

The device follows the package's rule (:func:`repalign.networks.runtime.get_device`). On a GPU the training runs
under bfloat16 autocast (``amp="auto"``, :func:`precision`; the weights and the optimizer stay float32, the loss is
computed in float32), on the CPU in float32, as before. With ``progress`` each epoch prints one line with the
images per second and the time left.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import nn

from repalign.core.arrays import to_numpy
from repalign.networks.evaluate import accuracy, predict
from repalign.networks.models import output_head, replace_head
from repalign.networks.runtime import get_device
from repalign.networks.training import train

__all__ = [
    "AMP_CHOICES",
    "precision",
    "fine_tune",
]

#: ``fine_tune(amp=...)``: ``"auto"`` (bfloat16 autocast on a CUDA device that has it, else float32), ``"off"``
#: (float32), ``"bfloat16"`` (bfloat16 autocast on any device, the CPU included: for tests)
AMP_CHOICES = ("auto", "off", "bfloat16")


def precision(amp: str, kind: str | torch.device) -> str:
    """What :func:`fine_tune` trains in on a device of type ``kind`` (``"cuda"``, ``"cpu"`` or a ``torch.device``):
    ``"bfloat16 autocast"`` or ``"float32"``. ``"auto"`` is bfloat16 autocast on a CUDA GPU that has bfloat16, else
    float32 (the rule :data:`repalign.core.provenance.PRECISION` states in the claim files)."""
    if amp not in AMP_CHOICES:
        raise ValueError(f"amp must be one of {AMP_CHOICES}, got {amp!r}")
    if amp == "off":
        return "float32"
    if amp == "bfloat16":
        return "bfloat16 autocast"
    cuda = getattr(kind, "type", kind) == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    return "bfloat16 autocast" if cuda else "float32"


def _split_data(data: Any, name: str) -> tuple[Any, Any]:
    """``(x, y)`` from a pair or an object with ``.x`` and ``.y`` (a :class:`repalign.data.Dataset`)."""
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise ValueError(f"{name} must be an (x, y) pair or a Dataset with .x and .y")


def fine_tune(
    model: Any,
    train_x: Any,
    train_y: Any,
    test_x: Any,
    test_y: Any,
    *,
    num_classes: int | None = None,
    task: str = "multiclass",
    reset_head: bool | None = None,
    epochs: int = 10,
    optimizer: str = "adam",
    lr: float = 1e-3,
    batch_size: int = 64,
    seed: int = 0,
    device: Any = None,
    freeze_backbone: bool = False,
    track_test: bool = False,
    progress: bool = True,
    eval_batch_size: int = 256,
    amp: str = "auto",
    **train_kwargs: Any,
) -> dict[str, Any]:
    r"""Fine-tune a (pre-trained) network on a target task (classification or regression) and score it on a test set.

    ``task="multiclass"`` (default): the head is replaced by a new ``num_classes``-way layer drawn under ``seed``
    when needed (:func:`repalign.networks.models.replace_head`; ``reset_head=True`` replaces it even when it already has
    ``num_classes`` outputs), optionally every other parameter is frozen (``freeze_backbone``: a linear probe
    trained by the optimizer), then the whole model is trained with cross-entropy by
    :func:`repalign.networks.training.train`:

    .. math::  \min_\theta\; -\tfrac1n \textstyle\sum_j \log \mathrm{softmax}(f_\theta(x_j))_{y_j}.

    ``task="regression"``: real targets (n,) or (n, k); the head gets k outputs (``num_classes`` is not used) and is
    always drawn afresh under ``seed`` unless ``reset_head=False`` (a source head fits the source's targets, not
    the target's); the loss is the mean squared error
    :math:`\tfrac{1}{nk}\sum_j \lVert f_\theta(x_j) - y_j\rVert^2` and the test score is the same mean on the test
    set (float64, :func:`repalign.networks.evaluate.predict`).

    Test accuracy is the argmax agreement of the final model on ``test_x`` (:func:`repalign.networks.evaluate.accuracy`,
    ``eval_batch_size`` rows at a time). With ``track_test`` the test set is also passed as ``x_val``/``y_val`` so
    ``history["val_acc"]`` (``"val_loss"``) is the test score per epoch. ``device``: where the network is trained and
    scored, by the package's device rule (:func:`repalign.networks.runtime.get_device`: ``None``/``"auto"`` is CUDA
    when torch sees one, else the CPU); ``train_kwargs`` go to ``train`` (e.g. ``momentum``, ``weight_decay``).
    ``amp``: the precision of training (:func:`precision`): ``"auto"`` is bfloat16 autocast on a GPU and float32 on
    the CPU. With ``progress`` one line per epoch gives the images per second and the time left.

    Shape:
        - ``train_x``: (n, ...) inputs the model accepts; ``train_y``: (n,) integer labels in [0, num_classes)
          (regression: (n,) or (n, k) floats) (or ``train_x`` an object with ``.x``/``.y`` and ``train_y=None``,
          as :func:`repalign.networks.training.train` accepts)
        - ``test_x``: (m, ...); ``test_y``: (m,) or (m, k) (or an object with ``.x``/``.y`` and ``test_y=None``)

    Returns:
        ``{"test_accuracy", "test_loss", "history", "model", "head_replaced"}``: ``test_accuracy`` is ``None``
        for regression and ``test_loss`` (test mean squared error) is ``None`` for classification.
    """
    if task not in ("multiclass", "regression"):
        raise ValueError(f"task must be 'multiclass' or 'regression', got {task!r}")
    dev = get_device(device)
    mode = precision(amp, dev.type)
    outputs, reset = _head_size(task, num_classes, reset_head, train_x, train_y)
    head_replaced = _fit_head(model, outputs, reset, seed)
    if freeze_backbone:
        _freeze_all_but_head(model)
    extra: dict[str, Any] = dict(train_kwargs)
    if track_test:
        extra["x_val"] = test_x
        if test_y is not None:
            extra["y_val"] = test_y
    if progress:
        extra["callback"] = _epoch_lines(epochs, _count(train_x, train_y), extra.get("callback"))
    autocast = torch.autocast(dev.type, dtype=torch.bfloat16) if mode != "float32" else contextlib.nullcontext()
    with autocast:
        result = train(model, train_x, train_y, task=task, optimizer=optimizer, lr=lr, batch_size=batch_size,
                       epochs=epochs, seed=seed, device=dev, progress=progress, **extra)  # fmt: skip
    trained = result.model
    if test_y is None:
        test_x, test_y = _split_data(test_x, "test_x")
    regression = task == "regression"
    return {
        "test_accuracy": None
        if regression
        else accuracy(trained, test_x, test_y, batch_size=eval_batch_size, device=dev),
        "test_loss": _test_mse(trained, test_x, test_y, eval_batch_size, dev) if regression else None,
        "history": result.history,
        "model": trained,
        "head_replaced": head_replaced,
    }


def _count(train_x: Any, train_y: Any) -> int:
    """The number of training examples (of an array, a Dataset or an object with ``.x``/``.y``)."""
    x = _split_data(train_x, "train_x")[0] if train_y is None and hasattr(train_x, "x") else train_x
    return len(x)


def _epoch_lines(epochs: int, n: int, inner: Callable[[int, nn.Module], Any] | None) -> Callable[[int, nn.Module], Any]:
    """A training callback that prints ``fine-tune epoch e/E: N images/s, ETA t`` after each epoch (``inner``, the
    caller's own callback, is called too and its value kept)."""
    start = time.perf_counter()

    def callback(epoch: int, model: nn.Module) -> Any:
        if epoch > 0:
            elapsed = time.perf_counter() - start
            left = elapsed / epoch * (epochs - epoch)
            print(f"fine-tune epoch {epoch}/{epochs}: {n * epoch / max(elapsed, 1e-9):,.0f} images/s, "
                  f"ETA {left / 60:.1f} min", flush=True)  # fmt: skip
        return inner(epoch, model) if inner is not None else None

    return callback


def _head_size(
    task: str, num_classes: int | None, reset_head: bool | None, train_x: Any, train_y: Any
) -> tuple[int, bool]:
    """``(outputs, reset)``: the head's size for the task and whether it is drawn afresh even when it fits.

    Classification: ``num_classes`` outputs, reset only when ``reset_head``; regression: one output per target
    column, reset unless ``reset_head=False`` (a source head fits the source's targets, not the target's).
    """
    if task == "regression":
        y_arr = to_numpy(_split_data(train_x, "train_x")[1] if train_y is None else train_y)
        return (1 if y_arr.ndim == 1 else int(y_arr.shape[1])), (True if reset_head is None else bool(reset_head))
    if num_classes is None or num_classes < 2:
        raise ValueError(f"num_classes must be >= 2 for a classification head, got {num_classes}")
    return int(num_classes), bool(reset_head)


def _fit_head(model: nn.Module, outputs: int, reset: bool, seed: int) -> bool:
    """Give ``model`` an ``outputs``-way head drawn under ``seed`` (:func:`repalign.networks.models.replace_head`).

    With ``reset`` a head that already has ``outputs`` outputs is redrawn too (through another size, so that
    ``replace_head`` draws a fresh layer). Returns whether the head was replaced.
    """
    if reset and getattr(output_head(model), "out_features", None) == outputs:
        replace_head(model, outputs + 1, seed=seed)
    return replace_head(model, outputs, seed=seed)


def _freeze_all_but_head(model: nn.Module) -> None:
    """``requires_grad`` only for the output head's parameters (:func:`repalign.networks.models.output_head`)."""
    head = output_head(model)
    head_params = set() if head is None else {id(p) for p in head.parameters()}
    for p in model.parameters():
        p.requires_grad_(id(p) in head_params)


def _test_mse(model: nn.Module, x: Any, y: Any, batch_size: int, device: Any) -> float:
    r"""Test mean squared error :math:`\tfrac{1}{mk}\sum_{j,c} (f(x_j)_c - y_{jc})^2` in float64; NaN for no rows.

    Shape: x (m, ...), y (m,) or (m, k) with the model's output reshaped to y's shape.
    """
    targets = np.asarray(to_numpy(y), dtype=np.float64)
    pred = predict(model, x, batch_size=batch_size, device=device).astype(np.float64).reshape(targets.shape)
    return float(np.mean((pred - targets) ** 2)) if targets.size else float("nan")
