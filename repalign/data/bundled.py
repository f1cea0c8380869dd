"""Bundled sources: small real data sets that ship inside scikit-learn and scikit-image (offline stand-ins).

=============  ==============================================================  ====================================
name           data                                                            file it reads (inside the package)
=============  ==============================================================  ====================================
``digits``     1,797 8x8 handwritten digits (UCI Optical Recognition; CC BY    ``sklearn/datasets/data/digits.csv.gz``
               4.0), stand-in for MNIST
``diabetes``   442 patients, 10 features, disease progression (Efron et al.    ``sklearn/datasets/data/diabetes_*``
               2004; BSD-3-Clause), a small real regression
``lfw_faces``  200 25x25 patches, 100 faces of Labeled Faces in the Wild and   ``skimage/data/lfw_subset.npy``
               100 non-faces (research use), a binary image task
=============  ==============================================================  ====================================

scikit-learn and scikit-image are optional dependencies (``pip install 'repalign[classic]'``); a source's
:meth:`~repalign.data.base.Source.check` says when the package is missing.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path

import numpy as np

from repalign.data.base import Dataset, Loader, _classification, _no_official_split, _register, _regression

_CLASSIC = "pip install 'repalign[classic]' (scikit-learn and scikit-image)"


def _bundled(name: str, description: str, package: str, path: str) -> Callable[[Loader], Loader]:
    """Register the decorated loader as the bundled source ``name``: the file ``path`` inside the installed
    ``package`` (scikit-learn or scikit-image, optional dependencies of repalign)."""
    return _register(name, "bundled", description, package=package, path=path, fix=_CLASSIC)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images[:, None] / 16.0).astype(np.float32), d.target.astype(np.int64)


@_bundled(
    "digits",
    "scikit-learn's 1,797 8x8 handwritten digits (UCI), 10 classes; stand-in for MNIST",
    "sklearn",
    "datasets/data/digits.csv.gz",
)
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


@_bundled(
    "diabetes",
    "scikit-learn's diabetes regression: 442 patients, 10 features (Efron et al. 2004)",
    "sklearn",
    "datasets/data/diabetes_data_raw.csv.gz",
)
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


@_bundled(
    "lfw_faces",
    "scikit-image's 200 25x25 Labeled Faces in the Wild patches, face / non-face",
    "skimage",
    "data/lfw_subset.npy",
)
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
