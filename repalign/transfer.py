r"""Downstream learners on fixed features: gradient descent with its exact dynamics, probes and fine-tuning.

The paper's theory (Imani, Hu, White 2022, §2; ``shared/PAPER.md``) is about full-batch gradient descent on a
linear model over a fixed representation :math:`\Phi` (n × d, after the bias column and row normalisation
that the alignment measure uses),

.. math::  L(w) = \tfrac12 \lVert \Phi w - y \rVert^2, \qquad w_0 = 0,\quad
           w_{t+1} = w_t - \eta\, \Phi^\top (\Phi w_t - y).

With :math:`\Phi = U \Sigma V^\top` and :math:`m_i = (u_i^\top y)^2` the residual decouples along the left
singular vectors, :math:`u_i^\top (y - \Phi w_t) = (1 - \eta \sigma_i^2)^t\, u_i^\top y`, hence

.. math::  L(w_t) = \tfrac12 \sum_i (1 - \eta\sigma_i^2)^{2t} m_i + \tfrac12 \lVert (I - UU^\top) y \rVert^2 .

:func:`gd_linear` runs the descent and records what happened; :func:`predicted_loss_curve`,
:func:`predicted_weight_norm`, :func:`min_norm_solution_norm` and :func:`phase_bound` give the theory from a
:class:`repalign.alignment.Spectrum` of the same features and targets. Matrix targets (n, k) are k independent
problems: every formula holds with :math:`m_i = \lVert u_i^\top Y \rVert^2` and Frobenius norms.

The transfer experiments use :func:`logistic_probe` (scikit-learn logistic regression on standardised
features), :func:`linear_probe` (features of a backbone layer, then :func:`logistic_probe`) and
:func:`fine_tune` (new head, classification or regression, then :func:`repalign.training.train`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from repalign.alignment import Spectrum, preprocess
from repalign.utils import to_numpy

__all__ = [
    "GDResult",
    "gd_linear",
    "predicted_loss_curve",
    "predicted_weight_norm",
    "min_norm_solution_norm",
    "phase_bound",
    "prediction_gap",
    "phase_bound_excess",
    "planted_problem",
    "curve_dominates",
    "reach_loss",
    "mean_relative_loss",
    "steps_to_loss",
    "dominance_pairs",
    "representation_scores",
    "probe_grid",
    "logistic_probe",
    "linear_probe",
    "fine_tune",
]


# ----------------------------------------------------------------------------------------------------------
# Gradient descent on a linear model
# ----------------------------------------------------------------------------------------------------------


@dataclass
class GDResult:
    r"""What :func:`gd_linear` recorded.

    ``train_loss`` is the objective itself, :math:`\tfrac12\lVert\Phi w_t - y\rVert^2` (a sum over
    examples, the scale of the theory and of :func:`predicted_loss_curve`); ``test_loss`` is the same sum over
    the test examples. Divide by ``n_train`` / ``n_test`` for per-example values.

    Shape:
        - ``steps``: (T,) the recorded step indices t (0 = before the first update, last = ``steps``)
        - ``train_loss``, ``weight_norm_sq``: (T,)
        - ``test_loss``, ``test_accuracy``, ``train_accuracy``: (T,) or ``None`` (no test set / targets that
          are not class labels)
        - ``weights``: (d',) or (d', k), the final weights over the preprocessed features (bias last)
    """

    steps: np.ndarray
    train_loss: np.ndarray
    weight_norm_sq: np.ndarray
    weights: np.ndarray
    lr: float
    sigma_max: float
    n_train: int
    bias: bool = True
    normalize: bool = True
    train_accuracy: np.ndarray | None = None
    test_loss: np.ndarray | None = None
    test_accuracy: np.ndarray | None = None
    n_test: int | None = None
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def stability(self) -> float:
        r""":math:`\eta\sigma_1^2`; descent converges for values below 2, the phase bound needs at most 1."""
        return self.lr * self.sigma_max**2

    def predict(self, features: Any) -> np.ndarray:
        r"""Predictions :math:`\Phi w` of the final weights on new raw ``features`` (same preprocessing).

        Shape:
            - ``features``: (m, d)
            - returns: (m,) or (m, k)
        """
        phi = to_numpy(preprocess(features, bias=self.bias, normalize=self.normalize)).astype(np.float64)
        return phi @ self.weights

    def to_dict(self) -> dict[str, Any]:
        """Plain arrays and scalars (``None`` fields dropped), e.g. for :func:`repalign.cache.load_or_compute`."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GDResult:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


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

    The features get the alignment measure's preprocessing (:func:`repalign.alignment.preprocess`: a
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


