r"""Cached results: compute a result once, keyed by what made it, and load it afterwards.

:func:`load_or_compute` calls ``fn(**params)`` only when no valid cached result exists. The cache key is

.. math::  \mathrm{key} = \mathrm{sha256}\bigl(\mathrm{JSON}(\text{name}, \text{params}, \text{data\_id},
           \text{version})\bigr)[:32]

over canonical JSON (sorted keys; arrays by dtype, shape and a sha256 of their bytes). ``version`` defaults to
:func:`code_version` of the module that defines ``fn``: the package version plus a digest of the files of that
module's code closure (:mod:`repalign.core.closure`: the repalign modules it imports, transitively, and the data
files they read), so a change to code the result depends on recomputes it instead of loading numbers the current
code would not produce, and a change anywhere else (a docstring of the command line) keeps it. A function defined
outside :mod:`repalign` (a notebook, a script, ``__main__``) is keyed by the whole package. The key does **not**
see ``fn`` otherwise (neither its name nor its code, closure or bound arguments): ``name`` says which computation
it is, and everything else that changes the result (code outside :mod:`repalign`, callables and data a closure
captures) must go into ``params``, ``data_id`` or ``version``.

Layout: ``<cache_dir>/<name>/<key>.npz`` holds the value, ``<key>.json`` its manifest (the key's inputs, size and
sha256 of the value file, provenance). Both are written atomically (temporary file, fsync, rename), the manifest
last, so a value without a manifest is an interrupted write. An entry that is incomplete, does not match its
checksum or fails to load is reported with a :class:`CacheWarning`, deleted and recomputed; it is never returned.

Several processes may share a cache (the points of a sweep, ``make -j``). An entry is written and deleted under an
exclusive lock of its folder (``<cache_dir>/<name>/.lock``, ``flock``) and read under a shared one, so that no
reader ever sees an entry another process is writing: a reader that finds an entry incomplete looks again under the
exclusive lock before it calls the entry damaged. (Without ``fcntl``, on Windows, there is no lock.)

A cache folder that cannot be written (read-only, a file in the way) is found before the first computation: one
:class:`CacheWarning`, then results are computed and returned but not stored; entries already there are still read.
Inside a Jupyter kernel every :class:`CacheWarning` is also written to the kernel process's own stderr, the console
of ``repalign run`` (a sweep point's ``kernel.log``), besides the notebook's output.

Values: nested dicts (string keys), lists and tuples of NumPy arrays, NumPy / Python scalars, strings and ``None``.
Arrays go into the ``.npz`` (no pickles), the structure into a JSON entry of the same file.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import json
import math
import os
import re
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

try:  # POSIX: entries are locked while written; elsewhere there is no lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

import numpy as np

from repalign.core import closure
from repalign.core.files import atomic_write_bytes, atomic_write_text, sha256_file
from repalign.core.numerics import in_effect
from repalign.core.provenance import provenance
from repalign.core.version import __version__

__all__ = [
    "CacheWarning",
    "default_cache_dir",
    "code_version",
    "cache_key",
    "is_cached",
    "writable",
    "load_or_compute",
]

_STRUCTURE_KEY = "__structure__"
_LOCK = ".lock"


class CacheWarning(UserWarning):
    """A cached result was unusable (corrupt, truncated, unreadable) and is being recomputed, or the cache cannot
    be written and results are not stored."""


def _warn(message: str) -> None:
    """A :class:`CacheWarning`, also on the console when this process is a Jupyter kernel (where ``sys.stderr`` is
    the notebook's output and ``sys.__stderr__`` the process's own stderr)."""
    warnings.warn(message, CacheWarning, stacklevel=4)
    console = sys.__stderr__
    if console is not None and sys.stderr is not console and "ipykernel" in sys.modules:
        with contextlib.suppress(OSError, ValueError):
            console.write(f"warning (CacheWarning): {message}\n")
            console.flush()


def default_cache_dir() -> Path:
    """``$REPALIGN_CACHE`` when set, else ``./.cache/repalign`` (relative to the working directory)."""
    env = os.environ.get("REPALIGN_CACHE")
    return Path(env) if env else Path(".cache") / "repalign"


# ----------------------------------------------------------------------------------------------------------
# Keys
# ----------------------------------------------------------------------------------------------------------


def code_version(module: str | Iterable[str] | None = None) -> str:
    """The ``version`` of cache keys: ``"<repalign.__version__>+src.<digest>"``.

    ``<digest>`` is the first 12 hex digits of :func:`repalign.core.closure.digest` over the files of the closure
    of ``module`` (a dotted name, or several: the closure of them all), i.e. the sources of the repalign modules
    it imports, transitively, and the data files they declare; with ``module=None``, over every file of the
    package folder (modules and ``resources/``). A change to any of those files (a bug fix in training, a new
    default, other embedded data) changes the version; a change to a module outside the closure does not.
    Computed once per process and argument.

    Raises:
        ModuleNotFoundError: when ``module`` names no module of the package.
    """
    if module is None:
        return _code_version(None)
    return _code_version((module,) if isinstance(module, str) else tuple(sorted(set(module))))


@functools.cache
def _code_version(modules: tuple[str, ...] | None) -> str:
    files = closure.package_files() if modules is None else closure.closure_files(modules)
    return f"{__version__}+src.{closure.digest(files)[:12]}"


def _defining_module(fn: Callable[..., Any]) -> str | None:
    """The repalign module that defines ``fn`` (through ``functools.partial``), None when it is not one."""
    while isinstance(fn, functools.partial):
        fn = fn.func
    module = getattr(fn, "__module__", None)
    if isinstance(module, str) and module.split(".")[0] == closure.PACKAGE and closure.module_file(module):
        return module
    return None


def _canonical(obj: Any, where: str) -> Any:
    """A JSON-able image of ``obj`` for the key: arrays by content hash, non-finite floats by name."""
    if obj is None or isinstance(obj, (bool, str, int)):
        return obj
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else {"__float__": repr(obj)}
    if isinstance(obj, np.generic):
        return _canonical(obj.item(), where)
    if isinstance(obj, np.ndarray) and not obj.dtype.hasobject:
        data = np.ascontiguousarray(obj).tobytes()
        return {"__array__": hashlib.sha256(data).hexdigest(), "dtype": obj.dtype.str, "shape": list(obj.shape)}
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, (str, int)):
                raise TypeError(f"{where}: dictionary keys must be strings or integers, got {type(k).__name__}")
            out[str(k)] = _canonical(v, f"{where}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple)):
        return [_canonical(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    raise TypeError(
        f"{where} is a {type(obj).__name__}, which cannot go into a cache key: pass plain values "
        "(numbers, strings, lists, dicts, arrays) in params and identify data with data_id"
    )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)


def _payload(
    name: str, params: Mapping[str, Any] | None, data_id: Any, version: str | None, module: str | None = None
) -> dict[str, Any]:
    """What the key hashes: ``name``, canonical ``params`` and ``data_id``, the code ``version`` (default
    :func:`code_version` of ``module``), and the numerical settings this process runs with
    (:func:`repalign.core.numerics.in_effect`: a result computed without the pinned settings, in Jupyter say, is
    never served to a run that has them)."""
    params = {} if params is None else params
    if not isinstance(params, Mapping):
        raise TypeError(f"params must be a mapping of keyword arguments for fn, got {type(params).__name__}")
    return {
        "name": str(name),
        "params": _canonical(params, "params"),
        "data_id": _canonical(data_id, "data_id"),
        "version": code_version(module) if version is None else str(version),
        "numerics": in_effect()["variables"],
    }


def _key(payload: dict[str, Any]) -> str:
    return hashlib.sha256(_dumps(payload).encode("utf-8")).hexdigest()[:32]


def cache_key(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    data_id: Any = None,
    version: str | None = None,
    module: str | None = None,
) -> str:
    r"""The key (32 hex digits) under which :func:`load_or_compute` stores a result; see the module docstring.

    .. math::  \mathrm{sha256}(\mathrm{JSON}(\text{name}, \text{params}, \text{data\_id}, \text{version}))[:32]

    ``version`` defaults to :func:`code_version` of ``module``: pass the module that defines the computation
    (``fn.__module__``) to get the key :func:`load_or_compute` uses for it; None means the whole package.
    """
    return _key(_payload(name, params, data_id, version, module))


def _paths(name: str, key: str, cache_dir: str | os.PathLike[str] | None) -> tuple[Path, Path]:
    """(manifest, value file) of an entry: ``<cache_dir>/<name>/<key>.json`` and ``.npz``."""
    folder = re.sub(r"[^A-Za-z0-9_.=-]+", "_", str(name)).strip("._")
    if not folder:
        raise ValueError(f"cache name {name!r} has no usable characters: use letters, digits, '_', '-' or '.'")
    directory = (Path(cache_dir) if cache_dir is not None else default_cache_dir()) / folder
    return directory / f"{key}.json", directory / f"{key}.npz"


# ----------------------------------------------------------------------------------------------------------
# Values: a tree of arrays and scalars in one .npz
# ----------------------------------------------------------------------------------------------------------


def _encode(value: Any, arrays: dict[str, np.ndarray], where: str) -> Any:
    """Structure JSON for a tree of arrays and scalars; arrays are moved into ``arrays``."""
    if value is None or isinstance(value, (bool, str)):
        return {"t": "json", "v": value}
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            return {"t": "float", "v": repr(value)}
        return {"t": "json", "v": value}
    if isinstance(value, (np.generic, np.ndarray)) and not value.dtype.hasobject:
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(value)
        return {"t": "scalar" if isinstance(value, np.generic) else "array", "k": key}
    if type(value) is dict:
        if not all(isinstance(k, str) for k in value):
            raise TypeError(f"{where} has keys that are not strings: the cache stores dicts with string keys")
        return {"t": "dict", "items": [[k, _encode(v, arrays, f"{where}[{k!r}]")] for k, v in value.items()]}
    if type(value) in (list, tuple):
        items = [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(value)]
        return {"t": type(value).__name__, "items": items}
    raise TypeError(
        f"{where} is a {type(value).__name__}, which the cache cannot store: return NumPy arrays, scalars, "
        "strings, None, and dicts (string keys), lists and tuples of them (e.g. tensor.cpu().numpy())"
    )


def _decode(node: Any, arrays: Mapping[str, np.ndarray]) -> Any:
    t = node["t"]
    if t == "json":
        return node["v"]
    if t == "float":
        return float(node["v"])
    if t == "scalar":
        return arrays[node["k"]][()]
    if t == "array":
        return arrays[node["k"]]
    if t == "dict":
        return {k: _decode(v, arrays) for k, v in node["items"]}
    if t in ("list", "tuple"):
        items = [_decode(v, arrays) for v in node["items"]]
        return items if t == "list" else tuple(items)
    raise ValueError(f"unknown node type {t!r} in cached structure")


def _to_npz(value: Any) -> bytes:
    arrays: dict[str, np.ndarray] = {}
    structure = _encode(value, arrays, "the result")
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{_STRUCTURE_KEY: np.array(_dumps(structure))})
    return buf.getvalue()


def _from_npz(path: Path) -> Any:
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    return _decode(json.loads(str(arrays.pop(_STRUCTURE_KEY)[()])), arrays)


# ----------------------------------------------------------------------------------------------------------
# load_or_compute
# ----------------------------------------------------------------------------------------------------------


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


@contextlib.contextmanager
def _locked(folder: Path, *, exclusive: bool) -> Iterator[None]:
    """Hold ``folder/.lock``: shared while an entry is read, exclusive while one is written or deleted. Without the
    lock file and no way to create it (a read-only cache, where nobody writes) or without ``fcntl``: no lock."""
    fd = None
    if fcntl is not None:
        for flags in (os.O_RDWR | os.O_CREAT, os.O_RDONLY):
            with contextlib.suppress(OSError):
                fd = os.open(folder / _LOCK, flags, 0o666)
                break
    try:
        if fd is not None:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
            except OSError:  # a file system without locks (or NFS's, on a file opened read-only): go on without
                pass
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the lock


def _read(manifest_path: Path, value_path: Path, payload: dict[str, Any]) -> tuple[str | None, Any]:
    """(None, value) for a valid entry; ("", None) when there is none; (what is wrong, None) for a damaged one."""
    if not manifest_path.exists():
        if value_path.exists():
            return f"cache entry {value_path} has no manifest (interrupted write): recomputing", None
        return "", None
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        if manifest.get("payload") != json.loads(_dumps(payload)):
            problem = "its manifest was written for different parameters"
        elif not value_path.exists():
            problem = "its value file is missing"
        elif value_path.stat().st_size != manifest["size"] or sha256_file(value_path) != manifest["sha256"]:
            problem = "its checksum does not match the manifest (corrupt or truncated file)"
        else:
            return None, _from_npz(value_path)
    except Exception as err:  # anything a damaged file can raise: never return its contents
        problem = f"it could not be read ({type(err).__name__}: {err})"
    return f"cache entry {manifest_path} is unusable: {problem}; deleting and recomputing", None


def _load(manifest_path: Path, value_path: Path, payload: dict[str, Any]) -> tuple[bool, Any]:
    """(True, value) for a valid entry; (False, None) when absent or unusable (deleted, with a warning).

    An entry that looks damaged is read again under the exclusive lock before it is called damaged: whatever was
    being written when it was first read is complete by then.
    """
    with _locked(manifest_path.parent, exclusive=False):
        problem, value = _read(manifest_path, value_path, payload)
    if problem is None or problem == "":
        return problem is None, value
    with _locked(manifest_path.parent, exclusive=True):
        problem, value = _read(manifest_path, value_path, payload)
        if problem is None or problem == "":
            return problem is None, value
        _warn(problem)
        with contextlib.suppress(OSError):  # a read-only cache keeps it
            _remove(manifest_path, value_path)
    return False, None


_UNWRITABLE: dict[str, str | None] = {}


def writable(cache_dir: str | os.PathLike[str] | None = None) -> bool:
    """Whether results can be stored under ``cache_dir`` (default :func:`default_cache_dir`), found by creating a
    file there once per process; when they cannot, one :class:`CacheWarning` says so and how to fix it."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    where = os.path.abspath(root)
    if where not in _UNWRITABLE:
        try:
            root.mkdir(parents=True, exist_ok=True)
            fd, probe = tempfile.mkstemp(prefix=".write-check-", dir=root)
            os.close(fd)
            os.unlink(probe)
            _UNWRITABLE[where] = None
        except OSError as err:
            _UNWRITABLE[where] = err.strerror or type(err).__name__
            _warn(
                f"cache folder {root} is not writable ({_UNWRITABLE[where]}): results are computed but not stored; "
                "set REPALIGN_CACHE (or cache_dir) to a folder you can write to"
            )
    return _UNWRITABLE[where] is None


