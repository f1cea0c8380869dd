"""The verdict rules: three outcomes, seed noise respected, and claim files that say what made them."""

from __future__ import annotations

import json

import numpy as np
import pytest

import repalign as ra
from repalign.run import claims
from repalign.run.claims import FAILS, HOLDS, UNRESOLVED


# ------------------------------------------------------------------------------------------------ the noise rule
def test_compare_holds_only_when_every_seed_agrees_and_beyond_two_standard_errors():
    a = np.array([0.70, 0.71, 0.69, 0.70, 0.72])
    assert claims.compare(a, 0.18).outcome == HOLDS
    assert claims.compare(0.18, a).outcome == FAILS
    # one seed the other way: unresolved, whatever the mean says
    c = claims.compare([0.5, 0.6, 0.7, 0.4, 0.8], [0.45, 0.55, 0.65, 0.45, 0.75])
    assert c.outcome == UNRESOLVED and "disagree" in c.reason
    # every seed agrees but the mean is within two standard errors
    d = np.array([0.001, 0.002, 0.5])
    c = claims.compare(d, 0.0)
    assert c.outcome == UNRESOLVED and c.difference > 0 and "standard errors" in c.reason


def test_compare_respects_the_resolution_and_the_relu_ceiling_case():
    # 0.692 < 0.694 < 0.697 with tiny noise: every seed agrees and > 2 se, but below the AUC resolution
    a = np.array([0.6970, 0.6972, 0.6968])
    b = np.array([0.6940, 0.6941, 0.6939])
    assert claims.compare(a, b).outcome == HOLDS  # no resolution: a real but tiny difference
    c = claims.compare(a, b, resolution=claims.AUC_RESOLUTION)
    assert c.outcome == UNRESOLVED and "resolution" in c.reason
    v = claims.more("deeper more aligned", a, b, ceiling=claims.RELU_CEILING_AUC)
    assert v.outcome == UNRESOLVED and "ceiling" in v.note


def test_compare_one_seed_is_never_resolved_and_bad_input_is_named():
    assert claims.compare([0.9], [0.1]).outcome == UNRESOLVED
    with pytest.raises(ValueError, match="non-finite"):
        claims.compare([1.0, np.inf], [0.0, 0.0])
    with pytest.raises(ValueError):
        claims.compare([1.0, 2.0, 3.0], [0.0, 1.0])


def test_unpaired_compare_needs_separation():
    assert claims.compare([0.8, 0.82, 0.81], [0.5, 0.52, 0.49], paired=False).outcome == HOLDS
    assert claims.compare([0.8, 0.82, 0.51], [0.5, 0.52, 0.49], paired=False).outcome == UNRESOLVED


def test_combine():
    assert claims.combine([HOLDS, HOLDS]) == HOLDS
    assert claims.combine([HOLDS, UNRESOLVED]) == UNRESOLVED
    assert claims.combine([HOLDS, UNRESOLVED, FAILS]) == FAILS
    with pytest.raises(ValueError):
        claims.combine([])


# ------------------------------------------------------------------------------------------------ rules
def test_increasing_names_the_step_that_goes_down_or_cannot_be_told_apart():
    rng = np.random.default_rng(0)
    base = np.array([0.18, 0.30, 0.45, 0.60])
    v = base + rng.normal(0, 0.003, size=(5, 4))
    assert claims.increasing("up", v, ["input", "h1", "h2", "h3"]).outcome == HOLDS
    down = v.copy()
    down[:, 2] = down[:, 1] - 0.05
    c = claims.increasing("up", down, ["input", "h1", "h2", "h3"])
    assert c.outcome == FAILS and "does not hold" in c.evidence["step h1 -> h2"]
    flat = v.copy()
    flat[:, 3] = flat[:, 2] + 0.002
    assert claims.increasing("up", flat, ["input", "h1", "h2", "h3"]).outcome == UNRESOLVED
    with pytest.raises(ValueError, match="seeds"):
        claims.increasing("up", v, ["a", "b"])


