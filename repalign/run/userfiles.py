"""A user's own feature and target files for ``repalign measure``: .npy, .npz, .pt and .csv, read without running code."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from repalign.measure.targets import binary_targets, one_vs_rest_targets

__all__ = [
    "load_features",
    "load_targets",
]


# ------------------------------------------------------------------------------------------------ input files
def _csv_table(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """A numeric CSV as (header or None, (n, c) float64); a first row that is not numeric is the header."""
    import csv

    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows:
        raise ValueError(f"{path}: empty CSV")
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    try:
        table = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: every value after the header must be a number ({err})") from None
    if table.ndim != 2 or table.shape[0] == 0:
        raise ValueError(f"{path}: rows of different lengths or no data rows")
    return header, table


def _load_pt(path: Path) -> dict[str, np.ndarray]:
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping):
        return {str(k): np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in obj.items()}
    return {path.stem: np.asarray(obj.detach().cpu().numpy() if hasattr(obj, "detach") else obj)}


def load_features(
    path: str | os.PathLike[str], *, target_column: str | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Layers of features from a file, and the targets when ``target_column`` names a CSV column.

    ``.npy``: one layer named after the file; ``.npz`` / ``.pt`` holding a dict: one layer per array; ``.pt``
    holding a tensor: one layer; ``.csv``: the numeric columns (a non-numeric first row is the header).
    Arrays with more than two axes are flattened per example.

    Shape: returns ``{layer: (n, d)}`` and ``(n,)`` targets or None.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    targets = None
    if suffix == ".npy":
        layers = {path.stem: np.load(path, allow_pickle=False)}
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            layers = {k: z[k] for k in z.files}
    elif suffix in (".pt", ".pth"):
        layers = _load_pt(path)
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
    out = {}
    for name, arr in layers.items():
        arr = np.asarray(arr)
        if arr.ndim == 1:
            raise ValueError(f"{path}: {name!r} is 1-D (shape {arr.shape}); features must be (n, d)")
        out[name] = arr.reshape(arr.shape[0], -1)
    if not out:
        raise ValueError(f"{path}: holds no arrays")
    return out, targets


def load_targets(path: str | os.PathLike[str], column: str | None = None) -> np.ndarray:
    """Targets from ``.npy``/``.npz`` (its only array, or ``column``)/``.pt``/``.csv``/``.txt``. Shape: (n,) or (n, k)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix in (".npz", ".pt", ".pth"):
        arrays = _load_pt(path) if suffix != ".npz" else dict(np.load(path, allow_pickle=False))
        if column is None and len(arrays) != 1:
            raise ValueError(f"{path} holds {sorted(arrays)}: name one with --target-column")
        return np.asarray(arrays[column] if column is not None else next(iter(arrays.values())))
    header, table = _csv_table(path)
    if column is not None:
        if not header or column not in header:
            raise ValueError(f"{path}: no column {column!r}; columns: {header}")
        return table[:, header.index(column)]
    return table[:, 0] if table.shape[1] == 1 else table


def prepare_targets(y: np.ndarray, task: str = "auto") -> tuple[np.ndarray, str]:
    """Targets for the measure and a note saying what was done.

    ``classification`` (or ``auto`` with integer values and at most 100 distinct ones in one column): class labels
    become ±1 (two classes, :func:`repalign.binary_targets`) or a one-vs-rest ±1 matrix (K classes);
    ``regression`` (or ``auto`` otherwise): the values as given (the measure centres them).
    """

    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"targets must be numbers, got dtype {y.dtype}")
    values = np.unique(y) if y.ndim == 1 else np.array([])
    integral = y.ndim == 1 and bool(np.all(np.isfinite(y))) and bool(np.all(np.asarray(y) == np.round(y)))
    if task == "auto":
        task = "classification" if integral and len(values) <= 100 else "regression"
    if task == "regression":
        return y.astype(np.float64), f"regression targets as given, shape {y.shape}"
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
