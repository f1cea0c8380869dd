"""Hostile input (issue #20): every file, option and array a user can hand repalign gives a clear one-line error
naming the problem and the fix (exit code 2 on the command line), a loud warning for a plausible-but-wrong form,
or the correct result; never a raw traceback, never a silently wrong number, never code run from a file.

Covered: ``repalign measure`` in-process through :func:`repalign.run.cli.main` (feature and target files of every
accepted format: pickled, truncated, garbage, wrong dtype, object arrays, NaN/inf, mismatched lengths, empty, huge
and tiny values; the options; models and weight files) and in subprocesses (torch hidden: the core-install message);
the measure's public functions, the targets and the scores (a table of cases, and hypothesis drawing shapes, scales
and dtypes); images; pre-training checkpoints (truncated, garbage, foreign, planted pickles, swapped classes on
resume, orphan temporaries, a killed torchrun agent). Each case states the error class and message it expects, or
the property of the result.

The cases that train or start cooperating processes are ``slow`` (the torchrun one also ``distributed``).
"""

from __future__ import annotations

import builtins
import json
import math
import os
import pickle
import re
import signal
import subprocess
import sys
import time
import warnings
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import repalign as ra
from repalign.measure import scores
from repalign.measure import targets as target_makers
from repalign.run import cli

torch = pytest.importorskip("torch")

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}

RNG = np.random.default_rng(20)
N = 120
X = RNG.normal(size=(N, 6))
LABELS = (X[:, 0] + 0.5 * RNG.normal(size=N) > 0).astype(np.int64)
VALUES = X[:, 1] + 0.3 * RNG.normal(size=N)


