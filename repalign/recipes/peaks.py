r"""Claim 7 on Caruana's peaks tasks: a network trained on one task, its representation measured on all 120.

:func:`peaks_transfer` is the cached experiment of one source task and seed (a :class:`PeaksTransfer`); the
other functions summarise such runs for notebook 07: per relatedness group (:func:`peaks_group_losses`,
:func:`peaks_group_alignment`, :func:`alignment_change_table`, :func:`shared_group_curves`), per target
(:func:`transfer_gains`, :func:`alignment_before_after`) and per run (:func:`run_pairs`, what a rank correlation
over runs reads, and :func:`run_taus`, Kendall's τ per run). Relatedness is the number of input variables a
target shares with the source (:func:`repalign.data.peaks_relatedness`), 0 to 3 (3: the source itself and the
tasks on its variables), and of those how many keep their role (the test, the THEN or the ELSE variable).
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np
from scipy.stats import kendalltau

from repalign.core.cache import load_or_compute
from repalign.data import load, peaks_encode, peaks_relatedness, peaks_task_id, peaks_tasks
from repalign.measure.alignment import column_aucs, column_curves, spectrum, threshold_grid
from repalign.networks.evaluate import predict
from repalign.networks.features import extract
from repalign.networks.finetune import fine_tune
from repalign.networks.linear import gd_linear
from repalign.networks.models import hidden_layers, mlp
from repalign.networks.training import train
from repalign.recipes.layerwise import MLPConfig
from repalign.recipes.results import PlainResult, noted_options

__all__ = [
    "PeaksTransfer",
    "peaks_transfer",
    "peaks_group_losses",
    "peaks_group_alignment",
    "alignment_change_table",
    "shared_group_curves",
    "transfer_gains",
    "alignment_before_after",
    "run_pairs",
    "run_taus",
]

#: the relatedness groups: how many input variables a target shares with the source
SHARED_GROUPS = (0, 1, 2, 3)
#: the fields of a :class:`PeaksTransfer` that are not arrays
_NOT_ARRAYS = ("source", "layer", "source_test_mse", "options")


@dataclass(frozen=True, eq=False)
class PeaksTransfer(PlainResult):
    """One peaks source task and seed against all k = 120 target tasks (:func:`peaks_transfer`).

    Attributes (k = 120 targets, m fine-tuned ones, t thresholds):
        source: the source task's index (0..119).
        layer: the measured layer (the network's last hidden layer).
        thresholds: (t,) the grid of ``curves_source``.
        auc_source, auc_untrained, auc_input: (k,) AUC of each target on the trained network's representation,
            on the same network before training, on the coded input.
        curves_source: (k, t) relative alignment curve of each target on the trained representation.
        gd_train_source, gd_test_source, gd_train_untrained, gd_test_untrained, gd_train_input, gd_test_input:
            (k,) train and test MSE of the linear learner on each representation.
        source_test_mse: the source network's test MSE on its own task.
        finetune_targets: (m,) the fine-tuned targets' indices; finetune_test, scratch_test: (m,) their test MSE
            after fine-tuning the source network and after training the untrained one the same way.
        shared, score: (k,) relatedness of each target to the source (shared variables 0..3; score 0..6).
        options: the preprocessing of the spectra behind the AUCs (``bias``, ``normalize``, ``center``, ``method``).
    """

    source: int
    layer: str
    thresholds: np.ndarray
    auc_source: np.ndarray
    auc_untrained: np.ndarray
    auc_input: np.ndarray
    curves_source: np.ndarray
    gd_train_source: np.ndarray
    gd_test_source: np.ndarray
    gd_train_untrained: np.ndarray
    gd_test_untrained: np.ndarray
    gd_train_input: np.ndarray
    gd_test_input: np.ndarray
    source_test_mse: float
    finetune_targets: np.ndarray
    finetune_test: np.ndarray
    scratch_test: np.ndarray
    shared: np.ndarray
    score: np.ndarray
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def others(self) -> np.ndarray:
        """Which targets are not the source. Shape: (k,) booleans."""
        return np.arange(self.shared.size) != self.source

    @property
    def roles(self) -> np.ndarray:
        """Of the variables each target shares with the source, how many keep their role (score − shared).

        Shape: (k,) ints, 0..3 (3 only for the source itself).
        """
        return np.asarray(self.score) - np.asarray(self.shared)

    @property
    def auc_change(self) -> np.ndarray:
        r"""What training on the source did to each target's alignment:
        :math:`\Delta_c = \mathrm{AUC}^{\mathrm{trained}}_c - \mathrm{AUC}^{\mathrm{untrained}}_c` (the same network,
        the same target). Shape: (k,)."""
        return np.asarray(self.auc_source) - np.asarray(self.auc_untrained)

    def group(self, shared: int) -> np.ndarray:
        """Which targets, the source left out, share ``shared`` variables with it. Shape: (k,) booleans."""
        return self.others & (np.asarray(self.shared) == shared)

    def by_shared(self, values: np.ndarray) -> np.ndarray:
        """Mean of per-target ``values`` over the targets (the source left out) sharing g = 0, 1, 2, 3 variables.

        Shape: values (k,) → (4,).
        """
        return np.array([values[self.group(g)].mean() for g in SHARED_GROUPS])

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PeaksTransfer:
        """Rebuild from :meth:`to_dict`; the spectra's preprocessing is noted with the measure
        (:func:`repalign.recipes.results.noted_options`), so a result read from the cache records it too."""
        arrays = {f.name: np.asarray(data[f.name]) for f in fields(cls) if f.name not in _NOT_ARRAYS}
        return cls(
            source=int(data["source"]),
            layer=str(data["layer"]),
            source_test_mse=float(data["source_test_mse"]),
            options=noted_options(data),
            **arrays,
        )


def _gd_column_losses(
    train_f: np.ndarray, y: np.ndarray, test_f: np.ndarray, y_test: np.ndarray, steps: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test MSE per target column of the linear learner after ``steps`` GD steps. Shape: (k,), (k,)."""
    res = gd_linear(train_f, y, steps=steps, record_every=max(steps, 1))
    train_loss = np.mean((res.predict(train_f) - y) ** 2, axis=0)
    test_loss = np.mean((res.predict(test_f) - y_test) ** 2, axis=0)
    return train_loss, test_loss


def _peaks_data(n: int, n_test: int, data_seed: int, units: int) -> tuple[np.ndarray, ...]:
    """The coded inputs and all 120 targets of one training and one test sample.

    Shape: returns x (n, 6 · units) float32, y (n, 120) float64, x_test (n_test, 6 · units), y_test (n_test, 120).
    """
    tr = load("peaks", "train", n=n, seed=data_seed)
    te = load("peaks", "test", n=n_test, seed=data_seed)
    y, y_test = np.asarray(tr.y, dtype=np.float64), np.asarray(te.y, dtype=np.float64)
    return peaks_encode(tr.x, units), y, peaks_encode(te.x, units), y_test


def _untrained(in_features: int, cfg: MLPConfig, seed: int) -> tuple[Any, str]:
    """The source network before training (seeded: the same weights for every source task) and its last hidden
    layer's name."""
    model = mlp(in_features, cfg.depth, cfg.width, cfg.activation, bias=cfg.bias, out_features=1, seed=seed)
    return model, hidden_layers(model)[-1]


def _layer_features(model: Any, layer: str, data: np.ndarray) -> np.ndarray:
    """One layer's features, float64. Shape: data (m, d) → (m, width)."""
    return np.asarray(extract(model, data, [layer], batch_size=1024, progress=False)[layer], dtype=np.float64)


def _scores(
    name: str, features: tuple[np.ndarray, np.ndarray], y: np.ndarray, y_test: np.ndarray, gd_steps: int
) -> dict[str, Any]:
    """Per target, one representation's AUC (all 120 from ONE spectrum) and the linear learner's train and test MSE,
    keyed ``auc_<name>``, ``gd_train_<name>``, ``gd_test_<name>``, with the spectrum (``spectrum``, not stored) and
    its preprocessing (``options``).

    Shape: features (n, d) and (m, d); y (n, 120), y_test (m, 120) → each entry (120,).
    """
    f_tr, f_te = features
    spec = spectrum(f_tr, y)
    gd_train, gd_test = _gd_column_losses(f_tr, y, f_te, y_test, gd_steps)
    return {f"auc_{name}": column_aucs(spec, y), f"gd_train_{name}": gd_train, f"gd_test_{name}": gd_test,
            "options": dict(spec.options), "spectrum": spec}  # fmt: skip


def _baseline_run(
    *, seed: int, config: dict[str, Any], n: int, n_test: int, data_seed: int, units: int, gd_steps: int
) -> dict[str, Any]:
    """Uncached worker of :func:`_baselines`: the scores (:func:`_scores`) of the untrained network and of the coded
    input, for all 120 targets. They do not depend on the source task."""
    x, y, x_test, y_test = _peaks_data(n, n_test, data_seed, units)
    untrained, layer = _untrained(x.shape[1], MLPConfig(**config), seed)
    feats = (_layer_features(untrained, layer, x), _layer_features(untrained, layer, x_test))
    out = _scores("untrained", feats, y, y_test, gd_steps)
    out.update(_scores("input", (x.astype(np.float64), x_test.astype(np.float64)), y, y_test, gd_steps))
    del out["spectrum"]
    return out


def _baselines(params: dict[str, Any], cache: bool) -> dict[str, Any]:
    """:func:`_baseline_run`, cached when ``cache``: the same for every source task of a seed, so computed once."""
    if not cache:
        return _baseline_run(**params)
    return load_or_compute("peaks_baseline", _baseline_run, params, data_id="peaks-generator")


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
    cache: bool = False,
) -> dict[str, Any]:
    """Uncached worker of :func:`peaks_transfer` (``cache``: whether the source-free baselines, :func:`_baselines`,
    come from the cache); returns :meth:`PeaksTransfer.to_dict`'s plain data."""
    cfg = MLPConfig(**config)
    x, y, x_test, y_test = _peaks_data(n, n_test, data_seed, units)
    init, layer = _untrained(x.shape[1], cfg, seed)
    untrained = copy.deepcopy(init)
    opts = dict(task="regression", optimizer=cfg.optimizer, lr=cfg.lr, batch_size=cfg.batch_size, progress=False)
    src = train(init, x, y[:, source].astype(np.float32), seed=seed, epochs=cfg.epochs, **opts).model

    taus = threshold_grid(n, num=num_thresholds)
    out: dict[str, Any] = {"source": int(source), "thresholds": taus, "layer": layer}
    shared = dict(seed=seed, config=config, n=n, n_test=n_test, data_seed=data_seed, units=units, gd_steps=gd_steps)
    out.update(_baselines(shared, cache))
    feats = (_layer_features(src, layer, x), _layer_features(src, layer, x_test))
    out.update(_scores("source", feats, y, y_test, gd_steps))
    out["curves_source"] = column_curves(out.pop("spectrum"), y, taus)
    pred = predict(src, x_test, batch_size=max(len(x_test), 1)).reshape(-1)  # the whole test set in one pass
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
) -> PeaksTransfer:
    r"""One peaks source task and seed against all 120 target tasks (claim 7), cached.

    An MLP (``config``; seeded initial weights, one regression output) is trained on the source task's column of
    ``data.load("peaks")`` (inputs coded by :func:`repalign.data.peaks_encode` with ``units`` per variable). Its
    last hidden layer Φ, frozen, is measured against all 120 targets Y in ONE spectrum (an (n, 120) target matrix;
    :func:`repalign.measure.alignment.column_aucs`), and a linear learner
    (:func:`repalign.networks.linear.gd_linear`, ``gd_steps`` full-batch steps at :math:`\eta = 1/\sigma_1^2`, all
    120 columns at once) is trained on it; the same is done for the same network before training ("untrained":
    where a from-scratch network starts) and for the coded input (these two do not depend on the source task: with
    ``cache`` they are computed once per seed and shared by every source). On ``finetune_targets`` the source
    network is also fine-tuned (:func:`repalign.networks.finetune.fine_tune`, new head, ``finetune_epochs``) and
    compared with the untrained network trained the same way (from scratch, the same budget, the same seed).
    Losses are per-example mean squared errors on the test inputs:

    .. math::  \mathrm{MSE}_c = \tfrac1m \textstyle\sum_j (\hat y_{jc} - y_{jc})^2

    Shape: n training and ``n_test`` test inputs (n, 6 · units) coded; targets (n, 120). Returns a
    :class:`PeaksTransfer` (its attributes give the shapes). A result loaded from the cache notes its spectra's
    preprocessing with the measure, as a computed one does.
    """
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
        return PeaksTransfer.from_dict(_peaks_transfer_run(**params))
    worker = functools.partial(_peaks_transfer_run, cache=True)  # the baselines cached too, shared by the sources
    return PeaksTransfer.from_dict(load_or_compute("peaks_transfer", worker, params, data_id="peaks-generator"))


