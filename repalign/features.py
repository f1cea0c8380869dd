"""Layer features: every requested layer of a network in one forward pass per batch.

:func:`extract` registers a forward hook on each requested module, runs the model once per batch in ``eval()``
mode under ``torch.no_grad()`` on the model's device, and either keeps the (pooled) outputs or streams them into
:class:`repalign.alignment.AlignmentAccumulator` objects, so that a 50,000-image data set is measured with
O(d²) memory per layer instead of n × d.

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

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

if TYPE_CHECKING:  # pragma: no cover
    from repalign.alignment import AlignmentAccumulator

__all__ = ["layer_names", "extract", "pool_output"]

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


def _model_device_dtype(model: nn.Module) -> tuple[torch.device, torch.dtype]:
    device, dtype = torch.device("cpu"), torch.float32
    found_device = False
    for t in list(model.parameters()) + list(model.buffers()):
        if not found_device:
            device, found_device = t.device, True
        if t.is_floating_point():
            return t.device, t.dtype
    return device, dtype


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
        device: where to run; default: the model's device. A model moved here is moved back afterwards.
        pool: how module outputs become rows (module docstring): ``"avg"`` (global average), ``"max"``,
            ``"cls"``, ``"flatten"`` or a callable.
        accumulators: ``{layer: AlignmentAccumulator}``; those layers' batches are fed to
            ``accumulator.update(features_batch, targets_batch)`` on the model's device and are not returned.
        targets: ``(n,)`` or ``(n, k)`` alignment targets in data order; required with ``accumulators``.
        progress: show a tqdm bar.

    Shape:
        returns ``{layer: (n, d_layer) float32 array}`` for each requested layer without an accumulator.

    Returns:
        the features of the layers that are not streamed into an accumulator (an empty dict when all are).
    """
    accumulators = dict(accumulators or {})
    if layers is None:
        layers = list(accumulators)
    elif isinstance(layers, str):
        layers = [layers]
    layers = list(layers) + [name for name in accumulators if name not in layers]
    if not layers:
        raise ValueError("no layers requested: give layer names (see repalign.features.layer_names(model))")
    layers = _validate_layers(model, layers)
    if int(batch_size) < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if not callable(pool) and pool not in _POOLS:
        raise ValueError(f"unknown pool {pool!r}; valid: {', '.join(_POOLS)} or a callable")

    n_expected = _num_examples(data)
    target_tensor: torch.Tensor | None = None
    if accumulators:
        if targets is None:
            raise ValueError("accumulators need per-example targets: pass targets=<(n,) or (n, k) array>")
        target_tensor = targets if isinstance(targets, torch.Tensor) else torch.as_tensor(np.asarray(targets))
        if n_expected is not None and len(target_tensor) != n_expected:
            raise ValueError(f"targets has {len(target_tensor)} rows but data has {n_expected} examples")

    home_device, dtype = _model_device_dtype(model)
    run_device = torch.device(device) if device is not None else home_device
    modes = {module: module.training for module in model.modules()}
    modules = dict(model.named_modules())
    captured: dict[str, torch.Tensor] = {}
    handles = []

    def make_hook(name: str) -> Callable[..., None]:
        def hook(_module: nn.Module, _inputs: Any, output: Any) -> None:
            captured[name] = pool_output(_first_tensor(output), pool)

        return hook

    kept: dict[str, list[torch.Tensor]] = {name: [] for name in layers if name not in accumulators}
    seen = 0
    try:
        if run_device != home_device:
            model.to(run_device)
        for name in layers:
            if name != "input":
                handles.append(modules[name].register_forward_hook(make_hook(name)))
        model.eval()
        from tqdm.auto import tqdm

        with torch.no_grad(), tqdm(total=n_expected, desc="extract", unit="ex", disable=not progress) as bar:
            for x in _batches(data, int(batch_size)):
                x = x.to(run_device, dtype=dtype)
                b = x.shape[0]
                captured.clear()
                if "input" in layers:
                    captured["input"] = x.flatten(1)
                model(x)
                missing = [name for name in layers if name not in captured]
                if missing:
                    raise ValueError(f"layer(s) {missing} did not run in the model's forward pass")
                for name in layers:
                    feats = captured[name]
                    if name in accumulators:
                        assert target_tensor is not None
                        y = target_tensor[seen : seen + b]
                        if len(y) != b:
                            raise ValueError(f"targets has {len(target_tensor)} rows, fewer than the examples in data")
                        accumulators[name].update(feats, y.to(feats.device))
                    else:
                        kept[name].append(feats.float().cpu())
                seen += b
                bar.update(b)
        if target_tensor is not None and seen != len(target_tensor):
            raise ValueError(f"targets has {len(target_tensor)} rows but data yielded {seen} examples")
    finally:
        for handle in handles:
            handle.remove()
        captured.clear()
        for module, mode in modes.items():
            module.training = mode
        if run_device != home_device:
            model.to(home_device)

    return {
        name: (torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), dtype=np.float32))
        for name, chunks in kept.items()
    }
