"""The paper's classic representations: raw input, a random network, RBF network, sparse codes, HOG and SIFT.

Every function returns an ``(n, d)`` float32 matrix with one row per example, ready for
:func:`repalign.measure.alignment.alignment_curve`. The learned ones (RBF centres, dictionary atoms, SIFT visual words)
are fitted on ``fit_on`` (default: ``x`` itself) and applied to ``x``; pass the training images as ``fit_on`` to
featurise a test set. To fit once and transform several sets, use the transformer classes directly::

    rbf = RBFNetwork(n_centers=100, seed=0).fit(x_train)
    f_train, f_test = rbf.transform(x_train), rbf.transform(x_test)

:func:`classic_representations` computes several of them at once for a train/test pair (fitted on the train
images, applied to both), cached and timed.

Every fitted step is seeded (``seed``), so equal arguments give equal features.

Image layout: the image baselines (HOG, SIFT) accept ``(n, H, W)`` grey images, ``(n, H, W, C)`` channels-last or
``(n, C, H, W)`` channels-first arrays/tensors (channels-first is assumed when axis 1 has 1, 3 or 4 entries and the
last axis does not), or flat rows ``(n, D)`` with ``image_shape`` giving one image's shape, e.g. ``(3, 32, 32)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repalign.core import cache as cache_module
from repalign.core.arrays import to_numpy
from repalign.networks.features import _fingerprint

__all__ = [
    "median_heuristic",
    "raw_features",
    "random_network_features",
    "RBFNetwork",
    "rbf_features",
    "SparseDictionary",
    "dictionary_features",
    "hog_features",
    "dense_sift",
    "SIFTBagOfWords",
    "sift_features",
    "CLASSIC",
    "classic_representations",
]

# ------------------------------------------------------------------------------------------------- helpers


def _flat(x: Any) -> np.ndarray:
    arr = to_numpy(x)
    if arr.ndim < 1 or len(arr) == 0:
        raise ValueError(f"expected a non-empty (n, ...) array, got shape {arr.shape}")
    return arr.reshape(len(arr), -1).astype(np.float64, copy=False)


def _fitted_rows(x: Any, width: int | None, what: str) -> np.ndarray:
    """``x`` flattened for ``transform``, after checking that ``fit`` ran (``width`` is known) and that ``x`` has
    ``width`` values per example, as ``what`` (the fitted part) expects. Shape: x (n, ...) -> (n, width)."""
    if width is None:
        raise RuntimeError("call fit() before transform()")
    flat = _flat(x)
    if flat.shape[1] != width:
        raise ValueError(f"x has {flat.shape[1]} values per example, {what} {width}")
    return flat


def _images(x: Any, image_shape: Sequence[int] | None = None) -> np.ndarray:
    """Return images as ``(n, H, W, C)`` (see the module docstring for accepted layouts)."""
    arr = to_numpy(x)
    if image_shape is not None:
        arr = arr.reshape((len(arr), *tuple(int(s) for s in image_shape)))
    if arr.ndim == 3:
        return arr[..., None]
    if arr.ndim == 4:
        if arr.shape[1] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
            return np.moveaxis(arr, 1, -1)
        return arr
    raise ValueError(
        f"expected images (n, H, W), (n, H, W, C) or (n, C, H, W), got shape {arr.shape}; "
        f"for flat rows pass image_shape, e.g. image_shape=(3, 32, 32)"
    )


def _to_uint8(images: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """Scale images to uint8: uint8 kept; floats mapped from ``value_range`` (inferred: [0, 1], [-1, 1] or min-max)."""
    if images.dtype == np.uint8 and value_range is None:
        return images
    if value_range is None:
        lo, hi = float(images.min()), float(images.max())
        if lo >= 0 and hi <= 1:
            value_range = (0.0, 1.0)
        elif lo >= -1 and hi <= 1:
            value_range = (-1.0, 1.0)
        elif lo >= 0 and hi <= 255:
            value_range = (0.0, 255.0)
        else:
            value_range = (lo, hi if hi > lo else lo + 1.0)
    lo, hi = value_range
    scaled = (images.astype(np.float64) - lo) / (hi - lo) * 255.0
    return np.clip(np.rint(scaled), 0, 255).astype(np.uint8)


def median_heuristic(x: Any, *, max_points: int = 1000, seed: int = 0) -> float:
    r"""The median pairwise Euclidean distance between (at most ``max_points`` sampled) rows of ``x``.

    .. math::  h = \operatorname{median}_{i<j} \lVert x_i - x_j \rVert

    Shape:
        x: ``(n, ...)`` (flattened to rows). Returns a positive float.
    """
    from scipy.spatial.distance import pdist

    flat = _flat(x)
    if len(flat) > max_points:
        flat = flat[np.random.default_rng(seed).choice(len(flat), max_points, replace=False)]
    if len(flat) < 2:
        raise ValueError("the median heuristic needs at least two examples")
    h = float(np.median(pdist(flat)))
    return h if h > 0 else 1.0


# ----------------------------------------------------------------------------------------- raw and random net


def raw_features(x: Any) -> np.ndarray:
    """The input itself, one flattened row per example.

    Shape:
        x: ``(n, ...)``; returns ``(n, prod(...))`` float32.
    """
    return _flat(x).astype(np.float32)


def random_network_features(
    x: Any,
    model: Any = "resnet18",
    layer: str | None = None,
    *,
    seed: int = 0,
    pool: str = "avg",
    batch_size: int = 256,
    device: Any = None,
    progress: bool = False,
    **model_kwargs: Any,
) -> np.ndarray:
    """Features of a randomly initialised network (no training): the paper's "random network" baseline.

    Args:
        x: inputs ``(n, ...)`` as the network expects them (backbones: ``(n, 3, H, W)`` normalised images).
        model: a backbone name (:data:`repalign.networks.models.BACKBONES`, built with random weights by
            :func:`repalign.networks.models.backbone`), ``"mlp"`` (:func:`repalign.networks.models.mlp` on the flattened input,
            ``model_kwargs`` default to ``depth=1, width=256, activation="relu"``), or an ``nn.Module`` used as is.
        layer: the layer to read; default: the backbone's penultimate layer
            (:func:`repalign.networks.models.feature_layer`), the MLP's last hidden layer; required for a module.
        seed: seed of the random initialisation.
        pool, batch_size, progress: as in :func:`repalign.networks.features.extract`.
        device: where the network runs, by the package's device rule (:func:`repalign.networks.runtime.get_device`:
            ``None``/``"auto"`` is CUDA when torch sees one, else the CPU).
        model_kwargs: extra arguments of :func:`repalign.networks.models.backbone` or :func:`repalign.networks.models.mlp`.

    Shape:
        returns ``(n, d)`` float32 (resnet18: 512, resnet50/101: 2048, vgg16: 4096, efficientnet_lite0: 1280,
        t2t_vit: 384, mlp: width).
    """
    from torch import nn

    from repalign.networks import (  # lazily: torch only for random networks: the classic features need none
        features,
        models,
        runtime,
    )

    if isinstance(model, nn.Module):
        if layer is None:
            raise ValueError("give the layer to read from a module (see repalign.networks.features.layer_names(model))")
        net = model
    elif model == "mlp":
        kwargs = {"depth": 1, "width": 256, "activation": "relu"} | dict(model_kwargs)
        arr = to_numpy(x)
        net = models.mlp(int(np.prod(arr.shape[1:])), seed=seed, **kwargs)
        layer = layer or models.hidden_layers(net)[-1]
    elif isinstance(model, str):
        net = models.backbone(model, pretrained=False, seed=seed, **model_kwargs)
        layer = layer or models.feature_layer(model)
    else:
        raise TypeError(f"model must be a backbone name, 'mlp' or an nn.Module, got {type(model).__name__}")
    dev = runtime.get_device(device)
    out = features.extract(net, x, [layer], batch_size=batch_size, device=dev, pool=pool, progress=progress)
    return out[layer].astype(np.float32, copy=False)


# --------------------------------------------------------------------------------------------------- RBF net


class RBFNetwork:
    r"""Gaussian radial-basis features around k-means centres.

    .. math::  \phi_j(x) = \exp\!\Big(-\frac{\lVert x - c_j\rVert^2}{2 h^2}\Big),\quad j = 1..k

    Centres :math:`c_j`: scikit-learn ``KMeans`` (``n_init=1``, ``random_state=seed``) on the flattened fit data;
    bandwidth :math:`h`: ``bandwidth`` or the median heuristic (:func:`median_heuristic`) on the fit data.

    Shape:
        fit: ``(m, ...)``; transform: ``(n, ...)`` -> ``(n, n_centers)`` float32.
    """

    def __init__(
        self, n_centers: int = 100, bandwidth: float | None = None, *, seed: int = 0, max_iter: int = 300
    ) -> None:
        if int(n_centers) < 1:
            raise ValueError(f"n_centers must be >= 1, got {n_centers}")
        if bandwidth is not None and not bandwidth > 0:
            raise ValueError(f"bandwidth must be positive, got {bandwidth}")
        self.n_centers = int(n_centers)
        self.bandwidth = bandwidth
        self.seed = int(seed)
        self.max_iter = int(max_iter)
        self.centers_: np.ndarray | None = None
        self.bandwidth_: float | None = None

    def fit(self, x: Any) -> RBFNetwork:
        """Fit the centres (and the bandwidth) on ``x``."""
        from sklearn.cluster import KMeans

        flat = _flat(x)
        if len(flat) < self.n_centers:
            raise ValueError(f"n_centers={self.n_centers} is more than the {len(flat)} fit examples")
        km = KMeans(n_clusters=self.n_centers, n_init=1, max_iter=self.max_iter, random_state=self.seed).fit(flat)
        self.centers_ = km.cluster_centers_
        self.bandwidth_ = (
            float(self.bandwidth) if self.bandwidth is not None else median_heuristic(flat, seed=self.seed)
        )
        return self

    def transform(self, x: Any) -> np.ndarray:
        """Gaussian features of ``x``: ``(n, n_centers)`` float32."""
        from sklearn.metrics.pairwise import euclidean_distances

        fitted = self.centers_ is not None and self.bandwidth_ is not None
        flat = _fitted_rows(x, self.centers_.shape[1] if fitted else None, "the centres")
        sq = euclidean_distances(flat, self.centers_, squared=True)
        return np.exp(-sq / (2.0 * self.bandwidth_**2)).astype(np.float32)

    def fit_transform(self, x: Any) -> np.ndarray:
        return self.fit(x).transform(x)


def rbf_features(
    x: Any, *, n_centers: int = 100, bandwidth: float | None = None, fit_on: Any = None, seed: int = 0
) -> np.ndarray:
    """RBF-network features of ``x`` (:class:`RBFNetwork` fitted on ``fit_on``, default ``x``).

    Shape:
        x: ``(n, ...)``; returns ``(n, n_centers)`` float32.
    """
    net = RBFNetwork(n_centers, bandwidth, seed=seed)
    return net.fit(x if fit_on is None else fit_on).transform(x)


# ------------------------------------------------------------------------------------- dictionary learning


class SparseDictionary:
    r"""Sparse codes over a dictionary learned with scikit-learn's ``MiniBatchDictionaryLearning``.

    .. math::  \min_{D, A} \tfrac12 \lVert X - A D\rVert_F^2 + \alpha \lVert A\rVert_{1,1}
               \quad \text{s.t. } \lVert D_j\rVert_2 \le 1

    The fit data's mean is subtracted first (``center=True``); the codes of new data are computed with
    ``transform_algorithm`` (default ``"lasso_lars"`` with the same ``alpha``). ``alpha`` depends on the scale of
    the input (pixels in [0, 1] or standardised: 0.1–1 gives sparse codes).

    Shape:
        fit: ``(m, ...)``; transform: ``(n, ...)`` -> ``(n, n_components)`` float32.
    """

    def __init__(
        self,
        n_components: int = 256,
        alpha: float = 1.0,
        *,
        max_iter: int = 50,
        batch_size: int = 256,
        transform_algorithm: str = "lasso_lars",
        center: bool = True,
        seed: int = 0,
    ) -> None:
        self.n_components = int(n_components)
        self.alpha = float(alpha)
        self.max_iter = int(max_iter)
        self.batch_size = int(batch_size)
        self.transform_algorithm = transform_algorithm
        self.center = bool(center)
        self.seed = int(seed)
        self.mean_: np.ndarray | None = None
        self.model_: Any = None

    def fit(self, x: Any) -> SparseDictionary:
        """Learn the dictionary on ``x``."""
        from sklearn.decomposition import MiniBatchDictionaryLearning

        flat = _flat(x)
        self.mean_ = flat.mean(axis=0) if self.center else np.zeros(flat.shape[1])
        self.model_ = MiniBatchDictionaryLearning(
            n_components=self.n_components,
            alpha=self.alpha,
            max_iter=self.max_iter,
            batch_size=min(self.batch_size, len(flat)),
            transform_algorithm=self.transform_algorithm,
            transform_alpha=self.alpha,
            random_state=self.seed,
        ).fit(flat - self.mean_)
        return self

    def transform(self, x: Any) -> np.ndarray:
        """Sparse codes of ``x``: ``(n, n_components)`` float32."""
        fitted = self.model_ is not None and self.mean_ is not None
        flat = _fitted_rows(x, self.mean_.shape[0] if fitted else None, "the dictionary")
        return np.asarray(self.model_.transform(flat - self.mean_), dtype=np.float32)

    @property
    def components_(self) -> np.ndarray:
        """The dictionary atoms, ``(n_components, D)``."""
        if self.model_ is None:
            raise RuntimeError("call fit() first")
        return self.model_.components_

    def fit_transform(self, x: Any) -> np.ndarray:
        return self.fit(x).transform(x)


def dictionary_features(
    x: Any,
    *,
    n_components: int = 256,
    alpha: float = 1.0,
    max_iter: int = 50,
    fit_on: Any = None,
    seed: int = 0,
) -> np.ndarray:
    """Sparse dictionary-learning codes of ``x`` (:class:`SparseDictionary` fitted on ``fit_on``, default ``x``).

    Shape:
        x: ``(n, ...)``; returns ``(n, n_components)`` float32.
    """
    model = SparseDictionary(n_components, alpha, max_iter=max_iter, seed=seed)
    return model.fit(x if fit_on is None else fit_on).transform(x)


# ---------------------------------------------------------------------------------------------------- HOG


def hog_features(
    images: Any,
    *,
    orientations: int = 9,
    pixels_per_cell: tuple[int, int] = (8, 8),
    cells_per_block: tuple[int, int] = (2, 2),
    block_norm: str = "L2-Hys",
    image_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """Histogram-of-oriented-gradients descriptors (scikit-image ``feature.hog``), one per image.

    Colour images use scikit-image's multichannel HOG (at each pixel the channel with the largest gradient).
    Nothing is fitted.

    Shape:
        images: see the module docstring; returns ``(n, d)`` float32 with
        ``d = orientations * cells_per_block[0] * cells_per_block[1] * blocks_y * blocks_x``,
        ``blocks = H // pixels_per_cell - cells_per_block + 1`` (32 px, defaults: 324).
    """
    from skimage.feature import hog

    imgs = _images(images, image_shape).astype(np.float64, copy=False)
    channel_axis = -1 if imgs.shape[-1] > 1 else None
    rows = []
    for img in imgs:
        rows.append(
            hog(
                img if channel_axis is not None else img[..., 0],
                orientations=orientations,
                pixels_per_cell=tuple(pixels_per_cell),
                cells_per_block=tuple(cells_per_block),
                block_norm=block_norm,
                channel_axis=channel_axis,
                feature_vector=True,
            )
        )
    out = np.stack(rows).astype(np.float32)
    if out.shape[1] == 0:
        raise ValueError(
            f"images of {imgs.shape[1]}x{imgs.shape[2]} px are too small for pixels_per_cell={pixels_per_cell} "
            f"and cells_per_block={cells_per_block}"
        )
    return out


# --------------------------------------------------------------------------------------------------- SIFT


def dense_sift(
    images: Any,
    *,
    step: int = 8,
    size: float | None = None,
    resize: int | None = None,
    value_range: tuple[float, float] | None = None,
    image_shape: Sequence[int] | None = None,
) -> np.ndarray:
    """SIFT descriptors (OpenCV ``cv2.SIFT_create().compute``) on a dense grid of keypoints.

    Images are converted to grey uint8 (colour: OpenCV's RGB→grey; floats mapped from ``value_range``, inferred as
    [0, 1], [-1, 1], [0, 255] or the array's min–max), optionally resized to ``resize`` × ``resize`` px, and
    described at keypoints ``(step/2 + i*step, step/2 + j*step)`` of diameter ``size`` (default ``step``).

    Shape:
        images: see the module docstring; returns ``(n, k, 128)`` float32, ``k = ceil(H/step) * ceil(W/step)``
        keypoints per image.
    """
    import cv2

    imgs = _to_uint8(_images(images, image_shape), value_range)
    if int(step) < 1:
        raise ValueError(f"step must be >= 1, got {step}")
    sift = cv2.SIFT_create()
    out = []
    keypoints = None
    for img in imgs:
        if img.shape[-1] == 3:
            grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGB2GRAY)
        elif img.shape[-1] == 4:
            grey = cv2.cvtColor(np.ascontiguousarray(img), cv2.COLOR_RGBA2GRAY)
        else:
            grey = np.ascontiguousarray(img[..., 0])
        if resize is not None:
            grey = cv2.resize(grey, (int(resize), int(resize)), interpolation=cv2.INTER_LINEAR)
        if keypoints is None:
            h, w = grey.shape
            diameter = float(size if size is not None else step)
            keypoints = [
                cv2.KeyPoint(float(cx), float(cy), diameter)
                for cy in range(step // 2, h, step)
                for cx in range(step // 2, w, step)
            ]
            if not keypoints:
                raise ValueError(f"no keypoints fit a {h}x{w} image with step={step}")
        kept, desc = sift.compute(grey, keypoints)
        if desc is None or len(kept) != len(keypoints):
            raise RuntimeError(f"OpenCV kept {0 if desc is None else len(kept)} of {len(keypoints)} dense keypoints")
        out.append(desc)
    return np.stack(out).astype(np.float32)


class SIFTBagOfWords:
    """Bag of visual words over dense SIFT: a k-means codebook and per-image word histograms.

    The codebook is scikit-learn ``KMeans(n_words, n_init=1, random_state=seed)`` on at most ``max_descriptors``
    descriptors sampled (seeded) from the fit images; each image's row is the L1-normalised histogram of its
    descriptors' nearest words.

    Shape:
        fit: images ``(m, ...)``; transform: ``(n, ...)`` -> ``(n, n_words)`` float32, rows sum to 1.
    """

    def __init__(
        self,
        n_words: int = 100,
        *,
        step: int = 8,
        size: float | None = None,
        resize: int | None = None,
        value_range: tuple[float, float] | None = None,
        image_shape: Sequence[int] | None = None,
        max_descriptors: int = 100_000,
        seed: int = 0,
    ) -> None:
        self.n_words = int(n_words)
        self.sift_kwargs = {
            "step": step,
            "size": size,
            "resize": resize,
            "value_range": value_range,
            "image_shape": image_shape,
        }
        self.max_descriptors = int(max_descriptors)
        self.seed = int(seed)
        self.codebook_: Any = None

    def fit(self, images: Any) -> SIFTBagOfWords:
        """Learn the visual words on ``images``."""
        from sklearn.cluster import KMeans

        desc = dense_sift(images, **self.sift_kwargs).reshape(-1, 128)
        if len(desc) > self.max_descriptors:
            desc = desc[np.random.default_rng(self.seed).choice(len(desc), self.max_descriptors, replace=False)]
        if len(desc) < self.n_words:
            raise ValueError(f"n_words={self.n_words} is more than the {len(desc)} fit descriptors")
        self.codebook_ = KMeans(n_clusters=self.n_words, n_init=1, random_state=self.seed).fit(desc)
        return self

    def transform(self, images: Any) -> np.ndarray:
        """Word histograms of ``images``: ``(n, n_words)`` float32."""
        if self.codebook_ is None:
            raise RuntimeError("call fit() before transform()")
        desc = dense_sift(images, **self.sift_kwargs)
        n, k, _ = desc.shape
        words = self.codebook_.predict(desc.reshape(-1, 128)).reshape(n, k)
        hist = np.zeros((n, self.n_words), dtype=np.float64)
        np.add.at(hist, (np.repeat(np.arange(n), k), words.ravel()), 1.0)
        return (hist / k).astype(np.float32)

    def fit_transform(self, images: Any) -> np.ndarray:
        return self.fit(images).transform(images)


def sift_features(
    images: Any,
    *,
    mode: str = "mean",
    step: int = 8,
    size: float | None = None,
    n_words: int = 100,
    resize: int | None = None,
    value_range: tuple[float, float] | None = None,
    image_shape: Sequence[int] | None = None,
    fit_on: Any = None,
    seed: int = 0,
) -> np.ndarray:
    """Dense SIFT features: descriptors averaged per image (``mode="mean"``) or a bag of visual words (``"bow"``).

    ``"mean"`` fits nothing; ``"bow"`` fits a :class:`SIFTBagOfWords` codebook on ``fit_on`` (default
    ``images``). Other arguments as in :func:`dense_sift`.

    Shape:
        images: see the module docstring; returns ``(n, 128)`` (mean) or ``(n, n_words)`` (bow) float32.
    """
    kwargs = {"step": step, "size": size, "resize": resize, "value_range": value_range, "image_shape": image_shape}
    if mode == "mean":
        return dense_sift(images, **kwargs).mean(axis=1).astype(np.float32)
    if mode == "bow":
        bow = SIFTBagOfWords(n_words, seed=seed, **kwargs)
        return bow.fit(images if fit_on is None else fit_on).transform(images)
    raise ValueError(f"unknown mode {mode!r}; valid: 'mean', 'bow'")


# ------------------------------------------------------------------------------------------ all at once

#: The classic representations :func:`classic_representations` computes, in the paper's order.
CLASSIC: tuple[str, ...] = ("pixels", "rbf", "dictionary", "sift", "hog")


def classic_representations(
    x_train: Any,
    x_test: Any,
    *,
    kinds: Sequence[str] = CLASSIC,
    seed: int = 0,
    rbf_centers: int = 100,
    dictionary_atoms: int = 64,
    dictionary_alpha: float = 1.0,
    dictionary_epochs: int = 5,
    sift_words: int = 100,
    sift_step: int = 4,
    sift_max_descriptors: int = 20_000,
    hog_cell: int = 4,
    cache: bool = True,
    cache_dir: Any = None,
) -> dict[str, dict[str, Any]]:
    """The classic representations of a train and a test set, each fitted on ``x_train`` only.

    ``pixels``: :func:`raw_features`; ``rbf``: :class:`RBFNetwork` with ``rbf_centers`` k-means centres and the
    median-heuristic bandwidth; ``dictionary``: :class:`SparseDictionary` with ``dictionary_atoms`` atoms, penalty
    ``dictionary_alpha`` and ``dictionary_epochs`` passes; ``sift``: :class:`SIFTBagOfWords` (dense SIFT every
    ``sift_step`` px, ``sift_words`` words learned on at most ``sift_max_descriptors`` descriptors); ``hog``:
    :func:`hog_features` with ``hog_cell`` × ``hog_cell`` px cells (2 × 2 cells per block, 9 orientations).
    Every fitted step uses ``seed``. With ``cache`` each representation is stored by
    :func:`repalign.core.cache.load_or_compute`, keyed by its settings, the seed and the images' content.

    Shape:
        x_train ``(n, ...)``, x_test ``(m, ...)`` images (see the module docstring for layouts; the pixel, RBF
        and dictionary features flatten them); returns ``{kind: {"train": (n, d), "test": (m, d), "seconds":
        fit + transform time when computed}}`` in the order of ``kinds``.
    """
    import time

    unknown = [k for k in kinds if k not in CLASSIC]
    if unknown:
        raise ValueError(f"unknown representation(s) {unknown}; valid: {', '.join(CLASSIC)}")
    settings = {
        "pixels": {},
        "rbf": {"n_centers": int(rbf_centers)},
        "dictionary": {
            "atoms": int(dictionary_atoms),
            "alpha": float(dictionary_alpha),
            "epochs": int(dictionary_epochs),
        },
        "sift": {"words": int(sift_words), "step": int(sift_step), "max_descriptors": int(sift_max_descriptors)},
        "hog": {"cell": int(hog_cell)},
    }

    def make(kind: str) -> Any:
        if kind == "rbf":
            return RBFNetwork(int(rbf_centers), seed=seed)
        if kind == "dictionary":
            return SparseDictionary(
                int(dictionary_atoms), float(dictionary_alpha), max_iter=int(dictionary_epochs), seed=seed
            )
        return SIFTBagOfWords(
            int(sift_words), step=int(sift_step), max_descriptors=int(sift_max_descriptors), seed=seed
        )

    def compute(kind: str, settings: dict[str, Any], seed: int) -> dict[str, Any]:
        start = time.perf_counter()
        if kind == "pixels":
            train, test = raw_features(x_train), raw_features(x_test)
        elif kind == "hog":
            cell = (int(hog_cell), int(hog_cell))
            train, test = hog_features(x_train, pixels_per_cell=cell), hog_features(x_test, pixels_per_cell=cell)
        else:
            model = make(kind).fit(x_train)
            train, test = model.transform(x_train), model.transform(x_test)
        return {"train": train, "test": test, "seconds": time.perf_counter() - start}

    data_id = {"train": _fingerprint(to_numpy(x_train)), "test": _fingerprint(to_numpy(x_test))}
    out = {}
    for kind in kinds:
        params = {"kind": kind, "settings": settings[kind], "seed": int(seed)}
        if cache:
            out[kind] = cache_module.load_or_compute(
                "classic_features", compute, params, data_id=data_id, cache_dir=cache_dir
            )
        else:
            out[kind] = compute(**params)
    return out
