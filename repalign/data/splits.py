"""Selections of a :class:`~repalign.data.Dataset`: classes, class pairs, subsamples, shuffled labels, splits.

Every function takes a ``Dataset`` and returns new ones (arrays copied, the input never changed), is seeded
(``numpy.random.default_rng(seed)``; the same seed gives the same rows) and records what it did in the result's
``info.name``, ``info.note`` and ``info.selection``. Rows keep their original order.

* :func:`class_subset`, :func:`binary_pair`: the examples of some classes, ``n_per_class`` of each, relabelled
  ``0..k-1`` in the order given.
* :func:`shuffle_labels`: labels permuted or redrawn (all of them or a ``fraction``): the paper's random-label
  tasks.
* :func:`subsample`, :func:`train_test_split`, :func:`split_per_class`: ``n`` rows, a seeded train/test split
  (stratified for class labels by default) and a split with ``n_per_class`` of each class on one side.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from repalign.data.base import Dataset

__all__ = [
    "class_subset",
    "binary_pair",
    "shuffle_labels",
    "subsample",
    "train_test_split",
    "split_per_class",
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
        note=f"classes {names}" + (f", {n_per_class} per class (seed {seed})" if n_per_class else ""),
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

    Labels are ``0`` for ``a`` and ``1`` for ``b``; :func:`repalign.measure.targets.binary_targets` maps them to ±1.

    Shape: y (2 · n_per_class,) int64 in {0, 1}.
    """
    return class_subset(data, [a, b], n_per_class, seed=seed, relabel=True)


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
        data.subset(~is_test, suffix="[train]", note=f"train part ({note})"),
        data.subset(is_test, suffix="[test]", note=f"test part ({note})"),
    )


def split_per_class(data: Dataset, n_per_class: int, *, seed: int = 0) -> tuple[Dataset, Dataset]:
    """A balanced training set and a test set of every other example: ``n_per_class`` of each class for training
    (drawn without replacement, seeded), the rest for testing.

    For a test set as large as the data allow (e.g. embedded MNIST 3 vs 8: 400 + 400 to train leaves 1,176 to
    test). Rows keep their original order; both parts record the selection in ``info.selection``.

    Shape: data (N, ...) with class labels (N,) → train (k · n_per_class, ...), test (N − k · n_per_class, ...).
    """
    y = np.asarray(data.y)
    if y.ndim != 1 or data.info.task == "regression":
        raise ValueError(f"split_per_class needs class labels (n,), but {data.info.name} is a {data.info.task} task")
    rng = np.random.default_rng(seed)
    is_train = np.zeros(len(y), dtype=bool)
    for c in np.unique(y):
        members = np.flatnonzero(y == c)
        if len(members) <= n_per_class:
            raise ValueError(
                f"{data.info.name}: class {c} has {len(members)} examples; "
                f"n_per_class={n_per_class} leaves none to test"
            )
        is_train[rng.choice(members, n_per_class, replace=False)] = True
    note = f"{n_per_class} per class to train (seed {seed})"
    return (
        data.subset(is_train, suffix="[train]", note=f"train part: {note}"),
        data.subset(~is_train, suffix="[test]", note=f"test part: every example not in the train part ({note})"),
    )
