"""TODO docstring (from transfer)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from repalign.measure.alignment import spectrum
from repalign.measure.targets import one_vs_rest_targets
from repalign.measure.theory import steps_to_loss
from repalign.networks.linear import gd_linear
from repalign.networks.probes import logistic_probe

__all__ = [
    "representation_scores",
]


def representation_scores(
    representations: Mapping[str, tuple[Any, Any]],
    train_labels: Any,
    test_labels: Any,
    *,
    gd_steps: int,
    loss_level: float,
    probe_C: float = 1.0,
    seed: int = 0,
) -> dict[str, dict[str, Any]]:
    r"""The score card of several representations of the same examples: alignment, the linear learner, a probe.

    For each representation (train features Φ, test features Φ_test) and the centred one-vs-rest targets
    :math:`Y_c = Y - \mathbf 1\bar y^\top` of ``train_labels``: the alignment spectrum (centred, the library's
    default), gradient descent on the squared loss (:func:`gd_linear`, ``gd_steps`` steps, one step
    :math:`\eta = 1/\max_r \sigma_1(\Phi_r)^2` shared by all representations so that their speeds compare), the
    steps to ``loss_level`` · L(w_0) (:func:`steps_to_loss`; never reached = ``gd_steps`` + 1) and the test
    accuracy of a logistic probe (:func:`logistic_probe`, ``probe_C``, ``seed``).

    Shape: each representation (n, d_r) train and (m, d_r) test features; train_labels (n,), test_labels (m,)
    class labels. Returns ``{name: {"spectrum", "gd", "steps", "probe_accuracy"}}`` in the order given.
    """

    y, y_test = np.asarray(one_vs_rest_targets(train_labels)), np.asarray(one_vs_rest_targets(test_labels))
    mean = y.mean(axis=0)
    spectra = {name: spectrum(train, y) for name, (train, _) in representations.items()}
    step = 1.0 / max(spec.singular_values[0] ** 2 for spec in spectra.values())
    out = {}
    for name, (train, test) in representations.items():
        run = gd_linear(train, y - mean, lr=step, steps=gd_steps, test_features=test, test_targets=y_test - mean)
        probe = logistic_probe(train, train_labels, test, test_labels, C=probe_C, seed=seed)
        out[name] = {
            "spectrum": spectra[name],
            "gd": run,
            "steps": float(steps_to_loss(run, loss_level)[0]),
            "probe_accuracy": probe["accuracy"],
        }
    return out
