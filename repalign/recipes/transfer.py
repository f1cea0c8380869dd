r"""Claims 9 and 10: whole networks pre-trained on a source task, then measured and trained on a target task.

A network is plain data (:func:`network_spec`: family, sizes, seed, weights; :func:`build_network` makes the
module), so that results are cached by what the network is. Two cached recipes:

- :func:`train_network`: pre-training (on a similar or dissimilar source, or on random labels until they are
  memorised), a :class:`TrainedNetwork` holding the trained network's spec;
- :func:`transfer_to_target`: the network's alignment with the target labels before target training, optionally a
  linear probe on its frozen representation, and its test accuracy after target training (a :class:`TransferResult`);
  :func:`per_seed` stacks such results over seeds.

The small families (``mlp``, ``cnn``) are the offline analogues; at paper scale the networks are the paper's
ResNet18 / T2T-ViT (:mod:`repalign.networks.models`, checkpoints of :mod:`repalign.networks.pretrain`).
"""

from __future__ import annotations

import functools
import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.arrays import data_fingerprint
from repalign.core.cache import load_or_compute
from repalign.data import resolve_path, split_per_class
from repalign.measure.alignment import spectrum, threshold_grid
from repalign.measure.targets import one_vs_rest_targets
from repalign.networks import pretrain
from repalign.networks.evaluate import accuracy
from repalign.networks.features import extract
from repalign.networks.finetune import fine_tune
from repalign.networks.models import (
    BACKBONES,
    backbone,
    feature_layer,
    mlp,
    output_head,
    prepare_images,
    replace_head,
    small_cnn,
    weights_id,
)
from repalign.networks.probes import logistic_probe
from repalign.networks.runtime import get_device
from repalign.networks.training import train
from repalign.recipes.results import PlainResult, noted_options

__all__ = [
    "SMALL_FAMILIES",
    "network_layer",
    "pixel_statistics",
    "network_inputs",
    "network_spec",
    "build_network",
    "TrainedNetwork",
    "train_network",
    "TransferResult",
    "transfer_to_target",
    "per_seed",
    "nested_draws",
    "pretrained_checkpoint",
]

# ---------------------------------------------------------------------------------------------------------------
# Whole networks pre-trained on a source and transferred to a target (claims 9 and 10)
# ---------------------------------------------------------------------------------------------------------------
#: small networks for the offline analogues of claims 9 and 10 (the paper's ResNet18 / T2T-ViT at paper scale)
SMALL_FAMILIES = ("mlp", "cnn")


def network_layer(family: str) -> str:
    """The representation layer of a network family: ``mlp`` → ``hidden2`` (its last hidden layer), ``cnn`` →
    ``hidden``, a backbone of :mod:`repalign.networks.models` → :func:`repalign.networks.models.feature_layer`."""
    if family == "mlp":
        return "hidden2"
    if family == "cnn":
        return "hidden"

    return feature_layer(family)


def pixel_statistics(x: np.ndarray) -> tuple[float, float]:
    r"""The mean and standard deviation of every pixel of a set of images, to standardise a small network's inputs
    by (:func:`network_inputs`), as ImageNet's channel statistics standardise a backbone's.

    .. math::  \mu = \tfrac{1}{N}\textstyle\sum_{i} x_i, \qquad s = \sqrt{\tfrac{1}{N}\textstyle\sum_i (x_i - \mu)^2}

    over all N = n · C · H · W values (one channel's statistics for grey images, as the analogues have).

    Shape: x (n, C, H, W). Returns (μ, s) as floats; s > 0.
    """
    arr = np.asarray(x, dtype=np.float64)
    mean, std = float(arr.mean()), float(arr.std())
    if not std > 0:
        raise ValueError(f"pixel_statistics: the images are constant ({mean:g}); there is no spread to standardise by")
    return mean, std


