"""Properties of the helpers behind notebooks 01 (alignment and convergence) and 06 (downstream convergence)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repalign.alignment import spectrum
from repalign.transfer import (
    curve_dominates,
    gd_linear,
    mean_relative_loss,
    planted_problem,
    predicted_loss_curve,
    reach_loss,
)

SV = np.linspace(3.0, 0.3, 8)


def _planted(where: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    mass = np.zeros(SV.size)
    if where == "top":
        mass[:3] = [10.0, 5.0, 5.0]
    else:
        mass[-3:] = [10.0, 5.0, 5.0]
    return planted_problem(SV, mass, 40, seed=seed)


def test_planted_problem_has_the_spectrum_it_was_asked_for() -> None:
    mass = np.arange(1.0, SV.size + 1)
    phi, y = planted_problem(SV, mass, 30, seed=4)
    assert phi.shape == (30, SV.size) and y.shape == (30,)
    spec = spectrum(phi, y, bias=False, normalize=False, method="svd")
    np.testing.assert_allclose(spec.singular_values, SV, rtol=1e-12)
    np.testing.assert_allclose(spec.mass, mass, rtol=1e-10)
    assert spec.outside == pytest.approx(0.0, abs=1e-9)
    # seeded: same seed, same problem; another seed, another basis
    np.testing.assert_array_equal(planted_problem(SV, mass, 30, seed=4)[0], phi)
    assert not np.allclose(planted_problem(SV, mass, 30, seed=5)[0], phi)


def test_planted_problem_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="entries"):
        planted_problem(SV, np.ones(3), 30)
    with pytest.raises(ValueError, match="<= n"):
        planted_problem(SV, np.ones(SV.size), 4)
    with pytest.raises(ValueError, match="positive"):
        planted_problem(-SV, np.ones(SV.size), 30)


def test_dominating_curve_means_lower_loss_at_every_step() -> None:
    top, bottom = (spectrum(*_planted(w), bias=False, normalize=False) for w in ("top", "bottom"))
    assert curve_dominates(top, bottom) and not curve_dominates(bottom, top)
    assert curve_dominates(top, top)
    lr = 1.0 / SV[0] ** 2
    l_top, l_bottom = predicted_loss_curve(top, lr, 200), predicted_loss_curve(bottom, lr, 200)
    assert np.all(l_top <= l_bottom + 1e-12) and l_top[20] < l_bottom[20]


def test_curve_dominates_needs_the_same_targets() -> None:
    phi, y = _planted("top")
    with pytest.raises(ValueError, match="different targets"):
        curve_dominates(spectrum(phi, y), spectrum(phi, 2 * y))


def test_reach_loss_and_mean_relative_loss() -> None:
    phi, y = _planted("top")
    y_sign = np.sign(y)
    res = gd_linear(phi, y_sign, steps=100, bias=False, normalize=False, test_features=phi, test_targets=y_sign)
    loss = res.train_loss
    out = reach_loss(res, 0.5)
    i = int(out["step"])
    assert loss[i] <= 0.5 * loss[0] and np.all(loss[:i] > 0.5 * loss[0])
    assert out["weight_norm_sq"] == res.weight_norm_sq[i]
    assert out["test_loss"] == pytest.approx(loss[i] / len(y))  # test set = train set here
    assert out["test_error"] == pytest.approx(1.0 - res.test_accuracy[i])
    assert reach_loss(res, loss[i], relative=False)["step"] <= i
    never = reach_loss(res, -1.0)
    assert never["step"] == math.inf and math.isnan(never["weight_norm_sq"])
    # mean relative loss: in (0, 1], 1 for a descent that never moves, lower for a faster one
    m = mean_relative_loss(res)
    assert 0.0 < m < 1.0
    slow = gd_linear(phi, y_sign, lr=0.1 * res.lr, steps=100, bias=False, normalize=False)
    assert mean_relative_loss(slow) > m
    still = gd_linear(phi, y_sign, lr=1e-30, steps=10, bias=False, normalize=False)
    assert mean_relative_loss(still) == pytest.approx(1.0)


def test_prediction_gap_and_phase_bound_excess():
    import repalign as ra
    from repalign import transfer

    rng = np.random.default_rng(7)
    X = rng.normal(size=(120, 9))
    y = np.sign(X[:, 0] + 0.3 * rng.normal(size=120))
    spec = ra.spectrum(X, y)
    res = transfer.gd_linear(X, y, steps=200)
    assert transfer.prediction_gap(spec, res) < 1e-8
    assert transfer.phase_bound_excess(spec, res) <= 1e-12
    # a spectrum of other targets does not predict this run
    other = ra.spectrum(X, -np.roll(y, 3))
    assert transfer.prediction_gap(other, res) > 1e-3