class Planted:
    """A pickle that, if it were ever unpickled, would create the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        return builtins.open, (self.marker, "w")


# ------------------------------------------------------------------------------------------------ file writers
def _npy(tmp: Path, name: str, arr: Any, **kw: Any) -> str:
    np.save(tmp / name, arr, **kw)
    return str(tmp / name)


def _bytes(tmp: Path, name: str, data: bytes) -> str:
    (tmp / name).write_bytes(data)
    return str(tmp / name)


def _text(tmp: Path, name: str, text: str) -> str:
    (tmp / name).write_text(text, encoding="utf-8")
    return str(tmp / name)


def _pt(tmp: Path, name: str, obj: Any) -> str:
    torch.save(obj, tmp / name)
    return str(tmp / name)


def _npz(tmp: Path, name: str, **arrays: Any) -> str:
    np.savez(tmp / name, **arrays)
    return str(tmp / name)


def _half(path: str) -> bytes:
    data = Path(path).read_bytes()
    return data[: len(data) // 2]


def _csv(rows: list[list[Any]], header: str | None = None, sep: str = ",") -> str:
    lines = [header] if header is not None else []
    return "\n".join(lines + [sep.join(str(v) for v in r) for r in rows]) + "\n"


def _labels_file(tmp: Path) -> str:
    return _npy(tmp, "labels.npy", LABELS)


def _feats(tmp: Path, arr: Any = None, name: str = "feats.npy") -> list[str]:
    """argv: a feature file and the labels as targets."""
    return [_npy(tmp, name, X if arr is None else arr), "--targets", _labels_file(tmp)]


def _with_targets(tmp: Path, y: Any, name: str = "y.npy") -> list[str]:
    return [_npy(tmp, "feats.npy", X), "--targets", _npy(tmp, name, y), "--task", "auto"]


# ------------------------------------------------------------------------------------------------ result checks
def _auc(payload: dict, layer: str | None = None) -> float:
    layers = payload["layers"]
    return float(layers[layer or next(iter(layers))]["auc"])


def _auc_equals(x: Any, y: Any, rel: float = 1e-9, layer: str | None = None) -> Callable[[dict], None]:
    def check(payload: dict) -> None:
        assert _auc(payload, layer) == pytest.approx(ra.spectrum(x, y).auc(), rel=rel)

    return check


def _bounded(payload: dict) -> None:
    for result in payload["layers"].values():
        assert 0.0 <= result["auc"] <= 1.0 and all(0.0 <= v <= 1.0 + 1e-12 for v in result["curve"])


# ------------------------------------------------------------------------------------------------ the cases
@dataclass(frozen=True)
class Case:
    """One hostile input: ``make(tmp)`` writes the files and returns the arguments after ``measure``.

    ``expect``: ``"error"`` (exit 2, one line on stderr matching ``match``, nothing written), ``"warn"`` (exit 0 and
    a warning matching ``match``) or ``"ok"`` (exit 0, no warning of repalign's); ``check`` reads alignment.json.
    """

    id: str
    make: Callable[[Path], list[str]]
    expect: str
    match: str = ""
    check: Callable[[dict], None] | None = None
    before_work: bool = False  # an error that must come before anything is measured


def _npz_named_npy(tmp: Path) -> list[str]:
    """An .npz archive saved under a .npy name."""
    os.replace(_npz(tmp, "f.npz", a=X), tmp / "f.npy")
    return [str(tmp / "f.npy"), "--targets", _labels_file(tmp)]


MEASURE_CASES = [
    # ---------------------------------------------------------------- .npy features
    Case(
        "npy-pickled-object-array",
        lambda t: [
            _npy(t, "f.npy", np.array([Planted(t / "ran")] * N, dtype=object), allow_pickle=True),
            "--targets",
            _labels_file(t),
        ],
        "error",
        r"f\.npy.*pickled",
    ),
    Case(
        "npy-plain-pickle",
        lambda t: [_bytes(t, "f.npy", pickle.dumps(X)), "--targets", _labels_file(t)],
        "error",
        r"f\.npy: not a NumPy",
    ),
    Case(
        "npy-truncated",
        lambda t: [_bytes(t, "f.npy", _half(_npy(t, "full.npy", X))), "--targets", _labels_file(t)],
        "error",
        r"f\.npy: not a readable NumPy file",
    ),
    Case(
        "npy-empty-file", lambda t: [_bytes(t, "f.npy", b""), "--targets", _labels_file(t)], "error", r"f\.npy: .*empty"
    ),
    Case(
        "npy-garbage",
        lambda t: [_bytes(t, "f.npy", RNG.bytes(400)), "--targets", _labels_file(t)],
        "error",
        r"f\.npy: not a",
    ),
    Case("npy-strings", lambda t: _feats(t, np.full((N, 2), "a")), "error", r"feats\.npy.*dtype.*numbers"),
    Case("npy-complex", lambda t: _feats(t, X + 1j), "error", r"feats\.npy.*real"),
    Case("npy-datetime", lambda t: _feats(t, np.zeros((N, 2), dtype="datetime64[s]")), "error", r"numbers"),
    Case(
        "npy-nan",
        lambda t: _feats(t, np.where(np.arange(N)[:, None] == 7, np.nan, X)),
        "error",
        r"non-finite.*NaN.*row 7",
    ),
    Case("npy-inf", lambda t: _feats(t, np.where(np.arange(N)[:, None] == 3, np.inf, X)), "error", r"inf.*row 3"),
    Case("npy-one-dimensional", lambda t: _feats(t, X[:, 0]), "error", r"1-D"),
    Case("npy-no-rows", lambda t: _feats(t, np.zeros((0, 6))), "error", r"0 rows|empty"),
    Case("npy-no-columns", lambda t: _feats(t, np.zeros((N, 0))), "error", r"empty|no columns"),
    Case("npy-length-mismatch", lambda t: _feats(t, X[:100]), "error", r"feats.*100 rows.*120"),
    Case(
        "npy-huge-values",
        lambda t: _feats(t, X * 1e300),
        "ok",
        check=lambda p: (_bounded(p), _auc_equals(X * 1e200, ra.binary_targets(LABELS), rel=1e-6)(p)),
    ),
    Case("npy-tiny-values", lambda t: _feats(t, X * 1e-300), "ok", check=_bounded),
    Case(
        "npy-float16",
        lambda t: _feats(t, X.astype(np.float16)),
        "ok",
        check=_auc_equals(X.astype(np.float16).astype(np.float64), ra.binary_targets(LABELS)),
    ),
    Case("npy-bool", lambda t: _feats(t, X > 0), "ok", check=_auc_equals(X > 0, ra.binary_targets(LABELS))),
    Case(
        "npy-images-4d",
        lambda t: _feats(t, X.reshape(N, 1, 2, 3)),
        "ok",
        check=lambda p: p["layers"]["feats"]["d"] == 6 or pytest.fail("not flattened"),
    ),
    Case("npy-holding-an-npz", _npz_named_npy, "ok", check=_auc_equals(X, ra.binary_targets(LABELS), layer="a")),
    # ---------------------------------------------------------------- .npz features
    Case(
        "npz-object-array",
        lambda t: [_npz(t, "f.npz", a=np.array([Planted(t / "ran")] * N, dtype=object)), "--targets", _labels_file(t)],
        "error",
        r"f\.npz.*pickled",
    ),
    Case("npz-no-arrays", lambda t: [_npz(t, "f.npz"), "--targets", _labels_file(t)], "error", r"no arrays"),
    Case(
        "npz-truncated",
        lambda t: [_bytes(t, "f.npz", _half(_npz(t, "full.npz", a=X))), "--targets", _labels_file(t)],
        "error",
        r"f\.npz: not a readable NumPy file",
    ),
    Case(
        "npz-scalar-entry",
        lambda t: [_npz(t, "f.npz", feats=X, epoch=np.array(3)), "--targets", _labels_file(t)],
        "warn",
        r"f\.npz: skipped 'epoch'",
        check=_auc_equals(X, ra.binary_targets(LABELS), layer="feats"),
    ),
    Case(
        "npz-labels-inside",
        lambda t: [_npz(t, "f.npz", feats=X, labels=LABELS), "--targets", _labels_file(t)],
        "error",
        r"'labels' is 1-D.*--targets",
    ),
    Case(
        "npz-layers-of-other-lengths",
        lambda t: [_npz(t, "f.npz", a=X, b=X[:50]), "--targets", _labels_file(t)],
        "error",
        r"'b' has 50 rows.*120",
    ),
    # ---------------------------------------------------------------- .pt features
    Case(
        "pt-planted-pickle",
        lambda t: [_pt(t, "f.pt", {"x": torch.ones(N, 2), "p": Planted(t / "ran")}), "--targets", _labels_file(t)],
        "error",
        r"f\.pt: refused.*pickled",
    ),
    Case(
        "pt-int-entry",
        lambda t: [_pt(t, "f.pt", {"feats": torch.as_tensor(X), "epoch": 3}), "--targets", _labels_file(t)],
        "warn",
        r"skipped 'epoch'",
        check=_auc_equals(X, ra.binary_targets(LABELS), layer="feats"),
    ),
    Case(
        "pt-string-entry",
        lambda t: [_pt(t, "f.pt", {"feats": torch.as_tensor(X), "arch": "resnet18"}), "--targets", _labels_file(t)],
        "warn",
        r"skipped 'arch'",
        check=_auc_equals(X, ra.binary_targets(LABELS), layer="feats"),
    ),
    Case(
        "pt-bfloat16",
        lambda t: [_pt(t, "f.pt", torch.as_tensor(X).bfloat16()), "--targets", _labels_file(t)],
        "ok",
        check=_auc_equals(torch.as_tensor(X).bfloat16().double().numpy(), ra.binary_targets(LABELS)),
    ),
    Case(
        "pt-sparse",
        lambda t: [_pt(t, "f.pt", torch.as_tensor(X).to_sparse()), "--targets", _labels_file(t)],
        "ok",
        check=_auc_equals(X, ra.binary_targets(LABELS)),
    ),
    Case(
        "pt-requires-grad",
        lambda t: [_pt(t, "f.pt", torch.as_tensor(X).requires_grad_()), "--targets", _labels_file(t)],
        "ok",
        check=_auc_equals(X, ra.binary_targets(LABELS)),
    ),
    Case(
        "pt-int-tensor",
        lambda t: [_pt(t, "f.pt", torch.as_tensor((X * 10).astype(np.int64))), "--targets", _labels_file(t)],
        "ok",
        check=_auc_equals((X * 10).astype(np.int64), ra.binary_targets(LABELS)),
    ),
    Case(
        "pt-nested-dict",
        lambda t: [_pt(t, "f.pt", {"layers": {"a": torch.as_tensor(X)}}), "--targets", _labels_file(t)],
        "ok",
        check=_auc_equals(X, ra.binary_targets(LABELS), layer="layers.a"),
    ),
    Case(
        "pt-truncated",
        lambda t: [_bytes(t, "f.pt", _half(_pt(t, "full.pt", torch.as_tensor(X)))), "--targets", _labels_file(t)],
        "error",
        r"f\.pt: not a readable torch file",
    ),
    Case(
        "pt-garbage",
        lambda t: [_bytes(t, "f.pt", RNG.bytes(500)), "--targets", _labels_file(t)],
        "error",
        r"f\.pt: not a readable torch file",
    ),
    Case(
        "pt-empty-file",
        lambda t: [_bytes(t, "f.pt", b""), "--targets", _labels_file(t)],
        "error",
        r"f\.pt: not a readable torch file.*empty",
    ),
    Case(
        "pt-list",
        lambda t: [_pt(t, "f.pt", [torch.as_tensor(X), torch.as_tensor(X)]), "--targets", _labels_file(t)],
        "error",
        r"f\.pt holds a list",
    ),
    Case(
        "pt-metadata-only",
        lambda t: [_pt(t, "f.pt", {"epoch": 3, "arch": "x"}), "--targets", _labels_file(t)],
        "error",
        r"f\.pt.*no arrays",
    ),
    Case(
        "pt-complex",
        lambda t: [_pt(t, "f.pt", torch.as_tensor(X + 1j)), "--targets", _labels_file(t)],
        "error",
        r"real",
    ),
    # ---------------------------------------------------------------- .csv / .tsv / .txt features
    Case(
        "csv-duplicate-target-header",
        lambda t: [
            _text(t, "d.csv", _csv([[a, b, 1 - b] for a, b in zip(X[:, 0], LABELS, strict=True)], "a,label,label")),
            "--target-column",
            "label",
        ],
        "error",
        r"d\.csv: .*column 'label' twice",
    ),
    Case(
        "csv-duplicate-feature-header",
        lambda t: [
            _text(t, "d.csv", _csv([[a, a, b] for a, b in zip(X[:, 0], LABELS, strict=True)], "a,a,label")),
            "--target-column",
            "label",
        ],
        "error",
        r"column 'a' twice",
    ),
    Case(
        "csv-ragged",
        lambda t: [_text(t, "d.csv", "a,b,label\n1,2,0\n3,1\n4,5,1\n"), "--target-column", "label"],
        "error",
        r"d\.csv: row 3 has 2 values.*3",
    ),
    Case(
        "csv-text-cell",
        lambda t: [_text(t, "d.csv", "a,b,label\n1,2,0\n3,x,1\n"), "--target-column", "label"],
        "error",
        r"d\.csv: .*number",
    ),
    Case("csv-empty-file", lambda t: [_text(t, "d.csv", ""), "--target-column", "label"], "error", r"d\.csv: empty"),
    Case(
        "csv-header-only",
        lambda t: [_text(t, "d.csv", "a,b,label\n"), "--target-column", "label"],
        "error",
        r"no data rows",
    ),
    Case(
        "csv-nan-cell",
        lambda t: [
            _text(
                t,
                "d.csv",
                _csv(
                    [[a, "nan" if i == 4 else a, b] for i, (a, b) in enumerate(zip(X[:, 0], LABELS, strict=True))],
                    "a,b,label",
                ),
            ),
            "--target-column",
            "label",
        ],
        "error",
        r"NaN.*row 4",
    ),
    Case(
        "csv-binary-garbage",
        lambda t: [_bytes(t, "d.csv", b"\xff\xfe\x00\x81" * 50), "--target-column", "label"],
        "error",
        r"d\.csv: not a UTF-8 text file",
    ),
    Case(
        "csv-byte-order-mark",
        lambda t: [
            _bytes(
                t,
                "d.csv",
                "\ufeff".encode() + _csv([[a, b] for a, b in zip(X[:, 0], LABELS, strict=True)], "a,label").encode(),
            ),
            "--target-column",
            "a",
        ],
        "ok",
    ),
    Case(
        "tsv-tab-separated",
        lambda t: [
            _text(
                t,
                "d.tsv",
                _csv(
                    [[*x, b] for x, b in zip(X.tolist(), LABELS, strict=True)],
                    "\t".join([*"abcdef", "label"]),
                    sep="\t",
                ),
            ),
            "--target-column",
            "label",
        ],
        "ok",
        check=_auc_equals(X, ra.binary_targets(LABELS)),
    ),
    Case(
        "txt-space-separated",
        lambda t: [_text(t, "d.txt", _csv(X.tolist(), sep=" ")), "--targets", _labels_file(t)],
        "ok",
        check=_auc_equals(X, ra.binary_targets(LABELS)),
    ),
    Case(
        "csv-missing-target-column",
        lambda t: [_text(t, "d.csv", "a,b\n1,2\n3,4\n"), "--target-column", "label"],
        "error",
        r"no column 'label'.*a, b",
    ),
    Case(
        "csv-huge-values",
        lambda t: [
            _text(t, "d.csv", _csv([[*(x * 1e300), b] for x, b in zip(X, LABELS, strict=True)], "a,b,c,d,e,f,label")),
            "--target-column",
            "label",
        ],
        "ok",
        check=_bounded,
    ),
    # ---------------------------------------------------------------- target files
    Case(
        "targets-pickled-npy",
        lambda t: [
            _npy(t, "feats.npy", X),
            "--targets",
            _npy(t, "y.npy", np.array([Planted(t / "ran")] * N, dtype=object), allow_pickle=True),
        ],
        "error",
        r"y\.npy.*pickled",
    ),
    Case(
        "targets-npz-two-arrays",
        lambda t: [_npy(t, "feats.npy", X), "--targets", _npz(t, "y.npz", a=LABELS, b=LABELS)],
        "error",
        r"y\.npz holds \['a', 'b'\]: name one with --target-column",
    ),
    Case(
        "targets-npz-wrong-column",
        lambda t: [_npy(t, "feats.npy", X), "--targets", _npz(t, "y.npz", a=LABELS), "--target-column", "nope"],
        "error",
        r"y\.npz.*no array 'nope'.*a",
    ),
    Case(
        "targets-pt-planted-pickle",
        lambda t: [
            _npy(t, "feats.npy", X),
            "--targets",
            _pt(t, "y.pt", {"y": torch.as_tensor(LABELS), "p": Planted(t / "ran")}),
        ],
        "error",
        r"y\.pt: refused.*pickled",
    ),
    Case(
        "targets-pt-with-metadata",
        lambda t: [_npy(t, "feats.npy", X), "--targets", _pt(t, "y.pt", {"y": torch.as_tensor(LABELS), "epoch": 3})],
        "warn",
        r"skipped 'epoch'",
        check=_auc_equals(X, ra.binary_targets(LABELS)),
    ),
    Case(
        "targets-strings",
        lambda t: _with_targets(t, np.array(["cat", "dog"] * (N // 2))),
        "error",
        r"targets must be numbers",
    ),
    Case(
        "targets-nan",
        lambda t: _with_targets(t, np.where(np.arange(N) == 9, np.nan, VALUES)),
        "error",
        r"targets contain .*NaN.*row 9",
    ),
    Case("targets-length-mismatch", lambda t: _with_targets(t, LABELS[:90]), "error", r"120 rows.*90"),
    Case(
        "targets-integers-above-2-53",
        lambda t: _with_targets(t, (RNG.integers(0, 40, N) * 2.0**54)),
        "warn",
        r"above 2\^53.*regression.*--task classification",
    ),
    Case(
        "targets-int64-above-2-53",
        lambda t: _with_targets(t, 2**60 + RNG.integers(0, 40, N) * 2**54),
        "warn",
        r"above 2\^53",
    ),
    Case("targets-tiny", lambda t: _with_targets(t, VALUES * 1e-170), "ok", check=_auc_equals(X, VALUES, rel=1e-9)),
    Case("targets-huge", lambda t: _with_targets(t, VALUES * 1e200), "ok", check=_auc_equals(X, VALUES, rel=1e-9)),
    Case("targets-constant", lambda t: _with_targets(t, np.full(N, 2.5)), "error", r"constant"),
    Case(
        "targets-column-of-an-npy",
        lambda t: [*_with_targets(t, LABELS), "--target-column", "y"],
        "error",
        r"y\.npy holds one array: drop --target-column",
    ),
    Case(
        "targets-three-axes",
        lambda t: _with_targets(t, np.zeros((N, 2, 2)) + VALUES[:, None, None]),
        "error",
        r"\(n,\) or \(n, k\)",
    ),
    Case(
        "targets-150-distinct-integers",
        lambda t: _with_targets(t, np.arange(N) % 150 * 3),
        "ok",
        check=_auc_equals(X, np.arange(N) % 150 * 3.0),
    ),
    Case(
        "targets-fractional-as-classes",
        lambda t: [*_with_targets(t, VALUES), "--task", "classification"],
        "error",
        r"integer class labels",
    ),
    Case(
        "targets-empty-csv",
        lambda t: [_npy(t, "feats.npy", X), "--targets", _text(t, "y.csv", "")],
        "error",
        r"y\.csv: empty",
    ),
    # ---------------------------------------------------------------- options
    Case(
        "out-is-a-file",
        lambda t: [*_feats(t), "--out", _text(t, "taken", "x")],
        "error",
        r"--out .*taken is a file",
        before_work=True,
    ),
    Case(
        "out-under-a-file",
        lambda t: [*_feats(t), "--out", _text(t, "taken", "x") + "/sub"],
        "error",
        r"cannot write to --out .*taken/sub",
        before_work=True,
    ),
    Case(
        "out-unwritable",
        lambda t: [*_feats(t), "--out", "/proc/repalign-out"],
        "error",
        r"cannot write to --out /proc/repalign-out",
        before_work=True,
    ),
    Case("q-zero", lambda t: [*_feats(t), "--q", "0"], "error", r"--q must be in \(0, 1\].*got 0", before_work=True),
    Case("q-nan", lambda t: [*_feats(t), "--q", "nan"], "error", r"--q must be in \(0, 1\].*got nan", before_work=True),
    Case(
        "q-above-one",
        lambda t: [*_feats(t), "--q", "0.9", "1.5"],
        "error",
        r"--q must be in .*got 1\.5",
        before_work=True,
    ),
    Case("no-inputs", lambda t: [], "error", r"give feature files, or --model", before_work=True),
    Case("no-targets", lambda t: [_npy(t, "feats.npy", X)], "error", r"no targets: give --targets", before_work=True),
    Case(
        "features-and-model",
        lambda t: [*_feats(t), "--model", "resnet18", "--dataset", "mnist_embedded"],
        "error",
        r"not both",
        before_work=True,
    ),
    Case("model-without-dataset", lambda t: ["--model", "resnet18"], "error", r"--model needs --dataset"),
    Case(
        "n-negative",
        lambda t: ["--model", "resnet18", "--dataset", "mnist_embedded", "--n", "-5"],
        "error",
        r"--n must be",
        before_work=True,
    ),
    Case(
        "layers-of-very-different-width",
        lambda t: [
            _npy(t, "pca.npy", X[:, :3]),
            _npy(t, "wide.npy", np.tanh(X @ RNG.normal(size=(6, 64)) + RNG.normal(size=(N, 64)))),
            "--targets",
            _labels_file(t),
        ],
        "warn",
        r"differ much in rank.*pca.*wide.*equal width.*tau_q",
    ),
    Case(
        "layers-of-equal-width",
        lambda t: [_npy(t, "a.npy", X), _npy(t, "b.npy", np.tanh(X)), "--targets", _labels_file(t)],
        "ok",
    ),
    Case(
        "two-files-one-stem",
        lambda t: [_npz(t, "f.npz", a=X), _npy(t, "a.npy", X), "--targets", _labels_file(t)],
        "ok",
        check=lambda p: set(p["layers"]) == {"a", "a:a"} or pytest.fail(str(set(p["layers"]))),
    ),
]


def _run_measure(case: Case, tmp: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str, list]:
    argv = ["measure", *case.make(tmp)]
    if "--out" not in argv:
        argv += ["--out", str(tmp / "out")]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        rc = cli.main(argv)
    out, err = capsys.readouterr()
    return rc, out, err, [w for w in seen if issubclass(w.category, UserWarning)]


@pytest.mark.parametrize("case", MEASURE_CASES, ids=[c.id for c in MEASURE_CASES])
def test_measure_on_hostile_input(case: Case, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err, seen = _run_measure(case, tmp_path, capsys)
    assert not (tmp_path / "ran").exists(), "a pickle in a user's file was unpickled"
    if case.expect == "error":
        assert rc == 2, f"exit {rc}, expected 2; stdout:\n{out}"
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), f"not one line:\n{err}"
        assert re.search(case.match, lines[0]), f"{lines[0]!r} does not match {case.match!r}"
        assert not (tmp_path / "out" / "alignment.json").exists()
        if case.before_work:
            assert "AUC" not in out, "the error came after the work"
        return
    assert rc == 0, err
    messages = [str(w.message) for w in seen]
    if case.expect == "warn":
        assert any(re.search(case.match, m) for m in messages), f"no warning matching {case.match!r}: {messages}"
    else:
        assert not messages, messages
    if case.check is not None:
        case.check(json.loads((tmp_path / "out" / "alignment.json").read_text()))


# ------------------------------------------------------------------------------------------------ models, weights
def _model_argv(tmp: Path, *extra: str) -> list[str]:
    common = ["--dataset", "mnist_embedded", "--n", "16", "--image-size", "32", "--device", "cpu"]
    return ["measure", *common, "--batch-size", "16", "--out", str(tmp / "out"), *extra]


WEIGHT_FILES = {
    "planted-pickle": (lambda t: _pt(t, "w.pth", {"fc.weight": Planted(t / "ran")}), r"w\.pth: refused.*pickled"),
    "truncated": (
        lambda t: _bytes(t, "w.pth", _half(_pt(t, "full.pth", {"fc.weight": torch.ones(10, 512)}))),
        r"w\.pth: not a readable torch weights file",
    ),
    "garbage": (lambda t: _bytes(t, "w.pth", RNG.bytes(300)), r"w\.pth: not a readable torch weights file"),
    "empty": (lambda t: _bytes(t, "w.pth", b""), r"w\.pth: not a readable torch weights file"),
}


@pytest.mark.parametrize("model", ["resnet18", "resnet10t"])
@pytest.mark.parametrize("kind", sorted(WEIGHT_FILES))
def test_measure_refuses_a_bad_weights_file(kind: str, model: str, tmp_path: Path, capsys) -> None:
    """``--weights`` of a repalign backbone (resnet18) and of a timm model (resnet10t): refused, one line."""
    make, match = WEIGHT_FILES[kind]
    assert cli.main([*_model_argv(tmp_path, "--model", model, "--weights", make(tmp_path))]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(match, err[0]), err
    assert not (tmp_path / "ran").exists()


def test_measure_names_an_unknown_model(tmp_path: Path, capsys) -> None:
    assert cli.main(_model_argv(tmp_path, "--model", "no_such_model_xyz")) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and re.search(r"--model 'no_such_model_xyz' is neither .*resnet18.* nor a timm model", err[0])


# ------------------------------------------------------------------------------------------------ subprocesses
#: run `repalign` with torch (and what needs it) impossible to import: the core install (numpy, scipy)
HIDE_TORCH = """
import importlib.abc, sys
class NoTorch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('torch', 'torchvision', 'timm'):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, NoTorch())
from repalign.run.cli import main
sys.exit(main(sys.argv[1:]))
"""


def _subprocess(tmp: Path, argv: list[str], code: str = HIDE_TORCH) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code, *argv], cwd=tmp, env=ENV, capture_output=True, text=True)


@pytest.mark.parametrize(
    "argv",
    [
        lambda t: ["measure", _pt(t, "f.pt", torch.as_tensor(X)), "--targets", _labels_file(t)],
        lambda t: ["measure", _npy(t, "f.npy", X), "--targets", _pt(t, "y.pt", torch.as_tensor(LABELS))],
        lambda t: ["measure", "--model", "resnet18", "--dataset", "mnist_embedded"],
    ],
    ids=["pt-features", "pt-targets", "model"],
)
def test_the_core_install_names_the_extra_to_install(argv: Callable, tmp_path: Path) -> None:
    done = _subprocess(tmp_path, argv(tmp_path))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'repalign[models]'" in lines[0] and "torch" in lines[0], done.stderr


def test_a_planted_pickle_in_a_subprocess_is_one_line_and_runs_nothing(tmp_path: Path) -> None:
    argv = ["measure", _pt(tmp_path, "f.pt", {"p": Planted(tmp_path / "ran")}), "--targets", _labels_file(tmp_path)]
    done = _subprocess(tmp_path, argv, "import sys; from repalign.run.cli import main; sys.exit(main(sys.argv[1:]))")
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "ran").exists()


# ------------------------------------------------------------------------------------------------ the library
@dataclass(frozen=True)
class Call:
    """A call of a public function: it raises ``ValueError`` matching ``match``, or its result passes ``check``."""

    id: str
    call: Callable[[], Any]
    match: str = ""
    check: Callable[[Any], bool] | None = None
    not_match: str = ""  # what the error must not say (e.g. "constant" for tiny-but-varying targets)
    kwargs: dict = field(default_factory=dict)


def _acc(*batches: tuple[Any, Any], **kw: Any) -> ra.AlignmentAccumulator:
    acc = ra.AlignmentAccumulator(**kw)
    for x, y in batches:
        acc.update(x, y)
    return acc


def _rolled_back() -> bool:
    """A failed update leaves the accumulator as it was."""
    acc = _acc((X[:60], VALUES[:60]))
    before = acc.state_dict()
    bad = X[60:].copy()
    bad[-1, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        acc.update(bad, VALUES[60:])
    after = acc.state_dict()
    return all(np.array_equal(before[k], after[k]) for k in ("G", "B", "yy")) and acc.n == 60


SPEC = ra.spectrum(X, VALUES)
Y2 = ra.one_vs_rest_targets(LABELS + (X[:, 2] > 0))
_finite_auc = lambda s: 0.0 <= s.auc() <= 1.0 and math.isfinite(s.tau_q(0.9))  # noqa: E731

LIBRARY_CASES = [
    # the measure: features
    Call("spectrum-features-nan", lambda: ra.spectrum(np.where(X > 2.5, np.nan, X), VALUES), r"non-finite.*NaN"),
    Call("spectrum-features-inf", lambda: ra.spectrum(np.where(X > 2.5, -np.inf, X), VALUES), r"non-finite.*inf"),
    Call("spectrum-features-strings", lambda: ra.spectrum(np.full((N, 2), "1"), VALUES), r"numeric"),
    Call("spectrum-features-objects", lambda: ra.spectrum(np.array([[None, 1]] * N), VALUES), r"numeric"),
    Call("spectrum-features-complex", lambda: ra.spectrum(X + 1j, VALUES), r"real-valued"),
    Call("spectrum-features-1d", lambda: ra.spectrum(X[:, 0], VALUES), r"2-D.*reshape\(-1, 1\)"),
    Call("spectrum-features-3d", lambda: ra.spectrum(X.reshape(N, 2, 3), VALUES), r"2-D.*flatten"),
    Call("spectrum-features-empty", lambda: ra.spectrum(np.zeros((0, 3)), []), r"empty"),
    Call("spectrum-length-mismatch", lambda: ra.spectrum(X, VALUES[:-1]), r"different lengths"),
    Call("spectrum-unknown-method", lambda: ra.spectrum(X, VALUES, method="qr"), r"unknown method"),
    Call(
        "spectrum-huge-unnormalised-gram",
        lambda: ra.spectrum(X * 1e160, VALUES, normalize=False, method="gram"),
        r"too large.*rescale",
    ),
    Call(
        "spectrum-huge-unnormalised-kernel",
        lambda: ra.spectrum(X[:4] * 1e160, VALUES[:4], normalize=False, method="kernel"),
        r"too large.*rescale",
    ),
    Call(
        "spectrum-huge-rows-are-rescaled-exactly",
        lambda: ra.spectrum(X * 1e300, VALUES),
        check=lambda s: s.auc() == pytest.approx(ra.spectrum(X * 1e200, VALUES).auc(), rel=1e-9),
    ),
    Call(
        "spectrum-huge-rows-kernel",
        lambda: ra.spectrum(X[:5] * 1e300, VALUES[:5], method="kernel"),
        check=lambda s: s.auc() == pytest.approx(ra.spectrum(X[:5] * 1e200, VALUES[:5], method="svd").auc()),
    ),
    Call(
        "spectrum-tiny-rows-without-bias",
        lambda: ra.spectrum(X * 1e-170, VALUES, bias=False),
        check=lambda s: s.auc() == pytest.approx(ra.spectrum(X, VALUES, bias=False).auc(), rel=1e-9),
    ),
    Call("spectrum-one-huge-row", lambda: ra.spectrum(np.vstack([X[:-1], X[-1:] * 1e307]), VALUES), check=_finite_auc),
    # the measure: targets
    Call("spectrum-targets-nan", lambda: ra.spectrum(X, np.where(VALUES > 1, np.nan, VALUES)), r"targets.*NaN"),
    Call("spectrum-targets-3d", lambda: ra.spectrum(X, np.zeros((N, 2, 2))), r"\(n,\) or \(n, k\)"),
    Call("spectrum-targets-strings", lambda: ra.spectrum(X, np.array(["a"] * N)), r"targets must be numeric"),
    Call(
        "spectrum-targets-tiny",
        lambda: ra.spectrum(X, VALUES * 1e-170),
        r"tiny.*multiply them",
        not_match="targets are constant",
    ),
    Call(
        "spectrum-targets-tiny-uncentred",
        lambda: ra.spectrum(X, VALUES * 1e-170, center=False),
        r"tiny",
        not_match="all zero",
    ),
    Call(
        "spectrum-targets-tiny-kernel",
        lambda: ra.spectrum(X[:5], VALUES[:5] * 1e-170, method="kernel"),
        r"tiny",
        not_match="targets are constant",
    ),
    Call("spectrum-targets-huge", lambda: ra.spectrum(X, VALUES * 1e200), r"too large.*divide them"),
    Call("spectrum-targets-constant", lambda: ra.spectrum(X, np.full(N, 3.0)), r"constant"),
    Call(
        "spectrum-targets-barely-varying",
        lambda: ra.spectrum(X, 2.0**-500 * (1 + (np.arange(N) % 2) * 2.0**-40)),
        r"tiny|vary by too little",
        not_match="targets are constant",
    ),
    Call(
        "spectrum-targets-varying-in-the-last-bit",
        lambda: ra.spectrum(X, 2.0**-460 * (1 + (np.arange(N) % 2) * 2.0**-52)),
        r"vary by too little",
        not_match="targets are constant",
    ),
    Call("curve-thresholds-nan", lambda: ra.alignment_curve(X, VALUES, [0.0, np.nan]), r"finite"),
    # the summaries
    Call("auc-top-nan", lambda: ra.alignment_auc(SPEC, top=math.nan), r"top must be a positive finite number"),
    Call("auc-top-inf", lambda: ra.alignment_auc(SPEC, top=math.inf), r"top must be a positive finite number"),
    Call("auc-top-minus-inf", lambda: ra.alignment_auc(SPEC, top=-math.inf), r"top must be a positive"),
    Call("auc-top-zero", lambda: ra.alignment_auc(SPEC, top=0.0), r"top must be a positive"),
    Call("auc-top-negative", lambda: ra.alignment_auc(SPEC, top=-1.0), r"top must be a positive"),
    Call("auc-top-text", lambda: ra.alignment_auc(SPEC, top="big"), r"top must be a positive finite number"),
    Call("spectrum-auc-top-nan", lambda: SPEC.auc(top=math.nan), r"top must be a positive finite number"),
    Call("column-aucs-top-nan", lambda: ra.column_aucs(ra.spectrum(X, Y2), Y2, top=math.nan), r"top must be"),
    Call("column-aucs-top-inf", lambda: ra.column_aucs(ra.spectrum(X, Y2), Y2, top=math.inf), r"top must be"),
    Call("grid-top-nan", lambda: ra.threshold_grid(100, top=math.nan), r"top must be a positive finite number"),
    Call("grid-top-inf", lambda: ra.threshold_grid(100, top=math.inf), r"top must be a positive finite number"),
    Call("grid-n-zero", lambda: ra.threshold_grid(0), r"n must be positive"),
    Call("grid-num-one", lambda: ra.threshold_grid(10, num=1), r"num must be at least 2"),
    Call("tau-q-nan", lambda: ra.alignment_tau(SPEC, math.nan), r"q must be in \(0, 1\]"),
    Call("tau-q-zero", lambda: ra.alignment_tau(SPEC, 0.0), r"q must be in \(0, 1\]"),
    Call("tau-q-above-one", lambda: ra.alignment_tau(SPEC, 1.5), r"q must be in \(0, 1\]"),
    # streaming
    Call("accumulator-nan-rolls-back", _rolled_back, check=bool),
    Call("accumulator-other-width", lambda: _acc((X, VALUES), (X[:, :3], VALUES)), r"3 feature columns.*6"),
    Call("accumulator-other-target-columns", lambda: _acc((X, VALUES), (X, Y2)), r"target columns"),
    Call("accumulator-empty", lambda: ra.AlignmentAccumulator().spectrum(), r"no data"),
    Call(
        "accumulator-merge-other-options",
        lambda: _acc((X, VALUES)).merge(_acc((X, VALUES), center=False)),
        r"different \(bias, normalize, center\)",
    ),
    Call("accumulator-huge-unnormalised", lambda: _acc((X * 1e160, VALUES), normalize=False).spectrum(), r"too large"),
    Call(
        "accumulator-tiny-targets",
        lambda: _acc((X, VALUES * 1e-170)).spectrum(),
        r"tiny",
        not_match="targets are constant",
    ),
    Call(
        "accumulator-tiny-targets-uncentred",
        lambda: _acc((X, VALUES * 1e-170), center=False).spectrum(),
        r"tiny",
        not_match="all zero",
    ),
    Call(
        "accumulator-a-tiny-batch-among-others",
        lambda: _acc((X[:60], VALUES[:60]), (X[60:], VALUES[60:] * 1e-300)).spectrum(),
        check=_finite_auc,
    ),
    Call("accumulator-huge-batch", lambda: _acc((X, VALUES * 1e153)).spectrum(), r"too large"),
    Call(
        "accumulator-huge-in-sum",
        lambda: _acc(*[(X[i : i + 1], [6e153 * (-1) ** i]) for i in range(20)]).spectrum(),
        r"too large: the sum of their squares over all batches",
    ),
    Call(
        "accumulator-state-dict-empty",
        lambda: ra.AlignmentAccumulator.from_state_dict({}),
        r"not a state dict of an AlignmentAccumulator.*bias",
    ),
    Call(
        "accumulator-state-dict-bad-shapes",
        lambda: ra.AlignmentAccumulator.from_state_dict({**_acc((X, VALUES)).state_dict(), "G": np.zeros((2, 3))}),
        r"state dict.*G",
    ),
    # the targets
    Call("binary-targets-three-classes", lambda: ra.binary_targets(np.array([0, 1, 2])), r"exactly two classes"),
    Call("targets-empty", lambda: ra.one_vs_rest_targets(np.array([])), r"labels are empty"),
    Call("targets-nan", lambda: ra.one_hot_targets(np.array([0.0, np.nan])), r"NaN"),
    Call("targets-2d-labels", lambda: ra.binary_targets(np.zeros((3, 2))), r"1-D"),
    Call("targets-unknown-task", lambda: target_makers.alignment_targets(LABELS, "ranking"), r"unknown task"),
    # the scores
    Call("logme-nan", lambda: scores.logme(np.where(X > 2.5, np.nan, X), LABELS), r"NaN or inf"),
    Call("h-score-one-class", lambda: scores.h_score(X, np.zeros(N)), r"single class"),
    Call("transrate-length-mismatch", lambda: scores.transrate(X, LABELS[:-2]), r"120 rows but labels have 118"),
    Call("alignment-score-unknown-summary", lambda: scores.alignment_score(X, LABELS, "median"), r"unknown summary"),
    Call("sfda-1d", lambda: scores.sfda(X[:, 0], LABELS), r"2-D"),
    Call("leep-not-probabilities", lambda: scores.leep(X, LABELS), r"probabilities"),
    Call("nce-length-mismatch", lambda: scores.nce(LABELS[:-1], LABELS), r"rows but labels have"),
    Call("h-score-huge", lambda: scores.h_score(X * 1e160, LABELS), r"too large.*rescale"),
    Call("logme-huge", lambda: scores.logme(X * 1e300, LABELS), r"too large"),
    Call("transrate-huge", lambda: scores.transrate(X * 1e200, LABELS), r"too large"),
    Call("sfda-huge", lambda: scores.sfda(X * 1e200, LABELS), r"too large"),
    Call("feature-scores-huge", lambda: scores.feature_scores(X * 1e300, LABELS), r"too large"),
    Call(
        "score-card-huge-rows",
        lambda: scores.score_card(X * 1e300, LABELS),
        check=lambda card: all(math.isfinite(v) for v in card.values()),
    ),
]


@pytest.mark.parametrize("case", LIBRARY_CASES, ids=[c.id for c in LIBRARY_CASES])
def test_library_on_hostile_input(case: Call) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # an overflow warning is a silently wrong result
        if case.check is not None:
            assert case.check(case.call())
            return
        with pytest.raises(ValueError, match=case.match) as info:
            case.call()
    message = str(info.value)
    assert "\n" not in message
    if case.not_match:
        assert case.not_match not in message, message


@pytest.mark.parametrize("scale", [1.0, 1e300, 1e-170, 1e-320])
@pytest.mark.parametrize("bias", [True, False])
def test_the_device_path_rescales_rows_as_the_numpy_path(scale: float, bias: bool) -> None:
    """The torch branch of the row preprocessing (CUDA tensors take it; run here on CPU tensors) gives the unit rows
    the NumPy branch gives, also for rows rescaled exactly because their squares leave float64's range."""
    from repalign.measure.alignment import _prepare_chunk

    x = X.copy()
    x[[3, 7]] *= scale
    on_numpy = _prepare_chunk(x, np.empty((N, 6 + bias)), bias, True, 0)
    on_torch = _prepare_chunk(torch.as_tensor(x), torch.empty((N, 6 + bias), dtype=torch.float64), bias, True, 0)
    assert np.allclose(on_torch.numpy(), on_numpy, rtol=1e-14, atol=1e-300)
    assert np.allclose(np.linalg.norm(on_numpy, axis=1), 1.0, rtol=1e-15)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_huge_and_tiny_input_on_the_gpu() -> None:
    cuda = torch.device("cuda")
    spec = ra.spectrum(torch.as_tensor(X * 1e300, device=cuda), torch.as_tensor(VALUES, device=cuda))
    assert spec.auc() == pytest.approx(ra.spectrum(X * 1e300, VALUES).auc(), rel=1e-9)
    with pytest.raises(ValueError, match="tiny"):
        ra.spectrum(torch.as_tensor(X, device=cuda), torch.as_tensor(VALUES * 1e-170, device=cuda))
    with pytest.raises(ValueError, match="too large"):
        ra.spectrum(torch.as_tensor(X * 1e160, device=cuda), torch.as_tensor(VALUES, device=cuda), normalize=False)