def network_inputs(
    family: str, x: np.ndarray, image_size: int | None = None, *, standardize: Sequence[float] | None = None
) -> np.ndarray:
    """Images as a network family takes them: as they are (float32) for the small networks, or standardised by
    ``standardize`` = (μ, s) (:func:`pixel_statistics`) as ``(x − μ) / s``; 3 channels at ``image_size`` px with the
    backbone's normalisation (:func:`repalign.networks.models.prepare_images`) for a backbone (which has its own
    statistics: ``standardize`` is refused there).

    Shape: x (n, C, H, W) in [0, 1] → (n, C, H, W) or (n, 3, image_size, image_size) float32.
    """
    if family in SMALL_FAMILIES:
        if standardize is None:
            return np.ascontiguousarray(x, dtype=np.float32)
        mean, std = (float(v) for v in standardize)
        return np.ascontiguousarray((np.asarray(x, dtype=np.float64) - mean) / std, dtype=np.float32)
    if standardize is not None:
        raise ValueError(f"{family} standardises its images by its own (ImageNet) statistics; give no standardize")
    return prepare_images(x, family, int(image_size or x.shape[-1])).numpy()


def network_spec(
    family: str,
    num_classes: int,
    in_shape: Sequence[int],
    *,
    seed: int = 0,
    state: Mapping[str, np.ndarray] | None = None,
    pretrained: bool = False,
    checkpoint: str | None = None,
) -> dict[str, Any]:
    """A network as plain data (what :func:`build_network` builds and the cache stores), with an ``id``.

    ``family``: ``mlp`` (2 × 256 ReLU, with biases), ``cnn`` (:func:`small_cnn`) or a backbone of
    :func:`repalign.networks.models.backbone` (``pretrained``: its ImageNet weights); ``state``: trained weights
    (``{name: array}``), else a fresh initialisation under ``seed``; ``checkpoint``: a folder or file that
    ``repalign.networks.pretrain.load_pretrained`` reads (claim 9 at paper scale). ``id`` hashes all of it (the weights by
    content, a checkpoint by path, size and modification time).
    """
    if family not in SMALL_FAMILIES:
        if family not in BACKBONES:
            raise ValueError(f"unknown network family {family!r}; choose one of {SMALL_FAMILIES + BACKBONES}")
    spec: dict[str, Any] = {
        "family": family,
        "num_classes": int(num_classes),
        "in_shape": [int(s) for s in in_shape],
        "seed": int(seed),
        "pretrained": bool(pretrained),
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "state": None if state is None else {k: np.asarray(v) for k, v in state.items()},
    }
    weights = "init" if state is None else data_fingerprint(*(spec["state"][k] for k in sorted(spec["state"])))
    if pretrained and state is None:
        weights = weights_id(family, True)
    if checkpoint is not None:
        p = Path(checkpoint)
        st = p.stat() if p.exists() else None
        weights = f"checkpoint:{p.resolve()}:{st.st_size if st else 0}:{st.st_mtime_ns if st else 0}"
    head = {k: v for k, v in spec.items() if k != "state"}
    spec["id"] = hashlib.sha256(repr((sorted(head.items()), weights)).encode()).hexdigest()[:16]
    return spec


def build_network(spec: Mapping[str, Any]) -> Any:
    """The ``nn.Module`` of a :func:`network_spec` (on the CPU, training mode)."""
    import torch

    family, k, shape = spec["family"], int(spec["num_classes"]), list(spec["in_shape"])
    if spec.get("checkpoint"):
        return pretrain.load_pretrained(spec["checkpoint"])
    if family == "mlp":
        model = mlp(int(np.prod(shape)), 2, 256, bias=True, out_features=k, seed=spec["seed"])
    elif family == "cnn":
        model = small_cnn(k, in_channels=shape[0], image_size=shape[-1], seed=spec["seed"])
    else:
        pretrained = bool(spec["pretrained"]) and spec.get("state") is None
        model = backbone(family, pretrained=pretrained, num_classes=k, image_size=shape[-1], seed=spec["seed"])
    if spec.get("state") is not None:
        model.load_state_dict({name: torch.from_numpy(np.array(v)) for name, v in spec["state"].items()})
    return model


