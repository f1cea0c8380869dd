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

**Reasons.** A claim that does not hold says why: when the caller gives no ``note``, every rule writes a one-line
reason computed from its evidence (``b above a in every seed (AUC 0.083 vs 0.119)``; ``the other way in every seed
in 1 of 5 steps: input -> hidden1 (AUC 0.422 -> 0.326)``; ``the exact check is false: max_relative_gap = 3.0e-02``),
and an unresolved claim names what kept it unresolved (seeds disagree on the sign, within 2 standard errors, below
the resolution, equal in every seed, one seed, the ReLU ceiling). :func:`report` refuses a claim that does not hold
without a note.

:func:`report` prints one line per claim (``claim: <statement> ... <outcome>``, the lines nbval compares) and
writes ``<results_dir>/claims/<notebook>.json`` atomically with the evidence, the data used, the parameters, the
seeds, the preprocessing, the package versions and the numbers of the paper's claims the notebook answers
(``paper_claims``; default :data:`NOTEBOOK_CLAIMS`); ``python -m repalign.run.claims summarize`` turns every such
file into one Markdown page that opens with the one-screen answer (:func:`answer`: one row per paper claim 1-10 of
docs/PAPER.md §3, its outcome by :data:`ANSWER_RULE`, the counts of its verdicts, the data they ran on and why it
does not hold; the claims beyond the paper tallied apart), and with ``--readme README.md`` (``make replicate``)
writes the same answer between the README's :data:`README_MARKERS`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
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
    "all_more_where",
    "increasing",
    "ordered",
    "ordered_each",
    "rank_correlated",
    "provided",
    "beyond_paper",
    "dominates",
    "mean_std",
    "evidence_table",
    "report",
    "PAPER_CLAIMS",
    "NOTEBOOK_CLAIMS",
    "ANSWER_RULE",
    "README_MARKERS",
    "DATA_KINDS",
    "data_kinds",
    "claim_files",
    "answered_claims",
    "row_outcome",
    "answer",
    "with_answer",
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

#: the paper's claims by number, as docs/PAPER.md §3 titles its items 1-10
PAPER_CLAIMS = {
    1: "Alignment and convergence",
    2: "Emergence",
    3: "Robustness across architectures",
    4: "Robustness across training",
    5: "Layer by layer",
    6: "A downstream linear model on learned features",
    7: "Synthetic transfer: the peaks tasks",
    8: "Pre-trained networks",
    9: "Similarity of the pre-training task",
    10: "Negative transfer on Office-31",
}

#: which of the paper's claims (:data:`PAPER_CLAIMS`) each notebook answers, by its stem: :func:`report`'s default
#: for ``paper_claims``, written into the claim file. Empty: beyond the paper (tallied apart), as is a stem not listed.
NOTEBOOK_CLAIMS: dict[str, tuple[int, ...]] = {
    "00_quickstart": (2, 5),  # the authors' demo: alignment emerges, and grows layer by layer
    "01_alignment_and_convergence": (1,),
    "02_emergence": (2,),
    "03_architectures": (3,),
    "04_optimizers_and_batch_size": (4,),
    "05_layerwise": (5,),
    "06_downstream_convergence": (6,),
    "07_peaks_transfer": (7,),
    "08_pretrained_features": (8,),
    "09_task_similarity": (9,),
    "10_negative_transfer": (10,),
    "11_transferability_scores": (),
}


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
        paper: whether the verdict counts for the paper's claims its notebook answers (:func:`report`'s
            ``paper_claims``); False for a contrast or a check beyond the paper (:func:`beyond_paper`), which the
            summary tallies apart.
    """

    statement: str
    outcome: str
    statistic: str = ""
    evidence: dict[str, Any] = field(default_factory=dict)
    note: str = ""
    data: str = ""
    paper: bool = True

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
    if mean == 0.0 and se == 0.0:
        reason = "equal in every seed"
    elif not (up or down):
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
# reasons: the one-line note a rule writes when its claim does not hold or is unresolved and the caller gave none
def _num(x: float) -> str:
    """A mean as a reason prints it: 3 significant figures below 1, 4 up to 1,000, whole numbers above."""
    x = float(x)
    if abs(x) >= 1000:
        return f"{x:.0f}"
    return f"{x:.3g}" if abs(x) < 1 else f"{x:.4g}"


def _listed(items: Sequence[str], limit: int = 3) -> str:
    """``a, b, c and 2 more``: the first ``limit`` items of a reason, then how many are left out."""
    shown = ", ".join(items[:limit])
    return f"{shown} and {len(items) - limit} more" if len(items) > limit else shown


def _every(paired: bool) -> str:
    """Where a comparison that does not hold went the other way: in each seed (paired) or in each run (unpaired)."""
    return "in every seed" if paired else "in every run"


def _why(c: Comparison, names: tuple[str, str], means: tuple[float, float], summary: str, paired: bool) -> str:
    """Why "names[0] > names[1]" (means in that order) does not hold or is unresolved, in one line, e.g.
    ``b above a in every seed (AUC 0.083 vs 0.119)`` or ``a vs b (AUC 0.5 vs 0.49): seeds disagree on the sign``."""
    (na, nb), (ma, mb) = names, means
    values = f"{summary} {_num(ma)} vs {_num(mb)}"
    if c.outcome == FAILS:
        return f"{nb} above {na} {_every(paired)} ({values})"
    return f"{na} vs {nb} ({values}): {c.reason}"


def _reason(note: str, outcome: str, why: Sequence[str] | str) -> str:
    """The claim's note: the caller's ``note`` when it has one or the claim holds, else the rule's own reason."""
    if note or outcome == HOLDS:
        return note
    return why if isinstance(why, str) else "; ".join(filter(None, why))