# ------------------------------------------------------------------------------------------------ hypothesis
_SHAPES = st.tuples(st.integers(1, 30), st.integers(1, 10), st.integers(1, 3))
_DTYPES = st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_])
_EXPONENTS = st.integers(-320, 320)
#: what the bounds allow for rounding (random matrices this small stay well-conditioned enough for it)
ROUNDING = 1e-6


def _draw(rng: np.random.Generator, shape: tuple[int, ...], exponent: int, dtype: Any) -> np.ndarray:
    with np.errstate(over="ignore", under="ignore", invalid="ignore"):
        values = rng.normal(size=shape) * np.float64(10.0) ** exponent
        return values.astype(dtype) if np.dtype(dtype).kind != "b" else values > 0


@settings(deadline=None, max_examples=300, derandomize=True, database=None)
@given(
    shape=_SHAPES,
    fdtype=_DTYPES,
    ydtype=_DTYPES,
    fexp=_EXPONENTS,
    yexp=_EXPONENTS,
    seed=st.integers(0, 2**16),
    options=st.tuples(st.booleans(), st.booleans(), st.booleans()),
    method=st.sampled_from(["auto", "gram", "kernel", "svd"]),
    stream=st.booleans(),
)
def test_the_measure_is_finite_and_bounded_or_a_clear_error(
    shape: tuple[int, int, int],
    fdtype: Any,
    ydtype: Any,
    fexp: int,
    yexp: int,
    seed: int,
    options: tuple[bool, bool, bool],
    method: str,
    stream: bool,
) -> None:
    n, d, k = shape
    rng = np.random.default_rng(seed)
    x, y = _draw(rng, (n, d), fexp, fdtype), _draw(rng, (n, k), yexp, ydtype)
    bias, normalize, center = options
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("ignore", ra.TargetWarning)
        try:
            if stream and n > 1:
                acc = ra.AlignmentAccumulator(bias=bias, normalize=normalize, center=center)
                spec = acc.update(x[: n // 2], y[: n // 2]).update(x[n // 2 :], y[n // 2 :]).spectrum()
            else:
                spec = ra.spectrum(x, y, bias=bias, normalize=normalize, center=center, method=method)
            auc, tau, curve = spec.auc(), spec.tau_q(0.9), spec.curve(relative=True)
        except ValueError as err:
            assert str(err) and "\n" not in str(err)
            return
    # bounds up to rounding: the Gram method's grows with the square of the features' condition number
    assert math.isfinite(auc) and 0.0 <= auc <= 1.0 + ROUNDING, auc
    assert math.isfinite(tau) and 0.0 <= tau <= (spec.singular_values[0] if spec.rank else 0.0)
    assert np.all(np.isfinite(curve)) and np.all(curve >= -ROUNDING) and np.all(curve <= 1.0 + ROUNDING)
    assert np.all(np.diff(curve) <= ROUNDING), "A(tau) must not increase"
    assert np.all(spec.mass >= 0) and spec.outside >= 0 and math.isfinite(spec.total)
    if normalize:
        assert np.all(spec.singular_values <= math.sqrt(n) * (1 + 1e-9))


# ------------------------------------------------------------------------------------------------ images
def _png(size: int = 8, seed: int = 0) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size, size, 3), dtype=np.uint8)).save(buf, "PNG")
    return buf.getvalue()


