"""What a figure trains on: class pairs, shuffled labels, subsamples, splits, rescaled targets, transfer pairs.

Every function takes a :class:`repalign.data.Dataset` and returns a new one (its ``info.name`` and
``info.note`` say what was done), is seeded, and never changes its input. Target matrices for the measure come
from :mod:`repalign.alignment` (``binary_targets`` → ±1, ``one_vs_rest_targets``, ``one_hot_targets``);
:func:`class_targets` is a thin switch over them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repalign.data import Dataset, load, peaks_relatedness, peaks_task, peaks_task_name, peaks_tasks

__all__ = [
    "TransferPair",
    "class_subset",
    "binary_pair",
    "class_targets",
    "shuffle_labels",
    "subsample",
    "train_test_split",
    "rescale_targets",
    "peaks_tasks_by_relatedness",
    "peaks_transfer_pair",
    "imagenet_cifar_pair",
    "domain_transfer_pair",
]


def _require_classes(data: Dataset, what: str) -> None:
    if data.info.task == "regression" or data.y.ndim != 1:
        raise ValueError(f"{what} needs class labels (n,), but {data.info.name} is a {data.info.task} task")


def _class_id(data: Dataset, c: int | str) -> int:
    if isinstance(c, str):
        if c not in data.info.classes:
            raise ValueError(f"{data.info.name}: no class {c!r}; classes are {data.info.classes}")
        return data.info.classes.index(c)
    c = int(c)
    if not 0 <= c < len(data.info.classes):
        raise ValueError(f"{data.info.name}: class index {c} out of range 0..{len(data.info.classes) - 1}")
    return c


def class_subset(
    data: Dataset,
    classes: Sequence[int | str],
    n_per_class: int | None = None,
    *,
    seed: int = 0,
    relabel: bool = True,
) -> Dataset:
    """The examples of ``classes`` (indices or names), ``n_per_class`` of each drawn without replacement.

    With ``relabel`` the labels become ``0..k-1`` in the order of ``classes``. Rows keep their original order.

    Shape: x (n, ...) → (k · n_per_class, ...) (all examples of those classes when ``n_per_class`` is None).
    """
    _require_classes(data, "class_subset")
    ids = [_class_id(data, c) for c in classes]
    if len(set(ids)) != len(ids) or len(ids) < 2:
        raise ValueError(f"class_subset needs at least two distinct classes, got {list(classes)}")
    rng = np.random.default_rng(seed)
    keep = []
    for c in ids:
        members = np.flatnonzero(data.y == c)
        if n_per_class is not None:
            if len(members) < n_per_class:
                raise ValueError(
                    f"{data.info.name}: class {data.info.classes[c]!r} has {len(members)} examples, "
                    f"fewer than n_per_class={n_per_class}"
                )
            members = rng.choice(members, n_per_class, replace=False)
        keep.append(members)
    index = np.sort(np.concatenate(keep))
    names = [data.info.classes[c] for c in ids]
    out = data.subset(
        index,
        suffix=f"[{'|'.join(names)}]",
        note=f"classes {names}" + (f", {n_per_class} each (seed {seed})" if n_per_class else ""),
    )
    if relabel:
        remap = np.full(len(data.info.classes), -1, dtype=np.int64)
        remap[ids] = np.arange(len(ids))
        out.y = remap[out.y]
        out.info.classes = names
        out.info.task = "binary" if len(ids) == 2 else "multiclass"
    return out


def binary_pair(
    data: Dataset, a: int | str = 0, b: int | str = 1, n_per_class: int | None = 500, *, seed: int = 0
) -> Dataset:
    """A balanced binary task, the demo's way: classes ``a`` vs ``b``, ``n_per_class`` each (seeded).

    Labels are ``0`` for ``a`` and ``1`` for ``b``; :func:`repalign.alignment.binary_targets` maps them to ±1.

    Shape: y (2 · n_per_class,) int64 in {0, 1}.
    """
    return class_subset(data, [a, b], n_per_class, seed=seed, relabel=True)


def class_targets(labels: Any, kind: str = "one_vs_rest", classes: Sequence[Any] | None = None) -> Any:
    """Targets for the measure from class labels.

    ``kind``: ``"binary"`` (±1, :func:`repalign.alignment.binary_targets`), ``"one_vs_rest"`` (±1 matrix) or
    ``"one_hot"`` (0/1 matrix).

    Shape: labels (n,) → (n,) for binary, (n, K) otherwise.
    """
    # import the functions, not the module: ``repalign.alignment`` the attribute is the function alignment()
    from repalign.alignment import binary_targets, one_hot_targets, one_vs_rest_targets

    if kind == "binary":
        return binary_targets(labels)
    if kind == "one_vs_rest":
        return one_vs_rest_targets(labels, classes)
    if kind == "one_hot":
        return one_hot_targets(labels, classes)
    raise ValueError(f"kind must be 'binary', 'one_vs_rest' or 'one_hot', got {kind!r}")


def shuffle_labels(data: Dataset, *, seed: int = 0, fraction: float = 1.0, method: str = "permute") -> Dataset:
    """Random labels (Zhang et al. 2017 style): the inputs keep their order, the labels lose their meaning.

    ``method="permute"``: a random ``fraction`` of the rows have their labels (or regression targets) permuted
    among themselves, so class counts are unchanged. ``method="uniform"``: those rows get a class drawn
    uniformly at random (class labels only). The original labels are kept in ``meta["true_y"]``.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    n = len(data)
    rows = np.sort(rng.choice(n, int(round(fraction * n)), replace=False))
    y = data.y.copy()
    if method == "permute":
        y[rows] = data.y[rng.permutation(rows)]
    elif method == "uniform":
        _require_classes(data, "shuffle_labels(method='uniform')")
        y[rows] = rng.integers(0, len(data.info.classes), len(rows))
    else:
        raise ValueError(f"method must be 'permute' or 'uniform', got {method!r}")
    out = data.with_targets(
        y, suffix="_shuffled", note=f"labels of {fraction:.0%} of rows randomised ({method}, seed {seed})"
    )
    if "true_y" not in out.meta:
        out.meta["true_y"] = data.y.copy()
    return out


