"""Downloadable sources read through torchvision: MNIST, Fashion-MNIST, CIFAR-10 and CIFAR-100 (the full sets).

Each lives under the data root in torchvision's own layout and is fetched by ``python -m repalign.data fetch
NAME`` (torchvision downloads it and verifies its md5 sums; the folder is moved into place whole, so an
interrupted download never leaves a half copy that later loads):

=================  =============================================  ===================================================
name               on disk, under the data root                   source, licence
=================  =============================================  ===================================================
``mnist``          ``MNIST/raw/{train,t10k}-*-ubyte``             yann.lecun.com/exdb/mnist, CC BY-SA 3.0
``fashion_mnist``  ``FashionMNIST/raw/{train,t10k}-*-ubyte``      github.com/zalandoresearch/fashion-mnist, MIT
``cifar10``        ``cifar-10-batches-py/{data,test}_batch*``     cs.toronto.edu/~kriz/cifar.html, research use
``cifar100``       ``cifar-100-python/{train,test,meta}``         the same; fine labels (100 classes)
=================  =============================================  ===================================================

All have the official ``"train"`` and ``"test"`` splits. ``cifar10`` takes ``subset="natural"`` /
``"artificial"`` (the paper's split of its classes, :data:`CIFAR10_SPLIT`; aliases ``cifar10_natural`` and
``cifar10_artificial``) or a list of class names. A copy with fewer images than the official split loads with a
warning (``coverage="subset"``).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from repalign.data.base import Dataset, Loader, _alias, _check_split, _classification, _fix_command, _register
from repalign.data.manifest import vouches_for

__all__ = [
    "CIFAR10_SPLIT",
    "CIFAR10_CLASSES",
]

#: CIFAR-10 classes by the paper's natural / artificial split (docs/PAPER.md §3.9), CIFAR-10 class names.
CIFAR10_SPLIT: dict[str, list[str]] = {
    "natural": ["bird", "cat", "deer", "dog", "frog", "horse"],
    "artificial": ["airplane", "automobile", "ship", "truck"],
}
CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


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


def _torchvision_open(name: str, split: str, root: Path, download: bool) -> Any:
    """The torchvision data set object of ``split`` (files read, nothing converted), downloaded first when it is
    missing and ``download`` is set.

    A CIFAR copy that fails torchvision's md5 check is opened anyway only when every failing file is vouched for by
    the data root's rehearsal manifest (:func:`repalign.data.manifest.vouches_for`: generated files, hashed when
    they were written, labelled generated by :func:`repalign.data.load`); an intact real copy never gets there.

    Raises:
        FileNotFoundError: files of the split are missing and ``download`` is not set; names them and the fix.
        ValueError: the files are there but fail torchvision's md5 check (a damaged or foreign copy); names them.
    """
    import torchvision.datasets as tvd

    spec = _TV_INFO[name]
    _check_split(name, split, ("train", "test"))
    cls = getattr(tvd, spec["cls"])
    train = split == "train"
    try:
        return cls(str(root), train=train, download=False)
    except RuntimeError as err:
        missing, damaged = _cifar_files(cls, root) if hasattr(cls, "train_list") else ([], [])
        if not missing and damaged and vouches_for(root, name, damaged):
            return _unchecked(cls)(str(root), train=train, download=False)
        if not download:
            raise _open_error(name, split, root, err, missing, damaged) from None
        _torchvision_fetch(name, cls, root, spec["folder"])
        return cls(str(root), train=train, download=False)


def _cifar_files(cls: Any, root: Path) -> tuple[list[str], list[str]]:
    """``(missing, damaged)``: the files of a torchvision CIFAR class (both splits and the meta file), relative to
    ``root``, that are absent, and those present whose md5 differs from torchvision's."""
    from torchvision.datasets.utils import check_integrity

    entries = [*cls.train_list, *cls.test_list, (cls.meta["filename"], cls.meta["md5"])]
    missing, damaged = [], []
    for filename, md5 in entries:
        path = Path(cls.base_folder) / filename
        if not (root / path).is_file():
            missing.append(str(path))
        elif not check_integrity(str(root / path), md5):
            damaged.append(str(path))
    return missing, damaged


