"""Recipes shared by the notebooks: train MLPs over seeds and measure every layer's alignment, cached.

A notebook names a data set, a configuration and seeds; :func:`train_and_measure` trains one MLP per seed (all
seeds together, :func:`repalign.training.train_ensemble`), measures the alignment spectrum of the input and of
every hidden layer before and after training, optionally keeps the learned features, and caches the whole result
(:func:`repalign.cache.load_or_compute`) under a key of the configuration, the seeds and the data's content.

Targets for the measure (:func:`alignment_targets`): ±1 labels for a binary task (the demo's convention), a ±1
one-vs-rest matrix for a multi-class task (A(τ) sums over its columns), and the regression targets as given
(rescale them first, e.g. :func:`repalign.tasks.rescale_targets`). Alignment is measured on the training examples
with the labels the network was trained on (as in the demo), so a network trained on shuffled labels is measured
against the shuffled labels.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repalign.alignment import AlignmentAccumulator, Spectrum, binary_targets, one_vs_rest_targets

__all__ = [
    "MLPConfig",
    "RunResult",
    "alignment_targets",
    "data_fingerprint",
    "measure_layers",
    "train_and_measure",
    "stack_curves",
    "stack_aucs",
    "spectrum_from_dict",
]


@dataclass(frozen=True)
class MLPConfig:
    """An MLP and how it is trained (the demo: depth 3, width 128, ReLU, no hidden bias, Adam 1e-3, batch 64).

    ``epochs`` counts passes over the training set.
    """

    depth: int = 3
    width: int = 128
    activation: str = "relu"
    bias: bool = False
    optimizer: str = "adam"
    lr: float = 1e-3
    batch_size: int = 64
    epochs: int = 100
    weight_decay: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


@dataclass
class RunResult:
    """One seed's run: spectra per layer before and after training, training history, optional features.

    Attributes:
        seed: the seed (initialisation and shuffling).
        layers: measured layers, ``"input"`` first, then ``hidden1`` … ``hidden{depth}``.
        before, after: ``{layer: Spectrum}`` on the measuring set.
        history: per-epoch training metrics (``train_loss``, ``train_acc``, ``val_loss``, ``val_acc`` …).
        features: ``{layer: {"train": (n, d), "test": (m, d)}}`` after training, when asked for.
        during: ``{epoch: {layer: Spectrum}}`` when ``record_every`` > 0.
    """

    seed: int
    layers: list[str]
    before: dict[str, Spectrum]
    after: dict[str, Spectrum]
    history: dict[str, list[float]]
    features: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    during: dict[int, dict[str, Spectrum]] = field(default_factory=dict)

    @property
    def final(self) -> dict[str, float]:
        """Last-epoch value of each history entry."""
        return {k: float(v[-1]) for k, v in self.history.items() if len(v)}


# ---------------------------------------------------------------------------------------------------------------
def alignment_targets(y: np.ndarray, task: str) -> np.ndarray:
    """Targets the measure uses for labels ``y`` of a ``task``.

    Shape: binary (n,) 0/1 → (n,) ±1; multiclass (n,) ints → (n, K) ±1 one-vs-rest; regression (n,) or (n, k)
    float → unchanged (float64).
    """
    y = np.asarray(y)
    if task == "binary":
        return np.asarray(binary_targets(y))
    if task == "multiclass":
        return np.asarray(one_vs_rest_targets(y))
    if task == "regression":
        return y.astype(np.float64)
    raise ValueError(f"unknown task {task!r}; choose binary, multiclass or regression")


def data_fingerprint(*arrays: np.ndarray) -> str:
    """A short content hash of arrays (shape, dtype and bytes), for cache keys."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.shape, a.dtype.str)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def spectrum_to_dict(spec: Spectrum) -> dict[str, Any]:
    """A :class:`Spectrum` as plain arrays and numbers (cacheable without pickle)."""
    return {
        "singular_values": spec.singular_values,
        "mass": spec.mass,
        "mass_columns": spec.mass_columns,
        "outside": float(spec.outside),
        "total": float(spec.total),
        "n": int(spec.n),
        "d": int(spec.d),
        "options": dict(spec.options),
    }


