"""Manual sources: image folders the user puts under the data root (Office-31, ImageNet), and ImageFolder views.

Neither data set has a stable, licence-free download, so both are laid out by hand (``python -m repalign.data
fetch`` and ``repalign paper-check`` say where):

============  ==========================================================  =========================================
name          on disk, under the data root                                source, terms
============  ==========================================================  =========================================
``office31``  ``office31/{amazon,dslr,webcam}/<class>/*.jpg`` (the        Saenko et al. 2010 (:data:`OFFICE31_PAGE`);
              archive's ``<domain>/images/<class>/`` also works)         no licence stated, research use
``imagenet``  ``imagenet/{train,val}/<wnid>/*.JPEG`` (val sorted into     ILSVRC-2012, image-net.org; non-commercial
              class folders too)                                          research
============  ==========================================================  =========================================

:func:`load` reads the images into memory (resized to ``image_size``, RGB, ``float32`` in ``[0, 1]``); for
training at full scale, :func:`image_folder` streams them from disk instead. ImageNet's classes are split into
natural and artificial ones after Yosinski et al. 2014 (:func:`imagenet_split_table`, from
``repalign/resources/imagenet_natural_artificial.csv``; aliases ``imagenet_natural`` and ``imagenet_artificial``).
Office-31 labels index :data:`OFFICE31_CLASSES`, so they agree across domains.
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repalign.data.base import (
    Dataset,
    _alias,
    _all_domains,
    _check_split,
    _classification,
    _no_official_split,
    _register,
    _root,
)

__all__ = [
    "load_image",
    "OFFICE31_DOMAINS",
    "OFFICE31_CLASSES",
    "OFFICE31_SIZES",
    "imagenet_split_table",
    "imagenet_wnids",
    "image_folder",
]
#: the package data this module reads (repalign.core.closure reads this statically: they key what imports it)
RESOURCES = ("resources/imagenet_natural_artificial.csv",)

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

#: Images per ILSVRC-2012 split.
IMAGENET_SIZES = {"train": 1_281_167, "val": 50_000}

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".gif", ".tif", ".tiff", ".webp")


# --------------------------------------------------------------------------------------------------------------
# Real loaders: image folders (Office-31, ImageNet)
# --------------------------------------------------------------------------------------------------------------
def _images_in(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def _image_errors() -> tuple[type[BaseException], ...]:
    """What PIL raises on a truncated, damaged, oversized or foreign image file."""
    import struct
    import zlib

    from PIL import Image

    return (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error, Image.DecompressionBombError)


def load_image(path: str | os.PathLike[str], loader: Callable[[str], Any] | None = None, desc: str = "") -> Any:
    """An image file as an RGB ``PIL.Image`` (read fully now), or one ``ValueError`` line naming the file.

    ``loader`` reads a path into an image (default: ``PIL.Image.open(path).convert("RGB")``, what torchvision's
    ``ImageFolder`` does); ``desc`` prefixes the message (the data set). Truncated, damaged and non-image files and
    decompression bombs (PIL's limit) raise ``ValueError`` that says which file and what to do.
    """
    from PIL import Image

    def pil_rgb(p: str) -> Any:
        with Image.open(p) as im:
            return im.convert("RGB")

    try:
        return (loader or pil_rgb)(os.fspath(path))
    except _image_errors() as err:
        reason = (str(err).splitlines() or [type(err).__name__])[0][:160] or type(err).__name__
        prefix = f"{desc}: " if desc else ""
        raise ValueError(f"{prefix}cannot read image {path} ({reason}); remove or replace it") from None


def _read_images(paths: Sequence[Path], image_size: int | None, desc: str) -> np.ndarray:
    """Read RGB images into (n, 3, S, S) float32 in [0, 1] (resized to ``image_size`` if given)."""
    from PIL import Image

    out = []
    size = None
    for p in paths:
        im = load_image(p, desc=desc)
        if image_size is not None:
            im = im.resize((image_size, image_size), Image.BILINEAR)
        a = np.asarray(im, dtype=np.uint8)
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


def _office31_classes(root: Path, domain: str) -> tuple[Path, list[Path]]:
    """The folder of Office-31 ``domain`` under ``root`` and its class folders (named from
    :data:`OFFICE31_CLASSES`, at least one); raises the error that names the fix otherwise."""
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
    return d, class_dirs


def _probe_office31(root: Path, split: str, domain: str | None = None, **options: Any) -> None:
    """The domain folders (all three for ``domain=None``) and their class folders are there (no image is read)."""
    for d in OFFICE31_DOMAINS if domain is None else (domain,):
        _office31_classes(root, d)


@_register(
    "office31",
    "manual",
    "Office-31: 4,110 photos of 31 office objects in three domains, amazon, dslr and webcam (Saenko et al. 2010)",
    path="office31",
    layout="{amazon,dslr,webcam}/<class>/*.jpg",
    probe=_probe_office31,
)
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
        return _all_domains(
            parts,
            "office31",
            "Office-31",
            extra={"path": str(root / "office31")},
            coverage="full" if all(p.info.coverage == "full" for p in parts) else "subset",
            total=sum(OFFICE31_SIZES.values()),
        )
    d, class_dirs = _office31_classes(root, domain)
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


def _imagenet_split(split: str) -> str:
    """ImageNet's split names: ``"train"`` or ``"val"`` (``"test"`` means ``"val"``, which is its test set)."""
    return _check_split("imagenet", {"test": "val"}.get(split, split), ("train", "val"))


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


def _probe_imagenet(root: Path, split: str, subset: str | None = None, **options: Any) -> None:
    """The split's folder holds class folders (of ``subset`` when given); no image is read."""
    _imagenet_classes(root, split, subset)


@_register(
    "imagenet",
    "manual",
    "ImageNet (ILSVRC-2012): 1.33 million photos of 1,000 classes, user-provided as an ImageFolder",
    path="imagenet",
    layout="{train,val}/<wnid>/*.JPEG",
    splits=("train", "val"),
    probe=_probe_imagenet,
)
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
    split = _imagenet_split(split)
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

    root_path = _root(root)
    if name == "imagenet":
        base, keep = _imagenet_classes(root_path, _imagenet_split(split), subset)
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


_alias("imagenet_natural", "imagenet", subset="natural")
_alias("imagenet_artificial", "imagenet", subset="artificial")
