r"""The linear learner of the paper's theory: full-batch gradient descent on fixed features, from zero.

Section 3 of the paper predicts how fast gradient descent on a linear model over a representation :math:`\Phi`
fits targets :math:`y`, from the spectrum of :math:`\Phi` and the alignment of :math:`y` with its singular
vectors (:mod:`repalign.measure.theory`). :func:`gd_linear` runs that descent, so the prediction can be checked
against it:

.. math::  w_0 = 0, \qquad w_{t+1} = w_t - \eta\, \Phi^\top(\Phi w_t - y), \qquad
           L(w_t) = \tfrac12 \lVert \Phi w_t - y \rVert^2, \qquad \eta = 1/\sigma_1^2 \text{ by default},

with :math:`\Phi` the features after the alignment measure's preprocessing (a bias column, unit-norm rows).
It returns a :class:`repalign.measure.theory.GDResult` (loss, weight norm and accuracy curves), which the theory
functions compare with their predictions. Used by notebooks 01 and 06 (convergence against alignment), by
:mod:`repalign.recipes.zoo` and by the peaks family (:mod:`repalign.recipes.peaks`). It computes in float64 in
torch, on the device of a torch input unless ``device`` names one; NumPy input goes where the package's device rule
puts it (:func:`repalign.networks.runtime.get_device`: the GPU when there is one, else the CPU, so nothing moves on a
CPU-only machine), so the paper scale's descents run on the GPU. The curves are
kept on the device and read once at the end (no synchronisation per step); the numbers are those of the
step-by-step reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from repalign.measure.alignment import preprocess
from repalign.measure.theory import GDResult
from repalign.networks.runtime import get_device

__all__ = [
    "gd_linear",
]


def _as_float64(x: Any) -> torch.Tensor:
    """Return ``x`` as a float64 torch tensor (keeping a torch input's device)."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    return t.detach().to(torch.float64)


def _targets(y: Any, n: int, name: str, device: Any) -> torch.Tensor:
    t = y if isinstance(y, torch.Tensor) else torch.as_tensor(np.asarray(y))
    t = t.detach().to(device=device, dtype=torch.float64)
    if t.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (n,) or (n, k); got {tuple(t.shape)}")
    if t.shape[0] != n:
        raise ValueError(f"{name} has {t.shape[0]} rows but the features have {n}: pass one target row per example")
    return t


def _is_sign_vector(y: torch.Tensor) -> bool:
    """True for a vector of ±1 labels (the binary convention of the paper's demo)."""
    return y.ndim == 1 and bool(torch.all((y == 1) | (y == -1)))


def _accuracy(pred: torch.Tensor, y: torch.Tensor, kind: str | None) -> torch.Tensor:
    """Sign agreement for ±1 targets (a score of 0 counts as +1), argmax agreement for matrix targets (a 0-d
    float64 tensor on the device; NaN for other targets)."""
    if kind == "sign":
        return torch.mean(((pred >= 0).to(torch.float64) * 2 - 1 == y).to(torch.float64))
    if kind == "argmax":
        return torch.mean((pred.argmax(dim=1) == y.argmax(dim=1)).to(torch.float64))
    return torch.tensor(float("nan"), dtype=torch.float64, device=pred.device)


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
    device: Any = None,
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
    Computation is float64 in torch, on ``device`` when given (:func:`repalign.networks.runtime.get_device`), else
    on a torch input's device; NumPy input goes where the device rule puts it (the GPU when there is one).

    Shape:
        - ``features``: (n, d); ``targets``: (n,) or (n, k)
        - ``test_features``: (m, d); ``test_targets``: (m,) or (m, k)
        - returns: a :class:`GDResult` with (T,) curves, T = ``steps // record_every + 1`` (+1 when
          ``record_every`` does not divide ``steps``)

    Raises:
        ValueError: on mismatched shapes, a non-positive ``lr``, negative ``steps`` or ``record_every < 1``.
    """
    if steps < 0:
        raise ValueError(f"steps must be >= 0, got {steps}")
    if record_every < 1:
        raise ValueError(f"record_every must be >= 1, got {record_every}")
    if (test_features is None) != (test_targets is None):
        raise ValueError("pass both test_features and test_targets, or neither")

    phi = _as_float64(preprocess(features, bias=bias, normalize=normalize))
    if device is not None or not isinstance(features, torch.Tensor):
        phi = phi.to(get_device(device))
    if phi.ndim != 2:
        raise ValueError(f"features must have shape (n, d); got {tuple(phi.shape)}")
    n, d = phi.shape
    y = _targets(targets, n, "targets", phi.device)
    lr, sigma_max = _step_size(phi, lr)
    kind = "sign" if _is_sign_vector(y) else ("argmax" if y.ndim == 2 and y.shape[1] > 1 else None)
    curves = _Curves(y, kind)
    if test_features is not None:
        curves.add_test_set(test_features, test_targets, bias=bias, normalize=normalize, d=d)

    w = torch.zeros((d,) + tuple(y.shape[1:]), dtype=torch.float64, device=phi.device)
    for t in range(steps + 1):
        pred = phi @ w
        resid = pred - y
        if t % record_every == 0 or t == steps:
            curves.record(t, w, resid, pred)
        if t < steps:
            w = w - lr * (phi.T @ resid)

    curves.read()
    has_test = curves.phi_test is not None
    return GDResult(
        steps=np.asarray(curves.steps, dtype=np.int64),
        train_loss=np.asarray(curves.train_loss),
        weight_norm_sq=np.asarray(curves.norm_sq),
        weights=w.cpu().numpy(),
        lr=lr,
        sigma_max=sigma_max,
        n_train=n,
        bias=bias,
        normalize=normalize,
        train_accuracy=np.asarray(curves.train_acc) if kind is not None else None,
        test_loss=np.asarray(curves.test_loss) if has_test else None,
        test_accuracy=np.asarray(curves.test_acc) if has_test and curves.test_kind is not None else None,
        n_test=None if curves.phi_test is None else int(curves.phi_test.shape[0]),
        info={"target_kind": kind},
    )


def _step_size(phi: torch.Tensor, lr: float | None) -> tuple[float, float]:
    r"""``(lr, sigma_1)``: the step (default :math:`1/\sigma_1^2`) and the largest singular value of ``phi``.

    :math:`\sigma_1^2` is the top eigenvalue of the smaller Gram matrix (:math:`\Phi^\top\Phi` or
    :math:`\Phi\Phi^\top`). Shape: phi (n, d).

    Raises:
        ValueError: a non-positive ``lr``, or no ``lr`` for all-zero features.
    """
    n, d = phi.shape
    gram = phi.T @ phi if d <= n else phi @ phi.T
    sigma_max = math.sqrt(max(float(torch.linalg.eigvalsh(gram)[-1]), 0.0))
    if lr is None:
        if sigma_max == 0.0:
            raise ValueError("features are all zero: the default step 1/sigma_1^2 is undefined; pass lr")
        lr = 1.0 / sigma_max**2
    lr = float(lr)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    return lr, sigma_max


@dataclass
class _Curves:
    r"""The curves :func:`gd_linear` records: :math:`\tfrac12\lVert \Phi w - y\rVert^2`, :math:`\lVert w\rVert^2`, accuracy.

    ``kind`` says how accuracy is read (``"sign"``, ``"argmax"`` or None: not recorded); the optional test set
    (:meth:`add_test_set`) is scored at the same steps.
    """

    y: torch.Tensor
    kind: str | None
    phi_test: torch.Tensor | None = None
    y_test: torch.Tensor | None = None
    test_kind: str | None = None
    steps: list[int] = field(default_factory=list)
    train_loss: list[Any] = field(default_factory=list)
    norm_sq: list[Any] = field(default_factory=list)
    train_acc: list[Any] = field(default_factory=list)
    test_loss: list[Any] = field(default_factory=list)
    test_acc: list[Any] = field(default_factory=list)

    def add_test_set(self, features: Any, targets: Any, *, bias: bool, normalize: bool, d: int) -> None:
        """Preprocess the test features like the training ones and check them against the training set.

        Shape: features (m, d - bias), targets like the training targets with m rows.
        """
        phi_test = _as_float64(preprocess(features, bias=bias, normalize=normalize)).to(self.y.device)
        if phi_test.ndim != 2 or phi_test.shape[1] != d:
            raise ValueError(
                f"test_features must have shape (m, {d - int(bias)}) like the training features; "
                f"got {tuple(phi_test.shape)} after preprocessing"
            )
        y_test = _targets(targets, phi_test.shape[0], "test_targets", self.y.device)
        if y_test.shape[1:] != self.y.shape[1:]:
            raise ValueError(
                f"test_targets shape {tuple(y_test.shape)} does not match targets shape {tuple(self.y.shape)}"
            )
        self.phi_test, self.y_test = phi_test, y_test
        if self.kind == "sign":
            self.test_kind = "sign" if _is_sign_vector(y_test) else None
        else:
            self.test_kind = self.kind

    def record(self, t: int, w: torch.Tensor, resid: torch.Tensor, pred: torch.Tensor) -> None:
        """Record step ``t``: ``resid = pred - y`` and ``pred = Phi w`` on the training set (as 0-d tensors on the
        device: :meth:`read` turns them into floats once, without a synchronisation per step)."""
        self.steps.append(t)
        self.train_loss.append(torch.sum(resid * resid))
        self.norm_sq.append(torch.sum(w * w))
        if self.kind is not None:
            self.train_acc.append(_accuracy(pred, self.y, self.kind))
        if self.phi_test is not None:
            pred_test = self.phi_test @ w
            r_test = pred_test - self.y_test
            self.test_loss.append(torch.sum(r_test * r_test))
            if self.test_kind is not None:
                self.test_acc.append(_accuracy(pred_test, self.y_test, self.test_kind))

    def read(self) -> None:
        """The recorded tensors as floats: the losses halved, the rest as they are (one transfer per curve)."""
        for name, factor in (("train_loss", 0.5), ("test_loss", 0.5), ("norm_sq", None), ("train_acc", None),
                             ("test_acc", None)):  # fmt: skip
            values = getattr(self, name)
            if values and isinstance(values[0], torch.Tensor):
                host = torch.stack(values).cpu().tolist()
                setattr(self, name, [factor * v for v in host] if factor else host)
