"""Claim verdicts: each notebook ends by checking the paper's claims on its own results.

A verdict is computed, never typed in: ``check(statement, holds, **evidence)``. :func:`report` prints one line per
claim (``claim: <statement> ... True``), the lines nbval compares, and writes ``<results_dir>/claims/<notebook>.json``
atomically with the evidence, the parameters, the seeds and the package versions that produced it.
``python -m repalign.claims summarize`` turns every such file into one Markdown page.

How a curve is summarised (the same in every notebook): the area under the relative alignment curve,
:func:`repalign.alignment_auc` = (1/√n) ∫₀^√n A(τ)/‖Y‖² dτ ∈ [0, 1], reported as mean ± standard deviation over
seeds. One threshold can mislead (a single strong input direction can hold mass at a large τ where no hidden
layer does), the area weighs the whole curve.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repalign.utils import atomic_write_json, atomic_write_text, provenance

__all__ = ["Claim", "check", "report", "evidence_table", "mean_std", "summarize", "snapshot"]


@dataclass
class Claim:
    """One of the paper's claims, checked on a notebook's results.

    Attributes:
        statement: the claim in plain words, e.g. "last hidden layer more aligned than input".
        holds: the verdict computed from the results.
        evidence: the numbers behind the verdict (rounded when printed).
        note: why a claim may not hold at this scale, if known.
    """

    statement: str
    holds: bool
    evidence: dict[str, Any] = field(default_factory=dict)
    note: str = ""


def _plain(value: Any) -> Any:
    if isinstance(value, (np.bool_, bool)):
        return bool(value)
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


#: how every notebook summarises an alignment curve (see the module docstring)
VERDICT_RULE = "area under A(tau)/||Y||^2 over tau in [0, sqrt(n)], divided by sqrt(n); mean +- std over seeds"

_NOT_PARAMETERS = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def snapshot(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's parameters: every public global holding plain data (numbers, strings, lists, dicts, None).

    Call it in the cell right after the ``parameters`` cell (and papermill's injected one), before any result
    exists: ``params = claims.snapshot(globals())``. Modules, functions and IPython's own names are skipped.
    """
    plain = (bool, int, float, str, list, tuple, dict, type(None))
    return {
        k: _plain(v)
        for k, v in namespace.items()
        if not k.startswith("_") and k not in _NOT_PARAMETERS and isinstance(v, plain)
    }


def check(statement: str, holds: bool | np.bool_, note: str = "", **evidence: Any) -> Claim:
    """Make a :class:`Claim` from a computed verdict and the evidence behind it."""
    return Claim(statement=statement, holds=bool(holds), evidence=_plain(evidence), note=note)


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation over seeds."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def _fmt(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"
    return str(v)


def evidence_table(claims: Iterable[Claim], digits: int = 3) -> str:
    """The evidence behind each verdict as aligned text (not compared by nbval: numbers may move in the last digit)."""
    lines = []
    for c in claims:
        lines.append(f"{c.statement}: {'holds' if c.holds else 'does NOT hold'}")
        for k, v in c.evidence.items():
            lines.append(f"    {k:<34} {_fmt(v, digits)}")
        if c.note:
            lines.append(f"    note: {c.note}")
    return "\n".join(lines)


def report(
    claims: Sequence[Claim],
    notebook: str,
    params: Mapping[str, Any],
    results_dir: str | Path,
    *,
    echo: bool = True,
    preprocessing: Mapping[str, Any] | None = None,
) -> None:
    """Print one verdict line per claim and write ``<results_dir>/claims/<notebook>.json`` atomically.

    Returns nothing, so that the verdict lines are a cell's only output (nbval executes cells without history,
    where a trailing ``;`` does not silence a return value).

    The JSON holds the claims with their evidence, the notebook's parameters (which include its seeds), how the
    features were preprocessed for the measure (``preprocessing``: default the library's, a bias column then
    unit-norm rows), the verdict rule, and :func:`repalign.utils.provenance`.
    """
    path = Path(results_dir) / "claims" / f"{notebook}.json"
    payload = {
        "notebook": notebook,
        "claims": [asdict(c) for c in claims],
        "parameters": _plain(dict(params)),
        "preprocessing": _plain(dict(preprocessing or {"bias": True, "normalize": True})),
        "verdict_rule": VERDICT_RULE,
        "provenance": provenance(),
    }
    atomic_write_json(path, payload)
    if echo:
        for c in claims:
            print(f"claim: {c.statement} ... {c.holds}")


def summarize(results_dir: str | Path, out: str | Path | None = None) -> str:
    """One Markdown page of every claim verdict found under ``results_dir`` (``*.json`` from :func:`report`)."""
    results_dir = Path(results_dir)
    files = sorted(results_dir.glob("*.json"))
    lines = ["# Claim verdicts", "", f"From {len(files)} notebook result file(s) in `{results_dir}`.", ""]
    lines += ["| notebook | claim | verdict | evidence |", "|---|---|---|---|"]
    n_true = n_all = 0
    for f in files:
        data = json.loads(f.read_text())
        for c in data.get("claims", []):
            n_all += 1
            n_true += bool(c["holds"])
            ev = "; ".join(f"{k} = {_fmt(v, 3)}" for k, v in c.get("evidence", {}).items())
            verdict = "holds" if c["holds"] else "**does not hold**"
            if c.get("note"):
                ev = f"{ev} (note: {c['note']})" if ev else f"note: {c['note']}"
            lines.append(f"| {data['notebook']} | {c['statement']} | {verdict} | {ev} |")
    lines += ["", f"{n_true} of {n_all} claims hold at this scale."]
    text = "\n".join(lines) + "\n"
    if out is not None:
        atomic_write_text(out, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repalign.claims")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summarize", help="write a Markdown page of every claim verdict")
    s.add_argument("--results", default="results/claims")
    s.add_argument("--out", default="results/SUMMARY.md")
    args = parser.parse_args(argv)
    if args.command == "summarize":
        text = summarize(args.results, args.out)
        print(f"wrote {args.out} ({text.count(chr(10))} lines)")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