def _open_error(
    name: str, split: str, root: Path, err: Exception, missing: list[str], damaged: list[str]
) -> OSError | ValueError:
    """The error of a copy torchvision would not open: files missing (FileNotFoundError) or failing their md5
    check (ValueError), each naming the files and the fix."""
    spec = _TV_INFO[name]
    fix = f"Fix: {_fix_command(name)}; source {spec['url']}"
    if missing:
        listed = ", ".join(Path(m).name for m in missing[:8]) + (" ..." if len(missing) > 8 else "")
        return FileNotFoundError(
            f"{name}: {len(missing)} file(s) missing under {root / spec['folder']}: {listed}. {fix}"
        )
    if damaged:
        listed = ", ".join(Path(d).name for d in damaged)
        return ValueError(
            f"{name}: md5 mismatch: {listed} under {root / spec['folder']} do not match torchvision's checksums "
            f"(a damaged, truncated or foreign copy). Remove the folder and fetch it again. {fix}"
        )
    return FileNotFoundError(f"{name}: no {split} data at {root / spec['folder']} ({err}). {fix}")


def _unchecked(cls: Any) -> Any:
    """``cls`` (a torchvision CIFAR class) without its md5 checks: only for files a rehearsal manifest vouches for."""

    class Vouched(cls):
        def _check_integrity(self) -> bool:
            return True

        def _load_meta(self) -> None:
            import pickle

            with open(Path(self.root) / self.base_folder / self.meta["filename"], "rb") as fh:
                self.classes = pickle.load(fh, encoding="latin1")[self.meta["key"]]
            self.class_to_idx = {c: i for i, c in enumerate(self.classes)}

    return Vouched


def _torchvision_source(name: str, description: str, layout: str) -> Callable[[Loader], Loader]:
    """Register the decorated loader as the downloadable source ``name`` (folder ``_TV_INFO[name]["folder"]``);
    its check opens each split with torchvision (which verifies the files) without converting them."""

    def probe(root: Path, split: str, **options: Any) -> None:
        _torchvision_open(name, split, root, download=False)

    folder = _TV_INFO[name]["folder"]
    return _register(
        name, "downloadable", description, path=folder, layout=layout, splits=("train", "test"), probe=probe
    )


def _torchvision_load(name: str, split: str, root: Path, download: bool, subset: Any = None) -> Dataset:
    spec = _TV_INFO[name]
    tv = _torchvision_open(name, split, root, download)
    train = split == "train"
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


@_torchvision_source("mnist", "MNIST: 70,000 28x28 handwritten digits (LeCun & Cortes), 10 classes", "raw/*-ubyte")
def _load_mnist(split: str, root: Path, download: bool) -> Dataset:
    """MNIST (torchvision layout ``root/MNIST/raw/*-ubyte``). x (n, 1, 28, 28)."""
    return _torchvision_load("mnist", split, root, download)


@_torchvision_source(
    "fashion_mnist", "Fashion-MNIST: 70,000 28x28 images of clothing (Zalando Research), 10 classes", "raw/*-ubyte"
)
def _load_fashion(split: str, root: Path, download: bool) -> Dataset:
    """Fashion-MNIST (torchvision layout ``root/FashionMNIST/raw/*-ubyte``). x (n, 1, 28, 28)."""
    return _torchvision_load("fashion_mnist", split, root, download)


@_torchvision_source(
    "cifar10", "CIFAR-10: 60,000 32x32 colour images, 10 classes (Krizhevsky 2009)", "data_batch_{1..5}, test_batch"
)
def _load_cifar10(split: str, root: Path, download: bool, subset: Any = None) -> Dataset:
    """CIFAR-10 (``root/cifar-10-batches-py``). x (n, 3, 32, 32). ``subset``: natural/artificial or names."""
    return _torchvision_load("cifar10", split, root, download, subset)


@_torchvision_source(
    "cifar100", "CIFAR-100: 60,000 32x32 colour images, 100 fine classes (Krizhevsky 2009)", "train, test, meta"
)
def _load_cifar100(split: str, root: Path, download: bool, subset: Any = None) -> Dataset:
    """CIFAR-100 fine labels (``root/cifar-100-python``). x (n, 3, 32, 32)."""
    return _torchvision_load("cifar100", split, root, download, subset)


_alias("cifar10_natural", "cifar10", subset="natural")
_alias("cifar10_artificial", "cifar10", subset="artificial")
