"""Tasks the way the figures describe them: class splits, targets for the measure, rescaled targets, reshaped
inputs, and the transfer pairs of the paper's transfer experiments.

* :func:`prepare_task`: one training task from a named data set and a dict of arguments (classes, ``n``,
  target scaling, the demo's pixel normalisation), each step seeded; :func:`class_split` a (train pool, test
  set) of some classes (``"natural"`` / ``"artificial"`` for CIFAR-10).
* :func:`class_targets` (±1 or one-hot matrices from labels, :mod:`repalign.measure.targets`) and
  :func:`rescale_targets` (min-max to [−1, 1], or standardised; optionally by a reference, the training targets).
* Inputs with the same information and another alignment: :func:`whiten_inputs` (ZCA: every direction the same
  variance) and :func:`misalign_inputs` (the same singular vectors and values, the largest values moved to the
  directions that carry the least of the targets).
* :class:`TransferPair` (a source to pre-train on, a target to transfer to) for the paper's three transfer
  settings: :func:`peaks_transfer_pair` (Caruana's peaks), :func:`imagenet_cifar_pair` (ImageNet → CIFAR-10,
  natural / artificial classes) and :func:`domain_transfer_pair` (Office-31 domains, or their offline analogue
  ``digits_domains``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from repalign.data.base import Dataset, load
from repalign.data.peaks import peaks_relatedness, peaks_task, peaks_task_name, peaks_tasks_by_relatedness
from repalign.data.splits import class_subset, shuffle_labels, split_per_class, subsample, train_test_split
from repalign.data.torchvision import CIFAR10_SPLIT
from repalign.measure.targets import binary_targets, one_hot_targets, one_vs_rest_targets

__all__ = [
    "class_split",
    "class_targets",
    "rescale_targets",
    "prepare_task",
    "whiten_inputs",
    "misalign_inputs",
    "TransferPair",
    "peaks_transfer_pair",
    "imagenet_cifar_pair",
    "domain_transfer_pair",
]


def class_split(
    name: str, classes: str | Sequence[int | str], *, n_test_per_class: int | None = None, data_seed: int = 0
) -> tuple[Any, Any]:
    """(train pool, test set) of some classes of a data set, labels relabelled 0..k-1 in the order of ``classes``.

    ``classes``: class indices or names, or ``"natural"`` / ``"artificial"`` for CIFAR-10 (docs/PAPER.md §3.9,
    :data:`repalign.data.CIFAR10_SPLIT`). The official test split when the data set has one (a seeded draw of
    ``n_test_per_class`` per class of it, or all of it for ``None``); otherwise (embedded MNIST) a seeded draw
    of ``n_test_per_class`` per class held out from the pool.
    """

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


def class_targets(labels: Any, kind: str = "one_vs_rest", classes: Sequence[Any] | None = None) -> Any:
    """Targets for the measure from class labels.

    ``kind``: ``"binary"`` (±1, :func:`repalign.measure.targets.binary_targets`), ``"one_vs_rest"`` (±1 matrix) or
    ``"one_hot"`` (0/1 matrix).

    Shape: labels (n,) → (n,) for binary, (n, K) otherwise.
    """
    # import the functions, not the module: ``repalign.measure.alignment`` the attribute is the function alignment()

    if kind == "binary":
        return binary_targets(labels)
    if kind == "one_vs_rest":
        return one_vs_rest_targets(labels, classes)
    if kind == "one_hot":
        return one_hot_targets(labels, classes)
    raise ValueError(f"kind must be 'binary', 'one_vs_rest' or 'one_hot', got {kind!r}")


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
    ``load_kw={"n": 1000}`` for ``ct_like``); ``classes``: :func:`repalign.data.class_subset` with
    ``n_per_class`` of each, relabelled ``0..k-1`` (two classes give a binary task); ``n``: a subsample of ``n``
    rows (:func:`repalign.data.subsample`, stratified for class labels); regression targets rescaled column by
    column with :func:`repalign.data.rescale_targets` (``target_scaling`` ``"standardize"``: mean 0, sd 1, so no
    target mass sits on the constant direction; ``"minmax"``: [−1, 1]; ``None``: unchanged); with
    ``demo_normalize``, image pixels (x of 4 dimensions) mapped from [0, 1] to [−1, 1], the demo's
    ``Normalize(0.5, 0.5)``: x' = (x − 0.5) / 0.5 (tabular inputs are left as they are).

    Shape: returns a :class:`repalign.data.Dataset`, x (n, ...) float32, y (n,) int64 labels or (n,) / (n, k)
    float64 targets; its ``info.task`` is the ``task`` for :func:`repalign.recipes.layerwise.train_and_measure`.
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
            "repalign.measure.targets.one_vs_rest_targets(labels) (or y.astype(float) for integer regression targets)"
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
    """ImageNet-{natural,artificial} → CIFAR-10-{natural,artificial} (docs/PAPER.md §3.9, Yosinski et al. split).

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
    """Domain → domain transfer with random source labels (the paper's Office-31 table, docs/PAPER.md §3.10).

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
