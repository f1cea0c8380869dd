"""Properties of the helpers behind notebooks 02 (emergence) and 05 (layer-wise alignment)."""

from __future__ import annotations

import numpy as np
import pytest

from repalign import experiments as E
from repalign.alignment import spectrum


# ---------------------------------------------------------------------------------------------------- prepare_task
def test_prepare_task_class_pair_is_balanced_binary_and_seeded():
    ds = E.prepare_task("digits", classes=[3, 8], n_per_class=20, seed=1)
    assert ds.info.task == "binary" and len(ds) == 40
    assert np.bincount(ds.y).tolist() == [20, 20]
    again = E.prepare_task("digits", classes=[3, 8], n_per_class=20, seed=1)
    other = E.prepare_task("digits", classes=[3, 8], n_per_class=20, seed=2)
    assert np.array_equal(ds.x, again.x) and not np.array_equal(ds.x, other.x)


def test_prepare_task_regression_targets_standardised_and_subsampled():
    ds = E.prepare_task("diabetes", n=100, seed=0)
    assert ds.info.task == "regression" and len(ds) == 100
    assert abs(ds.y.mean()) < 1e-12 and abs(ds.y.std() - 1) < 1e-12
    mm = E.prepare_task("diabetes", n=100, seed=0, target_scaling="minmax")
    assert mm.y.min() == -1 and mm.y.max() == 1
    raw = E.prepare_task("diabetes", n=100, seed=0, target_scaling=None)
    assert np.array_equal(np.argsort(raw.y), np.argsort(ds.y))  # a monotone rescaling of the same rows


def test_prepare_task_loader_options_and_stratified_subsample():
    assert len(E.prepare_task("ct_like", load_kw={"n": 60})) == 60
    ds = E.prepare_task("digits", n=200, seed=0)
    assert ds.info.task == "multiclass" and len(ds) == 200
    assert np.bincount(ds.y).min() >= 19  # stratified: about 20 of each digit
    norm = E.prepare_task("digits", classes=[3, 8], n_per_class=5, demo_normalize=True)
    plain = E.prepare_task("digits", classes=[3, 8], n_per_class=5)
    assert np.allclose(norm.x, 2 * plain.x - 1) and norm.x.min() == -1
    tab = E.prepare_task("diabetes", n=20, demo_normalize=True)
    assert np.array_equal(tab.x, E.prepare_task("diabetes", n=20).x)  # tabular inputs untouched
    with pytest.raises(ValueError, match="n_per_class needs classes"):
        E.prepare_task("digits", n_per_class=5)


# --------------------------------------------------------------------------------------------------- whiten_inputs
def test_whiten_inputs_unit_variance_on_kept_directions():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(50, 6)) @ np.diag([10, 5, 1, 0.5, 0.1, 0.0])  # last column constant
    w32 = E.whiten_inputs(x)
    assert w32.shape == (50, 6) and w32.dtype == np.float32
    w = w32.astype(np.float64)
    assert np.allclose(w.mean(axis=0), 0, atol=1e-5)
    eig = np.linalg.eigvalsh(w.T @ w / len(w))
    assert np.allclose(np.sort(eig)[-5:], 1, atol=1e-4) and abs(eig.min()) < 1e-4  # 5 kept directions, 1 dropped


def test_whiten_inputs_invariant_to_invertible_linear_maps():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(40, 5))
    a = rng.normal(size=(5, 5)) + 3 * np.eye(5)  # invertible
    g1 = E.whiten_inputs(x).astype(np.float64)
    g2 = E.whiten_inputs(x @ a).astype(np.float64)
    assert np.allclose(g1 @ g1.T, g2 @ g2.T, atol=1e-3)  # W Wᵀ = n U_K U_Kᵀ: only the column space matters


def test_whiten_inputs_flattens_images_and_lowers_alignment_of_aligned_inputs():
    rng = np.random.default_rng(2)
    y = np.sign(rng.normal(size=200))
    x = np.c_[5 * y, rng.normal(size=(200, 30))]  # the label lies on the top direction
    x_img = x.reshape(200, 1, 1, 31)
    w = E.whiten_inputs(x_img)
    assert w.shape == (200, 31)
    assert spectrum(w, y).auc() < spectrum(x, y).auc()
    with pytest.raises(ValueError):
        E.whiten_inputs(np.ones((5, 3)))


# ----------------------------------------------------------------------------------------------------- during_aucs
def test_during_aucs_matches_before_and_after():
    ds = E.prepare_task("digits", classes=[0, 1], n_per_class=15, seed=0)
    cfg = E.MLPConfig(depth=2, width=8, epochs=4, batch_size=16)
    runs = E.train_and_measure(ds.x, ds.y, task="binary", seeds=[0, 1], config=cfg, record_every=2, cache=False)
    epochs, aucs = E.during_aucs(runs, "last")
    assert epochs.tolist() == [0, 2, 4] and aucs.shape == (2, 3)
    assert np.allclose(aucs[:, 0], E.stack_aucs(runs, "hidden2", when="before"))
    assert np.allclose(aucs[:, -1], E.stack_aucs(runs, "hidden2"))
    _, inp = E.during_aucs(runs, "input")
    assert np.allclose(inp, inp[:, :1])  # the input does not train
    plain = E.train_and_measure(ds.x, ds.y, task="binary", seeds=[0], config=cfg, cache=False)
    with pytest.raises(ValueError, match="record_every"):
        E.during_aucs(plain, "last")
