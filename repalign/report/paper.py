"""The numbers the paper reports in its tables, for printing beside a notebook's own (docs/PAPER.md §3 items 9, 10).

Imani, Hu & White, *Representation Alignment in Neural Networks*, TMLR 2022 (arXiv 2112.07806), as recorded in
``docs/PAPER.md`` §3: the task-similarity table (the paper's Fig. 15: fine-tuning test accuracy, %, of ResNet18
and T2T-ViT pre-trained on ImageNet-Natural / ImageNet-Artificial and fine-tuned on CIFAR-10-Natural /
CIFAR-10-Artificial) and the negative-transfer table (the paper's Table 1: test accuracy, %, of ResNet18 trained on
an Office-31 target domain after training on a source domain with random labels; "none" = no such training).
These are typed in from the paper, as the paper prints them (``*_TEXT``, the strings a notebook prints; the
numbers are read from them), not computed: nothing in the library checks them except ``tests/test_paper.py``, which
checks that the tables are complete, say what the paper says they say, and carry the very digits of
``docs/PAPER.md`` §3 items 9 and 10. Office-31's domain sizes are :data:`repalign.data.OFFICE31_SIZES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from repalign.data.folders import OFFICE31_SIZES

__all__ = [
    "mean_std_text",
    "TASK_SIMILARITY_TEXT",
    "TASK_SIMILARITY",
    "TASK_SIMILARITY_MODELS",
    "NEGATIVE_TRANSFER_TEXT",
    "NEGATIVE_TRANSFER",
    "OFFICE31_SIZES",
    "side_by_side",
]

#: Fine-tuning test accuracy (%), (pre-trained on, fine-tuned on) -> {model: the number as the paper prints it};
#: the paper's Fig. 15. Print these (a float would add or drop digits the paper does not give: "83.1", not "83.10").
TASK_SIMILARITY_TEXT: dict[tuple[str, str], dict[str, str]] = {
    ("ImageNet-Natural", "CIFAR10-Natural"): {"ResNet18": "94.55", "T2T-ViT": "84.33"},
    ("ImageNet-Artificial", "CIFAR10-Natural"): {"ResNet18": "90.49", "T2T-ViT": "83.1"},
    ("ImageNet-Natural", "CIFAR10-Artificial"): {"ResNet18": "95.7", "T2T-ViT": "91.0"},
    ("ImageNet-Artificial", "CIFAR10-Artificial"): {"ResNet18": "97.14", "T2T-ViT": "92.8"},
}
TASK_SIMILARITY_MODELS = ("ResNet18", "T2T-ViT")

#: Test accuracy (%) of ResNet18 on the target, (source trained on with random labels or None, target) -> the
#: number as the paper prints it; its Table 1.
NEGATIVE_TRANSFER_TEXT: dict[tuple[str | None, str], str] = {
    (None, "dslr"): "88.0",
    (None, "webcam"): "92.5",
    (None, "amazon"): "82.7",
    ("dslr", "webcam"): "70.3",
    ("dslr", "amazon"): "65.6",
    ("webcam", "dslr"): "30.7",
    ("webcam", "amazon"): "47.3",
    ("amazon", "dslr"): "4.7",
    ("amazon", "webcam"): "4.6",
}


def _numbers(table: Mapping[object, object]) -> dict:
    """The same table with every printed number as a float (nested one level for the per-model table)."""
    return {k: _numbers(v) if isinstance(v, Mapping) else float(str(v)) for k, v in table.items()}


#: :data:`TASK_SIMILARITY_TEXT` as numbers, to compute with.
TASK_SIMILARITY: dict[tuple[str, str], dict[str, float]] = _numbers(TASK_SIMILARITY_TEXT)
#: :data:`NEGATIVE_TRANSFER_TEXT` as numbers, to compute with.
NEGATIVE_TRANSFER: dict[tuple[str | None, str], float] = _numbers(NEGATIVE_TRANSFER_TEXT)


def mean_std_text(values: Sequence[float] | np.ndarray, scale: float = 1.0, digits: int = 1) -> str:
    r"""A table cell "mean ± std" of values over seeds, both scaled (e.g. ``scale=100`` for accuracy in %).

    .. math::  s\,\bar v \pm s\,\mathrm{sd}(v), \qquad \mathrm{sd}(v) = \sqrt{\tfrac1k \textstyle\sum_i (v_i - \bar v)^2}

    Shape: values (k,). Returns e.g. ``"94.5 ± 0.3"`` with ``digits`` decimals.
    """
    v = np.asarray(values)
    return f"{scale * v.mean():.{digits}f} ± {scale * v.std():.{digits}f}"


def _lines(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    table = [list(map(str, header))] + [list(map(str, r)) for r in rows]
    widths = [max(len(r[j]) for r in table) for j in range(len(header))]
    lines = [
        "  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in table
    ]
    lines.insert(1, "-" * len(lines[0]))
    return lines


def side_by_side(
    ours: tuple[Sequence[str], Sequence[Sequence[str]]],
    theirs: tuple[Sequence[str], Sequence[Sequence[str]]],
    *,
    titles: tuple[str, str] = ("this run", "the paper"),
    gap: str = "   |   ",
) -> str:
    """Two text tables next to each other, row by row (ours left, the paper's right), each with its title.

    Shape: ``ours`` and ``theirs`` are (header (c,), rows (r, c)) with the same number of rows r; cells are
    strings. Returns the joined lines.
    """
    left, right = _lines(*ours), _lines(*theirs)
    if len(left) != len(right):
        raise ValueError(f"side_by_side: {len(ours[1])} rows of ours against {len(theirs[1])} of the paper's")
    width = len(left[0])
    head = titles[0].ljust(width) + gap + titles[1]
    return "\n".join([head] + [a.ljust(width) + gap + b for a, b in zip(left, right, strict=True)])
