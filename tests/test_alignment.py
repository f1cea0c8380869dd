"""Properties of the alignment measure: agreement with a thin-SVD reference, bounds, invariances, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import repalign as ra
from repalign.measure.alignment import preprocess

# uncentred legacy checks below measure mean-heavy targets on purpose; the guardrail tests record the warning
pytestmark = pytest.mark.filterwarnings("ignore::repalign.measure.alignment.TargetWarning")

RNG = np.random.default_rng(12345)


def _centred(targets):
    """Targets minus their exact column means (math.fsum, then the fsum of what is left): a direct fp64 reference."""
    Y = np.asarray(targets, dtype=np.float64).reshape(len(targets), -1)
    for _ in range(2):
        Y = Y - np.array([math.fsum(col) / len(col) for col in Y.T])
    return Y


def _reference_curve(features, targets, taus, bias=True, normalize=True, center=True):
    """Independent fp64 reference straight from the definition, via numpy's thin SVD."""
    X = np.asarray(features, dtype=np.float64)
    if bias:
        X = np.hstack([X, np.ones((X.shape[0], 1))])
    if normalize:
        X = X / np.linalg.norm(X, axis=1, keepdims=True)
    Y = _centred(targets) if center else np.asarray(targets, dtype=np.float64).reshape(X.shape[0], -1)
    U, S, _ = np.linalg.svd(X, full_matrices=False)
    keep = S > S[0] * max(X.shape) * np.finfo(float).eps
    mass = ((U[:, keep].T @ Y) ** 2).sum(axis=1)
    S = S[keep]
    total = float((Y**2).sum())
    out = np.array([mass[S >= t].sum() if t > 0 else total for t in taus])
    return out


def _data(n, d, k=None, dtype=np.float64, kind="binary", seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) / np.sqrt(d) + 0.3
    if kind == "binary":
        y = np.sign(X[:, 0] + 0.5 * rng.normal(size=n))
        y[y == 0] = 1
    elif kind == "regression":
        y = X @ rng.normal(size=d) + rng.normal(size=n)
    else:
        y = rng.normal(size=(n, k))
    return X.astype(dtype), y


CASES = [
    (400, 30, "binary"),
    (40, 90, "binary"),
    (120, 120, "regression"),
    (300, 17, "multi"),
    (25, 60, "multi"),
]