def _fresh_head(model: Any, num_classes: int, seed: int) -> None:
    """Replace the output layer by a freshly drawn ``num_classes``-way one, even when it has that size."""

    head = output_head(model)
    if getattr(head, "out_features", None) == num_classes:
        replace_head(model, num_classes + 1, seed=seed)
    replace_head(model, num_classes, seed=seed)


@dataclass(frozen=True, eq=False)
class TrainedNetwork(PlainResult):
    """A network trained on labelled images (:func:`train_network`).

    Attributes:
        network: the trained network's :func:`network_spec` (its weights in ``state``).
        train_accuracy: argmax accuracy on the training images after training, in eval mode.
        epochs: epochs run (fewer than asked when ``until_accuracy`` was reached).
        history: ``train_loss``, ``train_acc`` per epoch (measured while training), each (epochs,).
        seconds: wall time of the run that computed it (not of a load from the cache).
    """

    network: dict[str, Any]
    train_accuracy: float
    epochs: int
    history: dict[str, np.ndarray]
    seconds: float

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainedNetwork:
        """Rebuild from :meth:`to_dict`."""
        return cls(
            network=dict(data["network"]),
            train_accuracy=float(data["train_accuracy"]),
            epochs=int(data["epochs"]),
            history={k: np.asarray(v) for k, v in data["history"].items()},
            seconds=float(data["seconds"]),
        )


@dataclass(frozen=True, eq=False)
class TransferResult(PlainResult):
    r"""A network on a target task (:func:`transfer_to_target`): its alignment before, its accuracy after training.

    Attributes (t thresholds):
        auc: AUC of the relative alignment curve of the representation with the target labels, before training.
        curve: (t,) that relative curve A(τ)/‖Y‖² on ``thresholds`` (t,).
        test_accuracy: argmax accuracy on the target's test images after training on the target.
        train_accuracy: the last epoch's training accuracy (measured while training).
        seconds: wall time of the run that computed it.
        n_test: the number of test images (one of them is ``1 / n_test`` of accuracy).
        probe_accuracy: test accuracy of a linear probe on the frozen representation, before target training
            (None when no probe was asked for).
        options: the preprocessing of the spectrum behind ``auc`` (``bias``, ``normalize``, ``center``, ``method``).

    ``test_correct`` and ``probe_correct`` are the same accuracies as numbers of test images,
    :math:`\mathrm{acc} \cdot n_\mathrm{test}`: the unit in which "one test image of this target" is 1 whatever
    the target's test-set size.
    """

    auc: float
    curve: np.ndarray
    thresholds: np.ndarray
    test_accuracy: float
    train_accuracy: float
    seconds: float
    n_test: int
    probe_accuracy: float | None = None
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def test_correct(self) -> float:
        """Test images classified correctly after target training: ``test_accuracy · n_test``."""
        return self.test_accuracy * self.n_test

    @property
    def probe_correct(self) -> float | None:
        """Test images the frozen-representation probe classifies correctly (None without a probe)."""
        return None if self.probe_accuracy is None else self.probe_accuracy * self.n_test

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TransferResult:
        """Rebuild from :meth:`to_dict`; the spectrum's preprocessing is noted with the measure
        (:func:`repalign.recipes.results.noted_options`), so a result read from the cache records it too."""
        return cls(
            auc=float(data["auc"]),
            curve=np.asarray(data["curve"]),
            thresholds=np.asarray(data["thresholds"]),
            test_accuracy=float(data["test_accuracy"]),
            train_accuracy=float(data["train_accuracy"]),
            seconds=float(data["seconds"]),
            n_test=int(data["n_test"]),
            probe_accuracy=None if data.get("probe_accuracy") is None else float(data["probe_accuracy"]),
            options=noted_options(data),
        )


