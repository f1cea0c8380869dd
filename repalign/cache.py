r"""Cached, resumable runs: compute a result once, keyed by what made it, and load it afterwards.

:func:`load_or_compute` (the pattern of google-research's ``load_or_compute``) calls ``fn(**params)`` only
when no valid cached result exists. The cache key is

.. math::  \mathrm{key} = \mathrm{sha256}\bigl(\mathrm{JSON}(\text{name}, \text{fn's qualified name},
           \text{params}, \text{data\_id}, \text{version})\bigr)

with canonical JSON (sorted keys, arrays by content hash), so the same parameters on the same data with the
same package version find the same file. The key sees the function's *name*, not its code or closure: put
everything that changes the result into ``params`` or ``data_id``, and bump ``version`` (or the package
version) when the code changes.

Layout: ``<cache_dir>/<name>/<key>.<ext>`` holds the value, ``<key>.json`` its manifest (params,
data_id, version, format, sha256 of the value file, provenance). Both are written atomically (temporary file,
fsync, rename) and the manifest last, so a value without a manifest is an interrupted write. A value whose
sha256 does not match its manifest, or that fails to load, is reported with a warning, deleted and
recomputed; it is never returned.

Formats, chosen automatically:

- ``npz`` (default for results): nested dicts (string keys), lists and tuples of NumPy arrays, torch tensors,
  NumPy / Python scalars, strings and ``None``. Arrays go into an ``.npz`` without pickles, the structure into
  a JSON entry of the same file.
- ``pt``: a mapping of names to torch tensors (a ``state_dict``), written by ``torch.save`` and read back with
  ``torch.load(weights_only=True)``, which executes no code.
- ``pickle`` (fallback for anything else, ``allow_pickle=True``): **loading a pickle runs arbitrary
  code**. The sha256 in the manifest guards against corruption, not tampering (whoever can write the cache
  can rewrite the manifest), so only use a cache directory that you and your own runs write. Pass
  ``allow_pickle=False`` to refuse such values.

:func:`run_sweep` runs a list of configurations through :func:`load_or_compute` with a progress bar: an
interrupted sweep, rerun, loads the finished configurations and computes only the rest.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import math
import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repalign.utils import atomic_write_bytes, atomic_write_text, json_default, provenance

__all__ = [
    "CacheWarning",
    "default_cache_dir",
    "cache_key",
    "cache_path",
    "is_cached",
    "load_or_compute",
    "run_sweep",
    "clear_cache",
]

_STRUCTURE_KEY = "__structure__"
_FORMATS = {"npz": "npz", "pt": "pt", "pickle": "pkl"}


class CacheWarning(UserWarning):
    """A cached result was unusable (corrupt, truncated, unreadable) and is being recomputed."""


def default_cache_dir() -> Path:
    """``$REPALIGN_CACHE`` when set, else ``./.cache/repalign`` (relative to the working directory)."""
    env = os.environ.get("REPALIGN_CACHE")
    return Path(env) if env else Path(".cache") / "repalign"


# ----------------------------------------------------------------------------------------------------------
# Keys
# ----------------------------------------------------------------------------------------------------------


def _array_digest(arr: np.ndarray) -> dict[str, Any]:
    arr = np.ascontiguousarray(arr)
    if arr.dtype.hasobject:
        raise TypeError("object arrays cannot be hashed into a cache key")
    return {
        "__array__": hashlib.sha256(arr.tobytes()).hexdigest(),
        "dtype": arr.dtype.str,
        "shape": list(arr.shape),
    }


def _canonical(obj: Any, where: str, *, strict: bool = True) -> Any:
    """A JSON-able, order-independent image of ``obj`` (arrays and tensors by content hash).

    With ``strict=False`` (values bound by ``functools.partial``) unknown objects become their type name
    instead of raising.
    """
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, int):
        return int(obj)
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, np.generic):
        return _canonical(obj.item(), where, strict=strict)
    if isinstance(obj, np.ndarray):
        return _array_digest(obj)
    if hasattr(obj, "detach") and hasattr(obj, "cpu") and hasattr(obj, "numpy"):  # torch tensor
        t = obj.detach().cpu()
        try:
            return _array_digest(t.numpy())
        except TypeError:  # e.g. bfloat16: hash the float32 image
            return _array_digest(t.float().numpy())
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int, float, bool)) and k is not None:
                raise TypeError(f"{where}: dictionary keys must be strings or numbers, got {type(k).__name__}")
            out[str(k)] = _canonical(v, f"{where}[{k!r}]", strict=strict)
        return {"__dict__": dict(sorted(out.items()))}
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]", strict=strict) for i, v in enumerate(obj)]
    if isinstance(obj, (set, frozenset)):
        return sorted((_canonical(v, where, strict=strict) for v in obj), key=lambda x: json.dumps(x))
    if callable(obj) and hasattr(obj, "__qualname__"):
        return {"__callable__": _qualified_name(obj)}
    if not strict:
        return {"__object__": f"{type(obj).__module__}.{type(obj).__qualname__}"}
    raise TypeError(
        f"{where} is a {type(obj).__name__}, which cannot go into a cache key: pass plain values "
        "(numbers, strings, lists, dicts, arrays) in params and identify data with data_id"
    )


def _qualified_name(fn: Callable[..., Any]) -> str:
    return f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', type(fn).__qualname__)}"


def _fn_identity(fn: Callable[..., Any]) -> Any:
    """The function's qualified name; for a ``functools.partial`` also its bound arguments."""
    if isinstance(fn, functools.partial):
        return {
            "partial": _fn_identity(fn.func),
            "args": _canonical(list(fn.args), "partial args", strict=False),
            "keywords": _canonical(dict(fn.keywords), "partial keywords", strict=False),
        }
    return _qualified_name(fn)