def _parts_reason(outcome: str, parts: Mapping[str, tuple[Comparison, str, str]], noun: str, paired: bool) -> str:
    """Which parts (configurations, steps) went the other way (``outcome`` :data:`FAILS`) or stayed unresolved, in
    one line: ``the other way in every seed in 2 of 5 configurations: x vs y (AUC 0.083 vs 0.119), …``.

    Shape: parts maps a part's label to (its comparison, its values as text, why it is unresolved)."""
    off = [
        f"{label} ({values}" + (f": {why})" if outcome == UNRESOLVED else ")")
        for label, (c, values, why) in parts.items()
        if c.outcome == outcome
    ]
    head = f"the other way {_every(paired)}" if outcome == FAILS else "unresolved"
    return f"{head} in {len(off)} of {len(parts)} {noun}: {_listed(off)}"


# ---------------------------------------------------------------------------------------------------------------
# rules
def check(
    statement: str, holds: bool | np.bool_, *, statistic: str = "exact", note: str = "", data: str = "", **evidence: Any
) -> Claim:
    """A claim decided by an exact, deterministic check (e.g. "measured loss equals the prediction to 1e-8"):
    :data:`HOLDS` or :data:`FAILS`. Claims about differences between representations use :func:`more` and the
    other rules, which respect seed noise. A check that fails without a ``note`` gets one naming its evidence
    (``the exact check is false: max_relative_gap = 3.0e-02``)."""
    outcome = HOLDS if bool(holds) else FAILS
    ev = _plain(evidence)
    shown = [f"{k} = {_fmt(v, 3)}" for k, v in ev.items()]
    why = "the exact check is false" + (f": {_listed(shown)}" if shown else "")
    return Claim(statement, outcome, statistic, ev, _reason(note, outcome, why), data)


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
    Without a ``note``, a claim that does not hold or is unresolved says why (``b above a in every seed (AUC 0.083
    vs 0.119)``; ``a vs b (AUC 0.5 vs 0.49): seeds disagree on the sign``).
    """
    c = compare(a, b, paired=paired, resolution=resolution)
    ma, mb = float(np.mean(a)), float(np.mean(b))
    if c.outcome == UNRESOLVED:
        note = "; ".join(filter(None, [note, _ceiling_note([ma, mb], ceiling, resolution)]))
    note = _reason(note, c.outcome, _why(c, names, (ma, mb), summary, paired))
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
    parts = {
        label: (c, f"{summary} {_num(np.mean(a[label]))} vs {_num(np.mean(b[label]))}", c.reason)
        for label, c in comps.items()
    }
    note = _reason(note, outcome, _parts_reason(outcome, parts, "configurations", paired))
    return Claim(statement, outcome, _statistic(summary, k, paired) + ", every configuration", _plain(ev), note, data)


def all_more_where(
    statement: str,
    a: Mapping[str, Any],
    b: Mapping[str, Any],
    counted: Mapping[str, bool],
    why_not: str,
    *,
    resolution: float = AUC_RESOLUTION,
    **options: Any,
) -> Claim:
    """:func:`all_more` over the configurations whose precondition holds (``counted[label]``, e.g. "the random labels
    were memorised"); the others are kept in the evidence (``not_counted``) but decide nothing. A claim that would
    hold without them is :data:`UNRESOLVED` (the note says which were left out and ``why_not``); one that does not
    hold on a counted configuration does not hold (and says so); with none counted, the rule runs on all of them and
    the claim is unresolved. ``options``: :func:`all_more`'s (``summary``, ``data``, evidence, ...).

    Shape: a, b map a configuration's label to its (k,) values per seed; counted maps the same labels to bools.
    """
    if set(counted) != set(a):
        raise ValueError(f"counted names other configurations than a: {sorted(set(counted) ^ set(a))}")
    keep = [label for label in a if counted[label]]
    left = {label: compare(a[label], b[label], resolution=resolution).text() for label in a if label not in keep}
    rows = keep or list(a)
    claim = all_more(statement, {k: a[k] for k in rows}, {k: b[k] for k in rows}, resolution=resolution,
                     not_counted=left, **options)  # fmt: skip
    if not left:
        return claim
    why = f"not counted: {list(left)}, {why_not}"
    claim = provided(claim, bool(keep) and claim.outcome == FAILS, why)
    if claim.outcome == FAILS:
        claim.note = "; ".join(p for p in (claim.note, why) if p)
    return claim


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
    at_ceiling = {
        step: _ceiling_note([v[:, j].mean(), v[:, j + 1].mean()], ceiling, resolution)
        for j, (step, c) in enumerate(steps.items())
        if c.outcome == UNRESOLVED
    }
    at_ceiling = {step: at for step, at in at_ceiling.items() if at}
    parts = {
        step: (c, f"{summary} {_num(v[:, j].mean())} -> {_num(v[:, j + 1].mean())}", at_ceiling.get(step, c.reason))
        for j, (step, c) in enumerate(steps.items())
    }
    notes = [_reason(note, outcome, _parts_reason(outcome, parts, "steps", paired))]
    if note or outcome == FAILS:  # an unresolved outcome's own reason already names the steps at the ceiling
        notes += [f"{step}: {at}" for step, at in at_ceiling.items()]
    ev = {
        f"mean_{summary}": dict(zip(names, np.round(v.mean(axis=0), 3).tolist(), strict=True)),
        **{f"step {step}": c.text() for step, c in steps.items()},
        **evidence,
    }
    return Claim(
        statement, outcome, _statistic(summary, v.shape[0], paired), _plain(ev), "; ".join(filter(None, notes)), data
    )


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
    tests: dict[str, tuple[Comparison, str, str]] = {}  # each pair's y comparison, its values and its reason
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
        values = [f"{s} {_num(np.mean(v[hi]))} vs {_num(np.mean(v[lo]))}" for s, v in ((sx, x), (sy, y))]
        tests[f"{hi} vs {lo}"] = (cy, ", ".join(values), cy.reason)
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
    note = _reason(note, outcome, _parts_reason(outcome, tests, f"pairs ordered by {sx}", paired))
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
    outcome = combine(c.outcome for c in parts.values())
    note = _reason(note, outcome, [f"{name}: {c.note}" for name, c in parts.items() if c.outcome == outcome])
    return Claim(statement, outcome, stat, _plain({**ev, **evidence}), note, data)


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
    tau = f"Kendall tau({summaries[0]}, {summaries[1]}) {_num(taus.mean())} over {c.seeds} runs"
    why = f"{tau}, below 0 in every run" if c.outcome == FAILS else f"{tau}: {c.reason}"
    return Claim(statement, c.outcome, stat, _plain(ev), _reason(note, c.outcome, why), data)


def provided(claim: Claim, condition: bool | np.bool_, note: str) -> Claim:
    """The claim's verdict counts only when ``condition``, a precondition of the test, is true (e.g. "the constructed
    input is less aligned than the original"); otherwise the outcome is :data:`UNRESOLVED` and ``note`` says why.
    The evidence is kept either way."""
    if bool(condition):
        return claim
    return replace(claim, outcome=UNRESOLVED, note="; ".join(filter(None, [claim.note, note])))


def beyond_paper(claim: Claim) -> Claim:
    """The same verdict, marked as not one of the paper's claims (e.g. an out-of-domain contrast beside the paper's
    setting): it stays in its notebook's claim file and in the summary, but the one-screen answer tallies it with the
    claims beyond the paper instead of counting it for the paper's claims its notebook answers."""
    return replace(claim, paper=False)


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