def _allocate(y: np.ndarray | None, n_total: int, n: int) -> tuple[list[np.ndarray], list[int]]:
    """Groups of row indices and how many to draw from each (largest-remainder, proportional)."""
    if y is None:
        return [np.arange(n)], [n_total]
    groups = [np.flatnonzero(y == c) for c in np.unique(y)]
    exact = np.array([len(g) * n_total / n for g in groups])
    take = np.floor(exact).astype(int)
    for i in np.argsort(-(exact - take), kind="stable")[: n_total - take.sum()]:
        take[i] += 1
    return groups, take.tolist()


def _stratify_labels(data: Dataset, stratify: bool | None) -> np.ndarray | None:
    is_class = data.info.task != "regression" and data.y.ndim == 1
    if stratify is None:
        stratify = is_class
    if stratify and not is_class:
        raise ValueError(f"cannot stratify {data.info.name}: it has no class labels")
    return data.y if stratify else None


def subsample(data: Dataset, n: int, *, seed: int = 0, stratify: bool = False) -> Dataset:
    """A seeded sample of ``n`` rows without replacement (class proportions kept with ``stratify``).

    The paper samples 1,000 and 10,000 CT slices. Rows keep their original order.

    Shape: x (N, ...) → (n, ...).
    """
    if not 0 < n <= len(data):
        raise ValueError(f"subsample: n must be in 1..{len(data)}, got {n}")
    rng = np.random.default_rng(seed)
    groups, take = _allocate(_stratify_labels(data, stratify), n, len(data))
    index = np.sort(np.concatenate([rng.choice(g, k, replace=False) for g, k in zip(groups, take, strict=True)]))
    return data.subset(index, suffix=f"[n={n}]", note=f"subsample of {n} (seed {seed})")