@functools.lru_cache(maxsize=1)
def code_version() -> str:
    """The default ``version`` of cache keys: the package version plus a digest of the package's source.

    A change to any module of :mod:`repalign` (a bug fix in training, a new default) therefore recomputes the
    results that depend on it, instead of silently loading numbers the current code would not produce.
    """
    from repalign import __version__

    root = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".csv") and "__pycache__" not in path.parts:
            digest.update(path.relative_to(root).as_posix().encode())
            digest.update(path.read_bytes())
    return f"{__version__}+src.{digest.hexdigest()[:12]}"


def _key_payload(
    name: str, fn: Callable[..., Any], params: Mapping[str, Any], data_id: Any, version: str | None
) -> dict[str, Any]:
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of keyword arguments for fn, got {type(params).__name__}")
    return {
        "name": str(name),
        "fn": _fn_identity(fn),
        "params": _canonical(params, "params"),
        "data_id": _canonical(data_id, "data_id"),
        "version": code_version() if version is None else str(version),
    }


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def cache_key(
    name: str,
    fn: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    data_id: Any = None,
    version: str | None = None,
) -> str:
    r"""The hex key under which :func:`load_or_compute` stores ``fn(**params)`` (first 32 hex digits).

    .. math::  \mathrm{sha256}(\mathrm{JSON}(\text{name}, \text{fn}, \text{params}, \text{data\_id},
               \text{version}))
    """
    payload = _key_payload(name, fn, params, data_id, version)
    return hashlib.sha256(_dumps(payload).encode("utf-8")).hexdigest()[:32]


def _safe_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(name)).strip("._")
    if not cleaned:
        raise ValueError(f"cache name {name!r} has no usable characters: use letters, digits, '_', '-' or '.'")
    return cleaned


def _entry_dir(name: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return root / _safe_name(name)


def cache_path(
    name: str,
    fn: Callable[..., Any],
    params: Mapping[str, Any],
    *,
    data_id: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    version: str | None = None,
) -> Path:
    """Path of the manifest (``<cache_dir>/<name>/<key>.json``) of this computation's cache entry."""
    key = cache_key(name, fn, params, data_id=data_id, version=version)
    return _entry_dir(name, cache_dir) / f"{key}.json"


# ----------------------------------------------------------------------------------------------------------
# Serialisation
# ----------------------------------------------------------------------------------------------------------


def _is_tensor(x: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, torch.Tensor)


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) and _is_tensor(v) for k, v in value.items())
    )


class _NotTree(Exception):
    pass


