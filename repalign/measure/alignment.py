r"""Representation alignment: how much of the targets lies on the top singular directions of the features.

For a representation matrix :math:`\Phi \in \mathbb{R}^{n \times d}` with thin SVD :math:`\Phi = U \Sigma V^\top`
and targets :math:`Y \in \mathbb{R}^{n \times k}` (a vector is the case :math:`k = 1`),

.. math::

    A(\tau) = \sum_{i:\ \sigma_i \ge \tau} \lVert u_i^\top Y \rVert_2^2 ,
    \qquad A(\tau \le 0) = \lVert Y \rVert_F^2 ,

(Imani, Hu, White, TMLR 2022). Following the authors' demo, by default a constant-1 column is appended to
:math:`\Phi` (the bias of a downstream linear model) and **then** every row is scaled to unit L2 norm, so that
:math:`\sum_i \sigma_i^2 = n` and :math:`\sigma_1 \le \sqrt{n}`. By default the targets are centred,
:math:`Y \leftarrow Y - \mathbf 1\bar y^\top` (``center=True``): the bias column lets a linear model fit their
mean for free, and after row normalisation the constant direction lies mostly along the top singular vector, so
an uncentred target would score "aligned" for its mean alone. Balanced ±1 pairs (the demo) are already centred;
``center=False`` measures the targets as given.

How it is computed (never with an n × n ``full_matrices=True`` SVD):

* ``method="gram"`` (the default when :math:`d' \le n`): accumulate :math:`G = \tilde\Phi^\top\tilde\Phi` and
  :math:`B = \tilde\Phi^\top Y` in float64 chunk by chunk, :math:`G = V \Lambda V^\top` (LAPACK ``dsytrd`` and
  ``dstevd``, applying the rotations to :math:`B` instead of forming :math:`V`), then
  :math:`\sigma_i = \sqrt{\lambda_i}` and :math:`\lVert u_i^\top Y\rVert^2 = \lVert v_i^\top B\rVert^2/\lambda_i`.
  Memory :math:`O(d'^2)` whatever :math:`n` is; :class:`AlignmentAccumulator` streams it batch by batch.
* ``method="kernel"`` (the default when :math:`d' > n`): ``eigh`` of the :math:`n \times n` kernel
  :math:`K = \tilde\Phi\tilde\Phi^\top = U \Lambda U^\top` and the masses :math:`\lVert u_i^\top Y\rVert^2` directly.
* ``method="svd"``: a float64 thin SVD, the reference.

Directions whose eigenvalue is below the numerical rank tolerance carry no mass of their own; their share of
:math:`Y` is reported as the mass outside the column space (:attr:`Spectrum.outside`).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from scipy import linalg as _scipy_linalg
from scipy.linalg import blas as _blas
from scipy.linalg import lapack as _lapack

if TYPE_CHECKING:  # torch is imported only when a tensor is given
    import torch

    ArrayLike = np.ndarray | torch.Tensor | Sequence[Any]
else:
    ArrayLike = Any

__all__ = [
    "TargetWarning",
    "preprocess",
    "Spectrum",
    "spectrum",
    "alignment_curve",
    "alignment",
    "threshold_grid",
    "alignment_auc",
    "alignment_tau",
    "AlignmentAccumulator",
    "column_aucs",
    "column_curves",
]

Method = Literal["auto", "gram", "kernel", "svd"]
_METHODS = ("auto", "gram", "kernel", "svd")

#: float64's range, for the checks that keep squares and their sums representable
_TINY = float(np.finfo(np.float64).tiny)  # 2^-1022, the smallest normal number
_HUGE = float(np.finfo(np.float64).max)
#: a target whose largest |value| is below this has squares (and differences) within 2^52 of float64's underflow
_TINY_TARGET = 2.0**-460
#: centred targets whose sum of squares is below this lost their digits to underflow (tiny / eps)
_TINY_TOTAL = _TINY / float(np.finfo(np.float64).eps)

#: rows converted to float64 at a time by the Gram pass (bounded extra memory, large enough for fast BLAS)
_CHUNK_ELEMENTS = 4_194_304  # 32 MiB of float64 on the CPU
_CHUNK_ELEMENTS_CUDA = 67_108_864  # 512 MiB of float64 on a GPU: few, large products


# ----------------------------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------------------------
def _is_tensor(x: Any) -> bool:
    """A torch tensor, recognised without importing torch (NumPy users never pay torch's import)."""
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _to_numpy(x: Any) -> np.ndarray:
    if _is_tensor(x):
        t = x.detach()
        if t.dtype.is_floating_point and t.element_size() < 4:  # float16 / bfloat16 have no fast NumPy path
            t = t.float()
        return t.cpu().numpy()
    return np.asarray(x)


def _keeps_torch(t: Any) -> bool:
    """Whether a tensor is measured with torch on its device (CUDA), rather than with NumPy/SciPy (CPU)."""
    return t.device.type != "cpu"


def _as_array(x: ArrayLike, name: str) -> Any:
    """``x`` as a NumPy array (NumPy input and CPU tensors, zero-copy where possible) or a CUDA tensor.

    Rejects non-numeric and complex data. The measure is computed on the returned object's device.
    """
    if _is_tensor(x) and _keeps_torch(x):
        t = x.detach()
        if t.is_complex():
            raise ValueError(f"{name} must be real-valued, got complex dtype {t.dtype}")
        return t.float() if str(t.dtype) == "torch.bool" else t
    arr = _to_numpy(x)
    if arr.dtype.kind == "c":
        raise ValueError(f"{name} must be real-valued, got complex dtype {arr.dtype}")
    if arr.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must be numeric (bool, int or float), got dtype {arr.dtype!s}; "
            f"convert it first, e.g. np.asarray({name}, dtype=np.float32)"
        )
    if arr.dtype == np.float16:
        arr = arr.astype(np.float32)
    return arr


def _check_features(features: ArrayLike) -> Any:
    t = _as_array(features, "features")
    if t.ndim != 2:
        if t.ndim == 1:
            hint = "for one feature per example use features.reshape(-1, 1)"
        elif t.ndim == 0:
            hint = "pass an (n, d) matrix, one row per example"
        else:
            hint = "flatten each example first: features.reshape(len(features), -1)"
        raise ValueError(f"features must be 2-D (n examples, d features), got shape {tuple(t.shape)}; {hint}")
    n, d = t.shape
    if n == 0 or d == 0:
        raise ValueError(f"features are empty (shape {tuple(t.shape)}); alignment needs n ≥ 1 rows and d ≥ 1 columns")
    return t


def _check_targets(targets: ArrayLike, n: int | None, like: Any, *, whole: bool = True) -> Any:
    """Targets as a float64 (n, k) array: NumPy when ``like`` is a NumPy array, else a tensor on its device.

    ``whole``: these are all the targets (not one batch of a stream), so tiny ones can be refused here already."""
    t = _as_array(targets, "targets")
    if t.ndim == 1:
        t = t.reshape(-1, 1)
    elif t.ndim != 2:
        raise ValueError(
            f"targets must be (n,) or (n, k), got shape {tuple(t.shape)}; "
            "turn class labels into a vector or matrix with binary_targets / one_vs_rest_targets / one_hot_targets"
        )
    if t.shape[0] == 0 or t.shape[1] == 0:
        raise ValueError(f"targets are empty (shape {tuple(t.shape)})")
    if n is not None and t.shape[0] != n:
        raise ValueError(
            f"features and targets have different lengths: {n} rows of features but {t.shape[0]} targets; "
            "they must describe the same examples in the same order"
        )
    if isinstance(like, np.ndarray):
        t = np.asarray(_to_numpy(t), dtype=np.float64)
    else:
        import torch

        t = torch.as_tensor(t, device=like.device).to(torch.float64)
    _raise_if_nonfinite(t, "targets")
    _raise_if_out_of_scale(t, tiny=whole)
    return t


def _power_of_ten(value: float) -> str:
    """``1e+170`` for 3.2e-171: the power of ten that brings ``value`` (or its inverse) near 1."""
    return f"1e{abs(math.floor(math.log10(value))):+d}"


