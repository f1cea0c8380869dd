"""Tests for repalign.networks.baselines: shapes, dtypes, seeding, fit-on-train/apply-to-test and image layouts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.spatial.distance import pdist

from repalign.networks import baselines, models


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Smooth random colour images in [0, 1], channels-first (n, 3, 32, 32)."""
    rng = np.random.default_rng(0)
    base = rng.random((24, 3, 8, 8))
    return np.kron(base, np.ones((1, 1, 4, 4))).astype(np.float32)


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    x = load_digits().data.astype(np.float32) / 16.0
    return x[:120], x[120:180]


def test_raw_features(images: np.ndarray) -> None:
    out = baselines.raw_features(images)
    assert out.shape == (24, 3072) and out.dtype == np.float32
    assert np.array_equal(out, images.reshape(24, -1))
    assert baselines.raw_features(torch.from_numpy(images)).shape == (24, 3072)


def test_median_heuristic(digits) -> None:
    train, _ = digits
    assert baselines.median_heuristic(train) == pytest.approx(float(np.median(pdist(train.astype(np.float64)))))
    assert baselines.median_heuristic(train, max_points=50) > 0


def test_rbf_network(digits) -> None:
    train, test = digits
    out = baselines.rbf_features(train, n_centers=10, seed=0)
    assert out.shape == (120, 10) and out.dtype == np.float32
    assert ((out > 0) & (out <= 1)).all()
    assert np.array_equal(out, baselines.rbf_features(train, n_centers=10, seed=0))  # seeded

    net = baselines.RBFNetwork(10, seed=0).fit(train)
    assert net.bandwidth_ == pytest.approx(baselines.median_heuristic(train))
    np.testing.assert_array_equal(net.transform(test), baselines.rbf_features(test, n_centers=10, fit_on=train))
    # a point at a centre has feature 1 there; a given bandwidth is used as is
    np.testing.assert_allclose(net.transform(net.centers_).diagonal(), 1.0, rtol=1e-6)
    wide = baselines.RBFNetwork(10, bandwidth=1e6, seed=0).fit(train)
    assert wide.bandwidth_ == 1e6 and np.allclose(wide.transform(test), 1.0)
    with pytest.raises(ValueError, match="values per example"):
        net.transform(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="fit"):
        baselines.RBFNetwork(3).transform(test)


def test_dictionary_codes(digits) -> None:
    train, test = digits
    out = baselines.dictionary_features(train, n_components=12, alpha=0.5, max_iter=3, seed=0)
    assert out.shape == (120, 12) and out.dtype == np.float32
    assert (out == 0).mean() > 0.2  # sparse codes
    again = baselines.dictionary_features(train, n_components=12, alpha=0.5, max_iter=3, seed=0)
    np.testing.assert_array_equal(out, again)
    model = baselines.SparseDictionary(12, 0.5, max_iter=3, seed=0).fit(train)
    assert model.components_.shape == (12, 64)
    np.testing.assert_array_equal(
        model.transform(test),
        baselines.dictionary_features(test, n_components=12, alpha=0.5, max_iter=3, fit_on=train, seed=0),
    )


def test_hog_shapes_and_layouts(images: np.ndarray) -> None:
    out = baselines.hog_features(images)
    assert out.shape == (24, 324) and out.dtype == np.float32  # 3x3 blocks * 2x2 cells * 9 orientations
    last = baselines.hog_features(np.moveaxis(images, 1, -1))
    flat = baselines.hog_features(images.reshape(24, -1), image_shape=(3, 32, 32))
    np.testing.assert_array_equal(out, last)
    np.testing.assert_array_equal(out, flat)
    grey = baselines.hog_features(images[:, 0])
    assert grey.shape == (24, 324)
    small = baselines.hog_features(images[:, 0, :8, :8], pixels_per_cell=(2, 2), cells_per_block=(1, 1))
    assert small.shape == (24, 4 * 4 * 9)
    with pytest.raises(ValueError, match="image_shape"):
        baselines.hog_features(images.reshape(24, -1))


