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

__all__ = [
    "plot_band",
    "plot_alignment_curves",
    "save_figure",
    "new_figure",
    "tidy_grid",
    "plot_auc_heatmap",
    "plot_auc_bars",
]


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


def tidy_grid(axes: Any) -> None:
    """For a grid of panels sharing axes: x labels on the bottom row only, and one legend (the top-left panel's).

    Shape: axes (rows, cols) as returned by :func:`new_figure`.
    """
    axes = np.atleast_2d(axes)
    for ax in axes[:-1].ravel():
        ax.set_xlabel("")
    for ax in axes.ravel()[1:]:
        legend = ax.get_legend()
        if legend is not None:
            legend.remove()


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


def plot_auc_heatmap(
    ax: Any,
    values: np.ndarray,
    row_labels: Sequence[Any],
    col_labels: Sequence[Any],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    vmin: float = 0.0,
    vmax: float = 1.0,
    cmap: str = "viridis",
    colorbar_label: str = "AUC of A(τ)/‖y‖²",
    digits: int = 2,
) -> Any:
    """A configuration grid of AUCs as a heat map, each cell annotated with its mean (± std over seeds).

    With seeds on the last axis the cell shows mean over seeds; the text is black on light cells, white on dark.

    Shape: values (r, c) or (r, c, seeds); row_labels (r,), col_labels (c,). Returns the image.
    """
    import matplotlib.pyplot as plt

    values = np.asarray(values, dtype=float)
    if values.ndim not in (2, 3):
        raise ValueError(f"values must be (rows, cols) or (rows, cols, seeds), got shape {values.shape}")
    mean = values.mean(axis=-1) if values.ndim == 3 else values
    std = values.std(axis=-1) if values.ndim == 3 and values.shape[-1] > 1 else None
    if mean.shape != (len(row_labels), len(col_labels)):
        raise ValueError(f"values are {mean.shape[0]}×{mean.shape[1]} but {len(row_labels)}×{len(col_labels)} labels")
    image = ax.imshow(mean, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto")
    colormap = plt.get_cmap(cmap)
    for i in range(mean.shape[0]):
        for j in range(mean.shape[1]):
            text = f"{mean[i, j]:.{digits}f}" + ("" if std is None else f"\n±{std[i, j]:.{digits}f}")
            r, g, b, _ = colormap((mean[i, j] - vmin) / (vmax - vmin) if vmax > vmin else 0.5)
            dark = 0.299 * r + 0.587 * g + 0.114 * b < 0.5
            ax.text(j, i, text, ha="center", va="center", fontsize="small", color="white" if dark else "black")
    ax.set_xticks(range(len(col_labels)), [str(c) for c in col_labels])
    ax.set_yticks(range(len(row_labels)), [str(r) for r in row_labels])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, label=colorbar_label, fraction=0.046, pad=0.03)
    return image


def plot_auc_bars(
    ax: Any,
    groups: Sequence[Any],
    series: Mapping[str, np.ndarray],
    *,
    xlabel: str = "",
    ylabel: str = "AUC of A(τ)/‖y‖²",
    title: str | None = None,
    reference: Mapping[str, float] | None = None,
) -> Any:
    """Grouped bars: for each group (e.g. a batch size) one bar per series (e.g. an optimizer), height the mean over
    seeds, error bar ± one std; optional dashed horizontal reference lines (e.g. the input's AUC).

    Shape: groups (g,); each series (g, seeds) or (g,); reference ``{label: value}``.
    """
    names = list(series)
    x = np.arange(len(groups), dtype=float)
    width = 0.8 / max(len(names), 1)
    for k, name in enumerate(names):
        ys = np.asarray(series[name], dtype=float)
        ys = ys[:, None] if ys.ndim == 1 else ys
        if ys.shape[0] != len(groups):
            raise ValueError(f"series {name!r} has {ys.shape[0]} rows for {len(groups)} groups")
        err = ys.std(axis=1) if ys.shape[1] > 1 else None
        ax.bar(x + (k - (len(names) - 1) / 2) * width, ys.mean(axis=1), width, yerr=err, capsize=2, label=name)
    for j, (label, value) in enumerate((reference or {}).items()):
        ax.axhline(float(value), color="k", linestyle=("--", ":", "-.")[j % 3], linewidth=1, label=label)
    ax.set_xticks(x, [str(g) for g in groups])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    # below the axes, so that it never hides a bar
    entries = len(names) + len(reference or {})
    ax.legend(fontsize="small", frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=min(entries, 3))
    ax.grid(alpha=0.3, axis="y")
    return ax
