r"""The peaks task family (Caruana 1997, *Multitask Learning*, §3.3): 120 related regression tasks on six inputs.

Inputs are six variables ``A``-``F`` uniform on [0, 1] (drawn by ``data.load("peaks")``); a task is an ordered
triple of distinct variables ``(a, b, c)`` and its target is

.. math:: y = \begin{cases} x_b & x_a > 1/2 \\ x_c & \text{otherwise} \end{cases}

("IF A > 0.5 THEN B ELSE C"), 6 · 5 · 4 = 120 tasks, numbered ``P001``-``P120`` in lexicographic order. Two tasks
are related by the variables (or the roles) they share, 0 to 3 (:func:`peaks_relatedness`), which is what the
paper's transfer experiment varies. Also here: the tasks grouped by relatedness to a source task, a stratified
draw of target tasks, and :func:`peaks_encode`, a fixed unit-wise encoding of the inputs.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = [
    "PEAKS_VARIABLES",
    "peaks_tasks",
    "peaks_task",
    "peaks_task_id",
    "peaks_task_name",
    "peaks_targets",
    "peaks_relatedness",
    "peaks_tasks_by_relatedness",
    "peaks_encode",
    "peaks_stratified_targets",
]

# --------------------------------------------------------------------------------------------------------------
# The peaks tasks (Caruana 1997, Multitask Learning, §3.3); the generator is data.load("peaks")
# --------------------------------------------------------------------------------------------------------------
#: The six peaks input variables, in input-column order.
PEAKS_VARIABLES = "ABCDEF"


@functools.lru_cache(maxsize=1)
def peaks_tasks() -> tuple[tuple[int, int, int], ...]:
    r"""All 120 peaks tasks ``(a, b, c)``, distinct variable indices in 0..5, in lexicographic order.

    The order is that of ``itertools.permutations("ABCDEF", 3)``: index ``i`` is task ``P{i+1:03d}``
    (P001 = A, B, C; P120 = F, E, D).

    .. math:: y_{(a,b,c)}(x) = x_b \text{ if } x_a > 0.5 \text{ else } x_c
    """
    return tuple(itertools.permutations(range(6), 3))


def peaks_task(task: int | str | Sequence[int | str]) -> tuple[int, int, int]:
    """Normalise a task spec to ``(a, b, c)``.

    Accepted: an index 0..119 (position in :func:`peaks_tasks`), a task number ``"P001"`` .. ``"P120"`` (numbered
    from 1), letters ``"ABC"`` or ``("A", "B", "C")``, or variable indices ``(0, 1, 2)``.
    """
    if isinstance(task, (int, np.integer)):
        if not 0 <= int(task) < 120:
            raise ValueError(f"peaks task index must be in 0..119, got {task}")
        return peaks_tasks()[int(task)]
    if isinstance(task, str) and len(task) == 4 and task[0] in "Pp" and task[1:].isdigit():
        number = int(task[1:])
        if not 1 <= number <= 120:
            raise ValueError(f"peaks task numbers run from P001 to P120, got {task!r}")
        return peaks_tasks()[number - 1]
    items = list(task)
    idx = [
        PEAKS_VARIABLES.index(v.upper()) if isinstance(v, str) and v.upper() in PEAKS_VARIABLES else v for v in items
    ]
    if len(idx) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v < 6 for v in idx) or len(set(idx)) != 3:
        raise ValueError(f"a peaks task is three distinct variables of A-F (or 0-5), got {task!r}")
    return (int(idx[0]), int(idx[1]), int(idx[2]))


def peaks_task_id(task: int | str | Sequence[int | str]) -> str:
    """The task's number, ``"P001"`` (A, B, C) .. ``"P120"`` (F, E, D)."""
    return f"P{peaks_tasks().index(peaks_task(task)) + 1:03d}"


def peaks_task_name(task: int | str | Sequence[int | str]) -> str:
    """``"IF A > 0.5 THEN B ELSE C"`` for a task spec."""
    a, b, c = (PEAKS_VARIABLES[i] for i in peaks_task(task))
    return f"IF {a} > 0.5 THEN {b} ELSE {c}"