def test_dense_sift_and_pooling(images: np.ndarray) -> None:
    desc = baselines.dense_sift(images, step=8)
    assert desc.shape == (24, 16, 128) and desc.dtype == np.float32
    mean = baselines.sift_features(images, step=8)
    assert mean.shape == (24, 128)
    np.testing.assert_allclose(mean, desc.mean(axis=1), rtol=1e-6)
    # [0, 1] floats and the same images as uint8 give the same descriptors
    as_uint8 = np.rint(np.moveaxis(images, 1, -1) * 255).astype(np.uint8)
    np.testing.assert_array_equal(baselines.dense_sift(as_uint8, step=8), desc)
    assert baselines.dense_sift(images, step=16, resize=64).shape == (24, 16, 128)
    with pytest.raises(ValueError, match="mode"):
        baselines.sift_features(images, mode="vlad")


def test_sift_bag_of_words(images: np.ndarray) -> None:
    train, test = images[:16], images[16:]
    out = baselines.sift_features(train, mode="bow", n_words=8, seed=0)
    assert out.shape == (16, 8) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(out, baselines.sift_features(train, mode="bow", n_words=8, seed=0))
    bow = baselines.SIFTBagOfWords(8, seed=0).fit(train)
    np.testing.assert_array_equal(
        bow.transform(test), baselines.sift_features(test, mode="bow", n_words=8, fit_on=train, seed=0)
    )


def test_random_network_features(images: np.ndarray) -> None:
    out = baselines.random_network_features(images[:4], "resnet18", seed=0)
    assert out.shape == (4, 512) and out.dtype == np.float32
    np.testing.assert_array_equal(out, baselines.random_network_features(images[:4], "resnet18", seed=0))
    assert not np.allclose(out, baselines.random_network_features(images[:4], "resnet18", seed=1))

    mlp_out = baselines.random_network_features(images, "mlp", width=32, depth=2, seed=0)
    assert mlp_out.shape == (24, 32) and (mlp_out >= 0).all()
    net = models.mlp(3072, 2, 32, seed=0)
    np.testing.assert_allclose(mlp_out, baselines.random_network_features(images, net, "hidden2"), atol=1e-6)
    with pytest.raises(ValueError, match="layer"):
        baselines.random_network_features(images, net)


def test_classic_representations_fit_on_train_and_cache(images: np.ndarray, tmp_path) -> None:
    train, test = images[:16], images[16:]
    kw = {"seed": 0, "rbf_centers": 4, "dictionary_atoms": 4, "dictionary_epochs": 1, "sift_words": 8}
    reps = baselines.classic_representations(train, test, cache_dir=tmp_path, **kw)
    assert list(reps) == list(baselines.CLASSIC)
    for kind, rep in reps.items():
        assert rep["train"].shape[0] == 16 and rep["test"].shape[0] == 8, kind
        assert rep["train"].shape[1] == rep["test"].shape[1] and rep["train"].dtype == np.float32
        assert rep["seconds"] >= 0
    np.testing.assert_array_equal(reps["pixels"]["test"], baselines.raw_features(test))
    rbf = baselines.RBFNetwork(4, seed=0).fit(train)  # fitted on the train images only
    np.testing.assert_allclose(reps["rbf"]["test"], rbf.transform(test), rtol=1e-6)
    again = baselines.classic_representations(train, test, cache_dir=tmp_path, **kw)
    for kind in baselines.CLASSIC:
        np.testing.assert_array_equal(again[kind]["test"], reps[kind]["test"])
        assert again[kind]["seconds"] == reps[kind]["seconds"]  # loaded, not recomputed
    with pytest.raises(ValueError, match="unknown representation"):
        baselines.classic_representations(train, test, kinds=["pixels", "gabor"], cache=False)
