"""TODO docstring (from experiments)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from repalign.core.cache import load_or_compute
from repalign.data.base import load
from repalign.data.peaks import peaks_encode, peaks_relatedness, peaks_tasks
from repalign.measure.alignment import column_aucs, column_curves, spectrum, threshold_grid
from repalign.networks.features import extract
from repalign.networks.finetune import fine_tune
from repalign.networks.linear import gd_linear
from repalign.networks.models import hidden_layers, mlp
from repalign.networks.training import train
from repalign.recipes.layerwise import MLPConfig

__all__ = [
    "peaks_transfer",
    "peaks_group_losses",
]


def _gd_column_losses(train_f: np.ndarray, y: np.ndarray, test_f: np.ndarray, y_test: np.ndarray, steps: int):

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
    ``data.load("peaks")`` (inputs coded by :func:`repalign.data.peaks_encode` with ``units`` per variable). Its
    last hidden layer, frozen, is measured against all 120 targets in ONE spectrum (an (n, 120) target matrix;
    :func:`column_aucs`), and a linear learner (:func:`repalign.networks.linear.gd_linear`, ``gd_steps`` full-batch
    steps at :math:`\eta = 1/\sigma_1^2`, all 120 columns at once) is trained on it; the same is done for the
    same network before training ("untrained": where a from-scratch network starts) and for the coded input.
    On ``finetune_targets`` the source network is also fine-tuned (:func:`repalign.networks.finetune.fine_tune`, new
    head, ``finetune_epochs``) and compared with the untrained network trained the same way (from scratch, the
    same budget, the same seed). Losses are per-example mean squared errors on the test inputs.

    Returns (k = 120 targets, m fine-tuned ones, t thresholds): ``auc_{source,untrained,input}`` (k,),
    ``gd_train_*``, ``gd_test_*`` (k,), ``curves_source`` (k, t), ``thresholds`` (t,), ``shared`` and ``score``
    (k,) relatedness to the source (:func:`repalign.data.peaks_relatedness`), ``finetune_targets`` (m,),
    ``finetune_test``, ``scratch_test`` (m,), ``source_test_mse``, ``layer``.
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