def train_test_split(
    data: Dataset, test_size: float | int = 0.2, *, seed: int = 0, stratify: bool | None = None
) -> tuple[Dataset, Dataset]:
    """A seeded split into (train, test); stratified by class by default for class labels.

    ``test_size``: a fraction in (0, 1) or a number of rows.
    """
    n = len(data)
    n_test = int(round(test_size * n)) if isinstance(test_size, float) else int(test_size)
    if not 0 < n_test < n:
        raise ValueError(f"train_test_split: test_size={test_size} leaves no train or no test rows (n={n})")
    rng = np.random.default_rng(seed)
    groups, take = _allocate(_stratify_labels(data, stratify), n_test, n)
    test = np.concatenate([rng.choice(g, k, replace=False) for g, k in zip(groups, take, strict=True)])
    is_test = np.zeros(n, dtype=bool)
    is_test[test] = True
    note = f"split seed {seed}, test_size {test_size}"
    return (
        data.subset(~is_test, suffix="[train]", note=note),
        data.subset(is_test, suffix="[test]", note=note),
    )


def rescale_targets(y: np.ndarray, method: str = "minmax", *, reference: np.ndarray | None = None) -> np.ndarray:
    """Rescale regression targets, column by column.

    .. math::
        \\text{minmax: } y' = 2\\,\\frac{y - \\min r}{\\max r - \\min r} - 1 \\in [-1, 1], \\qquad
        \\text{standardize: } y' = \\frac{y - \\bar r}{\\operatorname{sd}(r)}

    where :math:`r` is ``reference`` (default ``y`` itself; pass the training targets to rescale test targets
    the same way).

    Shape: y (n,) or (n, k) → the same, float64.
    """
    y = np.asarray(y, dtype=np.float64)
    r = y if reference is None else np.asarray(reference, dtype=np.float64)
    if method == "minmax":
        lo, hi = r.min(axis=0), r.max(axis=0)
        span = hi - lo
        if np.any(span == 0):
            raise ValueError("rescale_targets: constant targets cannot be rescaled to [-1, 1]")
        return 2.0 * (y - lo) / span - 1.0
    if method == "standardize":
        mu, sd = r.mean(axis=0), r.std(axis=0)
        if np.any(sd == 0):
            raise ValueError("rescale_targets: constant targets cannot be standardised")
        return (y - mu) / sd
    raise ValueError(f"method must be 'minmax' or 'standardize', got {method!r}")


# --------------------------------------------------------------------------------------------------------------
# Transfer
# --------------------------------------------------------------------------------------------------------------
@dataclass
class TransferPair:
    """A source task to pre-train on and a target task to transfer to.

    Attributes:
        source: the pre-training data (``None`` for "no pre-training").
        target: the target task's training data.
        target_test: the target task's test data.
        description: one line, e.g. ``"peaks IF A > 0.5 THEN B ELSE C -> IF A > 0.5 THEN D ELSE C"``.
        relatedness: how related source and target are (peaks: shared variables; splits: 1 same, 0 not).
        meta: anything else.
    """

    source: Dataset | None
    target: Dataset
    target_test: Dataset | None
    description: str
    relatedness: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)


def peaks_tasks_by_relatedness(source: Any) -> dict[int, list[tuple[int, int, int]]]:
    """The 119 other peaks tasks grouped by how many variables they share with ``source`` (0..3)."""
    s = peaks_task(source)
    out: dict[int, list[tuple[int, int, int]]] = {k: [] for k in range(4)}
    for t in peaks_tasks():
        if t != s:
            out[peaks_relatedness(s, t)].append(t)
    return out