# ----------------------------------------------------------------------------------------------------------
# The exact dynamics from a spectrum
# ----------------------------------------------------------------------------------------------------------


def _step_array(steps: int | Sequence[int] | np.ndarray) -> np.ndarray:
    """``steps`` as an int array: an int T means t = 0, 1, ..., T; an array is taken as given."""
    if np.ndim(steps) == 0:
        s = int(steps)  # type: ignore[arg-type]
        if s < 0:
            raise ValueError(f"steps must be >= 0, got {s}")
        return np.arange(s + 1, dtype=np.int64)
    arr = np.asarray(steps)
    if arr.ndim != 1 or (arr.size and (arr.min() < 0 or not np.all(arr == np.round(arr)))):
        raise ValueError("steps must be an int T (meaning 0..T) or a 1-D array of non-negative integers")
    return arr.astype(np.int64)


def _spectrum_arrays(spec: Spectrum) -> tuple[np.ndarray, np.ndarray, float, float]:
    if spec.centered:
        raise ValueError(
            "this spectrum was measured with centred targets, but gradient descent from w = 0 fits the targets as "
            "given: measure it with spectrum(features, y, center=False) for the loss dynamics and bounds (keep the "
            "default centred spectrum for alignment summaries such as the AUC)"
        )
    sv = np.asarray(to_numpy(spec.singular_values), dtype=np.float64).reshape(-1)
    mass = np.asarray(to_numpy(spec.mass), dtype=np.float64).reshape(-1)
    if sv.shape != mass.shape:
        raise ValueError(f"spectrum has {sv.size} singular values but {mass.size} mass entries")
    return sv, mass, float(spec.outside), float(spec.total)


