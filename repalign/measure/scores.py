r"""Transferability scores: how well will a linear model (or fine-tuning) on these features do on a target task?

Each score is a pure function of a representation ``features`` (n, d) of the target task's training examples and
their class ``labels`` (n,); LEEP and NCE read the source model's outputs on those examples instead. Larger is
better for every score. The standard protocol (You et al. 2021) ranks a zoo of representations by a score and
compares that ranking with the one their fine-tuned or probed accuracy gives (weighted Kendall τ).

- :func:`alignment_score` / :func:`alignment_summaries`: the share of the centred targets on large singular
  directions (Imani, Hu & White, TMLR 2022);
- :func:`logme`: the log marginal evidence of Bayesian linear regression (You et al., ICML 2021), the paper's
  formula; :func:`logme_published_code`: the number thuml's published code returns (thuml/LogME issue #23 when
  d > n), for comparison with published results;
- :func:`ridge_gcv`, :func:`loo_ridge_error`, :func:`loo_ridge_accuracy` (:func:`ridge_scores`): ridge model
  selection from the spectrum (generalised cross-validation) or from σ and U's leverages (exact leave-one-out), on
  the measure's preprocessing or on standardised features;
- :func:`h_score`: :math:`\mathrm{tr}(\mathrm{cov}(f)^{+}\mathrm{cov}(E[f|y]))` (Bao et al., ICIP 2019);
- :func:`regularized_h_score`: the same with a Ledoit–Wolf shrunk covariance (Ibrahim et al., ICLR 2023);
- :func:`nce`: minus the conditional entropy of the target label given the source label (Tran et al., ICCV 2019);
- :func:`leep`: the log expected empirical prediction of the source classifier (Nguyen et al., ICML 2020);
- :func:`transrate`: the coding rate of the features minus that within classes (Huang et al., ICML 2022).

- :func:`sfda`: the posterior of the true class after a self-challenging mix in a regularised Fisher space (Shao
  et al., ECCV 2022).

**One Gram accumulation for the whole card.** Alignment and LogME read the same quantities: the singular values
:math:`\sigma_i` of the features and the projections :math:`(u_i^\top y_c)^2` of each class's target column, which
:class:`repalign.measure.alignment.Spectrum` holds (``singular_values``, ``mass_columns``). :func:`score_card` computes one
spectrum (one float64 Gram matrix :math:`\tilde\Phi^\top\tilde\Phi`, streamed in chunks, on the CPU or a CUDA device,
then one eigendecomposition) of the preprocessed features (bias column, unit-norm rows: the measure's defaults) with
centred one-hot targets, and reads every alignment summary and LogME from it (:func:`card_from_spectrum`; with
:class:`repalign.measure.alignment.AlignmentAccumulator` the same works batch by batch). LogME on these preprocessed features
and centred targets (``logme_preprocessed``) differs from LogME on the raw features (:func:`logme`): notebook 11
sets both, and the GCV-optimal ridge the card also reads from the spectrum, against the probe's ranking; the card
keeps the preprocessed form so that it costs one Gram accumulation.

Bad input raises ``ValueError``: features that are not 2-D, lengths that differ, fewer than two classes, NaN/inf,
probabilities that are not probabilities.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from repalign.measure.alignment import Spectrum, _raise_if_out_of_scale, preprocess, spectrum

__all__ = [
    "SUMMARIES",
    "alignment_summaries",
    "alignment_score",
    "LOGME_CODE",
    "LOGME_BUG",
    "logme_evidence",
    "logme_from_spectrum",
    "logme",
    "logme_published_code",
    "published_code_terms",
    "RIDGE_GRID",
    "ridge_penalties",
    "ridge_gcv",
    "standardise_columns",
    "ridge_basis",
    "loo_ridge_error",
    "loo_ridge_accuracy",
    "ridge_scores",
    "h_score",
    "regularized_h_score",
    "nce",
    "leep",
    "transrate",
    "sfda",
    "card_from_spectrum",
    "score_card",
    "feature_scores",
    "ranking_agreement",
    "softmax_rows",
]

#: The summaries of the alignment curve :func:`alignment_summaries` computes (see there for their formulas).
SUMMARIES: tuple[str, ...] = ("auc", "auc_sigma1", "mean_sigma2", "tau_0.5", "tau_0.9")


# ----------------------------------------------------------------------------------------------------------------
# Input validation
# ----------------------------------------------------------------------------------------------------------------
def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, "detach") and hasattr(x, "cpu"):
        x = x.detach().cpu()
        if x.dtype.is_floating_point and x.element_size() < 4:
            x = x.float()
        return x.numpy()
    return np.asarray(x)


def _features(features: Any, name: str = "features") -> np.ndarray:
    """``features`` as a finite float64 (n, d) array, or a ValueError naming the problem and the fix."""
    arr = _to_numpy(features)
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}; convert with np.asarray(x, dtype=float)")
    if arr.ndim != 2:
        hint = "reshape(-1, 1) for one feature per example" if arr.ndim == 1 else "flatten each example first"
        raise ValueError(f"{name} must be 2-D (n examples, d features), got shape {arr.shape}; {hint}")
    if arr.shape[0] < 2 or arr.shape[1] < 1:
        raise ValueError(f"{name} need at least 2 rows and 1 column, got shape {arr.shape}")
    arr = arr.astype(np.float64, copy=False)
    if not np.all(np.isfinite(arr)):
        rows = np.flatnonzero(~np.isfinite(arr).all(axis=1))
        raise ValueError(
            f"{name} contain NaN or inf in {rows.size} row(s), first row {int(rows[0])}; remove or impute them first"
        )
    after = "or rescale them, e.g. standardise each column: LogME and TransRate depend on the scale"
    _raise_if_out_of_scale(arr, name, after, tiny=False)  # products that overflow give NaN or LinAlgError
    return arr


def _labels(labels: Any, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Class labels as integer codes 0..C-1 and the counts per class; at least two classes, one per example."""
    arr = _to_numpy(labels)
    if arr.ndim == 2 and arr.shape[1] == 1:
        arr = arr[:, 0]
    if arr.ndim != 1:
        raise ValueError(f"labels must be 1-D (one class label per example), got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"features have {n} rows but labels have {arr.shape[0]}: they must describe the same examples")
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        raise ValueError("labels contain NaN or inf")
    classes, codes, counts = np.unique(arr, return_inverse=True, return_counts=True)
    if classes.size < 2:
        raise ValueError(f"labels hold a single class ({classes[0]!r}): a transferability score needs at least two")
    return codes.reshape(-1), counts


def _one_hot(codes: np.ndarray, num: int) -> np.ndarray:
    out = np.zeros((codes.size, num))
    out[np.arange(codes.size), codes] = 1.0
    return out


def _eigh_psd(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors of a symmetric PSD matrix, numerically zero ones dropped."""
    lam, vec = np.linalg.eigh(matrix)
    lam, vec = lam[::-1], vec[:, ::-1]
    cutoff = max(float(lam[0]), 0.0) * matrix.shape[0] * np.finfo(np.float64).eps * 10
    keep = lam > cutoff
    return lam[keep], vec[:, keep]


# ----------------------------------------------------------------------------------------------------------------
# Alignment
# ----------------------------------------------------------------------------------------------------------------
def alignment_summaries(spec: Spectrum) -> dict[str, float]:
    r"""Summaries of one alignment curve :math:`A(\tau)/\lVert Y\rVert_F^2` (each larger = more aligned).

    With masses :math:`m_i = \lVert u_i^\top Y\rVert^2`, :math:`M = \lVert Y\rVert_F^2` and singular values
    :math:`\sigma_1 \ge \sigma_2 \ge \dots`:

    .. math::

        \text{auc} &= \frac{1}{\sqrt n}\int_0^{\sqrt n}\frac{A(\tau)}{M}d\tau = \frac{\sum_i m_i\sigma_i}{\sqrt n\,M}
            \quad(\text{the mass-weighted mean } \sigma\text{, over } \sqrt n\text{, as rows have unit norm})\\
        \text{auc\_sigma1} &= \frac{1}{\sigma_1}\int_0^{\sigma_1}\frac{A(\tau)}{M}d\tau
            = \frac{\sum_i m_i\sigma_i}{\sigma_1 M}\\
        \text{mean\_sigma2} &= \frac{\sum_i m_i\sigma_i^2}{M} = \frac{\lVert\tilde\Phi^\top Y\rVert_F^2}{M}\\
        \tau_q &= \max\{\tau : A(\tau) \ge qM\},\quad q \in \{0.5, 0.9\}

    Shape: returns a dict keyed by :data:`SUMMARIES`.
    """
    sig, mass, total = spec.singular_values, spec.mass, spec._total_nonzero()
    top = float(sig[0]) if sig.size else 0.0
    return {
        "auc": spec.auc(),
        "auc_sigma1": spec.auc(top=top) if top > 0 else 0.0,
        "mean_sigma2": float(np.sum(mass * sig**2) / total),
        "tau_0.5": spec.tau_q(0.5),
        "tau_0.9": spec.tau_q(0.9),
    }


def alignment_score(features: Any, labels: Any, summary: str = "auc") -> float:
    r"""Alignment of the features with the centred one-hot targets of ``labels``, as one summary of the curve.

    The spectrum is :func:`repalign.measure.alignment.spectrum` with its defaults (bias column, unit-norm rows, centred
    targets :math:`Y - \mathbf 1\bar y^\top`); ``summary`` is one of :data:`SUMMARIES` (:func:`alignment_summaries`).
    Relative summaries do not change when the targets are scaled, so one-hot and one-vs-rest ±1 targets agree.

    Shape: features (n, d), labels (n,). Returns a float.
    """
    if summary not in SUMMARIES:
        raise ValueError(f"unknown summary {summary!r}; choose one of {list(SUMMARIES)}")
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    return alignment_summaries(spectrum(x, _one_hot(codes, counts.size)))[summary]


# ----------------------------------------------------------------------------------------------------------------
# LogME: the paper's evidence (the default) and the published code's numbers
# ----------------------------------------------------------------------------------------------------------------
#: where :func:`logme_published_code` comes from: thuml/LogME, ``LogME.py``, ``LogME._fit_fixed_point`` (unchanged
#: since commit 3a08950; the repository's head 56551ca), and the bug report about its log-determinant
LOGME_CODE = "thuml/LogME LogME.py LogME._fit_fixed_point @ 56551ca94a3295bcc37e6a01b1291911af985f07"
LOGME_BUG = "https://github.com/thuml/LogME/issues/23"


def _logme_moments(s: np.ndarray, x2: np.ndarray, res0: float, t: float) -> tuple[float, float, float]:
    r""":math:`\gamma`, :math:`\lVert m\rVert^2` and :math:`\lVert y - Fm\rVert^2` at :math:`t = \alpha/\beta`."""
    shrink = t / (s + t)
    return float(np.sum(s / (s + t))), float(np.sum(s * x2 / (s + t) ** 2)), float(np.sum(x2 * shrink**2)) + res0


def _logme_fixed_point(
    s: np.ndarray, x2: np.ndarray, res0: float, n: int, eps: float, tol: float, max_iter: int
) -> tuple[float, float, float]:
    """MacKay's updates from α = β = 1 (see :func:`logme_evidence`). Returns the last finite (α, β) and the t at
    which the moments of the last update were evaluated (the published code's evidence reads those moments)."""
    alpha, beta, t_read = 1.0, 1.0, 1.0
    for _ in range(int(max_iter)):
        t = alpha / beta
        gamma, m2, res2 = _logme_moments(s, x2, res0, t)
        if m2 + eps <= 0 or res2 + eps <= 0:
            break  # eps = 0 and an exact zero: the update is undefined; keep the last finite pair
        new = gamma / (m2 + eps), (n - gamma) / (res2 + eps)
        if not (np.isfinite(new[0]) and np.isfinite(new[1]) and new[0] > 0 and new[1] > 0):
            break  # eps = 0 and no signal: alpha runs to infinity; keep the last finite pair
        (alpha, beta), t_read = new, t
        if abs(alpha / beta - t) <= tol * t:
            break
    return alpha, beta, t_read


def logme_evidence(
    sigma2: np.ndarray,
    proj2: np.ndarray,
    total: float,
    n: int,
    d: int,
    *,
    eps: float = 1e-5,
    tol: float = 1e-3,
    max_iter: int = 11,
    code_terms: int | None = None,
) -> tuple[float, float, float]:
    r"""Maximum log evidence per example of Bayesian linear regression of one target column (You et al. 2021).

    The model :math:`y = Fw + \varepsilon`, :math:`w \sim N(0, \alpha^{-1}I_d)`, :math:`\varepsilon \sim
    N(0, \beta^{-1}I_n)`. With :math:`F = U\Sigma V^\top`, :math:`s_i = \sigma_i^2` and :math:`x_i = u_i^\top y`,
    :math:`t = \alpha/\beta`, the fixed point (MacKay's updates, LogME's Algorithm 2) iterates

    .. math::

        \gamma = \sum_i \frac{s_i}{s_i + t},\quad
        \lVert m\rVert^2 = \sum_i \frac{s_i x_i^2}{(s_i+t)^2},\quad
        \lVert y - Fm\rVert^2 = \sum_i \frac{t^2 x_i^2}{(s_i+t)^2} + \Big(\lVert y\rVert^2 - \sum_i x_i^2\Big),\quad
        \alpha \leftarrow \frac{\gamma}{\lVert m\rVert^2 + \epsilon},\
        \beta \leftarrow \frac{n-\gamma}{\lVert y-Fm\rVert^2 + \epsilon}

    from :math:`\alpha = \beta = 1` until t changes by at most ``tol`` (relative) or after ``max_iter`` updates,
    and returns the evidence at the last (α, β) (the paper's formula, the default)

    .. math::

        \frac1n\Big[\frac d2\log\alpha + \frac n2\log\beta - \frac12\log|A|
        - \frac\beta2\lVert y-Fm\rVert^2 - \frac\alpha2\lVert m\rVert^2 - \frac n2\log 2\pi\Big],\qquad
        \log|A| = \sum_{i=1}^{d}\log(\alpha+\beta s_i)

    with :math:`s_i = 0` for the :math:`d - r` directions beyond the rank r: :math:`A = \alpha I_d + \beta F^\top F`
    is d × d. The defaults (ε = 1e-5, tol = 1e-3, 11 updates) are those of the published code (:data:`LOGME_CODE`):
    ε keeps α finite when the features carry no signal (the exact maximiser is then α → ∞, w = 0). With ``eps=0``
    and a tight ``tol`` the result is the exact stationary point where one exists.

    ``code_terms=k`` gives the published code's number instead (:func:`logme_published_code`): its
    :math:`\log|A|` sums k terms, :math:`\sum_{i \le \min(k, r)}\log(\alpha + \beta s_i) + \max(k - r, 0)\log\alpha`
    (k = min(n, d) when n ≤ d: the bug of :data:`LOGME_BUG`, which drops :math:`(d - k)\log\alpha`), and its last
    evidence reads :math:`\lVert m\rVert^2` and :math:`\lVert y - Fm\rVert^2` at the t before the last update.
    The two differ by :math:`\frac{d - k}{2n}\log\alpha` plus a second-order term in the last move of t; α is fitted
    per representation and class, so the difference is not a constant shift for a fixed n and d.

    Shape: sigma2 (r,) the non-zero :math:`\sigma_i^2`; proj2 (r,) the :math:`x_i^2`; total :math:`\lVert
    y\rVert^2`; n examples, d feature columns. Returns ``(evidence per example, alpha, beta)``.
    """
    s = np.asarray(sigma2, dtype=np.float64)
    x2 = np.asarray(proj2, dtype=np.float64)
    res0 = max(float(total) - float(x2.sum()), 0.0)
    alpha, beta, t_read = _logme_fixed_point(s, x2, res0, n, eps, tol, max_iter)
    if code_terms is None:
        _, m2, res2 = _logme_moments(s, x2, res0, alpha / beta)
        log_det = float(np.sum(np.log(alpha + beta * s))) + (d - s.size) * math.log(alpha)
    else:
        _, m2, res2 = _logme_moments(s, x2, res0, t_read)
        kept = min(int(code_terms), s.size)
        log_det = float(np.sum(np.log(alpha + beta * s[:kept]))) + max(int(code_terms) - s.size, 0) * math.log(alpha)
    evidence = (
        d / 2 * math.log(alpha)
        + n / 2 * math.log(beta)
        - 0.5 * log_det
        - beta / 2 * res2
        - alpha / 2 * m2
        - n / 2 * math.log(2 * math.pi)
    )
    return evidence / n, alpha, beta


def logme_from_spectrum(
    spec: Spectrum, column_totals: Sequence[float] | np.ndarray, *, code_terms: int | None = None, **fixed_point: Any
) -> float:
    r"""LogME from a spectrum: the mean over target columns c of :func:`logme_evidence` with
    :math:`s_i = \sigma_i^2`, :math:`x_i^2` = ``spec.mass_columns[:, c]`` and :math:`\lVert y_c\rVert^2` =
    ``column_totals[c]``, n = ``spec.n``, d = ``spec.d`` (feature columns, with the bias column when there is one).
    ``fixed_point``: ``eps``, ``tol``, ``max_iter`` of :func:`logme_evidence` (default: the published code's);
    ``code_terms``: None for the paper's evidence, k for the published code's (:func:`logme_evidence`).

    Shape: spec with k target columns; column_totals (k,). Returns a float (nats per example).
    """
    totals = np.asarray(column_totals, dtype=np.float64).reshape(-1)
    if totals.size != spec.mass_columns.shape[1]:
        raise ValueError(f"{totals.size} column totals for a spectrum of {spec.mass_columns.shape[1]} target columns")
    sigma2 = spec.singular_values**2
    values = [
        logme_evidence(
            sigma2, spec.mass_columns[:, c], totals[c], spec.n, spec.d, code_terms=code_terms, **fixed_point
        )[0]
        for c in range(totals.size)
    ]
    return float(np.mean(values))


def _raw_spectrum(x: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> Spectrum:
    """The spectrum LogME reads: raw features (no bias column, no normalisation), uncentred 0/1 indicators."""
    with warnings.catch_warnings():  # 0/1 targets uncentred on purpose: LogME's model has no bias
        warnings.filterwarnings("ignore", message="center=False")
        return spectrum(x, _one_hot(codes, counts.size), bias=False, normalize=False, center=False)


def published_code_terms(features: Any) -> int:
    r"""How many terms the published code's :math:`\log|A|` sums (:data:`LOGME_CODE`): its number of singular values.

    n ≤ d: ``np.linalg.svd(F, full_matrices=False)``, all :math:`\min(n, d) = n` of them (the bug of
    :data:`LOGME_BUG`: A is d × d). n > d: its ``truncated_svd``, the square roots of the singular values of
    :math:`F^\top F` (``np.linalg.svd``, with vectors) above 1e-10, computed here the same way: d for features of
    full rank; for exactly rank-deficient ones (e.g. all-zero columns) how many of the zero directions come out of
    that SVD as rounding noise above 1e-10 depends on LAPACK, as it does for the published code.

    Shape: features (n, d). Returns an int.
    """
    x = _features(features)
    n, d = x.shape
    if n <= d:
        return n
    s = np.sqrt(np.linalg.svd(x.T @ x)[1])  # with the vectors, as the code: LAPACK's values-only path rounds otherwise
    return int(np.sum(s > 1e-10))


def logme(features: Any, labels: Any, **fixed_point: Any) -> float:
    r"""LogME (You, Liu, Wang, Long, ICML 2021), the paper's formula: the mean over classes of the maximum log
    evidence per example of Bayesian linear regression from the raw features to the class's 0/1 indicator
    (:func:`logme_evidence`, :math:`\log|A|` over all d eigenvalues of the d × d matrix A).

    As the published code (:data:`LOGME_CODE`): raw features (no bias column, no normalisation), uncentred one-hot
    targets, its fixed point; computed from one float64 spectrum of the features
    (:func:`repalign.measure.alignment.spectrum` with ``bias=False, normalize=False, center=False``: a Gram matrix
    and its eigendecomposition when d ≤ n, the n × n kernel otherwise). When n > d and the features have full
    column rank it agrees with the published code to about 1e-9 nats per example (measured up to 3e-5 when d is
    close to n, where 11 updates leave t moving and the code reads its last moments one update early); when d > n
    the published code drops :math:`(d - n)\log\alpha_c` from :math:`\log|A|` (:data:`LOGME_BUG`), and for
    rank-deficient features :math:`(d - k)\log\alpha_c` (:func:`published_code_terms`):
    :func:`logme_published_code` gives its numbers, for comparison with published results. ``fixed_point``:
    ``eps``, ``tol``, ``max_iter`` of :func:`logme_evidence`.

    Shape: features (n, d), labels (n,). Returns a float (nats per example; larger transfers better).
    """
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    return logme_from_spectrum(_raw_spectrum(x, codes, counts), counts.astype(np.float64), **fixed_point)


def logme_published_code(features: Any, labels: Any) -> float:
    r"""The number thuml's published LogME code returns (:data:`LOGME_CODE`, ``LogME().fit(features, labels)``),
    for comparison with published LogME results; :func:`logme` is the paper's formula, the corrected evidence.

    The same fixed point and evidence as :func:`logme`, except as that code computes them: :math:`\log|A|` over its
    k singular values only (:func:`published_code_terms`; k = n when n ≤ d, so :math:`(d - n)\log\alpha_c` is
    dropped for each class c: the bug of :data:`LOGME_BUG`, acknowledged by its authors and open), and the last
    evidence reading :math:`\lVert m\rVert^2` and :math:`\lVert y - Fm\rVert^2` at the t before the last update.
    Hence, per example,

    .. math::  \mathrm{published} - \mathrm{paper} \approx \frac{d - k}{2n}\,\frac1C\sum_c\log\alpha_c ,

    which moves with the α each representation and class fits: it is not a constant for a fixed n and d, and it
    can reorder representations wider than the data.

    Shape: features (n, d), labels (n,). Returns a float (nats per example).
    """
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    spec = _raw_spectrum(x, codes, counts)
    return logme_from_spectrum(spec, counts.astype(np.float64), code_terms=published_code_terms(x))


# ----------------------------------------------------------------------------------------------------------------
# H-score and its regularised form
# ----------------------------------------------------------------------------------------------------------------
def _between_trace(x: np.ndarray, codes: np.ndarray, counts: np.ndarray, ridge: float, scale: float) -> float:
    r""":math:`\sum_c \frac{n_c}{n}\mu_c^\top(aI + bX^\top X)^{+}\mu_c` for centred x (n, d), class means
    :math:`\mu_c = X^\top e_c / n_c`, a = ``ridge``, b = ``scale``; through the d × d Gram when d ≤ n, else through
    the n × n kernel :math:`K = XX^\top = U\Lambda U^\top` (Woodbury): with :math:`p = U^\top e_c`,

    .. math::  \mu_c^\top(aI + bX^\top X)^{-1}\mu_c = \frac{1}{n_c^2}\sum_i \frac{p_i^2\lambda_i}{a + b\lambda_i}.

    With a = 0 the pseudo-inverse keeps the numerically non-zero eigenvalues only.
    """
    n, d = x.shape
    weights = counts / n
    if d <= n:
        sums = np.zeros((counts.size, d))
        np.add.at(sums, codes, x)
        means = sums / counts[:, None]
        lam, vec = _eigh_psd(x.T @ x) if ridge == 0 else np.linalg.eigh(x.T @ x)
        proj2 = (means @ vec) ** 2  # (C, r)
        return float(np.sum(weights[:, None] * proj2 / (ridge + scale * np.maximum(lam, 0.0))[None, :]))
    lam, vec = _eigh_psd(x @ x.T) if ridge == 0 else np.linalg.eigh(x @ x.T)
    lam = np.maximum(lam, 0.0)
    proj2 = (vec.T @ _one_hot(codes, counts.size)) ** 2  # (r, C)
    per_class = np.sum(proj2 * (lam / (ridge + scale * lam))[:, None], axis=0) / counts**2
    return float(np.sum(weights * per_class))


def h_score(features: Any, labels: Any) -> float:
    r"""H-score (Bao et al., ICIP 2019): how much of the features' variance lies between classes.

    .. math::

        H(f) = \mathrm{tr}\big(\mathrm{cov}(f)^{+}\,\mathrm{cov}(E[f\mid y])\big),\qquad
        \mathrm{cov}(E[f\mid y]) = \sum_c \frac{n_c}{n}(\mu_c - \mu)(\mu_c - \mu)^\top

    (population covariances; the pseudo-inverse keeps the numerically non-zero eigenvalues of cov(f); computed in
    the n × n kernel when d > n). Equivalently :math:`\sum_c e_c^\top P e_c / n_c` with P the projection on the
    centred features' column space: it lies in [0, C − 1] and reaches C − 1 whenever the class indicators lie in
    that space, e.g. whenever d ≥ n − 1, so it cannot rank representations wider than the data
    (:func:`regularized_h_score` can).

    Shape: features (n, d), labels (n,). Returns a float.
    """
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    x = x - x.mean(axis=0)
    return _between_trace(x, codes, counts, 0.0, 1.0 / x.shape[0])


def _ledoit_wolf(x: np.ndarray) -> tuple[float, float]:
    r"""Ledoit & Wolf's (2004) shrinkage α of centred x and the target scale :math:`\mu = \mathrm{tr}(S)/d`:

    .. math::

        S = X^\top X / n,\quad \delta = \lVert S - \mu I\rVert_F^2 / d,\quad
        \beta = \min\Big(\delta, \frac{1}{dn}\Big(\frac1n\sum_i \lVert x_i\rVert^4 - \lVert S\rVert_F^2\Big)\Big),
        \quad \alpha = \beta / \delta

    (scikit-learn's ``ledoit_wolf_shrinkage``), with :math:`\lVert S\rVert_F = \lVert XX^\top\rVert_F / n` read from
    the smaller of the Gram and the kernel.
    """
    n, d = x.shape
    sq = np.einsum("ij,ij->i", x, x)
    trace = float(sq.sum()) / n
    mu = trace / d
    if d == 1:  # one feature: S is its own target mu*I, so delta is 0 up to rounding (scikit-learn returns 0 too)
        return 0.0, mu
    small = x.T @ x if d <= n else x @ x.T
    frob2 = float(np.sum(small**2)) / n**2
    delta = (frob2 - 2 * mu * trace + d * mu**2) / d
    beta = min((float(np.sum(sq**2)) / n - frob2) / (d * n), delta)
    return (0.0 if beta <= 0 or delta <= 0 else beta / delta), mu


def regularized_h_score(features: Any, labels: Any) -> float:
    r"""Shrinkage H-score (Ibrahim, Ponomareva, Mazumder, ICLR 2023): the H-score with the Ledoit–Wolf covariance.

    .. math::

        H_\alpha(f) = \mathrm{tr}\big(\Sigma_\alpha^{-1}\,(1-\alpha)\,\mathrm{cov}(E[f\mid y])\big),\qquad
        \Sigma_\alpha = (1-\alpha)\,\mathrm{cov}(f) + \alpha\,\frac{\mathrm{tr}\,\mathrm{cov}(f)}{d} I

    with the shrinkage α of Ledoit & Wolf (2004) on the centred features (equal to ``sklearn.covariance.LedoitWolf``;
    computed in the n × n kernel when d > n) and population covariances throughout (the reference code's
    between-class covariance carries a factor n/(n−1), the same for every representation of one task).

    Shape: features (n, d), labels (n,). Returns a float.
    """
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    x = x - x.mean(axis=0)
    alpha, mu = _ledoit_wolf(x)
    return (1.0 - alpha) * _between_trace(x, codes, counts, alpha * mu, (1.0 - alpha) / x.shape[0])


# ----------------------------------------------------------------------------------------------------------------
# Scores of a source classifier: NCE and LEEP
# ----------------------------------------------------------------------------------------------------------------
def _source_probabilities(source: Any, n: int, name: str) -> np.ndarray:
    p = _features(source, name)
    if p.shape[0] != n:
        raise ValueError(f"{name} has {p.shape[0]} rows but labels have {n}: they must describe the same examples")
    if np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(f"{name} must hold probabilities (non-negative rows summing to 1); apply softmax to logits")
    return p


def nce(source_labels: Any, labels: Any) -> float:
    r"""NCE (Tran, Nguyen, Hassner, ICCV 2019): minus the conditional entropy of the target label given the source.

    .. math::  \mathrm{NCE}(Y\mid Z) = -H(Y\mid Z) = \sum_{z,y}\hat P(z,y)\log\frac{\hat P(z,y)}{\hat P(z)}

    with :math:`\hat P` the empirical joint distribution of the source model's label :math:`z_i` (its prediction
    on target example i) and the target label :math:`y_i`. In [−log C, 0]; 0 when the source label determines
    the target label.

    Shape: source_labels (n,) the source model's predicted classes, or (n, Z) its probabilities (argmax taken);
    labels (n,). Returns a float (nats).
    """
    src = _to_numpy(source_labels)
    if src.ndim == 2 and src.shape[1] > 1:
        src = _source_probabilities(src, src.shape[0], "source_labels").argmax(axis=1)
    src = src.reshape(-1) if src.ndim == 2 else src
    if src.ndim != 1:
        raise ValueError(f"source_labels must be (n,) labels or (n, Z) probabilities, got shape {src.shape}")
    if src.dtype.kind == "f" and not np.all(np.isfinite(src)):
        raise ValueError("source_labels contain NaN or inf")
    y_codes, _ = _labels(labels, src.shape[0])
    _, z_codes, z_counts = np.unique(src, return_inverse=True, return_counts=True)
    joint = np.zeros((z_counts.size, int(y_codes.max()) + 1))
    np.add.at(joint, (z_codes.reshape(-1), y_codes), 1.0)
    joint /= y_codes.size
    pz = joint.sum(axis=1, keepdims=True)
    nz = joint > 0
    return float(np.sum(joint[nz] * np.log((joint / pz)[nz])))


def leep(source_probs: Any, labels: Any) -> float:
    r"""LEEP (Nguyen, Hassner, Seeger, Archambeau, ICML 2020): the log-likelihood of the target labels under the
    source classifier followed by the empirical conditional :math:`\hat P(y\mid z)`.

    .. math::

        \hat P(y, z) = \frac1n\sum_{i:\,y_i = y}\theta(x_i)_z,\qquad
        \hat P(y\mid z) = \frac{\hat P(y,z)}{\sum_{y'}\hat P(y',z)},\qquad
        \mathrm{LEEP} = \frac1n\sum_i\log\sum_z \hat P(y_i\mid z)\,\theta(x_i)_z

    with :math:`\theta(x_i)` the source model's class probabilities on target example i. At most 0; 0 for a
    one-hot source whose classes each map to one target class.

    Shape: source_probs (n, Z) rows of probabilities (softmax of the source logits); labels (n,). Returns a float.
    """
    theta = _to_numpy(source_probs)
    n = theta.shape[0] if theta.ndim >= 1 else 0
    codes, counts = _labels(labels, n)
    theta = _source_probabilities(theta, n, "source_probs")
    joint = np.zeros((counts.size, theta.shape[1]))
    np.add.at(joint, codes, theta)
    joint /= n
    cond = joint / np.maximum(joint.sum(axis=0, keepdims=True), np.finfo(np.float64).tiny)  # P(y|z), (C, Z)
    eep = np.einsum("iz,iz->i", theta, cond[codes])
    return float(np.mean(np.log(np.maximum(eep, np.finfo(np.float64).tiny))))


# ----------------------------------------------------------------------------------------------------------------
# TransRate
# ----------------------------------------------------------------------------------------------------------------
def _coding_rate(z: np.ndarray, eps: float) -> float:
    r""":math:`R(Z) = \frac12\log\det(I_d + \frac{1}{n\varepsilon}Z^\top Z) = \frac12\sum_i \log(1 +
    \lambda_i / (n\varepsilon))`, λ the eigenvalues of the smaller of the d × d Gram and the n × n kernel
    (Sylvester's determinant identity), clipped at 0. From the eigenvalues, not an LU log-determinant: with large
    features (λ/(nε) ~ 1e13) the identity is lost in the LU's rounding and ``slogdet`` returned −inf or a wrong sign
    (a random-init ResNet-152 in make rehearsal)."""
    n, d = z.shape
    gram = z.T @ z if d <= n else z @ z.T
    lam = np.clip(np.linalg.eigvalsh(gram), 0.0, None)
    return 0.5 * float(np.sum(np.log1p(lam / (n * eps))))


def transrate(features: Any, labels: Any, *, eps: float = 1e-4) -> float:
    r"""TransRate (Huang, Huang, Ye, Xia, Zhang, ICML 2022): the coding rate of the centred features minus the mean
    coding rate within the classes.

    .. math::

        \mathrm{TrR} = R(Z) - \frac1C\sum_c R(Z_c),\qquad
        R(Z) = \frac12\log\det\Big(I_d + \frac{1}{n\varepsilon}Z^\top Z\Big)

    with Z the features centred over all examples and :math:`Z_c` the rows of class c (n_c of them), as in the
    algorithm the paper lists (ε = 1e-4). Scale-dependent by design: features are used as given.

    Shape: features (n, d), labels (n,). Returns a float (nats).
    """
    if not eps > 0:
        raise ValueError(f"eps must be positive, got {eps}")
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    z = x - x.mean(axis=0)
    within = [_coding_rate(z[codes == c], eps) for c in range(counts.size)]
    return _coding_rate(z, eps) - float(np.mean(within))


# ----------------------------------------------------------------------------------------------------------------
# SFDA
# ----------------------------------------------------------------------------------------------------------------
def softmax_rows(z: np.ndarray) -> np.ndarray:
    r"""Row-wise softmax, shifted by each row's maximum for stability: :math:`p_{ic} = e^{z_{ic}} / \sum_k e^{z_{ik}}`.

    Shape: z (n, C) logits → (n, C) probabilities (what :func:`leep` takes from a source classifier's logits).
    """
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def _fisher_posterior(
    x: np.ndarray, codes: np.ndarray, counts: np.ndarray, shrinkage: float | None
) -> tuple[np.ndarray, float]:
    r"""Class posteriors of the shrinkage Fisher (LDA) classifier and the shrinkage used.

    :math:`S_W = \frac1n\sum_i (x_i - \mu_{y_i})(x_i - \mu_{y_i})^\top`, :math:`\lambda = \max(e^{-5\lambda_{\max}
    (S_W)}, 10^{-10})` unless given, :math:`\tilde S_W = (1-\lambda)S_W + \lambda\frac{\mathrm{tr}S_W}{d}I`,
    scores :math:`x^\top\tilde S_W^{-1}\mu_c - \frac12\mu_c^\top\tilde S_W^{-1}\mu_c + \log\pi_c` (the Fisher
    projection with every discriminant direction kept, :math:`VV^\top = \tilde S_W^{-1}`), softmax over classes.
    Through the n × n kernel (Woodbury) when d > n. When :math:`S_W = 0` (every example equals its class mean, e.g.
    constant features) :math:`\tilde S_W = I`: constant features then get the prior :math:`\pi_c` as posterior.
    """
    n, d = x.shape
    means = np.zeros((counts.size, d))
    np.add.at(means, codes, x)
    means /= counts[:, None]
    xw = x - means[codes]
    small = xw.T @ xw if d <= n else xw @ xw.T  # same non-zero eigenvalues, n * S_W's
    if shrinkage is None:
        top = float(np.linalg.eigvalsh(small)[-1]) / n
        shrinkage = max(math.exp(-5.0 * top), 1e-10)
    mu = float(np.trace(small)) / n / d
    if mu <= 0:  # S_W = 0 (every example equals its class mean, e.g. constant features): shrink towards I instead
        mu, shrinkage = 1.0, 1.0
    ridge, scale = shrinkage * mu, (1.0 - shrinkage) / n  # S~ = ridge I + scale xw'xw
    if d <= n:
        sol = np.linalg.solve(scale * small + ridge * np.eye(d), means.T)  # (d, C) = S~^{-1} M^T
    elif scale == 0:  # lambda = 1: S~ is the scaled identity
        sol = means.T / ridge
    else:
        inner = np.linalg.solve(ridge / scale * np.eye(n) + small, xw @ means.T)
        sol = (means.T - xw.T @ inner) / ridge
    logits = x @ sol - 0.5 * np.einsum("cd,dc->c", means, sol) + np.log(counts / n)
    return softmax_rows(logits), shrinkage


def sfda(features: Any, labels: Any) -> float:
    r"""SFDA (Shao, Zhao, Zhang, Luo, ECCV 2022): the mean posterior of the true class after a self-challenging mix,
    in a regularised Fisher space.

    1. A shrinkage Fisher discriminant (LDA) with :math:`\lambda = \max(e^{-5\lambda_{\max}(S_W)}, 10^{-10})`
       gives :math:`p(c\mid x_i)` (see ``_fisher_posterior``).
    2. ConfMix: with :math:`q_i = \mathrm{softmax}_c(p(c\mid x_i))_{y_i}` (the posteriors softened by one more
       softmax) and :math:`\bar\mu_{-c}` the mean of the other classes' means,
       :math:`\tilde x_i = q_i x_i + (1-q_i)\,\bar\mu_{-y_i}`.
    3. The same discriminant (same λ) refitted on :math:`\tilde x`: :math:`\mathrm{SFDA} = \frac1n\sum_i
       p(y_i\mid\tilde x_i)` (the paper's score, without the logarithm).

    As the reference, except that :math:`\lambda_{\max}(S_W)` is exact (the reference takes three power
    iterations). In [0, 1]. With d ≥ n and a small λ the classes are separable and the score saturates near 1.

    Shape: features (n, d), labels (n,). Returns a float.
    """
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    prob, shrinkage = _fisher_posterior(x, codes, counts, None)
    soft = softmax_rows(prob)[np.arange(x.shape[0]), codes][:, None]
    means = np.zeros((counts.size, x.shape[1]))
    np.add.at(means, codes, x)
    means /= counts[:, None]
    others = (means.sum(axis=0) - means) / (counts.size - 1)
    mixed = soft * x + (1.0 - soft) * others[codes]
    prob, _ = _fisher_posterior(mixed, codes, counts, shrinkage)
    return float(np.mean(prob[np.arange(x.shape[0]), codes]))


# ----------------------------------------------------------------------------------------------------------------
# Ridge model selection from the spectrum: generalised and exact leave-one-out cross-validation
# ----------------------------------------------------------------------------------------------------------------
#: the ridge penalties the model-selection scores search, as exponents g: λ = (Σ_i σ_i² / n) · 10^g, g from −6 to 3
#: in steps of 1/4 (the scale is the mean squared row norm: 1 for the measure's unit rows, the number of
#: non-constant columns for standardised features)
RIDGE_GRID: tuple[float, ...] = tuple(float(g) for g in np.linspace(-6.0, 3.0, 37))

#: elements (n · k · penalties) the leave-one-out residuals take at a time
_LOO_ELEMENTS = 4_194_304


def ridge_penalties(singular_values: np.ndarray, n: int, grid: Sequence[float] = RIDGE_GRID) -> np.ndarray:
    r"""The penalties :math:`\lambda_j = \frac{1}{n}\sum_i\sigma_i^2 \cdot 10^{g_j}` for the exponents ``grid``
    (scale 1 when there is no non-zero singular value: features that carry nothing, where every λ fits the same).

    Shape: singular_values (r,); returns (len(grid),).
    """
    scale = float(np.sum(np.asarray(singular_values, dtype=np.float64) ** 2)) / n
    return (scale if scale > 0 else 1.0) * 10.0 ** np.asarray(grid, dtype=np.float64)


def ridge_gcv(
    singular_values: np.ndarray,
    mass: np.ndarray,
    total: float,
    n: int,
    *,
    intercept: bool = False,
    grid: Sequence[float] = RIDGE_GRID,
) -> float:
    r"""GCV-optimal ridge (Golub, Heath & Wahba, Technometrics 1979): one minus the smallest generalised
    cross-validation risk of ridge regression of the targets on the features, relative to their variance.

    With :math:`\Phi = U\Sigma V^\top`, masses :math:`m_i = \lVert u_i^\top Y\rVert^2`, :math:`M = \lVert Y\rVert_F^2`
    and the hat matrix :math:`H_\lambda = U\,\mathrm{diag}(\sigma_i^2/(\sigma_i^2+\lambda))\,U^\top`,

    .. math::

        \mathrm{GCV}(\lambda) = \frac{\frac1n\lVert (I - H_\lambda)Y\rVert_F^2}{(1 - \mathrm{df}_\lambda/n)^2},\quad
        \lVert (I - H_\lambda)Y\rVert_F^2 = \sum_i\Big(\frac{\lambda}{\sigma_i^2+\lambda}\Big)^2 m_i
            + \Big(M - \sum_i m_i\Big),\quad
        \mathrm{df}_\lambda = \sum_i\frac{\sigma_i^2}{\sigma_i^2+\lambda} + [\text{intercept}],

        \text{score} = 1 - \min_{\lambda\in\Lambda}\frac{\mathrm{GCV}(\lambda)}{M/n}

    over the penalties :func:`ridge_penalties` of ``grid``. A pure function of the alignment spectrum
    (``spec.singular_values``, ``spec.mass``, ``spec.total``, ``spec.n``), so it streams with
    :class:`repalign.measure.alignment.AlignmentAccumulator`. ``intercept``: the features' columns and the targets
    were centred, which fits an unpenalised intercept (one more degree of freedom). GCV is the rotation-invariant
    form of leave-one-out: it stays an out-of-sample risk when d ≥ n and every representation fits the targets.

    Shape: singular_values, mass (r,); total, n scalars. Returns a float (≤ 1; larger transfers better).
    """
    s2 = np.asarray(singular_values, dtype=np.float64) ** 2
    m = np.asarray(mass, dtype=np.float64)
    lam = ridge_penalties(singular_values, n, grid)[:, None]  # (L, 1)
    shrink = lam / (s2[None, :] + lam)  # (L, r)
    rss = np.sum(shrink**2 * m[None, :], axis=1) + max(float(total) - float(m.sum()), 0.0)
    free = 1.0 - (np.sum(1.0 - shrink, axis=1) + float(intercept)) / n
    risk = np.where(free > 0, rss / np.maximum(free, np.finfo(np.float64).tiny) ** 2, np.inf)
    return 1.0 - float(np.min(risk)) / float(total)


def standardise_columns(features: Any) -> np.ndarray:
    r"""Features standardised per column as the probe's ``StandardScaler`` does: :math:`z = (x - \mu)/s`, with
    population standard deviations, and :math:`s = 1` for a column indistinguishable from a constant (its variance at
    most :math:`n\varepsilon\,\mathrm{var} + (n\varepsilon\mu)^2`, scikit-learn's bound).

    Shape: features (n, d) → (n, d) float64.
    """
    x = _features(features)
    n = x.shape[0]
    mean, var = x.mean(axis=0), x.var(axis=0)
    eps = float(np.finfo(np.float64).eps)
    scale = np.where(var <= n * eps * var + (n * mean * eps) ** 2, 1.0, np.sqrt(var))
    return (x - mean) / scale


def ridge_basis(features: Any, *, standardize: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""The thin SVD's :math:`\sigma` and U of the features the ridge scores read: the measure's preprocessing
    (:func:`repalign.measure.alignment.preprocess`: bias column, unit-norm rows) or, with ``standardize``,
    :func:`standardise_columns` (centred columns: an unpenalised intercept).

    Through the smaller of the Gram and the kernel: d' ≤ n, :math:`\tilde\Phi^\top\tilde\Phi = V\Lambda V^\top`
    and :math:`U = \tilde\Phi V\Lambda^{-1/2}` (one more product the size of a Gram accumulation); d' > n,
    :math:`\tilde\Phi\tilde\Phi^\top = U\Lambda U^\top`. Numerically zero eigenvalues are dropped.

    Shape: features (n, d). Returns (σ (r,) descending, U (n, r)).
    """
    phi = standardise_columns(features) if standardize else preprocess(_features(features))
    n, d = phi.shape
    if d <= n:
        lam, vec = _eigh_psd(phi.T @ phi)
        sig = np.sqrt(lam)
        return sig, (phi @ vec) / sig
    lam, left = _eigh_psd(phi @ phi.T)
    return np.sqrt(lam), left


def _loo_curves(
    singular_values: np.ndarray,
    left: np.ndarray,
    codes: np.ndarray,
    counts: np.ndarray,
    intercept: bool,
    grid: Sequence[float],
) -> tuple[np.ndarray, np.ndarray]:
    r"""Exact leave-one-out squared error (relative to :math:`\lVert Y\rVert^2`) and accuracy of ridge at each
    penalty of ``grid``, for the centred one-hot targets :math:`Y = E - \mathbf 1\bar e^\top` of the labels.

    .. math::

        f_i = \frac{\sigma_i^2}{\sigma_i^2+\lambda},\quad R = Y - U\,\mathrm{diag}(f)\,U^\top Y,\quad
        h = (U\odot U)f + \tfrac{[\text{intercept}]}{n},\quad \tilde e_j = \frac{R_{j:}}{1 - h_j},\quad
        \hat c_j = \arg\max_c\,(e_{y_j} - \tilde e_j)_c

    (:math:`e_{y_j} - \tilde e_j` is example j's prediction by the model fitted without it).

    Shape: singular_values (r,), left (n, r), codes (n,), counts (C,). Returns ((L,), (L,)).
    """
    s2 = np.asarray(singular_values, dtype=np.float64) ** 2
    u = np.asarray(left, dtype=np.float64)
    n, k = u.shape[0], counts.size
    onehot = _one_hot(codes, k)
    y = onehot - counts / n
    proj = u.T @ y  # (r, C)
    lam = ridge_penalties(singular_values, n, grid)
    fit = s2[:, None] / (s2[:, None] + lam[None, :])  # (r, L)
    lev = (u * u) @ fit + float(intercept) / n  # (n, L)
    total = float(np.sum(y * y))
    errors, accuracy = np.empty(lam.size), np.empty(lam.size)
    step = max(1, _LOO_ELEMENTS // (n * k))
    for lo in range(0, lam.size, step):
        part = slice(lo, min(lo + step, lam.size))
        m = part.stop - part.start
        fitted = (u @ (fit[:, part, None] * proj[:, None, :]).reshape(-1, m * k)).reshape(n, m, k)
        loo = (y[:, None, :] - fitted) / np.maximum(1.0 - lev[:, part], np.finfo(np.float64).eps)[:, :, None]
        errors[part] = np.sum(loo**2, axis=(0, 2)) / total
        accuracy[part] = np.mean(np.argmax(onehot[:, None, :] - loo, axis=2) == codes[:, None], axis=0)
    return errors, accuracy


def _basis_labels(
    singular_values: Any, left: Any, labels: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """σ (r,) and U (n, r) checked against each other and the labels; the labels' codes and counts."""
    sig = np.asarray(singular_values, dtype=np.float64).reshape(-1)
    u = np.asarray(left, dtype=np.float64)
    if u.ndim != 2 or u.shape[1] != sig.size or not np.all(sig > 0) or not np.all(np.isfinite(u)):
        raise ValueError(
            f"left {u.shape} must be finite (n, r) with one positive singular value per column, got {sig.size}"
        )
    codes, counts = _labels(labels, u.shape[0])
    return sig, u, codes, counts


def loo_ridge_error(
    singular_values: Any, left: Any, labels: Any, *, intercept: bool = False, grid: Sequence[float] = RIDGE_GRID
) -> float:
    r"""Exact leave-one-out ridge error: one minus the smallest leave-one-out squared error of ridge regression of
    the centred one-hot targets, relative to their squared norm (Allen 1974's PRESS, from the SVD).

    .. math::

        \text{score} = 1 - \min_{\lambda\in\Lambda}\frac{\sum_j \lVert R_{j:}\rVert^2/(1-h_j)^2}{\lVert Y\rVert_F^2},
        \quad R = (I - H_\lambda)Y,\quad h = \mathrm{diag}(H_\lambda) = (U\odot U)\,\frac{\sigma^2}{\sigma^2+\lambda}
        + \tfrac{[\text{intercept}]}{n}

    with :math:`H_\lambda = U\mathrm{diag}(\sigma_i^2/(\sigma_i^2+\lambda))U^\top` (for an intercept fitted by
    centring, :math:`H + \mathbf 1\mathbf 1^\top/n`), over the penalties :func:`ridge_penalties` of ``grid``. A
    pure function of σ and U (:func:`ridge_basis`): U's leverages and the targets' projections.

    Shape: singular_values (r,), left (n, r) orthonormal columns, labels (n,). Returns a float (≤ 1).
    """
    sig, u, codes, counts = _basis_labels(singular_values, left, labels)
    return 1.0 - float(np.min(_loo_curves(sig, u, codes, counts, intercept, grid)[0]))


def loo_ridge_accuracy(
    singular_values: Any, left: Any, labels: Any, *, intercept: bool = False, grid: Sequence[float] = RIDGE_GRID
) -> float:
    r"""Exact leave-one-out ridge accuracy: the best, over the penalties, accuracy of the class each example gets
    from ridge regression of the one-hot targets fitted without it (the classifier "largest predicted indicator").

    .. math::

        \text{score} = \max_{\lambda\in\Lambda}\frac1n\sum_j
            \Big[\arg\max_c\Big(e_{y_j} - \frac{R_{j:}}{1 - h_j}\Big)_c = y_j\Big]

    with R and h as in :func:`loo_ridge_error` (:math:`e_{y_j} - R_{j:}/(1-h_j)` is example j's leave-one-out
    prediction of its one-hot row, exactly). The ground truth of notebook 11 takes its best test accuracy over a C
    grid in the same way. Pure function of σ and U (:func:`ridge_basis`).

    Shape: singular_values (r,), left (n, r), labels (n,). Returns a float in [0, 1].
    """
    sig, u, codes, counts = _basis_labels(singular_values, left, labels)
    return float(np.max(_loo_curves(sig, u, codes, counts, intercept, grid)[1]))


def ridge_scores(features: Any, labels: Any, *, standardize: bool = False) -> dict[str, float]:
    r"""The three ridge model-selection scores of one representation from one :func:`ridge_basis`:
    ``gcv_ridge`` (:func:`ridge_gcv`), ``loo_ridge_error`` (:func:`loo_ridge_error`) and ``loo_ridge_accuracy``
    (:func:`loo_ridge_accuracy`), for the centred one-hot targets; on the measure's preprocessing (bias column,
    unit rows, no intercept) or, with ``standardize``, on standardised features (with an intercept; keys suffixed
    ``_standardised``).

    Shape: features (n, d), labels (n,). Returns a dict of three floats.
    """
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    sig, u = ridge_basis(x, standardize=standardize)
    y = _one_hot(codes, counts.size) - counts / x.shape[0]
    mass = np.sum((u.T @ y) ** 2, axis=1)
    errors, accuracy = _loo_curves(sig, u, codes, counts, standardize, RIDGE_GRID)
    out = {
        "gcv_ridge": ridge_gcv(sig, mass, float(np.sum(y * y)), x.shape[0], intercept=standardize),
        "loo_ridge_error": 1.0 - float(np.min(errors)),
        "loo_ridge_accuracy": float(np.max(accuracy)),
    }
    return {f"{k}_standardised" if standardize else k: v for k, v in out.items()}


# ----------------------------------------------------------------------------------------------------------------
# The score card: every spectral score from one Gram accumulation
# ----------------------------------------------------------------------------------------------------------------
def card_from_spectrum(spec: Spectrum, class_counts: Sequence[int] | np.ndarray) -> dict[str, float]:
    r"""Every alignment summary, LogME and the GCV-optimal ridge from one spectrum of the features with one-hot
    targets.

    ``spec`` must be the spectrum of 0/1 one-hot targets (one column per class; centred or not): then the squared
    norm of column c is :math:`n_c(1 - n_c/n)` centred and :math:`n_c` uncentred, which LogME needs and the
    spectrum does not keep per column. ``alignment_*`` are :func:`alignment_summaries`; ``logme_preprocessed`` is
    :func:`logme_from_spectrum` (the paper's evidence) and ``gcv_ridge`` :func:`ridge_gcv` on the same
    (preprocessed) features and targets.

    Shape: spec with C target columns; class_counts (C,). Returns a dict of floats.
    """
    counts = np.asarray(class_counts, dtype=np.float64).reshape(-1)
    if counts.size != spec.mass_columns.shape[1] or counts.sum() != spec.n:
        raise ValueError(
            f"class_counts ({counts.size} classes, {counts.sum():g} examples) do not match the spectrum "
            f"({spec.mass_columns.shape[1]} target columns, n = {spec.n}): pass the counts of its one-hot targets"
        )
    totals = counts * (1 - counts / spec.n) if spec.centered else counts
    card = {f"alignment_{k}": v for k, v in alignment_summaries(spec).items()}
    card["logme_preprocessed"] = logme_from_spectrum(spec, totals)
    card["gcv_ridge"] = ridge_gcv(spec.singular_values, spec.mass, spec.total, spec.n)
    return card


def score_card(features: Any, labels: Any) -> dict[str, float]:
    r"""Alignment summaries, LogME and GCV ridge of one representation from one Gram accumulation
    (:func:`card_from_spectrum`).

    One :func:`repalign.measure.alignment.spectrum` of the features with the measure's defaults (bias column, unit-norm
    rows, centred targets) and one-hot targets of ``labels``: a float64 Gram matrix streamed in chunks and one
    eigendecomposition (CUDA tensors are measured on their GPU). The other scores (:func:`logme` and
    :func:`logme_published_code` on raw features, the leave-one-out ridge scores, :func:`h_score`,
    :func:`regularized_h_score`, :func:`transrate`, :func:`sfda`, :func:`leep`, :func:`nce`) are separate calls.

    Shape: features (n, d) NumPy array or torch tensor; labels (n,). Returns a dict of floats.
    """
    shape = tuple(features.shape) if hasattr(features, "shape") else np.shape(features)
    if len(shape) != 2 or shape[0] < 2:
        raise ValueError(f"features must be 2-D (n examples, d features) with n ≥ 2, got shape {shape}")
    codes, counts = _labels(labels, shape[0])
    targets: Any = _one_hot(codes, counts.size)
    if hasattr(features, "detach"):
        import torch

        targets = torch.as_tensor(targets, device=features.device)
    arr = features  # validated (numeric, finite) and converted chunk by chunk by the spectrum
    return card_from_spectrum(spectrum(arr, targets), counts)


def feature_scores(features: Any, labels: Any) -> dict[str, float]:
    r"""Every score that reads features and labels: :func:`score_card` (``alignment_*``, ``logme_preprocessed``,
    ``gcv_ridge``), the leave-one-out ridge scores on the same preprocessing and all three on standardised features
    (:func:`ridge_scores`), ``logme`` (the paper's formula) and ``logme_published_code`` (thuml's code) from one
    spectrum of the raw features, ``h_score``, ``regularized_h_score``, ``transrate`` and ``sfda``.

    Shape: features (n, d), labels (n,). Returns a dict of floats (larger = predicted to transfer better).
    """
    x = _features(features)
    codes, counts = _labels(labels, x.shape[0])
    raw, totals = _raw_spectrum(x, codes, counts), counts.astype(np.float64)
    out = {**ridge_scores(x, labels), **ridge_scores(x, labels, standardize=True), **score_card(x, labels)}
    out.update(
        logme=logme_from_spectrum(raw, totals),
        logme_published_code=logme_from_spectrum(raw, totals, code_terms=published_code_terms(x)),
        h_score=h_score(x, labels),
        regularized_h_score=regularized_h_score(x, labels),
        transrate=transrate(x, labels),
        sfda=sfda(x, labels),
    )
    return out


def ranking_agreement(score: Any, truth: Any) -> float:
    r"""Weighted Kendall τ (Vigna 2015; ``scipy.stats.weightedtau``, hyperbolic weights, ranks by decreasing
    value, symmetrised) between a score and the ground truth over the same representations: the protocol's measure
    of how well a score ranks them, in [−1, 1], swaps near the top weighing more.

    A constant score or a constant truth (every representation reaching the same probe accuracy) ranks nothing:
    the agreement is 0, no better than chance, where τ itself is undefined (0/0; scipy returns NaN).

    Shape: score (m,), truth (m,) with m ≥ 2. Returns a float.
    """
    from scipy.stats import weightedtau

    a, b = np.asarray(score, dtype=np.float64).reshape(-1), np.asarray(truth, dtype=np.float64).reshape(-1)
    if a.size != b.size or a.size < 2:
        raise ValueError(f"score and truth must rank the same m ≥ 2 items, got {a.size} and {b.size}")
    if not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("score or truth contain NaN or inf")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return 0.0
    return float(weightedtau(a, b).statistic)
