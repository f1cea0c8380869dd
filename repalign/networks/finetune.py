"""TODO docstring (from transfer)."""

from __future__ import annotations

from typing import Any

import numpy as np

from repalign.core.arrays import to_numpy
from repalign.networks.models import output_head, replace_head
from repalign.networks.training import train

__all__ = [
    "fine_tune",
]


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
    :math:`\tfrac1n\sum_j \lVert f_\theta(x_j) - y_j\rVert^2` and the test score is the same mean on the test set.

    Test accuracy is the argmax agreement of the final model on ``test_x``. With ``track_test`` the test set
    is also passed as ``x_val``/``y_val`` so ``history["val_acc"]`` (``"val_loss"``) is the test score per epoch.

    Shape:
        - ``train_x``: (n, ...) inputs the model accepts; ``train_y``: (n,) integer labels in [0, num_classes)
          (regression: (n,) or (n, k) floats) (or ``train_x`` an object with ``.x``/``.y`` and ``train_y=None``,
          as :func:`repalign.networks.training.train` accepts)
        - ``test_x``: (m, ...); ``test_y``: (m,) or (m, k) (or an object with ``.x``/``.y`` and ``test_y=None``)

    Returns:
        ``{"test_accuracy", "test_loss", "history", "model", "head_replaced"}``: ``test_accuracy`` is ``None``
        for regression and ``test_loss`` (test mean squared error) is ``None`` for classification.
    """
    import torch

    if task not in ("multiclass", "regression"):
        raise ValueError(f"task must be 'multiclass' or 'regression', got {task!r}")
    if task == "regression":
        y_arr = to_numpy(_split_data(train_x, "train_x")[1] if train_y is None else train_y)
        outputs = 1 if y_arr.ndim == 1 else int(y_arr.shape[1])
        reset = True if reset_head is None else bool(reset_head)
    else:
        if num_classes is None or num_classes < 2:
            raise ValueError(f"num_classes must be >= 2 for a classification head, got {num_classes}")
        outputs = int(num_classes)
        reset = bool(reset_head)
    if reset:
        head = output_head(model)
        old = None if head is None else getattr(head, "out_features", None)
        if old == outputs:  # same size: go through another size so replace_head draws a fresh layer under seed
            replace_head(model, outputs + 1, seed=seed)
        head_replaced = replace_head(model, outputs, seed=seed)
    else:
        head_replaced = replace_head(model, outputs, seed=seed)
    if freeze_backbone:
        head = output_head(model)
        head_params = set() if head is None else {id(p) for p in head.parameters()}
        for p in model.parameters():
            p.requires_grad_(id(p) in head_params)

    extra: dict[str, Any] = dict(train_kwargs)
    if track_test:
        extra["x_val"] = test_x
        if test_y is not None:
            extra["y_val"] = test_y
    result = train(
        model,
        train_x,
        train_y,
        task=task,
        optimizer=optimizer,
        lr=lr,
        batch_size=batch_size,
        epochs=epochs,
        seed=seed,
        device=device,
        progress=progress,
        **extra,
    )
    trained = result.model
    ref = next(trained.parameters())
    if test_y is None:
        test_x, test_y = _split_data(test_x, "test_x")
    xt = test_x if isinstance(test_x, torch.Tensor) else torch.as_tensor(np.asarray(test_x))
    if task == "regression":
        yt_reg = np.asarray(to_numpy(test_y), dtype=np.float64)
        out_rows = []
        was_training = trained.training
        trained.eval()
        with torch.no_grad():
            for start in range(0, xt.shape[0], eval_batch_size):
                xb = xt[start : start + eval_batch_size].to(device=ref.device)
                if xb.is_floating_point():
                    xb = xb.to(dtype=ref.dtype)
                out_rows.append(trained(xb).detach().cpu().numpy().astype(np.float64))
        trained.train(was_training)
        pred_reg = np.concatenate(out_rows) if out_rows else np.zeros((0, 1))
        pred_reg = pred_reg.reshape(yt_reg.shape)
        mse = float(np.mean((pred_reg - yt_reg) ** 2)) if yt_reg.size else float("nan")
        return {
            "test_accuracy": None,
            "test_loss": mse,
            "history": result.history,
            "model": trained,
            "head_replaced": head_replaced,
        }
    yt = to_numpy(test_y).reshape(-1)
    was_training = trained.training
    trained.eval()
    preds = []
    with torch.no_grad():
        for start in range(0, xt.shape[0], eval_batch_size):
            xb = xt[start : start + eval_batch_size].to(device=ref.device)
            if xb.is_floating_point():
                xb = xb.to(dtype=ref.dtype)
            preds.append(trained(xb).argmax(dim=1).cpu().numpy())
    trained.train(was_training)
    pred = np.concatenate(preds) if preds else np.zeros(0, dtype=np.int64)
    acc = float(np.mean(pred == yt)) if yt.size else float("nan")
    return {
        "test_accuracy": acc,
        "test_loss": None,
        "history": result.history,
        "model": trained,
        "head_replaced": head_replaced,
    }