@pytest.mark.parametrize("n,d,kind", CASES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("method", ["auto", "gram", "kernel", "svd"])
def test_matches_thin_svd_reference(n, d, kind, dtype, method):
    X, y = _data(n, d, k=3, dtype=dtype, kind=kind)
    taus = ra.threshold_grid(n, num=40)
    ref = _reference_curve(X.astype(np.float64), y, taus)
    got = ra.alignment_curve(X, y, taus, method=method)
    assert np.max(np.abs(got - ref)) <= 1e-9 * np.sum(_centred(y) ** 2)
    ref_raw = _reference_curve(X.astype(np.float64), y, taus, center=False)
    raw = ra.alignment_curve(X, y, taus, method=method, center=False)
    assert np.max(np.abs(raw - ref_raw)) <= 1e-9 * np.sum(y**2)


@pytest.mark.parametrize("bias,normalize", [(False, False), (True, False), (False, True)])
def test_options_match_reference(bias, normalize):
    X, y = _data(200, 12, kind="regression", seed=3)
    spec = ra.spectrum(X, y, bias=bias, normalize=normalize)
    taus = np.linspace(0, spec.singular_values[0] * 1.1, 30)
    ref = _reference_curve(X, y, taus, bias=bias, normalize=normalize)
    got = ra.alignment_curve(X, y, taus, bias=bias, normalize=normalize)
    assert np.allclose(got, ref, atol=1e-9 * np.sum(y**2), rtol=0)


def test_torch_matches_numpy_and_keeps_float32_inputs():
    X, y = _data(300, 25, seed=1, dtype=np.float32)
    taus = ra.threshold_grid(300)
    a = ra.alignment_curve(X, y, taus)
    b = ra.alignment_curve(torch.from_numpy(X), torch.from_numpy(y), taus)
    assert isinstance(b, np.ndarray)
    assert np.allclose(a, b, atol=1e-9 * 300, rtol=0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_matches_cpu():  # pragma: no cover - runs where a GPU exists
    X, y = _data(500, 40, seed=2, dtype=np.float32)
    taus = ra.threshold_grid(500)
    cpu = ra.alignment_curve(X, y, taus)
    gpu = ra.alignment_curve(torch.from_numpy(X).cuda(), torch.from_numpy(y).cuda(), taus)
    assert np.allclose(cpu, gpu, atol=1e-9 * 500, rtol=0)
    acc = ra.AlignmentAccumulator()
    for s in range(0, 500, 128):
        acc.update(torch.from_numpy(X[s : s + 128]).cuda(), torch.from_numpy(y[s : s + 128]).cuda())
    assert np.allclose(acc.curve(taus), cpu, atol=1e-9 * 500, rtol=0)


@pytest.mark.parametrize("n,d", [(300, 20), (30, 80)])
def test_bounds_monotone_and_endpoints(n, d):
    X, y = _data(n, d, seed=4)
    taus = np.linspace(0, np.sqrt(n) * 1.01, 101)
    curve = ra.alignment_curve(X, y, taus)
    total = np.sum(_centred(y) ** 2)
    assert curve[0] == pytest.approx(total)
    assert np.all(curve >= -1e-12) and np.all(curve <= total * (1 + 1e-12))
    assert np.all(np.diff(curve) <= 1e-9 * total)
    assert curve[-1] == 0.0  # no singular value exceeds sqrt(n) after normalisation
    rel = ra.alignment_curve(X, y, taus, relative=True)
    assert np.allclose(rel, curve / total)
    assert ra.alignment(X, y, 0.0) == pytest.approx(total)
    assert ra.alignment(X, y, -1.0) == pytest.approx(total)


def test_sum_of_squared_singular_values_is_n_after_normalisation():
    X, y = _data(250, 30, seed=5)
    spec = ra.spectrum(X, y)
    assert np.sum(spec.singular_values**2) == pytest.approx(250, rel=1e-10)
    assert spec.singular_values[0] <= np.sqrt(250) + 1e-9
    assert spec.mass.sum() + spec.outside == pytest.approx(spec.total)


def test_rotation_invariance_without_bias():
    X, y = _data(200, 15, seed=6)
    Q, _ = np.linalg.qr(RNG.normal(size=(15, 15)))
    taus = ra.threshold_grid(200)
    for normalize in (True, False):
        a = ra.alignment_curve(X, y, taus, bias=False, normalize=normalize)
        b = ra.alignment_curve(X @ Q, y, taus, bias=False, normalize=normalize)
        assert np.allclose(a, b, atol=1e-9 * 200, rtol=0)


def test_row_permutation_invariance():
    X, y = _data(180, 10, seed=7)
    perm = RNG.permutation(180)
    taus = ra.threshold_grid(180)
    assert np.allclose(ra.alignment_curve(X, y, taus), ra.alignment_curve(X[perm], y[perm], taus), atol=1e-9 * 180)


def test_target_on_top_direction_puts_all_mass_at_sigma1():
    X, _ = _data(150, 8, seed=8)
    U, S, _ = np.linalg.svd(preprocess(X), full_matrices=False)
    y = U[:, 0] * 5.0  # the top direction is nearly constant: a target with a large mean, so measured uncentred
    spec = ra.spectrum(X, y, center=False)
    assert spec.mass[0] == pytest.approx(25.0, rel=1e-9)
    assert spec.mass[1:].sum() == pytest.approx(0.0, abs=1e-9)
    assert ra.alignment(X, y, S[0] * (1 - 1e-9), center=False) == pytest.approx(25.0, rel=1e-9)
    assert ra.alignment(X, y, S[0] * (1 + 1e-6), center=False) == pytest.approx(0.0, abs=1e-12)
    # centred, most of it goes: this target scored "aligned" for its mean
    assert ra.spectrum(X, y).total < 0.5 * spec.total


def test_perfect_features_beat_random_ones():
    n = 200
    y = np.where(RNG.random(n) < 0.5, -1.0, 1.0)
    perfect = np.column_stack([y, RNG.normal(scale=0.05, size=(n, 5))])
    random = RNG.normal(size=(n, 6))
    sp, sr = ra.spectrum(perfect, y), ra.spectrum(random, y)
    assert sp.auc() > sr.auc() + 0.2
    taus = ra.threshold_grid(n)
    assert np.all(ra.alignment_curve(perfect, y, taus) >= ra.alignment_curve(random, y, taus) - 1e-9)


def test_multicolumn_targets_sum_over_columns():
    X, Y = _data(220, 14, k=4, kind="multi", seed=9)
    taus = ra.threshold_grid(220)
    total = sum(ra.alignment_curve(X, Y[:, c], taus) for c in range(4))
    assert np.allclose(ra.alignment_curve(X, Y, taus), total, atol=1e-9 * np.sum(Y**2))
    spec = ra.spectrum(X, Y)
    assert spec.mass_columns.shape == (spec.rank, 4)
    assert np.allclose(spec.mass_columns.sum(axis=1), spec.mass)


@pytest.mark.parametrize("method", ["gram", "kernel", "svd"])
def test_rank_deficient_features(method):
    X, y = _data(160, 6, seed=10)
    Xd = np.hstack([X, X[:, :3], np.full((160, 2), 2.5)])  # duplicate and constant columns
    taus = ra.threshold_grid(160)
    ref = _reference_curve(Xd, y, taus)
    got = ra.alignment_curve(Xd, y, taus, method=method)
    assert np.max(np.abs(got - ref)) <= 1e-9 * 160
    assert ra.spectrum(Xd, y, method=method).rank == 7  # 6 independent columns + the bias


def test_accumulator_equals_one_shot_and_merges():
    X, Y = _data(530, 21, k=2, kind="multi", seed=11)
    taus = ra.threshold_grid(530)
    one = ra.alignment_curve(X, Y, taus)
    acc = ra.AlignmentAccumulator()
    for s in range(0, 530, 100):
        acc.update(X[s : s + 100], Y[s : s + 100])
    assert acc.n == 530 and acc.batches == 6
    assert np.allclose(acc.curve(taus), one, atol=1e-9 * np.sum(Y**2))
    a, b = ra.AlignmentAccumulator(), ra.AlignmentAccumulator()
    a.update(X[:200], Y[:200])
    b.update(torch.from_numpy(X[200:]), torch.from_numpy(Y[200:]))
    a.merge(b)
    assert np.allclose(a.curve(taus), one, atol=1e-9 * np.sum(Y**2))
    restored = ra.AlignmentAccumulator.from_state_dict(acc.state_dict())
    restored.update(X[:10], Y[:10])
    acc.update(X[:10], Y[:10])
    assert np.allclose(restored.curve(taus), acc.curve(taus))


def test_accumulator_errors():
    acc = ra.AlignmentAccumulator()
    with pytest.raises(ValueError, match="no data"):
        acc.spectrum()
    acc.update(np.ones((4, 3)), np.ones(4))
    with pytest.raises(ValueError, match="3 feature columns|feature columns"):
        acc.update(np.ones((4, 5)), np.ones(4))
    bad = np.ones((4, 3))
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"batch 1, stream rows 4-7.*row 6"):
        acc.update(bad, np.ones(4))


def test_auc_is_exact_integral_of_relative_curve():
    X, y = _data(300, 20, seed=12)
    spec = ra.spectrum(X, y)
    top = np.sqrt(300)
    taus = np.linspace(0, top, 200_001)[1:]
    numeric = np.mean(spec.curve(taus, relative=True))
    assert spec.auc() == pytest.approx(numeric, abs=1e-4)
    assert 0.0 <= spec.auc() <= 1.0


def test_threshold_grid_follows_the_demo():
    g = ra.threshold_grid(1000)
    assert g.shape == (62,) and g[0] == 0 and g[-1] == pytest.approx(30.0)
    assert ra.threshold_grid(4000)[-1] == pytest.approx(60.0)


# ---------------------------------------------------------------------------------------------- label helpers
def test_label_helpers():
    labels = np.array([3, 7, 7, 3, 7])
    assert ra.binary_targets(labels).tolist() == [-1, 1, 1, -1, 1]
    assert ra.binary_targets(labels, positive=3).tolist() == [1, -1, -1, 1, -1]
    ovr = ra.one_vs_rest_targets(np.array([0, 2, 1, 2]))
    assert ovr.shape == (4, 3) and set(np.unique(ovr)) == {-1.0, 1.0} and np.all((ovr == 1).sum(1) == 1)
    oh = ra.one_hot_targets(np.array(["b", "a", "b"]))
    assert oh.tolist() == [[0, 1], [1, 0], [0, 1]]
    oh = ra.one_hot_targets(np.array([1, 2]), classes=[0, 1, 2])
    assert oh.shape == (2, 3)
    t = ra.binary_targets(torch.tensor([0, 1, 1]))
    assert isinstance(t, torch.Tensor) and t.tolist() == [-1, 1, 1]
    with pytest.raises(ValueError, match="exactly two classes"):
        ra.binary_targets(np.array([0, 1, 2]))
    with pytest.raises(ValueError, match="not in classes"):
        ra.one_hot_targets(np.array([5]), classes=[0, 1])


# ---------------------------------------------------------------------------------------------- bad input
def test_nan_and_inf_are_reported_with_count_and_row():
    X = np.ones((50, 4))
    X[7, 1] = np.nan
    X[30, 2] = np.inf
    with pytest.raises(ValueError, match=r"2 non-finite.*row 7"):
        ra.alignment_curve(X, np.ones(50))
    with pytest.raises(ValueError, match=r"targets.*non-finite.*row 4"):
        ra.alignment_curve(np.ones((10, 2)), np.array([1, 1, 1, 1, np.nan, 1, 1, 1, 1, 1.0]))
    with pytest.raises(ValueError, match="non-finite"):
        ra.alignment_curve(torch.tensor([[1.0, float("inf")]] * 3), torch.ones(3), method="svd")


def test_shape_errors():
    with pytest.raises(ValueError, match="different lengths: 10 rows of features but 9 targets"):
        ra.alignment_curve(np.ones((10, 3)), np.ones(9))
    with pytest.raises(ValueError, match=r"reshape\(len\(features\), -1\)"):
        ra.alignment_curve(np.ones((10, 3, 4, 4)), np.ones(10))
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)"):
        ra.alignment_curve(np.ones(10), np.ones(10))
    with pytest.raises(ValueError, match="empty"):
        ra.alignment_curve(np.ones((0, 3)), np.ones(0))
    with pytest.raises(ValueError, match="targets must be"):
        ra.alignment_curve(np.ones((4, 3)), np.ones((4, 2, 2)))
    with pytest.raises(ValueError, match="unknown method"):
        ra.alignment_curve(np.ones((4, 3)), np.ones(4), method="full")


