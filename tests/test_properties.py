"""Properties of the measure and of the transferability scores, checked on inputs hypothesis draws (and shrinks).

The measure (``repalign.spectrum``, ``alignment_curve``, ``AlignmentAccumulator``): :math:`0 \\le A(\\tau) \\le
\\lVert Y\\rVert^2`, A non-increasing in τ, :math:`A(0) = \\lVert Y\\rVert^2` (of the centred targets by default),
invariance to rotating the features (before the bias column) and to permuting the examples, streaming in any
batch split (and merging) equal to one shot, and the gram/kernel/svd methods in agreement.

The scores (``repalign.measure.scores``): finite output, the invariances their papers state (permuting examples,
renaming classes, rotations, scale where it holds; ridge on standardised features: any map of each column alone) and
their bounds.

Every test is ``derandomize=True`` (the same examples on every run: CI is repeatable) and sized to run in a few
seconds in all. Features are drawn element by element, so hypothesis also tries repeated rows, zero columns and
rank-deficient matrices, not only Gaussian ones.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from repalign import AlignmentAccumulator, Spectrum, alignment_curve, spectrum
from repalign.measure import scores

pytestmark = pytest.mark.filterwarnings("ignore::repalign.measure.alignment.TargetWarning")

#: a hundred examples per property of the measure, the same ones on every run (no example database to replay)
FAST = settings(deadline=None, max_examples=100, derandomize=True, database=None)
#: the scores cost several eigendecompositions per example: fewer keep the whole file within a few seconds
SCORES = settings(deadline=None, max_examples=50, derandomize=True, database=None)

_VALUES = st.floats(-100.0, 100.0, allow_nan=False, allow_infinity=False, allow_subnormal=False)


# ----------------------------------------------------------------------------------------------------------------
# Strategies
# ----------------------------------------------------------------------------------------------------------------
@st.composite
def measured(draw: st.DrawFn, max_n: int = 24, max_d: int = 8, max_k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, d) and non-constant targets (n, k), element by element."""
    n = draw(st.integers(3, max_n))
    d = draw(st.integers(1, max_d))
    k = draw(st.integers(1, max_k))
    x = draw(arrays(np.float64, (n, d), elements=_VALUES))
    y = draw(arrays(np.float64, (n, k), elements=st.floats(-10.0, 10.0, allow_subnormal=False)))
    y[0, :] += 1.0 + np.ptp(y, axis=0)  # no constant column: centred, it would be all zero (a ValueError)
    return x, y