def per_seed(results: Mapping[Any, Sequence[TransferResult]], name: str) -> dict[Any, np.ndarray]:
    """One attribute of :class:`TransferResult` (``auc``, ``test_accuracy``, ``test_correct``, ``curve`` …) stacked
    over seeds.

    Shape: results map a key (e.g. (source, target)) to s results, one per seed. Returns ``{key: (s,)}`` for a
    number, ``{key: (s, t)}`` for a curve.
    """
    return {key: np.asarray([getattr(r, name) for r in rs]) for key, rs in results.items()}


def nested_draws(pool: Any, n_align_per_class: int, n_finetune_per_class: int, seed: int) -> tuple[Any, Any]:
    """The alignment and fine-tuning images of one seed from a target's pool, the smaller set drawn from the
    larger one (:func:`repalign.data.split_per_class`, seeded): the fine-tuning images are among those measured, or
    the other way round.

    Shape: pool a :class:`repalign.data.Dataset` of C classes. Returns (align, finetune) datasets of
    C · ``n_align_per_class`` and C · ``n_finetune_per_class`` images.
    """
    big, _ = split_per_class(pool, max(n_align_per_class, n_finetune_per_class), seed=seed)
    small = big if n_align_per_class == n_finetune_per_class else split_per_class(
        big, min(n_align_per_class, n_finetune_per_class), seed=seed)[0]  # fmt: skip
    return (small, big) if n_align_per_class < n_finetune_per_class else (big, small)


def _cached(
    name: str,
    run: Callable[..., dict[str, Any]],
    spec: Mapping[str, Any],
    params: dict[str, Any],
    data_id: Any,
    cache: bool,
) -> dict[str, Any]:
    """``run(**params)`` for the network ``spec``, through the cache (key: the network's id, ``params``,
    ``data_id``) unless ``cache`` is false."""
    keyed = {"network": spec["id"], **params}

    def compute(**p: Any) -> dict[str, Any]:
        del p["network"]
        return run(**p)

    if not cache:
        return compute(**keyed)
    return load_or_compute(name, compute, keyed, data_id=data_id)


def _training(seed: int, epochs: int, lr: float, batch_size: int) -> dict[str, Any]:
    """The training options both recipes key their cache by."""
    return {"seed": int(seed), "epochs": int(epochs), "lr": float(lr), "batch_size": int(batch_size)}


def _train_network_run(
    spec: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    epochs: int,
    lr: float,
    batch_size: int,
    until_accuracy: float | None,
    check_every: int,
    fresh_head: bool,
    device: Any,
    progress: bool,
) -> dict[str, Any]:
    """Uncached worker of :func:`train_network`; returns :meth:`TrainedNetwork.to_dict`'s plain data."""
    num_classes = int(np.max(y)) + 1
    model = build_network(spec)
    if fresh_head:
        _fresh_head(model, num_classes, seed)
    dev = get_device(device)
    history: dict[str, list[float]] = {"train_loss": [], "train_acc": []}
    done, train_accuracy, start = 0, float("nan"), time.perf_counter()
    while done < epochs:
        chunk = epochs - done if until_accuracy is None else min(check_every, epochs - done)
        res = train(model, x, y, task="multiclass", lr=lr, batch_size=batch_size, epochs=chunk, seed=seed + done,
                    device=dev, progress=progress)  # fmt: skip
        model = res.model
        for key in history:
            history[key] += [float(v) for v in res.history[key]]
        done += chunk
        train_accuracy = accuracy(model, x, y, batch_size=256, device=dev)
        if until_accuracy is not None and train_accuracy >= until_accuracy:
            break
    state = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    trained = network_spec(spec["family"], num_classes, spec["in_shape"], seed=spec["seed"], state=state)
    return TrainedNetwork(
        network=trained,
        train_accuracy=float(train_accuracy),
        epochs=int(done),
        history={k: np.asarray(v) for k, v in history.items()},
        seconds=float(time.perf_counter() - start),
    ).to_dict()


