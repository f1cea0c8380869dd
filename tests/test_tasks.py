"""repalign.tasks: seeded, balanced label tasks, splits, rescaling and transfer pairs."""

from __future__ import annotations

import numpy as np
import pytest

from repalign import tasks as T
from repalign.data import Dataset, DatasetInfo, load


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
    p = T.binary_pair(ds, 0, 2, n_per_class=8, seed=4)
    assert len(p) == 16 and np.bincount(p.y).tolist() == [8, 8] and p.info.task == "binary"
    assert p.info.classes == ["a", "c"] and set(ds.y[p.meta["row"]]) == {0, 2}
    assert np.array_equal(p.y, (ds.y[p.meta["row"]] == 2).astype(int))  # a -> 0, c -> 1
    same = T.binary_pair(ds, "a", "c", n_per_class=8, seed=4)
    assert np.array_equal(p.x, same.x)
    other = T.binary_pair(ds, 0, 2, n_per_class=8, seed=5)
    assert not np.array_equal(p.meta["row"], other.meta["row"])
    assert np.all(np.diff(p.meta["row"]) > 0)  # original order kept
    assert len(ds) == 60 and ds.info.classes == ["a", "b", "c"]  # input untouched


def test_binary_pair_errors():
    ds = toy()
    with pytest.raises(ValueError, match="has 10 examples, fewer than n_per_class=11"):
        T.binary_pair(ds, 0, 2, n_per_class=11)
    with pytest.raises(ValueError, match="no class 'z'"):
        T.binary_pair(ds, "a", "z", n_per_class=2)
    with pytest.raises(ValueError, match="out of range"):
        T.binary_pair(ds, 0, 7, n_per_class=2)
    with pytest.raises(ValueError, match="two distinct"):
        T.binary_pair(ds, 1, 1, n_per_class=2)
    with pytest.raises(ValueError, match="needs class labels"):
        T.binary_pair(regression(), 0, 1)


def test_binary_pair_on_digits_like_the_demo():
    p = T.binary_pair(load("digits"), 0, 1, n_per_class=100, seed=0)
    assert p.x.shape == (200, 1, 8, 8) and np.bincount(p.y).tolist() == [100, 100]
    yt = T.class_targets(p.y, "binary")
    assert set(np.unique(yt)) == {-1.0, 1.0} and (yt == 1).sum() == 100


def test_class_subset_and_targets():
    ds = toy()
    sub = T.class_subset(ds, ["c", "a", "b"])
    assert len(sub) == 60 and sub.info.classes == ["c", "a", "b"] and sub.y[0] == 1
    raw = T.class_subset(ds, [1, 2], relabel=False)
    assert set(raw.y) == {1, 2} and raw.info.classes == ["a", "b", "c"]
    ovr = T.class_targets(ds.y)
    assert ovr.shape == (60, 3) and set(np.unique(ovr)) == {-1.0, 1.0} and (ovr.sum(1) == -1).all()
    oh = T.class_targets(ds.y, "one_hot")
    assert oh.shape == (60, 3) and (oh.sum(1) == 1).all()
    with pytest.raises(ValueError, match="kind must be"):
        T.class_targets(ds.y, "ordinal")


def test_shuffle_labels():
    ds = toy()
    s = T.shuffle_labels(ds, seed=0)
    assert np.array_equal(np.bincount(s.y), np.bincount(ds.y)) and np.array_equal(s.x, ds.x)
    assert (s.y != ds.y).mean() > 0.3 and np.array_equal(s.meta["true_y"], ds.y)
    assert np.array_equal(s.y, T.shuffle_labels(ds, seed=0).y)
    assert not np.array_equal(s.y, T.shuffle_labels(ds, seed=1).y)
    assert np.array_equal(T.shuffle_labels(ds, fraction=0.0).y, ds.y)
    half = T.shuffle_labels(ds, fraction=0.5, seed=2)
    assert (half.y != ds.y).sum() <= 30
    u = T.shuffle_labels(ds, method="uniform", seed=3)
    assert set(u.y) <= {0, 1, 2} and "shuffled" in u.info.name and "uniform" in u.info.note
    r = T.shuffle_labels(regression(), seed=0)
    assert np.allclose(np.sort(r.y), np.sort(regression().y))
    with pytest.raises(ValueError, match="needs class labels"):
        T.shuffle_labels(regression(), method="uniform")
    with pytest.raises(ValueError, match="fraction"):
        T.shuffle_labels(ds, fraction=1.5)
    with pytest.raises(ValueError, match="method must be"):
        T.shuffle_labels(ds, method="flip")


