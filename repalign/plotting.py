"""Figures: alignment curves and training curves as mean ± band over seeds, saved as PDF and PNG.

Every figure has labelled axes and a legend, is written atomically and closed after saving, so notebook outputs
stay stable and memory does not grow in long runs.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repalign.utils import atomic_write_bytes

__all__ = ["plot_band", "plot_alignment_curves", "save_figure", "new_figure"]


def new_figure(ncols: int = 1, nrows: int = 1, width: float = 4.2, height: float = 3.2, **kw: Any):
    """A matplotlib figure with a grid of axes (``squeeze=False``: always a 2-D array of axes)."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols, height * nrows), squeeze=False, **kw)
    return fig, axes


def plot_band(
    ax: Any,
    x: np.ndarray,
    ys: np.ndarray,
    label: str | None = None,
    *,
    band: str = "std",
    color: Any = None,
    **kw: Any,
) -> Any:
    """Mean over seeds as a line, with a shaded band (``"std"``: ± one standard deviation, ``"minmax"``).

    Shape: x (t,), ys (seeds, t) or (t,).
    """
    ys = np.atleast_2d(np.asarray(ys, dtype=float))
    mean = ys.mean(axis=0)
    (line,) = ax.plot(x, mean, label=label, color=color, **kw)
    if ys.shape[0] > 1:
        if band == "minmax":
            lo, hi = ys.min(axis=0), ys.max(axis=0)
        elif band == "std":
            sd = ys.std(axis=0)
            lo, hi = mean - sd, mean + sd
        else:
            raise ValueError(f"band must be 'std' or 'minmax', got {band!r}")
        ax.fill_between(x, lo, hi, color=line.get_color(), alpha=0.2, linewidth=0)
    return line


def plot_alignment_curves(
    ax: Any,
    thresholds: np.ndarray,
    curves: Mapping[str, np.ndarray],
    *,
    relative: bool = True,
    title: str | None = None,
    band: str = "std",
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Alignment curves A(τ) (or A(τ)/‖y‖²), one line with a band over seeds per representation.

    Shape: thresholds (t,); each curve (seeds, t) or (t,).
    """
    for name, ys in curves.items():
        plot_band(ax, thresholds, ys, name, band=band, **dict((styles or {}).get(name, {})))
    ax.set_xlabel("threshold τ (singular value)")
    ax.set_ylabel("alignment A(τ) / ‖y‖²" if relative else "alignment A(τ)")
    if relative:
        ax.set_ylim(-0.02, 1.02)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", frameon=False)
    ax.grid(alpha=0.3)
    return ax


def save_figure(
    fig: Any,
    name: str,
    figures_dir: str | os.PathLike[str],
    formats: Sequence[str] = ("pdf", "png"),
    *,
    show: bool = True,
) -> list[Path]:
    """Save ``fig`` as ``<figures_dir>/<name>.<fmt>`` for each format (atomically), show it inline in a notebook
    (``show``), then close it."""
    import io

    import matplotlib.pyplot as plt

    out = []
    fig.tight_layout()
    for fmt in formats:
        buf = io.BytesIO()
        # fixed metadata so that re-running with the same results writes the same bytes
        meta = {"CreationDate": None} if fmt == "pdf" else {"Software": None}
        fig.savefig(buf, format=fmt, dpi=120, metadata=meta)
        out.append(atomic_write_bytes(Path(figures_dir) / f"{name}.{fmt}", buf.getvalue()))
    if show:
        try:
            from IPython import get_ipython
            from IPython.display import display

            if get_ipython() is not None:
                display(fig)
        except ImportError:  # pragma: no cover - IPython is optional
            pass
    plt.close(fig)
    return out
