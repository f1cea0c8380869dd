"""A user's own feature and target files for ``repalign measure``: .npy, .npz, .pt and .csv, read without running code.

Every way such a file can be wrong ends in one ``ValueError`` line that names the file, the problem and the fix:
pickled objects (refused, never unpickled: NumPy's ``allow_pickle=False`` and torch's ``weights_only=True``),
truncated or damaged files, text where numbers belong, duplicate CSV columns, rows of different lengths. A form
that is plausible but would be read in a way the user may not mean (a checkpoint's metadata next to its tensors,
integer targets beyond 2^53) gives a :class:`MeasureWarning`. Reading ``.pt`` files needs torch; without it the error
names the extra to install (:func:`repalign.run.cli.main` maps the missing module).
"""

from __future__ import annotations

import csv
import io
import math
import os
import tempfile
import warnings
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from repalign.measure.targets import binary_targets, one_vs_rest_targets

__all__ = [
    "MeasureWarning",
    "MissingExtraError",
    "load_features",
    "load_targets",
    "prepare_targets",
    "check_writable_folder",
]

#: integers above this are not all representable in float64: every float64 above it is an integer
FLOAT64_INTEGERS = 2**53
#: regression targets whose largest |value| lies outside [2^-300, 2^300] are scaled by a power of two (exactly)
_TARGET_RANGE = (2.0**-300, 2.0**300)


class MeasureWarning(UserWarning):
    """A user's files, or the layers compared, in a form that the numbers would mislead about unless told."""


class MissingExtraError(ImportError, ValueError):
    """A module of an optional extra is not installed (a ``ValueError`` too: the command line exits with 2).

    Raised by :func:`repalign.run.params.require`; :func:`repalign.run.cli.main` turns a ``ModuleNotFoundError`` of
    an optional package (torch for a ``.pt`` file or ``--model``) into one, naming the ``pip install`` to run."""


def check_writable_folder(path: str | os.PathLike[str], option: str = "--out") -> Path:
    """Make sure results can be written into the folder ``path`` before any work is done (nothing is left behind:
    a missing folder is not created here, its nearest existing parent is probed instead).

    Raises ``ValueError`` naming ``option`` when ``path`` is a file, lies under a file, or cannot be written to.
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file; give a folder (the results are written into it)")
    probe_dir = path
    while not probe_dir.exists() and probe_dir != probe_dir.parent:
        probe_dir = probe_dir.parent
    try:
        if not probe_dir.is_dir():
            raise NotADirectoryError(20, f"{probe_dir} is a file")
        fd, probe = tempfile.mkstemp(prefix=".repalign-write-check-", dir=probe_dir)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise ValueError(f"cannot write to {option} {path} ({reason}); choose a folder you can write to") from None
    return path


# ------------------------------------------------------------------------------------------------ reading files
def _read_numpy(path: Path) -> tuple[dict[str, Any], bool]:
    """The arrays of a .npy or .npz file (whatever its suffix says) and whether it is a single array."""
    pickled = f"{path}: holds pickled Python objects (an object array), which repalign never unpickles: save numbers"
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.lib.npyio.NpzFile):
            with loaded:
                return {name: loaded[name] for name in loaded.files}, False
        return {path.stem: loaded}, True
    except ValueError as err:
        if "Object arrays cannot be loaded" in str(err):
            raise ValueError(f"{pickled} (np.save(path, np.asarray(x, dtype=np.float32)))") from None
        if "pickled" in str(err):
            raise ValueError(
                f"{path}: not a NumPy .npy/.npz file (NumPy would have to unpickle it, which repalign never does: a "
                "pickle can run code); save the array with np.save or np.savez"
            ) from None
        raise ValueError(_unreadable(path, "NumPy", err)) from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise ValueError(_unreadable(path, "NumPy", err)) from None


def _unreadable(path: Path, kind: str, err: BaseException) -> str:
    """The message for a file of ``kind`` that cannot be read: empty, or the first line of the reader's error."""
    size = path.stat().st_size if path.exists() else 0
    detail = "the file is empty" if size == 0 else (str(err).splitlines() or [type(err).__name__])[0][:160]
    return f"{path}: not a readable {kind} file ({detail}); truncated or damaged? write it again"


