r"""Claim verdicts: the paper's claims checked on a notebook's own results, by one set of rules.

A verdict is computed, never typed in, and has one of three outcomes:

* ``holds``: the data support the claim beyond seed noise;
* ``does not hold``: the data contradict it beyond seed noise (or an exact check fails);
* ``indistinguishable from seed noise``: at this scale the difference the claim is about cannot be told apart
  from the spread over seeds (or is below the summary's resolution). Neither a pass nor a fail.

**The noise rule** (:func:`compare`, used by every rule below). For a summary measured over k seeds, two
representations a and b (e.g. the AUC of the last hidden layer and of the input), with paired differences
d_s = a_s − b_s (same seed, same network or same data draw):

.. math::  \bar d = \tfrac1k\sum_s d_s, \qquad \mathrm{se} = \mathrm{sd}(d)/\sqrt k

"a > b" counts when **every seed agrees** (all d_s > 0), :math:`\bar d > 2\,\mathrm{se}` and
:math:`\bar d >` the summary's resolution (:data:`AUC_RESOLUTION` for AUCs, fixed before any run); "a < b" by the
same rule with the signs turned; anything else is unresolved. Unpaired comparisons (different networks, e.g. two
depths) use Welch's standard error and require every a_s above every b_s. One seed gives no noise estimate, so a
single-seed comparison is always unresolved.

Rules built on it, each naming the summary it uses: :func:`more` (a more aligned than b), :func:`all_more` (in
every configuration), :func:`increasing` (along layers or depths: every consecutive step), :func:`ordered` (the
order by one summary is the order by another, e.g. more aligned → fewer gradient steps), :func:`ordered_each` (the same for several summaries at once), :func:`rank_correlated` (Kendall's τ per run,
above 0), :func:`provided` (a verdict that counts only
when its precondition holds), :func:`dominates` (curve
a ≥ curve b − tol at every τ) and :func:`check` (exact, deterministic claims such as "the measured loss equals the
predicted one").

Summaries of a curve: the AUC, :func:`repalign.alignment_auc` = (1/√n) ∫₀^√n A(τ)/‖Y‖² dτ ∈ [0, 1] (weighs the
whole curve), and τ_q, the largest τ with A(τ) ≥ q‖Y‖² (the demo's "≈ 990 of 1,000 up to τ ≈ 21" is τ_0.99).
**The ReLU ceiling**: with balanced ±1 labels, non-negative features and the bias column, the label vector is never
the top singular direction, so a well-trained ReLU layer tops out near τ ≈ √(n/2), AUC ≈ 1/√2 ≈ 0.71
(:data:`RELU_CEILING_AUC`); two layers both at the ceiling cannot be told apart by any curve summary, and the
rules say so in the claim's note.

:func:`report` prints one line per claim (``claim: <statement> ... <outcome>``, the lines nbval compares) and
writes ``<results_dir>/claims/<notebook>.json`` atomically with the evidence, the data used, the parameters, the
seeds, the preprocessing and the package versions; ``python -m repalign.run.claims summarize`` turns every such file
into one Markdown page.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.files import atomic_write_json, atomic_write_text
from repalign.core.paths import repo_root, resolve_output_dir
from repalign.core.provenance import provenance
from repalign.measure.alignment import preprocessing_seen
from repalign.run import params as _params

__all__ = [
    "HOLDS",
    "FAILS",
    "UNRESOLVED",
    "OUTCOMES",
    "AUC_RESOLUTION",
    "RELU_CEILING_AUC",
    "NOISE_RULE",
    "Claim",
    "snapshot",
    "banner",
    "Comparison",
    "compare",
    "combine",
    "check",
    "more",
    "all_more",
    "increasing",
    "ordered",
    "ordered_each",
    "rank_correlated",
    "provided",
    "dominates",
    "mean_std",
    "evidence_table",
    "report",
    "summarize",
    "main",
]

HOLDS = "holds"
FAILS = "does not hold"
UNRESOLVED = "indistinguishable from seed noise"
OUTCOMES = (HOLDS, FAILS, UNRESOLVED)

#: the smallest AUC difference a verdict counts: 1 % of ‖Y‖² averaged over τ ∈ [0, √n] (set before any run)
AUC_RESOLUTION = 0.01
#: AUC of a ReLU layer whose features collapse to two class means, balanced ±1 labels: 1/√2 (see module docstring)
RELU_CEILING_AUC = float(1.0 / np.sqrt(2.0))

NOISE_RULE = (
    "a difference counts when every seed agrees in sign, |mean difference| > 2 standard errors (paired over seeds; "
    "Welch and complete separation when unpaired) and > the summary's resolution (AUC: 0.01); otherwise the outcome "
    "is 'indistinguishable from seed noise'"
)


@dataclass
class Claim:
    """One of the paper's claims, checked on a notebook's results.

    Attributes:
        statement: the claim in plain words, e.g. "last hidden layer more aligned than the input".
        outcome: :data:`HOLDS`, :data:`FAILS` or :data:`UNRESOLVED`.
        statistic: the summary and rule the verdict uses, e.g. "AUC, paired over 5 seeds".
        evidence: the numbers behind the verdict (rounded when printed).
        note: why the outcome is what it is, where that is not plain from the evidence.
        data: label of the data the claim was checked on (described in the claim file's ``data``).
    """

    statement: str
    outcome: str
    statistic: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    data: str = ""

    def __post_init__(self) -> None:
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be one of {OUTCOMES}, got {self.outcome!r}")

    @property
    def holds(self) -> bool:
        """Whether the outcome is :data:`HOLDS`."""
        return self.outcome == HOLDS


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


_NOT_PARAMETERS = {"In", "Out", "exit", "quit", "get_ipython", "open"}


def snapshot(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The notebook's parameters: every public global holding plain data (numbers, strings, lists, dicts, None).

    Call it in the cell right after the ``parameters`` cell (and papermill's injected one), before any result
    exists: ``params = claims.snapshot(globals())``. Modules, functions and IPython's own names are skipped.
    Parameters papermill injected are checked first (:func:`repalign.run.params.check_kernel`): an unknown name or a
    value of the wrong type stops the notebook here with one message listing the notebook's parameters.
    """
    _params.check_kernel(namespace)
    preprocessing_seen(reset=True)  # from here on, the measure records how this run's spectra were preprocessed
    plain = (bool, int, float, str, list, tuple, dict, type(None))
    return {
        k: _plain(v)
        for k, v in namespace.items()
        if not k.startswith("_") and k not in _NOT_PARAMETERS and isinstance(v, plain)
    }


#: where ``make replicate`` and ``make paper`` write their verdicts, relative to the checkout
PUBLISHED = {"replicate": "results", "paper": "results/paper"}


def _shown(path: Path, root: Path | None) -> str:
    """``path`` relative to the checkout when it lies in it (the same text on every machine), else as it is."""
    return str(path.relative_to(root)) if root is not None and path.is_relative_to(root) else str(path)


def banner(notebook: str, run_scale: str, results_dir: str | Path) -> None:
    """Print which scale a notebook's outputs show and where the replicate-scale verdicts are: two lines, a
    notebook's first output (call it after :func:`snapshot`).

    ``run_scale`` is the notebook's parameter (``smoke`` in its parameters cell; each scale's yaml sets its own);
    a run writing its scale's published folder is the one ``make replicate`` or ``make paper`` runs, any other is a
    custom run (``repalign run``, ``make notebook``, a sweep: ``*/custom/<run name>``).
    """
    root = repo_root()
    root = root.resolve() if root is not None else None
    here = resolve_output_dir(results_dir).resolve()
    mine = _shown(here / "claims" / f"{notebook}.json", root)
    published = root is not None and run_scale in PUBLISHED and here == root / PUBLISHED[run_scale]
    if run_scale == "smoke":
        what = "the parameters cell's small defaults: a check that the notebook runs, not the replication"
    elif published:
        what = f"notebooks/params/{run_scale}/{notebook}.yaml, as make {run_scale} runs it"
    else:
        what = f"a custom run from the {run_scale} scale's parameters, see params below"
    summary = f"; all notebooks: {PUBLISHED[run_scale]}/SUMMARY.md" if published else ""
    print(f"Scale: {run_scale} ({what}). This run's verdicts: {mine}{summary}.")
    if not (run_scale == "replicate" and summary):
        print(f"Replicate-scale verdicts (make replicate): results/claims/{notebook}.json; all notebooks: "
              "results/SUMMARY.md.")  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# the noise rule
@dataclass(frozen=True)
class Comparison:
    """The outcome of "a > b" under the noise rule (:func:`compare`).

    Attributes:
        difference: mean of a − b over seeds (paired) or difference of the means (unpaired).
        std_error: its standard error (0 for one seed).
        seeds: number of seeds (pairs, or the smaller group when unpaired).
        agree: every seed agrees on the sign of the difference (unpaired: the two groups are separated).
        outcome: :data:`HOLDS` (a > b), :data:`FAILS` (a < b) or :data:`UNRESOLVED`.
        reason: why an unresolved comparison is unresolved.
    """

    difference: float
    std_error: float
    seeds: int
    agree: bool
    outcome: str
    reason: str = ""

    def text(self, digits: int = 3) -> str:
        """One line, e.g. ``+0.514 ± 0.003 (se), every seed agrees: holds``."""
        agree = "every seed agrees" if self.agree else "seeds disagree"
        reason = f" ({self.reason})" if self.reason else ""
        return f"{self.difference:+.{digits}f} ± {self.std_error:.{digits}f} (se), {agree}: {self.outcome}{reason}"


def _seeds(values: Any, name: str) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(values, dtype=np.float64))
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name}: expected one value per seed, shape (k,), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(
            f"{name}: non-finite values {arr.tolist()}; replace them by a stated cap first (e.g. steps never reached "
            "-> the step budget + 1)"
        )
    return arr