class _PickleRefused(Exception):
    pass


def _encode_tree(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    """Structure JSON for a tree of arrays and scalars; arrays are moved into ``arrays``."""

    def add(arr: np.ndarray) -> str:
        if arr.dtype.hasobject:
            raise _NotTree
        key = f"a{len(arrays)}"
        arrays[key] = arr
        return key

    if value is None or isinstance(value, (bool, str)):
        return {"t": "json", "v": value}
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if isinstance(value, float) and not math.isfinite(value):
            return {"t": "float", "v": repr(value)}
        return {"t": "json", "v": value}
    if isinstance(value, np.generic):
        return {"t": "npscalar", "k": add(np.asarray(value))}
    if isinstance(value, np.ndarray):
        return {"t": "array", "k": add(value)}
    if _is_tensor(value):
        t = value.detach().cpu()
        try:
            arr = t.numpy()
        except TypeError as err:  # bfloat16 and friends have no NumPy dtype
            raise _NotTree from err
        return {"t": "tensor", "k": add(arr), "grad": bool(value.requires_grad)}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise _NotTree
        kind = "dict" if type(value) is dict else ("odict" if isinstance(value, dict) else None)
        if kind is None:
            raise _NotTree
        return {"t": kind, "items": [[k, _encode_tree(v, arrays)] for k, v in value.items()]}
    if type(value) in (list, tuple):
        return {"t": type(value).__name__, "items": [_encode_tree(v, arrays) for v in value]}
    raise _NotTree


def _decode_tree(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    t = node["t"]
    if t == "json":
        return node["v"]
    if t == "float":
        return float(node["v"])
    if t == "npscalar":
        return arrays[node["k"]][()]
    if t == "array":
        return arrays[node["k"]]
    if t == "tensor":
        import torch

        out = torch.from_numpy(np.array(arrays[node["k"]]))
        return out.requires_grad_(True) if node.get("grad") and out.is_floating_point() else out
    if t in ("dict", "odict"):
        from collections import OrderedDict

        items = [(k, _decode_tree(v, arrays)) for k, v in node["items"]]
        return dict(items) if t == "dict" else OrderedDict(items)
    if t == "list":
        return [_decode_tree(v, arrays) for v in node["items"]]
    if t == "tuple":
        return tuple(_decode_tree(v, arrays) for v in node["items"])
    raise ValueError(f"unknown node type {t!r} in cached structure")


def _serialise(value: Any, allow_pickle: bool) -> tuple[str, bytes]:
    """(format, bytes) for ``value``: ``pt`` for state dicts, ``npz`` for array trees, else ``pickle``."""
    if _is_state_dict(value):
        import torch

        buf = io.BytesIO()
        torch.save(value, buf)
        return "pt", buf.getvalue()
    arrays: dict[str, np.ndarray] = {}
    try:
        structure = _encode_tree(value, arrays)
    except _NotTree:
        structure = None
    if structure is not None:
        buf = io.BytesIO()
        payload = dict(arrays)
        payload[_STRUCTURE_KEY] = np.array(_dumps(structure))
        np.savez(buf, **payload)
        return "npz", buf.getvalue()
    if not allow_pickle:
        raise TypeError(
            f"a {type(value).__name__} result needs pickle to be cached; return arrays/scalars/dicts/lists "
            "or a state dict, or pass allow_pickle=True (only for a cache directory you trust)"
        )
    return "pickle", pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)


def _deserialise(fmt: str, path: Path, allow_pickle: bool) -> Any:
    if fmt == "npz":
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        structure = json.loads(str(arrays.pop(_STRUCTURE_KEY)[()]))
        return _decode_tree(structure, arrays)
    if fmt == "pt":
        import torch

        return torch.load(path, map_location="cpu", weights_only=True)
    if fmt == "pickle":
        if not allow_pickle:
            raise PermissionError(f"{path} is a pickle and allow_pickle=False")
        with open(path, "rb") as fh:
            return pickle.load(fh)
    raise ValueError(f"unknown cache format {fmt!r}")


def _sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# ----------------------------------------------------------------------------------------------------------
# load_or_compute
# ----------------------------------------------------------------------------------------------------------


def _remove(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _value_files(directory: Path, key: str) -> list[Path]:
    return [directory / f"{key}.{ext}" for ext in _FORMATS.values()]


def _try_load(directory: Path, key: str, payload: dict[str, Any], allow_pickle: bool) -> tuple[bool, Any]:
    """(True, value) for a valid entry; (False, None) when absent or unusable (deleted, with a warning)."""
    manifest_path = directory / f"{key}.json"
    if not manifest_path.exists():
        leftovers = [p for p in _value_files(directory, key) if p.exists()]
        if leftovers:  # a value without a manifest: an interrupted write
            warnings.warn(
                f"cache entry {leftovers[0]} has no manifest (interrupted write): recomputing",
                CacheWarning,
                stacklevel=3,
            )
            _remove(*leftovers)
        return False, None
    problem = None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        fmt = manifest["format"]
        value_path = directory / f"{key}.{_FORMATS[fmt]}"
        if manifest.get("key_payload") != json.loads(_dumps(payload)):
            problem = "its manifest was written for different parameters"
        elif not value_path.exists():
            problem = "its value file is missing"
        elif value_path.stat().st_size != manifest["size"] or _sha256_file(value_path) != manifest["sha256"]:
            problem = "its checksum does not match the manifest (corrupt or truncated file)"
        elif fmt == "pickle" and not allow_pickle:
            raise _PickleRefused(
                f"cache entry {value_path} is a pickle and allow_pickle=False: delete it, or allow pickles "
                "for a cache directory you trust"
            )
        else:
            return True, _deserialise(fmt, value_path, allow_pickle)
    except _PickleRefused as err:
        raise TypeError(str(err)) from None
    except Exception as err:  # anything a damaged file can raise: never return its contents
        problem = f"it could not be read ({type(err).__name__}: {err})"
    warnings.warn(
        f"cache entry {manifest_path} is unusable: {problem}; deleting and recomputing", CacheWarning, stacklevel=3
    )
    _remove(manifest_path, *_value_files(directory, key))
    return False, None


def load_or_compute(
    name: str,
    fn: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    data_id: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    version: str | None = None,
    allow_pickle: bool = True,
) -> Any:
    r"""Return ``fn(**params)``, computed once and loaded from the cache afterwards.

    The entry is keyed by :func:`cache_key` of (``name``, ``fn``'s qualified name and any
    ``functools.partial`` bindings, canonical JSON of ``params``, ``data_id``, ``version``):

    .. math::  \mathrm{key} = \mathrm{sha256}(\mathrm{JSON}(\text{name}, \text{fn}, \text{params},
               \text{data\_id}, \text{version}))[:32]

    Args:
        name: a family of results (a figure, a sweep); also the sub-folder of ``cache_dir``.
        fn: the computation, called as ``fn(**params)``; bind large inputs (data, models) with a closure or
            ``functools.partial`` and identify them through ``data_id``.
        params: keyword arguments of ``fn``: numbers, strings, lists, dicts, arrays (hashed by content).
        data_id: anything JSON-able (or an array) that identifies the data ``fn`` sees, e.g.
            ``{"dataset": "cifar10", "split": "train", "n": 1000, "seed": 0}``.
        cache_dir: root folder; default ``$REPALIGN_CACHE`` or ``./.cache/repalign``.
        force: recompute and overwrite even when a valid entry exists.
        version: the code version in the key; default :func:`code_version` (the package version plus a digest
            of the package's source, so any change to the library recomputes).
        allow_pickle: store (and load) results that need pickle. Loading a pickle can execute arbitrary code:
            keep it for cache directories only you write.

    Returns:
        The value ``fn`` returned, or the cached copy: arrays come back as NumPy arrays, tensors as CPU
        tensors, tuples as tuples, scalars as the same Python / NumPy scalar types.

    Raises:
        TypeError: if ``params`` or ``data_id`` holds something that cannot be hashed into a key, or the
            result needs pickle and ``allow_pickle=False``.
    """
    params = {} if params is None else params
    payload = _key_payload(name, fn, params, data_id, version)
    key = hashlib.sha256(_dumps(payload).encode("utf-8")).hexdigest()[:32]
    directory = _entry_dir(name, cache_dir)

    if force:
        _remove(directory / f"{key}.json", *_value_files(directory, key))
    else:
        found, value = _try_load(directory, key, payload, allow_pickle)
        if found:
            return value

    value = fn(**params)
    fmt, data = _serialise(value, allow_pickle)
    directory.mkdir(parents=True, exist_ok=True)
    value_path = directory / f"{key}.{_FORMATS[fmt]}"
    _remove(directory / f"{key}.json")  # an old manifest must never describe the new value file
    _remove(*(p for p in _value_files(directory, key) if p != value_path))
    atomic_write_bytes(value_path, data)
    manifest = {
        "name": str(name),
        "key": key,
        "key_payload": payload,
        "fn": _qualified_name(fn.func if isinstance(fn, functools.partial) else fn),
        "params": json.loads(json.dumps(params, default=_json_fallback, allow_nan=True)),
        "data_id": json.loads(json.dumps(data_id, default=_json_fallback, allow_nan=True)),
        "version": payload["version"],
        "format": fmt,
        "file": value_path.name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "provenance": provenance(),
    }
    atomic_write_text(directory / f"{key}.json", json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return value


def _json_fallback(obj: Any) -> Any:
    """Readable manifest entries: small arrays as lists, big ones by content hash, other objects by type."""
    if isinstance(obj, np.ndarray) and obj.size > 64:
        return _array_digest(obj)
    try:
        return json_default(obj)
    except TypeError:
        return f"<{type(obj).__module__}.{type(obj).__qualname__}>"


def is_cached(
    name: str,
    fn: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    data_id: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    version: str | None = None,
) -> bool:
    """Whether a manifest and value file exist for this computation (the checksum is verified on load)."""
    params = {} if params is None else params
    manifest = cache_path(name, fn, params, data_id=data_id, cache_dir=cache_dir, version=version)
    if not manifest.exists():
        return False
    return any(p.exists() for p in _value_files(manifest.parent, manifest.stem))


def clear_cache(name: str | None = None, *, cache_dir: str | os.PathLike[str] | None = None) -> int:
    """Delete the cache entries of ``name`` (all names when ``None``); returns how many files were removed."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    dirs = [_entry_dir(name, cache_dir)] if name is not None else [p for p in root.glob("*") if p.is_dir()]
    removed = 0
    for d in dirs:
        if not d.is_dir():
            continue
        for p in d.iterdir():
            if p.is_file() and (p.suffix in {".json", ".npz", ".pt", ".pkl", ".tmp"}):
                p.unlink()
                removed += 1
    return removed


# ----------------------------------------------------------------------------------------------------------
# Resumable sweeps
# ----------------------------------------------------------------------------------------------------------


def run_sweep(
    name: str,
    configs: Sequence[Mapping[str, Any]],
    fn: Callable[..., Any],
    *,
    data_id: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    version: str | None = None,
    allow_pickle: bool = True,
    progress: bool = True,
    desc: str | None = None,
) -> list[Any]:
    """Run ``fn(**config)`` for every configuration through :func:`load_or_compute`, in order.

    Every finished configuration is on disk before the next one starts, so an interrupted sweep (Ctrl-C, a
    crash, a killed job) rerun with the same arguments loads what finished and computes only the rest.
    A ``tqdm`` bar shows progress and how many results came from the cache.

    Shape:
        - ``configs``: a sequence of c parameter dictionaries
        - returns: a list of c results, in the order of ``configs``
    """
    from tqdm.auto import tqdm

    configs = list(configs)
    results: list[Any] = []
    cached = 0
    bar = tqdm(configs, desc=desc or str(name), disable=not progress, leave=False)
    for config in bar:
        if not force and is_cached(name, fn, config, data_id=data_id, cache_dir=cache_dir, version=version):
            cached += 1
        results.append(
            load_or_compute(
                name,
                fn,
                config,
                data_id=data_id,
                cache_dir=cache_dir,
                force=force,
                version=version,
                allow_pickle=allow_pickle,
            )
        )
        bar.set_postfix(cached=cached, refresh=False)
    bar.close()
    return results