def _bomb() -> bytes:
    """A PNG whose header claims 30,000 × 30,000 pixels (PIL refuses it as a decompression bomb)."""
    png = _png()
    ihdr = png[12:16] + (30_000).to_bytes(4, "big") * 2 + png[24:29]
    return png[:8] + png[8:12] + ihdr + zlib.crc32(ihdr).to_bytes(4, "big") + png[33:]


BROKEN_IMAGES = {
    "truncated-png": lambda: _png(32)[: len(_png(32)) // 2],
    "header-only-png": lambda: _png()[:40],
    "garbage": lambda: RNG.bytes(300),
    "empty": lambda: b"",
    "decompression-bomb": _bomb,
}


@pytest.mark.parametrize("kind", sorted(BROKEN_IMAGES))
def test_a_broken_image_is_named_when_loading_a_folder(kind: str, tmp_path: Path) -> None:
    from repalign import data

    folder = tmp_path / "office31" / "amazon" / "back_pack"
    folder.mkdir(parents=True)
    (folder / "0.png").write_bytes(_png())
    (folder / "1.png").write_bytes(BROKEN_IMAGES[kind]())
    with pytest.raises(ValueError, match=r"office31/amazon: cannot read image .*1\.png .*remove or replace it") as info:
        data.load("office31", root=tmp_path, domain="amazon", image_size=8)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("kind", sorted(BROKEN_IMAGES))
def test_load_image_names_the_file(kind: str, tmp_path: Path) -> None:
    from repalign.data.folders import load_image

    (tmp_path / "x.png").write_bytes(BROKEN_IMAGES[kind]())
    with pytest.raises(ValueError, match=r"cannot read image .*x\.png"):
        load_image(tmp_path / "x.png")


# ------------------------------------------------------------------------------------------------ pre-training
def _image_folder(root: Path, sizes: tuple[int, ...] = (8, 8, 8)) -> Path:
    """``root/<class>/<i>.png`` for three classes, each image a different size on disk."""
    for k, name in enumerate(("ant", "bee", "cat")):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(sizes[k]):
            (root / name / f"{i}.png").write_bytes(_png(16, seed=100 * k + i))
    return root


def _pretrain_argv(data: Path, out: Path, *extra: str) -> list[str]:
    common = "--epochs 1 --batch-size 8 --image-size 16 --lr 0.01 --no-progress --workers 0 --no-eval"
    return ["--data", str(data), "--out", str(out), *common.split(), *extra]


def _one_error_line(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


CHECKPOINTS = {
    "truncated": (
        lambda t: _bytes(
            t, "checkpoint.pt", _half(_pt(t, "full.pt", {"format": "repalign.pretrain/1", "model": torch.ones(50, 50)}))
        ),
        r"not a readable torch checkpoint.*--resume never",
    ),
    "garbage": (lambda t: _bytes(t, "checkpoint.pt", RNG.bytes(999)), r"not a readable torch checkpoint"),
    "empty": (lambda t: _bytes(t, "checkpoint.pt", b""), r"not a readable torch checkpoint.*empty"),
    "foreign": (
        lambda t: _pt(t, "checkpoint.pt", {"fc.weight": torch.ones(2, 2)}),
        r"not a repalign.networks.pretrain checkpoint.*--resume never",
    ),
    "planted-pickle": (
        lambda t: _pt(t, "checkpoint.pt", {"format": "repalign.pretrain/1", "p": Planted(t / "ran")}),
        r"refused.*pickled",
    ),
}


@pytest.mark.parametrize("kind", sorted(CHECKPOINTS))
def test_checkpoint_info_refuses_a_bad_checkpoint(kind: str, tmp_path: Path) -> None:
    from repalign.networks import pretrain

    make, match = CHECKPOINTS[kind]
    path = make(tmp_path)
    for read in (pretrain.checkpoint_info, pretrain.load_pretrained):
        with pytest.raises(ValueError, match=match) as info:
            read(path)
        assert "\n" not in str(info.value)
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("kind", ["planted-pickle", "truncated"])
def test_resuming_from_a_planted_or_truncated_checkpoint_is_one_line(
    kind: str, tmp_path: Path, capsys, pretrain_in_process
) -> None:
    data, out = _image_folder(tmp_path / "data"), tmp_path / "run"
    out.mkdir()
    make, match = CHECKPOINTS[kind]
    os.replace(make(tmp_path), out / "checkpoint.pt")
    assert pretrain_in_process(_pretrain_argv(data, out)) == 2
    assert re.search(match, _one_error_line(capsys))
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("kind", sorted(WEIGHT_FILES))
def test_pretrain_init_refuses_a_bad_weights_file(kind: str, tmp_path: Path, capsys, pretrain_in_process) -> None:
    make, match = WEIGHT_FILES[kind]
    data = _image_folder(tmp_path / "data")
    assert pretrain_in_process(_pretrain_argv(data, tmp_path / "run", "--init", make(tmp_path))) == 2
    assert re.search(match, _one_error_line(capsys))
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize("workers", [0, pytest.param(1, marks=pytest.mark.slow)])
def test_pretrain_names_a_broken_image(workers: int, tmp_path: Path, capsys, pretrain_in_process) -> None:
    data = _image_folder(tmp_path / "data")
    (data / "bee" / "3.png").write_bytes(_png(16)[:60])
    argv = _pretrain_argv(data, tmp_path / "run", "--batch-size", "24")
    argv[argv.index("--workers") + 1] = str(workers)
    assert pretrain_in_process(argv) == 2
    assert re.search(r"cannot read image .*bee/3\.png .*remove or replace it", _one_error_line(capsys))


def test_a_failed_checkpoint_write_leaves_no_temporary(tmp_path: Path, monkeypatch) -> None:
    from repalign.networks import pretrain

    def half_then_fail(obj: Any, fh: Any) -> None:
        fh.write(b"PK\x03\x04 partial")
        raise OSError("disk full")

    monkeypatch.setattr(pretrain.torch, "save", half_then_fail)
    with pytest.raises(OSError, match="disk full"):
        pretrain._atomic_torch_save({"a": 1}, tmp_path / "checkpoint.pt")
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory, pretrain_in_process) -> tuple[Path, Path]:
    """A finished one-epoch run on a small folder: (data, run folder)."""
    root = tmp_path_factory.mktemp("pretrain")
    data, out = _image_folder(root / "data"), root / "run"
    assert pretrain_in_process(_pretrain_argv(data, out)) == 0
    return data, out


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


@pytest.mark.slow
def test_resume_refuses_swapped_classes(
    finished_run: tuple[Path, Path], tmp_path: Path, capsys, pretrain_in_process
) -> None:
    data, out = _copy(finished_run[0], tmp_path / "data"), _copy(finished_run[1], tmp_path / "run")
    os.replace(data / "ant", data / "tmp")
    os.replace(data / "bee", data / "ant")
    os.replace(data / "tmp", data / "bee")
    assert pretrain_in_process(_pretrain_argv(data, out)) == 2
    line = _one_error_line(capsys)
    assert "different configuration" in line and "training images" in line and "swapped" in line, line
    assert (
        pretrain_in_process(_pretrain_argv(_copy(finished_run[0], tmp_path / "same"), out)) == 0
    )  # an identical copy resumes


@pytest.mark.slow
def test_stale_temporaries_of_a_killed_write_are_removed(
    finished_run: tuple[Path, Path], tmp_path: Path, pretrain_in_process
) -> None:
    from repalign.networks import pretrain

    out = _copy(finished_run[1], tmp_path / "run")
    stale = out / ".checkpoint.pt.k1ll3d.tmp"
    stale.write_bytes(b"PK\x03\x04 half a checkpoint")
    partial = out / ".metrics.jsonl.k1ll3d.tmp"
    partial.write_text("{")
    other = out / ".notes.txt.x.tmp"  # not a temporary of this run's files: left alone
    other.write_text("{}")
    assert pretrain_in_process(_pretrain_argv(finished_run[0], out)) == 0
    assert not stale.exists() and not partial.exists() and other.exists()
    assert pretrain.checkpoint_info(out)["done"]


def _children(pid: int) -> list[int]:
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.slow
@pytest.mark.distributed
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc to find the ranks")
def test_ranks_exit_when_the_torchrun_agent_is_killed(tmp_path: Path) -> None:
    data, out = _image_folder(tmp_path / "data", sizes=(16, 16, 16)), tmp_path / "run"
    argv = _pretrain_argv(data, out, "--epochs", "200", "--backend", "gloo", "--device", "cpu")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "repalign.networks.pretrain",
        *argv,
    ]
    agent = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (out / "metrics.jsonl").exists():  # both ranks are in the training loop
            assert agent.poll() is None and time.monotonic() < deadline, "the run did not start"
            time.sleep(0.2)
        ranks = [p for p in _children(agent.pid) if _alive(p)]
        assert len(ranks) == 2, ranks
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait()
        deadline = time.monotonic() + 30
        while any(_alive(p) for p in ranks) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = [p for p in ranks if _alive(p)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        assert not left, "ranks kept running after their torchrun agent was killed"
        assert not list(out.glob(".checkpoint.pt.*.tmp"))
    finally:
        if agent.poll() is None:
            agent.kill()