def test_subsample():
    ds = toy()
    s = T.subsample(ds, 12, seed=0)
    assert len(s) == 12 and len(set(s.meta["row"])) == 12 and np.all(np.diff(s.meta["row"]) > 0)
    assert np.array_equal(s.x, T.subsample(ds, 12, seed=0).x)
    st = T.subsample(ds, 12, seed=0, stratify=True)
    assert np.bincount(st.y).tolist() == [6, 4, 2]
    ct = T.subsample(load("ct_like", n=500), 100, seed=0)  # the paper samples 1,000 / 10,000 CT slices
    assert ct.x.shape == (100, 384) and ct.info.n == 100
    for bad in (0, 61):
        with pytest.raises(ValueError, match="n must be in 1..60"):
            T.subsample(ds, bad)
    with pytest.raises(ValueError, match="cannot stratify"):
        T.subsample(regression(), 5, stratify=True)


def test_train_test_split():
    ds = toy()
    tr, te = T.train_test_split(ds, 0.2, seed=0)
    assert len(tr) == 48 and len(te) == 12
    assert sorted(np.r_[tr.meta["row"], te.meta["row"]].tolist()) == list(range(60))  # disjoint, complete
    assert np.bincount(te.y).tolist() == [6, 4, 2]  # stratified by default
    tr2, te2 = T.train_test_split(ds, 0.2, seed=0)
    assert np.array_equal(te.x, te2.x)
    _, te3 = T.train_test_split(ds, 7, seed=1)
    assert len(te3) == 7
    r_tr, r_te = T.train_test_split(regression(), 0.3)
    assert len(r_tr) == 35 and len(r_te) == 15
    for bad in (0.0, 60, 0.999):
        with pytest.raises(ValueError, match="leaves no train or no test"):
            T.train_test_split(ds, bad)


def test_rescale_targets():
    y = regression().y
    m = T.rescale_targets(y)
    assert m.min() == -1.0 and m.max() == 1.0
    s = T.rescale_targets(y, "standardize")
    assert abs(s.mean()) < 1e-12 and abs(s.std() - 1) < 1e-12
    test = np.array([y.min(), y.max(), (y.min() + y.max()) / 2])
    np.testing.assert_allclose(T.rescale_targets(test, reference=y), [-1, 1, 0], atol=1e-12)
    y2 = np.c_[y, 10 * y + 3]
    np.testing.assert_allclose(T.rescale_targets(y2)[:, 1], m)
    with pytest.raises(ValueError, match="constant"):
        T.rescale_targets(np.ones(4))
    with pytest.raises(ValueError, match="constant"):
        T.rescale_targets(np.ones(4), "standardize")
    with pytest.raises(ValueError, match="method must be"):
        T.rescale_targets(y, "log")


# ----------------------------------------------------------------------------------------------------------------
# transfer
# ----------------------------------------------------------------------------------------------------------------
def test_peaks_tasks_by_relatedness():
    groups = T.peaks_tasks_by_relatedness("ABC")
    assert {k: len(v) for k, v in groups.items()} == {0: 6, 1: 54, 2: 54, 3: 5}
    assert (0, 1, 2) not in groups[3] and (2, 1, 0) in groups[3] and (3, 4, 5) in groups[0]