def compare(a: Any, b: Any, *, paired: bool = True, resolution: float = 0.0) -> Comparison:
    r"""Is a > b beyond seed noise? The rule of the module docstring.

    .. math::  d_s = a_s - b_s,\quad \bar d > 2\,\mathrm{sd}(d)/\sqrt k,\quad \bar d > r,\quad d_s > 0\ \forall s

    Shape: a, b (k,) one value per seed (a scalar, e.g. the input's AUC, is broadcast when paired). Unpaired: a
    (k_a,), b (k_b,), Welch's standard error :math:`\sqrt{s_a^2/k_a + s_b^2/k_b}` and separation
    :math:`\min a > \max b` in place of "every seed agrees".

    Args:
        resolution: the smallest difference that counts (:data:`AUC_RESOLUTION` for AUCs; 0 for counts).
    """
    a, b = _seeds(a, "a"), _seeds(b, "b")
    if paired:
        if a.size != b.size:
            a, b = np.broadcast_arrays(a, b)  # a scalar on one side; raises on a real mismatch
        d = a - b
        k = d.size
        mean = float(d.mean())
        se = float(d.std(ddof=1) / np.sqrt(k)) if k > 1 else 0.0
        up, down = bool(np.all(d > 0)), bool(np.all(d < 0))
    else:
        k = min(a.size, b.size)
        mean = float(a.mean() - b.mean())
        var = (a.var(ddof=1) / a.size if a.size > 1 else 0.0) + (b.var(ddof=1) / b.size if b.size > 1 else 0.0)
        se = float(np.sqrt(var))
        up, down = bool(a.min() > b.max()), bool(a.max() < b.min())
    if k < 2:
        return Comparison(mean, se, k, up or down, UNRESOLVED, "one seed: seed noise cannot be estimated")
    big = abs(mean) > 2.0 * se and abs(mean) > resolution
    if big and up and mean > 0:
        return Comparison(mean, se, k, True, HOLDS)
    if big and down and mean < 0:
        return Comparison(mean, se, k, True, FAILS)
    if not (up or down):
        reason = "seeds disagree on the sign"
    elif abs(mean) <= resolution:
        reason = f"below the resolution {resolution:g}"
    else:
        reason = "within 2 standard errors"
    return Comparison(mean, se, k, up or down, UNRESOLVED, reason)