def _powers(x: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:math:`q^t` and :math:`1 - q^t` for :math:`q = 1 - x`, accurate when x is tiny.

    Shape: ``x`` (r,), ``t`` (T,) -> two (T, r) arrays.
    """
    tt = t.astype(np.float64)[:, None]
    xx = x[None, :]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        safe = xx < 1.0
        log_q = np.log1p(-np.where(safe, xx, 0.0))
        q_t_safe = np.exp(tt * log_q)
        one_minus_safe = -np.expm1(tt * log_q)
        q_t_gen = np.power(1.0 - xx, tt)
    q_t = np.where(safe, q_t_safe, q_t_gen)
    one_minus = np.where(safe, one_minus_safe, 1.0 - q_t_gen)
    return q_t, one_minus


def predicted_loss_curve(spec: Spectrum, lr: float, steps: int | Sequence[int] | np.ndarray) -> np.ndarray:
    r"""The exact loss of gradient descent from :math:`w_0 = 0`, from the spectrum alone.

    .. math::  L(w_t) = \tfrac12 \sum_i (1 - \eta\sigma_i^2)^{2t}\, m_i + \tfrac12\, \mathrm{outside},
               \qquad m_i = \lVert u_i^\top Y \rVert^2,

    where *outside* is the target mass outside the column space of :math:`\Phi`. It is what
    :func:`gd_linear` measures (same features, targets, ``bias`` and ``normalize``) for any step size.

    Shape:
        - ``spec``: a :class:`repalign.alignment.Spectrum` with r singular values
        - ``steps``: an int T (meaning t = 0..T) or a (T,) array of step indices (e.g. ``GDResult.steps``)
        - returns: (T + 1,) or (T,) losses
    """
    sv, mass, outside, _ = _spectrum_arrays(spec)
    t = _step_array(steps)
    q_t, _ = _powers(float(lr) * sv**2, t)
    return 0.5 * (q_t**2 @ mass) + 0.5 * outside


def predicted_weight_norm(spec: Spectrum, lr: float, steps: int | Sequence[int] | np.ndarray) -> np.ndarray:
    r"""The exact squared weight norm of gradient descent from :math:`w_0 = 0`.

    .. math::  \lVert w_t \rVert^2 = \sum_i \bigl(1 - (1 - \eta\sigma_i^2)^t\bigr)^2\, m_i / \sigma_i^2,

    which tends to :func:`min_norm_solution_norm` when :math:`0 < \eta\sigma_1^2 < 2`. Directions with
    :math:`\sigma_i = 0` contribute nothing (descent never moves along them).

    Shape:
        - ``steps``: an int T (t = 0..T) or a (T,) array
        - returns: (T + 1,) or (T,)
    """
    sv, mass, _, _ = _spectrum_arrays(spec)
    t = _step_array(steps)
    keep = sv > 0
    sv, mass = sv[keep], mass[keep]
    _, one_minus = _powers(float(lr) * sv**2, t)
    return one_minus**2 @ (mass / sv**2)


def min_norm_solution_norm(spec: Spectrum) -> float:
    r"""Squared norm of the minimum-norm least-squares solution, the limit of gradient descent from zero.

    .. math::  \lVert w^\star \rVert^2 = \sum_{i:\, \sigma_i > 0} m_i / \sigma_i^2 .

    Aligned targets (mass on large :math:`\sigma_i`) need small weights: the paper's link to generalisation.
    """
    sv, mass, _, _ = _spectrum_arrays(spec)
    keep = sv > 0
    return float(np.sum(mass[keep] / sv[keep] ** 2))


def phase_bound(
    spec: Spectrum,
    lr: float,
    steps: int | Sequence[int] | np.ndarray,
    tau: float | Sequence[float] | np.ndarray,
) -> np.ndarray:
    r"""The fast/slow-phase upper bound on the gradient-descent loss, for each threshold :math:`\tau`.

    .. math::  L(w_t) \le \tfrac12 (1 - \eta\tau^2)^{2t} A(\tau) + \tfrac12 \bigl(\lVert Y\rVert^2
               - A(\tau)\bigr), \qquad A(\tau) = \sum_{i:\,\sigma_i \ge \tau} m_i,

    valid for every :math:`\tau` when :math:`\eta\sigma_1^2 \le 1` (with :math:`A(0) = \lVert Y\rVert^2`).
    The mass above :math:`\tau` is fitted at rate :math:`(1-\eta\tau^2)^{2t}`; what is left decays no
    faster than allowed by :math:`\lVert Y\rVert^2 - A(\tau)`.

    Shape:
        - ``steps``: an int T (t = 0..T) or a (T,) array
        - ``tau``: a scalar or an (m,) array
        - returns: (T',) for a scalar ``tau``, (m, T') for an array (T' = number of steps)

    Raises:
        ValueError: if :math:`\eta\sigma_1^2 > 1` (the bound does not hold there) or ``lr`` is not positive.
    """
    sv, mass, _, total = _spectrum_arrays(spec)
    lr = float(lr)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr}")
    s1 = float(sv.max()) if sv.size else 0.0
    if lr * s1**2 > 1.0 + 1e-12:
        raise ValueError(f"phase_bound needs lr * sigma_1^2 <= 1, got {lr * s1**2:.6g}: use lr <= {1.0 / s1**2:.6g}")
    t = _step_array(steps).astype(np.float64)
    taus = np.atleast_1d(np.asarray(tau, dtype=np.float64))
    if taus.ndim != 1 or np.any(taus < 0):
        raise ValueError("tau must be a non-negative scalar or 1-D array")
    a = np.array([total if tk <= 0 else float(mass[sv >= tk].sum()) for tk in taus])
    # (1 - lr tau^2) is in [0, 1] wherever A(tau) > 0; clip so tau > sigma_1 (where A = 0) stays finite.
    q = np.clip(1.0 - lr * taus**2, 0.0, 1.0)
    with np.errstate(divide="ignore"):
        decay = np.power(q[:, None], 2.0 * t[None, :])
    out = 0.5 * decay * a[:, None] + 0.5 * (total - a)[:, None]
    return out[0] if np.ndim(tau) == 0 else out


# ----------------------------------------------------------------------------------------------------------
# Planted problems and summaries of a descent (notebooks 01 and 06)
# ----------------------------------------------------------------------------------------------------------


def prediction_gap(spec: Spectrum, result: GDResult, *, floor: float = 1e-6) -> float:
    r"""Largest relative gap between a GD run's measured loss and the exact prediction from the spectrum.

    .. math::  \max_t \frac{|L(w_t) - \hat L_t|}{\hat L_t}, \qquad \hat L_t = \text{predicted\_loss\_curve}

    over the recorded steps where :math:`\hat L_t > \text{floor}\cdot L(w_0)` (below that both are rounding noise).
    ``spec`` must describe the same (preprocessed) features and targets as ``result``.
    """
    pred = predicted_loss_curve(spec, result.lr, result.steps)
    big = pred > floor * result.train_loss[0]
    return float(np.max(np.abs(result.train_loss[big] - pred[big]) / pred[big]))


def phase_bound_excess(spec: Spectrum, result: GDResult, taus: np.ndarray | None = None) -> float:
    r"""How far a GD run's loss goes above the fast/slow-phase bound, relative to the initial loss (≤ 0: it holds).

    .. math::  \max_{t,\tau} \frac{L(w_t) - B_t(\tau)}{L(w_0)}, \qquad
               B_t(\tau) = \tfrac12(1-\eta\tau^2)^{2t}A(\tau) + \tfrac12(\lVert y\rVert^2 - A(\tau))

    Shape: taus (m,), default 121 points on [0, √n] (normalised rows) or [0, σ₁].
    """
    if taus is None:
        top = np.sqrt(spec.n) if spec.options.get("normalize", True) else float(spec.singular_values[0])
        taus = np.linspace(0.0, top, 121)
    bound = phase_bound(spec, result.lr, result.steps, np.asarray(taus, dtype=np.float64))
    return float(np.max(result.train_loss[None, :] - bound) / result.train_loss[0])


def planted_problem(
    singular_values: Sequence[float] | np.ndarray,
    target_mass: Sequence[float] | np.ndarray,
    n: int,
    *,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    r"""Features with chosen singular values and targets with a chosen mass on each singular direction.

    With random orthonormal :math:`U \in \mathbb{R}^{n\times r}`, :math:`V \in \mathbb{R}^{r\times r}` (seeded)
    and random signs :math:`s_i`,

    .. math::  \Phi = U\,\mathrm{diag}(\sigma)\,V^\top, \qquad y = \sum_i s_i \sqrt{m_i}\; u_i ,

    so that, measured without preprocessing (``bias=False, normalize=False``), the spectrum of
    :math:`(\Phi, y)` is exactly :math:`\sigma` with :math:`(u_i^\top y)^2 = m_i` and nothing outside the
    column space. Alignment is then set by construction: the same :math:`\sigma` with the mass on the top or
    on the bottom directions.

    Shape:
        - ``singular_values``: (r,) positive, r <= n; ``target_mass``: (r,) non-negative
        - returns: features (n, r) float64 and targets (n,) float64
    """
    sv = np.asarray(singular_values, dtype=np.float64).reshape(-1)
    mass = np.asarray(target_mass, dtype=np.float64).reshape(-1)
    if sv.shape != mass.shape:
        raise ValueError(f"singular_values has {sv.size} entries but target_mass has {mass.size}")
    if sv.size == 0 or sv.size > n:
        raise ValueError(f"need 1 <= len(singular_values) <= n, got {sv.size} for n = {n}")
    if np.any(sv <= 0) or np.any(mass < 0):
        raise ValueError("singular values must be positive and target masses non-negative")
    rng = np.random.default_rng(seed)
    u, _ = np.linalg.qr(rng.normal(size=(n, sv.size)))
    v, _ = np.linalg.qr(rng.normal(size=(sv.size, sv.size)))
    signs = rng.choice([-1.0, 1.0], size=sv.size)
    return (u * sv) @ v.T, u @ (signs * np.sqrt(mass))


def curve_dominates(a: Spectrum, b: Spectrum, *, rtol: float = 1e-9) -> bool:
    r"""Whether the alignment curve of ``a`` lies on or above that of ``b`` at every threshold.

    .. math::  A_a(\tau) \ge A_b(\tau) \quad \forall \tau \ge 0 .

    Both curves are step functions that change only at singular values, so they are compared at every
    :math:`\sigma_i` of either spectrum (and at 0, where both are :math:`\lVert Y\rVert^2`; the targets must
    be the same). Why it matters: with a shared step :math:`\eta \le 1/\sigma_1^2` of both, gradient descent
    from zero gives :math:`L(w_t) = \tfrac12\lVert Y\rVert^2 - \tfrac12\int_0^\infty A(\tau)\, g_t(\tau)\,d\tau`
    with :math:`g_t(\tau) = -\tfrac{d}{d\tau}(1-\eta\tau^2)^{2t} \ge 0`, so a dominating curve has a training
    loss that is never higher, at every step. Crossing curves give no such order.

    ``rtol`` is relative to :math:`\lVert Y\rVert^2`.
    """
    if not math.isclose(a.total, b.total, rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(f"the spectra measure different targets: ||Y||^2 = {a.total} vs {b.total}")
    taus = np.union1d(np.asarray(a.singular_values), np.asarray(b.singular_values))
    taus = np.concatenate([[0.0], taus])
    return bool(np.all(a.curve(taus) >= b.curve(taus) - rtol * a.total))


def reach_loss(result: GDResult, level: float, *, relative: bool = True) -> dict[str, float]:
    r"""Where a descent first reaches a training-loss level, and what the model looks like there.

    .. math::  t^\star = \min\{t : L(w_t) \le \ell\}, \qquad \ell = \text{level}\cdot L(w_0)\ \
               (\text{``relative``, } L(w_0) = \tfrac12\lVert y\rVert^2) \text{ or } \ell = \text{level},

    over the recorded steps. Comparing representations at the same training loss (not the same step) is how
    the paper compares weight norms: :math:`\lVert w_{t^\star}\rVert^2` is the price of that fit.

    Returns:
        ``{"step", "weight_norm_sq", "train_accuracy", "test_loss", "test_accuracy", "test_error"}`` at
        :math:`t^\star` (floats; ``step`` is ``inf`` and the rest ``nan`` when the level is never reached;
        ``nan`` for quantities :func:`gd_linear` did not record). ``test_loss`` is per test example.
    """
    loss = np.asarray(result.train_loss, dtype=np.float64)
    target = float(level) * loss[0] if relative else float(level)
    hit = np.flatnonzero(loss <= target)
    nan = float("nan")
    if hit.size == 0:
        return {k: nan for k in ("weight_norm_sq", "train_accuracy", "test_loss", "test_accuracy", "test_error")} | {
            "step": float("inf")
        }
    i = int(hit[0])

    def pick(arr: np.ndarray | None, scale: float = 1.0) -> float:
        return nan if arr is None else float(arr[i]) / scale

    test_acc = pick(result.test_accuracy)
    return {
        "step": float(result.steps[i]),
        "weight_norm_sq": float(result.weight_norm_sq[i]),
        "train_accuracy": pick(result.train_accuracy),
        "test_loss": pick(result.test_loss, float(result.n_test or 1)),
        "test_accuracy": test_acc,
        "test_error": 1.0 - test_acc,
    }


def mean_relative_loss(result: GDResult) -> float:
    r"""Area under the relative training-loss curve, divided by the run length: one number for a whole descent.

    .. math::  \bar L = \frac{1}{T}\int_0^T \frac{L(w_t)}{L(w_0)}\, dt \in [0, 1]
               \quad(\text{trapezoid rule over the recorded steps}).

    Lower is faster. It weighs every step, where the number of steps to one loss level can mislead (two
    loss curves that cross order differently at different levels).
    """
    loss = np.asarray(result.train_loss, dtype=np.float64)
    steps = np.asarray(result.steps, dtype=np.float64)
    if loss.size < 2 or steps[-1] <= steps[0]:
        return float(loss[0] / loss[0]) if loss.size and loss[0] > 0 else float("nan")
    rel = loss / loss[0]
    return float(np.sum(0.5 * (rel[1:] + rel[:-1]) * np.diff(steps)) / (steps[-1] - steps[0]))


def steps_to_loss(result: GDResult, levels: float | Sequence[float], *, relative: bool = True) -> np.ndarray:
    r"""Steps a descent needs to reach each training-loss level; a level never reached counts as the budget + 1.

    .. math::  t^\star(\ell) = \min\{t : L(w_t) \le \ell\cdot L(w_0)\}\ \ (\text{``relative``}), \qquad
               t^\star(\ell) = T + 1 \text{ when no recorded step reaches it,}

    with T the last recorded step (the step budget). The cap keeps the count finite, so that it can be compared
    over seeds; two representations that both never reach a level are tied at T + 1 (a level below a
    representation's loss floor :math:`\tfrac12\lVert(I-UU^\top)y\rVert^2` is never reached). Exact only with
    ``record_every=1`` in :func:`gd_linear` (otherwise the first recorded step at or below the level).

    Shape: levels a scalar or (m,) → returns (m,) float64 (a scalar level gives shape (1,)).
    """
    budget = float(np.asarray(result.steps)[-1]) + 1.0
    out = [reach_loss(result, lv, relative=relative)["step"] for lv in np.atleast_1d(np.asarray(levels, float))]
    return np.minimum(np.asarray(out, dtype=np.float64), budget)


def dominance_pairs(
    spectra: Mapping[str, Sequence[Spectrum]],
    results: Mapping[str, Sequence[GDResult]],
    *,
    tol: float = 0.01,
) -> dict[str, dict[str, np.ndarray]]:
    r"""For every ordered pair of representations (a, b), per seed: does a's alignment curve dominate b's, and is
    a's training loss never above b's?

    .. math::  \text{aligned}_s:\ A_a(\tau) \ge A_b(\tau) - \mathrm{tol}\,\lVert y\rVert^2\ \forall\tau, \qquad
               \text{loss\_lower}_s:\ \frac{L_a(w_t)}{L(w_0)} \le \frac{L_b(w_t)}{L(w_0)} + \mathrm{tol}\ \forall t .

    The alignment test is exact (:func:`curve_dominates` at every singular value of either spectrum). Why the
    pair matters: with one shared step :math:`\eta \le 1/\sigma_1^2` of both runs,
    :math:`L(w_t) = \tfrac12\lVert y\rVert^2 - \tfrac12\int_0^\infty A(\tau)\, g_t(\tau)\, d\tau` with
    :math:`g_t \ge 0` and :math:`\int g_t = 1`, so "aligned" implies "loss_lower" with the same ``tol``. Runs of one
    seed must share the targets (and, for the implication, the step).

    Shape: spectra, results map a representation's name to k per-seed entries (the same names, the same k).
    Returns ``{"a over b": {"aligned": (k,) bool, "loss_lower": (k,) bool}}`` for every ordered pair a ≠ b.
    """
    if set(spectra) != set(results):
        raise ValueError(f"spectra and results name different representations: {sorted(set(spectra) ^ set(results))}")
    out: dict[str, dict[str, np.ndarray]] = {}
    for a in spectra:
        for b in spectra:
            if a == b:
                continue
            if not len(spectra[a]) == len(spectra[b]) == len(results[a]) == len(results[b]):
                raise ValueError(f"{a!r} and {b!r} have different numbers of seeds")
            aligned = [curve_dominates(sa, sb, rtol=tol) for sa, sb in zip(spectra[a], spectra[b], strict=True)]
            lower = []
            for ra, rb in zip(results[a], results[b], strict=True):
                la, lb = np.asarray(ra.train_loss, float), np.asarray(rb.train_loss, float)
                if la.shape != lb.shape:
                    raise ValueError(f"{a!r} and {b!r} recorded different steps")
                lower.append(bool(np.all(la / la[0] <= lb / lb[0] + tol)))
            out[f"{a} over {b}"] = {"aligned": np.array(aligned), "loss_lower": np.array(lower)}
    return out


# ----------------------------------------------------------------------------------------------------------
# Probes and fine-tuning
# ----------------------------------------------------------------------------------------------------------


def _flat(x: Any, name: str) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n, d) (or (n, ...), flattened); got {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    arr = to_numpy(y)
    if arr.ndim == 2 and arr.shape[1] > 1:  # one-hot / one-vs-rest matrix -> class index
        arr = arr.argmax(axis=1)
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} labels but the features have {n} rows")
    return arr


def representation_scores(
    representations: Mapping[str, tuple[Any, Any]],
    train_labels: Any,
    test_labels: Any,
    *,
    gd_steps: int,
    loss_level: float,
    probe_C: float = 1.0,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    r"""The score card of several representations of the same examples: alignment, the linear learner, a probe.

    For each representation (train features Φ, test features Φ_test) and the centred one-vs-rest targets
    :math:`Y_c = Y - \mathbf 1\bar y^\top` of ``train_labels``: the alignment spectrum (centred, the library's
    default), gradient descent on the squared loss (:func:`gd_linear`, ``gd_steps`` steps, one step
    :math:`\eta = 1/\max_r \sigma_1(\Phi_r)^2` shared by all representations so that their speeds compare), the
    steps to ``loss_level`` · L(w_0) (:func:`steps_to_loss`; never reached = ``gd_steps`` + 1) and the test
    accuracy of a logistic probe (:func:`logistic_probe`, ``probe_C``, ``seed``).

    Shape: each representation (n, d_r) train and (m, d_r) test features; train_labels (n,), test_labels (m,)
    class labels. Returns ``{name: {"spectrum", "gd", "steps", "probe_accuracy"}}`` in the order given.
    """
    from repalign.alignment import one_vs_rest_targets, spectrum

    y, y_test = np.asarray(one_vs_rest_targets(train_labels)), np.asarray(one_vs_rest_targets(test_labels))
    mean = y.mean(axis=0)
    spectra = {name: spectrum(train, y) for name, (train, _) in representations.items()}
    step = 1.0 / max(spec.singular_values[0] ** 2 for spec in spectra.values())
    out = {}
    for name, (train, test) in representations.items():
        run = gd_linear(train, y - mean, lr=step, steps=gd_steps, test_features=test, test_targets=y_test - mean)
        probe = logistic_probe(train, train_labels, test, test_labels, C=probe_C, seed=seed)
        out[name] = {
            "spectrum": spectra[name],
            "gd": run,
            "steps": float(steps_to_loss(run, loss_level)[0]),
            "probe_accuracy": probe["accuracy"],
        }
    return out


def logistic_probe(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    *,
    C: float = 1.0,
    seed: int = 0,
    max_iter: int = 1000,
) -> dict[str, Any]:
    r"""Logistic regression on standardised features: how linearly readable the labels are.

    A scikit-learn pipeline ``StandardScaler`` → ``LogisticRegression(C=C)`` (L2 penalty, lbfgs,
    multinomial for more than two classes) is fitted on the training features and scored on the test set:

    .. math::  p(c \mid x) = \mathrm{softmax}(W z + b)_c, \qquad z = (x - \mu) / s,
               \quad \text{loss} = -\tfrac1m \textstyle\sum_j \log p(c_j \mid x_j).

    Shape:
        - ``train_features``: (n, d) (more dims are flattened); ``train_labels``: (n,) class labels, or an
          (n, k) one-hot / ±1 matrix (argmax is taken)
        - ``test_features``: (m, d); ``test_labels``: (m,)

    Returns:
        ``{"accuracy", "loss", "train_accuracy", "train_loss", "classes", "n_features", "C", "model"}``:
        test accuracy in [0, 1], mean test cross-entropy (nats), the same on the training set, the class
        labels, d, C and the fitted pipeline. Test classes must be among the training classes.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr = _flat(train_features, "train_features")
    xte = _flat(test_features, "test_features")
    if xte.shape[1] != xtr.shape[1]:
        raise ValueError(f"test_features have {xte.shape[1]} columns but train_features have {xtr.shape[1]}")
    ytr = _labels(train_labels, xtr.shape[0], "train_labels")
    yte = _labels(test_labels, xte.shape[0], "test_labels")
    classes = np.unique(ytr)
    if classes.size < 2:
        raise ValueError("train_labels hold a single class: a probe needs at least two")
    unseen = np.setdiff1d(np.unique(yte), classes)
    if unseen.size:
        raise ValueError(f"test_labels contain classes absent from train_labels: {unseen.tolist()}")

    model = make_pipeline(
        StandardScaler(), LogisticRegression(C=float(C), max_iter=int(max_iter), random_state=int(seed))
    )
    model.fit(xtr.astype(np.float64), ytr)
    p_tr = model.predict_proba(xtr.astype(np.float64))
    p_te = model.predict_proba(xte.astype(np.float64))
    cls = model.classes_
    return {
        "accuracy": float(accuracy_score(yte, cls[p_te.argmax(axis=1)])),
        "loss": float(log_loss(yte, p_te, labels=cls)),
        "train_accuracy": float(accuracy_score(ytr, cls[p_tr.argmax(axis=1)])),
        "train_loss": float(log_loss(ytr, p_tr, labels=cls)),
        "classes": cls,
        "n_features": int(xtr.shape[1]),
        "C": float(C),
        "model": model,
    }


def probe_grid(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    *,
    Cs: Sequence[float] = (0.01, 0.1, 1.0),
    seed: int = 0,
    max_iter: int = 1000,
) -> dict[str, Any]:
    r"""The best test accuracy of :func:`logistic_probe` over a grid of inverse regularisation strengths C.

    The ground truth of the transferability protocol (You et al. 2021 take the best fine-tuned accuracy over a
    hyper-parameter grid): :math:`\max_{C} \mathrm{acc}_\mathrm{test}(C)`, an oracle choice of C on the test set,
    the same for every representation.

    Shape: as :func:`logistic_probe`. Returns ``{"accuracy": best, "C": its C, "accuracies": {C: accuracy}}``.
    """
    if len(Cs) == 0:
        raise ValueError("Cs is empty: give at least one C, e.g. Cs=(0.01, 0.1, 1.0)")
    accs = {
        float(C): logistic_probe(train_features, train_labels, test_features, test_labels, C=C, seed=seed,
                                 max_iter=max_iter)["accuracy"]
        for C in Cs
    }  # fmt: skip
    best = max(accs, key=lambda C: (accs[C], -C))  # ties: the smaller C (the stronger regularisation)
    return {"accuracy": accs[best], "C": best, "accuracies": accs}


def _split_data(data: Any, name: str) -> tuple[Any, Any]:
    """``(x, y)`` from a pair or an object with ``.x`` and ``.y`` (a :class:`repalign.data.Dataset`)."""
    if hasattr(data, "x") and hasattr(data, "y"):
        return data.x, data.y
    if isinstance(data, (tuple, list)) and len(data) == 2:
        return data[0], data[1]
    raise ValueError(f"{name} must be an (x, y) pair or a Dataset with .x and .y")


def linear_probe(
    backbone: Any,
    train_data: Any,
    test_data: Any,
    layer: str,
    *,
    C: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    device: Any = None,
    pool: Any = "avg",
    progress: bool = True,
) -> dict[str, Any]:
    """Logistic regression on one layer's features of a frozen backbone.

    Features come from :func:`repalign.features.extract` (one forward pass per batch, ``eval()``,
    ``no_grad()``; module outputs pooled by ``pool``: ``"avg"`` global average of conv maps, ``"max"``,
    ``"cls"``, ``"flatten"`` or a callable, as that function documents), then :func:`logistic_probe`.
    ``layer`` is one of :func:`repalign.features.layer_names` (``"input"`` probes the raw input).

    Shape:
        - ``train_data``: ``(x, y)`` or a Dataset with ``x`` (n, ...) inputs and ``y`` (n,) labels
        - ``test_data``: likewise with m examples

    Returns:
        :func:`logistic_probe`'s dictionary plus ``"layer"``.
    """
    from repalign.features import extract

    x_tr, y_tr = _split_data(train_data, "train_data")
    x_te, y_te = _split_data(test_data, "test_data")
    kw = {"batch_size": batch_size, "device": device, "pool": pool, "progress": progress}
    f_tr = extract(backbone, x_tr, [layer], **kw)[layer]
    f_te = extract(backbone, x_te, [layer], **kw)[layer]
    out = logistic_probe(f_tr, y_tr, f_te, y_te, C=C, seed=seed)
    out["layer"] = layer
    return out


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
    when needed (:func:`repalign.models.replace_head`; ``reset_head=True`` replaces it even when it already has
    ``num_classes`` outputs), optionally every other parameter is frozen (``freeze_backbone``: a linear probe
    trained by the optimizer), then the whole model is trained with cross-entropy by
    :func:`repalign.training.train`:

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
          as :func:`repalign.training.train` accepts)
        - ``test_x``: (m, ...); ``test_y``: (m,) or (m, k) (or an object with ``.x``/``.y`` and ``test_y=None``)

    Returns:
        ``{"test_accuracy", "test_loss", "history", "model", "head_replaced"}``: ``test_accuracy`` is ``None``
        for regression and ``test_loss`` (test mean squared error) is ``None`` for classification.
    """
    import torch

    from repalign.models import output_head, replace_head
    from repalign.training import train

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
