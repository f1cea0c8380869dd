"""The downloadable UCI source: CT Position, "Relative location of CT slices on axial axis" (Graf et al. 2011).

53,500 CT slices of 97 patients, 384 features each (histograms of bone and air structures) and the slice's
relative position along the body axis (0-100) as the target; CC BY 4.0. ``python -m repalign.data fetch
ct_position`` downloads :data:`CT_URL` (a zip) and keeps its CSV. No checksum is published for it, so its header
(``patientId, value0 ... value383, reference``) and its 53,500 rows are checked before it lands (atomically).

On disk, under the data root::

    ct_position/slice_localization_data.csv   the UCI file (386 columns)
    ct_position/slice_localization_data.npz   a cache of the parsed CSV, rebuilt when the CSV changes

No official split: ``split="train"`` or ``"all"`` gives every slice; split by patient
(``meta["patient_id"]``) or with :func:`repalign.data.train_test_split`.
"""

from __future__ import annotations

import csv
import io
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.files import atomic_save_npz, atomic_write_bytes
from repalign.data.base import Dataset, _fix_command, _no_official_split, _register, _regression

__all__ = [
    "CT_URL",
]

#: The UCI "Relative location of CT slices on axial axis" archive (contains ``slice_localization_data.csv``).
CT_URL = "https://archive.ics.uci.edu/ml/machine-learning-databases/00206/slice_localization_data.zip"
CT_PAGE = "https://archive.ics.uci.edu/dataset/206/relative+location+of+ct+slices+on+axial+axis"
CT_FILE = "slice_localization_data.csv"
CT_COLUMNS = ["patientId", *[f"value{i}" for i in range(384)], "reference"]
CT_ROWS = 53_500


# --------------------------------------------------------------------------------------------------------------
# Real loader: UCI CT position
# --------------------------------------------------------------------------------------------------------------
def _ct_path(root: Path) -> Path:
    return root / "ct_position" / CT_FILE


def _ct_missing(path: Path) -> FileNotFoundError:
    return FileNotFoundError(
        f"ct_position: {path} not found. Fix: {_fix_command('ct_position')}, or download {CT_URL} "
        f"({CT_PAGE}) and unzip {CT_FILE} into {path.parent}"
    )


def _probe_ct(root: Path, split: str, **options: Any) -> None:
    """The CT file is there with the UCI header (reads one line; the rows are counted when it is downloaded)."""
    path = _ct_path(root)
    if not path.is_file():
        raise _ct_missing(path)
    _check_ct_header(_read_ct_header(path), path)


def _download_bytes(url: str, *, timeout: float = 30.0) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "repalign"})
    with urllib.request.urlopen(req, timeout=timeout) as resp:
        return resp.read()


def _read_ct_header(path: Path) -> list[str]:
    with open(path, newline="") as fh:
        header = next(csv.reader(fh), [])
    return [h.strip() for h in header]


def _check_ct_header(header: list[str], path: Path) -> None:
    if header != CT_COLUMNS:
        shown = header[:3] + (["..."] if len(header) > 4 else []) + header[-1:] if header else []
        raise ValueError(
            f"ct_position: {path} has {len(header)} columns {shown}, but the UCI file has 386 columns "
            f"patientId, value0 ... value383, reference. Replace it: {_fix_command('ct_position')}, "
            f"or download {CT_URL} and unzip {CT_FILE} there"
        )


def _fetch_ct(root: Path) -> Path:
    path = _ct_path(root)
    try:
        blob = _download_bytes(CT_URL)
    except Exception as err:
        raise ConnectionError(
            f"ct_position: download of {CT_URL} failed ({type(err).__name__}: {err}). Without internet, "
            f"download it elsewhere ({CT_PAGE}) and unzip {CT_FILE} into {path.parent}"
        ) from err
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as zf:
            member = next(m for m in zf.namelist() if m.endswith(CT_FILE))
            text = zf.read(member)
    except (zipfile.BadZipFile, StopIteration) as err:
        raise ValueError(f"ct_position: {CT_URL} did not return a zip holding {CT_FILE}") from err
    # No checksum is published for this file: verify its layout and size before it lands.
    header = next(csv.reader(io.StringIO(text[:20_000].decode("utf-8", "replace"))))
    _check_ct_header([h.strip() for h in header], path)
    rows = text.count(b"\n") - 1 + (not text.endswith(b"\n"))
    if rows != CT_ROWS:
        raise ValueError(f"ct_position: downloaded file has {rows} rows, expected {CT_ROWS}; not saved")

    atomic_write_bytes(path, text)
    return path


@_register(
    "ct_position",
    "downloadable",
    "UCI CT Position: 53,500 CT slices of 97 patients, 384 features, the slice's position (0-100), regression",
    path=f"ct_position/{CT_FILE}",
    probe=_probe_ct,
)
def _load_ct(split: str, root: Path, download: bool, cache: bool = True) -> Dataset:
    """UCI Relative location of CT slices: x (53,500, 384) float32, y (n,) float64 in [0, 100].

    ``meta["patient_id"]`` (n,) holds the patient of each slice (97 patients). A ``.npz`` cache of the parsed
    CSV is kept beside it (rebuilt when the CSV's size or modification time changes).
    """
    split = _no_official_split("ct_position", split)
    path = _ct_path(root)
    if not path.is_file():
        if not download:
            raise _ct_missing(path)
        _fetch_ct(root)
    arr = _read_ct_array(path, cache=cache)
    return _regression(
        arr[:, 1:-1],
        arr[:, -1],
        name="ct_position",
        source=CT_URL,
        licence="CC BY 4.0 (UCI)",
        split=split,
        meta={"patient_id": arr[:, 0].astype(np.int64)},
        extra={"path": str(path), "target": "relative location of the slice on the axial axis, 0-100"},
        coverage="full" if len(arr) == CT_ROWS else "subset",
        total=CT_ROWS,
        title="UCI CT Position",
    )


def _read_ct_array(path: Path, *, cache: bool) -> np.ndarray:
    """Parse the CT CSV into an (n, 386) float64 array, via a ``.npz`` cache keyed on size and mtime."""
    st = path.stat()
    key = np.array([st.st_size, st.st_mtime_ns], dtype=np.int64)
    cache_path = path.with_suffix(".npz")
    if cache and cache_path.is_file():
        try:
            with np.load(cache_path) as z:
                if np.array_equal(z["key"], key):
                    return z["data"]
        except (OSError, ValueError, KeyError):
            pass  # unreadable cache: rebuild
    _check_ct_header(_read_ct_header(path), path)
    try:
        arr = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ValueError(f"ct_position: {path} is not a numeric CSV ({err}); re-download it") from None
    if arr.shape[1] != len(CT_COLUMNS) or len(arr) == 0:
        raise ValueError(f"ct_position: {path} has rows of {arr.shape[1]} values, expected {len(CT_COLUMNS)}")
    if cache:
        try:
            atomic_save_npz(cache_path, {"data": arr, "key": key})
        except OSError:
            pass  # read-only data root: no cache
    return arr