def combine(outcomes: Iterable[str]) -> str:
    """One outcome from several that must all hold: any :data:`FAILS` → fails; all :data:`HOLDS` → holds; else
    unresolved."""
    outcomes = list(outcomes)
    if not outcomes:
        raise ValueError("nothing to combine")
    if FAILS in outcomes:
        return FAILS
    return HOLDS if all(o == HOLDS for o in outcomes) else UNRESOLVED


def _ceiling_note(means: Sequence[float], ceiling: float | None, resolution: float) -> str:
    if ceiling is None or len(means) < 2 or min(means) < ceiling - 2 * resolution:
        return ""
    return (
        f"both at the ReLU ceiling (AUC ~ {ceiling:.2f}: the label vector cannot be the top singular direction of "
        "non-negative features with a bias column), where no curve summary can tell them apart"
    )


def _statistic(summary: str, k: int, paired: bool) -> str:
    return f"{summary}, {'paired' if paired else 'unpaired'} over {k} seed{'s' if k != 1 else ''}"


# ---------------------------------------------------------------------------------------------------------------
# rules
def check(
    statement: str, holds: bool | np.bool_, *, statistic: str = "exact", note: str = "", data: str = "", **evidence: Any
) -> Claim:
    """A claim decided by an exact, deterministic check (e.g. "measured loss equals the prediction to 1e-8"):
    :data:`HOLDS` or :data:`FAILS`. Claims about differences between representations use :func:`more` and the
    other rules, which respect seed noise."""
    return Claim(statement, HOLDS if bool(holds) else FAILS, statistic, _plain(evidence), note, data)