def test_zero_row_without_bias_is_an_error_and_fine_with_bias():
    X = RNG.normal(size=(20, 3))
    X[5] = 0
    y = RNG.normal(size=20)
    with pytest.raises(ValueError, match=r"all-zero row.*first row 5.*bias=True"):
        ra.alignment_curve(X, y, bias=False)
    assert np.isfinite(ra.alignment_curve(X, y)).all()
    assert np.isfinite(ra.alignment_curve(X, y, bias=False, normalize=False)).all()


def test_non_numeric_input():
    with pytest.raises(ValueError, match="numeric"):
        ra.alignment_curve(np.array([["a", "b"], ["c", "d"]]), np.ones(2))
    with pytest.raises(ValueError, match="numeric"):
        ra.alignment_curve(np.ones((2, 2)), np.array(["x", "y"]))
    with pytest.raises(ValueError, match="numeric"):
        ra.alignment_curve(np.array([[1, None], [2, 3]], dtype=object), np.ones(2))


def test_integer_and_bool_inputs_work():
    Xi = RNG.integers(0, 5, size=(60, 4))
    y = RNG.integers(0, 2, size=60).astype(bool)
    c = ra.alignment_curve(Xi, y)
    ref = _reference_curve(Xi, y.astype(float), ra.threshold_grid(60))
    assert np.allclose(c, ref, atol=1e-9 * 60)


