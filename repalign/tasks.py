"""What a figure trains on: class pairs, shuffled labels, subsamples, splits, rescaled targets, transfer pairs.

Every function that takes a :class:`repalign.data.Dataset` returns a new one (its ``info.name``,
``info.note`` and ``info.selection`` say what was done), is seeded, and never changes its input. Target
matrices for the measure come from :mod:`repalign.alignment` (``binary_targets`` → ±1, ``one_vs_rest_targets``,
``one_hot_targets``); :func:`class_targets` is a thin switch over them.

Also here: the peaks task family (Caruana 1997; :func:`peaks_task`, :func:`peaks_targets`, ...; the generator
is ``data.load("peaks")``), :func:`prepare_task` (one task the way the notebooks describe it), and two
transformations of an input that keep its information but change its alignment: :func:`whiten_inputs` and
:func:`misalign_inputs` (poorly aligned by construction).
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repalign.data import Dataset, load

__all__ = [
    "TransferPair",
    "class_subset",
    "binary_pair",
    "class_targets",
    "shuffle_labels",
    "subsample",
    "train_test_split",
    "split_per_class",
    "rescale_targets",
    "prepare_task",
    "whiten_inputs",
    "misalign_inputs",
    "PEAKS_VARIABLES",
    "peaks_tasks",
    "peaks_task",
    "peaks_task_id",
    "peaks_task_name",
    "peaks_targets",
    "peaks_relatedness",
    "peaks_tasks_by_relatedness",
    "peaks_encode",
    "peaks_stratified_targets",
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
                f"{data.info.name}: class {c} has {len(members)} examples; n_per_class={n_per_class} leaves none to test"
            )
        is_train[rng.choice(members, n_per_class, replace=False)] = True
    note = f"{n_per_class} per class to train (seed {seed})"
    return (
        data.subset(is_train, suffix="[train]", note=f"train part: {note}"),
        data.subset(~is_train, suffix="[test]", note=f"test part: every example not in the train part ({note})"),
    )


def rescale_targets(y: np.ndarray, method: str = "minmax", *, reference: np.ndarray | None = None) -> np.ndarray:
    """Rescale regression targets, column by column.

    .. math::
        \\text{minmax: } y' = 2\\,\\frac{y - \\min r}{\\max r - \\min r} - 1 \\in [-1, 1], \\qquad
        \\text{standardize: } y' = \\frac{y - \\bar r}{\\operatorname{sd}(r)}

    where :math:`r` is ``reference`` (default ``y`` itself; pass the training targets to rescale test targets
    the same way).

    The default, ``"minmax"``, keeps a mean (targets in [−1, 1] are not centred): the alignment measure centres
    targets itself (``center=True``), but with ``center=False`` that mean would count as alignment (it warns).
    The notebooks use ``"standardize"`` (mean 0, sd 1) through :func:`prepare_task`'s ``target_scaling``.

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
# One task, the way the notebooks describe it; inputs with the same information and another alignment
# --------------------------------------------------------------------------------------------------------------
def prepare_task(
    name: str,
    *,
    n: int | None = None,
    classes: Sequence[int | str] | None = None,
    n_per_class: int | None = None,
    seed: int = 0,
    target_scaling: str | None = "standardize",
    demo_normalize: bool = False,
    load_kw: Mapping[str, Any] | None = None,
) -> Dataset:
    """One training task from a named data set, the way the notebooks describe it (a dict of these arguments).

    Steps, each seeded by ``seed``: ``data.load(name, **load_kw)`` (generators take their size here, e.g.
    ``load_kw={"n": 1000}`` for ``ct_like``); ``classes``: :func:`repalign.tasks.class_subset` with
    ``n_per_class`` of each, relabelled ``0..k-1`` (two classes give a binary task); ``n``: a subsample of ``n``
    rows (:func:`repalign.tasks.subsample`, stratified for class labels); regression targets rescaled column by
    column with :func:`repalign.tasks.rescale_targets` (``target_scaling`` ``"standardize"``: mean 0, sd 1, so no
    target mass sits on the constant direction; ``"minmax"``: [−1, 1]; ``None``: unchanged); with
    ``demo_normalize``, image pixels (x of 4 dimensions) mapped from [0, 1] to [−1, 1], the demo's
    ``Normalize(0.5, 0.5)``: x' = (x − 0.5) / 0.5 (tabular inputs are left as they are).

    Shape: returns a :class:`repalign.data.Dataset`, x (n, ...) float32, y (n,) int64 labels or (n,) / (n, k)
    float64 targets; its ``info.task`` is the ``task`` for :func:`repalign.experiments.train_and_measure`.
    """
    ds = load(name, **dict(load_kw or {}))
    if classes is not None:
        ds = class_subset(ds, list(classes), n_per_class, seed=seed)
    elif n_per_class is not None:
        raise ValueError("n_per_class needs classes (the classes to draw from)")
    if n is not None:
        ds = subsample(ds, int(n), seed=seed, stratify=ds.info.task != "regression" and ds.y.ndim == 1)
    if ds.info.task == "regression" and target_scaling is not None:
        ds = ds.with_targets(rescale_targets(ds.y, target_scaling), note=f"targets rescaled ({target_scaling})")
    if demo_normalize and ds.x.ndim == 4:
        ds = ds.subset(np.arange(len(ds)), note="pixels mapped to [-1, 1] (Normalize(0.5, 0.5))")
        ds.x = (ds.x - 0.5) / 0.5
    return ds