def more(
    statement: str,
    a: Any,
    b: Any,
    *,
    names: tuple[str, str] = ("a", "b"),
    summary: str = "AUC",
    paired: bool = True,
    resolution: float = AUC_RESOLUTION,
    ceiling: float | None = None,
    note: str = "",
    data: str = "",
    **evidence: Any,
) -> Claim:
    """The claim "a is more aligned than b" (or larger by any summary): :func:`compare` of the two, per seed.

    Shape: a, b (k,) the summary per seed. ``ceiling``: e.g. :data:`RELU_CEILING_AUC`, to say so when both sit there.
    """
    c = compare(a, b, paired=paired, resolution=resolution)
    ma, mb = float(np.mean(a)), float(np.mean(b))
    if c.outcome == UNRESOLVED:
        note = "; ".join(filter(None, [note, _ceiling_note([ma, mb], ceiling, resolution)]))
    ev = {
        f"{summary}_{names[0]}": mean_std(a),
        f"{summary}_{names[1]}": mean_std(b),
        "difference": c.text(),
        **evidence,
    }
    return Claim(statement, c.outcome, _statistic(summary, c.seeds, paired), _plain(ev), note, data)


def all_more(
    statement: str,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    *,
    summary: str = "AUC",
    paired: bool = True,
    resolution: float = AUC_RESOLUTION,
    note: str = "",
    data: str = "",
    **evidence: Any,
) -> Claim:
    """The claim "a > b in every configuration": :func:`compare` per configuration, outcomes joined by :func:`combine`.

    Shape: a, b map a configuration's label to its (k,) values per seed (the same labels in both).
    """
    if set(a) != set(b):
        raise ValueError(f"a and b name different configurations: {sorted(set(a) ^ set(b))}")
    comps = {label: compare(a[label], b[label], paired=paired, resolution=resolution) for label in a}
    outcome = combine(c.outcome for c in comps.values())
    weakest = min(comps, key=lambda label: comps[label].difference)
    counts = {o: sum(c.outcome == o for c in comps.values()) for o in OUTCOMES}
    ev = {
        "configurations": len(comps),
        **{f"configurations_{o.replace(' ', '_')}": n for o, n in counts.items() if n},
        "smallest_difference": f"{weakest}: {comps[weakest].text()}",
        **{f"not_holding_{label}": c.text() for label, c in comps.items() if c.outcome != HOLDS},
        **evidence,
    }
    k = next(iter(comps.values())).seeds
    return Claim(statement, outcome, _statistic(summary, k, paired) + ", every configuration", _plain(ev), note, data)


