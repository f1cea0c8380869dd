"""Recipes shared by the notebooks: train MLPs over seeds and measure every layer's alignment, cached.

A notebook names a data set, a configuration and seeds; :func:`train_and_measure` trains one MLP per seed (all
seeds together, :func:`repalign.ensemble.train_ensemble`), measures the alignment spectrum of the input and of
every hidden layer before and after training, optionally keeps the learned features, and caches the whole result
(:func:`repalign.cache.load_or_compute`) under a key of the configuration, the seeds and the data's content.

Targets for the measure (:func:`alignment_targets`): ±1 labels for a binary task (the demo's convention), a ±1
one-vs-rest matrix for a multi-class task (A(τ) sums over its columns), and the regression targets as given; the
measure then centres them (``center=True``, the library's default: with the bias column a linear model fits the
targets' mean for free, so the mean is not counted as alignment; balanced ±1 pairs are already centred). Alignment is measured on the training examples
with the labels the network was trained on (as in the demo), so a network trained on shuffled labels is measured
against the shuffled labels.

Whole networks pre-trained on a source and transferred to a target (claims 9 and 10): a network is plain data,
:func:`network_spec` (family, head size, input shape, seed, weights), built by :func:`build_network`;
:func:`train_network` is one cached (pre-)training step (optionally until the labels are memorised, for random
labels) and :func:`transfer_to_target` one cached transfer step (alignment of the representation with the target
labels before target training, then fine-tuning and test accuracy).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
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
    "stack_taus",
    "config_grid",
    "sweep",
    "sweep_aucs",
    "sweep_final",
    "sweep_table",
    "during_aucs",
    "epochs_for_steps",
    "final_fit",
    "column_aucs",
    "column_curves",
    "peaks_transfer",
    "peaks_group_losses",
    "SMALL_FAMILIES",
    "small_cnn",
    "network_layer",
    "network_inputs",
    "network_spec",
    "build_network",
    "train_network",
    "transfer_to_target",
    "class_split",
    "pretrained_checkpoint",
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
    float → unchanged (float64). The measure centres them (:func:`measure_layers`, ``center=True``).
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


def measure_layers(
    model: Any,
    x: np.ndarray,
    targets: np.ndarray,
    layers: Sequence[str],
    *,
    bias: bool = True,
    normalize: bool = True,
    center: bool = True,
    batch_size: int = 1024,
) -> dict[str, Spectrum]:
    """Alignment spectrum of each layer's features with ``targets``, all layers from one pass over ``x``.

    ``bias``, ``normalize``, ``center``: the preprocessing of :class:`repalign.alignment.AlignmentAccumulator`.

    Shape: x (n, ...) model inputs; targets (n,) or (n, k). Returns ``{layer: Spectrum}``.
    """
    from repalign.features import extract

    accs = {layer: AlignmentAccumulator(bias=bias, normalize=normalize, center=center) for layer in layers}
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
    from repalign.ensemble import train_ensemble
    from repalign.models import hidden_layers, mlp
    from repalign.training import train

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
        return {k: v.to_dict() for k, v in measure_layers(model, x, targets, layers).items()}

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
        before={k: Spectrum.from_dict(v) for k, v in run["before"].items()},
        after={k: Spectrum.from_dict(v) for k, v in run["after"].items()},
        history={k: list(np.asarray(v, dtype=float)) for k, v in run["history"].items()},
        features={k: dict(v) for k, v in run.get("features", {}).items()},
        during={
            int(e): {k: Spectrum.from_dict(v) for k, v in specs.items()} for e, specs in run.get("during", {}).items()
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


def stack_taus(runs: Sequence[RunResult], layer: str, q: float = 0.99, *, when: str = "after") -> np.ndarray:
    """τ_q of one layer per seed: the largest τ with A(τ) ≥ q‖Y‖² (:meth:`repalign.alignment.Spectrum.tau_q`; the
    demo's "≈ 990 of 1,000 up to τ ≈ 21" is τ_0.99). Shape: (seeds,)."""
    return np.array([getattr(r, when)[layer].tau_q(q) for r in runs])


# ---------------------------------------------------------------------------------------------------------------
# sweeps over configurations, and summaries of their runs
def config_grid(base: MLPConfig | Mapping[str, Any] | None = None, **axes: Sequence[Any]) -> dict[tuple, MLPConfig]:
    """Every combination of the given :class:`MLPConfig` fields, the other fields taken from ``base``.

    ``config_grid(base, depth=[1, 2], activation=["relu", "tanh"])`` →
    ``{(1, "relu"): MLPConfig(depth=1, activation="relu", ...), (1, "tanh"): ..., (2, "relu"): ..., ...}``,
    keys are tuples of the axis values in the order the axes are given (the first axis varies slowest).

    Shape: axes of sizes a_1, …, a_k → a_1 · … · a_k configurations.
    """
    import itertools

    base = base if isinstance(base, MLPConfig) else MLPConfig(**dict(base or {}))
    unknown = set(axes) - set(MLPConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(
            f"unknown MLPConfig field(s) {sorted(unknown)}; fields: {list(MLPConfig.__dataclass_fields__)}"
        )
    names = list(axes)
    values = [list(v) for v in axes.values()]
    return {
        combo: MLPConfig(**{**base.to_dict(), **dict(zip(names, combo, strict=True))})
        for combo in itertools.product(*values)
    }


def sweep(
    x: np.ndarray,
    y: np.ndarray,
    configs: Mapping[Any, MLPConfig | Mapping[str, Any]],
    *,
    task: str,
    seeds: Sequence[int] = (0,),
    progress: bool = True,
    desc: str = "configurations",
    **kwargs: Any,
) -> dict[Any, list[RunResult]]:
    """:func:`train_and_measure` for every configuration, in order; a resumable sweep.

    Each configuration is one cached :func:`train_and_measure` call (all seeds together), stored before the next
    starts, so an interrupted sweep re-run with the same arguments loads what finished and trains only the rest.
    Identical configurations under two keys are trained once (same cache entry). ``kwargs`` go to
    :func:`train_and_measure` (``x_test``, ``y_test``, ``cache``, ``record_every`` …).

    Shape: x (n, ...), y (n,) or (n, k); configs: c entries. Returns ``{key: [RunResult per seed]}`` in the order
    of ``configs``.
    """
    from repalign.utils import progress_bar as tqdm

    out: dict[Any, list[RunResult]] = {}
    bar = tqdm(list(configs.items()), desc=desc, disable=not progress, leave=False)
    for key, cfg in bar:
        out[key] = train_and_measure(x, y, task=task, seeds=seeds, config=cfg, **kwargs)
    bar.close()
    return out


def _layer_name(runs: Sequence[RunResult], layer: str) -> str:
    """``"last"`` → the runs' last hidden layer (``hidden{depth}``); any other name is returned unchanged."""
    return runs[0].layers[-1] if layer == "last" else layer


def sweep_aucs(results: Mapping[Any, Sequence[RunResult]], layer: str = "last", *, when: str = "after") -> np.ndarray:
    """AUC (:func:`repalign.alignment_auc`) of one layer for every configuration of a :func:`sweep` and every seed.

    ``layer``: ``"input"``, ``"hidden{i}"`` or ``"last"`` (each configuration's last hidden layer, whatever its
    depth).

    .. math::  \\mathrm{AUC}_{c,s} = \\frac{1}{\\sqrt n}\\int_0^{\\sqrt n} A_{c,s}(\\tau)/\\lVert Y\\rVert^2\\, d\\tau

    Shape: returns (c, seeds), rows in the order of ``results``.
    """
    return np.stack([stack_aucs(runs, _layer_name(runs, layer), when=when) for runs in results.values()])


def sweep_final(results: Mapping[Any, Sequence[RunResult]], metric: str = "train_acc") -> np.ndarray:
    """Last-epoch value of a training metric (``train_acc``, ``train_loss``, ``val_acc`` …) per configuration and
    seed. Shape: returns (c, seeds)."""
    return np.array([[r.final[metric] for r in runs] for runs in results.values()], dtype=float)


def sweep_table(
    results: Mapping[Any, Sequence[RunResult]],
    *,
    metrics: Sequence[str] = ("train_acc",),
    label: str = "configuration",
    digits: int = 3,
) -> str:
    """A text table of a :func:`sweep`: per configuration the AUC (mean ± std over seeds) of the input, of the
    last hidden layer before and after training, and the last-epoch ``metrics``.

    Shape: one row per configuration (c rows), in the order of ``results``.
    """

    def cell(values: np.ndarray) -> str:
        mean, std = values.mean(), values.std()
        if 0 < abs(mean) < 10.0**-digits:  # e.g. a training loss near zero: keep its magnitude visible
            return f"{mean:.1e} ± {std:.0e}"
        return f"{mean:.{digits}f} ± {std:.{digits}f}"

    columns = {
        "AUC input": sweep_aucs(results, "input"),
        "AUC last (init)": sweep_aucs(results, "last", when="before"),
        "AUC last (trained)": sweep_aucs(results, "last"),
        **{m: sweep_final(results, m) for m in metrics},
    }
    keys = [", ".join(map(str, k)) if isinstance(k, tuple) else str(k) for k in results]
    rows = [[label, *columns]] + [[k, *(cell(v[i]) for v in columns.values())] for i, k in enumerate(keys)]
    widths = [max(len(r[j]) for r in rows) for j in range(len(rows[0]))]
    lines = [
        "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------------------------
# summaries of runs and training budgets
def during_aucs(runs: Sequence[RunResult], layer: str) -> tuple[np.ndarray, np.ndarray]:
    """AUC (:func:`repalign.alignment_auc`) of one layer at every recorded epoch, per seed.

    Needs runs from :func:`train_and_measure` with ``record_every`` > 0; epoch 0 is before training.
    ``layer``: ``"input"``, ``"hidden{i}"`` or ``"last"``.

    Shape: returns epochs (t,) ints and aucs (seeds, t).
    """
    layer = _layer_name(runs, layer)
    epochs = sorted(runs[0].during)
    if not epochs:
        raise ValueError("these runs recorded nothing during training; pass record_every > 0 to train_and_measure")
    if any(sorted(r.during) != epochs for r in runs):
        raise ValueError("the runs recorded different epochs")
    return np.array(epochs), np.array([[r.during[e][layer].auc() for e in epochs] for r in runs])


def epochs_for_steps(steps: int, n: int, batch_size: int) -> tuple[int, int]:
    r"""Epochs that make (about) ``steps`` optimizer steps on ``n`` examples at ``batch_size``, and the steps they
    make: for comparing batch sizes at an equal number of steps rather than an equal number of epochs.

    One epoch is :math:`s = \lceil n / b \rceil` steps (the last batch of an epoch may be smaller), so

    .. math::  \mathrm{epochs} = \max(1, \lfloor \mathrm{steps}/s + 1/2 \rfloor), \qquad
               \mathrm{actual} = \mathrm{epochs}\cdot s

    exact when s divides ``steps``, otherwise the nearest whole number of epochs (half an epoch rounds up), off by
    at most s/2 steps; at least one epoch. Report ``actual`` beside the result.

    Returns:
        (epochs, actual steps), both ints.
    """
    steps, n, batch_size = int(steps), int(n), int(batch_size)
    if steps < 1 or n < 1 or batch_size < 1:
        raise ValueError(f"steps, n and batch_size must be positive, got {steps}, {n}, {batch_size}")
    per_epoch = -(-n // batch_size)
    epochs = max(1, int(np.floor(steps / per_epoch + 0.5)))
    return epochs, epochs * per_epoch


def final_fit(runs: Sequence[RunResult], y: np.ndarray | None = None) -> np.ndarray:
    r"""How well each seed's network fits its training targets at the last epoch: the training accuracy for a
    classification task, the training :math:`R^2` for a regression task, so that "the labels are (nearly)
    memorised" reads the same way (close to 1) for both.

    .. math::  R^2 = 1 - \frac{\mathrm{MSE}_\mathrm{train}}{\overline{\operatorname{var}}(y)}

    with :math:`\mathrm{MSE}_\mathrm{train}` the last epoch's ``train_loss`` (mean over the epoch's batches, taken
    while training) and :math:`\overline{\operatorname{var}}(y)` the variance of the targets the network was
    trained on, averaged over their columns (1 for standardised targets, and for any permutation of them).

    Shape: y (n,) or (n, k), the training targets (needed for regression only). Returns (seeds,).
    """
    if all("train_acc" in r.history for r in runs):
        return np.array([r.final["train_acc"] for r in runs])
    if y is None:
        raise ValueError("final_fit: regression runs need the training targets y, to turn the final MSE into R²")
    var = float(np.var(np.asarray(y, dtype=np.float64).reshape(len(y), -1), axis=0).mean())
    if var <= 0:
        raise ValueError("final_fit: the targets are constant, so R² is undefined")
    return np.array([1.0 - r.final["train_loss"] / var for r in runs])


# ---------------------------------------------------------------------------------------------------------------
# Peaks transfer (claim 7): one source representation, all 120 target tasks at once
# ---------------------------------------------------------------------------------------------------------------
def _column_totals(spec: Spectrum, targets: np.ndarray) -> np.ndarray:
    y = np.asarray(targets, dtype=np.float64).reshape(spec.n, -1)
    if spec.centered:
        y = y - y.mean(axis=0)
    totals = np.sum(y * y, axis=0)
    if np.any(totals <= 0):
        raise ValueError("a target column is constant (zero after centring): its relative alignment is undefined")
    return totals


def column_aucs(spec: Spectrum, targets: np.ndarray, top: float | None = None) -> np.ndarray:
    r"""The AUC of each target column's relative alignment curve, from one spectrum of a target matrix.

    .. math::  \mathrm{AUC}_c = \frac{\sum_i (u_i^\top y_c)^2 \min(\sigma_i, T)}{T\,\lVert y_c\rVert^2}

    (T = √n by default), what :meth:`Spectrum.auc` gives for ``spectrum(features, targets[:, c])``, for all
    columns from one decomposition (``Spectrum.mass_columns``). ``targets`` are those the spectrum was measured
    with (centred here when the spectrum was).

    Shape: spec of (n, d) features and (n, k) targets; targets (n, k) → (k,).
    """
    T = float(np.sqrt(spec.n)) if top is None else float(top)
    if T <= 0:
        raise ValueError(f"top must be positive, got {T}")
    weights = np.minimum(np.asarray(spec.singular_values, dtype=np.float64), T)
    return (weights @ np.asarray(spec.mass_columns, dtype=np.float64)) / (T * _column_totals(spec, targets))


def column_curves(spec: Spectrum, targets: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Each target column's relative alignment curve A_c(τ)/‖y_c‖² at ``thresholds``, from one spectrum.

    Shape: targets (n, k), thresholds (t,) → (k, t).
    """
    taus = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    sig = np.asarray(spec.singular_values, dtype=np.float64)
    above = (sig[None, :] >= taus[:, None]).astype(np.float64)  # (t, r)
    curves = (above @ np.asarray(spec.mass_columns, dtype=np.float64)).T  # (k, t)
    curves = np.where(taus[None, :] <= 0, _column_totals(spec, targets)[:, None], curves)
    return curves / _column_totals(spec, targets)[:, None]


def _gd_column_losses(train_f: np.ndarray, y: np.ndarray, test_f: np.ndarray, y_test: np.ndarray, steps: int):
    from repalign.transfer import gd_linear

    res = gd_linear(train_f, y, steps=steps, record_every=max(steps, 1))
    train_loss = np.mean((res.predict(train_f) - y) ** 2, axis=0)
    test_loss = np.mean((res.predict(test_f) - y_test) ** 2, axis=0)
    return train_loss, test_loss


def _peaks_transfer_run(
    *,
    source: int,
    seed: int,
    config: dict[str, Any],
    n: int,
    n_test: int,
    data_seed: int,
    units: int,
    gd_steps: int,
    finetune_targets: list[int],
    finetune_epochs: int,
    num_thresholds: int,
) -> dict[str, Any]:
    import copy

    import torch

    from repalign.alignment import spectrum, threshold_grid
    from repalign.data import load
    from repalign.features import extract
    from repalign.models import hidden_layers, mlp
    from repalign.tasks import peaks_encode, peaks_relatedness, peaks_tasks
    from repalign.training import train
    from repalign.transfer import fine_tune

    cfg = MLPConfig(**config)
    tr = load("peaks", "train", n=n, seed=data_seed)
    te = load("peaks", "test", n=n_test, seed=data_seed)
    x, x_test = peaks_encode(tr.x, units), peaks_encode(te.x, units)
    y, y_test = np.asarray(tr.y, dtype=np.float64), np.asarray(te.y, dtype=np.float64)  # (n, 120)

    init = mlp(x.shape[1], cfg.depth, cfg.width, cfg.activation, bias=cfg.bias, out_features=1, seed=seed)
    layer = hidden_layers(init)[-1]
    untrained = copy.deepcopy(init)
    opts = dict(task="regression", optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size, progress=False)
    src = train(init, x, y[:, source].astype(np.float32), seed=seed, epochs=cfg.epochs, **opts).model

    def feats(model: Any, data: np.ndarray) -> np.ndarray:
        return np.asarray(extract(model, data, [layer], batch_size=1024, progress=False)[layer], dtype=np.float64)

    reps = {"source": (feats(src, x), feats(src, x_test)), "untrained": (feats(untrained, x), feats(untrained, x_test))}
    reps["input"] = (x.astype(np.float64), x_test.astype(np.float64))
    taus = threshold_grid(n, num=num_thresholds)
    out: dict[str, Any] = {"thresholds": taus, "layer": layer}
    for name, (f_tr, f_te) in reps.items():
        spec = spectrum(f_tr, y)  # all 120 targets, one decomposition
        out[f"auc_{name}"] = column_aucs(spec, y)
        if name == "source":
            out["curves_source"] = column_curves(spec, y, taus)
        out[f"gd_train_{name}"], out[f"gd_test_{name}"] = _gd_column_losses(f_tr, y, f_te, y_test, gd_steps)
    with torch.no_grad():
        pred = src(torch.from_numpy(x_test)).numpy().reshape(-1)
    out["source_test_mse"] = float(np.mean((pred - y_test[:, source]) ** 2))
    ft, scratch = [], []
    for t in finetune_targets:
        data = (x, y[:, t].astype(np.float32), x_test, y_test[:, t].astype(np.float32))
        kw = {**opts, "epochs": finetune_epochs, "seed": seed}
        ft.append(fine_tune(copy.deepcopy(src), *data, **kw)["test_loss"])
        scratch.append(fine_tune(copy.deepcopy(untrained), *data, **kw)["test_loss"])
    out["finetune_targets"] = np.asarray(finetune_targets, dtype=np.int64)
    out["finetune_test"] = np.asarray(ft, dtype=np.float64)
    out["scratch_test"] = np.asarray(scratch, dtype=np.float64)
    out["shared"] = np.array([peaks_relatedness(source, t) for t in peaks_tasks()], dtype=np.int64)
    out["score"] = np.array([peaks_relatedness(source, t, kind="score") for t in peaks_tasks()], dtype=np.int64)
    return out


def peaks_transfer(
    source: int,
    seed: int,
    *,
    config: MLPConfig | Mapping[str, Any] | None = None,
    n: int = 1000,
    n_test: int = 1000,
    data_seed: int = 0,
    units: int = 10,
    gd_steps: int = 200,
    finetune_targets: Sequence[int] = (),
    finetune_epochs: int = 20,
    num_thresholds: int = 62,
    cache: bool = True,
) -> dict[str, Any]:
    r"""One peaks source task and seed against all 120 target tasks (claim 7), cached.

    An MLP (``config``; seeded initial weights, one regression output) is trained on the source task's column of
    ``data.load("peaks")`` (inputs coded by :func:`repalign.tasks.peaks_encode` with ``units`` per variable). Its
    last hidden layer, frozen, is measured against all 120 targets in ONE spectrum (an (n, 120) target matrix;
    :func:`column_aucs`), and a linear learner (:func:`repalign.transfer.gd_linear`, ``gd_steps`` full-batch
    steps at :math:`\eta = 1/\sigma_1^2`, all 120 columns at once) is trained on it; the same is done for the
    same network before training ("untrained": where a from-scratch network starts) and for the coded input.
    On ``finetune_targets`` the source network is also fine-tuned (:func:`repalign.transfer.fine_tune`, new
    head, ``finetune_epochs``) and compared with the untrained network trained the same way (from scratch, the
    same budget, the same seed). Losses are per-example mean squared errors on the test inputs.

    Returns (k = 120 targets, m fine-tuned ones, t thresholds): ``auc_{source,untrained,input}`` (k,),
    ``gd_train_*``, ``gd_test_*`` (k,), ``curves_source`` (k, t), ``thresholds`` (t,), ``shared`` and ``score``
    (k,) relatedness to the source (:func:`repalign.tasks.peaks_relatedness`), ``finetune_targets`` (m,),
    ``finetune_test``, ``scratch_test`` (m,), ``source_test_mse``, ``layer``.
    """
    from repalign.cache import load_or_compute

    cfg = config if isinstance(config, MLPConfig) else MLPConfig(**dict(config or {}))
    params = {
        "source": int(source),
        "seed": int(seed),
        "config": cfg.to_dict(),
        "n": int(n),
        "n_test": int(n_test),
        "data_seed": int(data_seed),
        "units": int(units),
        "gd_steps": int(gd_steps),
        "finetune_targets": [int(t) for t in finetune_targets],
        "finetune_epochs": int(finetune_epochs),
        "num_thresholds": int(num_thresholds),
    }
    if not cache:
        return _peaks_transfer_run(**params)
    return load_or_compute("peaks_transfer", _peaks_transfer_run, params, data_id="peaks-generator")


def peaks_group_losses(
    runs: Mapping[tuple[int, int], Mapping[str, Any]], shared: int, learner: str = "linear"
) -> dict[str, Any]:
    """Per :func:`peaks_transfer` run, the mean test MSE over the targets that share ``shared`` variables with the
    source (the source itself excluded), after transfer and from scratch, and how often transfer wins.

    ``learner``: ``"linear"`` (GD on the frozen representation against GD on the untrained network's; all such
    targets) or ``"finetune"`` (fine-tuning against training from scratch; the fine-tuned subset).

    Shape: runs maps (source, seed) to a run (k runs). Returns ``transfer`` and ``scratch`` (k,) mean MSEs,
    ``positive`` (targets where transfer has the lower MSE) and ``cases`` (targets compared), summed over runs.
    """
    if learner not in ("linear", "finetune"):
        raise ValueError(f"learner must be 'linear' or 'finetune', got {learner!r}")
    transfer, scratch, positive, cases = [], [], 0, 0
    for (source, _), r in runs.items():
        if learner == "linear":
            sel = (np.arange(len(r["shared"])) != source) & (np.asarray(r["shared"]) == shared)
            tr, sc = np.asarray(r["gd_test_source"])[sel], np.asarray(r["gd_test_untrained"])[sel]
        else:
            sel = np.asarray(r["shared"])[np.asarray(r["finetune_targets"], dtype=int)] == shared
            tr, sc = np.asarray(r["finetune_test"])[sel], np.asarray(r["scratch_test"])[sel]
        if not sel.any():
            raise ValueError(f"run {source}: no target shares {shared} variables with the source ({learner})")
        transfer.append(tr.mean())
        scratch.append(sc.mean())
        positive += int(np.sum(sc > tr))
        cases += int(sel.sum())
    return {"transfer": np.array(transfer), "scratch": np.array(scratch), "positive": positive, "cases": cases}


# ---------------------------------------------------------------------------------------------------------------
# Whole networks pre-trained on a source and transferred to a target (claims 9 and 10)
# ---------------------------------------------------------------------------------------------------------------
#: small networks for the offline analogues of claims 9 and 10 (the paper's ResNet18 / T2T-ViT at paper scale)
SMALL_FAMILIES = ("mlp", "cnn")


def small_cnn(
    num_classes: int,
    *,
    in_channels: int = 1,
    image_size: int = 28,
    channels: tuple[int, int] = (16, 32),
    width: int = 128,
    seed: int | None = None,
) -> Any:
    r"""A small convolutional network: two 3×3 convolutions with stride 2, one hidden fully connected layer.

    .. math::  h = \mathrm{relu}(W\,\mathrm{flatten}(\mathrm{relu}(c_2 * \mathrm{relu}(c_1 * x)))),\quad
               \hat y = W_o h + b_o

    Children: ``conv1, relu1, conv2, relu2, flatten, linear, hidden, output``; ``hidden`` is the representation
    (the penultimate layer). Shape: input (n, in_channels, S, S), S divisible by 4; ``hidden`` (n, width);
    output (n, num_classes).
    """
    from torch import nn

    from repalign.training import seeded

    if image_size % 4 or image_size < 4:
        raise ValueError(f"small_cnn: image_size must be a positive multiple of 4, got {image_size}")
    c1, c2 = (int(c) for c in channels)
    with seeded(seed):
        return nn.Sequential(
            OrderedDict(
                conv1=nn.Conv2d(in_channels, c1, 3, stride=2, padding=1),
                relu1=nn.ReLU(),
                conv2=nn.Conv2d(c1, c2, 3, stride=2, padding=1),
                relu2=nn.ReLU(),
                flatten=nn.Flatten(),
                linear=nn.Linear(c2 * (image_size // 4) ** 2, int(width)),
                hidden=nn.ReLU(),
                output=nn.Linear(int(width), int(num_classes)),
            )
        )


def network_layer(family: str) -> str:
    """The representation layer of a network family: ``mlp`` → ``hidden2`` (its last hidden layer), ``cnn`` →
    ``hidden``, a backbone of :mod:`repalign.models` → :func:`repalign.models.feature_layer`."""
    if family == "mlp":
        return "hidden2"
    if family == "cnn":
        return "hidden"
    from repalign.models import feature_layer

    return feature_layer(family)


def network_inputs(family: str, x: np.ndarray, image_size: int | None = None) -> np.ndarray:
    """Images as a network family takes them: as they are (float32) for the small networks, 3 channels at
    ``image_size`` px with the backbone's normalisation (:func:`repalign.models.prepare_images`) for a backbone.

    Shape: x (n, C, H, W) in [0, 1] → (n, C, H, W) or (n, 3, image_size, image_size) float32.
    """
    if family in SMALL_FAMILIES:
        return np.ascontiguousarray(x, dtype=np.float32)
    from repalign.models import prepare_images

    return prepare_images(x, family, int(image_size or x.shape[-1])).numpy()


def network_spec(
    family: str,
    num_classes: int,
    in_shape: Sequence[int],
    *,
    seed: int = 0,
    state: Mapping[str, np.ndarray] | None = None,
    pretrained: bool = False,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """A network as plain data (what :func:`build_network` builds and the cache stores), with an ``id``.

    ``family``: ``mlp`` (2 × 256 ReLU, with biases), ``cnn`` (:func:`small_cnn`) or a backbone of
    :func:`repalign.models.backbone` (``pretrained``: its ImageNet weights); ``state``: trained weights
    (``{name: array}``), else a fresh initialisation under ``seed``; ``checkpoint``: a folder or file that
    ``repalign.pretrain.load_pretrained`` reads (claim 9 at paper scale). ``id`` hashes all of it (the weights by
    content, a checkpoint by path, size and modification time).
    """
    if family not in SMALL_FAMILIES:
        from repalign.models import BACKBONES

        if family not in BACKBONES:
            raise ValueError(f"unknown network family {family!r}; choose one of {SMALL_FAMILIES + BACKBONES}")
    spec: dict[str, Any] = {
        "family": family,
        "num_classes": int(num_classes),
        "in_shape": [int(s) for s in in_shape],
        "seed": int(seed),
        "pretrained": bool(pretrained),
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "state": None if state is None else {k: np.asarray(v) for k, v in state.items()},
    }
    weights = "init" if state is None else data_fingerprint(*(spec["state"][k] for k in sorted(spec["state"])))
    if pretrained and state is None:
        from repalign.models import weights_id

        weights = weights_id(family, True)
    if checkpoint is not None:
        p = Path(checkpoint)
        st = p.stat() if p.exists() else None
        weights = f"checkpoint:{p.resolve()}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}"
    head = {k: v for k, v in spec.items() if k != "state"}
    spec["id"] = hashlib.sha256(repr((sorted(head.items()), weights)).encode()).hexdigest()[:16]
    return spec


def build_network(spec: Mapping[str, Any]) -> Any:
    """The ``nn.Module`` of a :func:`network_spec` (on the CPU, training mode)."""
    import torch

    family, k, shape = spec["family"], int(spec["num_classes"]), list(spec["in_shape"])
    if spec.get("checkpoint"):
        from repalign import pretrain  # claim 9 at paper scale: checkpoints made by repalign.pretrain

        return pretrain.load_pretrained(spec["checkpoint"])
    if family == "mlp":
        from repalign.models import mlp

        model = mlp(int(np.prod(shape)), 2, 256, bias=True, out_features=k, seed=spec["seed"])
    elif family == "cnn":
        model = small_cnn(k, in_channels=shape[0], image_size=shape[-1], seed=spec["seed"])
    else:
        from repalign.models import backbone

        pretrained = bool(spec["pretrained"]) and spec.get("state") is None
        model = backbone(family, pretrained=pretrained, num_classes=k, image_size=shape[-1], seed=spec["seed"])
    if spec.get("state") is not None:
        model.load_state_dict({name: torch.from_numpy(np.array(v)) for name, v in spec["state"].items()})
    return model


def _fresh_head(model: Any, num_classes: int, seed: int) -> None:
    """Replace the output layer by a freshly drawn ``num_classes``-way one, even when it has that size."""
    from repalign.models import output_head, replace_head

    head = output_head(model)
    if getattr(head, "out_features", None) == num_classes:
        replace_head(model, num_classes + 1, seed=seed)
    replace_head(model, num_classes, seed=seed)


def _accuracy(model: Any, x: np.ndarray, y: np.ndarray, device: Any = None, batch_size: int = 256) -> float:
    """Argmax accuracy of ``model`` on (x, y), in eval mode. Shape: x (n, ...), y (n,) ints."""
    import torch

    dev = next(model.parameters()).device if device is None else torch.device(device)
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            xb = torch.as_tensor(x[start : start + batch_size]).to(dev)
            correct += int((model(xb).argmax(1).cpu().numpy() == y[start : start + batch_size]).sum())
    return correct / max(len(x), 1)


def _train_network_run(
    spec: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    epochs: int,
    lr: float,
    batch_size: int,
    until_accuracy: float | None,
    check_every: int,
    fresh_head: bool,
    device: Any,
    progress: bool,
) -> dict[str, Any]:
    import time

    from repalign.training import train
    from repalign.utils import get_device

    num_classes = int(np.max(y)) + 1
    model = build_network(spec)
    if fresh_head:
        _fresh_head(model, num_classes, seed)
    dev = get_device(device)
    history: dict[str, list[float]] = {"train_loss": [], "train_acc": []}
    done, accuracy, start = 0, float("nan"), time.perf_counter()
    while done < epochs:
        chunk = epochs - done if until_accuracy is None else min(check_every, epochs - done)
        res = train(model, x, y, task="multiclass", lr=lr, batch_size=batch_size, epochs=chunk, seed=seed + done,
                    device=dev, progress=progress)  # fmt: skip
        model = res.model
        for key in history:
            history[key] += [float(v) for v in res.history[key]]
        done += chunk
        accuracy = _accuracy(model, x, y, dev)
        if until_accuracy is not None and accuracy >= until_accuracy:
            break
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    trained = network_spec(spec["family"], num_classes, spec["in_shape"], seed=spec["seed"], state=state)
    return {
        "network": trained,
        "train_accuracy": float(accuracy),
        "epochs": int(done),
        "history": {k: np.asarray(v) for k, v in history.items()},
        "seconds": float(time.perf_counter() - start),
    }


def train_network(
    spec: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    until_accuracy: float | None = None,
    check_every: int = 5,
    fresh_head: bool = True,
    device: Any = None,
    progress: bool = False,
    cache: bool = True,
) -> dict[str, Any]:
    r"""Train a whole network (:func:`network_spec`) on labelled images, cached: a pre-training step.

    The network gets a fresh ``K``-way head drawn under ``seed`` (K = max(y) + 1; ``fresh_head=False`` keeps a
    head of that size), then every parameter is trained with cross-entropy and Adam
    (:func:`repalign.training.train`). With ``until_accuracy`` (e.g. 0.95 for random labels "(nearly)
    memorised") training runs in chunks of ``check_every`` epochs until the training accuracy, measured after the
    chunk in eval mode, reaches it, or ``epochs`` have run (each chunk restarts Adam's moment estimates and
    shuffles with seed ``seed`` + the epochs already run).

    Shape: x (n, ...) what the network takes (:func:`network_inputs`); y (n,) ints in [0, K).

    Returns:
        ``network`` (the trained network's :func:`network_spec`), ``train_accuracy`` (eval mode, after
        training), ``epochs`` run, ``history`` (``train_loss``, ``train_acc`` per epoch, measured while
        training), ``seconds`` (of the run that computed it).
    """
    from repalign.cache import load_or_compute

    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    params = {
        "network": spec["id"],
        "seed": int(seed),
        "epochs": int(epochs),
        "lr": float(lr),
        "batch_size": int(batch_size),
        "until_accuracy": None if until_accuracy is None else float(until_accuracy),
        "check_every": int(check_every),
        "fresh_head": bool(fresh_head),
    }

    def compute(**p: Any) -> dict[str, Any]:
        del p["network"]
        return _train_network_run(spec, x, y, device=device, progress=progress, **p)

    if not cache:
        return compute(**params)
    return load_or_compute("train_network", compute, params, data_id=data_fingerprint(x, y))


def _transfer_run(
    spec: Mapping[str, Any],
    align: tuple[np.ndarray, np.ndarray],
    train_xy: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    epochs: int,
    lr: float,
    batch_size: int,
    num_thresholds: int,
    device: Any,
    progress: bool,
) -> dict[str, Any]:
    import time

    from repalign.alignment import spectrum, threshold_grid
    from repalign.features import extract
    from repalign.transfer import fine_tune
    from repalign.utils import get_device

    start = time.perf_counter()
    dev = get_device(device)
    model = build_network(spec)
    layer = network_layer(spec["family"])
    feats = extract(model, align[0], [layer], batch_size=256, device=dev, progress=False)[layer]
    spec_ = spectrum(np.asarray(feats, dtype=np.float64), one_vs_rest_targets(align[1]))
    taus = threshold_grid(len(align[1]), num=num_thresholds)
    k = int(max(np.max(train_xy[1]), np.max(test[1]))) + 1
    res = fine_tune(model, *train_xy, *test, num_classes=k, reset_head=True, epochs=epochs, lr=lr,
                    batch_size=batch_size, seed=seed, device=dev, progress=progress)  # fmt: skip
    return {
        "auc": float(spec_.auc()),
        "curve": spec_.curve(taus, relative=True),
        "thresholds": taus,
        "test_accuracy": float(res["test_accuracy"]),
        "train_accuracy": float(res["history"]["train_acc"][-1]),
        "seconds": float(time.perf_counter() - start),
    }


def transfer_to_target(
    spec: Mapping[str, Any],
    align: tuple[np.ndarray, np.ndarray],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    num_thresholds: int = 62,
    device: Any = None,
    progress: bool = False,
    cache: bool = True,
) -> dict[str, Any]:
    r"""A (pre-trained) network on a target task, cached: its alignment before, its test accuracy after training.

    1. **Alignment before target training**: the network's representation (:func:`network_layer`) of the images
       ``align`` against their labels, as centred one-vs-rest targets
       (:func:`repalign.alignment.one_vs_rest_targets`; the measure's defaults), summarised by the AUC of the
       relative curve (:meth:`repalign.alignment.Spectrum.auc`) and the curve itself on
       :func:`repalign.alignment.threshold_grid` ``(n, num_thresholds)``.
    2. **Target training**: :func:`repalign.transfer.fine_tune` with a fresh head drawn under ``seed``, every
       parameter trained (cross-entropy, Adam, ``epochs``) on ``train``; accuracy on ``test``.

    Shape: align, train, test are (x (n, ...), y (n,) ints) pairs; x as the network takes it (:func:`network_inputs`).

    Returns:
        ``auc``, ``curve`` (t,), ``thresholds`` (t,), ``test_accuracy``, ``train_accuracy`` (last epoch, while
        training), ``seconds``.
    """
    from repalign.cache import load_or_compute

    arrays = [np.ascontiguousarray(a, dtype=np.float32 if i % 2 == 0 else np.int64)
              for i, a in enumerate((*align, *train, *test))]  # fmt: skip
    align, train, test = (arrays[0], arrays[1]), (arrays[2], arrays[3]), (arrays[4], arrays[5])
    params = {
        "network": spec["id"],
        "seed": int(seed),
        "epochs": int(epochs),
        "lr": float(lr),
        "batch_size": int(batch_size),
        "num_thresholds": int(num_thresholds),
    }

    def compute(**p: Any) -> dict[str, Any]:
        del p["network"]
        return _transfer_run(spec, align, train, test, device=device, progress=progress, **p)

    if not cache:
        return compute(**params)
    data_id = {"align": data_fingerprint(*align), "train": data_fingerprint(*train), "test": data_fingerprint(*test)}
    return load_or_compute("transfer_to_target", compute, params, data_id=data_id)


def class_split(
    name: str, classes: str | Sequence[int | str], *, n_test_per_class: int | None = None, data_seed: int = 0
) -> tuple[Any, Any]:
    """(train pool, test set) of some classes of a data set, labels relabelled 0..k-1 in the order of ``classes``.

    ``classes``: class indices or names, or ``"natural"`` / ``"artificial"`` for CIFAR-10 (PAPER.md §3.9,
    :data:`repalign.data.CIFAR10_SPLIT`). The official test split when the data set has one (a seeded draw of
    ``n_test_per_class`` per class of it, or all of it for ``None``); otherwise (embedded MNIST) a seeded draw
    of ``n_test_per_class`` per class held out from the pool.
    """
    from repalign.data import CIFAR10_SPLIT, load
    from repalign.tasks import class_subset, split_per_class

    if isinstance(classes, str):
        if name != "cifar10" or classes not in CIFAR10_SPLIT:
            raise ValueError(f"{name}: classes={classes!r}; named class sets exist for cifar10 (natural, artificial)")
        classes = CIFAR10_SPLIT[classes]
    try:
        pool, test_pool = load(name, "train"), load(name, "test")
    except ValueError:  # no official split (embedded MNIST): hold out a seeded per-class draw
        if n_test_per_class is None:
            raise ValueError(f"{name} has no official test split: give n_test_per_class") from None
        test, pool = split_per_class(class_subset(load(name, "all"), classes), n_test_per_class, seed=data_seed)
        return pool, test
    return class_subset(pool, classes), class_subset(test_pool, classes, n_test_per_class, seed=data_seed)


def pretrained_checkpoint(family: str, subset: str, folder: str | Path, *, in_shape: Sequence[int]) -> dict[str, Any]:
    """The :func:`network_spec` of a checkpoint made by ``repalign.pretrain`` (claim 9 at paper scale:
    ``family`` pre-trained on the ImageNet ``subset``, natural or artificial, into ``folder``).

    Raises:
        FileNotFoundError: when ``folder`` holds no checkpoint; the message is the ``torchrun`` command that makes it
            (``repalign.pretrain.command``).
    """
    from repalign import pretrain

    path = Path(pretrain.checkpoint_file(folder))
    if not path.is_file():
        cmd = pretrain.command(family, subset, str(Path(folder).resolve()))
        raise FileNotFoundError(
            f"no {family} checkpoint pre-trained on ImageNet-{subset} at {path}. Make it (ImageNet in "
            f"$REPALIGN_DATA/imagenet, a GPU node; see docs/PRETRAIN.md) with:\n  {cmd}"
        )
    return network_spec(family, 0, in_shape, checkpoint=str(path))
