"""TODO docstring (from data)."""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from repalign.data.base import Dataset, _check_split, _classification, _no_official_split, _register, data_root

__all__ = [
    "OFFICE31_DOMAINS",
    "OFFICE31_CLASSES",
    "OFFICE31_SIZES",
    "imagenet_split_table",
    "imagenet_wnids",
    "image_folder",
]

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