def increasing(
    statement: str,
    values: Any,
    names: Sequence[str],
    *,
    summary: str = "AUC",
    paired: bool = True,
    resolution: float = AUC_RESOLUTION,
    ceiling: float | None = None,
    note: str = "",
    data: str = "",
    **evidence: Any,
) -> Claim:
    """The claim "increasing along ``names``" (layers, depths): every consecutive step is a > b by :func:`compare`.

    Outcome: holds when every step holds; does not hold when some step goes down beyond noise; otherwise
    unresolved, with the unresolved steps named (and the ReLU ceiling, when both ends of a step sit at it).

    Shape: values (k, L) the summary per seed (rows) and position (columns, in the order of ``names``).
    """
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 2 or v.shape[1] != len(names) or v.shape[1] < 2:
        raise ValueError(f"values must be (seeds, {len(names)}) with at least two positions, got shape {v.shape}")
    steps = {
        f"{lo} -> {hi}": compare(v[:, j + 1], v[:, j], paired=paired, resolution=resolution)
        for j, (lo, hi) in enumerate(itertools.pairwise(names))
    }
    outcome = combine(c.outcome for c in steps.values())
    notes = [note] if note else []
    for j, (step, c) in enumerate(steps.items()):
        if c.outcome == UNRESOLVED:
            at = _ceiling_note([v[:, j].mean(), v[:, j + 1].mean()], ceiling, resolution)
            if at:
                notes.append(f"{step}: {at}")
    ev = {
        f"mean_{summary}": dict(zip(names, np.round(v.mean(axis=0), 3).tolist(), strict=True)),
        **{f"step {step}": c.text() for step, c in steps.items()},
        **evidence,
    }
    return Claim(statement, outcome, _statistic(summary, v.shape[0], paired), _plain(ev), "; ".join(notes), data)


def ordered(
    statement: str,
    x: Mapping[str, Any],
    y: Mapping[str, Any],
    *,
    summaries: tuple[str, str] = ("AUC", "y"),
    lower_y: bool = True,
    resolutions: tuple[float, float] = (AUC_RESOLUTION, 0.0),
    paired: bool = True,
    note: str = "",
    data: str = "",
    **evidence: Any,
) -> Claim:
    """The claim "the larger x, the lower (``lower_y``) or higher y": e.g. more aligned → fewer gradient steps to a loss level.

    Every pair of representations whose x differs beyond noise (:func:`compare`) is a test: it agrees when y
    differs beyond noise in the claimed direction, disagrees when beyond noise the other way, and is unresolved
    otherwise. Outcome: does not hold if any pair disagrees; holds if every resolved-x pair agrees (and there is
    at least one); otherwise unresolved. Pairs whose x cannot be told apart say nothing about the claim.

    Shape: x, y map a representation's name to its (k,) values per seed (the same names in both).
    """
    if set(x) != set(y):
        raise ValueError(f"x and y name different representations: {sorted(set(x) ^ set(y))}")
    sx, sy = summaries
    tally: dict[str, list[str]] = {HOLDS: [], FAILS: [], UNRESOLVED: []}
    for p, q in itertools.combinations(list(x), 2):
        cx = compare(x[p], x[q], paired=paired, resolution=resolutions[0])
        if cx.outcome == UNRESOLVED:
            continue
        hi, lo = (p, q) if cx.outcome == HOLDS else (q, p)  # hi has the larger x
        cy = (
            compare(y[lo], y[hi], paired=paired, resolution=resolutions[1])
            if lower_y
            else compare(y[hi], y[lo], paired=paired, resolution=resolutions[1])
        )
        tally[cy.outcome].append(f"{hi} vs {lo}")
    if tally[FAILS]:
        outcome = FAILS
    elif tally[HOLDS] and not tally[UNRESOLVED]:
        outcome = HOLDS
    else:
        outcome = UNRESOLVED
    ev = {
        f"{sx}": {k: mean_std(v) for k, v in x.items()},
        f"{sy}": {k: mean_std(v) for k, v in y.items()},
        "pairs_agreeing": tally[HOLDS],
        "pairs_disagreeing": tally[FAILS],
        "pairs_unresolved": tally[UNRESOLVED],
        **evidence,
    }
    if not any(tally.values()):
        note = "; ".join(filter(None, [note, f"no two representations differ in {sx} beyond seed noise"]))
    k = len(np.atleast_1d(next(iter(x.values()))))
    stat = f"{sx} order against {sy} order, pairs {'paired' if paired else 'unpaired'} over {k} seeds"
    return Claim(statement, outcome, stat, _plain(ev), note, data)