def _raise_if_out_of_scale(t: Any, name: str = "targets", after: str = "", *, tiny: bool = True) -> None:
    """Values whose squares underflow (``tiny``: checked) or whose sum of squares overflows float64 cannot be
    measured as given: say so (tiny values are not constant; huge ones are not infinite) and name the rescaling
    that fixes it. ``after`` ends the message (what the rescaling changes); by default: nothing relative."""
    size = t.size if isinstance(t, np.ndarray) else t.numel()
    peak = max(float(t.max()), -float(t.min())) if size else 0.0  # no temporary |t|: targets may be large
    if peak == 0.0:
        return
    after = after or "the relative curve, AUC and tau_q do not change"
    if tiny and peak < _TINY_TARGET:
        raise ValueError(
            f"the {name} are tiny (largest |value| {peak:.3g}): their squares underflow float64, so nothing can be "
            f"computed from them as given (they are not constant); multiply them by {_power_of_ten(peak)} ({after})"
        )
    if peak * peak * size > _HUGE / 4:
        raise ValueError(
            f"the {name} are too large (largest |value| {peak:.3g}): the sum of their squares overflows float64; "
            f"divide them by {_power_of_ten(peak)} ({after})"
        )


def _raise_if_nonfinite(t: Any, name: str, row_offset: int = 0, where: str = "") -> None:
    if not isinstance(t, np.ndarray) and (not t.is_floating_point() or bool(t.isfinite().all())):
        return  # checked on the tensor's device; copied (in its own precision) only to report what is wrong
    a = t if isinstance(t, np.ndarray) else _to_numpy(t)
    finite = np.isfinite(a) if a.dtype.kind == "f" else np.ones(a.shape, dtype=bool)
    if finite.all():
        return
    bad = ~finite
    count = int(bad.sum())
    n_nan = int(np.isnan(a).sum())
    first_row = int(np.flatnonzero(bad.reshape(bad.shape[0], -1).any(axis=1))[0]) + row_offset
    kinds = f"{n_nan} NaN and {count - n_nan} inf" if 0 < n_nan < count else ("NaN" if n_nan else "inf")
    raise ValueError(
        f"{name}{where} contain {count} non-finite value(s) ({kinds}), first in row {first_row}; "
        "remove or impute those rows before measuring alignment"
    )


# ----------------------------------------------------------------------------------------------------------------
# Guardrail: uncentred targets whose mean would count as alignment
# ----------------------------------------------------------------------------------------------------------------
class TargetWarning(UserWarning):
    """Targets in a form that makes the alignment misleading (their mean measured as if it were aligned)."""


#: with ``center=False``, warn when the targets' mean carries more than this share of ‖Y‖² (the AUC resolution the
#: claims use: a mean share s can add up to about s to the AUC, since it sits mostly on the top direction)
MEAN_SHARE_WARNING = 0.01


def _target_moments(y: Any) -> tuple[np.ndarray, np.ndarray, bool]:
    """Column sums (k,), column sums of squares (k,) and whether every value is 0 or 1."""
    if isinstance(y, np.ndarray):
        return y.sum(axis=0), np.square(y).sum(axis=0), bool(np.all((y == 0) | (y == 1)))
    return _host(y.sum(dim=0)), _host(y.square().sum(dim=0)), bool(((y == 0) | (y == 1)).all())


def _warn_if_mean_dominates(sums: np.ndarray, squares: np.ndarray, zero_one: bool, n: int) -> None:
    r"""Warn when the mean's share :math:`n\lVert\bar y\rVert^2 / \lVert Y\rVert_F^2` of uncentred targets
    exceeds :data:`MEAN_SHARE_WARNING` (0/1 labels: the fraction of ones; raw regression targets such as 25-346:
    about 0.8; balanced ±1 pairs: 0).

    Called for ``center=False`` with the bias column only: the mechanism is the mean lying along the bias
    direction; without it (e.g. the exact GD dynamics of a bias-free learner) nothing is warned."""
    total = float(np.sum(squares))
    if n == 0 or total <= 0:
        return
    share = float(np.sum(np.square(sums))) / n / total
    if share <= MEAN_SHARE_WARNING:
        return
    means = ", ".join(f"{v:.4g}" for v in (np.asarray(sums) / n)[:4]) + (", ..." if np.size(sums) > 4 else "")
    labels01 = zero_one and bool(np.all((np.asarray(sums) > 0) & (np.asarray(sums) < n)))
    hint = " They look like 0/1 labels: binary_targets(labels) gives the ±1 convention." if labels01 else ""
    warnings.warn(
        f"center=False with targets whose mean carries {share:.0%} of their squared norm (column mean(s) {means}): "
        "with the bias column the mean lies mostly along the top singular direction, so it counts as 'aligned' "
        "whatever the features are, and the AUC and tau_q mostly measure the mean. Pass center=True (the default) "
        f"to measure the centred targets, or centre/standardise them yourself.{hint}",
        TargetWarning,
        stacklevel=_outside_this_module(),
    )


def _add_moments(a: tuple | None, b: tuple | None) -> tuple | None:
    """Moments of two sets of rows together (None: no rows)."""
    if a is None or b is None:
        return b if a is None else a
    return a[0] + b[0], a[1] + b[1], a[2] and b[2]


def _outside_this_module() -> int:
    """The ``stacklevel`` of the first caller outside this module (the user's line, whichever API they called)."""
    import sys

    frame, level = sys._getframe(1), 2
    while frame is not None and frame.f_code.co_filename == __file__:
        frame, level = frame.f_back, level + 1
    return level - 1


# ----------------------------------------------------------------------------------------------------------------
# Preprocessing (shared with the downstream learners)
# ----------------------------------------------------------------------------------------------------------------
def _prepare_chunk(src: Any, buf: Any, bias: bool, normalize: bool, row_offset: int, where: str = "") -> Any:
    """Copy ``src`` (m, d) into the float64 buffer ``buf`` (≥ m rows, d + bias columns), append the bias column,
    scale rows to unit norm; raise on non-finite values or unnormalisable zero rows.

    A row whose squared norm leaves float64's normal range (values near 1e±155 and beyond) is first scaled by a
    power of two, exactly (:func:`_rescale_rows`): the unit-norm row is the same. Without ``normalize`` such values
    are refused (their Gram matrix would overflow).

    ``src`` and ``buf`` are NumPy arrays on the CPU (NumPy/BLAS only in the hot loop: mixing torch's OpenMP pool
    with BLAS threads oversubscribes a small CPU) and torch tensors on the source's device otherwise.
    """
    m, d = src.shape
    out = buf[:m]
    cpu = isinstance(out, np.ndarray)
    if cpu:
        out[:, :d] = src
    else:
        out[:, :d].copy_(src)
    if bias:
        out[:, d] = 1.0
    if cpu:  # one pass gives both checks: a NaN/inf anywhere in a row makes its squared norm (or sum) non-finite
        with np.errstate(over="ignore", invalid="ignore"):  # reported by name below
            sq = np.einsum("ij,ij->i", out, out) if normalize else out.sum(axis=1)
    else:
        import torch

        # einsum reduces row by row: no (m, d) temporary of squares on the device
        sq = torch.einsum("ij,ij->i", out, out) if normalize else out.sum(dim=1)
    if not normalize:
        if not bool((np.isfinite(sq) if cpu else sq.isfinite()).all()):
            _raise_if_nonfinite(src, "features", row_offset, where)
            raise ValueError(
                f"features{where} hold values too large to square in float64; normalize=False uses them as given: "
                "rescale them (e.g. divide by their largest absolute value), or keep normalize=True"
            )
        return out
    outside = ~((sq >= _TINY) & (sq <= _HUGE))  # zero, subnormal, overflowing or NaN squared norms
    if bool(outside.any()):
        _rescale_rows(src, out, sq, outside, row_offset, where)
    if cpu:
        out /= np.sqrt(sq)[:, None]
    else:
        out.div_(sq.sqrt().unsqueeze(1))
    return out


def _rescale_rows(src: Any, out: Any, sq: Any, outside: Any, row_offset: int, where: str) -> None:
    """Scale the rows of ``out`` flagged ``outside`` by a power of two (exact) so that their largest value lies in
    [0.5, 1), and recompute their squared norms in ``sq``: normalising them then gives the unit-norm row exactly.

    Raises on NaN/inf in ``src`` (as before any rescaling) and on all-zero rows."""
    cpu = isinstance(out, np.ndarray)
    rows = np.flatnonzero(outside) if cpu else outside.nonzero()[:, 0]
    if not bool((np.isfinite(sq[rows]) if cpu else sq[rows].isfinite()).all()):
        _raise_if_nonfinite(src, "features", row_offset, where)  # NaN/inf in the input: raises
    block = out[rows]
    peak = np.max(np.abs(block), axis=1) if cpu else block.abs().amax(dim=1)
    zero = peak == 0
    if bool(zero.any()):
        _raise_zero_rows(_host(rows[zero]), row_offset, where)
    if cpu:
        with np.errstate(under="ignore"):  # a value 2^1074 times smaller than its row's largest is 0 in the unit row
            block = np.ldexp(block, -np.frexp(peak)[1][:, None])
        out[rows] = block
        sq[rows] = np.einsum("ij,ij->i", block, block)
        return
    import torch

    exponent = torch.frexp(peak).exponent.to(torch.float64).unsqueeze(1)
    half = torch.floor(exponent / 2)  # two exact steps: 2^-exponent alone overflows for subnormal rows
    block = block * torch.pow(2.0, -half) * torch.pow(2.0, half - exponent)
    out[rows] = block
    sq[rows] = torch.einsum("ij,ij->i", block, block)