def _store(manifest_path: Path, value_path: Path, payload: dict[str, Any], data: bytes) -> None:
    """Write an entry, the value first and the manifest last, under the folder's exclusive lock."""
    manifest = {
        "key": manifest_path.stem,
        "payload": payload,
        "file": value_path.name,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        "provenance": provenance(),
    }
    try:
        manifest_path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(manifest_path.parent, exclusive=True):
            _remove(manifest_path)  # an old manifest must never describe the new value file
            atomic_write_bytes(value_path, data)
            atomic_write_text(manifest_path, json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    except OSError as err:
        _warn(f"cache entry {manifest_path} could not be written ({err.strerror or err}): the result is not stored")


def is_cached(
    name: str,
    params: Mapping[str, Any] | None = None,
    *,
    data_id: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    version: str | None = None,
    module: str | None = None,
) -> bool:
    """Whether an entry (manifest and value file) exists for this key (see :func:`cache_key` for ``module``); its
    checksum is verified only on load."""
    key = cache_key(name, params, data_id=data_id, version=version, module=module)
    manifest, value = _paths(name, key, cache_dir)
    return manifest.exists() and value.exists()


def load_or_compute(
    name: str,
    fn: Callable[..., Any],
    params: Mapping[str, Any] | None = None,
    *,
    data_id: Any = None,
    cache_dir: str | os.PathLike[str] | None = None,
    force: bool = False,
    version: str | None = None,
) -> Any:
    r"""Return ``fn(**params)``, computed once and loaded from the cache afterwards.

    The entry is keyed by :func:`cache_key` of (``name``, ``params``, ``data_id``, ``version``), never by ``fn``:

    .. math::  \mathrm{key} = \mathrm{sha256}(\mathrm{JSON}(\text{name}, \text{params}, \text{data\_id},
               \text{version}))[:32]

    Args:
        name: which computation this is (a figure, a sweep); also the sub-folder of ``cache_dir``. Two
            computations under one name must differ in ``params`` or ``data_id``.
        fn: the computation, called as ``fn(**params)``; bind large inputs (data, models) with a closure and
            identify them through ``data_id``.
        params: keyword arguments of ``fn``: numbers, strings, lists, dicts, arrays (hashed by content).
        data_id: anything of the same kinds that identifies the data ``fn`` sees, e.g.
            ``{"dataset": "cifar10", "split": "train", "n": 1000, "seed": 0}`` or a content hash.
        cache_dir: root folder; default ``$REPALIGN_CACHE`` or ``./.cache/repalign``.
        force: recompute and overwrite even when a valid entry exists (the old entry is replaced under the lock).
        version: the code version in the key; default :func:`code_version` of the module that defines ``fn``
            (the package version plus a digest of that module's code closure, so a change to code the result
            depends on recomputes); the whole package when ``fn`` is defined outside :mod:`repalign`.

    Returns:
        The value ``fn`` returned, or the cached copy: arrays come back as NumPy arrays, tuples as tuples,
        scalars as the same Python / NumPy scalar types.

    Raises:
        TypeError: if ``params`` or ``data_id`` holds something that cannot be hashed into a key, or the result
            is not a tree of arrays and scalars (raised after ``fn`` ran; nothing is stored).
    """
    payload = _payload(name, params, data_id, version, _defining_module(fn) if version is None else None)
    manifest_path, value_path = _paths(name, _key(payload), cache_dir)
    if not force:
        found, value = _load(manifest_path, value_path, payload)
        if found:
            return value
    store = writable(cache_dir)  # before the work: an unwritable cache is said once, then the result is not stored
    value = fn(**({} if params is None else params))
    data = _to_npz(value)
    if store:
        _store(manifest_path, value_path, payload, data)
    return value