def ordered_each(
    statement: str,
    x: Mapping[str, Any],
    ys: Mapping[str, Mapping[str, Any]],
    *,
    summary: str = "AUC",
    lower_y: bool = True,
    resolutions: tuple[float, float] = (AUC_RESOLUTION, 0.0),
    paired: bool = True,
    note: str = "",
    data: str = "",
    **evidence: Any,
) -> Claim:
    """The claim "the larger x, the lower y" for every y of ``ys`` (e.g. steps to 50 %, 20 % and 5 % of the initial
    loss): :func:`ordered` for each, outcomes joined by :func:`combine`.

    Shape: x maps a representation's name to its (k,) values per seed; ys maps each y's name to such a mapping.
    """
    parts = {
        name: ordered(name, x, y, summaries=(summary, name), lower_y=lower_y, resolutions=resolutions, paired=paired)
        for name, y in ys.items()
    }
    ev: dict[str, Any] = {summary: {k: mean_std(v) for k, v in x.items()}}
    for name, c in parts.items():
        unresolved = c.evidence["pairs_unresolved"]
        ev[name] = c.evidence[name]
        ev[f"outcome at {name}"] = c.outcome + (f" (unresolved: {', '.join(unresolved)})" if unresolved else "")
    k = len(np.atleast_1d(next(iter(x.values()))))
    stat = f"{summary} order against each of {len(parts)} orders, pairs {'paired' if paired else 'unpaired'} over {k} seeds"
    return Claim(statement, combine(c.outcome for c in parts.values()), stat, _plain({**ev, **evidence}), note, data)


def rank_correlated(
    statement: str,
    runs: Sequence[tuple[Any, Any]],
    *,
    summaries: tuple[str, str] = ("x", "y"),
    resolution: float = 0.0,
    note: str = "",
    data: str = "",
    **evidence: Any,
) -> Claim:
    r"""The claim "y rises with x": Kendall's τ between x and y in each run (seed, source task, ...), then
    :func:`compare` of the k values of τ against 0, paired.

    .. math::  \tau_s = \mathrm{Kendall}(x_s, y_s), \qquad \text{holds when } \tau_s > 0\ \forall s,\
               \bar\tau > 2\,\mathrm{se},\ \bar\tau > \text{resolution}

    Shape: runs is a sequence of k pairs (x_s (m_s,), y_s (m_s,)), one per run (m_s items ranked, e.g. targets).
    """
    from scipy.stats import kendalltau

    taus = np.array([kendalltau(np.asarray(x), np.asarray(y))[0] for x, y in runs], dtype=np.float64)
    if not np.all(np.isfinite(taus)):
        raise ValueError(f"Kendall tau is undefined in some run (a constant x or y): {taus.tolist()}")
    c = compare(taus, np.zeros_like(taus), resolution=resolution)
    ev = {"kendall_tau": mean_std(taus), "tau_by_run": np.round(taus, 3).tolist(), "difference": c.text(), **evidence}
    stat = f"Kendall tau({summaries[0]}, {summaries[1]}) per run against 0, over {c.seeds} runs"
    return Claim(statement, c.outcome, stat, _plain(ev), note, data)