def _raise_zero_rows(rows: np.ndarray, row_offset: int, where: str) -> None:
    raise ValueError(
        f"features{where} have {rows.size} all-zero row(s), first row {int(rows[0]) + row_offset}, "
        "which cannot be scaled to unit norm; keep bias=True (the default appends a constant column), "
        "pass normalize=False, or drop those rows"
    )


def preprocess(features: ArrayLike, *, bias: bool = True, normalize: bool = True) -> Any:
    r"""The features alignment is measured on: float64, bias column appended, rows scaled to unit norm.

    .. math::  \tilde\phi_j = [\phi_j, 1] / \lVert [\phi_j, 1] \rVert_2

    Shape:
        features: (n, d)  →  returns (n, d + 1) with ``bias`` (else (n, d)), float64, same kind (numpy array or
        torch tensor on the same device) as the input.
    """
    t = _check_features(features)
    n, d = t.shape
    if isinstance(t, np.ndarray):
        out_np = _prepare_chunk(t, np.empty((n, d + int(bias))), bias, normalize, 0)
        if _is_tensor(features):
            import torch

            return torch.from_numpy(out_np)
        return out_np
    import torch

    out = torch.empty((n, d + int(bias)), dtype=torch.float64, device=t.device)
    return _prepare_chunk(t, out, bias, normalize, 0)


# ----------------------------------------------------------------------------------------------------------------
# The spectrum
# ----------------------------------------------------------------------------------------------------------------
@dataclass
class Spectrum:
    r"""Singular values of the features and the target mass on each left singular direction.

    Attributes:
        singular_values: (r,) descending, the numerically non-zero singular values :math:`\sigma_i`.
        mass: (r,) :math:`\lVert u_i^\top Y \rVert^2` summed over target columns.
        mass_columns: (r, k) :math:`(u_i^\top y_c)^2` for each target column c.
        outside: :math:`\lVert (I - U U^\top) Y \rVert_F^2`, the target mass outside the column space.
        total: :math:`\lVert Y \rVert_F^2` (of the centred targets when ``centered``).
        n: number of examples. d: number of feature columns after the bias column.
        options: how the features and targets were preprocessed (``bias``, ``normalize``, ``center``) and which
            method computed this.
        centered: whether Y is the centred targets :math:`Y - \mathbf 1\bar y^\top` (the default of
            :func:`spectrum`); a spectrum saved before centring existed reads back as ``False``.
    """

    singular_values: np.ndarray
    mass: np.ndarray
    mass_columns: np.ndarray
    outside: float
    total: float
    n: int
    d: int
    options: dict[str, Any] = field(default_factory=dict)
    centered: bool = False

    def __post_init__(self) -> None:
        if self.options:
            note_preprocessing(self.options)

    def __repr__(self) -> str:
        try:
            summary = f"auc={self.auc():.4f}, tau_0.9={self.tau_q(0.9):.4g}"
        except ValueError:  # all-zero (uncentred) targets: no relative summary
            summary = "auc=n/a, tau_0.9=n/a"
        return (
            f"Spectrum(n={self.n}, d={self.d}, rank={self.rank}, centered={self.centered}, total={self.total:.6g}, "
            f"{summary})"
        )

    @property
    def rank(self) -> int:
        """Numerical rank r of the preprocessed features."""
        return int(self.singular_values.size)

    def curve(self, thresholds: ArrayLike | None = None, *, relative: bool = False) -> np.ndarray:
        r"""Alignment :math:`A(\tau)` at each threshold (``None``: :func:`threshold_grid` for this n).

        Shape: thresholds (t,) → returns (t,) float64.
        """
        taus = threshold_grid(self.n) if thresholds is None else np.asarray(_to_numpy(thresholds), dtype=np.float64)
        if taus.ndim != 1:
            taus = taus.reshape(-1)
        if not np.all(np.isfinite(taus)):
            raise ValueError("thresholds must be finite numbers")
        sig_asc = self.singular_values[::-1]
        # suffix sums of mass in descending order: above[j] = sum of the j largest directions' mass
        above = np.concatenate([[0.0], np.cumsum(self.mass)])
        count = sig_asc.size - np.searchsorted(sig_asc, taus, side="left")  # number of sigma_i >= tau
        values = above[count]
        values = np.where(taus <= 0, self.total, values)
        if relative:
            values = values / self._total_nonzero()
        return values

    def auc(self, top: float | None = None) -> float:
        """Area under the relative curve over τ ∈ [0, top], divided by top (default top = √n); see :func:`alignment_auc`."""
        return alignment_auc(self, top=top)

    def tau_q(self, q: float) -> float:
        """The largest τ with A(τ) ≥ q·‖Y‖² (0 < q ≤ 1), exactly; see :func:`alignment_tau`."""
        return alignment_tau(self, q)

    def _total_nonzero(self) -> float:
        if self.total <= 0:
            raise ValueError("targets are all zero, so relative alignment A(τ)/‖Y‖² is undefined")
        return self.total

    def to_dict(self) -> dict[str, Any]:
        """Plain data (NumPy arrays, numbers, a dict of options): cacheable without pickle, JSON-able with
        :func:`repalign.core.files.json_default`. Inverse: :meth:`from_dict`."""
        return {
            "singular_values": self.singular_values,
            "mass": self.mass,
            "mass_columns": self.mass_columns,
            "outside": float(self.outside),
            "total": float(self.total),
            "n": int(self.n),
            "d": int(self.d),
            "options": dict(self.options),
            "centered": bool(self.centered),
        }

    @classmethod
    def from_dict(cls, data: Any) -> Spectrum:
        """Rebuild a :class:`Spectrum` from :meth:`to_dict` (arrays or lists).

        A dict without ``centered`` (and without ``options["center"]``) was written before centring existed, when
        targets were measured as given: it reads back as ``centered=False``.
        """
        mass = np.asarray(data["mass"], dtype=np.float64)
        cols = np.asarray(data.get("mass_columns", mass[:, None]), dtype=np.float64).reshape(mass.size, -1)
        options = dict(data.get("options", {}))
        return cls(
            np.asarray(data["singular_values"], dtype=np.float64),
            mass,
            cols,
            float(data["outside"]),
            float(data["total"]),
            int(data["n"]),
            int(data["d"]),
            options,
            bool(data.get("centered", options.get("center", False))),
        )


# ----------------------------------------------------------------------------------------------------------------
# What was measured: the preprocessing of every spectrum made or loaded in this process, for result files
# ----------------------------------------------------------------------------------------------------------------
_SEEN: dict[tuple[bool, bool, bool], None] = {}


def note_preprocessing(options: dict[str, Any]) -> None:
    """Record that a spectrum with these ``options`` (``bias``, ``normalize``, ``center``) was measured or loaded.

    Every :class:`Spectrum` notes itself when it is built (computed or read back from a cache), so
    :func:`preprocessing_seen` says how the features and targets behind a notebook's verdicts were really
    preprocessed (:func:`repalign.run.claims.report` writes it into the claim file).
    """
    _SEEN[(bool(options.get("bias", True)), bool(options.get("normalize", True)), bool(options.get("center")))] = None


def preprocessing_seen(*, reset: bool = False) -> list[dict[str, bool]]:
    """The distinct preprocessings noted since the last reset, sorted: ``[{"bias", "normalize", "center_targets"}]``.

    ``reset=True`` returns them and starts a new record (a notebook's first cell does, through
    :func:`repalign.run.claims.snapshot`).
    """
    seen = [{"bias": b, "normalize": n, "center_targets": c} for b, n, c in sorted(_SEEN)]
    if reset:
        _SEEN.clear()
    return seen


def _host(x: Any) -> np.ndarray:
    """A NumPy array of ``x`` (CUDA results are small by then: eigenvalues, projections, totals)."""
    return x if isinstance(x, np.ndarray) else x.detach().cpu().numpy()