def test_relative_with_zero_targets_is_an_error():
    X = np.ones((5, 2)) + np.arange(5)[:, None]
    with pytest.raises(ValueError, match="all zero"):
        ra.alignment_curve(X, np.zeros(5), relative=True, center=False)
    assert np.all(ra.alignment_curve(X, np.zeros(5), center=False) == 0)


def test_failed_update_leaves_the_accumulator_unchanged(monkeypatch):
    import sys

    import repalign.measure.alignment as _  # noqa: F401  (module object via sys.modules below)

    monkeypatch.setattr(sys.modules["repalign.measure.alignment"], "_CHUNK_ELEMENTS", 50)  # many chunks per batch
    X, y = _data(120, 4, seed=13)
    acc = ra.AlignmentAccumulator()
    acc.update(X[:60], y[:60])
    before = acc.curve(ra.threshold_grid(60))
    bad = X[60:].copy()
    bad[55, 2] = np.inf  # in a late chunk of the batch
    with pytest.raises(ValueError, match="row 115"):
        acc.update(bad, y[60:])
    assert acc.n == 60
    np.testing.assert_array_equal(acc.curve(ra.threshold_grid(60)), before)
    acc.update(X[60:], y[60:])
    ref = ra.alignment_curve(X, y, ra.threshold_grid(120))
    assert np.allclose(acc.curve(ra.threshold_grid(120)), ref, atol=1e-9 * 120)


@pytest.fixture()
def torch_path(monkeypatch):
    """Route CPU tensors through the torch code path that CUDA tensors take (no GPU needed to test its logic)."""
    import sys

    monkeypatch.setattr(sys.modules["repalign.measure.alignment"], "_keeps_torch", lambda t: True)


@pytest.mark.parametrize("method", ["gram", "kernel", "svd"])
@pytest.mark.parametrize("n,d", [(300, 20), (30, 80)])
def test_torch_device_path_matches_numpy_path(torch_path, method, n, d):
    X, Y = _data(n, d, k=2, kind="multi", seed=14)
    taus = ra.threshold_grid(n)
    ref = ra.alignment_curve(X, Y, taus, method=method)
    got = ra.alignment_curve(torch.from_numpy(X.astype(np.float32)), torch.from_numpy(Y), taus, method=method)
    assert np.allclose(got, ref, atol=1e-6 * np.sum(Y**2), rtol=0)  # fp32 input vs fp64 reference
    got64 = ra.alignment_curve(torch.from_numpy(X), torch.from_numpy(Y), taus, method=method)
    assert np.allclose(got64, ref, atol=1e-9 * np.sum(Y**2), rtol=0)
    assert isinstance(preprocess(torch.from_numpy(X)), torch.Tensor)


def test_torch_device_path_accumulator_and_errors(torch_path, monkeypatch):
    import sys

    X, y = _data(250, 12, seed=15)
    taus = ra.threshold_grid(250)
    acc = ra.AlignmentAccumulator()
    for s in range(0, 250, 64):
        acc.update(torch.from_numpy(X[s : s + 64]), torch.from_numpy(y[s : s + 64]))
    assert acc.device is not None and acc._state is not None and not acc._state.cpu
    assert np.allclose(acc.curve(taus), ra.alignment_curve(X, y, taus), atol=1e-9 * 250)
    other = ra.AlignmentAccumulator()
    other.update(X[:10], y[:10])  # a NumPy accumulator merged into a torch one
    acc.merge(other)
    ref = ra.alignment_curve(np.vstack([X, X[:10]]), np.concatenate([y, y[:10]]), taus)
    assert np.allclose(acc.curve(taus), ref, atol=1e-9 * 260)
    restored = ra.AlignmentAccumulator.from_state_dict(acc.state_dict())
    assert np.allclose(restored.curve(taus), ref, atol=1e-9 * 260)
    monkeypatch.setattr(sys.modules["repalign.measure.alignment"], "_CHUNK_ELEMENTS", 40)
    bad = torch.from_numpy(X[:50].copy())
    bad[33, 1] = float("nan")
    before = acc.curve(taus)
    with pytest.raises(ValueError, match="row 293"):
        acc.update(bad, torch.from_numpy(y[:50]))
    np.testing.assert_array_equal(acc.curve(taus), before)
    Z = torch.zeros((5, 3), dtype=torch.float64)
    with pytest.raises(ValueError, match="all-zero"):
        ra.alignment_curve(Z, torch.ones(5), bias=False)