@st.composite
def labelled(draw: st.DrawFn, max_n: int = 30, max_d: int = 6, max_classes: int = 4) -> tuple[np.ndarray, np.ndarray]:
    """Features (n, d) and class labels (n,) with at least two classes."""
    n = draw(st.integers(4, max_n))
    d = draw(st.integers(1, max_d))
    classes = draw(st.integers(2, min(max_classes, n)))
    x = draw(arrays(np.float64, (n, d), elements=_VALUES))
    y = np.asarray(draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    y[:2] = [0, 1]  # at least two classes
    return x, y


@st.composite
def gaussian_task(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Seeded Gaussian class clusters (n > d, every class with ≥ 2 examples): well-posed for every score."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    classes = draw(st.integers(2, 4))
    d = draw(st.integers(1, 8))
    n = draw(st.integers(max(2 * classes, d + 2), 40))
    y = np.arange(n) % classes
    centres = draw(st.floats(0.0, 3.0)) * rng.normal(size=(classes, d))
    return centres[y] + rng.normal(size=(n, d)) * draw(st.sampled_from([0.01, 1.0, 20.0])), y


def _orthogonal(d: int, seed: int) -> np.ndarray:
    """A seeded random orthogonal d × d matrix (Haar: QR of a Gaussian with the signs of R's diagonal fixed)."""
    q, r = np.linalg.qr(np.random.default_rng(seed).normal(size=(d, d)))
    return q * np.sign(np.diag(r))


def _centred_total(y: np.ndarray, center: bool) -> float:
    """‖Y − 1ȳᵀ‖² (``center``) or ‖Y‖², computed directly."""
    z = y - y.mean(axis=0) if center else y
    return float(np.sum(z**2))


def _safe_thresholds(*specs: Spectrum) -> np.ndarray:
    """Thresholds away from every singular value of ``specs`` (where A steps): 0, midpoints between well separated
    singular values above 1e-3·σ₁ (which every method resolves), and one above σ₁."""
    sig = np.sort(np.concatenate([s.singular_values for s in specs]))[::-1]
    if sig.size == 0:
        return np.array([0.0, 1.0])
    top = float(sig[0])
    big = sig[sig > 1e-3 * top]
    mids = [(a + b) / 2 for a, b in zip(big[:-1], big[1:], strict=True) if a > b * (1 + 1e-3) and a - b > 1e-9 * top]
    return np.array([0.0, *mids, top * (1 + 1e-3) + 1e-9])


def _same_curve(a: Spectrum, b: Spectrum, taus: np.ndarray, total: float) -> None:
    """A(τ) of both at ``taus``, to 1e-6 relative or 1e-7·‖Y‖² absolute."""
    assert a.curve(taus) == pytest.approx(b.curve(taus), rel=1e-6, abs=1e-7 * max(total, 1e-300))


def _same_spectrum(a: Spectrum, b: Spectrum, rel: float = 1e-7) -> None:
    """The singular values above 1e-6·σ₁ agree (below, each method's rank cut-off decides what it keeps)."""
    top = float(a.singular_values[0])
    kept = a.singular_values[a.singular_values > 1e-6 * top]
    assert b.singular_values[: kept.size] == pytest.approx(kept, rel=rel, abs=1e-9 * top)


# ----------------------------------------------------------------------------------------------------------------
# The measure
# ----------------------------------------------------------------------------------------------------------------
@FAST
@given(
    measured(),
    st.lists(st.floats(-2.0, 12.0, allow_subnormal=False), min_size=1, max_size=8),
    st.booleans(),
    st.booleans(),
)
def test_curve_is_bounded_non_increasing_and_starts_at_the_squared_norm(xy, taus, center, normalize) -> None:
    x, y = xy
    taus = np.sort(np.asarray(taus))
    total = _centred_total(y, center)
    curve = alignment_curve(x, y, taus, center=center, normalize=normalize)
    tol = 1e-9 * total
    assert np.all(curve >= -tol) and np.all(curve <= total + tol)
    assert np.all(np.diff(curve) <= tol)  # non-increasing: a larger threshold keeps fewer directions
    assert alignment_curve(x, y, [0.0], center=center, normalize=normalize)[0] == pytest.approx(total, rel=1e-9)
    spec = spectrum(x, y, center=center, normalize=normalize)
    assert spec.curve([float(spec.singular_values[0]) * 1.001 + 1e-12])[0] == 0.0  # nothing above σ₁
    rel = spec.curve(taus, relative=True)
    assert np.all(rel >= -1e-9) and np.all(rel <= 1 + 1e-9)


@FAST
@given(measured(), st.integers(0, 2**32 - 1), st.booleans())
def test_rotating_the_features_before_the_bias_column_changes_nothing(xy, seed, center) -> None:
    x, y = xy
    q = _orthogonal(x.shape[1], seed)
    a, b = spectrum(x, y, center=center), spectrum(x @ q, y, center=center)
    _same_spectrum(a, b)
    _same_curve(a, b, _safe_thresholds(a, b), a.total)
    assert b.total == pytest.approx(a.total, rel=1e-12)


@FAST
@given(measured(), st.randoms(use_true_random=False), st.booleans())
def test_permuting_the_examples_with_their_targets_changes_nothing(xy, rnd, center) -> None:
    x, y = xy
    perm = np.array(rnd.sample(range(len(x)), len(x)))
    a, b = spectrum(x, y, center=center), spectrum(x[perm], y[perm], center=center)
    _same_spectrum(a, b)
    _same_curve(a, b, _safe_thresholds(a, b), a.total)
    assert b.total == pytest.approx(a.total, rel=1e-12)


@FAST
@given(measured(max_n=30), st.data(), st.booleans())
def test_streaming_in_any_batch_split_equals_one_shot(xy, data, center) -> None:
    x, y = xy
    n = len(x)
    cuts = sorted(data.draw(st.sets(st.integers(1, n - 1), max_size=6), label="cuts"))
    acc = AlignmentAccumulator(center=center)
    for rows in np.split(np.arange(n), cuts):
        acc.update(x[rows], y[rows])
    one = spectrum(x, y, center=center, method="gram")
    streamed = acc.spectrum()
    assert acc.n == n and acc.batches == len(cuts) + 1
    assert streamed.total == pytest.approx(one.total, rel=1e-9)
    _same_spectrum(one, streamed)
    _same_curve(streamed, one, _safe_thresholds(streamed, one), one.total)
    # two workers, each with part of the stream, merged: the same spectrum again
    split = data.draw(st.integers(1, n - 1), label="split")
    left, right = AlignmentAccumulator(center=center), AlignmentAccumulator(center=center)
    left.update(x[:split], y[:split])
    right.update(x[split:], y[split:])
    merged = left.merge(right).spectrum()
    assert merged.total == pytest.approx(one.total, rel=1e-9)
    _same_curve(merged, one, _safe_thresholds(merged, one), one.total)


@FAST
@given(measured(max_n=16, max_d=20), st.booleans(), st.booleans())
def test_gram_kernel_and_svd_agree(xy, center, normalize) -> None:
    x, y = xy
    specs = [spectrum(x, y, center=center, normalize=normalize, method=m) for m in ("gram", "kernel", "svd")]
    ref = specs[2]
    taus = _safe_thresholds(*specs)
    top = float(ref.singular_values[0])
    big = ref.singular_values[ref.singular_values > 1e-3 * top]
    for spec in specs[:2]:
        assert spec.total == pytest.approx(ref.total, rel=1e-9)
        assert spec.singular_values[: big.size] == pytest.approx(big, rel=1e-6)
        _same_curve(spec, ref, taus, ref.total)


# ----------------------------------------------------------------------------------------------------------------
# The scores
# ----------------------------------------------------------------------------------------------------------------
FEATURE_SCORES = {
    "logme": scores.logme,
    "logme_published_code": scores.logme_published_code,
    "h_score": scores.h_score,
    "regularized_h_score": scores.regularized_h_score,
    "transrate": scores.transrate,
    "sfda": scores.sfda,
    "alignment_auc": scores.alignment_score,
}
#: the ridge model-selection scores (:func:`repalign.measure.scores.ridge_scores`), on the measure's preprocessing
#: and on standardised features
RIDGE = tuple(f"{s}{p}" for p in ("", "_standardised") for s in ("gcv_ridge", "loo_ridge_error", "loo_ridge_accuracy"))
#: every score but the published LogME code's: it counts the zero directions of a rank-deficient Gram (n > d) by
#: LAPACK's rounding noise, which moves with the order of the examples (as the published code's does)
ORDER_FREE = tuple(name for name in (*FEATURE_SCORES, *RIDGE) if name != "logme_published_code")
#: scores that depend on the features only through rotation-invariant quantities (Gram spectrum, distances, the
#: measure's unit rows); standardising a column is not one
ROTATION_INVARIANT = tuple(name for name in ORDER_FREE if not name.endswith("_standardised"))
#: H-score is invariant to any invertible affine map (Bao et al. 2019); the shrinkage H-score to scaling and
#: translation (Ledoit–Wolf's shrinkage is scale-free); LogME only at its exact fixed point (its own test below:
#: the reference's ε = 1e-5 sees the scale); TransRate's ε, SFDA's λ and the alignment's row normalisation see it
SCALE_INVARIANT = ("h_score", "regularized_h_score")
#: ridge on standardised features: invariant to a non-zero scale and a shift of each column on its own
COLUMN_AFFINE_INVARIANT = tuple(name for name in RIDGE if name.endswith("_standardised"))


def _all(x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Every feature score of (x, y), and the ridge scores on both preprocessings."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a failure must show as a non-finite value, not a warning
        values = {name: fn(x, y) for name, fn in FEATURE_SCORES.items()}
        return values | scores.ridge_scores(x, y) | scores.ridge_scores(x, y, standardize=True)


def _close(
    a: dict[str, float], b: dict[str, float], names: Iterable[str], rel: float = 1e-6, abs_: float = 1e-8
) -> None:
    """``b`` equals ``a`` for every score in ``names``."""
    for name in names:
        assert b[name] == pytest.approx(a[name], rel=rel, abs=abs_), name


@SCORES
@given(labelled())
def test_every_feature_score_is_finite_and_within_its_bounds(xy) -> None:
    x, y = xy
    values = _all(x, y)
    for name, value in values.items():
        assert math.isfinite(value), name
    classes = np.unique(y).size
    tol = 1e-9 * (classes - 1)
    # 0 ≤ H_α ≤ H ≤ C − 1: shrinking the covariance only lowers the between-class trace
    assert -tol <= values["regularized_h_score"] <= values["h_score"] + tol <= classes - 1 + 2 * tol
    assert 0.0 <= values["sfda"] <= 1.0  # a mean posterior probability
    for name in RIDGE:  # one minus a relative risk (≥ 0), and an accuracy
        assert values[name] <= 1.0 and (values[name] >= 0.0 or "accuracy" not in name), name
    summaries = scores.alignment_summaries(spectrum(x, np.eye(classes)[np.unique(y, return_inverse=True)[1]]))
    assert -1e-12 <= summaries["auc"] <= summaries["auc_sigma1"] + 1e-12 <= 1 + 2e-12
    assert 0 <= summaries["tau_0.9"] <= summaries["tau_0.5"] <= math.sqrt(len(y)) + 1e-9


@SCORES
@given(gaussian_task(), st.randoms(use_true_random=False), st.integers(0, 2**32 - 1))
def test_feature_scores_ignore_the_order_of_examples_the_names_of_classes_and_rotations(xy, rnd, seed) -> None:
    x, y = xy
    base = _all(x, y)
    perm = np.array(rnd.sample(range(len(y)), len(y)))
    d = x.shape[1]
    _close(base, _all(x[perm], y[perm]), ORDER_FREE)
    names = np.array(rnd.sample(["ant", "bee", "cat", "dog", "eel"], 5))  # a relabelling: any bijection of classes
    _close(base, _all(x, names[y]), (*FEATURE_SCORES, *RIDGE))
    q = _orthogonal(d, seed)
    _close(base, _all(x @ q, y), ROTATION_INVARIANT, rel=1e-5, abs_=1e-7)


@SCORES
@given(gaussian_task(), st.floats(1e-2, 1e2), st.integers(0, 2**32 - 1))
def test_h_scores_ignore_the_scale_h_score_any_invertible_affine_map_and_standardised_ridge_any_column_map(
    xy, scale, seed
) -> None:
    x, y = xy
    base = _all(x, y)
    _close(base, _all(scale * x + 3.0, y), SCALE_INVARIANT, rel=1e-6, abs_=1e-8)
    rng = np.random.default_rng(seed)
    a = _orthogonal(x.shape[1], seed) @ np.diag(rng.uniform(0.5, 2.0, x.shape[1]))  # well-conditioned, invertible
    assert scores.h_score(x @ a - 1.0, y) == pytest.approx(base["h_score"], rel=1e-6, abs=1e-8)
    columns = rng.uniform(0.1, 10.0, x.shape[1]) * rng.choice([-1.0, 1.0], x.shape[1])  # each column its own map
    _close(base, _all(x * columns + rng.normal(size=x.shape[1]), y), COLUMN_AFFINE_INVARIANT, rel=1e-6, abs_=1e-8)


@st.composite
def indicator_task(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """Each class has a feature column that marks it (plus Gaussian noise): every class indicator has an interior
    LogME fixed point (without signal the exact maximiser is α → ∞, and ε = 0 has no fixed point to reach)."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    classes = draw(st.integers(2, 4))
    d = draw(st.integers(classes, 8))
    n = draw(st.integers(max(3 * classes, d + 2), 40))
    y = np.arange(n) % classes
    x = draw(st.floats(0.05, 1.0)) * rng.normal(size=(n, d))
    x[:, :classes] += 4.0 * np.eye(classes)[y]
    return x, y


@SCORES
@given(indicator_task(), st.floats(0.1, 10.0))
def test_logme_at_its_exact_fixed_point_ignores_the_scale(xy, scale) -> None:
    """The evidence of y = Fw + ε is unchanged by F → cF, α → c²α; with ε = 0 and a converged fixed point, LogME is."""
    x, y = xy
    exact = {"eps": 0.0, "tol": 1e-12, "max_iter": 100_000}
    base = scores.logme(x, y, **exact)
    assert math.isfinite(base)
    assert scores.logme(scale * x, y, **exact) == pytest.approx(base, rel=1e-6, abs=1e-8)


@st.composite
def source_outputs(draw: st.DrawFn) -> tuple[np.ndarray, np.ndarray]:
    """A source model's class probabilities (n, Z) on target examples and their target labels (n,)."""
    n = draw(st.integers(4, 30))
    z = draw(st.integers(2, 6))
    logits = draw(arrays(np.float64, (n, z), elements=st.floats(-8.0, 8.0, allow_subnormal=False)))
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    classes = draw(st.integers(2, 4))
    y = np.asarray(draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n)))
    y[:2] = [0, 1]
    return probs, y


def _entropy(y: np.ndarray) -> float:
    """H(Y) of the empirical label distribution, in nats."""
    p = np.unique(y, return_counts=True)[1] / y.size
    return float(-np.sum(p * np.log(p)))


@SCORES
@given(source_outputs(), st.randoms(use_true_random=False))
def test_leep_and_nce_are_bounded_and_ignore_order_and_names(py, rnd) -> None:
    probs, y = py
    leep, nce = scores.leep(probs, y), scores.nce(probs, y)
    assert math.isfinite(leep) and math.isfinite(nce)
    # NCE = −H(Y|Z) ∈ [−H(Y), 0] (conditioning never adds entropy); LEEP ≤ 0 (a log-probability)
    assert -_entropy(y) - 1e-12 <= nce <= 1e-12
    assert leep <= 1e-12
    # LEEP ≥ NCE + mean log θ(x_i)_{z_i}, z_i the source's argmax (Nguyen et al. 2020, Theorem 1)
    z = probs.argmax(axis=1)
    assert leep >= nce + float(np.mean(np.log(probs[np.arange(len(y)), z]))) - 1e-9
    perm = np.array(rnd.sample(range(len(y)), len(y)))
    cols = np.array(rnd.sample(range(probs.shape[1]), probs.shape[1]))  # the source's classes in another order
    names = np.array(rnd.sample(["ant", "bee", "cat", "dog"], 4))  # the target's classes under other names
    for p, labels in ((probs[perm], y[perm]), (probs[:, cols], y), (probs, names[y])):
        assert scores.leep(p, labels) == pytest.approx(leep, rel=1e-9, abs=1e-12)
    # NCE reads the source's labels z: permuted with the examples, renamed on either side, it does not change
    source_names = np.array(rnd.sample(range(100, 200), probs.shape[1]))
    for src, labels in ((z[perm], y[perm]), (source_names[z], y), (z, names[y])):
        assert scores.nce(src, labels) == pytest.approx(nce, rel=1e-9, abs=1e-12)