def provided(claim: Claim, condition: bool | np.bool_, note: str) -> Claim:
    """The claim's verdict counts only when ``condition``, a precondition of the test, is true (e.g. "the constructed
    input is less aligned than the original"); otherwise the outcome is :data:`UNRESOLVED` and ``note`` says why.
    The evidence is kept either way."""
    if bool(condition):
        return claim
    return Claim(
        claim.statement,
        UNRESOLVED,
        claim.statistic,
        claim.evidence,
        "; ".join(filter(None, [claim.note, note])),
        claim.data,
    )


def dominates(a: Any, b: Any, *, tol: float = AUC_RESOLUTION) -> np.ndarray:
    r"""Per seed, whether curve a lies on or above curve b − ``tol`` at every point.

    .. math::  a_s(\tau_j) \ge b_s(\tau_j) - \mathrm{tol}\quad \forall j

    Shape: a, b (k, T) curves per seed (e.g. relative alignment curves on one threshold grid, or loss curves with
    the signs turned). Returns (k,) booleans.
    """
    a, b = np.atleast_2d(np.asarray(a, dtype=np.float64)), np.atleast_2d(np.asarray(b, dtype=np.float64))
    if a.shape != b.shape:
        raise ValueError(f"curves of different shapes {a.shape} and {b.shape}")
    return np.all(a >= b - tol, axis=1)