def test_import_does_not_load_torch():
    import subprocess
    import sys

    code = "import sys, repalign, numpy as np; repalign.alignment_curve(np.eye(3), np.arange(3)); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("method", ["gram", "kernel", "svd"])
@pytest.mark.parametrize("k", [1, 3])
def test_inputs_are_not_modified(method, k):
    """The eigen-step works in place on its own copies only: the caller's features and targets survive."""
    X, y = _data(40, 60 if method == "kernel" else 12, seed=21)
    Y = np.asfortranarray(np.column_stack([y] * k)) if k > 1 else y[:, None]
    X0, Y0 = X.copy(), Y.copy()
    first = ra.alignment_curve(X, Y, [0.0, 1.0, 3.0], method=method)
    second = ra.alignment_curve(X, Y, [0.0, 1.0, 3.0], method=method)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(Y, Y0)
    np.testing.assert_array_equal(first, second)


def test_eigen_step_matches_full_eigendecomposition():
    """_eig_coefficients (tridiagonalise, rotate P, divide and conquer) equals eigh's V^T P, ties included."""
    from repalign.measure.alignment import _eig_coefficients

    rng = np.random.default_rng(3)
    A = rng.normal(size=(300, 90))
    A[:, 10] = A[:, 11]  # a zero eigenvalue
    for M in (A.T @ A, np.diag(np.repeat([5.0, 2.0, 1.0], 30))):  # the second: triple-degenerate clusters
        P = rng.normal(size=(90, 4))
        lam, C = _eig_coefficients(M, P)
        lam_ref, V = np.linalg.eigh(M)
        np.testing.assert_allclose(lam, lam_ref, atol=1e-10 * lam_ref[-1])
        # per-eigenvalue-cluster mass is basis independent even where vectors are not
        for value in np.unique(np.round(lam_ref, 6)):
            sel = np.abs(lam_ref - value) < 1e-6 * max(1.0, abs(value))
            np.testing.assert_allclose(
                np.square(C[sel]).sum(0), np.square(V[:, sel].T @ P).sum(0), rtol=1e-9, atol=1e-9
            )


# ---------------------------------------------------------------------------------------------- centring
def _stream(X, Y, batch, **kw):
    acc = ra.AlignmentAccumulator(**kw)
    for s in range(0, len(X), batch):
        acc.update(X[s : s + batch], Y[s : s + batch])
    return acc


@pytest.mark.parametrize("k", [None, 3])
def test_shifting_targets_by_a_constant_leaves_the_centred_curve_unchanged(k):
    X, Y = _data(260, 18, k=k, kind="multi" if k else "regression", seed=30)
    shift = 1000.0 if k is None else np.array([1000.0, -3.5, 1e6])
    taus = np.concatenate([ra.threshold_grid(260), ra.spectrum(X, Y).singular_values * (1 - 1e-9)])
    scale = np.sum(_centred(Y) ** 2)
    ref = ra.alignment_curve(X, Y, taus, method="svd")
    for Z in (Y, Y + shift):
        for method in ("gram", "kernel", "svd"):
            np.testing.assert_allclose(ra.alignment_curve(X, Z, taus, method=method), ref, rtol=0, atol=1e-11 * scale)
        for batch in (7, 100):
            np.testing.assert_allclose(_stream(X, Z, batch).curve(taus), ref, rtol=0, atol=1e-11 * scale)
    # uncentred, the shift changes everything
    assert ra.alignment(X, Y + shift, 1.0, center=False) > 10 * ra.alignment(X, Y, 1.0, center=False)


def test_centred_equals_uncentred_on_manually_centred_targets():
    X, Y = _data(300, 25, k=4, kind="multi", seed=31)
    Y = Y + np.array([5.0, -2.0, 0.0, 40.0])
    for method in ("gram", "kernel", "svd"):
        a = ra.spectrum(X, Y, method=method)
        b = ra.spectrum(X, _centred(Y), method=method, center=False)
        assert a.centered and not b.centered and a.options["center"] and not b.options["center"]
        np.testing.assert_allclose(a.singular_values, b.singular_values, rtol=1e-12)
        np.testing.assert_allclose(a.mass_columns, b.mass_columns, rtol=0, atol=1e-11 * b.total)
        assert a.total == pytest.approx(b.total, rel=1e-13)