#: what a claim file of ``make rehearsal`` says of itself (``run_scale: rehearsal``)
REHEARSAL_NOTE = (
    "rehearsal on generated data: make rehearsal ran the paper scale's code path at tiny sizes on generated data "
    "and random weights; these verdicts are not results"
)


def report(
    claims: Sequence[Claim],
    notebook: str,
    params: Mapping[str, Any],
    results_dir: str | Path,
    *,
    data: Mapping[str, str] | None = None,
    preprocessing: Mapping[str, Any] | None = None,
    paper_claims: Sequence[int] | None = None,
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

    ``paper_claims``: the numbers of the paper's claims (docs/PAPER.md §3, :data:`PAPER_CLAIMS`) the notebook
    answers, written into the file for :func:`summarize`; by default the notebook's entry in :data:`NOTEBOOK_CLAIMS`
    (empty: beyond the paper).

    Raises:
        ValueError: a claim that does not hold has no note (every rule writes one; a :class:`Claim` built by hand
            must say why), a claim names data that ``data`` does not describe, or ``paper_claims`` names a claim the
            paper does not make.
    """
    claims = list(claims)
    silent = [c.statement for c in claims if c.outcome == FAILS and not c.note.strip()]
    if silent:
        raise ValueError(f"claims that do not hold must say why: give {silent} a note (the rules write one)")
    unknown = sorted({c.data for c in claims if c.data} - set(data or {}))
    if unknown:
        raise ValueError(f"claims name data {unknown} that `data` does not describe; pass data={{label: description}}")
    answered = NOTEBOOK_CLAIMS.get(notebook, ()) if paper_claims is None else tuple(paper_claims)
    if any(isinstance(n, bool) or n not in PAPER_CLAIMS for n in answered):
        raise ValueError(
            f"paper_claims={list(answered)}: the paper's claims are numbered {min(PAPER_CLAIMS)}-{max(PAPER_CLAIMS)} "
            "(docs/PAPER.md §3); pass [] for a notebook beyond the paper"
        )
    path = resolve_output_dir(results_dir) / "claims" / f"{notebook}.json"
    payload = {
        "notebook": notebook,
        "paper_claims": [int(n) for n in answered],
        "claims": [_round(_plain(asdict(c))) for c in claims],
        "data": dict(data or {}),
        "parameters": _plain(dict(params)),
        "preprocessing": _preprocessing(preprocessing),
        "verdict_rule": NOISE_RULE,
        "provenance": provenance(timestamp=False),
    }
    if params.get("run_scale") == "rehearsal":  # make rehearsal (repalign.run.rehearsal): generated data, not results
        payload["rehearsal"] = REHEARSAL_NOTE
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


# ---------------------------------------------------------------------------------------------------------------
# the summary: the one-screen answer to the paper's claims, then every verdict
#: how a paper claim's row turns the verdicts of the notebooks that answer it into one outcome (SUMMARY.md, README)
ANSWER_RULE = (
    "A claim **holds** when every verdict of the notebooks that answer it holds, **does not hold** when any of them "
    "does not, and otherwise holds **partly** (k of its n verdicts hold, the rest are indistinguishable from seed "
    "noise; **unresolved** when none holds); a notebook's verdicts count for every claim it answers."
)
#: the comment lines around the README's generated answer, rewritten by ``summarize --readme`` (make replicate)
README_MARKERS = (
    "<!-- answer: generated from results/claims/*.json by make replicate (python -m repalign.run.claims summarize "
    "--readme README.md); do not edit by hand -->",
    "<!-- answer: end -->",
)
#: the kinds of data a description names (:func:`data_kinds`), in the order the answer lists them
DATA_KINDS = ("real", "stand-in", "analogue", "generated")
_DATA_SET = re.compile(r"(?:^|; |: )(?P<title>[^:;]+?): (?P<kind>real|generated)\b")
_STAND_IN = re.compile(r"stand-in for (?P<what>[^;]+)")
_ANALOGUE = re.compile(r"\((?P<what>[^()]*?) analogue\)")
_REASON_CHARS = 160  # a reason in the answer's table: one line


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _clip(text: str, limit: int = _REASON_CHARS) -> str:
    """``text`` on one line, cut at a word before ``limit`` characters with an ellipsis."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: text.rfind(" ", 0, limit)].rstrip(",;:") + " …"


def _plain_name(text: str) -> str:
    """A data set's name without its parenthesised and quoted parts: ``Fashion-MNIST domain 'amazon' (Office-31
    analogue)`` → ``Fashion-MNIST domain``."""
    return " ".join(re.sub(r"\([^()]*\)|'[^']*'", " ", text).split())


def data_kinds(description: str) -> list[tuple[str, str]]:
    """What a data description (:meth:`repalign.data.DatasetInfo.describe`, one or several joined by ``; ``) says
    its data sets are: one (kind, name) per data set, kind one of :data:`DATA_KINDS`.

    ``"MNIST: real, …"`` → ``("real", "MNIST")``; ``"Chicago ridership: real, …; stand-in for UCI CT Position"`` →
    ``("stand-in", "Chicago ridership for UCI CT Position")``; a title saying ``(Office-31 analogue)`` →
    ``("analogue", "Fashion-MNIST domain for Office-31")``; ``"peaks: generated (…)"`` → ``("generated", "peaks")``.
    """
    found = list(_DATA_SET.finditer(description))
    kinds = []
    ends = [m.start() for m in found[1:]] + [len(description)]
    for m, end in zip(found, ends[: len(found)], strict=True):
        segment = description[m.end() : end]
        title, stand_in, analogue = m["title"].strip(), _STAND_IN.search(segment), _ANALOGUE.search(m["title"])
        name = _plain_name(title)
        if analogue:
            kinds.append(("analogue", f"{name} for {_plain_name(analogue['what'])}"))
        elif stand_in:
            kind = "generated" if m["kind"] == "generated" else "stand-in"
            kinds.append((kind, f"{name} for {_plain_name(stand_in['what'])}"))
        else:
            kinds.append((m["kind"], name))
    return kinds


def _data_cell(descriptions: Iterable[str]) -> str:
    """The data a paper claim's verdicts ran on, by kind: ``real: MNIST, Fashion-MNIST; stand-in: …``."""
    names: dict[str, list[str]] = {kind: [] for kind in DATA_KINDS}
    for description in descriptions:
        for kind, name in data_kinds(description):
            if name not in names[kind]:
                names[kind].append(name)
    return "; ".join(f"{kind}: {', '.join(names[kind])}" for kind in DATA_KINDS if names[kind]) or "not recorded"


def claim_files(results_dir: str | Path) -> list[dict[str, Any]]:
    """Every claim file under ``results_dir`` (``*.json`` from :func:`report`), in the order of their names."""
    return [json.loads(f.read_text(encoding="utf-8")) for f in sorted(Path(results_dir).glob("*.json"))]


def answered_claims(record: Mapping[str, Any]) -> tuple[int, ...]:
    """The paper's claims a claim file answers: its ``paper_claims`` (:func:`report`), or for a file written before
    that field, its notebook's entry in :data:`NOTEBOOK_CLAIMS`. Empty: beyond the paper."""
    if "paper_claims" in record:
        return tuple(record["paper_claims"])
    return NOTEBOOK_CLAIMS.get(record["notebook"], ())


def _outcome(c: Mapping[str, Any]) -> str:
    return c.get("outcome", HOLDS if c.get("holds") else FAILS)


def _for_paper(record: Mapping[str, Any], c: Mapping[str, Any]) -> bool:
    """Whether a verdict counts for the paper's claims: its notebook answers some, and it is not marked
    :func:`beyond_paper`."""
    return bool(answered_claims(record)) and c.get("paper", True)


def _statement(c: Mapping[str, Any]) -> str:
    """A verdict's statement led by its data label, unless it already starts with it."""
    label, statement = c.get("data", ""), c["statement"]
    return f"{label}: {statement}" if label and not statement.startswith(label) else statement


def row_outcome(outcomes: Sequence[str]) -> str:
    """One paper claim's outcome from the outcomes of its verdicts, by :data:`ANSWER_RULE`: ``holds``, ``does not
    hold``, ``partly (k of n)``, ``unresolved`` or, with no verdict, ``not run``."""
    n, k = len(outcomes), sum(o == HOLDS for o in outcomes)
    if n == 0:
        return "not run"
    if FAILS in outcomes:
        return FAILS
    return HOLDS if k == n else f"partly ({k} of {n})" if k else "unresolved"


def _why_cell(stem: str, verdicts: Sequence[Mapping[str, Any]]) -> str:
    """The first verdict that keeps a claim from holding, with its note, and how many more there are."""
    c = verdicts[0]
    note = _clip(c.get("note") or "no reason in its claim file")
    more = f" (and {len(verdicts) - 1} more)" if len(verdicts) > 1 else ""
    return f"{stem[:2]} · {c['statement']} — {note}{more}"


def _scale(records: Sequence[Mapping[str, Any]]) -> str:
    scales = sorted({str(d.get("parameters", {}).get("run_scale", "")) for d in records} - {""})
    return f"{' and '.join(scales)} scale" if scales else "this scale"


def answer(records: Sequence[Mapping[str, Any]], *, paper_md: str = "docs/PAPER.md") -> str:
    """The one-screen answer: :data:`ANSWER_RULE`, then one row per paper claim (:data:`PAPER_CLAIMS`) with the
    notebooks that answer it, its outcome, the counts of its verdicts, the data they ran on and, unless it holds,
    the first verdict that keeps it from holding with its note; then the tally of the claims beyond the paper.

    ``records``: claim files as :func:`report` writes them (read by :func:`summarize`); ``paper_md``: the link to
    docs/PAPER.md from where the text goes.
    """
    header = (
        f"| the paper's claim ([docs/PAPER.md]({paper_md}) §3) and its notebooks | outcome ({_scale(records)}) | "
        "verdicts: hold · do not hold · unresolved | data | why not (the first verdict that keeps it from holding) |"
    )
    lines = [ANSWER_RULE, "", header, "|---|---|---|---|---|"]
    for n, title in PAPER_CLAIMS.items():
        mine = [d for d in records if n in answered_claims(d)]
        verdicts = [(d["notebook"], c, d.get("data", {})) for d in mine for c in d["claims"] if _for_paper(d, c)]
        outcomes = [_outcome(c) for _, c, _ in verdicts]
        outcome = row_outcome(outcomes)
        against = FAILS if outcome == FAILS else UNRESOLVED
        blocking = [(stem, c) for stem, c, _ in verdicts if outcome != HOLDS and _outcome(c) == against]
        why = _why_cell(blocking[0][0], [c for _, c in blocking]) if blocking else ""
        data = _data_cell(described[c["data"]] for _, c, described in verdicts if c.get("data") in described)
        counts = " · ".join(str(outcomes.count(o)) for o in OUTCOMES)
        shown = f"**{outcome}**" if outcome in (HOLDS, FAILS) else outcome
        stems = ", ".join(d["notebook"][:2] for d in mine) or "no notebook"
        row = [f"[{n}]({paper_md}#claim-{n}) {title} ({stems})", shown, counts, data, why]
        lines.append("| " + " | ".join(_cell(x) for x in row) + " |")
    beyond = {d["notebook"]: [_outcome(c) for c in d["claims"] if not _for_paper(d, c)] for d in records}
    answering = {d["notebook"] for d in records if answered_claims(d)}
    if any(beyond.values()):
        stems = [d["notebook"] for d in records if beyond[d["notebook"]]]
        marked = [stem[:2] for stem in stems if stem in answering]
        sources = [stem for stem in stems if stem not in answering]
        if marked:
            listed = marked[0] if len(marked) == 1 else f"{', '.join(marked[:-1])} and {marked[-1]}"
            sources.append(f"the verdicts {listed} mark as beyond the paper")
        outcomes = [o for found in beyond.values() for o in found]
        lines += ["", f"Beyond the paper ({'; '.join(sources)}), tallied apart: {_tally(outcomes)}."]
    return "\n".join(lines) + "\n"


def _tally(outcomes: Sequence[str]) -> str:
    return (
        f"{len(outcomes)} verdict{'s' if len(outcomes) != 1 else ''}, {outcomes.count(HOLDS)} hold, {outcomes.count(FAILS)} do not hold, "
        f"{outcomes.count(UNRESOLVED)} are indistinguishable from seed noise"
    )


def with_answer(readme: str, block: str) -> str:
    """``readme`` with the text between its :data:`README_MARKERS` replaced by ``block`` (from :func:`answer`).

    Raises:
        ValueError: the markers are not there exactly once each, in order.
    """
    begin, end = README_MARKERS
    if readme.count(begin) != 1 or readme.count(end) != 1 or readme.index(begin) > readme.index(end):
        raise ValueError(
            f"the README needs the answer's markers once each, in order, on lines of their own:\n{begin}\n{end}"
        )
    head, rest = readme.split(begin, 1)
    return f"{head}{begin}\n\n{block}\n{end}{rest.split(end, 1)[1]}"


def _link(target: Path, out: str | Path | None) -> str:
    """``target`` (in the checkout) as a relative link from the folder of ``out``, or as the checkout names it when
    ``out`` lies outside the checkout."""
    root = repo_root()
    if root is None or out is None or not Path(out).resolve().is_relative_to(root.resolve()):
        return target.as_posix()
    return Path(os.path.relpath(root.resolve() / target, Path(out).resolve().parent)).as_posix()


def summarize(results_dir: str | Path, out: str | Path | None = None, *, readme: str | Path | None = None) -> str:
    """One Markdown page of every claim verdict found under ``results_dir`` (``*.json`` from :func:`report`): the
    one-screen answer to the paper's claims (:func:`answer`), then per notebook the data it used and one row per
    verdict with its outcome, statistic and evidence. Written to ``out`` when given; with ``readme``, the answer
    also replaces the text between that file's :data:`README_MARKERS` (the file is rewritten only when it changes).
    The same claim files give the same bytes."""
    results_dir = Path(results_dir)
    records = claim_files(results_dir)
    paper = Path("docs/PAPER.md")
    head = [
        "# Claim verdicts",
        "",
        f"Which of the paper's claims reproduce, from the {len(records)} claim file(s) in `{results_dir}`.",
        "",
        answer(records, paper_md=_link(paper, out)).rstrip("\n"),
        "",
        "## Every verdict",
        "",
        f"Rule: {NOISE_RULE}.",
        "",
        f"The paper's claims: {_tally([_outcome(c) for d in records for c in d['claims'] if _for_paper(d, c)])}; "
        f"beyond the paper: {_tally([_outcome(c) for d in records for c in d['claims'] if not _for_paper(d, c)])}.",
    ]
    body = []
    for d in records:
        answered = answered_claims(d)
        which = f"the paper's claim{'s' if len(answered) > 1 else ''} {' and '.join(map(str, answered))}"
        body += ["", f"### {d['notebook']} ({which if answered else 'beyond the paper'})", ""]
        body += [f"- data **{label}**: {desc}" for label, desc in d.get("data", {}).items()]
        body += ["", "| claim | outcome | statistic | evidence |", "|---|---|---|---|"]
        for c in d.get("claims", []):
            outcome = _outcome(c)
            ev = "; ".join(f"{k} = {_fmt(v, 3)}" for k, v in c.get("evidence", {}).items())
            if c.get("note"):
                ev = f"{ev} (note: {c['note']})" if ev else f"note: {c['note']}"
            shown = outcome if outcome == HOLDS else f"**{outcome}**"
            statement = _statement(c) if _for_paper(d, c) or not answered else f"(beyond the paper) {_statement(c)}"
            body.append(f"| {_cell(statement)} | {shown} | {_cell(c.get('statistic', ''))} | {_cell(ev)} |")
    text = "\n".join(head + body) + "\n"
    if out is not None:
        atomic_write_text(out, text)
    if readme is not None:
        old = Path(readme).read_text(encoding="utf-8")
        new = with_answer(old, answer(records, paper_md=_link(paper, readme)))
        if new != old:
            atomic_write_text(readme, new)
    return text


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repalign.run.claims summarize [--results DIR] [--out FILE] [--readme FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m repalign.run.claims")
    sub = parser.add_subparsers(dest="command", required=True)
    s = sub.add_parser("summarize", help="write a Markdown page of every claim verdict")
    s.add_argument("--results", default="results/claims")
    s.add_argument("--out", default="results/SUMMARY.md")
    s.add_argument(
        "--readme", help="also write the answer between this file's answer markers (make replicate: README.md)"
    )
    args = parser.parse_args(argv)
    if args.command == "summarize":
        text = summarize(args.results, args.out, readme=args.readme)
        also = f" and the answer in {args.readme}" if args.readme else ""
        print(f"wrote {args.out} ({text.count(chr(10))} lines){also}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