def _rank_cutoff(eigvals_desc: np.ndarray, dim: int, squared: bool) -> float:
    """Eigenvalues (of a Gram or kernel matrix) at or below this are numerically zero."""
    top = float(eigvals_desc[0]) if eigvals_desc.size else 0.0
    eps = float(np.finfo(np.float64).eps)
    # eigh of a float64 Gram/kernel matrix is accurate to about eps * lambda_max * dim
    return max(top, 0.0) * dim * eps * (10.0 if squared else 1.0)


def _spectrum_from_eig(
    eigvals: Any,
    coefficients: Any,
    total_columns: Any,
    n: int,
    d: int,
    options: dict[str, Any],
    *,
    from_gram: bool,
) -> Spectrum:
    """Assemble a :class:`Spectrum` from ascending eigenvalues and :math:`C = V^\\top P` (:func:`_eig_coefficients`).

    ``P`` is :math:`B = \\tilde\\Phi^\\top Y` (gram: the mass on direction :math:`i` is
    :math:`\\lVert C_{i:}\\rVert^2/\\lambda_i`) or :math:`Y` (kernel: the mass is :math:`\\lVert C_{i:}\\rVert^2`).
    """
    lam_desc = _host(eigvals)[::-1].copy()
    cutoff = _rank_cutoff(lam_desc, max(n, d) if not from_gram else d, squared=from_gram)
    keep = np.flatnonzero(lam_desc > cutoff)
    lam = lam_desc[keep]
    rows = coefficients.shape[0] - 1 - keep  # ascending row index of each kept direction
    coef = _host(coefficients)[rows] if isinstance(coefficients, np.ndarray) else _host(coefficients[rows.copy()])
    with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name just below
        mass_cols = np.square(coef)
        if from_gram:
            mass_cols = mass_cols / lam[:, None]
    if not np.isfinite(mass_cols).all():
        raise ValueError(
            "the features and targets are too large together: their products overflow float64 (normalize=False "
            "uses the features as given); rescale the features (e.g. divide by their largest absolute value) or the "
            "targets, or keep normalize=True"
        )
    total_cols = _host(total_columns)
    mass = mass_cols.sum(axis=1)
    total = float(total_cols.sum())
    outside = max(total - float(mass.sum()), 0.0)
    return Spectrum(np.sqrt(lam), mass, mass_cols, outside, total, n, d, options, bool(options.get("center")))