@pytest.mark.parametrize("shared", [0, 1, 2, 3])
def test_peaks_transfer_pair_by_relatedness(shared):
    p = T.peaks_transfer_pair("ABC", shared=shared, n=64, n_test=32, seed=2)
    assert p.relatedness == shared and p.meta["source_task"] == (0, 1, 2)
    assert p.source.y.shape == (64,) and p.target.y.shape == (64,) and len(p.target_test) == 32
    assert not np.array_equal(p.source.x, p.target.x) and not np.array_equal(p.target.x, p.target_test.x)
    assert p.target.info.extra["task"] == p.meta["target_task"] != (0, 1, 2)
    assert "->" in p.description
    again = T.peaks_transfer_pair("ABC", shared=shared, n=64, n_test=32, seed=2)
    assert again.meta["target_task"] == p.meta["target_task"] and np.array_equal(again.target.y, p.target.y)


def test_peaks_transfer_pair_explicit_and_errors():
    p = T.peaks_transfer_pair(0, "ADC", n=10, n_test=10)
    assert p.relatedness == 2 and p.meta["roles_shared"] == 2
    with pytest.raises(ValueError, match="needs target"):
        T.peaks_transfer_pair(0)
    with pytest.raises(ValueError, match="shared must be 0..3"):
        T.peaks_transfer_pair(0, shared=4)


def test_domain_transfer_pair_digits():
    p = T.domain_transfer_pair("original", "inverted", seed=0)
    assert p.source.info.extra["domain"] == "original" and p.target.info.extra["domain"] == "inverted"
    assert (p.source.y != p.source.meta["true_y"]).mean() > 0.5  # random source labels
    assert np.array_equal(np.bincount(p.source.y), np.bincount(p.source.meta["true_y"]))
    assert abs(len(p.target_test) - 0.3 * (len(p.target) + len(p.target_test))) <= 1
    assert "random labels" in p.description
    none = T.domain_transfer_pair(None, "blurred")
    assert none.source is None and "none" in none.description
    keep = T.domain_transfer_pair("blurred", "original", random_source_labels=False)
    assert "true_y" not in keep.source.meta
    with pytest.raises(ValueError, match="the same"):
        T.domain_transfer_pair("original", "original")
    with pytest.raises(ValueError, match="dataset must be"):
        T.domain_transfer_pair("a", "b", dataset="mnist")


def test_domain_transfer_pair_office31(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for dom in ("amazon", "webcam"):
        for cls in ("mug", "pen"):
            folder = tmp_path / "office31" / dom / cls
            folder.mkdir(parents=True)
            for i in range(5):
                Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)).save(folder / f"{i}.jpg")
    p = T.domain_transfer_pair("amazon", "webcam", dataset="office31", root=tmp_path, image_size=4, test_size=0.4)
    assert p.source.x.shape == (10, 3, 4, 4) and len(p.target) == 6 and len(p.target_test) == 4
    assert sorted(set(p.target_test.y)) == [17, 19]  # stratified: both classes in test


def test_imagenet_cifar_pair(monkeypatch):
    calls = []

    def fake_load(name, split="train", root=None, **kw):
        calls.append((name, split, kw.get("subset")))
        info = DatasetInfo(name, "fake", 2, (3,), ["a", "b"], "binary", "MIT")
        return Dataset(np.zeros((2, 3), np.float32), np.array([0, 1]), info)

    monkeypatch.setattr(T, "load", fake_load)
    p = T.imagenet_cifar_pair("artificial", "natural", max_per_class=5)
    assert calls == [("imagenet", "train", "artificial"), ("cifar10", "train", "natural"),
                     ("cifar10", "test", "natural")]  # fmt: skip
    assert p.relatedness == 0.0 and p.description == "ImageNet-artificial -> CIFAR10-natural"
    assert T.imagenet_cifar_pair("natural", "natural").relatedness == 1.0
    with pytest.raises(ValueError, match="'natural' or 'artificial'"):
        T.imagenet_cifar_pair("animals", "natural")