def whiten_inputs(x: np.ndarray, *, rtol: float = 1e-3) -> np.ndarray:
    r"""ZCA-whitened inputs: the same information, but every direction of the centred data has the same variance,
    so no input direction is favoured and the labels cannot sit on the top singular directions (a poorly aligned
    input, for inputs of more than a few dimensions).

    .. math::  X - \mathbf 1 \bar x^\top = U S V^\top, \qquad
               W = \sqrt n\, U_K V_K^\top, \quad K = \{k : s_k > \mathrm{rtol}\cdot s_1\}

    so :math:`W^\top W / n = V_K V_K^\top` (unit variance on the kept directions) and :math:`W W^\top =
    n\,U_K U_K^\top` depends only on the column space of the centred data (invariant to any invertible linear map
    of the inputs). Directions with :math:`s_k \le \mathrm{rtol}\cdot s_1` (e.g. constant pixels) are dropped.

    Shape: x (n, ...) → (n, d) float32, d = the number of features of one example.
    """
    x2 = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    if len(x2) < 2:
        raise ValueError(f"whitening needs at least two examples, got {len(x2)}")
    u, s, vt = np.linalg.svd(x2 - x2.mean(axis=0), full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        raise ValueError("whitening needs inputs that are not all equal")
    keep = s > rtol * s[0]
    return (np.sqrt(len(x2)) * u[:, keep] @ vt[keep]).astype(np.float32)


def misalign_inputs(x: np.ndarray, y: Any, *, rtol: float = 1e-10, center: bool = True) -> np.ndarray:
    r"""A poorly aligned input by construction: the same singular vectors and singular values as ``x``, with the
    largest singular values moved to the directions that carry the least of the targets.

    .. math::
        X - \mathbf 1 \bar x^\top = U S V^\top = \sum_{i=1}^{r} s_i\, u_i v_i^\top, \qquad
        m_i = \lVert u_i^\top Y \rVert^2, \qquad
        X' = \sum_{i=1}^{r} s_{\pi(i)}\, u_i v_i^\top + \mathbf 1 \bar x^\top

    where :math:`r` counts the singular values above ``rtol``·:math:`s_1` and :math:`\pi` gives the direction
    with the ``k``-th smallest target mass :math:`m_i` the ``k``-th largest singular value (ties keep their
    order). So :math:`X'` has exactly the singular values of :math:`X` (a permutation; zero ones stay zero), the
    same left and right singular vectors and the same column space (a linear model on :math:`X'` fits exactly
    what one on :math:`X` fits), but the targets sit on its smallest singular directions. For the unnormalised
    measure of the centred input (``spectrum(x' - mean, y, bias=False, normalize=False)``) this is the least
    aligned of all such permutations at every threshold: :math:`A'(\tau) = \sum_{s_{\pi(i)} \ge \tau} m_i`
    takes the smallest masses first. The default measure (bias column, unit rows) is lowered too in practice,
    not provably.

    ``y``: targets, (n,) or (n, k) — e.g. ``binary_targets(labels)``, ``one_vs_rest_targets(labels)`` or
    standardised regression targets (not raw multi-class labels 0..K-1: they raise a ``ValueError``).
    ``center=False`` decomposes ``x`` itself (no mean taken out or put back).

    Shape: x (n, ...) → the same shape, float32; y (n,) or (n, k).
    """
    x_arr = np.asarray(x)
    if x_arr.ndim < 2 or len(x_arr) < 2:
        raise ValueError(f"misalign_inputs needs x of shape (n, ...) with n >= 2, got {x_arr.shape}")
    x2 = x_arr.astype(np.float64).reshape(len(x_arr), -1)
    if not np.isfinite(x2).all():
        raise ValueError("misalign_inputs: x has NaN or inf values")
    y_arr = np.asarray(y)
    if y_arr.dtype.kind in "iub" and y_arr.ndim == 1 and len(np.unique(y_arr)) > 2:
        raise ValueError(
            "misalign_inputs: y looks like multi-class labels; pass targets, e.g. "
            "repalign.alignment.one_vs_rest_targets(labels) (or y.astype(float) for integer regression targets)"
        )
    y2 = y_arr.astype(np.float64).reshape(len(y_arr), -1)
    if len(y2) != len(x2):
        raise ValueError(f"misalign_inputs: x has {len(x2)} rows but y has {len(y2)}")
    mean = x2.mean(axis=0) if center else np.zeros(x2.shape[1])
    u, s, vt = np.linalg.svd(x2 - mean, full_matrices=False)
    if s.size == 0 or s[0] <= 0:
        raise ValueError("misalign_inputs needs inputs that are not all equal")
    r = int(np.sum(s > rtol * s[0]))
    mass = ((u[:, :r].T @ y2) ** 2).sum(axis=1)
    by_mass = np.argsort(mass, kind="stable")  # least target mass first
    s_new = s.copy()
    s_new[by_mass] = s[:r]  # s is descending: the least mass gets the largest singular value
    out = (u[:, :r] * s_new[:r]) @ vt[:r] + mean
    return out.reshape(x_arr.shape).astype(np.float32)


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


# --------------------------------------------------------------------------------------------------------------
# The peaks tasks (Caruana 1997, Multitask Learning, §3.3); the generator is data.load("peaks")
# --------------------------------------------------------------------------------------------------------------
#: The six peaks input variables, in input-column order.
PEAKS_VARIABLES = "ABCDEF"


@functools.lru_cache(maxsize=1)
def peaks_tasks() -> tuple[tuple[int, int, int], ...]:
    r"""All 120 peaks tasks ``(a, b, c)``, distinct variable indices in 0..5, in lexicographic order.

    The order is that of ``itertools.permutations("ABCDEF", 3)``: index ``i`` is task ``P{i+1:03d}``
    (P001 = A, B, C; P120 = F, E, D).

    .. math:: y_{(a,b,c)}(x) = x_b \text{ if } x_a > 0.5 \text{ else } x_c
    """
    return tuple(itertools.permutations(range(6), 3))


def peaks_task(task: int | str | Sequence[int | str]) -> tuple[int, int, int]:
    """Normalise a task spec to ``(a, b, c)``.

    Accepted: an index 0..119 (position in :func:`peaks_tasks`), a task number ``"P001"`` .. ``"P120"`` (numbered
    from 1), letters ``"ABC"`` or ``("A", "B", "C")``, or variable indices ``(0, 1, 2)``.
    """
    if isinstance(task, (int, np.integer)):
        if not 0 <= int(task) < 120:
            raise ValueError(f"peaks task index must be in 0..119, got {task}")
        return peaks_tasks()[int(task)]
    if isinstance(task, str) and len(task) == 4 and task[0] in "Pp" and task[1:].isdigit():
        number = int(task[1:])
        if not 1 <= number <= 120:
            raise ValueError(f"peaks task numbers run from P001 to P120, got {task!r}")
        return peaks_tasks()[number - 1]
    items = list(task)
    idx = [
        PEAKS_VARIABLES.index(v.upper()) if isinstance(v, str) and v.upper() in PEAKS_VARIABLES else v for v in items
    ]
    if len(idx) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v < 6 for v in idx) or len(set(idx)) != 3:
        raise ValueError(f"a peaks task is three distinct variables of A-F (or 0-5), got {task!r}")
    return (int(idx[0]), int(idx[1]), int(idx[2]))