class _GramState:
    """float64 :math:`G = \\tilde\\Phi^\\top\\tilde\\Phi`, :math:`B = \\tilde\\Phi^\\top Y` and :math:`\\lVert Y\\rVert^2`.

    On the CPU (NumPy arrays) the symmetric rank-k update runs as BLAS ``dsyrk`` (half the flops of a general
    product) into the upper triangle, and the eigen-step as :func:`_eig_coefficients` (LAPACK via SciPy); on
    CUDA (``device`` a CUDA device) both run in torch on the device.

    With ``center`` the targets are centred in one pass. The state holds sums about a shift :math:`c` (``mean``,
    kept at the running mean): ``B`` is :math:`[\\tilde\\Phi^\\top (Y - \\mathbf 1 c^\\top),\\ s]` with
    :math:`s = \\tilde\\Phi^\\top \\mathbf 1` (the ones column of the same ``dgemm``), ``yy`` is
    :math:`\\lVert Y - \\mathbf 1 c^\\top\\rVert^2` and ``r`` is :math:`\\mathbf 1^\\top (Y - \\mathbf 1 c^\\top)`
    per column. Each chunk moves :math:`c` to the new running mean: the state is re-expressed about it
    (:func:`_move_shift`, exact identities whose terms are sums of squares) and the chunk is added centred on it.
    At the end :math:`B_c = B - s\\,(r/n)^\\top` and :math:`\\lVert Y_c\\rVert^2 = yy - r^2/n` (r/n is rounding
    of the mean: no cancellation), as accurate as centring the concatenated targets directly, however large the
    mean. ``ymin``/``ymax`` detect constant columns exactly (their centred mass is exactly 0).
    """

    def __init__(self, d1: int, k: int, device: Any = None, center: bool = False) -> None:
        self.device = device
        self.cpu = device is None
        self.center = center
        self.k = k
        self.count = 0
        kb = k + int(center)  # the ones column: s = sum of the preprocessed rows
        if self.cpu:
            self.G: Any = np.zeros((d1, d1), order="F")
            self.B: Any = np.zeros((d1, kb), order="F")
            self.yy: Any = np.zeros(k)
            if center:
                self.r: Any = np.zeros(k)
                self.mean: Any = np.zeros(k)
                self.ymin: Any = np.full(k, np.inf)
                self.ymax: Any = np.full(k, -np.inf)
        else:
            import torch

            f64 = {"dtype": torch.float64, "device": device}
            self.G = torch.zeros((d1, d1), **f64)
            self.B = torch.zeros((d1, kb), **f64)
            self.yy = torch.zeros(k, **f64)
            if center:
                self.r = torch.zeros(k, **f64)
                self.mean = torch.zeros(k, **f64)
                self.ymin = torch.full((k,), math.inf, **f64)
                self.ymax = torch.full((k,), -math.inf, **f64)

    @property
    def _fields(self) -> tuple[str, ...]:
        return ("G", "B", "yy", "r", "mean", "ymin", "ymax") if self.center else ("G", "B", "yy")

    def add(self, t: Any, y: Any, bias: bool, normalize: bool, row_offset: int, where: str) -> None:
        """Add the rows ``t`` (m, d) and their targets ``y`` (m, k), chunk by chunk. Sums that overflow float64 (huge
        features with ``normalize=False``, or huge targets over many batches) are refused by name in
        :meth:`spectrum`, without a NumPy warning first."""
        with np.errstate(over="ignore", invalid="ignore"):
            self._add(t, y, bias, normalize, row_offset, where)

    def _add(self, t: Any, y: Any, bias: bool, normalize: bool, row_offset: int, where: str) -> None:
        n, d = t.shape
        d1 = d + int(bias)
        k = self.k
        rows = max(1, min(n, (_CHUNK_ELEMENTS if self.cpu else _CHUNK_ELEMENTS_CUDA) // d1))
        if self.cpu:
            buf: Any = np.empty((rows, d1))
            if self.center:
                ybuf: Any = np.empty((rows, k + 1), order="F")
                ybuf[:, k] = 1.0
        else:
            import torch

            buf = torch.empty((rows, d1), dtype=torch.float64, device=t.device)
            if self.center:
                ybuf = torch.ones((rows, k + 1), dtype=torch.float64, device=t.device)
        for start in range(0, n, rows):
            chunk = _prepare_chunk(t[start : start + rows], buf, bias, normalize, row_offset + start, where)
            m = chunk.shape[0]
            yc = y[start : start + m]
            if self.center:
                yc = self._center_chunk(yc, ybuf[:m])
            if self.cpu:
                out = _blas.dsyrk(1.0, chunk.T, beta=1.0, c=self.G, trans=0, overwrite_c=1)
                if out is not self.G and not np.shares_memory(out, self.G):  # pragma: no cover - BLAS copied
                    self.G = np.asfortranarray(out)
                # scipy's BLAS for both products: NumPy links a second OpenBLAS whose spinning threads would
                # compete with scipy's for the same cores between calls
                self.B = _blas.dgemm(1.0, chunk.T, yc, beta=1.0, c=self.B, overwrite_c=1)
            else:
                self.G.addmm_(chunk.T, chunk)
                self.B.addmm_(chunk.T, yc)
        if not self.center:  # (the centred state counts and sums chunk by chunk in _center_chunk)
            self.yy += np.square(y).sum(axis=0) if self.cpu else y.square().sum(dim=0)
            self.count += n

    def _center_chunk(self, yc: Any, out: Any) -> Any:
        """Move the shift to the running mean including the chunk ``yc`` (m, k), re-express the state about it,
        add the chunk's ``yy`` and ``r``; write the chunk centred on it into ``out[:, :k]`` (``out[:, k]`` holds
        ones) and return ``out``, for the ``dgemm`` that adds its part of B and s."""
        m, k = yc.shape
        total = self.count + m
        chunk_mean = yc.mean(axis=0) if self.cpu else yc.mean(dim=0)
        mean = self.mean + (chunk_mean - self.mean) * (m / total)  # the running mean (any shift is exact)
        self.B[:, :k], self.yy, self.r = _move_shift(
            self.B[:, :k], self.B[:, k], self.yy, self.r, self.count, mean - self.mean
        )
        self.mean = mean
        if self.cpu:
            np.subtract(yc, mean, out=out[:, :k])
            self.yy += np.square(out[:, :k]).sum(axis=0)
            self.r += out[:, :k].sum(axis=0)
            self.ymin = np.minimum(self.ymin, yc.min(axis=0))
            self.ymax = np.maximum(self.ymax, yc.max(axis=0))
        else:
            out[:, :k] = yc - mean
            self.yy += out[:, :k].square().sum(dim=0)
            self.r += out[:, :k].sum(dim=0)
            self.ymin = self.ymin.minimum(yc.amin(dim=0))
            self.ymax = self.ymax.maximum(yc.amax(dim=0))
        self.count = total
        return out

    def snapshot(self) -> tuple[int, dict[str, Any]]:
        """Copies of the accumulated state, to roll back a batch that fails validation part-way."""
        if self.cpu:
            return self.count, {f: getattr(self, f).copy(order="F") for f in self._fields}
        return self.count, {f: getattr(self, f).clone() for f in self._fields}

    def restore(self, snap: tuple[int, dict[str, Any]]) -> None:
        self.count = snap[0]
        for f, value in snap[1].items():
            setattr(self, f, value)

    def _sym_g(self) -> Any:
        if self.cpu:
            upper = np.triu(self.G)
            return upper + np.triu(upper, 1).T
        return 0.5 * (self.G + self.G.T)

    def parts(self) -> dict[str, Any]:
        """The raw state (NumPy on the CPU, tensors on the device): full symmetric ``G``; ``B`` (d', k) and ``yy``
        (k); with ``center`` these are about the shift ``mean`` (k), and ``s`` (d') and ``r`` (k) come too."""
        out = {"G": self._sym_g(), "B": self.B[:, : self.k], "yy": self.yy}
        if self.center:
            out.update(s=self.B[:, self.k], r=self.r, mean=self.mean, ymin=self.ymin, ymax=self.ymax)
        return out

    def full(self) -> tuple[Any, Any, Any]:
        """(full symmetric G, B, ‖Y‖² per column) of the targets measured: with ``center`` the centred targets,
        :math:`B_c = B - s\\,(r/n)^\\top`, :math:`yy - r^2/n`, and a constant column (min = max) exactly zero."""
        G, B, yy = self._sym_g(), self.B[:, : self.k], self.yy
        if self.center and self.count:
            resid = self.r / self.count  # the stored mean's rounding: tiny
            outer = np.outer if self.cpu else _torch_outer
            B = B - outer(self.B[:, self.k], resid)
            yy = yy - self.r * resid
            const = np.flatnonzero(_host(self.ymin == self.ymax))
            if const.size:
                B[:, const] = 0.0
                yy[const] = 0.0
            yy = np.maximum(yy, 0.0) if self.cpu else yy.clamp(min=0.0)
        return G, B, yy

    def merge(self, other: _GramState) -> None:
        if other.center != self.center:
            raise ValueError("cannot merge a centred accumulator with an uncentred one (center=True vs False)")
        p = other.parts()
        if self.cpu:
            p = {key: _host(v) for key, v in p.items()}
            self.G = np.asfortranarray(self._sym_g() + p["G"])
        else:
            import torch

            p = {key: torch.as_tensor(v, dtype=torch.float64, device=self.device) for key, v in p.items()}
            self.G = self.G + p["G"]
        if not self.center:
            self.B = self.B + p["B"]
            if self.cpu:
                self.B = np.asfortranarray(self.B)
            self.yy = self.yy + p["yy"]
        elif other.count:
            # both halves re-expressed about the combined running mean, then added (Chan et al.'s pairwise update)
            k, na, nb = self.k, self.count, other.count
            mean = self.mean + (p["mean"] - self.mean) * (nb / (na + nb))
            ba, yya, ra = _move_shift(self.B[:, :k], self.B[:, k], self.yy, self.r, na, mean - self.mean)
            bb, yyb, rb = _move_shift(p["B"], p["s"], p["yy"], p["r"], nb, mean - p["mean"])
            s = self.B[:, k] + p["s"]
            if self.cpu:
                self.B = np.asfortranarray(np.column_stack([ba + bb, s]))
                self.ymin, self.ymax = np.minimum(self.ymin, p["ymin"]), np.maximum(self.ymax, p["ymax"])
            else:
                self.B = torch.column_stack([ba + bb, s])
                self.ymin, self.ymax = self.ymin.minimum(p["ymin"]), self.ymax.maximum(p["ymax"])
            self.yy, self.r, self.mean = yya + yyb, ra + rb, mean
        self.count += other.count

    def spectrum(self, n: int, options: dict[str, Any]) -> Spectrum:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name below
            G, B, yy = self.full()
        if not np.isfinite(_host(yy)).all():  # each batch was checked; their sum can still overflow
            raise ValueError(
                "the targets are too large: the sum of their squares over all batches overflows float64; divide them "
                "by a power of ten (the relative curve, AUC and tau_q do not change)"
            )
        if self.center:
            _raise_if_constant(yy, _host(self.ymin == self.ymax))
        lam, coef = _eig_coefficients(G, B)
        return _spectrum_from_eig(lam, coef, yy, n, G.shape[0], options, from_gram=True)


def _torch_outer(a: Any, b: Any) -> Any:
    import torch

    return torch.outer(a, b)


def _move_shift(B: Any, s: Any, yy: Any, r: Any, count: int, delta: Any) -> tuple[Any, Any, Any]:
    """Sums about a shift c re-expressed about c + delta, for ``count`` rows: B = Φ̃ᵀ(Y − 1cᵀ) (d', k), s = Φ̃ᵀ1,
    yy = ‖Y − 1cᵀ‖², r = 1ᵀ(Y − 1cᵀ) (k). Exact identities; ‖·‖² as a sum of two squares (the spread about the
    mean, then the mean's distance to the new shift), so no cancellation. Returns (B, yy, r)."""
    if not count:
        return B, yy, r
    outer = np.outer if isinstance(B, np.ndarray) else _torch_outer
    resid = r / count  # mean − c
    spread = yy - r * resid  # ‖Y − 1 ȳᵀ‖²
    if isinstance(spread, np.ndarray):
        spread = np.maximum(spread, 0.0)
    else:
        spread = spread.clamp(min=0.0)
    gap = resid - delta  # mean − (c + delta)
    return B - outer(s, delta), spread + count * gap * gap, r - count * delta


def _raise_if_constant(total_columns: Any, constant_columns: Any) -> None:
    """Centred targets with nothing left to measure: every column constant (exactly: its minimum equals its
    maximum), or columns that vary by so little that their centred squares underflow float64 (not constant: the
    test is relative, on the values, not on their squares)."""
    if bool(np.all(constant_columns)):
        raise ValueError(
            "the targets are constant (every column takes a single value), so after centring (center=True) "
            "nothing is left: a constant target has no alignment to measure; check the targets (e.g. a subset "
            "with one class only), or pass center=False to measure the uncentred targets"
        )
    _raise_if_too_small(float(np.sum(_host(total_columns))))


def _raise_if_too_small(total: float) -> None:
    """Targets (not all zero) whose sum of squares lies at float64's underflow lost their digits: refuse them."""
    if total < _TINY_TOTAL:
        raise ValueError(
            f"the targets are tiny, or vary by too little, to measure in float64 (they are not constant, but the sum "
            f"of their squares, after centring when centred, is {total:.3g}, at float64's underflow); multiply them "
            "by a large power of two (e.g. 2**500, exact): the relative curve, AUC and tau_q do not change"
        )


def _constant_columns(y: Any) -> np.ndarray:
    """Whether each target column takes one value only (exactly). Shape: (n, k) → (k,) bool."""
    if isinstance(y, np.ndarray):
        return y.max(axis=0) == y.min(axis=0)
    return _host(y.amax(dim=0) == y.amin(dim=0))


def _center_targets(y: Any, constant: np.ndarray | None = None) -> Any:
    """Targets minus their column means (a copy), constant columns (``constant``, found when None) exactly zero.
    Shape: (n, k) → (n, k).

    Two passes: the mean, then the mean of what is left (a plain column sum loses ~√n ulps of a large mean, and
    one rounded mean is off by up to half an ulp of it, which enters the masses to first order)."""
    if isinstance(y, np.ndarray):
        yc = y - y.mean(axis=0)
        yc -= yc.mean(axis=0)
    else:
        yc = y - y.mean(dim=0)
        yc -= yc.mean(dim=0)
    const = np.flatnonzero(_constant_columns(y) if constant is None else constant)
    if const.size:
        yc[:, const] = 0.0
    return yc


def _eig_coefficients(M: Any, P: Any) -> tuple[Any, Any]:
    """Ascending eigenvalues of a symmetric float64 ``M`` ``(m, m)`` and :math:`C = V^\\top P` ``(m, k)``.

    Only the projections of ``P`` on the eigenvectors are needed, never :math:`V` itself. On the CPU this is
    what LAPACK ``syevd`` does minus its most expensive step: :math:`M = Q T Q^\\top` (``dsytrd``), then
    :math:`Q^\\top P` by applying the Householder reflectors to ``P`` (``dormqr``, :math:`O(m^2 k)`), then
    :math:`T = Z \\Lambda Z^\\top` by divide and conquer (``dstevd``) and :math:`C = Z^\\top (Q^\\top P)`. ``syevd``
    would instead form :math:`V = QZ`, a further :math:`2m^3` flops (about 40% of its time at m = 2,049). Tensors
    (CUDA) use ``torch.linalg.eigh`` on their device.
    """
    _raise_if_overflowed(M, P)
    if not isinstance(M, np.ndarray):
        import torch

        lam, V = torch.linalg.eigh(0.5 * (M + M.T))
        return lam, V.T @ P
    m = M.shape[0]
    if m <= 2:
        lam, V = _scipy_linalg.eigh(M, check_finite=False)
        return lam, V.T @ P
    lwork = int(_lapack.dsytrd_lwork(m, lower=1)[0])
    c, diag, off, tau, info = _lapack.dsytrd(M, lower=1, lwork=max(lwork, m), overwrite_a=0)
    if info == 0:
        reflectors, tail = c[1:, :-1], np.array(P[1:], dtype=np.float64, order="F")  # a copy: overwritten
        lwork = int(_lapack.dormqr("L", "T", reflectors, tau, tail, -1)[1][0])
        qt_tail, _, info = _lapack.dormqr("L", "T", reflectors, tau, tail, max(lwork, 1), overwrite_c=1)
    if info == 0:
        lam, Z, info = _lapack.dstevd(diag, off, compute_v=1)
    if info != 0:  # pragma: no cover - LAPACK failure; the reference driver may still converge
        lam, V = _scipy_linalg.eigh(M, driver="evd", check_finite=False)
        return lam, V.T @ P
    qtp = np.concatenate([np.asarray(P[:1], dtype=np.float64), qt_tail])
    return lam, Z.T @ qtp


def _raise_if_overflowed(M: Any, P: Any) -> None:
    """The Gram (or kernel) matrix and the projections must be finite: with ``normalize=False`` large features
    overflow float64 in their products even when each value is finite."""
    finite = (
        np.isfinite(M).all() and np.isfinite(P).all()
        if isinstance(M, np.ndarray)
        else bool(M.isfinite().all()) and bool(P.isfinite().all())
    )
    if not finite:
        raise ValueError(
            "the features are too large: products of their values overflow float64 (normalize=False uses them as "
            "given); rescale them (e.g. divide by their largest absolute value), or keep normalize=True"
        )


def _resolve_method(method: str, n: int, d1: int) -> str:
    if method not in _METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(_METHODS)}")
    if method == "auto":
        return "gram" if d1 <= n else "kernel"
    return method


def spectrum(
    features: ArrayLike,
    targets: ArrayLike,
    *,
    bias: bool = True,
    normalize: bool = True,
    center: bool = True,
    method: Method = "auto",
) -> Spectrum:
    r"""Singular values of the preprocessed features and the target mass on each left singular direction.

    .. math::

        \tilde\Phi = U\Sigma V^\top,\quad m_i = \lVert u_i^\top Y\rVert^2,\quad
        \text{outside} = \lVert Y\rVert_F^2 - \sum_i m_i

    Shape:
        features: (n, d), a NumPy array or a torch tensor (CUDA tensors are measured on their device; everything
        else with NumPy/SciPy, without importing torch), accumulated in float64.
        targets: (n,) or (n, k).

    Args:
        bias: append a constant-1 column before normalising (the bias of a downstream linear model).
        normalize: scale every (bias-augmented) row to unit L2 norm.
        center: measure the centred targets :math:`Y - \mathbf 1\bar y^\top` (column means over the n
            examples), so that :math:`A(0) = \lVert Y_c\rVert_F^2`. The default: with the bias column a linear
            model fits the targets' mean for free, and after row normalisation the constant direction lies
            mostly along the top singular vector, so an uncentred target scores "aligned" for its mean alone.
            Balanced ±1 pairs are already centred. ``center=False`` is the uncentred convention (the authors'
            demo on its balanced pairs). Constant targets raise a ``ValueError`` when centred.
        method: ``"auto"`` (Gram matrix when d' ≤ n, else the n × n kernel), ``"gram"``, ``"kernel"``, or
            ``"svd"`` (float64 thin SVD, the slow reference).

    Returns:
        A :class:`Spectrum` (``spec.centered`` and ``spec.options`` record the preprocessing).
    """
    t = _check_features(features)
    n, d = t.shape
    y = _check_targets(targets, n, t)
    on_cpu = isinstance(t, np.ndarray)
    d1 = d + int(bias)
    chosen = _resolve_method(method, n, d1)
    center = bool(center)
    if not center and bias:
        _warn_if_mean_dominates(*_target_moments(y), n)
    options = {"bias": bias, "normalize": normalize, "center": center, "method": chosen}
    if chosen == "gram":
        state = _GramState(d1, y.shape[1], None if on_cpu else t.device, center=center)
        state.add(t, y, bias, normalize, 0, "")
        return state.spectrum(n, options)
    X = preprocess(t, bias=bias, normalize=normalize)  # first: errors in the features come first
    constant = _constant_columns(y) if center else None
    if center:
        y = _center_targets(y, constant)
    total_columns = np.square(y).sum(axis=0) if on_cpu else y.square().sum(dim=0)
    if center:
        _raise_if_constant(total_columns, constant)
    if chosen == "kernel":
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name in _eig_coefficients
            kernel = X @ X.T
        lam, coef = _eig_coefficients(kernel, y)
        return _spectrum_from_eig(lam, coef, total_columns, n, d1, options, from_gram=False)
    # thin SVD reference (never full_matrices=True: that builds an n x n matrix)
    if on_cpu:
        U, S, _ = np.linalg.svd(X, full_matrices=False)
        proj = U.T @ y
    else:
        import torch

        U, S, _ = torch.linalg.svd(X, full_matrices=False)
        proj, S = (U.T @ y).cpu().numpy(), S.cpu().numpy()
    eps = float(np.finfo(np.float64).eps)
    keep = S > (float(S[0]) * max(n, d1) * eps if S.size else 0.0)
    mass_cols = np.square(proj[keep])
    mass = mass_cols.sum(axis=1)
    total = float(_host(total_columns).sum())
    return Spectrum(S[keep], mass, mass_cols, max(total - float(mass.sum()), 0.0), total, n, d1, options, center)


def alignment_curve(
    features: ArrayLike,
    targets: ArrayLike,
    thresholds: ArrayLike | None = None,
    *,
    bias: bool = True,
    normalize: bool = True,
    center: bool = True,
    relative: bool = False,
    method: Method = "auto",
) -> np.ndarray:
    r"""Alignment :math:`A(\tau) = \sum_{\sigma_i \ge \tau} \lVert u_i^\top Y\rVert^2` at each threshold.

    .. math::

        A(\tau) = \sum_{i:\ \sigma_i \ge \tau} \lVert u_i^\top Y \rVert^2, \qquad
        A(\tau \le 0) = \lVert Y \rVert_F^2

    With ``center=True`` (the default) Y is the centred targets :math:`Y - \mathbf 1\bar y^\top` (see
    :func:`spectrum`). With ``relative=True`` the curve is divided by :math:`\lVert Y\rVert_F^2` and lies in
    [0, 1].

    Shape:
        features: (n, d); targets: (n,) or (n, k) (a matrix sums over its columns);
        thresholds: (t,), default :func:`threshold_grid` (62 points on [0, 30·√(n/1000)]).
        Returns (t,) float64 numpy array.
    """
    spec = spectrum(features, targets, bias=bias, normalize=normalize, center=center, method=method)
    return spec.curve(thresholds, relative=relative)


def alignment(
    features: ArrayLike,
    targets: ArrayLike,
    tau: float,
    *,
    bias: bool = True,
    normalize: bool = True,
    center: bool = True,
    relative: bool = False,
    method: Method = "auto",
) -> float:
    r"""Alignment :math:`A(\tau)` at one threshold (see :func:`alignment_curve`)."""
    curve = alignment_curve(
        features,
        targets,
        [float(tau)],
        bias=bias,
        normalize=normalize,
        center=center,
        relative=relative,
        method=method,
    )
    return float(curve[0])


def threshold_grid(n: int, num: int = 62, top: float | None = None) -> np.ndarray:
    r"""The demo's threshold grid scaled to n: ``num`` points on [0, top], top = 30·√(n / 1000) by default.

    With normalised rows :math:`\sigma_1 \le \sqrt{n}`, so the demo's [0, 30] at n = 1,000 becomes
    [0, 0.949·√n] at any n.

    Shape: returns (num,) float64.
    """
    if not n > 0:
        raise ValueError(f"n must be positive, got {n}")
    if num < 2:
        raise ValueError(f"num must be at least 2, got {num}")
    return np.linspace(0.0, _check_top(top, 30.0 * math.sqrt(n / 1000.0)), num)


def _check_top(top: Any, default: float) -> float:
    """``top`` (the largest threshold) as a float: ``default`` for None, else a positive finite number."""
    if top is None:
        return default
    try:
        value = float(top)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise ValueError(f"top must be a positive finite number (the largest threshold; default √n), got {top!r}")
    return value


def alignment_auc(spec: Spectrum, top: float | None = None) -> float:
    r"""Area under the relative alignment curve over :math:`\tau \in [0, T]`, divided by T (default T = √n).

    .. math::

        \mathrm{AUC} = \frac{1}{T}\int_0^T \frac{A(\tau)}{\lVert Y\rVert_F^2}\, d\tau
        = \frac{\sum_i m_i \min(\sigma_i, T)}{T\,\lVert Y\rVert_F^2} \in [0, 1]

    One number for the whole curve: 1 when all of Y lies on directions with :math:`\sigma_i \ge T`, 0 when none
    of it is in the column space. Computed exactly from the spectrum (no grid). ``top`` must be a positive finite
    number.

    It favours low-dimensional codes: with unit-norm rows :math:`\sum_i \sigma_i^2 = n`, so a representation with
    few directions has large singular values and a high AUC for that alone (a 20-column PCA code can outscore a
    128-unit layer that a linear model fits better). Compare representations of equal width, or compare
    :func:`alignment_tau` and the relative curves, rather than ranking very different widths by AUC.
    """
    T = _check_top(top, math.sqrt(spec.n))
    return float(np.sum(spec.mass * np.minimum(spec.singular_values, T)) / (T * spec._total_nonzero()))


def alignment_tau(spec: Spectrum, q: float) -> float:
    r"""The largest threshold that keeps a share q of the targets: :math:`\tau_q = \max\{\tau : A(\tau) \ge
    q\,\lVert Y\rVert_F^2\}`, for :math:`0 < q \le 1`.

    A(τ) is a step function: with :math:`\sigma_1 \ge \sigma_2 \ge \dots` and masses
    :math:`m_i = \lVert u_i^\top Y\rVert^2`, :math:`A(\tau) = \sum_{\sigma_i \ge \tau} m_i`, so
    :math:`\tau_q = \sigma_j` for the smallest j with :math:`\sum_{i \le j} m_i \ge q\lVert Y\rVert_F^2` (tied
    singular values share one step and one value), and 0 when no j reaches it (the rest lies outside the column
    space; :math:`A(0) = \lVert Y\rVert_F^2` by definition). Exact, from the spectrum (no grid), and consistent
    with :meth:`Spectrum.curve`: ``spec.curve([tau_q]) >= q * spec.total``. The authors' demo's last hidden
    layer keeps ≈ 990 of 1,000 up to τ ≈ 21: :math:`\tau_{0.99} \approx 21`. q = 1 asks for every last
    rounding bit of the mass: expect 0 unless Y lies in the column space to rounding.
    """
    q = float(q)
    if not 0.0 < q <= 1.0:
        raise ValueError(f"q must be in (0, 1], got {q}")
    target = q * spec._total_nonzero()
    reached = np.cumsum(spec.mass)  # the same partial sums Spectrum.curve reads
    j = int(np.searchsorted(reached, target, side="left"))  # first partial sum >= target (masses are >= 0)
    return float(spec.singular_values[j]) if j < reached.size else 0.0


# ----------------------------------------------------------------------------------------------------------------
# Streaming
# ----------------------------------------------------------------------------------------------------------------
class AlignmentAccumulator:
    r"""Streaming alignment: add batches of (features, targets), then read the spectrum or the curve.

    Keeps only :math:`G = \sum_b \tilde\Phi_b^\top \tilde\Phi_b` ((d+1) × (d+1)), :math:`B = \sum_b
    \tilde\Phi_b^\top Y_b` ((d+1) × k) and :math:`\lVert Y\rVert^2` in float64: memory :math:`O(d^2)` whatever
    n is. The result equals :func:`spectrum` on the concatenated batches with ``method="gram"``.

    Centring (``center=True``, the default) needs no second pass: the accumulator also keeps
    :math:`s = \tilde\Phi^\top\mathbf 1`, holds :math:`B`, :math:`\lVert Y\rVert^2` and
    :math:`r = \mathbf 1^\top Y` about a shift c kept at the running mean, and re-expresses them when a batch moves
    it by :math:`\Delta` (:math:`B \mathrel{-}= s\,\Delta^\top`, the squared norm as the spread about the mean
    plus the mean's distance to the new shift: Welford's update, with r carrying the rounding of the mean). At
    the end :math:`B_c = B - s\,(r/n)^\top` and :math:`\lVert Y_c\rVert^2 = \lVert Y - \mathbf 1c^\top\rVert^2 -
    r^2/n`: as accurate as centring the concatenated targets directly, even when the mean dominates them, in any
    batch order. :meth:`merge` combines two such states exactly (Chan et al.'s pairwise update).

    Example::

        acc = AlignmentAccumulator()
        for x, y in loader:
            acc.update(model_features(x), y)
        curve = acc.curve(threshold_grid(acc.n))

    Args:
        bias, normalize, center: as in :func:`spectrum`.
        device: where to accumulate; default: the device of the first batch.
    """

    def __init__(self, *, bias: bool = True, normalize: bool = True, center: bool = True, device: Any = None) -> None:
        self.bias = bias
        self.normalize = normalize
        self.center = bool(center)
        # None: decided by the first batch (a CUDA tensor accumulates on its device, anything else with NumPy)
        self.device: Any = None if device is None or str(device) == "cpu" else device
        self._decided = device is not None
        self.n = 0
        self.batches = 0
        self._d: int | None = None
        self._k: int | None = None
        self._state: _GramState | None = None
        # column sums, sums of squares and "only 0/1 values" of the targets, for the center=False guardrail
        self._moments: tuple[np.ndarray, np.ndarray, bool] | None = None

    @property
    def d(self) -> int | None:
        """Feature columns per example (before the bias column), fixed by the first batch."""
        return self._d

    def update(self, features: ArrayLike, targets: ArrayLike) -> AlignmentAccumulator:
        """Add a batch. Shape: features (b, d), targets (b,) or (b, k); d and k fixed by the first batch."""
        t = _check_features(features)
        if not self._decided:
            self.device = None if isinstance(t, np.ndarray) else t.device
            self._decided = True
        if self.device is None and not isinstance(t, np.ndarray):
            t = _host(t)
        elif self.device is not None:
            import torch

            t = torch.as_tensor(t, device=self.device)
        b, d = t.shape
        y = _check_targets(targets, b, t, whole=False)  # tiny targets: judged on the whole stream, in spectrum()
        if self._state is None:
            self._d, self._k = d, y.shape[1]
            self._state = _GramState(d + int(self.bias), self._k, self.device, center=self.center)
        elif d != self._d:
            raise ValueError(f"batch {self.batches} has {d} feature columns, earlier batches had {self._d}")
        elif y.shape[1] != self._k:
            raise ValueError(f"batch {self.batches} has {y.shape[1]} target columns, earlier batches had {self._k}")
        where = f" (batch {self.batches}, stream rows {self.n}-{self.n + b - 1})"
        # a batch larger than one chunk is validated chunk by chunk: keep a copy to roll back to, so that a bad
        # row late in the batch leaves the accumulator exactly as it was before this update
        snap = self._state.snapshot() if b * (d + int(self.bias)) > _CHUNK_ELEMENTS else None
        try:
            self._state.add(t, y, self.bias, self.normalize, self.n, where)
        except Exception:
            if snap is not None:
                self._state.restore(snap)
            raise
        if not self.center and (self._moments is not None or self.n == 0):  # unknown after from_state_dict
            self._moments = _add_moments(self._moments, _target_moments(y))
        self.n += b
        self.batches += 1
        return self

    def merge(self, other: AlignmentAccumulator) -> AlignmentAccumulator:
        """Add another accumulator's examples to this one (e.g. from another worker or data shard)."""
        if other._state is None:
            return self
        mine, theirs = (self.bias, self.normalize, self.center), (other.bias, other.normalize, other.center)
        if mine != theirs:
            raise ValueError(f"cannot merge accumulators with different (bias, normalize, center): {mine} vs {theirs}")
        if self._state is None:
            self._d, self._k = other._d, other._k
            if not self._decided:
                self.device, self._decided = other.device, True
            assert self._k is not None
            self._state = _GramState(other._state.G.shape[0], self._k, self.device, center=self.center)
        elif (other._d, other._k) != (self._d, self._k):
            raise ValueError(f"shapes differ: d={other._d}, k={other._k} vs d={self._d}, k={self._k}")
        known = (self._moments is not None or self.n == 0) and (other._moments is not None or other.n == 0)
        self._moments = _add_moments(self._moments, other._moments) if known else None
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is refused by name in spectrum()
            self._state.merge(other._state)
        self.n += other.n
        self.batches += other.batches
        return self

    def spectrum(self) -> Spectrum:
        """The :class:`Spectrum` of everything added so far (equal to :func:`spectrum` with ``method="gram"``)."""
        if self._state is None or self.n == 0:
            raise ValueError("no data: call update(features, targets) at least once before spectrum()")
        options = {
            "bias": self.bias,
            "normalize": self.normalize,
            "center": self.center,
            "method": "gram",
            "streamed": True,
        }
        if not self.center and self._moments is not None and bool(np.any(self._moments[0] != 0)):
            _raise_if_too_small(float(np.sum(self._moments[1])))  # (centred: checked by the state's spectrum)
        if not self.center and self.bias and self._moments is not None:
            _warn_if_mean_dominates(*self._moments, self.n)
        return self._state.spectrum(self.n, options)

    def curve(self, thresholds: ArrayLike | None = None, *, relative: bool = False) -> np.ndarray:
        """:math:`A(\\tau)` at each threshold for everything added so far. Shape: (t,) → (t,)."""
        return self.spectrum().curve(thresholds, relative=relative)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume accumulation later: plain numbers and NumPy arrays (``np.savez`` them).

        Keys: ``bias``, ``normalize``, ``center``, ``n``, ``batches``, ``d``, ``k``, ``G`` ((d', d') symmetric),
        ``B`` ((d', k)) and ``yy`` ((k,)); with ``center`` these are Φ̃ᵀ(Y − 1cᵀ) and ‖Y − 1cᵀ‖² about the shift
        c = ``mean`` (the running mean, (k,)), and ``s`` ((d',) Φ̃ᵀ1, column sums of the preprocessed features),
        ``r`` ((k,) 1ᵀ(Y − 1cᵀ)), ``ymin``, ``ymax`` ((k,)) come too. Arrays are None before the first batch.
        """
        state: dict[str, Any] = {
            "bias": self.bias,
            "normalize": self.normalize,
            "center": self.center,
            "n": self.n,
            "batches": self.batches,
            "d": self._d,
            "k": self._k,
        }
        names = ("G", "B", "yy") + (("s", "r", "mean", "ymin", "ymax") if self.center else ())
        parts = self._state.parts() if self._state is not None else {}
        state.update({name: np.array(_host(parts[name])) if parts else None for name in names})
        return state

    @classmethod
    def from_state_dict(cls, state: dict[str, Any], device: Any = None) -> AlignmentAccumulator:
        """Rebuild an accumulator saved with :meth:`state_dict` (on ``device``: default NumPy on the CPU).

        A state dict without a ``center`` key was written before centring existed: it holds uncentred sums and is
        restored as ``center=False`` (what it measured). A centred one must carry ``s``, ``r``, ``mean``, ``ymin``
        and ``ymax`` (else ``ValueError``).
        """
        _check_state_dict(state)
        center = bool(state.get("center", False))
        acc = cls(bias=state["bias"], normalize=state["normalize"], center=center, device=device or "cpu")
        acc.n, acc.batches, acc._d, acc._k = state["n"], state["batches"], state["d"], state["k"]
        if state["G"] is not None:
            names = ("G", "B", "yy") + (("s", "r", "mean", "ymin", "ymax") if center else ())
            missing = [name for name in names if state.get(name) is None]
            if missing:
                raise ValueError(
                    f"state dict of a centred accumulator lacks {', '.join(missing)}; it was not written by "
                    "AlignmentAccumulator.state_dict (centring needs the running sums to be exact)"
                )
            st = _GramState(np.shape(state["G"])[0], state["k"], acc.device, center=center)
            arrays = {name: np.asarray(_host(state[name]), dtype=np.float64) for name in names}
            B = np.column_stack([arrays["B"], arrays["s"]]) if center else arrays["B"]
            arrays["B"] = B.reshape(st.B.shape)
            if st.cpu:
                for name in st._fields:
                    setattr(st, name, np.array(arrays[name], dtype=np.float64, order="F"))
            else:
                import torch

                for name in st._fields:
                    setattr(st, name, torch.as_tensor(arrays[name], dtype=torch.float64, device=acc.device))
            st.count = int(state["n"])
            acc._state = st
        return acc


def _check_state_dict(state: Any) -> None:
    """The keys of :meth:`AlignmentAccumulator.state_dict`, with arrays of the shapes (d + bias, k) imply."""
    keys = ("bias", "normalize", "n", "batches", "d", "k", "G")
    missing = [key for key in keys if not isinstance(state, dict) or key not in state]
    if missing:
        raise ValueError(
            f"not a state dict of an AlignmentAccumulator (no {', '.join(map(repr, missing))}); give what "
            "AlignmentAccumulator.state_dict() returned"
        )
    if state["G"] is None:
        return
    d1, k = int(state["d"]) + int(bool(state["bias"])), int(state["k"])
    shapes = {"G": (d1, d1), "B": (d1, k), "yy": (k,), "s": (d1,), "r": (k,), "mean": (k,), "ymin": (k,), "ymax": (k,)}
    wrong = [
        f"{name} {tuple(np.shape(state[name]))} (expected {shape})"
        for name, shape in shapes.items()
        if state.get(name) is not None and tuple(np.shape(state[name])) != shape
    ]
    if wrong:
        raise ValueError(f"state dict of an AlignmentAccumulator with d={d1 - int(bool(state['bias']))}, k={k} has "
                         f"arrays of other shapes: {', '.join(wrong)}")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# Peaks transfer (claim 7): one source representation, all 120 target tasks at once
# ---------------------------------------------------------------------------------------------------------------
def _column_totals(spec: Spectrum, targets: np.ndarray) -> np.ndarray:
    y = np.asarray(targets, dtype=np.float64).reshape(spec.n, -1)
    if spec.centered:
        y = y - y.mean(axis=0)
    totals = np.sum(y * y, axis=0)
    if np.any(totals <= 0):
        raise ValueError("a target column is constant (zero after centring): its relative alignment is undefined")
    return totals


def column_aucs(spec: Spectrum, targets: np.ndarray, top: float | None = None) -> np.ndarray:
    r"""The AUC of each target column's relative alignment curve, from one spectrum of a target matrix.

    .. math::  \mathrm{AUC}_c = \frac{\sum_i (u_i^\top y_c)^2 \min(\sigma_i, T)}{T\,\lVert y_c\rVert^2}

    (T = √n by default), what :meth:`Spectrum.auc` gives for ``spectrum(features, targets[:, c])``, for all
    columns from one decomposition (``Spectrum.mass_columns``). ``targets`` are those the spectrum was measured
    with (centred here when the spectrum was).

    Shape: spec of (n, d) features and (n, k) targets; targets (n, k) → (k,).
    """
    T = _check_top(top, float(np.sqrt(spec.n)))
    weights = np.minimum(np.asarray(spec.singular_values, dtype=np.float64), T)
    return (weights @ np.asarray(spec.mass_columns, dtype=np.float64)) / (T * _column_totals(spec, targets))


def column_curves(spec: Spectrum, targets: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Each target column's relative alignment curve A_c(τ)/‖y_c‖² at ``thresholds``, from one spectrum.

    Shape: targets (n, k), thresholds (t,) → (k, t).
    """
    taus = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    sig = np.asarray(spec.singular_values, dtype=np.float64)
    above = (sig[None, :] >= taus[:, None]).astype(np.float64)  # (t, r)
    curves = (above @ np.asarray(spec.mass_columns, dtype=np.float64)).T  # (k, t)
    curves = np.where(taus[None, :] <= 0, _column_totals(spec, targets)[:, None], curves)
    return curves / _column_totals(spec, targets)[:, None]