def peaks_transfer_pair(
    source: Any,
    target: Any = None,
    *,
    shared: int | None = None,
    n: int = 1000,
    n_test: int = 1000,
    seed: int = 0,
) -> TransferPair:
    """Source and target peaks tasks, each with its own sample of inputs.

    Give ``target`` directly, or ``shared`` (0..3) to draw (seeded) a target sharing exactly that many
    variables with ``source``. Source data use seed ``seed``; target train/test use ``seed + 1``.
    """
    s = peaks_task(source)
    if target is None:
        if shared is None:
            raise ValueError("peaks_transfer_pair needs target=<task> or shared=<0..3>")
        pool = peaks_tasks_by_relatedness(s).get(shared)
        if not pool:
            raise ValueError(f"shared must be 0..3, got {shared}")
        t = pool[int(np.random.default_rng(seed).integers(len(pool)))]
    else:
        t = peaks_task(target)
    return TransferPair(
        source=load("peaks", split="train", n=n, task=s, seed=seed),
        target=load("peaks", split="train", n=n, task=t, seed=seed + 1),
        target_test=load("peaks", split="test", n=n_test, task=t, seed=seed + 1),
        description=f"peaks {peaks_task_name(s)} -> {peaks_task_name(t)}",
        relatedness=float(peaks_relatedness(s, t)),
        meta={"source_task": s, "target_task": t, "roles_shared": peaks_relatedness(s, t, kind="roles")},
    )


def imagenet_cifar_pair(
    source: str = "natural",
    target: str = "natural",
    *,
    root: Any = None,
    image_size: int | None = 224,
    max_per_class: int | None = None,
    seed: int = 0,
) -> TransferPair:
    """ImageNet-{natural,artificial} → CIFAR-10-{natural,artificial} (PAPER.md §3.9, Yosinski et al. split).

    The ImageNet part is the user's ImageFolder (see :func:`repalign.data.load` ``"imagenet"``); CIFAR-10
    train/test are the target. ``relatedness`` is 1 when the splits match, else 0.
    """
    for s in (source, target):
        if s not in ("natural", "artificial"):
            raise ValueError(f"source and target must be 'natural' or 'artificial', got {s!r}")
    return TransferPair(
        source=load(
            "imagenet", "train", root=root, subset=source, image_size=image_size, max_per_class=max_per_class,
            seed=seed,
        ),
        target=load("cifar10", "train", root=root, subset=target),
        target_test=load("cifar10", "test", root=root, subset=target),
        description=f"ImageNet-{source} -> CIFAR10-{target}",
        relatedness=float(source == target),
        meta={"source_split": source, "target_split": target},
    )  # fmt: skip


def domain_transfer_pair(
    source: str | None,
    target: str,
    *,
    dataset: str = "digits_domains",
    random_source_labels: bool = True,
    label_method: str = "permute",
    test_size: float = 0.3,
    seed: int = 0,
    root: Any = None,
    **load_kw: Any,
) -> TransferPair:
    """Domain → domain transfer with random source labels (the paper's Office-31 table, PAPER.md §3.10).

    ``dataset``: ``"office31"`` (domains amazon / dslr / webcam) or its offline analogue ``"digits_domains"``
    (original / blurred / inverted). ``source=None`` is the "no pre-training" row. The source's labels are
    randomised with :func:`shuffle_labels` (``label_method``); the target domain is split (stratified,
    seeded) into train and test.
    """
    if dataset not in ("office31", "digits_domains"):
        raise ValueError(f"dataset must be 'office31' or 'digits_domains', got {dataset!r}")
    if source is not None and source == target:
        raise ValueError(f"source and target domain are the same ({source!r})")
    src = None
    if source is not None:
        src = load(dataset, root=root, domain=source, **load_kw)
        if random_source_labels:
            src = shuffle_labels(src, seed=seed, method=label_method)
    tgt = load(dataset, root=root, domain=target, **load_kw)
    tgt_train, tgt_test = train_test_split(tgt, test_size, seed=seed)
    rnd = " (random labels)" if source is not None and random_source_labels else ""
    return TransferPair(
        source=src,
        target=tgt_train,
        target_test=tgt_test,
        description=f"{dataset}: {source or 'none'}{rnd} -> {target}",
        meta={"dataset": dataset, "source_domain": source, "target_domain": target,
              "random_source_labels": random_source_labels},
    )  # fmt: skip
