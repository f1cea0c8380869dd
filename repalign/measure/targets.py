"""Targets for the measure: class labels as ±1 vectors or one-vs-rest / one-hot matrices, and by task.

The paper's demo maps binary labels to :math:`y \\in \\{-1, +1\\}^n`; K classes become an (n, K) matrix whose
columns the measure sums over, :math:`A(\\tau) = \\lVert U_\\tau^\\top Y\\rVert_F^2`. Regression targets are
taken as given (the measure centres them). NumPy in, NumPy out; a torch tensor in, a tensor out (same device).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repalign.measure.alignment import ArrayLike, _is_tensor, _to_numpy

__all__ = [
    "binary_targets",
    "one_vs_rest_targets",
    "one_hot_targets",
    "alignment_targets",
]


# ----------------------------------------------------------------------------------------------------------------
# Targets from class labels
# ----------------------------------------------------------------------------------------------------------------
def _labels_1d(labels: ArrayLike) -> tuple[np.ndarray, Any]:
    ref = labels if _is_tensor(labels) else None
    arr = _to_numpy(labels)
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class label per example), got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError("labels are empty")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("labels contain NaN or inf")
    return arr, ref


def _like(out: np.ndarray, ref: Any) -> Any:
    if ref is None:
        return out
    import torch

    return torch.from_numpy(out).to(ref.device)


def binary_targets(labels: ArrayLike, positive: Any = None) -> Any:
    """Class labels → ±1 targets (the demo's convention).

    With ``positive`` given, that class is +1 and every other class −1. Otherwise the labels must have exactly
    two distinct values; the larger (e.g. 1 of {0, 1}) becomes +1.

    Shape: labels (n,) → (n,) float64 (torch tensor on the same device when given one).
    """
    arr, ref = _labels_1d(labels)
    if positive is None:
        classes = np.unique(arr)
        if classes.size != 2:
            raise ValueError(
                f"binary_targets needs exactly two classes, got {classes.size} ({classes[:10].tolist()}); "
                "select a pair first (repalign.data.binary_pair) or pass positive=<class> for one-vs-rest"
            )
        positive = classes[1]
    elif not np.any(arr == positive):
        raise ValueError(f"positive class {positive!r} does not occur in the labels")
    out = np.where(arr == positive, 1.0, -1.0)
    return _like(out, ref)


def _class_index(arr: np.ndarray, classes: Sequence[Any] | None) -> tuple[np.ndarray, int]:
    if classes is None:
        uniq, idx = np.unique(arr, return_inverse=True)
        return idx.reshape(-1), uniq.size
    classes = list(classes)
    lookup = {c: i for i, c in enumerate(classes)}
    try:
        idx = np.array([lookup[v.item() if hasattr(v, "item") else v] for v in arr], dtype=np.int64)
    except KeyError as err:
        raise ValueError(f"label {err.args[0]!r} is not in classes={classes}") from None
    return idx, len(classes)


def one_vs_rest_targets(labels: ArrayLike, classes: Sequence[Any] | None = None) -> Any:
    """Class labels → a ±1 one-vs-rest matrix: column c is +1 where the label is class c, −1 elsewhere.

    Shape: labels (n,) → (n, K) float64, K = number of classes (sorted unique labels unless ``classes`` given).
    """
    arr, ref = _labels_1d(labels)
    idx, k = _class_index(arr, classes)
    out = -np.ones((arr.size, k))
    out[np.arange(arr.size), idx] = 1.0
    return _like(out, ref)


def one_hot_targets(labels: ArrayLike, classes: Sequence[Any] | None = None) -> Any:
    """Class labels → a 0/1 one-hot matrix.

    Shape: labels (n,) → (n, K) float64, K = number of classes (sorted unique labels unless ``classes`` given).
    """
    arr, ref = _labels_1d(labels)
    idx, k = _class_index(arr, classes)
    out = np.zeros((arr.size, k))
    out[np.arange(arr.size), idx] = 1.0
    return _like(out, ref)


TASKS = ("binary", "multiclass", "regression")


# ---------------------------------------------------------------------------------------------------------------
def alignment_targets(y: np.ndarray, task: str) -> np.ndarray:
    """Targets the measure uses for labels ``y`` of a ``task``.

    Shape: binary (n,) 0/1 → (n,) ±1; multiclass (n,) ints → (n, K) ±1 one-vs-rest; regression (n,) or (n, k)
    float → unchanged (float64). The measure centres them (:func:`measure_layers`, ``center=True``).
    """
    y = np.asarray(y)
    if task == "binary":
        return np.asarray(binary_targets(y))
    if task == "multiclass":
        return np.asarray(one_vs_rest_targets(y))
    if task == "regression":
        return y.astype(np.float64)
    raise ValueError(f"unknown task {task!r}; choose binary, multiclass or regression")