def peaks_group_losses(
    runs: Mapping[tuple[int, int], PeaksTransfer], shared: int, learner: str = "linear"
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
    for r in runs.values():
        if learner == "linear":
            sel = r.group(shared)
            tr, sc = np.asarray(r.gd_test_source)[sel], np.asarray(r.gd_test_untrained)[sel]
        else:
            sel = np.asarray(r.shared)[np.asarray(r.finetune_targets, dtype=int)] == shared
            tr, sc = np.asarray(r.finetune_test)[sel], np.asarray(r.scratch_test)[sel]
        if not sel.any():
            raise ValueError(f"run {r.source}: no target shares {shared} variables with the source ({learner})")
        transfer.append(tr.mean())
        scratch.append(sc.mean())
        positive += int(np.sum(sc > tr))
        cases += int(sel.sum())
    return {"transfer": np.array(transfer), "scratch": np.array(scratch), "positive": positive, "cases": cases}


def peaks_group_alignment(runs: Sequence[PeaksTransfer], shared: int) -> dict[str, Any]:
    r"""Alignment before and after training on the source, over the targets that share ``shared`` variables with
    it (the source itself left out): per :func:`peaks_transfer` run the mean AUC of those targets on the trained
    network and on the same network before training, and how many single targets' AUC went down.

    .. math::  \bar A^{\mathrm{trained}}_r = \tfrac1{|G|}\textstyle\sum_{c \in G} \mathrm{AUC}^{\mathrm{trained}}_{rc},
               \qquad \bar A^{\mathrm{untrained}}_r \text{ likewise},\qquad
               \mathrm{fell} = \#\{(r, c) : \Delta_{rc} < 0\}

    with :math:`G` the group and :math:`\Delta_{rc}` :attr:`PeaksTransfer.auc_change` (paired per target: the same
    target in the same run before and after training).

    Shape: k runs. Returns ``trained`` and ``untrained`` (k,) mean AUCs, ``fell`` (targets whose AUC went down)
    and ``cases`` (targets compared), summed over runs.
    """
    trained, untrained, fell, cases = [], [], 0, 0
    for r in runs:
        sel = r.group(shared)
        if not sel.any():
            raise ValueError(f"run {r.source}: no target shares {shared} variables with the source")
        trained.append(np.asarray(r.auc_source)[sel].mean())
        untrained.append(np.asarray(r.auc_untrained)[sel].mean())
        fell += int(np.sum(r.auc_change[sel] < 0))
        cases += int(sel.sum())
    return {"trained": np.array(trained), "untrained": np.array(untrained), "fell": fell, "cases": cases}


def alignment_change_table(runs: Sequence[PeaksTransfer]) -> dict[str, dict[str, Any]]:
    r"""What training on the source did to alignment, by relatedness class: the number of variables a target shares
    with the source and, of those, how many keep their role (the source itself left out).

    Per class :math:`G`: the mean change :math:`\bar\Delta = \tfrac1k \sum_r \bar\Delta_r` of the per-run means
    :math:`\bar\Delta_r = \tfrac1{|G_r|} \sum_{c \in G_r} \Delta_{rc}` (:attr:`PeaksTransfer.auc_change`), its
    standard error over runs :math:`\mathrm{sd}(\bar\Delta_r)/\sqrt k` (0 for one run), and how many single
    targets' AUC went down.

    Shape: k runs. Returns ``{"3 shared, 1 in the same role": {"change", "std_error", "fell", "cases"}, ...}``,
    from the most related class to the least (a run without targets of a class does not count for it).
    """
    classes = {(int(g), int(q)) for r in runs for g, q in zip(r.shared[r.others], r.roles[r.others], strict=True)}
    table: dict[str, dict[str, Any]] = {}
    for g, q in sorted(classes, reverse=True):
        means, fell, cases = [], 0, 0
        for r in runs:
            sel = r.group(g) & (r.roles == q)
            if not sel.any():
                continue
            means.append(r.auc_change[sel].mean())
            fell += int(np.sum(r.auc_change[sel] < 0))
            cases += int(sel.sum())
        m = np.asarray(means)
        se = float(m.std(ddof=1) / np.sqrt(m.size)) if m.size > 1 else 0.0
        label = f"{g} shared, {q} in the same role"
        table[label] = {"change": float(m.mean()), "std_error": se, "fell": fell, "cases": cases}
    return table


def _same_source(runs: Sequence[PeaksTransfer]) -> PeaksTransfer:
    """The first of runs of one source (over seeds); a ValueError when they are empty or mix sources."""
    if not runs or any(r.source != runs[0].source for r in runs):
        raise ValueError("pass the runs (one per seed) of a single source task")
    return runs[0]


def shared_group_curves(runs: Sequence[PeaksTransfer]) -> dict[str, np.ndarray]:
    """Relative alignment curves of one source's representation, per seed: the source task's own, then the mean
    curve of the targets sharing 3, 2, 1 and 0 variables with it (the source left out), labelled for a legend.

    Shape: runs of one source over s seeds. Returns ``{label: (s, t)}`` on the runs' ``thresholds`` (t,).
    """
    first = _same_source(runs)
    source = first.source
    curves = {f"the source {peaks_task_id(source)}": np.stack([r.curves_source[source] for r in runs])}
    for g in reversed(SHARED_GROUPS):
        sel = first.group(g)
        curves[f"shares {g} variables ({sel.sum()} targets)"] = np.stack(
            [r.curves_source[sel].mean(axis=0) for r in runs]
        )
    return curves


def _mean_over_seeds(runs: Sequence[PeaksTransfer], name: str) -> np.ndarray:
    return np.mean([getattr(r, name) for r in runs], axis=0)


def transfer_gains(runs: Sequence[PeaksTransfer], learner: str = "linear") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Per target of one source, the trained representation's AUC and the transfer gain, both means over seeds,
    and the target's relatedness group.

    .. math::  \mathrm{gain}_c = \overline{\mathrm{MSE}}^{\,\mathrm{scratch}}_c - \overline{\mathrm{MSE}}^{\,\mathrm{transfer}}_c

    ``learner``: ``"linear"`` (GD on the untrained network's representation against the trained one's; the
    targets other than the source) or ``"finetune"`` (training from scratch against fine-tuning; the fine-tuned
    targets).

    Shape: runs of one source over seeds. Returns (auc, gain, shared), each (c,): c = 119 (linear) or m (finetune).
    """
    if learner not in ("linear", "finetune"):
        raise ValueError(f"learner must be 'linear' or 'finetune', got {learner!r}")
    first = _same_source(runs)
    auc = _mean_over_seeds(runs, "auc_source")
    if learner == "linear":
        sel = first.others
        gain = _mean_over_seeds(runs, "gd_test_untrained") - _mean_over_seeds(runs, "gd_test_source")
        return auc[sel], gain[sel], first.shared[sel]
    sel = first.finetune_targets
    gain = _mean_over_seeds(runs, "scratch_test") - _mean_over_seeds(runs, "finetune_test")  # already (m,)
    return auc[sel], gain, first.shared[sel]


def alignment_before_after(runs: Sequence[PeaksTransfer]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per target of one source, its AUC on the network before and after training on the source (means over
    seeds), and its relatedness group; the source itself left out. Points above the diagonal gained alignment.

    Shape: runs of one source over seeds. Returns (before, after, shared), each (119,).
    """
    first = _same_source(runs)
    sel = first.others
    return _mean_over_seeds(runs, "auc_untrained")[sel], _mean_over_seeds(runs, "auc_source")[sel], first.shared[sel]


def run_pairs(
    runs: Sequence[PeaksTransfer],
    x: Callable[[PeaksTransfer], np.ndarray],
    y: Callable[[PeaksTransfer], np.ndarray],
    on: str = "others",
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per run, the pair (x, y) of per-target values that a rank correlation over runs reads
    (:func:`repalign.run.claims.rank_correlated`).

    ``on="others"``: x(run) and y(run) are (k,) and both are read over the targets other than the source;
    ``on="finetune"``: x(run) is (k,) and read at the fine-tuned targets, y(run) is already (m,) over them.

    Shape: returns one pair of (119,) or (m,) arrays per run.
    """
    if on not in ("others", "finetune"):
        raise ValueError(f"on must be 'others' or 'finetune', got {on!r}")
    if on == "others":
        return [(x(r)[r.others], y(r)[r.others]) for r in runs]
    return [(x(r)[r.finetune_targets], y(r)) for r in runs]


def run_taus(
    runs: Sequence[PeaksTransfer],
    x: Callable[[PeaksTransfer], np.ndarray],
    y: Callable[[PeaksTransfer], np.ndarray],
    on: str = "others",
) -> np.ndarray:
    r"""Kendall's τ between two per-target quantities, one value per run (the pairs of :func:`run_pairs`):

    .. math::  \tau_r = \mathrm{Kendall}\big(x(r), y(r)\big)

    e.g. τ(AUC, −test MSE) on the trained and on the untrained network, for a verdict on their difference.

    Shape: k runs → (k,). Raises ValueError where τ is undefined (a constant x or y in some run).
    """
    taus = np.array([kendalltau(a, b)[0] for a, b in run_pairs(runs, x, y, on)], dtype=np.float64)
    if not np.all(np.isfinite(taus)):
        raise ValueError(f"Kendall tau is undefined in some run (a constant x or y): {taus.tolist()}")
    return taus
