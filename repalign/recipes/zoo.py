r"""Claim 8 and the transferability protocol (notebooks 08 and 11): a zoo of representations of the same images,
scored against what a learner on each achieves.

A target task is a fixed, class-balanced test draw and one seeded training draw per seed (:func:`load_pools`,
:func:`draw_splits`). Notebook 08 builds pre-trained, randomly initialised and classic representations of each
draw (:func:`available_networks`, :func:`pretrained_and_classic`) and reads their alignment, the linear learner and a
probe (:func:`representation_scores`, :func:`scores_over_seeds`). Notebook 11 builds a zoo of backbones at several
depths (:func:`build_zoo`), scores every member with every transferability score (:func:`score_zoo`) and asks how
well each score ranks the zoo by its probe accuracy (:func:`ranking_taus`, weighted Kendall τ).
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repalign.data import Dataset, load, split_per_class, subsample, train_test_split
from repalign.measure import scores
from repalign.measure.alignment import spectrum, threshold_grid
from repalign.measure.scores import softmax_rows
from repalign.measure.targets import one_vs_rest_targets
from repalign.measure.theory import GDResult, steps_to_loss
from repalign.networks import baselines, features, models, probes
from repalign.networks.linear import gd_linear
from repalign.networks.probes import logistic_probe

__all__ = [
    "load_pools",
    "draw_splits",
    "available_networks",
    "pretrained_and_classic",
    "representation_scores",
    "ZooScores",
    "scores_over_seeds",
    "FeatureZoo",
    "build_zoo",
    "score_zoo",
    "ranking_taus",
    "standardised_points",
]


# ---------------------------------------------------------------------------------------------------------------
# The target task's draws
# ---------------------------------------------------------------------------------------------------------------
def load_pools(name: str, *, n_test_per_class: int, test_seed: int) -> tuple[Dataset, Dataset]:
    """A data set's pool to draw training images from and its fixed, class-balanced test set.

    With an official split: the training split, and ``n_test_per_class`` · C images of the test split
    (:func:`repalign.data.subsample`, stratified, ``test_seed``). Without one (embedded MNIST, digits, LFW): a
    class-balanced test draw of that size (:func:`repalign.data.train_test_split`, ``test_seed``), the rest to
    draw from.

    Shape: returns (pool (n, ...), test (n_test_per_class · C, ...)) datasets.
    """
    try:
        train_pool, test_pool = load(name, split="train"), load(name, split="test")
    except ValueError:  # no official split: a fixed class-balanced test draw, the rest to train from
        full = load(name, split="all")
        return train_test_split(full, n_test_per_class * len(np.unique(full.y)), seed=test_seed)
    n_test = n_test_per_class * len(np.unique(test_pool.y))
    return train_pool, subsample(test_pool, n_test, seed=test_seed, stratify=True)


def draw_splits(
    names: Sequence[str], seeds: Sequence[int], *, n_train_per_class: int, n_test_per_class: int, test_seed: int
) -> tuple[dict[str, tuple[list[Dataset], Dataset]], dict[str, str]]:
    """Per data set, one training draw per seed (``n_train_per_class`` images of each class,
    :func:`repalign.data.split_per_class`) from :func:`load_pools`' pool and the fixed test set, and their
    descriptions for a claim file (``"{name} train"``: the first seed's draw; ``"{name} test"``).

    Shape: returns ({name: ([train (n_train_per_class · C, ...) per seed], test)}, {label: description}).
    """
    splits, described = {}, {}
    for name in names:
        pool, test = load_pools(name, n_test_per_class=n_test_per_class, test_seed=test_seed)
        trains = [split_per_class(pool, n_train_per_class, seed=s)[0] for s in seeds]
        splits[name] = (trains, test)
        described[f"{name} train"] = trains[0].info.describe() + f" (seed {seeds[0]}; each seed draws its own)"
        described[f"{name} test"] = test.info.describe()
    return splits, described


# ---------------------------------------------------------------------------------------------------------------
# Notebook 08: pre-trained, randomly initialised and classic representations, alignment, GD and a probe
# ---------------------------------------------------------------------------------------------------------------
def available_networks(names: Sequence[str], weights_paths: Mapping[str, str]) -> tuple[list[str], dict[str, str]]:
    """The backbones whose pre-trained weights can be had (:func:`repalign.networks.models.weights_id`), and why
    each other one is left out (T2T-ViT has no public ImageNet weights: it needs ``weights_paths["t2t_vit"]``).

    Returns (names kept, in order; {name left out: reason}).
    """
    kept, left_out = [], {}
    for name in names:
        try:
            models.weights_id(name, True, weights_paths.get(name))
            if name == "t2t_vit" and name not in weights_paths:
                raise FileNotFoundError(
                    "no public ImageNet weights for vit-pytorch's T2TViT: set weights_paths['t2t_vit']"
                )
            kept.append(name)
        except FileNotFoundError as err:
            left_out[name] = str(err)
    return kept, left_out


def pretrained_and_classic(
    train_x: np.ndarray,
    test_x: np.ndarray,
    *,
    seed: int,
    networks: Sequence[str],
    image_size: int,
    weights_paths: Mapping[str, str] | None = None,
    batch_size: int = 64,
    device: Any = None,
    **classic: Any,
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[tuple[str, str, features.Extracted]]]:
    """The representations of notebook 08 of one training draw and the test set: each backbone's penultimate layer
    with its ImageNet weights (``"{name}"``) and randomly initialised under ``seed`` (``"{name} (random init)"``),
    then the classic representations (:func:`repalign.networks.baselines.classic_representations` with ``seed``
    and the options ``classic``), all cached.

    Shape: train_x (n, ...), test_x (m, ...) images. Returns ({name: (train (n, d), test (m, d))}, and per backbone
    extraction (name, ``"train"`` or ``"test"``, :class:`repalign.networks.features.Extracted`) for its speed).
    """
    paths, reps, made = dict(weights_paths or {}), {}, []
    for name in networks:
        for label, pre in ((name, True), (f"{name} (random init)", False)):
            ext = {part: features.backbone_features(name, x, pretrained=pre, seed=seed, image_size=image_size,
                                                    weights_path=paths.get(name) if pre else None,
                                                    batch_size=batch_size, device=device, progress=False)
                   for part, x in (("train", train_x), ("test", test_x))}  # fmt: skip
            reps[label] = tuple(e.features[models.feature_layer(name)] for e in ext.values())
            made += [(label, part, e) for part, e in ext.items()]
    fitted = baselines.classic_representations(train_x, test_x, seed=seed, **classic)
    reps.update({kind: (r["train"], r["test"]) for kind, r in fitted.items()})
    return reps, made


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


@dataclass(frozen=True, eq=False)
class ZooScores:
    """:func:`representation_scores` of every representation, over s seeds (one training draw each).

    Attributes (t thresholds):
        thresholds: (t,) the grid of ``curves``.
        auc: ``{name: (s,)}`` AUC of the relative alignment curve.
        curves: ``{name: (s, t)}`` the relative alignment curves.
        gd: ``{name: [GDResult per seed]}`` the linear learner's runs.
        steps: ``{name: (s,)}`` GD steps to the loss level (never reached = the budget + 1).
        probe_accuracy: ``{name: (s,)}`` the logistic probe's test accuracy.
    """

    thresholds: np.ndarray
    auc: dict[str, np.ndarray]
    curves: dict[str, np.ndarray]
    gd: dict[str, list[GDResult]]
    steps: dict[str, np.ndarray]
    probe_accuracy: dict[str, np.ndarray]


_ZOO_SCORES = ("auc", "curves", "gd", "steps", "probe_accuracy")


def scores_over_seeds(
    representations: Sequence[Mapping[str, tuple[Any, Any]]],
    trains: Sequence[Dataset],
    test: Dataset,
    seeds: Sequence[int],
    **options: Any,
) -> ZooScores:
    """:func:`representation_scores` (``options``: ``gd_steps``, ``loss_level``, ``probe_C``) for each seed's
    representations of its training draw and the test set, the probe seeded by the seed, gathered per name.

    Shape: representations, trains and seeds: one per seed (s); every seed has the same names. Curves on
    :func:`repalign.measure.alignment.threshold_grid` of the training draw's size.
    """
    names = list(representations[0])
    table: dict[str, dict[str, list[Any]]] = {k: {name: [] for name in names} for k in _ZOO_SCORES}
    for reps, train, s in zip(representations, trains, seeds, strict=True):
        taus = threshold_grid(len(train.y))
        for name, sc in representation_scores(reps, train.y, test.y, seed=s, **options).items():
            spec = sc["spectrum"]
            got = (spec.auc(), spec.curve(taus, relative=True), sc["gd"], sc["steps"], sc["probe_accuracy"])
            for k, v in zip(_ZOO_SCORES, got, strict=True):
                table[k][name].append(v)
    arrays = {k: {name: np.asarray(v) for name, v in table[k].items()} for k in _ZOO_SCORES if k != "gd"}
    return ZooScores(thresholds=taus, gd=table["gd"], **arrays)


# ---------------------------------------------------------------------------------------------------------------
# Notebook 11: a zoo of backbones at several depths, every transferability score, how well each ranks the zoo
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FeatureZoo:
    """Representations of the same images: every seed's training draw, then the test set, stacked in that order.

    Attributes (N images in all, s seeds):
        features: ``{representation: (N, d)}``, e.g. ``"efficientnet_lite0 ImageNet @blocks.3"``, ``"pixels"``.
        logits: ``{network: (N, C)}`` each backbone's source-classifier outputs, under the name of its deepest
            representation (what LEEP and NCE read).
        offsets: (s + 2,) where each part starts: part i < s is seed i's training draw, part s the test set.
    """

    features: dict[str, np.ndarray]
    logits: dict[str, np.ndarray]
    offsets: np.ndarray

    def part(self, i: int) -> slice:
        """The rows of part ``i`` (seed i's training draw; i = s: the test set)."""
        return slice(self.offsets[i], self.offsets[i + 1])


def build_zoo(
    trains: Sequence[Dataset],
    test: Dataset,
    *,
    networks: Sequence[str],
    random_networks: Sequence[str],
    layers: Mapping[str, Sequence[str]],
    classic: Sequence[str] = (),
    hog_cell: int = 4,
    init_seed: int = 0,
    weights_paths: Mapping[str, str] | None = None,
    image_size: int = 32,
    batch_size: int = 128,
    device: Any = None,
) -> tuple[FeatureZoo, list[tuple[str, str, features.Extracted]]]:
    """The zoo of notebook 11 on the training draws and the test set, in one cached extraction per backbone.

    Each backbone of ``networks`` with its ImageNet weights (``"{name} ImageNet @{layer}"``) and each of
    ``random_networks`` randomly initialised under ``init_seed`` (``"{name} random @{layer}"``), at every layer of
    ``layers[name]`` (default: its penultimate layer) and its logits; then ``classic`` representations
    (``"pixels"``: :func:`repalign.networks.baselines.raw_features`, ``"hog"``:
    :func:`repalign.networks.baselines.hog_features` with ``hog_cell`` px cells).

    Shape: trains s datasets, test one; returns a :class:`FeatureZoo` and per backbone (name, ``"ImageNet"`` or
    ``"random"``, :class:`repalign.networks.features.Extracted`).
    """
    paths = dict(weights_paths or {})
    images = np.concatenate([t.x for t in trains] + [test.x])
    offsets = np.cumsum([0] + [len(t) for t in trains] + [len(test)])
    reps, logits, made = {}, {}, []
    for name, pre in [(n, True) for n in networks] + [(n, False) for n in random_networks]:
        kind, head = "ImageNet" if pre else "random", models.output_layer(name)
        depths = list(layers.get(name, [models.feature_layer(name)]))
        ext = features.backbone_features(
            name, images, pretrained=pre, seed=None if pre else init_seed, layers=depths + [head],
            weights_path=paths.get(name) if pre else None, image_size=image_size, batch_size=batch_size,
            device=device, progress=False)  # fmt: skip
        for layer in depths:
            reps[f"{name} {kind} @{layer}"] = ext.features[layer]
        logits[f"{name} {kind} @{depths[-1]}"] = ext.features[head]
        made.append((name, kind, ext))
    if "pixels" in classic:
        reps["pixels"] = baselines.raw_features(images)
    if "hog" in classic:
        reps["hog"] = baselines.hog_features(images, pixels_per_cell=(hog_cell, hog_cell))
    return FeatureZoo(reps, logits, offsets), made


def _timed(seconds: dict[str, float], key: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, its wall time added to ``seconds[key]``."""
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    seconds[key] = seconds.get(key, 0.0) + time.perf_counter() - t
    return out


def _uncentred_auc(x: np.ndarray, labels: np.ndarray) -> float:
    """AUC of the alignment with uncentred one-vs-rest targets (for contrast with the centred measure)."""
    with warnings.catch_warnings():  # uncentred on purpose (the measure warns about it)
        warnings.filterwarnings("ignore", message="center=False")
        return spectrum(x, one_vs_rest_targets(labels), center=False).auc()


def _representation_row(
    x: np.ndarray, labels: np.ndarray, probe: tuple[np.ndarray, np.ndarray], seconds: dict[str, float], **grid: Any
) -> dict[str, float]:
    """Every score of one representation of one training draw, and the best probe accuracy on the test set."""
    row = dict(_timed(seconds, "feature_scores", scores.feature_scores, x, labels))
    row["alignment_auc_uncentred"] = _timed(seconds, "alignment_auc_uncentred", _uncentred_auc, x, labels)
    row["accuracy"] = _timed(seconds, "probe_grid", probes.probe_grid, x, labels, *probe, **grid)["accuracy"]
    return row


def score_zoo(
    zoo: FeatureZoo,
    trains: Sequence[Dataset],
    test: Dataset,
    *,
    seeds: Sequence[int],
    probe_C: Sequence[float],
    seconds: dict[str, float] | None = None,
) -> list[dict[str, dict[str, float]]]:
    """Every transferability score of every member of the zoo on each seed's training draw, and the ground truth.

    Per representation: :func:`repalign.measure.scores.feature_scores` (every alignment summary, LogME on raw and
    on preprocessed features, H-score, regularised H-score, TransRate, SFDA), ``alignment_auc_uncentred`` and
    ``accuracy``, the best test accuracy of a logistic probe over ``probe_C``
    (:func:`repalign.networks.probes.probe_grid`, seeded by the seed); per network also LEEP and NCE from the
    softmax of its logits. ``seconds`` (if given) accumulates the wall time of each kind of call.

    Shape: trains and seeds: s each. Returns per seed ``{representation: {score: value}}``.
    """
    seconds = {} if seconds is None else seconds
    test_part = zoo.part(len(trains))
    values = []
    for i, (train, s) in enumerate(zip(trains, seeds, strict=True)):
        row = {}
        for rep, feats in zoo.features.items():
            probe = (feats[test_part], test.y)
            row[rep] = _representation_row(feats[zoo.part(i)], train.y, probe, seconds, Cs=probe_C, seed=s)
        for net, logits in zoo.logits.items():
            probs = softmax_rows(logits[zoo.part(i)].astype(np.float64))
            row[net]["leep"] = _timed(seconds, "leep", scores.leep, probs, train.y)
            row[net]["nce"] = _timed(seconds, "nce", scores.nce, probs.argmax(axis=1), train.y)
        values.append(row)
    return values


def ranking_taus(values: Sequence[Mapping[str, Mapping[str, float]]], score: str, items: Sequence[str]) -> np.ndarray:
    """How well ``score`` ranks ``items`` by their probe accuracy, per seed: the weighted Kendall τ of
    :func:`repalign.measure.scores.ranking_agreement`.

    Shape: values as :func:`score_zoo` returns (s seeds); items m ≥ 2 names. Returns (s,).
    """
    return np.array(
        [
            scores.ranking_agreement([row[r][score] for r in items], [row[r]["accuracy"] for r in items])
            for row in values
        ]
    )


def standardised_points(
    rows: Mapping[str, Mapping[str, Mapping[str, float]]], score: str, items: Sequence[str]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""A score against the probe accuracy over the zoo, the score standardised within each target,
    :math:`z = (v - \bar v) / \mathrm{sd}(v)` (sd 0 → 1), so that targets share one axis.

    Shape: rows maps each target to one seed's ``{representation: {score: value}}``; items m names. Returns
    z, accuracy and the target's name, each (targets · m,).
    """
    xs: list[float] = []
    ys: list[float] = []
    gs: list[str] = []
    for target, row in rows.items():
        v = np.array([row[r][score] for r in items])
        xs += list((v - v.mean()) / (v.std() or 1.0))
        ys += [row[r]["accuracy"] for r in items]
        gs += [target] * len(items)
    return np.array(xs), np.array(ys), np.array(gs)
