r"""Claim 8 and the transferability protocol (notebooks 08 and 11): a zoo of representations of the same images,
scored against what a learner on each achieves.

In notebook 11 a target task is a fixed, class-balanced test draw and one seeded training draw per seed
(:func:`load_pools`, :func:`draw_splits`); in notebook 08 every seed draws its own training and test images
(:func:`draw_seeded_splits`). Notebook 08 builds pre-trained, randomly initialised and classic representations of
each draw (:func:`available_networks`, :func:`pretrained_and_classic`), reads their alignment, the linear learner
and a probe (:func:`representation_scores`, :func:`scores_over_seeds`) and sets each pre-trained network against
each baseline (:func:`versus`, :func:`target_roles`, :func:`network_roles`). Notebook 11 builds a zoo of backbones at several
depths for each target, whole data sets and subsets of similar classes (:func:`build_zoo`, :func:`build_targets`),
scores every member with every transferability score (:func:`score_zoo`) and asks how well each score ranks the zoo
by its probe accuracy (:func:`ranking_taus`, weighted Kendall τ, :func:`tau_table`) and how well two training draws
agree with each other (:func:`ground_truth_agreement`).
"""

from __future__ import annotations

import itertools
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from repalign.data import Dataset, class_subset, load, split_per_class, subsample, train_test_split
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
    "PAPER_NETWORKS",
    "draw_seeded_splits",
    "random_init_name",
    "available_networks",
    "pretrained_and_classic",
    "representation_scores",
    "ZooScores",
    "scores_over_seeds",
    "versus",
    "target_roles",
    "network_roles",
    "FeatureZoo",
    "build_zoo",
    "subset_zoo",
    "TargetTask",
    "build_targets",
    "score_zoo",
    "ranking_taus",
    "standardised_points",
    "ground_truth_agreement",
    "score_gap",
    "tau_table",
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
#: the ImageNet networks of the paper's claim 8 (docs/PAPER.md §3 item 8); any other backbone is a stand-in
PAPER_NETWORKS: tuple[str, ...] = ("vgg16", "resnet50", "resnet101", "t2t_vit")


def draw_seeded_splits(
    names: Sequence[str], seeds: Sequence[int], *, n_train_per_class: int, n_test_per_class: int, test_seed: int
) -> tuple[dict[str, list[tuple[Dataset, Dataset]]], dict[str, str]]:
    """Per data set and seed, that seed's own training and test images, and their descriptions for a claim file.

    Seed s draws ``n_train_per_class`` images of each class to train (:func:`repalign.data.split_per_class`, seed
    s) from the official training split, or from the whole set when there is none (LFW, embedded MNIST); then
    ``n_test_per_class`` · C test images (:func:`repalign.data.subsample`, class-stratified, seed ``test_seed`` + s)
    from the official test split, or from the images its training draw left. So the spread over seeds holds both
    draws, and a set as small as LFW's 200 patches (60 + 40 per class: every image, split anew by each seed) still
    varies from seed to seed. Descriptions: ``"{name} train"`` and ``"{name} test"``, the first seed's draws.

    Shape: returns ({name: [(train (n_train_per_class · C, ...), test (≈ n_test_per_class · C, ...)) per seed]},
    {label: description}).
    """
    splits: dict[str, list[tuple[Dataset, Dataset]]] = {}
    described: dict[str, str] = {}
    for name in names:
        try:
            pool, test_pool = load(name, split="train"), load(name, split="test")
        except ValueError:  # no official split: the test images come from what each training draw leaves
            pool, test_pool = load(name, split="all"), None
        splits[name] = []
        for s in seeds:
            train, rest = split_per_class(pool, n_train_per_class, seed=s)
            source = rest if test_pool is None else test_pool
            n_test = n_test_per_class * len(np.unique(source.y))
            splits[name].append((train, subsample(source, n_test, seed=test_seed + s, stratify=True)))
        first = splits[name][0]
        for part, ds in zip(("train", "test"), first, strict=True):
            described[f"{name} {part}"] = ds.info.describe() + f" (seed {seeds[0]}; each seed draws its own)"
    return splits, described


def random_init_name(name: str) -> str:
    """The name of backbone ``name``'s randomly initialised representation in notebook 08: ``"{name} (random init)"``."""
    return f"{name} (random init)"


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
        for label, pre in ((name, True), (random_init_name(name), False)):
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
    test: Dataset | Sequence[Dataset],
    seeds: Sequence[int],
    **options: Any,
) -> ZooScores:
    """:func:`representation_scores` (``options``: ``gd_steps``, ``loss_level``, ``probe_C``) for each seed's
    representations of its training draw and its test set (one shared ``test``, or one per seed), the probe seeded by
    the seed, gathered per name.

    Shape: representations, trains and seeds: one per seed (s), and ``test`` one or s datasets; every seed has the
    same names. Curves on :func:`repalign.measure.alignment.threshold_grid` of the training draw's size.
    """
    names = list(representations[0])
    tests = [test] * len(seeds) if hasattr(test, "y") else list(test)  # one dataset, or one per seed
    table: dict[str, dict[str, list[Any]]] = {k: {name: [] for name in names} for k in _ZOO_SCORES}
    for reps, train, tst, s in zip(representations, trains, tests, seeds, strict=True):
        taus = threshold_grid(len(train.y))
        for name, sc in representation_scores(reps, train.y, tst.y, seed=s, **options).items():
            spec = sc["spectrum"]
            got = (spec.auc(), spec.curve(taus, relative=True), sc["gd"], sc["steps"], sc["probe_accuracy"])
            for k, v in zip(_ZOO_SCORES, got, strict=True):
                table[k][name].append(v)
    arrays = {k: {name: np.asarray(v) for name, v in table[k].items()} for k in _ZOO_SCORES if k != "gd"}
    return ZooScores(thresholds=taus, gd=table["gd"], **arrays)


