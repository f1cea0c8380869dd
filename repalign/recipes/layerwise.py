r"""Claims 0 to 6: MLPs trained on a task, every layer's alignment measured before, during and after training.

:func:`train_and_measure` is the cached experiment (one MLP per seed, trained together; a :class:`RunResult` per
seed with each layer's :class:`repalign.measure.alignment.Spectrum`); :func:`sweep` runs it over a grid of
configurations (:func:`config_grid`) and resumes from the cache. The rest summarise runs over seeds for the
notebooks' tables and verdicts: curves, AUCs and :math:`\tau_q` per layer (:func:`stack_curves`, :func:`stack_aucs`,
:func:`stack_taus`), per configuration (:func:`sweep_aucs`, :func:`sweep_final`, :func:`sweep_table`), over training
(:func:`during_aucs`), and how well the labels were fitted (:func:`final_fit`). :func:`prepare_tasks` and
:func:`task_label` cut and name the tasks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repalign.core.arrays import data_fingerprint
from repalign.core.cache import load_or_compute
from repalign.core.progress import progress_bar as tqdm
from repalign.data import Dataset, prepare_task
from repalign.measure.alignment import AlignmentAccumulator, Spectrum
from repalign.measure.targets import alignment_targets
from repalign.networks.ensemble import train_ensemble
from repalign.networks.features import extract
from repalign.networks.models import hidden_layers, mlp
from repalign.networks.training import train

__all__ = [
    "task_label",
    "prepare_tasks",
    "flat_task",
    "MLPConfig",
    "RunResult",
    "measure_layers",
    "train_and_measure",
    "stack_curves",
    "stack_aucs",
    "stack_taus",
    "last_layer_curves",
    "config_grid",
    "sweep",
    "sweep_aucs",
    "sweep_final",
    "sweep_table",
    "during_aucs",
    "epochs_for_steps",
    "final_fit",
]


def task_label(ds: Dataset, name: str | None = None) -> str:
    """A task's label for tables and claim files: the data set's title (else ``name``, else its own name), and for a
    binary pair its two classes: ``"MNIST 3 vs 8"``, ``"Chicago ridership"``."""
    title = ds.info.title or name or ds.info.name
    return f"{title} {' vs '.join(ds.info.classes)}" if ds.info.task == "binary" else title


def prepare_tasks(
    specs: Mapping[str, Mapping[str, Any]], *, seed: int, target_scaling: str | None
) -> tuple[dict[str, Dataset], dict[str, str]]:
    """:func:`repalign.data.prepare_task` of each labelled spec (its keyword arguments: ``name``, ``classes``,
    ``n_per_class`` …) with one ``seed`` and ``target_scaling``, and each task's description for a claim file.

    Shape: specs map a label to a spec (k tasks). Returns ({label: Dataset}, {label: description}).
    """
    tasks = {label: prepare_task(**spec, seed=seed, target_scaling=target_scaling) for label, spec in specs.items()}
    return tasks, {label: ds.info.describe() for label, ds in tasks.items()}


def flat_task(ds: Dataset, name: str | None = None) -> tuple[np.ndarray, str, dict[str, str]]:
    """A task's inputs as rows (what an MLP and the measure take), its label (:func:`task_label`) and its
    description keyed by that label (for a claim file).

    Shape: ds.x (n, ...) → (n, d), d the product of the example's dimensions.
    """
    label = task_label(ds, name)
    return ds.x.reshape(len(ds), -1), label, {label: ds.info.describe()}


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

    ``bias``, ``normalize``, ``center``: the preprocessing of :class:`repalign.measure.alignment.AlignmentAccumulator`.

    Shape: x (n, ...) model inputs; targets (n,) or (n, k). Returns ``{layer: Spectrum}``.
    """

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
    """τ_q of one layer per seed: the largest τ with A(τ) ≥ q‖Y‖² (:meth:`repalign.measure.alignment.Spectrum.tau_q`; the
    demo's "≈ 990 of 1,000 up to τ ≈ 21" is τ_0.99). Shape: (seeds,)."""
    return np.array([getattr(r, when)[layer].tau_q(q) for r in runs])


def last_layer_curves(runs: Mapping[str, Sequence[RunResult]], thresholds: np.ndarray) -> dict[str, np.ndarray]:
    """Relative alignment curves over seeds of the input (read from the first entry's runs: the same data) and of
    each entry's last hidden layer after training, e.g. one entry per depth or per batch size.

    Shape: runs map a name to its runs (seeds); thresholds (t,). Returns ``{"input": (seeds, t), name: (seeds, t)}``.
    """
    curves = {"input": stack_curves(next(iter(runs.values())), "input", thresholds)}
    for name, rs in runs.items():
        curves[name] = stack_curves(rs, rs[0].layers[-1], thresholds)
    return curves


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
