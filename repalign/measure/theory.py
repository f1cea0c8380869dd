r"""The paper's theory of gradient descent on a linear model over fixed features, computed from a spectrum.

For :math:`L(w) = \tfrac12 \lVert \Phi w - y \rVert^2` from :math:`w_0 = 0` with step :math:`\eta` and
:math:`\Phi = U \Sigma V^\top`, the residual decouples along the left singular vectors,
:math:`u_i^\top (y - \Phi w_t) = (1 - \eta \sigma_i^2)^t\, u_i^\top y`, hence

.. math::  L(w_t) = \tfrac12 \sum_i (1 - \eta\sigma_i^2)^{2t} m_i + \tfrac12 \lVert (I - UU^\top) y \rVert^2,
           \qquad m_i = (u_i^\top y)^2 .

:func:`predicted_loss_curve`, :func:`predicted_weight_norm`, :func:`min_norm_solution_norm` and
:func:`phase_bound` give the theory from a :class:`repalign.measure.alignment.Spectrum` (measured with
``center=False``: gradient descent fits the targets as given); :class:`GDResult` is what a descent recorded
(:func:`repalign.networks.linear.gd_linear` runs one), and :func:`prediction_gap`, :func:`phase_bound_excess`,
:func:`reach_loss`, :func:`steps_to_loss` and :func:`dominance_pairs` hold a run against the theory. Matrix targets
(n, k) are k independent problems: every formula holds with :math:`m_i = \lVert u_i^\top Y \rVert^2`. NumPy only.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from repalign.core.arrays import to_numpy
from repalign.measure.alignment import Spectrum, preprocess

__all__ = [
    "GDResult",
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
]

# ----------------------------------------------------------------------------------------------------------
# The exact dynamics from a spectrum
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
        """Plain arrays and scalars (``None`` fields dropped), e.g. for :func:`repalign.core.cache.load_or_compute`."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        return {k: v for k, v in out.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GDResult:
        """Inverse of :meth:`to_dict`."""
        return cls(**data)


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
        - ``spec``: a :class:`repalign.measure.alignment.Spectrum` with r singular values
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