def train_network(
    spec: Mapping[str, Any],
    x: np.ndarray,
    y: np.ndarray,
    *,
    seed: int,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    until_accuracy: float | None = None,
    check_every: int = 5,
    fresh_head: bool = True,
    device: Any = None,
    progress: bool = False,
    cache: bool = True,
) -> TrainedNetwork:
    r"""Train a whole network (:func:`network_spec`) on labelled images, cached: a pre-training step.

    The network gets a fresh ``K``-way head drawn under ``seed`` (K = max(y) + 1; ``fresh_head=False`` keeps a
    head of that size), then every parameter θ is trained with cross-entropy and Adam
    (:func:`repalign.networks.training.train`):

    .. math::  \min_\theta\; -\tfrac1n \textstyle\sum_j \log \mathrm{softmax}(f_\theta(x_j))_{y_j}

    With ``until_accuracy`` (e.g. 0.95 for random labels "(nearly) memorised") training runs in chunks of
    ``check_every`` epochs until the training accuracy, measured after the chunk in eval mode
    (:func:`repalign.networks.evaluate.accuracy`, batches of 256), reaches it, or ``epochs`` have run (each chunk
    restarts Adam's moment estimates and shuffles with seed ``seed`` + the epochs already run).

    Shape: x (n, ...) what the network takes (:func:`network_inputs`); y (n,) ints in [0, K).

    Returns:
        a :class:`TrainedNetwork` (``network`` is the trained network's :func:`network_spec`).
    """
    x = np.ascontiguousarray(x, dtype=np.float32)
    y = np.asarray(y, dtype=np.int64)
    params = {
        **_training(seed, epochs, lr, batch_size),
        "until_accuracy": None if until_accuracy is None else float(until_accuracy),
        "check_every": int(check_every),
        "fresh_head": bool(fresh_head),
    }
    run = functools.partial(_train_network_run, spec, x, y, device=device, progress=progress)
    return TrainedNetwork.from_dict(_cached("train_network", run, spec, params, data_fingerprint(x, y), cache))


def _representation(model: Any, layer: str, x: np.ndarray, device: Any) -> np.ndarray:
    """The ``layer`` features of ``x`` (float64), one no-grad pass in eval mode. Shape: x (n, ...) → (n, d)."""
    return np.asarray(extract(model, x, [layer], batch_size=256, device=device, progress=False)[layer], np.float64)


def _transfer_run(
    spec: Mapping[str, Any], sets: Sequence[tuple[np.ndarray, np.ndarray]], *, num_thresholds: int, device: Any,
    progress: bool, probe: bool = False, **training: Any
) -> dict[str, Any]:  # fmt: skip
    """Uncached worker of :func:`transfer_to_target` on its (align, train, test) ``sets`` (``training``:
    :func:`_training`'s options of the fine-tuning; ``probe`` comes with the cached parameters when asked for);
    returns :meth:`TransferResult.to_dict`'s plain data."""
    align, train_xy, test = sets
    start = time.perf_counter()
    dev = get_device(device)
    model = build_network(spec)
    layer = network_layer(spec["family"])
    spec_ = spectrum(_representation(model, layer, align[0], dev), one_vs_rest_targets(align[1]))
    taus = threshold_grid(len(align[1]), num=num_thresholds)
    probe_accuracy = None
    if probe:  # on the frozen representation, before fine-tuning changes it
        feats = [_representation(model, layer, x, dev) for x in (train_xy[0], test[0])]
        probe_accuracy = logistic_probe(feats[0], train_xy[1], feats[1], test[1], seed=training["seed"])["accuracy"]
    k = int(max(np.max(train_xy[1]), np.max(test[1]))) + 1
    res = fine_tune(model, *train_xy, *test, num_classes=k, reset_head=True, device=dev, progress=progress, **training)
    return TransferResult(
        auc=float(spec_.auc()),
        curve=spec_.curve(taus, relative=True),
        thresholds=taus,
        test_accuracy=float(res["test_accuracy"]),
        train_accuracy=float(res["history"]["train_acc"][-1]),
        seconds=float(time.perf_counter() - start),
        n_test=len(test[1]),
        probe_accuracy=None if probe_accuracy is None else float(probe_accuracy),
        options=dict(spec_.options),
    ).to_dict()


