"""repalign.report.paper: the paper's reported tables are complete and say what docs/PAPER.md says they say; table cells."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from repalign.report import paper

PAPER_MD = Path(__file__).resolve().parents[1] / "docs" / "PAPER.md"


def _item(number: int) -> str:
    """The text of docs/PAPER.md §3 item ``number`` (up to the next item or section)."""
    text = PAPER_MD.read_text(encoding="utf-8")
    start = re.search(rf"^ ?{number}\. [^\n]*?\*\*", text, flags=re.M)  # "9. **Title**", perhaps an anchor before
    assert start, f"docs/PAPER.md has no §3 item {number}"
    end = re.search(r"^(?: ?\d+\. [^\n]*?\*\*|#|Beyond the paper)", text[start.end() :], flags=re.M)
    return text[start.start() : start.end() + (end.start() if end else len(text))]


def _rows(number: int) -> list[list[str]]:
    """The body rows of the Markdown table in docs/PAPER.md §3 item ``number``, as lists of cell texts."""
    lines = [line.strip() for line in _item(number).splitlines() if line.strip().startswith("|")]
    return [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:]]  # header and rule left out


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


def test_task_similarity_text_is_docs_paper_md_digit_for_digit():
    rows = _rows(9)
    assert len(rows) == len(paper.TASK_SIMILARITY_TEXT) == 4
    for source, target, *cells in rows:
        key = (source, target.replace("CIFAR-10", "CIFAR10"))
        assert dict(zip(paper.TASK_SIMILARITY_MODELS, cells, strict=True)) == paper.TASK_SIMILARITY_TEXT[key]
    assert paper.TASK_SIMILARITY_TEXT[("ImageNet-Artificial", "CIFAR10-Natural")]["T2T-ViT"] == "83.1"  # not 83.10
    for key, models in paper.TASK_SIMILARITY_TEXT.items():
        assert {m: float(v) for m, v in models.items()} == paper.TASK_SIMILARITY[key]


def test_negative_transfer_text_is_docs_paper_md_digit_for_digit():
    rows = _rows(10)
    assert len(rows) == len(paper.NEGATIVE_TRANSFER_TEXT) == 9
    names = {"none": None, "DSLR": "dslr", "Webcam": "webcam", "Amazon": "amazon"}
    assert {(names[s], names[t]): cell for s, t, cell in rows} == paper.NEGATIVE_TRANSFER_TEXT
    assert {k: float(v) for k, v in paper.NEGATIVE_TRANSFER_TEXT.items()} == paper.NEGATIVE_TRANSFER


def test_office31_sizes_are_the_ones_docs_paper_md_gives():
    sizes = re.search(r"Amazon ([\d,]+), Webcam ([\d,]+) and DSLR ([\d,]+) images", " ".join(_item(10).split()))
    assert sizes, "docs/PAPER.md §3 item 10 no longer states the domain sizes"
    given = dict(zip(("amazon", "webcam", "dslr"), (int(v.replace(",", "")) for v in sizes.groups()), strict=True))
    assert given == paper.OFFICE31_SIZES


# ---------------------------------------------------------------------------------------------------------------
# issue #22: one written-down recipe per phase, the same in the docs and the notebooks' yamls
# ---------------------------------------------------------------------------------------------------------------
ROOT = PAPER_MD.parents[1]


def _yaml(scale: str, stem: str) -> dict:
    from repalign.run.params import load_yaml

    return load_yaml((ROOT / "notebooks" / "params" / scale / f"{stem}.yaml").read_text(encoding="utf-8"))


def _pretrain_office31_row(name: str) -> list[str]:
    """The cells of the row ``name`` of docs/PRETRAIN.md's Office-31 random-label recipe table."""
    text = (ROOT / "docs" / "PRETRAIN.md").read_text(encoding="utf-8")
    rows = [[c.strip() for c in line.strip().strip("|").split("|")] for line in text.splitlines()
            if line.strip().startswith(f"| {name} |")]  # fmt: skip
    assert len(rows) == 1, f"docs/PRETRAIN.md should have one Office-31 recipe row {name!r}, has {len(rows)}"
    return rows[0][1:]


def test_docs_pretrain_office31_recipe_is_notebook_10s_paper_recipe():
    p = _yaml("paper", "10_negative_transfer")
    optimiser, same = _pretrain_office31_row("optimiser")
    assert (
        optimiser == f"Adam, lr {p['lr']:.0e}".replace("e-0", "e-") + f", batch {p['batch_size']}"
        and same == "the same"
    )
    budget, target = _pretrain_office31_row("budget")
    assert f"reaches {p['memorise_accuracy']:.0%}" in budget.replace(" %", "%")
    assert f"every {p['check_every']} epochs" in budget and f"at most {p['max_random_epochs']} epochs" in budget
    assert target == f"{p['target_epochs']} epochs"
    assert f"{p['image_size']} px" in _pretrain_office31_row("images")[0]
    assert f"{1 - p['target_test_size']:.0%} training part ({p['target_test_size']:.0%} to test)" in (
        _pretrain_office31_row("images")[1].replace(" %", "%")
    )
    assert p["start"] == "imagenet" and "`start: imagenet`" in _pretrain_office31_row("start")[0]
    assert "SGD" not in " ".join(_pretrain_office31_row("optimiser"))


def test_notebook_09_writes_its_fine_tuning_rate_down_at_every_scale_below_the_pretraining_rate():
    from repalign.run.params import defaults

    smoke = defaults(ROOT / "notebooks" / "09_task_similarity.ipynb")
    for scale in ("replicate", "paper"):
        given = _yaml(scale, "09_task_similarity")
        assert "finetune_lr" in given, f"notebooks/params/{scale}/09_task_similarity.yaml leaves finetune_lr unsaid"
        assert 0 < given["finetune_lr"] < given.get("lr", smoke["lr"])  # fine-tuning adapts, it does not restart
    replicate = _yaml("replicate", "09_task_similarity")
    assert replicate["n_finetune_per_class"] >= 100  # issue #22: few-shot fine-tuning was dominated by seed noise