def test_center_false_is_the_uncentred_measure():
    """center=False: the targets as given, the library's convention before centring (to the reference's rounding)."""
    X, y = _data(200, 15, kind="regression", seed=32)
    y = y + 7.0
    taus = ra.threshold_grid(200)
    ref = _reference_curve(X, y, taus, center=False)
    for method in ("gram", "kernel", "svd"):
        got = ra.alignment_curve(X, y, taus, center=False, method=method)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10 * np.sum(y**2))
    np.testing.assert_allclose(_stream(X, y, 33, center=False).curve(taus), ref, rtol=0, atol=1e-10 * np.sum(y**2))
    assert ra.spectrum(X, y, center=False).total == pytest.approx(np.sum(y**2), rel=1e-14)


def test_balanced_pairs_are_unchanged_by_centring():
    X, _ = _data(400, 20, seed=33)
    y = np.where(np.arange(400) % 2 == 0, 1.0, -1.0)  # balanced ±1 (the demo's pairs): already centred
    taus = ra.threshold_grid(400)
    for method in ("gram", "kernel", "svd"):
        np.testing.assert_allclose(
            ra.alignment_curve(X, y, taus, method=method),
            ra.alignment_curve(X, y, taus, method=method, center=False),
            rtol=0,
            atol=1e-12 * 400,
        )


def test_one_vs_rest_targets_are_mostly_mean_uncentred():
    """The issue's figure: an uncentred 10-class one-vs-rest ±1 target puts 64 % of ‖Y‖² on its mean."""
    labels = np.repeat(np.arange(10), 30)
    Y = ra.one_vs_rest_targets(labels)
    assert 1 - np.sum(_centred(Y) ** 2) / np.sum(Y**2) == pytest.approx(0.64)
    X = RNG.normal(size=(300, 12))
    assert ra.spectrum(X, Y).total == pytest.approx(np.sum(_centred(Y) ** 2))


@pytest.mark.parametrize(
    "offset,spread",
    [(185.0, 80.0), (1e6, 1.0), (1e9, 1.0)],  # raw regression targets (diabetes: 25-346), then mean-dominated
)
def test_centring_is_accurate_when_the_mean_dominates(offset, spread):
    """Streamed (any batch size, sorted order, merged) and one-shot centring against a direct fp64 computation."""
    rng = np.random.default_rng(34)
    X = rng.normal(size=(1500, 30)) @ rng.normal(size=(30, 30)) / 5 + 0.3
    z = X @ rng.normal(size=30)
    y = offset + spread * z / z.std()
    if offset == 185.0:
        y = np.clip(np.round(y), 25, 346)  # integer targets on [25, 346], like the diabetes data
    Yc = _centred(y)
    P = preprocess(X)
    U, S, _ = np.linalg.svd(P, full_matrices=False)
    mass_ref, total_ref = ((U.T @ Yc) ** 2).sum(axis=1), float(np.sum(Yc**2))
    taus = np.concatenate([[0.0], S * (1 - 1e-9)])
    ref = np.array([total_ref] + [mass_ref[S >= t].sum() for t in taus[1:]])
    order = np.argsort(y)
    half = ra.AlignmentAccumulator().update(X[:700], y[:700])
    half.merge(_stream(X[700:], y[700:], 50))
    candidates = {
        "gram": ra.spectrum(X, y),
        "kernel": ra.spectrum(X, y, method="kernel"),
        "svd": ra.spectrum(X, y, method="svd"),
        "stream 7": _stream(X, y, 7).spectrum(),
        "stream sorted": _stream(X[order], y[order], 128).spectrum(),
        "merged": half.spectrum(),
    }
    for name, spec in candidates.items():
        assert spec.total == pytest.approx(total_ref, rel=1e-13), name
        assert np.max(np.abs(spec.curve(taus) - ref)) <= 1e-12 * total_ref, name


def test_constant_targets_raise_when_centred():
    X = RNG.normal(size=(40, 5))
    for method in ("gram", "kernel", "svd"):
        for y in (np.full(40, 3.7), np.zeros(40), np.full((40, 2), 0.1)):
            with pytest.raises(ValueError, match="constant.*no alignment to measure"):
                ra.spectrum(X, y, method=method)
        assert ra.alignment(X, np.full(40, 3.7), 0.0, center=False, method=method) == pytest.approx(40 * 3.7**2)
    acc = ra.AlignmentAccumulator().update(X[:20], np.full(20, 0.3)).update(X[20:], np.full(20, 0.3))
    with pytest.raises(ValueError, match="constant"):
        acc.spectrum()
    # one constant column among others contributes exactly nothing (not rounding noise)
    Y = np.column_stack([RNG.normal(size=40), np.full(40, 0.1)])
    for spec in (ra.spectrum(X, Y), ra.spectrum(X, Y, method="svd"), _stream(X, Y, 9).spectrum()):
        assert np.all(spec.mass_columns[:, 1] == 0.0)
        assert spec.total == pytest.approx(np.sum(_centred(Y[:, 0]) ** 2), rel=1e-13)


