r"""Probes: how linearly readable the labels are from a representation.

A probe fits a linear classifier on fixed features and reports its test accuracy: the read-out of the most
aligned layer in notebook 08 and the "ground truth" against which notebook 11 judges the transferability scores
(:mod:`repalign.measure.scores`; both through :mod:`repalign.recipes.zoo`), and a read-out of one layer of a
frozen network (:func:`linear_probe`).

- :func:`logistic_probe`: scikit-learn's L2-regularised multinomial logistic regression on standardised
  features,

  .. math::  p(c \mid x) = \mathrm{softmax}(W z + b)_c, \qquad z = (x - \mu) / s, \qquad
             \min_{W, b}\; \tfrac{1}{2C}\lVert W\rVert^2 - \textstyle\sum_i \log p(c_i \mid x_i);

- :func:`probe_grid`: the best test accuracy over a grid of ``C`` (You et al. 2021's protocol);
- :func:`linear_probe`: :func:`logistic_probe` on one layer of a network
  (:func:`repalign.networks.features.extract`, on the device of the package's rule).

Two solvers of the same problem. ``device=None`` (the default) follows the package's device rule
(:func:`repalign.networks.runtime.get_device`): where it gives the CPU (the replicate scale) the probe is
scikit-learn's lbfgs, exactly as before; where it gives a GPU (the paper scale, ``device: auto``) it is
:class:`TorchProbe` there, so the recipes' thousands of probes run on the GPU without passing a device. A named
device (``"auto"``, ``"cuda"``, ``"cpu"``) always fits with :class:`TorchProbe` there: float64, L-BFGS to a tighter
tolerance than scikit-learn's default. The two agree within :data:`TORCH_TOLERANCE` (tests/test_device_paths.py,
tests/test_rehearsal.py), the difference being scikit-learn's stopping rule.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from repalign.core.arrays import to_numpy
from repalign.networks.features import extract
from repalign.networks.finetune import _split_data
from repalign.networks.runtime import get_device

__all__ = [
    "TORCH_TOLERANCE",
    "TorchProbe",
    "logistic_probe",
    "probe_grid",
    "linear_probe",
]

#: How far the torch solver (``device=...``) may be from scikit-learn's on the same data: test accuracy (absolute,
#: a fraction), mean test cross-entropy (relative) and, for C <= 0.1, any test probability (absolute). scikit-learn
#: stops at a projected gradient of 1e-4 (its ``tol``), torch goes on to 1e-9: torch's objective is never the larger,
#: and where the problem is nearly separable and weakly regularised (C >= 1) scikit-learn stops far from the
#: optimum, so probabilities there can differ by up to 0.5 while accuracies stay close. Measured (4 draws of 4
#: shapes, C from 0.001 to 10, 400 test examples): accuracy 0.0125, loss 3 %; with C <= 0.1 accuracy 0.0025,
#: loss 8e-4, probability 6e-3.
TORCH_TOLERANCE = {"accuracy": 0.02, "loss": 0.05, "probability": 0.01}


def _flat(x: Any, name: str) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim < 2:
        raise ValueError(f"{name} must have shape (n, d) (or (n, ...), flattened); got {arr.shape}")
    return arr.reshape(arr.shape[0], -1)


def _labels(y: Any, n: int, name: str) -> np.ndarray:
    arr = to_numpy(y)
    if arr.ndim == 2 and arr.shape[1] > 1:  # one-hot / one-vs-rest matrix -> class index
        arr = arr.argmax(axis=1)
    arr = arr.reshape(-1)
    if arr.shape[0] != n:
        raise ValueError(f"{name} has {arr.shape[0]} labels but the features have {n} rows")
    return arr


class TorchProbe:
    r"""scikit-learn's standardised L2 logistic regression, solved in torch (float64) on a device.

    The same objective as ``StandardScaler`` → ``LogisticRegression(C)`` with lbfgs: features standardised
    (:math:`z = (x - \mu)/s`, population :math:`s`, constant columns left unscaled), then for K > 2 classes the
    multinomial model and for 2 classes the binary one (one weight vector, the second class positive),

    .. math::  \min_{W, b}\; \tfrac{1}{n}\textstyle\sum_i -\log p(c_i \mid z_i) + \tfrac{1}{2Cn}\lVert W\rVert^2,

    the intercept unpenalised. Minimised by L-BFGS with a strong-Wolfe line search from zero, to a gradient of 1e-9.

    Shape: fitted on x (n, d), labels (n,); ``predict_proba`` (m, d) → (m, K) NumPy float64.
    """

    def __init__(self, classes: np.ndarray, mean: torch.Tensor, scale: torch.Tensor, weight: torch.Tensor,
                 bias: torch.Tensor) -> None:  # fmt: skip
        self.classes_ = classes
        self.mean, self.scale, self.weight, self.bias = mean, scale, weight, bias

    @classmethod
    def fit(cls, x: np.ndarray, labels: np.ndarray, *, C: float, max_iter: int, device: Any) -> TorchProbe:
        """Standardise ``x`` and minimise the objective above on ``device`` (:func:`get_device`)."""
        dev = get_device(device)
        classes, index = np.unique(labels, return_inverse=True)
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64), device=dev)
        mean = xt.mean(0)
        var = xt.var(0, unbiased=False)
        constant = var <= (xt.shape[0] * torch.finfo(torch.float64).eps) * (var + mean * mean)
        scale = torch.where(constant, torch.ones_like(var), var.sqrt())
        z = (xt - mean) / scale
        y = torch.as_tensor(index, device=dev)
        outputs = 1 if len(classes) == 2 else len(classes)
        weight = torch.zeros(z.shape[1], outputs, dtype=torch.float64, device=dev, requires_grad=True)
        bias = torch.zeros(outputs, dtype=torch.float64, device=dev, requires_grad=True)
        penalty = 1.0 / (2.0 * C * z.shape[0])

        def objective() -> torch.Tensor:
            logits = z @ weight + bias
            if outputs == 1:
                data = torch.nn.functional.binary_cross_entropy_with_logits(logits[:, 0], y.to(torch.float64))
            else:
                data = torch.nn.functional.cross_entropy(logits, y)
            return data + penalty * (weight * weight).sum()

        opt = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, history_size=20, tolerance_grad=1e-9,
                                tolerance_change=1e-14, line_search_fn="strong_wolfe")  # fmt: skip

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = objective()
            loss.backward()
            return loss

        opt.step(closure)
        return cls(classes, mean, scale, weight.detach(), bias.detach())

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities, (m, d) → (m, K), in the order of ``classes_``."""
        xt = torch.as_tensor(np.asarray(x, dtype=np.float64), device=self.weight.device)
        logits = ((xt - self.mean) / self.scale) @ self.weight + self.bias
        if logits.shape[1] == 1:
            p1 = torch.sigmoid(logits[:, 0])
            return torch.stack([1 - p1, p1], dim=1).cpu().numpy()
        return torch.softmax(logits, dim=1).cpu().numpy()