def _read_torch(path: Path) -> tuple[dict[str, Any], bool]:
    """The tensors of a .pt/.pth file (a tensor, or a dict of them, nested dicts flattened as ``outer.inner``) and
    whether it is a single tensor; anything else in a dict stays as it is (see :func:`_arrays`)."""
    from repalign.networks.torchfiles import load_torch_file  # lazily: torch only for .pt files (else: no torch)

    obj = load_torch_file(path, what="file", fix="save plain tensors: torch.save(tensor or {name: tensor})")
    if isinstance(obj, Mapping):
        return _flatten(obj), False
    if isinstance(obj, (list, tuple)):
        raise ValueError(f"{path} holds a {type(obj).__name__}; save one tensor, or a dict of named tensors")
    return {path.stem: obj}, True


def _flatten(mapping: Mapping[Any, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mappings as one: ``{"a": {"b": x}}`` -> ``{"a.b": x}``."""
    out: dict[str, Any] = {}
    for key, value in mapping.items():
        name = f"{prefix}{key}"
        out.update(_flatten(value, f"{name}.") if isinstance(value, Mapping) else {name: value})
    return out


def _as_numpy(value: Any) -> np.ndarray | None:
    """A tensor or array as a NumPy array (dense, detached; bfloat16 and other small floats as float32), or None
    for anything else (numbers, strings, lists: a checkpoint's metadata)."""
    if isinstance(value, np.ndarray):
        return value
    if not (type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")):
        return None
    import torch

    t = value.detach()
    if t.layout != torch.strided:  # sparse COO / CSR ...
        t = t.to_dense()
    if t.is_quantized:
        t = t.dequantize()
    if t.is_floating_point() and t.element_size() < 4:  # bfloat16, float16, float8: no (fast) NumPy dtype
        t = t.float()
    return t.cpu().numpy()


def _arrays(path: Path, entries: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays among ``entries``; single numbers and non-arrays (a checkpoint's epoch, its architecture's name)
    are skipped with a :class:`MeasureWarning` naming them."""
    arrays, skipped = {}, []
    for name, value in entries.items():
        arr = _as_numpy(value)
        if arr is None or arr.ndim == 0:
            skipped.append(name)
        else:
            arrays[name] = arr
    if skipped and arrays:
        names = ", ".join(repr(s) for s in skipped)
        warnings.warn(
            f"{path}: skipped {names} (single numbers or not arrays); measuring {', '.join(map(repr, arrays))}",
            MeasureWarning,
            stacklevel=3,
        )
    if not arrays:
        raise ValueError(f"{path}: holds no arrays of numbers" + (f" (only {', '.join(skipped)})" if skipped else ""))
    return arrays


def _read_arrays(path: Path) -> tuple[dict[str, np.ndarray], bool]:
    """The arrays of a NumPy or torch file and whether it is a single array."""
    entries, single = _read_torch(path) if path.suffix.lower() in (".pt", ".pth") else _read_numpy(path)
    return _arrays(path, entries), single


# ------------------------------------------------------------------------------------------------ text tables
def _rows(path: Path) -> Iterable[tuple[int, list[str]]]:
    """(line number, cells) of each non-empty line: commas (.csv), tabs (.tsv), commas or whitespace (.txt)."""
    try:
        text = path.read_text(encoding="utf-8-sig")  # a byte-order mark is not part of the first column's name
    except UnicodeDecodeError as err:
        raise ValueError(
            f"{path}: not a UTF-8 text file ({err.reason} at byte {err.start}); save it as a UTF-8 CSV of numbers"
        ) from None
    suffix = path.suffix.lower()
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if suffix == ".txt" and "," not in first:
        return [(i, ln.split()) for i, ln in enumerate(text.splitlines(), 1) if ln.strip()]
    reader = csv.reader(io.StringIO(text, newline=""), delimiter="\t" if suffix == ".tsv" else ",")
    return [(reader.line_num, row) for row in reader if any(cell.strip() for cell in row)]


def _is_number(cell: str) -> bool:
    """Whether a table cell reads as a number (``nan`` and ``inf`` do: the measure refuses them by name)."""
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _csv_table(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """A numeric text table as (header or None, (n, c) float64); a first row that is not numeric is the header."""
    rows = list(_rows(path))
    if not rows:
        raise ValueError(f"{path}: empty CSV")
    header = None
    if not all(_is_number(cell) for cell in rows[0][1]):
        header, rows = [h.strip() for h in rows[0][1]], rows[1:]
        seen: dict[str, int] = {}
        for j, name in enumerate(header, 1):
            if name in seen:
                raise ValueError(
                    f"{path}: the header names column {name!r} twice (columns {seen[name]} and {j}); rename one so "
                    "that every column has its own name"
                )
            seen[name] = j
    if not rows:
        raise ValueError(f"{path}: no data rows after the header")
    width = len(header) if header is not None else len(rows[0][1])
    names = header or [f"c{j}" for j in range(width)]
    table = np.empty((len(rows), width))
    for i, (line, row) in enumerate(rows):
        if len(row) != width:
            raise ValueError(f"{path}: row {line} has {len(row)} values but the first row has {width}")
        for j, cell in enumerate(row):
            try:
                table[i, j] = float(cell)
            except ValueError:
                raise ValueError(f"{path}: row {line}, column {names[j]!r}: {cell!r} is not a number") from None
    return header, table


# ------------------------------------------------------------------------------------------------ features
def _feature_layer(path: Path, name: str, arr: np.ndarray) -> np.ndarray:
    """One array as (n, d) features, or the error that names the file, the array and the fix."""
    if arr.dtype.kind == "c":
        raise ValueError(f"{path}: {name!r} holds complex numbers; features must be real (take .real or abs())")
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{path}: {name!r} has dtype {arr.dtype}; features must be numbers (bool, int or float)")
    if arr.ndim == 1:
        raise ValueError(
            f"{path}: {name!r} is 1-D (shape {arr.shape}); features must be (n, d): reshape(-1, 1) for one feature, "
            "or, if it holds the targets, save it in a file of its own and pass --targets FILE"
        )
    return arr.reshape(arr.shape[0], math.prod(arr.shape[1:]))


def load_features(
    path: str | os.PathLike[str], *, target_column: str | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Layers of features from a file, and the targets when ``target_column`` names a CSV column.

    ``.npy``: one layer named after the file; ``.npz`` / ``.pt`` holding a dict: one layer per array (a nested
    dict's arrays as ``outer.inner``; single numbers and strings skipped with a warning); ``.pt`` holding a tensor:
    one layer; ``.csv`` / ``.tsv`` / ``.txt``: the numeric columns (a non-numeric first row is the header; .txt may
    be separated by whitespace). Arrays with more than two axes are flattened per example.

    Shape: returns ``{layer: (n, d)}`` and ``(n,)`` targets or None.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    targets = None
    if suffix in (".npy", ".npz", ".pt", ".pth"):
        layers, _ = _read_arrays(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        header, table = _csv_table(path)
        names = header or [f"c{i}" for i in range(table.shape[1])]
        if target_column is not None:
            if target_column not in names:
                raise ValueError(f"{path}: no column {target_column!r}; columns: {', '.join(names)}")
            j = names.index(target_column)
            targets, table = table[:, j], np.delete(table, j, axis=1)
        layers = {path.stem: table}
    else:
        raise ValueError(f"{path}: unknown feature file type {suffix!r}; use .npy, .npz, .pt or .csv")
    if target_column is not None and targets is None:
        raise ValueError("--target-column applies to a CSV of features; give --targets FILE for other formats")
    return {name: _feature_layer(path, name, np.asarray(arr)) for name, arr in layers.items()}, targets


# ------------------------------------------------------------------------------------------------ targets
def load_targets(path: str | os.PathLike[str], column: str | None = None) -> np.ndarray:
    """Targets from ``.npy``/``.npz`` (its only array, or ``column``)/``.pt``/``.csv``/``.txt``. Shape: (n,) or (n, k)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() in (".npy", ".npz", ".pt", ".pth"):
        arrays, single = _read_arrays(path)
        if column is not None and single:
            raise ValueError(f"{path} holds one array: drop --target-column (it names a column of a CSV or an "
                             ".npz/.pt array)")  # fmt: skip
        if column is not None and column not in arrays:
            raise ValueError(f"{path}: no array {column!r}; it holds {', '.join(arrays)}")
        if column is None and len(arrays) != 1:
            raise ValueError(f"{path} holds {sorted(arrays)}: name one with --target-column")
        return np.asarray(arrays[column] if column is not None else next(iter(arrays.values())))
    header, table = _csv_table(path)
    if column is not None:
        if not header or column not in header:
            raise ValueError(f"{path}: no column {column!r}; columns: {header}")
        return table[:, header.index(column)]
    return table[:, 0] if table.shape[1] == 1 else table


def _regression(y: np.ndarray) -> tuple[np.ndarray, str]:
    """Regression targets as float64; values far from 1 (beyond 2^±300) scaled by a power of two, exactly."""
    y = y.astype(np.float64)
    note = f"regression targets as given, shape {y.shape}"
    finite = y[np.isfinite(y)]
    peak = float(np.max(np.abs(finite))) if finite.size else 0.0
    if peak and not _TARGET_RANGE[0] <= peak <= _TARGET_RANGE[1]:
        exponent = int(np.frexp(peak)[1])
        y = np.ldexp(y, -exponent)
        note += f", scaled by 2^{-exponent} (largest |value| {peak:.3g}; exact: AUC, tau_q and the curve do not change)"
    return y, note


def prepare_targets(y: np.ndarray, task: str = "auto") -> tuple[np.ndarray, str]:
    """Targets for the measure and a note saying what was done.

    ``classification`` (or ``auto`` with integer values and at most 100 distinct ones in one column, all within
    ±2^53): class labels become ±1 (two classes, :func:`repalign.binary_targets`) or a one-vs-rest ±1 matrix (K
    classes); ``regression`` (or ``auto`` otherwise): the values as given (the measure centres them; values beyond
    2^±300 are first scaled by a power of two, exactly). ``auto`` warns when integers beyond 2^53 make it choose
    regression, since they might be class labels.
    """

    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"targets must be numbers, got dtype {y.dtype}")
    values = np.unique(y) if y.ndim == 1 else np.array([])
    integral = y.ndim == 1 and bool(np.all(np.isfinite(y))) and bool(np.all(np.asarray(y) == np.round(y)))
    if task == "auto":
        task = "classification" if integral and len(values) <= 100 else "regression"
        peak = float(np.max(np.abs(values.astype(np.float64)))) if task == "classification" else 0.0
        if peak > FLOAT64_INTEGERS:
            task = "regression"
            warnings.warn(
                f"the targets are {len(values)} distinct integers above 2^53 (largest |value| {peak:.3g}), where "
                "every float64 is an integer: measured as regression "
                "values; pass --task classification if they are class labels",
                MeasureWarning,
                stacklevel=2,
            )
    if task == "regression":
        return _regression(y)
    if task != "classification":
        raise ValueError(f"task must be auto, classification or regression, got {task!r}")
    if y.ndim != 1 or not integral:
        raise ValueError("classification targets must be one column of integer class labels")
    if len(values) < 2:
        raise ValueError(f"the targets hold one class only ({values.tolist()}); alignment needs two or more")
    if len(values) == 2:
        labels = (y == values[1]).astype(np.int64)
        return binary_targets(labels), f"2 classes {values.tolist()} -> ±1 (binary_targets)"
    return one_vs_rest_targets(y), f"{len(values)} classes -> one-vs-rest ±1 matrix"
