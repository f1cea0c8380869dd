r"""Claims 1 and 6: a linear learner trained by gradient descent on fixed representations, and its theory control.

The learner (:func:`repalign.networks.linear.gd_linear`, full batch, from :math:`w_0 = 0`) is compared across
representations of the same examples at ONE step size, the largest that is stable for all of them,

.. math::  \eta = 1 / \max_r \sigma_1(\Phi_r)^2,

so that a representation's speed says something about its spectrum and not about its step
(:func:`shared_step_descents`). :func:`planted_descents` is the control with a known answer: problems with the same
singular values whose target lies on the top or on the bottom singular directions
(:func:`repalign.measure.theory.planted_problem`). Inputs go to the device of the package's one device rule
(:func:`repalign.networks.runtime.get_device`) as float64 tensors.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from repalign.measure.alignment import Spectrum, spectrum
from repalign.measure.theory import GDResult, planted_problem
from repalign.networks.linear import gd_linear
from repalign.networks.runtime import get_device

__all__ = ["shared_step_descents", "planted_descents", "PLANTED"]

#: the two placements of the planted target: on the top or on the bottom singular directions
PLANTED = ("target on top directions", "target on bottom directions")


def shared_step_descents(
    features: Mapping[str, Any],
    targets: Any,
    spectra: Mapping[str, Spectrum],
    *,
    steps: int,
    test_features: Mapping[str, Any] | None = None,
    test_targets: Any = None,
    device: Any = None,
) -> dict[str, GDResult]:
    r"""Gradient descent on each representation for ``steps`` steps at the one shared step
    :math:`\eta = 1/\max_r \sigma_1(\Phi_r)^2`, σ_1 read from ``spectra`` (the preprocessed features' spectra).

    Shape: features map a name to (n, d_r) training features, targets (n,) or (n, k); test_features map the same
    names to (m, d_r), test_targets (m,) or (m, k). Returns ``{name: GDResult}`` in the order of ``features``.
    """
    dev = get_device(device)

    def on_device(a: Any) -> Any:
        return torch.as_tensor(a, device=dev)

    step = 1.0 / max(spectra[name].singular_values[0] ** 2 for name in features)
    test: dict[str, Any] = {}
    out = {}
    for name, train in features.items():
        if test_features is not None:
            test = {"test_features": on_device(test_features[name]), "test_targets": on_device(test_targets)}
        out[name] = gd_linear(on_device(train), on_device(targets), lr=step, steps=steps, **test)
    return out


def planted_descents(
    *, n: int, rank: int, condition: float, k: int, seeds: Sequence[int], steps: int, device: Any = None
) -> dict[str, list[tuple[Spectrum, GDResult]]]:
    r"""The synthetic control: per seed, two planted problems with the same ``rank`` singular values,

    .. math::  \sigma_i \propto \mathrm{geomspace}(1, 1/\mathrm{condition}), \qquad \textstyle\sum_i \sigma_i^2 = n,

    whose target mass n/k sits on the top ``k`` or on the bottom ``k`` singular directions (:data:`PLANTED`), and
    gradient descent on each (no bias column, no normalisation, η = 1/σ_1²) with its exact spectrum (uncentred:
    the target as GD fits it).

    Shape: each problem (n, rank) features and (n,) targets. Returns ``{placement: [(Spectrum, GDResult) per seed]}``.
    """
    dev = get_device(device)
    sv = np.geomspace(1.0, 1.0 / condition, rank)
    sv *= np.sqrt(n / np.sum(sv**2))
    where = dict(zip(PLANTED, (slice(0, k), slice(rank - k, rank)), strict=True))
    out: dict[str, list[tuple[Spectrum, GDResult]]] = {name: [] for name in PLANTED}
    for seed in seeds:
        for name in PLANTED:
            mass = np.zeros(rank)
            mass[where[name]] = n / k
            phi, y = planted_problem(sv, mass, n, seed=seed)
            spec = spectrum(phi, y, bias=False, normalize=False, center=False)
            res = gd_linear(torch.as_tensor(phi, device=dev), torch.as_tensor(y, device=dev), lr=1.0 / sv[0] ** 2,
                            steps=steps, bias=False, normalize=False)  # fmt: skip
            out[name].append((spec, res))
    return out