def test_centred_accumulator_state_merge_and_rollback(monkeypatch):
    import sys

    X, Y = _data(300, 9, k=2, kind="multi", seed=35)
    Y = Y + np.array([50.0, -3.0])
    taus = ra.threshold_grid(300)
    one = ra.alignment_curve(X, Y, taus)
    acc = _stream(X[:180], Y[:180], 40)
    restored = ra.AlignmentAccumulator.from_state_dict(acc.state_dict())
    assert restored.center
    for a in (acc, restored):
        a.update(X[180:], Y[180:])
        np.testing.assert_allclose(a.curve(taus), one, rtol=0, atol=1e-11 * np.sum(_centred(Y) ** 2))
    state = acc.state_dict()
    assert state["center"] and state["s"].shape == (10,) and state["mean"].shape == (2,)
    # an accumulator saved before centring existed: uncentred sums, restored as center=False
    old = _stream(X, Y, 100, center=False).state_dict()
    for key in ("center", "s", "r", "mean", "ymin", "ymax"):
        old.pop(key, None)
    legacy = ra.AlignmentAccumulator.from_state_dict(old)
    assert not legacy.center and not legacy.spectrum().centered
    np.testing.assert_allclose(legacy.curve(taus), ra.alignment_curve(X, Y, taus, center=False), rtol=1e-12)
    broken = dict(state)
    del broken["s"]
    with pytest.raises(ValueError, match="lacks s"):
        ra.AlignmentAccumulator.from_state_dict(broken)
    with pytest.raises(ValueError, match="different"):
        acc.merge(_stream(X, Y, 100, center=False))
    # a batch failing validation part-way leaves the centred state (mean, sums) exactly as it was
    monkeypatch.setattr(sys.modules["repalign.measure.alignment"], "_CHUNK_ELEMENTS", 50)
    before = acc.state_dict()
    bad = X[:60].copy()
    bad[50, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        acc.update(bad, Y[:60] + 100.0)
    after = acc.state_dict()
    for key, value in before.items():
        np.testing.assert_array_equal(after[key], value)


def test_torch_device_path_centres_like_numpy(torch_path):
    X, Y = _data(200, 14, k=2, kind="multi", seed=36)
    Y = Y + np.array([1e4, 2.0])
    taus = ra.threshold_grid(200)
    ref = ra.alignment_curve(X, Y, taus)
    scale = np.sum(_centred(Y) ** 2)
    for method in ("gram", "kernel", "svd"):
        got = ra.alignment_curve(torch.from_numpy(X), torch.from_numpy(Y), taus, method=method)
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-11 * scale)
    acc = _stream(torch.from_numpy(X[:120]), torch.from_numpy(Y[:120]), 25)
    acc.merge(_stream(X[120:], Y[120:], 30))  # a NumPy accumulator into a torch one
    np.testing.assert_allclose(acc.curve(taus), ref, rtol=0, atol=1e-11 * scale)
    restored = ra.AlignmentAccumulator.from_state_dict(acc.state_dict(), device=torch.device("cpu"))
    np.testing.assert_allclose(restored.curve(taus), ref, rtol=0, atol=1e-11 * scale)
    with pytest.raises(ValueError, match="constant"):
        ra.spectrum(torch.from_numpy(X), torch.full((200,), 2.5, dtype=torch.float64))


def test_spectrum_records_centring_and_round_trips():
    X, y = _data(120, 8, kind="regression", seed=37)
    spec = ra.spectrum(X, y)
    assert spec.centered and spec.options == {"bias": True, "normalize": True, "center": True, "method": "gram"}
    again = ra.Spectrum.from_dict(spec.to_dict())
    assert again.centered and again.options == spec.options and again.total == spec.total
    old = spec.to_dict()
    del old["centered"], old["options"]["center"]  # written before centring existed: targets as given
    assert not ra.Spectrum.from_dict(old).centered
    assert not ra.spectrum(X, y, center=False).centered
    assert _stream(X, y, 50).spectrum().options["center"] is True
    text = repr(spec)
    assert "\n" not in text and len(text) < 160
    for part in ("n=120", "d=9", "rank=9", "centered=True", "auc=", "tau_0.9="):
        assert part in text
    assert "auc=n/a" in repr(ra.spectrum(X, np.zeros(120), center=False))


# ---------------------------------------------------------------------------------------------- tau_q
def _tau_on_grid(spec, q, taus):
    ok = spec.curve(taus) >= q * spec.total
    return taus[ok].max() if ok.any() else None


@pytest.mark.parametrize("seed", [40, 41])
def test_tau_q_is_the_largest_threshold_keeping_a_share_q(seed):
    X, Y = _data(300, 20, k=2, kind="multi", seed=seed)
    spec = ra.spectrum(X, Y)
    sig = spec.singular_values
    grid = np.union1d(np.linspace(0, np.sqrt(300), 200_001), np.concatenate([sig, np.nextafter(sig, np.inf)]))
    for q in (0.05, 0.3, 0.5, 0.9, 0.99, 1.0):
        t = spec.tau_q(q)
        assert t == ra.alignment_tau(spec, q)
        assert spec.curve([t])[0] >= q * spec.total
        assert spec.curve([np.nextafter(t, np.inf)])[0] < q * spec.total
        on_grid = _tau_on_grid(spec, q, grid)
        assert on_grid == pytest.approx(t, abs=1e-12)
        assert t == 0.0 or t in sig
    assert spec.tau_q(1.0) == 0.0  # part of Y lies outside the column space (A(0) = ‖Y‖² by definition)
    assert spec.tau_q(0.9) >= spec.tau_q(0.99)
    for bad in (0.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=r"q must be in \(0, 1\]"):
            spec.tau_q(bad)


