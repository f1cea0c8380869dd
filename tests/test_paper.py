"""repalign.report.paper: the paper's reported tables are complete and say what docs/PAPER.md says they say; table cells."""

from __future__ import annotations

import pytest

from repalign.report import paper


def test_task_similarity_table_is_the_2x2_design_and_favours_the_similar_source():
    sources, targets = ("ImageNet-Natural", "ImageNet-Artificial"), ("CIFAR10-Natural", "CIFAR10-Artificial")
    assert set(paper.TASK_SIMILARITY) == {(s, t) for s in sources for t in targets}
    for model in paper.TASK_SIMILARITY_MODELS:
        for t in targets:
            same = next(s for s in sources if s.split("-")[1] == t.split("-")[1])
            other = next(s for s in sources if s != same)
            assert paper.TASK_SIMILARITY[(same, t)][model] > paper.TASK_SIMILARITY[(other, t)][model]


def test_negative_transfer_table_has_nine_rows_and_drops_more_with_larger_sources():
    domains = ("amazon", "webcam", "dslr")
    rows = {(None, t) for t in domains} | {(s, t) for s in domains for t in domains if s != t}
    assert set(paper.NEGATIVE_TRANSFER) == rows
    for s, t in rows - {(None, t) for t in domains}:
        assert paper.NEGATIVE_TRANSFER[(s, t)] < paper.NEGATIVE_TRANSFER[(None, t)]
    for t in domains:
        small, large = sorted((s for s in domains if s != t), key=paper.OFFICE31_SIZES.get)
        assert paper.NEGATIVE_TRANSFER[(small, t)] > paper.NEGATIVE_TRANSFER[(large, t)]


def test_side_by_side_joins_rows_and_refuses_a_mismatch():
    text = paper.side_by_side((["a", "b"], [["x", "1"], ["yy", "2"]]), (["c"], [["p"], ["q"]]), titles=("L", "R"))
    lines = text.splitlines()
    assert len(lines) == 1 + 2 + 2 and all(" | " in line for line in lines)
    assert lines[3].startswith("x") and lines[3].rstrip().endswith("p")
    with pytest.raises(ValueError, match="1 rows of ours against 2"):
        paper.side_by_side((["a"], [["x"]]), (["c"], [["p"], ["q"]]))


def test_mean_std_text_scales_both_and_uses_the_population_std():
    assert paper.mean_std_text([0.9, 0.95, 1.0], 100) == "95.0 ± 4.1"
    assert paper.mean_std_text([0.5], 1, 3) == "0.500 ± 0.000"
    assert paper.mean_std_text([1.0, 2.0], digits=2) == "1.50 ± 0.50"  # ddof 0: over the seeds run, not a sample