def spectrum_from_dict(data: Mapping[str, Any]) -> Spectrum:
    """Inverse of :func:`spectrum_to_dict`."""
    mass = np.asarray(data["mass"], dtype=np.float64)
    cols = np.asarray(data.get("mass_columns", mass[:, None]), dtype=np.float64).reshape(mass.size, -1)
    return Spectrum(
        np.asarray(data["singular_values"], dtype=np.float64),
        mass,
        cols,
        float(data["outside"]),
        float(data["total"]),
        int(data["n"]),
        int(data["d"]),
        dict(data.get("options", {})),
    )


def measure_layers(
    model: Any,
    x: np.ndarray,
    targets: np.ndarray,
    layers: Sequence[str],
    *,
    bias: bool = True,
    normalize: bool = True,
    batch_size: int = 1024,
) -> dict[str, Spectrum]:
    """Alignment spectrum of each layer's features with ``targets``, all layers from one pass over ``x``.

    Shape: x (n, ...) model inputs; targets (n,) or (n, k). Returns ``{layer: Spectrum}``.
    """
    from repalign.features import extract

    accs = {layer: AlignmentAccumulator(bias=bias, normalize=normalize) for layer in layers}
    extract(model, x, list(layers), batch_size=batch_size, accumulators=accs, targets=targets, progress=False)
    return {layer: acc.spectrum() for layer, acc in accs.items()}


def _run(
    x: np.ndarray,
    y: np.ndarray,
    x_test: np.ndarray | None,
    y_test: np.ndarray | None,
    *,
    task: str,
    config: dict[str, Any],
    seeds: list[int],
    keep_features: bool,
    record_every: int,
    ensemble: bool,
    progress: bool,
) -> list[dict[str, Any]]:
    """Uncached worker of :func:`train_and_measure`; returns plain data (one dict per seed)."""
    from repalign.models import hidden_layers, mlp
    from repalign.training import train, train_ensemble

    cfg = MLPConfig(**config)
    out_features = int(np.max(y)) + 1 if task == "multiclass" else (1 if y.ndim == 1 else y.shape[1])
    in_features = int(np.prod(x.shape[1:]))

    def make_model() -> Any:
        return mlp(
            in_features,
            cfg.depth,
            cfg.width,
            cfg.activation,
            bias=cfg.bias,
            out_features=out_features,
            input_shape=tuple(x.shape[1:]) if x.ndim > 2 else None,
        )

    layers = ["input", *hidden_layers(make_model())]
    targets = alignment_targets(y, task)

    def callback(epoch: int, model: Any) -> dict[str, Any]:
        return {k: spectrum_to_dict(v) for k, v in measure_layers(model, x, targets, layers).items()}

    every = record_every if record_every > 0 else max(cfg.epochs, 1)
    kwargs = dict(
        task=task,
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        epochs=cfg.epochs,
        weight_decay=cfg.weight_decay,
        x_val=x_test,
        y_val=y_test,
        callback=callback,
        callback_every=every,
        progress=progress,
    )
    if ensemble and len(seeds) > 1:
        results = train_ensemble(make_model, seeds, x, y, **kwargs)
    else:
        results = [train(make_model, x, y, seed=s, **kwargs) for s in seeds]
    runs = []
    for seed, res in zip(seeds, results, strict=True):
        epochs_recorded = sorted(res.records)
        first, last = epochs_recorded[0], epochs_recorded[-1]
        run: dict[str, Any] = {
            "seed": int(seed),
            "layers": layers,
            "before": res.records[first],
            "after": res.records[last],
            "history": {k: np.asarray(v, dtype=np.float64) for k, v in res.history.items()},
            "during": {str(e): res.records[e] for e in epochs_recorded} if record_every > 0 else {},
            "features": {},
        }
        if keep_features:
            from repalign.features import extract

            hidden = layers[1:]
            train_f = extract(res.model, x, hidden, batch_size=1024, progress=False)
            test_f = extract(res.model, x_test, hidden, batch_size=1024, progress=False) if x_test is not None else {}
            run["features"] = {
                layer: {"train": train_f[layer], **({"test": test_f[layer]} if layer in test_f else {})}
                for layer in hidden
            }
        runs.append(run)
    return runs