def transfer_to_target(
    spec: Mapping[str, Any],
    align: tuple[np.ndarray, np.ndarray],
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    *,
    seed: int,
    epochs: int,
    lr: float = 1e-3,
    batch_size: int = 64,
    num_thresholds: int = 62,
    probe: bool = False,
    device: Any = None,
    progress: bool = False,
    cache: bool = True,
) -> TransferResult:
    r"""A (pre-trained) network on a target task, cached: its alignment before, its test accuracy after training.

    1. **Alignment before target training**: the network's representation Φ (:func:`network_layer`) of the images
       ``align`` against their labels, as centred one-vs-rest targets Y
       (:func:`repalign.measure.targets.one_vs_rest_targets`; the measure's defaults), summarised by the AUC of the
       relative curve (:meth:`repalign.measure.alignment.Spectrum.auc`) and the curve itself on
       :func:`repalign.measure.alignment.threshold_grid` ``(n, num_thresholds)``:

       .. math::  \mathrm{AUC} = \frac{1}{\sqrt n}\int_0^{\sqrt n} A(\tau)/\lVert Y\rVert^2\, d\tau

    2. **A probe on the frozen representation** (``probe=True``): L2-regularised logistic regression on the
       standardised features Φ of ``train`` (:func:`repalign.networks.probes.logistic_probe`, C = 1), scored on
       ``test``: how well a linear model on the pre-trained representation, untouched, does on the target.

    3. **Target training**: :func:`repalign.networks.finetune.fine_tune` with a fresh head drawn under ``seed``, every
       parameter trained (cross-entropy, Adam at ``lr``, ``epochs``) on ``train``; accuracy on ``test``.

    Shape: align, train, test are (x (n, ...), y (n,) ints) pairs; x as the network takes it (:func:`network_inputs`).

    Returns:
        a :class:`TransferResult` (``probe_accuracy`` None without ``probe``). One loaded from the cache notes its
        spectrum's preprocessing with the measure, as a computed one does.
    """
    arrays = [np.ascontiguousarray(a, dtype=np.float32 if i % 2 == 0 else np.int64)
              for i, a in enumerate((*align, *train, *test))]  # fmt: skip
    align, train, test = (arrays[0], arrays[1]), (arrays[2], arrays[3]), (arrays[4], arrays[5])
    params = {**_training(seed, epochs, lr, batch_size), "num_thresholds": int(num_thresholds)}
    if probe:  # keyed only when asked for, so that the results without a probe keep their keys
        params["probe"] = True
    run = functools.partial(_transfer_run, spec, (align, train, test), device=device, progress=progress)
    data_id = {"align": data_fingerprint(*align), "train": data_fingerprint(*train), "test": data_fingerprint(*test)}
    return TransferResult.from_dict(_cached("transfer_to_target", run, spec, params, data_id, cache))


def pretrained_checkpoint(family: str, subset: str, folder: str | Path, *, in_shape: Sequence[int]) -> dict[str, Any]:
    """The :func:`network_spec` of a checkpoint made by ``repalign.networks.pretrain`` (claim 9 at paper scale:
    ``family`` pre-trained on the ImageNet ``subset``, natural or artificial, into ``folder``).

    Raises:
        FileNotFoundError: when ``folder`` holds no checkpoint; the message is the ``torchrun`` command that makes it
            (``repalign.networks.pretrain.command``).
    """

    path = Path(pretrain.checkpoint_file(folder))
    if not path.is_file():
        cmd = pretrain.command(family, subset, str(resolve_path(folder).resolve()))
        raise FileNotFoundError(
            f"no {family} checkpoint pre-trained on ImageNet-{subset} at {path}. Make it (ImageNet in "
            f"$REPALIGN_DATA/imagenet, a GPU node; see docs/PRETRAIN.md) with:\n  {cmd}"
        )
    pretrain.checkpoint_identity(path, note=True)  # the claim files name the weights (core.provenance)
    return network_spec(family, 0, in_shape, checkpoint=str(path))