def test_all_more_is_every_configuration():
    a = {"relu": [0.7, 0.71, 0.69], "tanh": [0.9, 0.91, 0.92]}
    b = {"relu": [0.2, 0.2, 0.2], "tanh": [0.2, 0.2, 0.2]}
    assert claims.all_more("emerges", a, b).outcome == HOLDS
    b["tanh"] = [0.95, 0.95, 0.95]
    c = claims.all_more("emerges", a, b)
    assert c.outcome == FAILS and "not_holding_tanh" in c.evidence
    with pytest.raises(ValueError, match="different configurations"):
        claims.all_more("x", a, {"relu": [0.1, 0.1, 0.1]})


def test_ordered_agrees_disagrees_or_cannot_tell():
    auc = {"pixels": [0.18] * 3, "random": [0.16, 0.161, 0.159], "hidden": [0.69, 0.70, 0.70]}
    steps = {"pixels": [30, 31, 30], "random": [42, 43, 44], "hidden": [1, 1, 2]}
    c = claims.ordered("more aligned -> fewer steps", auc, steps, summaries=("AUC", "steps"))
    assert c.outcome == HOLDS and len(c.evidence["pairs_agreeing"]) == 3
    steps["random"] = [20, 21, 22]  # random (less aligned than pixels) is faster
    c = claims.ordered("more aligned -> fewer steps", auc, steps, summaries=("AUC", "steps"))
    assert c.outcome == FAILS and c.evidence["pairs_disagreeing"] == ["pixels vs random"]
    steps["random"] = [29, 31, 32]  # cannot be told from pixels
    assert claims.ordered("x", auc, steps).outcome == UNRESOLVED


def test_dominates_with_a_tolerance():
    a = np.array([[1.0, 0.8, 0.5], [1.0, 0.7, 0.4]])
    b = np.array([[1.0, 0.805, 0.3], [1.0, 0.9, 0.3]])
    assert claims.dominates(a, b, tol=0.01).tolist() == [True, False]
    with pytest.raises(ValueError, match="shapes"):
        claims.dominates(a, b[:, :2])


def test_a_claim_rejects_an_unknown_outcome():
    with pytest.raises(ValueError, match="outcome"):
        claims.Claim("x", "True")


# ------------------------------------------------------------------------------------------------ claim files
DEFAULT_PREPROCESSING = {"bias": True, "normalize": True, "center_targets": True}


def _measure_once() -> None:
    """What a notebook does before its verdicts: snapshot (which resets the measure's record of preprocessings), then
    one spectrum with the measure's defaults. Without it a claim file's preprocessing would depend on which tests ran
    before in this process."""
    claims.snapshot({})
    ra.spectrum(np.eye(4, 2), [0.0, 1.0, 0.0, 1.0])


def test_report_and_summary(tmp_path, capsys):
    _measure_once()
    v = [
        claims.more("A more aligned than B", [0.7, 0.71, 0.72], [0.2, 0.2, 0.2], names=("A", "B"), data="digits"),
        claims.check("C holds", False, note="small n", n=np.int64(10)),
        claims.more("D more aligned than E", [0.5, 0.6, 0.4], [0.5, 0.5, 0.5]),
    ]
    assert claims.report(v, "99_test", {"seeds": [0, 1, 2]}, tmp_path, data={"digits": "digits: real"}) is None
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "claim: A more aligned than B ... holds",
        "claim: C holds ... does not hold",
        "claim: D more aligned than E ... indistinguishable from seed noise",
    ]
    d = json.loads((tmp_path / "claims" / "99_test.json").read_text())
    assert d["parameters"] == {"seeds": [0, 1, 2]} and d["claims"][1]["outcome"] == FAILS
    assert d["data"] == {"digits": "digits: real"} and d["preprocessing"] == DEFAULT_PREPROCESSING
    assert d["provenance"]["repalign"] == ra.__version__ and "seed" in d["verdict_rule"]
    text = claims.summarize(tmp_path / "claims", tmp_path / "SUMMARY.md")
    assert "1 hold, 1 do not hold, 1 are indistinguishable" in text
    assert "- data **digits**: digits: real" in text and "| digits: A more aligned than B | holds |" in text
    assert "0.710 ± 0.008" in claims.evidence_table(v)
    with pytest.raises(ValueError, match="describe"):
        claims.report(v, "99_test", {}, tmp_path)  # a claim names data the report does not describe