def _to_result(run: Mapping[str, Any]) -> RunResult:
    return RunResult(
        seed=int(run["seed"]),
        layers=list(run["layers"]),
        before={k: spectrum_from_dict(v) for k, v in run["before"].items()},
        after={k: spectrum_from_dict(v) for k, v in run["after"].items()},
        history={k: list(np.asarray(v, dtype=float)) for k, v in run["history"].items()},
        features={k: dict(v) for k, v in run.get("features", {}).items()},
        during={
            int(e): {k: spectrum_from_dict(v) for k, v in specs.items()} for e, specs in run.get("during", {}).items()
        },
    )


def train_and_measure(
    x: np.ndarray,
    y: np.ndarray,
    *,
    task: str,
    seeds: Sequence[int] = (0,),
    config: MLPConfig | Mapping[str, Any] | None = None,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    keep_features: bool = False,
    record_every: int = 0,
    ensemble: bool = True,
    cache: bool = True,
    force: bool = False,
    name: str = "train_and_measure",
    progress: bool = False,
) -> list[RunResult]:
    """Train one MLP per seed on (x, y) and measure every layer's alignment before and after training.

    .. math::  A_\\ell(\\tau) = \\sum_{\\sigma_i(\\Phi_\\ell) \\ge \\tau} \\lVert u_i(\\Phi_\\ell)^\\top Y\\rVert^2

    for the input (ℓ = 0) and each hidden layer's post-activation features Φ_ℓ on the training examples, with
    Y = :func:`alignment_targets` of the training labels.

    Shape:
        x: (n, d) or (n, C, H, W) (flattened by the MLP); y: (n,) 0/1 (binary), (n,) ints (multiclass),
        (n,) or (n, k) floats (regression). x_test / y_test likewise (validation metrics each epoch).

    Args:
        task: ``binary``, ``multiclass`` or ``regression``.
        seeds: one run per seed (initialisation and batch order); trained together when ``ensemble``.
        config: an :class:`MLPConfig` or a dict of its fields.
        keep_features: also return each hidden layer's features after training (train and test sets).
        record_every: also measure every that many epochs (``RunResult.during``).
        cache: load the result from / store it in the cache (key: config, seeds, task, options, data content).
        force: recompute even if cached.

    Returns:
        one :class:`RunResult` per seed, in the order of ``seeds``.
    """
    from repalign.cache import load_or_compute

    cfg = config if isinstance(config, MLPConfig) else MLPConfig(**dict(config or {}))
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    if x_test is not None:
        x_test = np.asarray(x_test, dtype=np.float32)
        y_test = np.asarray(y_test)
    params = {
        "task": task,
        "config": cfg.to_dict(),
        "seeds": [int(s) for s in seeds],
        "keep_features": bool(keep_features),
        "record_every": int(record_every),
        "ensemble": bool(ensemble),
    }

    def compute(**p: Any) -> list[dict[str, Any]]:
        return _run(x, y, x_test, y_test, progress=progress, **p)

    compute.__qualname__ = "repalign.experiments.train_and_measure"
    if cache:
        data_id = {
            "train": data_fingerprint(x, y),
            "test": None if x_test is None else data_fingerprint(x_test, np.asarray(y_test)),
        }
        runs = load_or_compute(name, compute, params, data_id=data_id, force=force)
    else:
        runs = compute(**params)
    return [_to_result(r) for r in runs]


def stack_curves(
    runs: Sequence[RunResult], layer: str, thresholds: np.ndarray, *, when: str = "after", relative: bool = True
) -> np.ndarray:
    """Alignment curves of one layer over seeds. Shape: returns (seeds, len(thresholds))."""
    return np.stack([getattr(r, when)[layer].curve(thresholds, relative=relative) for r in runs])


def stack_aucs(runs: Sequence[RunResult], layer: str, *, when: str = "after") -> np.ndarray:
    """Area under the relative alignment curve (:func:`repalign.alignment_auc`) of one layer, per seed. Shape: (seeds,)."""
    return np.array([getattr(r, when)[layer].auc() for r in runs])
