"""TODO docstring (from transfer)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from repalign.measure.alignment import preprocess
from repalign.measure.theory import GDResult

__all__ = [
    "gd_linear",
]

# ----------------------------------------------------------------------------------------------------------
# Gradient descent on a linear model
# ----------------------------------------------------------------------------------------------------------


def _as_float64(x: Any) -> Any:
    """Return ``x`` as a float64 torch tensor (keeping a torch input's device)."""
    import torch

    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.detach().to(torch.float64)


def _targets(y: Any, n: int, name: str, device: Any) -> Any:
    import torch

    t = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    t = t.detach().to(device=device, dtype=torch.float64)
    if t.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (n, k); got {tuple(t.shape)}")
    if t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} rows but the features have {n}: pass one target row per example")
    return t


def _is_sign_vector(y: Any) -> bool:
    """True for a vector of ±1 labels (the binary convention of the paper's demo)."""
    import torch

    return y.ndim == 1 and bool(torch.all((y == 1) | (y == -1)))


def _accuracy(pred: Any, y: Any, kind: str | None) -> float:
    """Sign agreement for ±1 targets (a score of 0 counts as +1), argmax agreement for matrix targets."""
    import torch

    if kind == "sign":
        return float(torch.mean(((pred >= 0).to(torch.float64) * 2 - 1 == y).to(torch.float64)))
    if kind == "argmax":
        return float(torch.mean((pred.argmax(dim=1) == y.argmax(dim=1)).to(torch.float64)))
    return float("nan")


def gd_linear(
    features: Any,
    targets: Any,
    *,
    lr: float | None = None,
    steps: int = 1000,
    bias: bool = True,
    normalize: bool = True,
    test_features: Any = None,
    test_targets: Any = None,
    record_every: int = 1,
) -> GDResult:
    r"""Full-batch gradient descent on a linear model over fixed features, from :math:`w_0 = 0`.

    The features get the alignment measure's preprocessing (:func:`repalign.measure.alignment.preprocess`: a
    constant-1 column when ``bias``, then every row scaled to unit norm when ``normalize``), giving
    :math:`\Phi`; then

    .. math::  w_{t+1} = w_t - \eta\, \Phi^\top(\Phi w_t - y), \qquad
               L(w_t) = \tfrac12 \lVert \Phi w_t - y \rVert^2,

    with :math:`\eta = 1/\sigma_1^2` by default (so :math:`\eta\sigma_1^2 = 1`, the largest step for which
    the fast/slow-phase bound holds; descent diverges for :math:`\eta\sigma_1^2 > 2`).
    Recorded at t = 0, every ``record_every`` steps and at t = ``steps``: the train loss, the test loss (same
    sum, on the test set), the accuracy (sign agreement for ±1 vector targets, argmax agreement for matrix
    targets; ``None`` for other targets such as regression) and :math:`\lVert w_t\rVert^2`.
    Computation is float64 in torch, on a torch input's device.

    Shape:
        - ``features``: (n, d); ``targets``: (n,) or (n, k)
        - ``test_features``: (m, d); ``test_targets``: (m,) or (m, k)
        - returns: a :class:`GDResult` with (T,) curves, T = ``steps // record_every + 1`` (+1 when
          ``record_every`` does not divide ``steps``)

    Raises:
        ValueError: on mismatched shapes, a non-positive ``lr``, negative ``steps`` or ``record_every < 1``.
    """
    import torch

    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, got {record_every}")
    if (test_features is None) != (test_targets is None):
        raise ValueError("pass both test_features and test_targets, or neither")

    phi = _as_float64(preprocess(features, bias=bias, normalize=normalize))
    if phi.ndim != 2:
        raise ValueError(f"features must have shape (n, d); got {tuple(phi.shape)}")
    n, d = phi.shape
    device = phi.device
    y = _targets(targets, n, "targets", device)

    gram = phi.T @ phi if d <= n else phi @ phi.T
    sigma_max = math.sqrt(max(float(torch.linalg.eigvalsh(gram)[-1]), 0.0))
    if lr is None:
        if sigma_max == 0.0:
            raise ValueError("features are all zero: the default step 1/sigma_1^2 is undefined; pass lr")
        lr = 1.0 / sigma_max**2
    lr = float(lr)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")

    kind = "sign" if _is_sign_vector(y) else ("argmax" if y.ndim == 2 and y.shape[1] > 1 else None)

    phi_test = y_test = None
    test_kind = None
    if test_features is not None:
        phi_test = _as_float64(preprocess(test_features, bias=bias, normalize=normalize))
        phi_test = phi_test.to(device)
        if phi_test.ndim != 2 or phi_test.shape[1] != d:
            raise ValueError(
                f"test_features must have shape (m, {phi.shape[1] - int(bias)}) like the training features; "
                f"got {tuple(phi_test.shape)} after preprocessing"
            )
        y_test = _targets(test_targets, phi_test.shape[0], "test_targets", device)
        if y_test.shape[1:] != y.shape[1:]:
            raise ValueError(f"test_targets shape {tuple(y_test.shape)} does not match targets shape {tuple(y.shape)}")
        if kind == "sign":
            test_kind = "sign" if _is_sign_vector(y_test) else None
        else:
            test_kind = kind

    w = torch.zeros((d,) + tuple(y.shape[1:]), dtype=torch.float64, device=device)
    rec_steps: list[int] = []
    train_loss: list[float] = []
    norm_sq: list[float] = []
    train_acc: list[float] = []
    test_loss: list[float] = []
    test_acc: list[float] = []

    def record(t: int, resid: Any, pred: Any) -> None:
        rec_steps.append(t)
        train_loss.append(0.5 * float(torch.sum(resid * resid)))
        norm_sq.append(float(torch.sum(w * w)))
        if kind is not None:
            train_acc.append(_accuracy(pred, y, kind))
        if phi_test is not None:
            pred_test = phi_test @ w
            r_test = pred_test - y_test
            test_loss.append(0.5 * float(torch.sum(r_test * r_test)))
            if test_kind is not None:
                test_acc.append(_accuracy(pred_test, y_test, test_kind))

    for t in range(steps + 1):
        pred = phi @ w
        resid = pred - y
        if t % record_every == 0 or t == steps:
            record(t, resid, pred)
        if t < steps:
            w = w - lr * (phi.T @ resid)

    return GDResult(
        steps=np.asarray(rec_steps, dtype=np.int64),
        train_loss=np.asarray(train_loss),
        weight_norm_sq=np.asarray(norm_sq),
        weights=w.cpu().numpy(),
        lr=lr,
        sigma_max=sigma_max,
        n_train=n,
        bias=bias,
        normalize=normalize,
        train_accuracy=np.asarray(train_acc) if kind is not None else None,
        test_loss=np.asarray(test_loss) if phi_test is not None else None,
        test_accuracy=np.asarray(test_acc) if phi_test is not None and test_kind is not None else None,
        n_test=None if phi_test is None else int(phi_test.shape[0]),
        info={"target_kind": kind},
    )