def peaks_targets(x: np.ndarray, task: int | str | Sequence[int | str] | None = None) -> np.ndarray:
    """Targets of one peaks task, or of all 120.

    Shape:
        x: (n, 6). Returns (n,) float64 for one task, (n, 120) for ``task=None`` (column j = task j).
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 6:
        raise ValueError(f"peaks inputs must be (n, 6), got {x.shape}")
    tasks = peaks_tasks() if task is None else (peaks_task(task),)
    a, b, c = (np.array(v) for v in zip(*tasks, strict=True))
    y = np.where(x[:, a] > 0.5, x[:, b], x[:, c])
    return y if task is None else y[:, 0]


def peaks_relatedness(
    t1: int | str | Sequence[int | str], t2: int | str | Sequence[int | str], kind: str = "shared"
) -> int:
    r"""How related two peaks tasks are.

    ``kind="shared"``: number of input variables the tasks share, :math:`|\{a,b,c\} \cap \{a',b',c'\}|`
    in 0..3 (Caruana 1997). ``kind="roles"``: number of positions with the same variable (the test, the THEN
    or the ELSE branch), 0..3; 3 only for the same task. ``kind="score"``: the two added, 0..6 (6 only for the
    same task): shared variables first, and among those, how many keep their role (P001 = ABC and P014 = AEC
    share two variables in the same roles: score 4; ABC and CBA share three, one in the same role: score 4).
    """
    a, b = peaks_task(t1), peaks_task(t2)
    if kind == "shared":
        return len(set(a) & set(b))
    if kind == "roles":
        return sum(u == v for u, v in zip(a, b, strict=True))
    if kind == "score":
        return len(set(a) & set(b)) + sum(u == v for u, v in zip(a, b, strict=True))
    raise ValueError(f"kind must be 'shared', 'roles' or 'score', got {kind!r}")


def peaks_tasks_by_relatedness(source: Any) -> dict[int, list[tuple[int, int, int]]]:
    """The 119 other peaks tasks grouped by how many variables they share with ``source`` (0..3)."""
    s = peaks_task(source)
    out: dict[int, list[tuple[int, int, int]]] = {k: [] for k in range(4)}
    for t in peaks_tasks():
        if t != s:
            out[peaks_relatedness(s, t)].append(t)
    return out


def peaks_encode(x: np.ndarray, units: int = 10) -> np.ndarray:
    r"""Code each peaks variable with ``units`` input units (Caruana 1997 uses 10 per variable; his exact code is
    not reproduced here): Gaussian bumps at the centres :math:`c_k = (k + \tfrac12)/K`, width :math:`1/K`,

    .. math::  z_{j,k} = \exp\!\big(-\tfrac12 (x_j - c_k)^2 K^2\big), \qquad k = 0..K-1,

    a smooth "one-hot" of where the value lies. ``units=1`` returns the raw values unchanged.

    Shape: x (n, 6) in [0, 1] → (n, 6·units) float32, variable j's units in columns j·K .. j·K + K − 1.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[1] != 6:
        raise ValueError(f"peaks inputs must be (n, 6), got {x.shape}")
    units = int(units)
    if units < 1:
        raise ValueError(f"units must be >= 1, got {units}")
    if units == 1:
        return x.astype(np.float32)
    centres = (np.arange(units) + 0.5) / units
    z = np.exp(-0.5 * ((x[:, :, None] - centres) * units) ** 2)
    return z.reshape(x.shape[0], 6 * units).astype(np.float32)


def peaks_stratified_targets(source: Any, per_group: int, *, seed: int = 0) -> list[int]:
    """A seeded sample of target task indices (0..119), ``per_group`` from each relatedness group to ``source``.

    Groups are the shared-variable counts 0..3 (:func:`peaks_tasks_by_relatedness`; the source itself is left
    out); a group smaller than ``per_group`` is taken whole. Returns the indices sorted by group, then index.
    """
    if per_group < 0:
        raise ValueError(f"per_group must be >= 0, got {per_group}")
    rng = np.random.default_rng([int(seed), 0x7A5C])
    index = {t: i for i, t in enumerate(peaks_tasks())}
    out: list[int] = []
    for _, group in sorted(peaks_tasks_by_relatedness(source).items()):
        ids = sorted(index[t] for t in group)
        take = rng.choice(len(ids), size=min(per_group, len(ids)), replace=False) if ids else []
        out.extend(sorted(ids[int(k)] for k in take))
    return out