def logistic_probe(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    *,
    C: float = 1.0,
    seed: int = 0,
    max_iter: int = 1000,
    device: Any = None,
) -> dict[str, Any]:
    r"""Logistic regression on standardised features: how linearly readable the labels are.

    A scikit-learn pipeline ``StandardScaler`` → ``LogisticRegression(C=C)`` (L2 penalty, lbfgs,
    multinomial for more than two classes) is fitted on the training features and scored on the test set:

    .. math::  p(c \mid x) = \mathrm{softmax}(W z + b)_c, \qquad z = (x - \mu) / s,
               \quad \text{loss} = -\tfrac1m \textstyle\sum_j \log p(c_j \mid x_j).

    Shape:
        - ``train_features``: (n, d) (more dims are flattened); ``train_labels``: (n,) class labels, or an
          (n, k) one-hot / ±1 matrix (argmax is taken)
        - ``test_features``: (m, d); ``test_labels``: (m,)

    Returns:
        ``{"accuracy", "loss", "train_accuracy", "train_loss", "classes", "n_features", "C", "model"}``:
        test accuracy in [0, 1], mean test cross-entropy (nats), the same on the training set, the class
        labels, d, C and the fitted pipeline. Test classes must be among the training classes.

    ``device``: None (default) fits with scikit-learn where the package's device rule gives the CPU, and with
    :class:`TorchProbe` on the GPU where it gives one; a named device (``"auto"``, ``"cuda"``, ``"cpu"``) fits with
    :class:`TorchProbe` there (``model`` is then that probe; ``seed`` is not used: the solution is unique). Within
    :data:`TORCH_TOLERANCE` of each other.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, log_loss
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xtr = _flat(train_features, "train_features")
    xte = _flat(test_features, "test_features")
    if xte.shape[1] != xtr.shape[1]:
        raise ValueError(f"test_features have {xte.shape[1]} columns but train_features have {xtr.shape[1]}")
    ytr = _labels(train_labels, xtr.shape[0], "train_labels")
    yte = _labels(test_labels, xte.shape[0], "test_labels")
    classes = np.unique(ytr)
    if classes.size < 2:
        raise ValueError("train_labels hold a single class: a probe needs at least two")
    unseen = np.setdiff1d(np.unique(yte), classes)
    if unseen.size:
        raise ValueError(f"test_labels contain classes absent from train_labels: {unseen.tolist()}")

    solve_on = get_device(device)
    if device is None and solve_on.type == "cpu":  # the replicate scale's path, unchanged
        model = make_pipeline(
            StandardScaler(), LogisticRegression(C=float(C), max_iter=int(max_iter), random_state=int(seed))
        )
        model.fit(xtr.astype(np.float64), ytr)
    else:
        model = TorchProbe.fit(xtr, ytr, C=float(C), max_iter=int(max_iter), device=solve_on)
    p_tr = model.predict_proba(xtr.astype(np.float64))
    p_te = model.predict_proba(xte.astype(np.float64))
    cls = model.classes_
    return {
        "accuracy": float(accuracy_score(yte, cls[p_te.argmax(axis=1)])),
        "loss": float(log_loss(yte, p_te, labels=cls)),
        "train_accuracy": float(accuracy_score(ytr, cls[p_tr.argmax(axis=1)])),
        "train_loss": float(log_loss(ytr, p_tr, labels=cls)),
        "classes": cls,
        "n_features": int(xtr.shape[1]),
        "C": float(C),
        "model": model,
    }


def probe_grid(
    train_features: Any,
    train_labels: Any,
    test_features: Any,
    test_labels: Any,
    *,
    Cs: Sequence[float] = (0.01, 0.1, 1.0),
    seed: int = 0,
    max_iter: int = 1000,
    device: Any = None,
) -> dict[str, Any]:
    r"""The best test accuracy of :func:`logistic_probe` over a grid of inverse regularisation strengths C.

    The ground truth of the transferability protocol (You et al. 2021 take the best fine-tuned accuracy over a
    hyper-parameter grid): :math:`\max_{C} \mathrm{acc}_\mathrm{test}(C)`, an oracle choice of C on the test set,
    the same for every representation.

    Shape: as :func:`logistic_probe`. Returns ``{"accuracy": best, "C": its C, "accuracies": {C: accuracy}}``.
    ``device``: as :func:`logistic_probe` (None: scikit-learn on a CPU-only machine, torch on the GPU).
    """
    if len(Cs) == 0:
        raise ValueError("Cs is empty: give at least one C, e.g. Cs=(0.01, 0.1, 1.0)")
    accs = {
        float(C): logistic_probe(train_features, train_labels, test_features, test_labels, C=C, seed=seed,
                                 max_iter=max_iter, device=device)["accuracy"]
        for C in Cs
    }  # fmt: skip
    best = max(accs, key=lambda C: (accs[C], -C))  # ties: the smaller C (the stronger regularisation)
    return {"accuracy": accs[best], "C": best, "accuracies": accs}


def linear_probe(
    backbone: Any,
    train_data: Any,
    test_data: Any,
    layer: str,
    *,
    C: float = 1.0,
    seed: int = 0,
    batch_size: int = 256,
    device: Any = None,
    pool: Any = "avg",
    progress: bool = True,
) -> dict[str, Any]:
    """Logistic regression on one layer's features of a frozen backbone.

    Features come from :func:`repalign.networks.features.extract` (one forward pass per batch, ``eval()``,
    ``no_grad()``; module outputs pooled by ``pool``: ``"avg"`` global average of conv maps, ``"max"``,
    ``"cls"``, ``"flatten"`` or a callable, as that function documents), then :func:`logistic_probe`.
    ``layer`` is one of :func:`repalign.networks.features.layer_names` (``"input"`` probes the raw input).
    ``device``: where the backbone runs, by the package's device rule (:func:`repalign.networks.runtime.get_device`:
    ``None``/``"auto"`` is CUDA when torch sees one, else the CPU).

    Shape:
        - ``train_data``: ``(x, y)`` or a Dataset with ``x`` (n, ...) inputs and ``y`` (n,) labels
        - ``test_data``: likewise with m examples

    Returns:
        :func:`logistic_probe`'s dictionary plus ``"layer"``.
    """
    x_tr, y_tr = _split_data(train_data, "train_data")
    x_te, y_te = _split_data(test_data, "test_data")
    kw = {"batch_size": batch_size, "device": get_device(device), "pool": pool, "progress": progress}
    f_tr = extract(backbone, x_tr, [layer], **kw)[layer]
    f_te = extract(backbone, x_te, [layer], **kw)[layer]
    out = logistic_probe(f_tr, y_tr, f_te, y_te, C=C, seed=seed)
    out["layer"] = layer
    return out
