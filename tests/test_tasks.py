"""repalign.data: seeded, balanced label tasks, splits, rescaling, input transformations, peaks, transfer pairs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from repalign import data
from repalign.data.base import Dataset, DatasetInfo, load
from repalign.measure.alignment import spectrum
from repalign.measure.targets import binary_targets


def toy(n_per_class=(30, 20, 10), d=3) -> Dataset:
    """A small classification set with unequal classes; x[:, 0] is the row number (to trace rows)."""
    y = np.concatenate([np.full(k, c) for c, k in enumerate(n_per_class)]).astype(np.int64)
    x = np.c_[np.arange(len(y)), np.random.default_rng(0).random((len(y), d - 1))].astype(np.float32)
    info = DatasetInfo("toy", "test", len(y), (d,), ["a", "b", "c"][: len(n_per_class)], "multiclass", "MIT")
    return Dataset(x, y, info, {"row": np.arange(len(y))})


def regression(n=50) -> Dataset:
    rng = np.random.default_rng(1)
    info = DatasetInfo("reg", "test", n, (2,), [], "regression", "MIT")
    return Dataset(rng.random((n, 2)).astype(np.float32), rng.normal(5, 3, n), info)


# ----------------------------------------------------------------------------------------------------------------
def test_binary_pair_balanced_and_seeded():
    ds = toy()
    p = data.binary_pair(ds, 0, 2, n_per_class=8, seed=4)
    assert len(p) == 16 and np.bincount(p.y).tolist() == [8, 8] and p.info.task == "binary"
    assert p.info.classes == ["a", "c"] and set(ds.y[p.meta["row"]]) == {0, 2}
    assert np.array_equal(p.y, (ds.y[p.meta["row"]] == 2).astype(int))  # a -> 0, c -> 1
    same = data.binary_pair(ds, "a", "c", n_per_class=8, seed=4)
    assert np.array_equal(p.x, same.x)
    other = data.binary_pair(ds, 0, 2, n_per_class=8, seed=5)
    assert not np.array_equal(p.meta["row"], other.meta["row"])
    assert np.all(np.diff(p.meta["row"]) > 0)  # original order kept
    assert len(ds) == 60 and ds.info.classes == ["a", "b", "c"]  # input untouched


def test_binary_pair_errors():
    ds = toy()
    with pytest.raises(ValueError, match="has 10 examples, fewer than n_per_class=11"):
        data.binary_pair(ds, 0, 2, n_per_class=11)
    with pytest.raises(ValueError, match="no class 'z'"):
        data.binary_pair(ds, "a", "z", n_per_class=2)
    with pytest.raises(ValueError, match="out of range"):
        data.binary_pair(ds, 0, 7, n_per_class=2)
    with pytest.raises(ValueError, match="two distinct"):
        data.binary_pair(ds, 1, 1, n_per_class=2)
    with pytest.raises(ValueError, match="needs class labels"):
        data.binary_pair(regression(), 0, 1)


def test_binary_pair_on_digits_like_the_demo():
    p = data.binary_pair(load("digits"), 0, 1, n_per_class=100, seed=0)
    assert p.x.shape == (200, 1, 8, 8) and np.bincount(p.y).tolist() == [100, 100]
    yt = data.class_targets(p.y, "binary")
    assert set(np.unique(yt)) == {-1.0, 1.0} and (yt == 1).sum() == 100


def test_class_subset_and_targets():
    ds = toy()
    sub = data.class_subset(ds, ["c", "a", "b"])
    assert len(sub) == 60 and sub.info.classes == ["c", "a", "b"] and sub.y[0] == 1
    raw = data.class_subset(ds, [1, 2], relabel=False)
    assert set(raw.y) == {1, 2} and raw.info.classes == ["a", "b", "c"]
    ovr = data.class_targets(ds.y)
    assert ovr.shape == (60, 3) and set(np.unique(ovr)) == {-1.0, 1.0} and (ovr.sum(1) == -1).all()
    oh = data.class_targets(ds.y, "one_hot")
    assert oh.shape == (60, 3) and (oh.sum(1) == 1).all()
    with pytest.raises(ValueError, match="kind must be"):
        data.class_targets(ds.y, "ordinal")


def test_shuffle_labels():
    ds = toy()
    s = data.shuffle_labels(ds, seed=0)
    assert np.array_equal(np.bincount(s.y), np.bincount(ds.y)) and np.array_equal(s.x, ds.x)
    assert (s.y != ds.y).mean() > 0.3 and np.array_equal(s.meta["true_y"], ds.y)
    assert np.array_equal(s.y, data.shuffle_labels(ds, seed=0).y)
    assert not np.array_equal(s.y, data.shuffle_labels(ds, seed=1).y)
    assert np.array_equal(data.shuffle_labels(ds, fraction=0.0).y, ds.y)
    half = data.shuffle_labels(ds, fraction=0.5, seed=2)
    assert (half.y != ds.y).sum() <= 30
    u = data.shuffle_labels(ds, method="uniform", seed=3)
    assert set(u.y) <= {0, 1, 2} and "shuffled" in u.info.name and "uniform" in u.info.note
    r = data.shuffle_labels(regression(), seed=0)
    assert np.allclose(np.sort(r.y), np.sort(regression().y))
    with pytest.raises(ValueError, match="needs class labels"):
        data.shuffle_labels(regression(), method="uniform")
    with pytest.raises(ValueError, match="fraction"):
        data.shuffle_labels(ds, fraction=1.5)
    with pytest.raises(ValueError, match="method must be"):
        data.shuffle_labels(ds, method="flip")


def test_subsample():
    ds = toy()
    s = data.subsample(ds, 12, seed=0)
    assert len(s) == 12 and len(set(s.meta["row"])) == 12 and np.all(np.diff(s.meta["row"]) > 0)
    assert np.array_equal(s.x, data.subsample(ds, 12, seed=0).x)
    st = data.subsample(ds, 12, seed=0, stratify=True)
    assert np.bincount(st.y).tolist() == [6, 4, 2]
    ct = data.subsample(load("ct_like", n=500), 100, seed=0)  # the paper samples 1,000 / 10,000 CT slices
    assert ct.x.shape == (100, 384) and ct.info.n == 100
    for bad in (0, 61):
        with pytest.raises(ValueError, match="n must be in 1..60"):
            data.subsample(ds, bad)
    with pytest.raises(ValueError, match="cannot stratify"):
        data.subsample(regression(), 5, stratify=True)


def test_train_test_split():
    ds = toy()
    tr, te = data.train_test_split(ds, 0.2, seed=0)
    assert len(tr) == 48 and len(te) == 12
    assert sorted(np.r_[tr.meta["row"], te.meta["row"]].tolist()) == list(range(60))  # disjoint, complete
    assert np.bincount(te.y).tolist() == [6, 4, 2]  # stratified by default
    tr2, te2 = data.train_test_split(ds, 0.2, seed=0)
    assert np.array_equal(te.x, te2.x)
    _, te3 = data.train_test_split(ds, 7, seed=1)
    assert len(te3) == 7
    r_tr, r_te = data.train_test_split(regression(), 0.3)
    assert len(r_tr) == 35 and len(r_te) == 15
    for bad in (0.0, 60, 0.999):
        with pytest.raises(ValueError, match="leaves no train or no test"):
            data.train_test_split(ds, bad)


def test_rescale_targets():
    y = regression().y
    m = data.rescale_targets(y)
    assert m.min() == -1.0 and m.max() == 1.0
    s = data.rescale_targets(y, "standardize")
    assert abs(s.mean()) < 1e-12 and abs(s.std() - 1) < 1e-12
    test = np.array([y.min(), y.max(), (y.min() + y.max()) / 2])
    np.testing.assert_allclose(data.rescale_targets(test, reference=y), [-1, 1, 0], atol=1e-12)
    y2 = np.c_[y, 10 * y + 3]
    np.testing.assert_allclose(data.rescale_targets(y2)[:, 1], m)
    with pytest.raises(ValueError, match="constant"):
        data.rescale_targets(np.ones(4))
    with pytest.raises(ValueError, match="constant"):
        data.rescale_targets(np.ones(4), "standardize")
    with pytest.raises(ValueError, match="method must be"):
        data.rescale_targets(y, "log")


# ----------------------------------------------------------------------------------------------------------------
# prepare_task (moved from experiments)
# ----------------------------------------------------------------------------------------------------------------
def test_prepare_task_class_pair_is_balanced_binary_and_seeded():
    ds = data.prepare_task("digits", classes=[3, 8], n_per_class=20, seed=1)
    assert ds.info.task == "binary" and len(ds) == 40
    assert np.bincount(ds.y).tolist() == [20, 20]
    again = data.prepare_task("digits", classes=[3, 8], n_per_class=20, seed=1)
    other = data.prepare_task("digits", classes=[3, 8], n_per_class=20, seed=2)
    assert np.array_equal(ds.x, again.x) and not np.array_equal(ds.x, other.x)
    assert "20 per class (seed 1)" in ds.info.describe()


def test_prepare_task_regression_targets_standardised_and_subsampled():
    ds = data.prepare_task("diabetes", n=100, seed=0)
    assert ds.info.task == "regression" and len(ds) == 100
    assert abs(ds.y.mean()) < 1e-12 and abs(ds.y.std() - 1) < 1e-12
    mm = data.prepare_task("diabetes", n=100, seed=0, target_scaling="minmax")
    assert mm.y.min() == -1 and mm.y.max() == 1
    raw = data.prepare_task("diabetes", n=100, seed=0, target_scaling=None)
    assert np.array_equal(np.argsort(raw.y), np.argsort(ds.y))  # a monotone rescaling of the same rows


def test_prepare_task_loader_options_and_stratified_subsample():
    assert len(data.prepare_task("ct_like", load_kw={"n": 60})) == 60
    ds = data.prepare_task("digits", n=200, seed=0)
    assert ds.info.task == "multiclass" and len(ds) == 200
    assert np.bincount(ds.y).min() >= 19  # stratified: about 20 of each digit
    norm = data.prepare_task("digits", classes=[3, 8], n_per_class=5, demo_normalize=True)
    plain = data.prepare_task("digits", classes=[3, 8], n_per_class=5)
    assert np.allclose(norm.x, 2 * plain.x - 1) and norm.x.min() == -1
    assert norm.info.selection == plain.info.selection  # the pixel mapping is not a selection
    tab = data.prepare_task("diabetes", n=20, demo_normalize=True)
    assert np.array_equal(tab.x, data.prepare_task("diabetes", n=20).x)  # tabular inputs untouched
    with pytest.raises(ValueError, match="n_per_class needs classes"):
        data.prepare_task("digits", n_per_class=5)


def test_prepare_task_on_embedded_real_data():
    m = data.prepare_task("mnist_embedded", classes=[3, 8], n_per_class=50, seed=0)
    assert m.x.shape == (100, 1, 28, 28) and m.info.task == "binary" and m.info.coverage == "embedded subset"
    assert m.info.describe().startswith("MNIST: real, embedded subset (100 of 70,000 images")
    assert "classes ['3', '8'], 50 per class (seed 0): 100 of 10,000 rows" in m.info.describe()
    c = data.prepare_task("chicago_ridership", n=300, seed=0)
    assert c.x.shape == (300, 52) and abs(c.y.mean()) < 1e-12 and c.info.coverage == "subset"


# ----------------------------------------------------------------------------------------------------------------
# whiten_inputs (moved from experiments) and misalign_inputs
# ----------------------------------------------------------------------------------------------------------------
def test_whiten_inputs_unit_variance_on_kept_directions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)) @ np.diag([10, 5, 1, 0.5, 0.1, 0.0])  # last column constant
    w32 = data.whiten_inputs(x)
    assert w32.shape == (50, 6) and w32.dtype == np.float32
    w = w32.astype(np.float64)
    assert np.allclose(w.mean(axis=0), 0, atol=1e-5)
    eig = np.linalg.eigvalsh(w.T @ w / len(w))
    assert np.allclose(np.sort(eig)[-5:], 1, atol=1e-4) and abs(eig.min()) < 1e-4  # 5 kept directions, 1 dropped


def test_whiten_inputs_invariant_to_invertible_linear_maps():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5))
    a = rng.normal(size=(5, 5)) + 3 * np.eye(5)  # invertible
    g1 = data.whiten_inputs(x).astype(np.float64)
    g2 = data.whiten_inputs(x @ a).astype(np.float64)
    assert np.allclose(g1 @ g1.T, g2 @ g2.T, atol=1e-3)  # W Wᵀ = n U_K U_Kᵀ: only the column space matters


def test_whiten_inputs_flattens_images_and_lowers_alignment_of_aligned_inputs():
    rng = np.random.default_rng(2)
    y = np.sign(rng.normal(size=200))
    x = np.c_[5 * y, rng.normal(size=(200, 30))]  # the label lies on the top direction
    x_img = x.reshape(200, 1, 1, 31)
    w = data.whiten_inputs(x_img)
    assert w.shape == (200, 31)
    assert spectrum(w, y).auc() < spectrum(x, y).auc()
    with pytest.raises(ValueError):
        data.whiten_inputs(np.ones((5, 3)))


def _aligned(seed=3, n=300, d=20):
    """Inputs whose top direction carries the labels, with a spread of singular values."""
    rng = np.random.default_rng(seed)
    y = np.sign(rng.normal(size=n))
    x = np.c_[4 * y + 0.3 * rng.normal(size=n), rng.normal(size=(n, d - 1)) * np.linspace(2, 0.1, d - 1)]
    return x + 3.0, y  # an offset: the mean is taken out and put back


def test_misalign_inputs_keeps_singular_values_vectors_and_mean():
    x, y = _aligned()
    m = data.misalign_inputs(x, y)
    assert m.shape == x.shape and m.dtype == np.float32
    xc, mc = x - x.mean(0), m.astype(np.float64) - m.mean(0)
    np.testing.assert_allclose(m.mean(0), x.mean(0), atol=1e-5)
    s, s_new = np.linalg.svd(xc, compute_uv=False), np.linalg.svd(mc, compute_uv=False)
    np.testing.assert_allclose(np.sort(s_new), np.sort(s), rtol=1e-5)  # a permutation of the singular values
    proj = np.linalg.lstsq(xc, mc, rcond=None)[0]
    np.testing.assert_allclose(xc @ proj, mc, atol=1e-4)  # same column space: a linear model fits the same
    img = data.misalign_inputs(x.reshape(300, 1, 4, 5), y)
    assert img.shape == (300, 1, 4, 5) and np.allclose(img.reshape(300, 20), m, atol=1e-5)


def test_misalign_inputs_is_the_least_aligned_permutation_at_every_threshold():
    """Raw measure of the centred input: the curve falls to the pointwise minimum over all permutations."""
    x, y = _aligned(d=6)
    yc = y - y.mean()
    xc = x - x.mean(0)
    m = data.misalign_inputs(x, y).astype(np.float64)
    raw = {"bias": False, "normalize": False}
    before, after = spectrum(xc, yc, **raw), spectrum(m - m.mean(0), yc, **raw)
    taus = np.linspace(0, before.singular_values.max() * 1.01, 50)
    curve_before, curve_after = before.curve(taus), after.curve(taus)
    assert np.all(curve_after <= curve_before + 1e-6) and curve_after[1:-1].sum() < 0.2 * curve_before[1:-1].sum()
    u, s, vt = np.linalg.svd(xc, full_matrices=False)
    mass = (u.T @ yc) ** 2
    for perm in itertools.permutations(range(6)):  # every way of reassigning the singular values
        other = spectrum((u * s[list(perm)]) @ vt, yc, **raw).curve(taus)
        assert np.all(curve_after <= other + 1e-6)
    assert np.isclose(after.total, before.total) and np.isclose(mass.sum() + before.outside, yc @ yc)


def test_misalign_inputs_lowers_the_default_auc():
    x, y = _aligned()
    assert spectrum(data.misalign_inputs(x, y), y).auc() < 0.2 * spectrum(x, y).auc()
    # real data: embedded MNIST 3 vs 8 (the default measure: bias column, unit rows)
    ds = data.prepare_task("mnist_embedded", classes=[3, 8], n_per_class=100, seed=0)
    yb = binary_targets(ds.y)
    flat = ds.x.reshape(len(ds), -1)
    before, after = spectrum(flat, yb).auc(), spectrum(data.misalign_inputs(flat, yb), yb).auc()
    assert after < 0.1 * before and after < spectrum(data.whiten_inputs(flat), yb).auc()
    # multi-column targets (one-vs-rest) and a regression target
    reg = data.prepare_task("chicago_ridership", n=300, seed=1)
    assert spectrum(data.misalign_inputs(reg.x, reg.y), reg.y).auc() < 0.2 * spectrum(reg.x, reg.y).auc()
    yk = data.class_targets(data.prepare_task("digits", n=300).y)
    dx = data.prepare_task("digits", n=300).x.reshape(300, -1)
    assert spectrum(data.misalign_inputs(dx, yk), yk).auc() < 0.5 * spectrum(dx, yk).auc()


def test_misalign_inputs_errors():
    x, y = _aligned()
    with pytest.raises(ValueError, match="multi-class labels"):
        data.misalign_inputs(x, np.arange(300) % 3)
    with pytest.raises(ValueError, match="x has 300 rows but y has 5"):
        data.misalign_inputs(x, y[:5])
    with pytest.raises(ValueError, match="not all equal"):
        data.misalign_inputs(np.ones((5, 3)), np.ones(5))
    with pytest.raises(ValueError, match="NaN or inf"):
        data.misalign_inputs(np.full((4, 2), np.nan), np.ones(4))
    with pytest.raises(ValueError, match="n >= 2"):
        data.misalign_inputs(np.ones(4), np.ones(4))
    assert data.misalign_inputs(x, (y > 0).astype(int)).shape == x.shape  # 0/1 labels are fine (two values)


# ----------------------------------------------------------------------------------------------------------------
# peaks tasks (Caruana 1997)
# ----------------------------------------------------------------------------------------------------------------
def test_peaks_tasks_are_all_120_in_the_spec_order():
    tasks = data.peaks_tasks()
    assert len(tasks) == 120 == len(set(tasks))
    assert all(len(set(t)) == 3 and all(0 <= v < 6 for v in t) for t in tasks)
    letters = ["".join(data.PEAKS_VARIABLES[i] for i in t) for t in tasks]
    assert letters == ["".join(p) for p in itertools.permutations("ABCDEF", 3)]
    assert (
        data.peaks_task_id("ABC") == "P001" and data.peaks_task_id("FED") == "P120" and data.peaks_task_id(41) == "P042"
    )
    assert (
        data.peaks_task("P001") == (0, 1, 2)
        and data.peaks_task("P120") == (5, 4, 3)
        and data.peaks_task("p042") == tasks[41]
    )


def test_peaks_targets_match_definition():
    x = np.random.default_rng(0).random((50, 6))
    y = data.peaks_targets(x)
    assert y.shape == (50, 120)
    for j, (a, b, c) in enumerate(data.peaks_tasks()):
        for i in range(50):
            assert y[i, j] == (x[i, b] if x[i, a] > 0.5 else x[i, c])
    assert np.array_equal(data.peaks_targets(x, 7), y[:, 7])
    with pytest.raises(ValueError, match=r"must be \(n, 6\)"):
        data.peaks_targets(np.ones((3, 5)))


def test_peaks_task_specs():
    assert (
        data.peaks_task(0) == data.peaks_task("ABC") == data.peaks_task((0, 1, 2)) == data.peaks_task(["a", "b", "c"])
    )
    assert data.peaks_task("FAD") == (5, 0, 3)
    assert data.peaks_task_name((0, 3, 2)) == "IF A > 0.5 THEN D ELSE C"
    for bad in [120, -1, "AAB", "ABG", (0, 1), (0, 1, 6), "P000", "P121"]:
        with pytest.raises(ValueError):
            data.peaks_task(bad)


def test_peaks_relatedness():
    assert data.peaks_relatedness("ABC", "ABC") == 3 and data.peaks_relatedness("ABC", "CBA") == 3
    assert data.peaks_relatedness("ABC", "DEF") == 0 and data.peaks_relatedness("ABC", "AEF") == 1
    assert data.peaks_relatedness("ABC", "ADC", kind="roles") == 2
    counts = np.bincount([data.peaks_relatedness(0, t) for t in data.peaks_tasks()])
    assert counts.tolist() == [6, 54, 54, 6]  # 6 tasks use the same three variables, the source among them
    with pytest.raises(ValueError, match="kind"):
        data.peaks_relatedness(0, 1, kind="x")


# ----------------------------------------------------------------------------------------------------------------
# transfer
# ----------------------------------------------------------------------------------------------------------------
def test_peaks_tasks_by_relatedness():
    groups = data.peaks_tasks_by_relatedness("ABC")
    assert {k: len(v) for k, v in groups.items()} == {0: 6, 1: 54, 2: 54, 3: 5}
    assert (0, 1, 2) not in groups[3] and (2, 1, 0) in groups[3] and (3, 4, 5) in groups[0]


@pytest.mark.parametrize("shared", [0, 1, 2, 3])
def test_peaks_transfer_pair_by_relatedness(shared):
    p = data.peaks_transfer_pair("ABC", shared=shared, n=64, n_test=32, seed=2)
    assert p.relatedness == shared and p.meta["source_task"] == (0, 1, 2)
    assert p.source.y.shape == (64,) and p.target.y.shape == (64,) and len(p.target_test) == 32
    assert not np.array_equal(p.source.x, p.target.x) and not np.array_equal(p.target.x, p.target_test.x)
    assert p.target.info.extra["task"] == p.meta["target_task"] != (0, 1, 2)
    assert "->" in p.description
    again = data.peaks_transfer_pair("ABC", shared=shared, n=64, n_test=32, seed=2)
    assert again.meta["target_task"] == p.meta["target_task"] and np.array_equal(again.target.y, p.target.y)


def test_peaks_transfer_pair_explicit_and_errors():
    p = data.peaks_transfer_pair(0, "ADC", n=10, n_test=10)
    assert p.relatedness == 2 and p.meta["roles_shared"] == 2
    with pytest.raises(ValueError, match="needs target"):
        data.peaks_transfer_pair(0)
    with pytest.raises(ValueError, match="shared must be 0..3"):
        data.peaks_transfer_pair(0, shared=4)


def test_domain_transfer_pair_digits():
    p = data.domain_transfer_pair("original", "inverted", seed=0)
    assert p.source.info.extra["domain"] == "original" and p.target.info.extra["domain"] == "inverted"
    assert (p.source.y != p.source.meta["true_y"]).mean() > 0.5  # random source labels
    assert np.array_equal(np.bincount(p.source.y), np.bincount(p.source.meta["true_y"]))
    assert abs(len(p.target_test) - 0.3 * (len(p.target) + len(p.target_test))) <= 1
    assert "random labels" in p.description
    none = data.domain_transfer_pair(None, "blurred")
    assert none.source is None and "none" in none.description
    keep = data.domain_transfer_pair("blurred", "original", random_source_labels=False)
    assert "true_y" not in keep.source.meta
    with pytest.raises(ValueError, match="the same"):
        data.domain_transfer_pair("original", "original")
    with pytest.raises(ValueError, match="dataset must be"):
        data.domain_transfer_pair("a", "b", dataset="mnist")


def test_domain_transfer_pair_office31(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for dom in ("amazon", "webcam"):
        for cls in ("mug", "pen"):
            folder = tmp_path / "office31" / dom / cls
            folder.mkdir(parents=True)
            for i in range(5):
                Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    p = data.domain_transfer_pair("amazon", "webcam", dataset="office31", root=tmp_path, image_size=4, test_size=0.4)
    assert p.source.x.shape == (10, 3, 4, 4) and len(p.target) == 6 and len(p.target_test) == 4
    assert sorted(set(p.target_test.y)) == [17, 19]  # stratified: both classes in test


def test_imagenet_cifar_pair(monkeypatch):
    calls = []

    def fake_load(name, split="train", root=None, **kw):
        calls.append((name, split, kw.get("subset")))
        info = DatasetInfo(name, "fake", 2, (3,), ["a", "b"], "binary", "MIT")
        return Dataset(np.zeros((2, 3), np.float32), np.array([0, 1]), info)

    monkeypatch.setattr(data.prepare, "load", fake_load)
    p = data.imagenet_cifar_pair("artificial", "natural", max_per_class=5)
    assert calls == [("imagenet", "train", "artificial"), ("cifar10", "train", "natural"),
                     ("cifar10", "test", "natural")]  # fmt: skip
    assert p.relatedness == 0.0 and p.description == "ImageNet-artificial -> CIFAR10-natural"
    assert data.imagenet_cifar_pair("natural", "natural").relatedness == 1.0
    with pytest.raises(ValueError, match="'natural' or 'artificial'"):
        data.imagenet_cifar_pair("animals", "natural")


def test_split_per_class_is_balanced_and_tests_on_every_other_example():
    pair = data.prepare_task("digits", classes=[3, 8], seed=0)  # every 3 and 8
    train, test = data.split_per_class(pair, 40, seed=1)
    assert np.bincount(train.y).tolist() == [40, 40]
    assert len(train) + len(test) == len(pair)
    assert np.bincount(test.y).tolist() == (np.bincount(pair.y) - 40).tolist()
    # disjoint and together every row once
    rows = {r.tobytes() for r in pair.x.reshape(len(pair), -1)}
    tr = {r.tobytes() for r in train.x.reshape(len(train), -1)}
    te = {r.tobytes() for r in test.x.reshape(len(test), -1)}
    assert not tr & te and tr | te == rows
    again, _ = data.split_per_class(pair, 40, seed=1)
    assert np.array_equal(again.x, train.x)
    assert "40 per class to train (seed 1)" in train.info.selection[-1]
    with pytest.raises(ValueError, match="leaves none to test"):
        data.split_per_class(pair, 500)


def test_peaks_relatedness_score():
    assert data.peaks_relatedness("ABC", "ABC", kind="score") == 6
    assert data.peaks_relatedness("P001", "P014", kind="score") == 4  # P014 = A, E, C: two shared, same roles
    assert data.peaks_task("P014") == (0, 4, 2)
    assert data.peaks_relatedness("P001", "P120", kind="score") == 0
    assert data.peaks_relatedness("ABC", "CBA", kind="score") == 4
    scores = [data.peaks_relatedness(0, t, kind="score") for t in data.peaks_tasks()]
    assert max(scores) == 6 and scores.count(6) == 1 and min(scores) == 0


def test_peaks_encode():
    x = np.random.default_rng(0).random((50, 6))
    z = data.peaks_encode(x, units=10)
    assert z.shape == (50, 60) and z.dtype == np.float32
    assert np.array_equal(z[:, 10:20].argmax(axis=1), np.minimum((x[:, 1] * 10).astype(int), 9))  # nearest centre
    assert np.array_equal(data.peaks_encode(x, units=1), x.astype(np.float32))
    with pytest.raises(ValueError):
        data.peaks_encode(x, units=0)
    with pytest.raises(ValueError):
        data.peaks_encode(x[:, :5])


def test_peaks_stratified_targets():
    picks = data.peaks_stratified_targets("ABC", 3, seed=1)
    assert picks == data.peaks_stratified_targets("ABC", 3, seed=1)  # seeded
    shared = [data.peaks_relatedness("ABC", t) for t in picks]
    assert shared == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3] and 0 not in picks  # the source is left out
    assert len(data.peaks_stratified_targets("ABC", 10)) == 6 + 10 + 10 + 5  # small groups are taken whole