def versus(
    values: Mapping[str, Any], pairs: Sequence[tuple[str, str]]
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Two sides of :func:`repalign.run.claims.all_more` for "p beats c" in every pair (p, c): the values of p and
    of c, under the label ``"{p} vs {c}"``.

    Shape: values maps each name to its (k,) values per seed. Returns ({label: (k,)}, {label: (k,)}).
    """
    first = {f"{p} vs {c}": np.asarray(values[p]) for p, c in pairs}
    return first, {f"{p} vs {c}": np.asarray(values[c]) for p, c in pairs}


def target_roles(infos: Mapping[str, Any], contrast: Sequence[str]) -> dict[str, str]:
    """What each target data set is to claim 8: the paper's data, a stand-in for it, or the out-of-domain contrast.

    ``infos`` maps a data set's name to its :class:`repalign.data.DatasetInfo`; a name in ``contrast`` is
    ``"out-of-domain contrast, not the paper's claim"``, a stand-in ``"stand-in for the paper's CIFAR-10/100"``,
    any other ``"the paper's data"``. Returns {name: role}.
    """
    roles = {}
    for name, info in infos.items():
        if name in contrast:
            roles[name] = "out-of-domain contrast, not the paper's claim"
        else:
            roles[name] = "stand-in for the paper's CIFAR-10/100" if info.is_standin else "the paper's data"
    return roles


def network_roles(names: Sequence[str]) -> dict[str, str]:
    """Each pre-trained network's role: one of the paper's (:data:`PAPER_NETWORKS`) or a stand-in for them.

    Returns {name: ``"the paper's"`` or ``"stand-in for the paper's VGG16, ResNet50, ResNet101, T2T-ViT"``}.
    """
    return {
        n: "the paper's" if n in PAPER_NETWORKS else "stand-in for the paper's VGG16, ResNet50, ResNet101, T2T-ViT"
        for n in names
    }


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


def subset_zoo(
    zoo: FeatureZoo, trains: Sequence[Dataset], test: Dataset, classes: Sequence[int | str]
) -> tuple[FeatureZoo, list[Dataset], Dataset]:
    """A target made of some classes of a data set: every part of ``zoo`` (each seed's training draw, the test set)
    restricted to the examples of ``classes`` (indices or names), the datasets by
    :func:`repalign.data.class_subset` (labels renumbered 0..k−1 in the order given, the selection recorded).

    Shape: zoo over N images; returns the zoo over the N' ≤ N images of those classes, s training draws, the test.
    """
    parts = [*trains, test]
    chosen = [class_subset(p, classes) for p in parts]  # checks the classes, with a message naming a wrong one
    ids = [c if isinstance(c, int) else parts[0].info.classes.index(c) for c in classes]
    masks = [np.isin(p.y, ids) for p in parts]
    rows = np.concatenate([np.flatnonzero(m) + zoo.offsets[i] for i, m in enumerate(masks)])
    offsets = np.cumsum([0] + [int(m.sum()) for m in masks])
    picked = FeatureZoo({k: v[rows] for k, v in zoo.features.items()}, {k: v[rows] for k, v in zoo.logits.items()},
                        offsets)  # fmt: skip
    return picked, chosen[:-1], chosen[-1]


@dataclass(frozen=True, eq=False)
class TargetTask:
    """One target of notebook 11: a data set, some of its classes (all when ``classes`` is None), one training draw
    per seed, the test set and the zoo's representations of them (:class:`FeatureZoo`)."""

    data: str
    classes: list[int | str] | None
    trains: list[Dataset]
    test: Dataset
    zoo: FeatureZoo


def build_targets(
    targets: Mapping[str, Mapping[str, Any]],
    seeds: Sequence[int],
    *,
    n_train_per_class: int,
    n_test_per_class: int,
    test_seed: int,
    **zoo_options: Any,
) -> tuple[dict[str, TargetTask], dict[str, str], list[tuple[str, str, str, features.Extracted]]]:
    """Every target of notebook 11, with one cached extraction per data set and network.

    ``targets`` maps a target's name to ``{"data": name}`` (every class) or ``{"data": name, "classes": [...]}``
    (a subset of similar classes). Each data set is drawn once (:func:`draw_splits`: ``n_train_per_class`` per
    class and seed, a fixed test set) and its zoo built once (:func:`build_zoo` with ``zoo_options``); a subset
    target reads the same draws restricted to its classes (:func:`subset_zoo`), so it costs no extraction.

    Returns ({target: :class:`TargetTask`}, {``"{target} train"`` / ``"{target} test"``: description},
    [(data set, network, ``"ImageNet"`` or ``"random"``, :class:`repalign.networks.features.Extracted`)]).
    """
    for name, spec in targets.items():
        if not isinstance(spec, Mapping) or not isinstance(spec.get("data"), str) or set(spec) - {"data", "classes"}:
            raise ValueError(f"target {name!r} must be {{'data': name}} or {{'data': name, 'classes': [...]}}, "
                             f"got {spec!r}")  # fmt: skip
    names = list(dict.fromkeys(spec["data"] for spec in targets.values()))
    splits, _ = draw_splits(names, seeds, n_train_per_class=n_train_per_class, n_test_per_class=n_test_per_class,
                            test_seed=test_seed)  # fmt: skip
    zoos, made = {}, []
    for name in names:
        zoos[name], extracted = build_zoo(*splits[name], **zoo_options)
        made += [(name, net, kind, ext) for net, kind, ext in extracted]
    tasks, described = {}, {}
    for tname, spec in targets.items():
        classes = spec.get("classes")
        zoo, (trains, test) = zoos[spec["data"]], splits[spec["data"]]
        if classes:
            zoo, trains, test = subset_zoo(zoo, trains, test, classes)
        tasks[tname] = TargetTask(spec["data"], list(classes) if classes else None, list(trains), test, zoo)
        described[f"{tname} train"] = trains[0].info.describe() + f" (seed {seeds[0]}; each seed draws its own)"
        described[f"{tname} test"] = test.info.describe()
    return tasks, described, made


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

    Per representation: :func:`repalign.measure.scores.feature_scores` (every alignment summary, LogME by the
    paper's formula and by the published code on raw features and on preprocessed ones, the GCV and leave-one-out
    ridge scores on the measure's preprocessing and on standardised features, H-score, regularised H-score,
    TransRate, SFDA), ``alignment_auc_uncentred`` and
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


def ground_truth_agreement(values: Sequence[Mapping[str, Mapping[str, float]]], items: Sequence[str]) -> np.ndarray:
    """The ground truth's own noise: the weighted Kendall τ (:func:`repalign.measure.scores.ranking_agreement`)
    between the probe accuracies of two training draws (seeds) over ``items``, for every pair of seeds. A score
    compared with one draw's accuracies can hardly be expected to agree with it better than another draw does.

    Shape: values as :func:`score_zoo` returns (s ≥ 2 seeds). Returns (s(s − 1)/2,).
    """
    acc = [[row[r]["accuracy"] for r in items] for row in values]
    return np.array([scores.ranking_agreement(acc[a], acc[b]) for a, b in itertools.combinations(range(len(acc)), 2)])


def score_gap(values: Sequence[Mapping[str, Mapping[str, float]]], a: str, b: str, items: Sequence[str]) -> np.ndarray:
    """Score ``a`` minus score ``b`` of each item on each seed, e.g. LogME as published minus the paper's.

    Shape: values (s seeds); returns (s, m) for m items.
    """
    return np.array([[row[r][a] - row[r][b] for r in items] for row in values])


def tau_table(
    tau: Mapping[str, Mapping[str, np.ndarray]],
    groups: Mapping[str, Sequence[str]],
    *,
    ceiling: Mapping[str, np.ndarray] | None = None,
) -> str:
    r"""The weighted-τ table as text: one row per score (and ``ceiling``, the ground truth's seed-against-seed τ,
    last); a column per target (the mean over its seeds), then per group of targets the mean ± standard deviation
    over seeds of the group's per-seed mean,

    .. math::  \bar\tau_s = \frac1{|G|}\sum_{t\in G}\tau_{t,s},\qquad
        \text{cell} = \mathrm{mean}_s\,\bar\tau_s \pm \mathrm{sd}_s\,\bar\tau_s\ \text{(population sd)}

    (for ``ceiling`` s runs over the pairs of seeds).

    Shape: tau maps a score to {target: (s,)}, the same s for every target; groups maps a label to target names.
    Returns the table.
    """
    targets = list(next(iter(tau.values())))
    widths = [max(len(t), 6) + 1 for t in targets]
    head = f"{'score':<32}" + "".join(f"{t:>{w}}" for t, w in zip(targets, widths, strict=True))
    head += "".join(f"{g:>17}" for g in groups)
    rows = dict(tau) | ({"ground truth (seed vs seed)": ceiling} if ceiling is not None else {})
    lines = [head]
    for name, row in rows.items():
        cells = "".join(f"{float(np.mean(row[t])):>+{w}.2f}" for t, w in zip(targets, widths, strict=True))
        for members in groups.values():
            per_seed = np.mean([np.atleast_1d(row[t]) for t in members], axis=0)  # (s,)
            cells += f"{float(per_seed.mean()):>+10.2f} ± {float(per_seed.std()):.2f}"
        lines.append(f"{name:<32}{cells}")
    return "\n".join(lines)