def mean_std(values: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Mean and (population) standard deviation over seeds."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std())


def _fmt(v: Any, digits: int) -> str:
    if isinstance(v, float):
        return f"{v:.{digits}f}"
    if isinstance(v, (list, tuple)) and len(v) == 2 and all(isinstance(x, float) for x in v):
        return f"{v[0]:.{digits}f} ± {v[1]:.{digits}f}"
    if isinstance(v, Mapping):
        return "{" + ", ".join(f"{k}: {_fmt(x, digits)}" for k, x in v.items()) + "}"
    return str(v)


def evidence_table(claims: Iterable[Claim], digits: int = 3) -> str:
    """The evidence behind each verdict as aligned text (not compared by nbval: numbers may move in the last digit)."""
    lines = []
    for c in claims:
        lines.append(f"{c.statement}: {c.outcome}   [{c.statistic}]")
        for k, v in c.evidence.items():
            lines.append(f"    {k:<34} {_fmt(v, digits)}")
        if c.note:
            lines.append(f"    note: {c.note}")
    return "\n".join(lines)


def _round(value: Any, digits: int = 6) -> Any:
    """Evidence as it is written: floats to ``digits`` significant figures (what a summary over seeds supports)."""
    if isinstance(value, float):
        return float(f"{value:.{digits}g}")
    if isinstance(value, Mapping):
        return {k: _round(v, digits) for k, v in value.items()}
    if isinstance(value, list):
        return [_round(v, digits) for v in value]
    return value


def report(
    claims: Sequence[Claim],
    notebook: str,
    params: Mapping[str, Any],
    results_dir: str | Path,
    *,
    data: Mapping[str, str] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    echo: bool = True,
) -> None:
    """Print one verdict line per claim and write ``<results_dir>/claims/<notebook>.json`` atomically.

    Returns nothing, so that the verdict lines are a cell's only output (nbval executes cells without history,
    where a trailing ``;`` does not silence a return value).

    The JSON holds the claims (outcome, statistic, evidence, note, data label), ``data`` (each label's
    description, e.g. :meth:`repalign.data.DatasetInfo.describe`: full set, embedded subset or stand-in), the
    notebook's parameters (which include its seeds), how features and targets were preprocessed for the measure
    (recorded by the measure itself for every spectrum made or loaded since :func:`snapshot`; ``preprocessing``
    declares it where no spectrum was, and must agree where one was), the noise rule, and
    :func:`repalign.core.provenance.provenance` without a timestamp. Evidence floats are rounded to 6 significant figures
    (what a summary over a few seeds supports; a last-digit difference of ~1e-15 between two runs changes the
    written value only when it straddles a rounding boundary, about one value in 10⁹), so re-running an unchanged
    notebook writes the same bytes. A relative ``results_dir`` is resolved against ``notebooks/`` of the checkout
    (:func:`repalign.core.paths.resolve_output_dir`).
    """
    claims = list(claims)
    unknown = sorted({c.data for c in claims if c.data} - set(data or {}))
    if unknown:
        raise ValueError(f"claims name data {unknown} that `data` does not describe; pass data={{label: description}}")
    path = resolve_output_dir(results_dir) / "claims" / f"{notebook}.json"
    payload = {
        "notebook": notebook,
        "claims": [_round(_plain(asdict(c))) for c in claims],
        "data": dict(data or {}),
        "parameters": _plain(dict(params)),
        "preprocessing": _preprocessing(preprocessing),
        "verdict_rule": NOISE_RULE,
        "provenance": provenance(timestamp=False),
    }
    atomic_write_json(path, payload)
    if echo:
        for c in claims:
            print(f"claim: {c.statement} ... {c.outcome}")


def _preprocessing(declared: Mapping[str, Any] | None) -> Any:
    """How the spectra behind the verdicts were preprocessed: what the measure recorded in this run
    (:func:`repalign.measure.alignment.preprocessing_seen`; one dict, or a list when several were used), checked
    against what a notebook declares (``declared``, optional: it must agree with the record).

    Raises:
        ValueError: when the measure recorded no spectrum since :func:`snapshot` (every recipe notes the spectra
            of its results, cached ones included, so a claim file without one would not say how it was measured),
            or when ``declared`` disagrees with the record.
    """
    seen = preprocessing_seen()
    if not seen:
        raise ValueError(
            "the measure recorded no spectrum since claims.snapshot(globals()): a result loaded from the cache must "
            "note its preprocessing (repalign.measure.alignment.note_preprocessing), and snapshot must run first"
        )
    recorded = seen[0] if len(seen) == 1 else seen
    if declared is not None and _plain(dict(declared)) != recorded:
        raise ValueError(f"preprocessing={dict(declared)} was declared, but the measure recorded {recorded}")
    return recorded


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def summarize(results_dir: str | Path, out: str | Path | None = None) -> str:
    """One Markdown page of every claim verdict found under ``results_dir`` (``*.json`` from :func:`report`):
    per notebook the data it used, then one row per claim with its outcome, statistic and evidence."""
    results_dir = Path(results_dir)
    files = sorted(results_dir.glob("*.json"))
    counts = dict.fromkeys(OUTCOMES, 0)
    body = []
    for f in files:
        d = json.loads(f.read_text())
        body += ["", f"## {d['notebook']}", ""]
        for label, desc in d.get("data", {}).items():
            body.append(f"- data **{label}**: {desc}")
        body += ["", "| claim | outcome | statistic | evidence |", "|---|---|---|---|"]
        for c in d.get("claims", []):
            outcome = c.get("outcome", HOLDS if c.get("holds") else FAILS)
            counts[outcome] = counts.get(outcome, 0) + 1
            ev = "; ".join(f"{k} = {_fmt(v, 3)}" for k, v in c.get("evidence", {}).items())
            if c.get("note"):
                ev = f"{ev} (note: {c['note']})" if ev else f"note: {c['note']}"
            shown = outcome if outcome == HOLDS else f"**{outcome}**"
            label = c.get("data", "")
            statement = (
                f"{label}: {c['statement']}" if label and not c["statement"].startswith(label) else c["statement"]
            )
            body.append(f"| {_cell(statement)} | {shown} | {_cell(c.get('statistic', ''))} | {_cell(ev)} |")
    total = sum(counts.values())
    head = [
        "# Claim verdicts",
        "",
        f"From {len(files)} notebook result file(s) in `{results_dir}`. Rule: {NOISE_RULE}.",
        "",
        f"Of {total} claims: {counts[HOLDS]} hold, {counts[FAILS]} do not hold, {counts[UNRESOLVED]} are "
        "indistinguishable from seed noise at this scale.",
    ]
    text = "\n".join(head + body) + "\n"
    if out is not None:
        atomic_write_text(out, text)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m repalign.run.claims")
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
