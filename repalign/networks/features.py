"""Layer features: every requested layer of a network in one forward pass per batch.

:func:`extract` registers a forward hook on each requested module, runs the model once per batch in ``eval()``
mode under ``torch.no_grad()`` (:func:`repalign.networks.evaluate.evaluating`) on the device of the package's rule
(:func:`repalign.networks.runtime.get_device`), and either keeps the (pooled) outputs or streams them into
:class:`repalign.measure.alignment.AlignmentAccumulator` objects, so that a 50,000-image data set is measured with
O(d²) memory per layer instead of n × d.

:func:`extract_cached` does the same once per (model, weights, layers, pooling, data) and loads the result from
:mod:`repalign.core.cache` afterwards; :func:`backbone_features` is that for a named backbone (pre-trained or
randomly initialised) on a batch of images, with the extraction's throughput recorded. Images are prepared for the
network (resized, normalised: :func:`repalign.networks.models.prepare_images`) batch by batch on the run's device
(``transform``), so host memory holds the raw images and one prepared batch, not every image at 224 px.

Layer names are the module names of ``model.named_modules()`` (``"layer3.1"``, ``"classifier.4"``, ``"hidden2"``)
plus the pseudo-layer ``"input"`` (the flattened input batch); :func:`layer_names` lists them.

Pooling (``pool``) turns each module output into one row per example:

- ``"avg"`` (default): ``(b, d)`` kept; ``(b, c, h, w)`` convolution maps and any ``(b, c, *spatial)`` output are
  averaged over the spatial axes (global average pooling) -> ``(b, c)``; ``(b, t, d)`` outputs are treated as token
  sequences (transformers) and averaged over the tokens -> ``(b, d)``;
- ``"max"``: the same with the maximum;
- ``"cls"``: token 0 of ``(b, t, d)`` outputs (a class token); other shapes as ``"avg"``;
- ``"flatten"``: every output flattened to ``(b, numel / b)``;
- a callable ``tensor -> (b, d) tensor``.

A module that runs more than once in one forward pass (e.g. the shared ``relu`` of a torchvision ``BasicBlock``)
contributes its last output.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from repalign.core import cache
from repalign.core.progress import progress_bar as tqdm
from repalign.networks import models
from repalign.networks.evaluate import evaluating
from repalign.networks.runtime import get_device, model_dtype

if TYPE_CHECKING:  # pragma: no cover
    from repalign.measure.alignment import AlignmentAccumulator

__all__ = [
    "layer_names",
    "pool_output",
    "extract",
    "Extracted",
    "extract_cached",
    "backbone_features",
]


Pool = str | Callable[[torch.Tensor], torch.Tensor]
_POOLS = ("avg", "max", "cls", "flatten")


def layer_names(model: nn.Module) -> list[str]:
    """Names :func:`extract` accepts: ``"input"`` then every submodule of ``model`` in registration order."""
    return ["input"] + [name for name, _ in model.named_modules() if name]


def pool_output(output: torch.Tensor, pool: Pool = "avg") -> torch.Tensor:
    """Reduce one module output to a matrix with one row per example (see the module docstring).

    Shape:
        output: ``(b,)``, ``(b, d)``, ``(b, t, d)`` or ``(b, c, *spatial)``; returns ``(b, d')``.
    """
    if callable(pool):
        out = pool(output)
        if out.ndim != 2 or out.shape[0] != output.shape[0]:
            raise ValueError(f"the pool callable must return a (batch, d) tensor, got shape {tuple(out.shape)}")
        return out
    if pool not in _POOLS:
        raise ValueError(f"unknown pool {pool!r}; valid: {', '.join(_POOLS)} or a callable")
    if output.ndim == 1:
        return output.unsqueeze(1)
    if output.ndim == 2:
        return output
    if pool == "flatten":
        return output.flatten(1)
    if output.ndim == 3:
        if pool == "cls":
            return output[:, 0]
        return output.amax(dim=1) if pool == "max" else output.mean(dim=1)
    dims = tuple(range(2, output.ndim))
    return output.amax(dim=dims) if pool == "max" else output.mean(dim=dims)


def _first_tensor(output: Any) -> torch.Tensor:
    if isinstance(output, torch.Tensor):
        return output
    if isinstance(output, (tuple, list)):
        for item in output:
            if isinstance(item, torch.Tensor):
                return item
    raise TypeError(f"module output of type {type(output).__name__} holds no tensor")


def _validate_layers(model: nn.Module, layers: Sequence[str]) -> list[str]:
    valid = layer_names(model)
    valid_set = set(valid)
    bad = [name for name in layers if name not in valid_set]
    if bad:
        hints = []
        for name in bad:
            close = difflib.get_close_matches(str(name), valid, n=3)
            hints.append(f"{name!r}" + (f" (did you mean {', '.join(map(repr, close))}?)" if close else ""))
        raise ValueError(f"unknown layer(s) {', '.join(hints)}. Valid layer names: {', '.join(valid)}")
    return list(dict.fromkeys(layers))  # drop duplicates, keep order


def _num_examples(data: Any) -> int | None:
    try:
        if isinstance(data, torch.utils.data.DataLoader):
            return len(data.dataset)  # type: ignore[arg-type]
        if not isinstance(data, (np.ndarray, torch.Tensor, torch.utils.data.Dataset)) and hasattr(data, "x"):
            return len(data.x)
        return len(data)
    except TypeError:
        return None


def _batches(data: Any, batch_size: int) -> Iterator[torch.Tensor]:
    """Yield input batches from an array, a tensor, a DataLoader, a torch Dataset or an object with ``.x``."""
    if isinstance(data, (np.ndarray, torch.Tensor)):
        for start in range(0, len(data), batch_size):
            chunk = data[start : start + batch_size]
            yield torch.from_numpy(np.ascontiguousarray(chunk)) if isinstance(chunk, np.ndarray) else chunk
        return
    if isinstance(data, torch.utils.data.Dataset):
        data = torch.utils.data.DataLoader(data, batch_size=batch_size, shuffle=False)
    elif not isinstance(data, torch.utils.data.DataLoader) and hasattr(data, "x"):
        yield from _batches(data.x, batch_size)
        return
    if not isinstance(data, Iterable):
        raise TypeError(
            f"data must be a numpy array, a torch tensor, a torch Dataset/DataLoader or have an .x array; "
            f"got {type(data).__name__}"
        )
    for item in data:
        if isinstance(item, (tuple, list)):
            item = item[0]
        if isinstance(item, np.ndarray):
            item = torch.from_numpy(item)
        if not isinstance(item, torch.Tensor):
            raise TypeError(f"batches must be tensors or (x, y) pairs, got {type(item).__name__}")
        yield item


def extract(
    model: nn.Module,
    data: Any,
    layers: Sequence[str] | str | None,
    *,
    batch_size: int = 256,
    device: Any = None,
    pool: Pool = "avg",
    accumulators: Mapping[str, AlignmentAccumulator] | None = None,
    targets: Any = None,
    progress: bool = True,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> dict[str, np.ndarray]:
    """Features of ``layers`` for every example of ``data``, all layers from one forward pass per batch.

    Args:
        model: any ``nn.Module``; run in ``eval()`` mode under ``torch.no_grad()``; every module's train/eval
            flag is restored afterwards.
        data: inputs ``(n, ...)`` as a numpy array or tensor (converted to the model's float dtype, not rescaled),
            a torch ``DataLoader`` or ``Dataset`` yielding ``x`` or ``(x, y)`` (not shuffled: rows keep data
            order), or an object with an ``x`` array (``repalign.data.Dataset``).
        layers: layer names (see :func:`layer_names`; ``"input"`` is the flattened input); a single name is
            accepted; ``None`` means the layers of ``accumulators``. Checked before any computation: an unknown
            name raises ``ValueError`` listing the valid ones.
        batch_size: examples per forward pass (ignored for a ``DataLoader``, which has its own).
        device: where to run, by the package's device rule (:func:`repalign.networks.runtime.get_device`:
            ``None``/``"auto"`` is CUDA when torch sees one, else the CPU); a model moved there is moved back
            afterwards.
        pool: how module outputs become rows (module docstring): ``"avg"`` (global average), ``"max"``,
            ``"cls"``, ``"flatten"`` or a callable.
        accumulators: ``{layer: AlignmentAccumulator}``; those layers' batches are fed to
            ``accumulator.update(features_batch, targets_batch)`` on the run's device and are not returned.
        targets: ``(n,)`` or ``(n, k)`` alignment targets in data order; required with ``accumulators``.
        progress: show a tqdm bar.
        transform: applied to each input batch on the device before the forward pass (e.g. resizing and
            normalising images, :func:`repalign.networks.models.prepare_images`); ``"input"`` is then the
            transformed batch. Batch by batch, so only one transformed batch is held at a time.

    Shape:
        returns ``{layer: (n, d_layer) float32 array}`` for each requested layer without an accumulator.

    Returns:
        the features of the layers that are not streamed into an accumulator (an empty dict when all are).
    """
    accumulators = dict(accumulators or {})
    layers = _requested_layers(model, layers, accumulators)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not callable(pool) and pool not in _POOLS:
        raise ValueError(f"unknown pool {pool!r}; valid: {', '.join(_POOLS)} or a callable")
    n_expected = _num_examples(data)
    target_tensor = _alignment_targets(targets, accumulators, n_expected)
    dtype = model_dtype(model)
    kept: dict[str, list[torch.Tensor]] = {name: [] for name in layers if name not in accumulators}
    seen = 0
    with (
        evaluating(model, device) as dev,
        _capturing(model, layers, pool) as captured,
        tqdm(total=n_expected, desc="extract", unit="ex", disable=not progress) as bar,
    ):
        for x in _batches(data, int(batch_size)):
            x = x.to(dev, dtype=dtype) if transform is None else transform(x.to(dev)).to(dtype=dtype)
            b = x.shape[0]
            captured.clear()
            if "input" in layers:
                captured["input"] = x.flatten(1)
            model(x)
            _store(captured, layers, kept, accumulators, target_tensor, seen, b)
            seen += b
            bar.update(b)
    if target_tensor is not None and seen != len(target_tensor):
        raise ValueError(f"targets has {len(target_tensor)} rows but data yielded {seen} examples")
    return {
        name: (torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32))
        for name, chunks in kept.items()
    }


def _requested_layers(
    model: nn.Module, layers: Sequence[str] | str | None, accumulators: Mapping[str, Any]
) -> list[str]:
    """The layers :func:`extract` reads: ``layers`` (one name, several, or None: the accumulators'), then any
    accumulator layer not among them; duplicates dropped, every name checked (:func:`_validate_layers`)."""
    if layers is None:
        layers = list(accumulators)
    elif isinstance(layers, str):
        layers = [layers]
    layers = list(layers) + [name for name in accumulators if name not in layers]
    if not layers:
        raise ValueError("no layers requested: give layer names (see repalign.networks.features.layer_names(model))")
    return _validate_layers(model, layers)


def _alignment_targets(targets: Any, accumulators: Mapping[str, Any], n_expected: int | None) -> torch.Tensor | None:
    """The accumulators' targets as a tensor (None without accumulators), checked against the data's length."""
    if not accumulators:
        return None
    if targets is None:
        raise ValueError("accumulators need per-example targets: pass targets=<(n,) or (n, k) array>")
    target_tensor = targets if isinstance(targets, torch.Tensor) else torch.as_tensor(np.asarray(targets))
    if n_expected is not None and len(target_tensor) != n_expected:
        raise ValueError(f"targets has {len(target_tensor)} rows but data has {n_expected} examples")
    return target_tensor


@contextlib.contextmanager
def _capturing(model: nn.Module, layers: Sequence[str], pool: Pool) -> Iterator[dict[str, torch.Tensor]]:
    """Forward hooks that put each layer's pooled output (:func:`pool_output`) into the yielded dict.

    One hook per requested module (``"input"`` has none: :func:`extract` fills it); a module that runs twice in
    a forward pass leaves its last output. The hooks are removed when the block ends.
    """
    captured: dict[str, torch.Tensor] = {}
    modules = dict(model.named_modules())
    handles = []

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured[name] = pool_output(_first_tensor(output), pool)

        return hook

    try:
        for name in layers:
            if name != "input":
                handles.append(modules[name].register_forward_hook(make_hook(name)))
        yield captured
    finally:
        for handle in handles:
            handle.remove()
        captured.clear()


def _store(
    captured: Mapping[str, torch.Tensor],
    layers: Sequence[str],
    kept: dict[str, list[torch.Tensor]],
    accumulators: Mapping[str, AlignmentAccumulator],
    targets: torch.Tensor | None,
    seen: int,
    b: int,
) -> None:
    """Send one batch's features on: into its accumulator (with rows ``seen .. seen + b`` of ``targets``, on the
    features' device) or, as float32 on the CPU, into ``kept``. ``b`` is the number of examples in the batch."""
    missing = [name for name in layers if name not in captured]
    if missing:
        raise ValueError(f"layer(s) {missing} did not run in the model's forward pass")
    for name in layers:
        feats = captured[name]
        if name in accumulators:
            assert targets is not None
            y = targets[seen : seen + b]
            if len(y) != b:
                raise ValueError(f"targets has {len(targets)} rows, fewer than the examples in data")
            accumulators[name].update(feats, y.to(feats.device))
        else:
            kept[name].append(feats.float().cpu())


# ------------------------------------------------------------------------------------------------- cached


@dataclass(frozen=True)
class Extracted:
    """Features computed by :func:`extract_cached`, and how long their one pass took when it ran.

    ``features``: ``{layer: (n, d) float32}``; ``seconds``: wall time of the forward passes when they were
    computed (a cached result keeps the time of the run that made it); ``device``: where they ran;
    ``from_cache``: whether this call loaded them instead of computing.
    """

    features: dict[str, np.ndarray]
    n: int
    seconds: float
    device: str
    from_cache: bool

    @property
    def images_per_second(self) -> float:
        """Throughput of the pass that computed the features (examples per second)."""
        return float(self.n / self.seconds) if self.seconds > 0 else float("inf")


def _fingerprint(data: Any) -> str:
    import hashlib

    arr = data.detach().cpu().numpy() if isinstance(data, torch.Tensor) else np.asarray(data)
    arr = np.ascontiguousarray(arr)
    digest = hashlib.sha256(str((arr.shape, arr.dtype.str)).encode())
    digest.update(arr.tobytes())
    return digest.hexdigest()[:32]


def extract_cached(
    model: nn.Module | Callable[[], nn.Module],
    data: Any,
    layers: Sequence[str] | str,
    *,
    model_id: Mapping[str, Any],
    data_id: Any = None,
    batch_size: int = 256,
    device: Any = None,
    pool: str = "avg",
    progress: bool = True,
    cache_dir: Any = None,
    force: bool = False,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> Extracted:
    """:func:`extract` computed once and cached (:func:`repalign.core.cache.load_or_compute`), with its timing.

    The key holds ``model_id`` (what identifies the network and its weights, e.g. ``{"name": "resnet50",
    "weights": models.weights_id(...), "seed": None}``; the caller's responsibility: the model's code and weights
    are not hashed), the layers, ``pool`` and ``data_id`` (default: a sha256 of ``data``'s values, which must then
    be an array or tensor). The device and batch size are not in the key: features are the same up to float
    rounding wherever they are computed. ``model`` may be a zero-argument factory, so that a cached result never
    builds the network. The pass runs on ``device`` by the package's device rule
    (:func:`repalign.networks.runtime.get_device`: ``None``/``"auto"`` is CUDA when torch sees one, else the CPU);
    a module given here is moved back afterwards, as :func:`extract` does. ``transform`` goes to :func:`extract`
    (per batch); it is not in the key, so a caller passing one names it in ``data_id``.

    Shape:
        data ``(n, ...)``; returns :class:`Extracted` with ``features[layer]`` of shape ``(n, d_layer)``.
    """

    if isinstance(layers, str):
        layers = [layers]
    if not isinstance(pool, str):
        raise ValueError("extract_cached needs a named pool ('avg', 'max', 'cls', 'flatten'): a callable has no key")
    if data_id is None:
        if not isinstance(data, (np.ndarray, torch.Tensor)):
            raise ValueError("give data_id for data that is not an array or tensor (it identifies the data)")
        data_id = {"sha256": _fingerprint(data), "shape": list(data.shape)}
    n = _num_examples(data)
    params = {"model": dict(model_id), "layers": list(layers), "pool": pool}
    computed = []

    dev = get_device(device)

    def compute(model: Any, layers: list[str], pool: str) -> dict[str, Any]:
        net = model_factory().to(dev) if model_factory is not None else module  # built here: it stays on dev
        if dev.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        out = extract(net, data, layers, batch_size=batch_size, device=dev, pool=pool, progress=progress,
                      transform=transform)  # fmt: skip
        if dev.type == "cuda":
            torch.cuda.synchronize()
        computed.append(True)
        return {"features": out, "seconds": time.perf_counter() - start, "device": str(dev)}

    module = model if isinstance(model, nn.Module) else None
    model_factory = None if isinstance(model, nn.Module) else model
    value = cache.load_or_compute("features", compute, params, data_id=data_id, cache_dir=cache_dir, force=force)
    feats = {name: np.asarray(value["features"][name], dtype=np.float32) for name in layers}
    rows = n if n is not None else len(next(iter(feats.values())))
    return Extracted(feats, int(rows), float(value["seconds"]), str(value["device"]), not computed)


def backbone_features(
    name: str,
    images: Any,
    *,
    pretrained: bool = True,
    seed: int | None = None,
    layer: str | None = None,
    layers: Sequence[str] | None = None,
    weights_path: Any = None,
    image_size: int = 224,
    value_range: tuple[float, float] | None = None,
    batch_size: int = 64,
    device: Any = None,
    progress: bool = True,
    cache_dir: Any = None,
) -> Extracted:
    """Penultimate-layer (or ``layer``, or every one of ``layers``) features of a backbone on raw images, in one
    cached pass.

    The images go through :func:`repalign.networks.models.prepare_images` (3 channels, ``image_size`` px, the backbone's
    normalisation) batch by batch on the device, as they are used (host memory holds the raw images only); the
    network is :func:`repalign.networks.models.backbone` ``(name, pretrained, weights_path,
    seed=seed)``, run on ``device`` by the package's device rule (:func:`repalign.networks.runtime.get_device`:
    ``None``/``"auto"`` is CUDA when torch sees one, else the CPU). Cached by
    (name, weights (:func:`repalign.networks.models.weights_id`), seed of a random initialisation, layer, image size,
    data): the network is only built when the features are not cached. ``layers`` (names from :func:`layer_names`,
    e.g. several depths and the ``"classifier"`` logits) are extracted together in the same single pass; give
    ``layer`` or ``layers``, not both.

    Shape:
        images ``(n, H, W)``, ``(n, C, H, W)`` or ``(n, H, W, C)``; returns :class:`Extracted` whose
        ``features[layer]`` is ``(n, d)`` (efficientnet_lite0: 1280).
    """

    if layer is not None and layers is not None:
        raise ValueError("give layer (one) or layers (several), not both")
    wanted = [layer or models.feature_layer(name)] if layers is None else list(layers)
    if not wanted:
        raise ValueError("layers is empty: name at least one layer (features.layer_names(model) lists them)")
    weights = models.weights_id(name, pretrained, weights_path)
    raw = images if isinstance(images, torch.Tensor) else np.asarray(images)
    prepare = functools.partial(models.prepare_images, name=name, image_size=int(image_size), value_range=value_range)
    prepared_as = {
        "preprocessing": models.PREPROCESSING[name],
        "image_size": int(image_size),
        "value_range": value_range,
    }
    data_id = {"images": _fingerprint(raw), "shape": list(raw.shape), "prepared": prepared_as}
    model_id = {
        "name": name,
        "weights": weights,
        "seed": None if weights != "random" else seed,
        "image_size": int(image_size),
    }

    def build() -> nn.Module:
        return models.backbone(name, pretrained=pretrained, weights_path=weights_path, image_size=image_size, seed=seed)

    run_device = get_device(device)
    return extract_cached(
        build,
        raw,
        wanted,
        model_id=model_id,
        data_id=data_id,
        batch_size=batch_size,
        device=run_device,
        progress=progress,
        cache_dir=cache_dir,
        transform=prepare,
    )