def test_tau_q_with_tied_singular_values_and_all_mass_inside():
    spec = ra.Spectrum(
        singular_values=np.array([3.0, 2.0, 2.0, 1.0]),
        mass=np.array([1.0, 2.0, 3.0, 4.0]),
        mass_columns=np.array([[1.0], [2.0], [3.0], [4.0]]),
        outside=0.0,
        total=10.0,
        n=9,
        d=4,
    )
    assert spec.tau_q(0.1) == 3.0
    assert spec.tau_q(0.11) == 2.0 and spec.tau_q(0.3) == 2.0 and spec.tau_q(0.6) == 2.0  # one step for the tie
    assert spec.tau_q(0.61) == 1.0 and spec.tau_q(1.0) == 1.0  # nothing outside: A(σ_r) = ‖Y‖²
    with pytest.raises(ValueError, match="all zero"):
        ra.Spectrum(np.array([1.0]), np.zeros(1), np.zeros((1, 1)), 0.0, 0.0, 1, 1).tau_q(0.5)


def test_public_names_are_exported():
    import repalign.measure.alignment  # noqa: F401
    from repalign.measure import targets

    for module in (__import__("sys").modules["repalign.measure.alignment"], targets):
        for name in module.__all__:
            assert getattr(ra, name) is getattr(module, name), name
    assert "alignment_tau" in ra.__all__


# ------------------------------------------------------------------------------------------------ target guardrails
def _binary_problem(n=400, d=15, p_one=0.63, seed=7):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    labels = (rng.random(n) < p_one).astype(np.int64)
    x[:, 0] += labels  # some signal
    return x, labels


def test_centred_zero_one_and_plus_minus_one_labels_give_the_same_relative_curve_without_a_warning():
    """With centring (the default), 0/1 and ±1 labels differ by an affine map: the same AUC, τ_q and relative curve
    (A(τ) itself scales by 4), so no warning is needed there."""
    import warnings

    x, labels = _binary_problem()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = ra.spectrum(x, labels.astype(float))
        b = ra.spectrum(x, ra.binary_targets(labels))
    np.testing.assert_allclose(a.curve(relative=True), b.curve(relative=True), rtol=1e-10, atol=1e-12)
    assert a.auc() == pytest.approx(b.auc(), rel=1e-10)
    assert b.total == pytest.approx(4 * a.total, rel=1e-12)


def test_uncentred_zero_one_labels_warn_loudly_naming_the_option_and_the_numbers_do_not_change():
    import warnings

    from repalign.measure.alignment import TargetWarning

    x, labels = _binary_problem()
    y = labels.astype(float)
    with pytest.warns(TargetWarning, match=r"center=False .*6\d% .*center=True .*0/1 labels: binary_targets") as rec:
        spec = ra.spectrum(x, y, center=False)
    assert rec[0].filename == __file__, "the warning points at the caller's line"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        again = ra.spectrum(x, y, center=False)
    assert np.array_equal(spec.singular_values, again.singular_values) and np.array_equal(spec.mass, again.mass)
    assert spec.auc() > ra.spectrum(x, y).auc() + 0.1, "the mean inflates the uncentred AUC"
    with pytest.warns(TargetWarning) as rec:
        ra.alignment_curve(x, y, center=False)
    assert rec[0].filename == __file__
    acc = ra.AlignmentAccumulator(center=False)
    for i in range(0, len(x), 128):
        acc.update(x[i : i + 128], y[i : i + 128])
    with pytest.warns(TargetWarning, match=r"6\d%"):
        streamed = acc.spectrum()
    np.testing.assert_allclose(streamed.curve(relative=True), spec.curve(relative=True), atol=1e-10)


def test_raw_regression_targets_uncentred_warn_and_standardised_or_balanced_ones_do_not():
    import warnings

    from repalign.measure.alignment import TargetWarning

    rng = np.random.default_rng(3)
    x = rng.normal(size=(300, 10))
    raw = 150 + 75 * np.tanh(x[:, 0]) + 10 * rng.normal(size=300)  # like diabetes' 25-346
    with pytest.warns(TargetWarning, match="mean carries"):
        ra.spectrum(x, raw, center=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ra.spectrum(x, (raw - raw.mean()) / raw.std(), center=False)
        ra.spectrum(x, np.repeat([1.0, -1.0], 150), center=False)  # the demo's balanced pair
        ra.spectrum(x, raw)  # centred: nothing to warn about


def test_spectrum_repr_is_one_line():
    x, labels = _binary_problem(n=100)
    text = repr(ra.spectrum(x, ra.binary_targets(labels)))
    assert "\n" not in text and text.startswith("Spectrum(n=100") and "auc=" in text and len(text) < 200