def peaks_task_id(task: int | str | Sequence[int | str]) -> str:
    """The task's number, ``"P001"`` (A, B, C) .. ``"P120"`` (F, E, D)."""
    return f"P{peaks_tasks().index(peaks_task(task)) + 1:03d}"


def peaks_task_name(task: int | str | Sequence[int | str]) -> str:
    """``"IF A > 0.5 THEN B ELSE C"`` for a task spec."""
    a, b, c = (PEAKS_VARIABLES[i] for i in peaks_task(task))
    return f"IF {a} > 0.5 THEN {b} ELSE {c}"


def peaks_targets(x: np.ndarray, task: int | str | Sequence[int | str] | None = None) -> np.ndarray:
    """Targets of one peaks task, or of all 120.

    Shape:
        x: (n, 6). Returns (n,) float64 for one task, (n, 120) for ``task=None`` (column j = task j).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 6:
        raise ValueError(f"peaks inputs must be (n, 6), got {x.shape}")
    tasks = peaks_tasks() if task is None else (peaks_task(task),)
    a, b, c = (np.array(v) for v in zip(*tasks, strict=True))
    y = np.where(x[:, a] > 0.5, x[:, b], x[:, c])
    return y if task is None else y[:, 0]


def peaks_relatedness(
    t1: int | str | Sequence[int | str], t2: int | str | Sequence[int | str], kind: str = "shared"
) -> int:
    r"""How related two peaks tasks are.

    ``kind="shared"``: number of input variables the tasks share, :math:`|\{a,b,c\} \cap \{a',b',c'\}|`
    in 0..3 (Caruana 1997). ``kind="roles"``: number of positions with the same variable (the test, the THEN
    or the ELSE branch), 0..3; 3 only for the same task. ``kind="score"``: the two added, 0..6 (6 only for the
    same task): shared variables first, and among those, how many keep their role (P001 = ABC and P014 = AEC
    share two variables in the same roles: score 4; ABC and CBA share three, one in the same role: score 4).
    """
    a, b = peaks_task(t1), peaks_task(t2)
    if kind == "shared":
        return len(set(a) & set(b))
    if kind == "roles":
        return sum(u == v for u, v in zip(a, b, strict=True))
    if kind == "score":
        return len(set(a) & set(b)) + sum(u == v for u, v in zip(a, b, strict=True))
    raise ValueError(f"kind must be 'shared', 'roles' or 'score', got {kind!r}")


def peaks_tasks_by_relatedness(source: Any) -> dict[int, list[tuple[int, int, int]]]:
    """The 119 other peaks tasks grouped by how many variables they share with ``source`` (0..3)."""
    s = peaks_task(source)
    out: dict[int, list[tuple[int, int, int]]] = {k: [] for k in range(4)}
    for t in peaks_tasks():
        if t != s:
            out[peaks_relatedness(s, t)].append(t)
    return out


def peaks_encode(x: np.ndarray, units: int = 10) -> np.ndarray:
    r"""Code each peaks variable with ``units`` input units (Caruana 1997 uses 10 per variable; his exact code is
    not reproduced here): Gaussian bumps at the centres :math:`c_k = (k + \tfrac12)/K`, width :math:`1/K`,

    .. math::  z_{j,k} = \exp\!\big(-\tfrac12 (x_j - c_k)^2 K^2\big), \qquad k = 0..K-1,

    a smooth "one-hot" of where the value lies. ``units=1`` returns the raw values unchanged.

    Shape: x (n, 6) in [0, 1] → (n, 6·units) float32, variable j's units in columns j·K .. j·K + K − 1.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 6:
        raise ValueError(f"peaks inputs must be (n, 6), got {x.shape}")
    units = int(units)
    if units < 1:
        raise ValueError(f"units must be >= 1, got {units}")
    if units == 1:
        return x.astype(np.float32)
    centres = (np.arange(units) + 0.5) / units
    z = np.exp(-0.5 * ((x[:, :, None] - centres) * units) ** 2)
    return z.reshape(x.shape[0], 6 * units).astype(np.float32)


def peaks_stratified_targets(source: Any, per_group: int, *, seed: int = 0) -> list[int]:
    """A seeded sample of target task indices (0..119), ``per_group`` from each relatedness group to ``source``.

    Groups are the shared-variable counts 0..3 (:func:`peaks_tasks_by_relatedness`; the source itself is left
    out); a group smaller than ``per_group`` is taken whole. Returns the indices sorted by group, then index.
    """
    if per_group < 0:
        raise ValueError(f"per_group must be >= 0, got {per_group}")
    rng = np.random.default_rng([int(seed), 0x7A5C])
    index = {t: i for i, t in enumerate(peaks_tasks())}
    out: list[int] = []
    for _, group in sorted(peaks_tasks_by_relatedness(source).items()):
        ids = sorted(index[t] for t in group)
        take = rng.choice(len(ids), size=min(per_group, len(ids)), replace=False) if ids else []
        out.extend(sorted(ids[int(k)] for k in take))
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