def test_report_refuses_a_run_without_a_spectrum_or_with_another_declared_preprocessing(tmp_path):
    v = [claims.check("C holds", True)]
    claims.snapshot({})
    with pytest.raises(ValueError, match="recorded no spectrum"):
        claims.report(v, "99_test", {}, tmp_path, echo=False)
    ra.spectrum(np.eye(4, 2), [0.0, 1.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="was declared"):
        claims.report(v, "99_test", {}, tmp_path, preprocessing={**DEFAULT_PREPROCESSING, "bias": False}, echo=False)
    claims.report(v, "99_test", {}, tmp_path, preprocessing=DEFAULT_PREPROCESSING, echo=False)
    assert json.loads((tmp_path / "claims" / "99_test.json").read_text())["preprocessing"] == DEFAULT_PREPROCESSING


def test_snapshot_keeps_plain_parameters_only():
    ns = {"seeds": [0], "lr": 1e-3, "name": "x", "np": np, "_hidden": 1, "In": [], "f": len, "none": None}
    assert claims.snapshot(ns) == {"seeds": [0], "lr": 1e-3, "name": "x", "none": None}


def test_provided_makes_a_verdict_without_its_precondition_unresolved():
    v = claims.more("trained above a misaligned input", [0.5, 0.51, 0.52], [0.0, 0.0, 0.0])
    assert claims.provided(v, True, "n/a") is v
    u = claims.provided(v, False, "the input was not made less aligned")
    assert u.outcome == UNRESOLVED and "not made less aligned" in u.note and u.evidence == v.evidence


def test_ordered_each_combines_the_orders():
    auc = {"pixels": [0.18] * 3, "hidden": [0.69, 0.70, 0.70]}
    fast = {"pixels": [30, 31, 30], "hidden": [1, 1, 2]}
    tie = {"pixels": [301, 301, 301], "hidden": [301, 301, 301]}  # neither reaches the level: a tie
    c = claims.ordered_each("faster", auc, {"steps to 50%": fast, "steps to 20%": fast})
    assert c.outcome == HOLDS and c.evidence["outcome at steps to 20%"] == HOLDS
    c = claims.ordered_each("faster", auc, {"steps to 50%": fast, "steps to 5%": tie})
    assert c.outcome == UNRESOLVED and "hidden vs pixels" in c.evidence["outcome at steps to 5%"]


def test_rank_correlated_per_run_against_zero():
    rng = np.random.default_rng(0)
    x = [rng.normal(size=30) for _ in range(4)]
    up = [(a, a + 0.3 * rng.normal(size=30)) for a in x]
    c = claims.rank_correlated("y rises with x", up, summaries=("AUC", "gain"))
    assert c.outcome == HOLDS and c.evidence["kendall_tau"][0] > 0.5 and len(c.evidence["tau_by_run"]) == 4
    assert claims.rank_correlated("y rises with x", [(a, -b) for a, b in up]).outcome == FAILS
    noise = [(a, rng.normal(size=30)) for a in x]
    assert claims.rank_correlated("y rises with x", noise).outcome == UNRESOLVED
    with pytest.raises(ValueError, match="undefined"):
        claims.rank_correlated("x", [(x[0], np.ones(30)), (x[1], x[1])])


def test_report_writes_the_same_bytes_when_results_differ_in_their_last_digits(tmp_path):
    """No wall-clock time in claim files, and evidence rounded to 6 significant figures: two runs whose numbers
    differ by float64 rounding (~1e-15 relative, e.g. another summation order) write identical files."""
    rng = np.random.default_rng(0)
    a, b = 0.6 + 0.05 * rng.random(5), 0.2 + 0.05 * rng.random(5)
    written = []
    for k, eps in enumerate((0.0, 3e-15)):
        _measure_once()
        v = [claims.more("A more aligned than B", a * (1 + eps), b * (1 - eps), names=("A", "B"), auc_a=a.mean())]
        claims.report(v, "99_test", {"seeds": [0, 1]}, tmp_path / str(k), echo=False)
        written.append((tmp_path / str(k) / "claims" / "99_test.json").read_bytes())
    assert written[0] == written[1]
    d = json.loads(written[0])
    assert "created_utc" not in d["provenance"] and d["provenance"]["numpy"] == np.__version__
    assert d["claims"][0]["evidence"]["auc_a"] == float(f"{a.mean():.6g}")
