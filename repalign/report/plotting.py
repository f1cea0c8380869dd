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

from repalign.core.files import atomic_write_bytes
from repalign.core.paths import resolve_output_dir
from repalign.measure.theory import phase_bound, predicted_loss_curve

__all__ = [
    "new_figure",
    "plot_band",
    "plot_alignment_curves",
    "tidy_grid",
    "save_figure",
    "plot_auc_heatmap",
    "plot_auc_bars",
    "plot_loss_against_prediction",
    "plot_phase_bound",
    "plot_linear_learners",
    "plot_scatter_groups",
    "plot_points_with_errors",
    "plot_relative_losses",
    "plot_score_bars",
    "plot_auc_by_layer",
    "plot_auc_over_training",
    "hide_unused",
    "plot_curve_panels",
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


def hide_unused(axes: Any, used: int) -> None:
    """Hide the panels of a grid after the first ``used`` (row by row), e.g. 5 plots on a 2 × 3 grid.

    Shape: axes (rows, cols) as returned by :func:`new_figure`.
    """
    for ax in list(np.asarray(axes).flat)[used:]:
        ax.set_visible(False)


def plot_curve_panels(
    axes: Any,
    thresholds: np.ndarray,
    panels: Mapping[str, Mapping[str, np.ndarray]],
    *,
    styles: Mapping[str, Mapping[str, Any]] | None = None,
) -> Any:
    """Panels of alignment curves side by side (:func:`plot_alignment_curves`, relative), one per title: the y label
    on the first panel only and one legend (:func:`tidy_grid`).

    Shape: axes (rows, cols) with at least as many panels as titles; thresholds (t,); panels map a title to
    ``{name: (seeds, t)}``.
    """
    flat = list(np.asarray(axes).flat)
    for ax, (title, curves) in zip(flat, panels.items(), strict=False):
        plot_alignment_curves(ax, thresholds, curves, title=title, styles=styles)
        if ax is not flat[0]:
            ax.set_ylabel("")
    tidy_grid(axes)
    return axes


#: metadata that would change from one run to the next (dates) or with the machine, removed from every file
_FIXED_METADATA: dict[str, dict[str, Any]] = {
    "pdf": {"CreationDate": None, "ModDate": None},
    "png": {"Software": None},
    "svg": {"Date": None},
}


def save_figure(
    fig: Any,
    name: str,
    figures_dir: str | os.PathLike[str],
    formats: Sequence[str] = ("pdf", "png"),
    *,
    show: bool = True,
) -> list[Path]:
    """Save ``fig`` as ``<figures_dir>/<name>.<fmt>`` for each format (atomically), show it inline in a notebook
    (``show``), then close it.

    The files carry no dates (PDF ``CreationDate``, SVG ``Date``, a fixed SVG hash salt), and the PNG is
    re-encoded with the interpreter's zlib (:func:`_portable_png`), so the same figure re-created writes the same
    bytes, on any CPU. In a notebook the PNG written here is displayed (whatever the matplotlib
    backend, ``Agg`` included), so executed and stored notebooks carry their figures. A relative ``figures_dir``
    is resolved against ``notebooks/`` of the checkout (:func:`repalign.core.paths.resolve_output_dir`), as the
    notebooks' defaults (``../figures/smoke``) mean, whatever the working directory.
    """
    import io

    import matplotlib
    import matplotlib.pyplot as plt

    folder = resolve_output_dir(figures_dir)
    out, png = [], None
    fig.tight_layout()
    with matplotlib.rc_context({"svg.hashsalt": "repalign"}):
        for fmt in [*formats, *([] if "png" in formats or not show else ["png"])]:
            buf = io.BytesIO()
            fig.savefig(buf, format=fmt, dpi=120, metadata=_FIXED_METADATA.get(fmt))
            data = _portable_png(buf.getvalue()) if fmt == "png" else buf.getvalue()
            if fmt == "png":
                png = data
            if fmt in formats:
                out.append(atomic_write_bytes(folder / f"{name}.{fmt}", data))
    if show and png is not None:
        _display_png(png)
    plt.close(fig)
    return out


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    import struct
    import zlib

    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)


def _portable_png(png: bytes) -> bytes:
    """The same image re-encoded with Python's own zlib, so that its bytes do not depend on the CPU.

    matplotlib writes PNG through Pillow, whose bundled zlib-ng chooses its deflate code by the CPU's instruction
    set at run time; the pixels (Agg, FreeType) do not depend on it. Here the decoded RGBA pixels are written again
    as an 8-bit RGBA PNG (filter 0 on every row, deflate level 9 by the interpreter's zlib), with no metadata.

    Shape: an RGBA (H, W, 4) image in, the same image out.
    """
    import io
    import struct
    import zlib

    from PIL import Image

    with Image.open(io.BytesIO(png)) as img:
        rgba = np.asarray(img.convert("RGBA"), dtype=np.uint8)
    h, w = rgba.shape[:2]
    rows = np.concatenate([np.zeros((h, 1), dtype=np.uint8), rgba.reshape(h, w * 4)], axis=1)
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + b"".join(
        (_png_chunk(b"IHDR", header), _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 9)), _png_chunk(b"IEND", b""))
    )


def _display_png(png: bytes) -> None:
    """Show PNG bytes in a running IPython kernel (nothing elsewhere)."""
    try:
        from IPython import get_ipython
        from IPython.display import Image, display
    except ImportError:  # pragma: no cover - IPython is optional
        return
    if get_ipython() is not None:
        display(Image(data=png, format="png"))


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


# ------------------------------------------------------------------------------------------------ linear learners
def _relative_loss(result: Any) -> np.ndarray:
    loss = np.asarray(result.train_loss, dtype=float)
    return loss / loss[0]


def _loss_axes(ax: Any, *, ylabel: str, title: str | None) -> None:
    ax.set(xscale="log", yscale="log", xlabel="gradient-descent step t", ylabel=ylabel)
    if title:
        ax.set_title(title)
    ax.set_ylim(bottom=max(ax.get_ylim()[0], 1e-8))  # below ~1e-15 the exact curves are float64 rounding
    ax.legend(fontsize="small", frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2))
    ax.grid(alpha=0.3)


def plot_loss_against_prediction(
    ax: Any,
    runs: Mapping[str, Sequence[tuple[Any, Any]]],
    *,
    loss_levels: Sequence[float] = (),
    title: str | None = None,
) -> Any:
    r"""Measured gradient-descent loss against the exact prediction from the spectrum, one band per representation.

    Solid (thick, band ± one std over seeds): :math:`L(w_t)/L(w_0)` as :func:`repalign.networks.linear.gd_linear`
    measured it; dashed black on top: :func:`repalign.measure.theory.predicted_loss_curve` from the spectrum alone (mean
    over seeds); dotted grey: ``loss_levels`` (relative). Log-log axes from step 1.

    Shape: runs map a name to a list over seeds of (Spectrum, GDResult) pairs; the runs of one name recorded the
    same steps.
    """

    for name, pairs in runs.items():
        steps = np.asarray(pairs[0][1].steps)
        measured = np.stack([_relative_loss(r) for _, r in pairs])
        predicted = np.stack([predicted_loss_curve(s, r.lr, r.steps) / r.train_loss[0] for s, r in pairs])
        plot_band(ax, steps[1:], measured[:, 1:], f"{name} (measured)", lw=3, alpha=0.6)
        ax.plot(steps[1:], predicted.mean(axis=0)[1:], "--", color="k", lw=1)
    ax.plot([], [], "--", color="k", lw=1, label="exact prediction from the spectrum")
    for j, level in enumerate(loss_levels):
        ax.axhline(level, color="grey", ls=":", lw=1, label="loss levels" if j == 0 else None)
    _loss_axes(ax, ylabel="training loss L(w_t) / L(w_0)", title=title)
    return ax


def plot_phase_bound(
    ax: Any, spec: Any, result: Any, taus: np.ndarray, *, title: str | None = None, marks: int = 3
) -> Any:
    r"""One descent's measured loss under the fast/slow-phase bound, relative to :math:`L(w_0)`.

    .. math::  B_t(\tau) = \tfrac12(1-\eta\tau^2)^{2t}A(\tau) + \tfrac12(\lVert y\rVert^2 - A(\tau))

    (:func:`repalign.measure.theory.phase_bound`). Drawn: the measured loss (thick black), the bound for the thresholds
    that are tightest at ``marks`` steps spaced geometrically over the run (early: a large τ, late: a small one;
    each labelled with its τ and the first of those steps), and the tightest bound over ``taus`` (dashed).

    Shape: taus (m,) thresholds (e.g. 121 points on [0, √n]); result recorded steps (T,).
    """

    t = np.asarray(result.steps)
    l0 = float(result.train_loss[0])
    bounds = phase_bound(spec, result.lr, t, taus)  # (m, T)
    tightest: dict[int, int] = {}  # tau index -> the first marked step where it gives the tightest bound
    for k in np.unique(np.geomspace(1, max(int(t[-1]), 1), marks).round().astype(int)):
        k = int(np.searchsorted(t, k))
        if k < t.size:
            tightest.setdefault(int(np.argmin(bounds[:, k])), int(t[k]))
    for j, k in tightest.items():
        ax.plot(t[1:], bounds[j, 1:] / l0, lw=1.2, label=f"bound, τ = {taus[j]:.2f} (tightest at t = {k})")
    ax.plot(t[1:], bounds.min(axis=0)[1:] / l0, "k--", lw=1, label="tightest bound over τ")
    ax.plot(t[1:], np.asarray(result.train_loss)[1:] / l0, "k", lw=2, label="measured loss")
    _loss_axes(ax, ylabel="training loss / L(w_0)", title=title)
    return ax


def plot_linear_learners(
    axes: Sequence[Any],
    runs: Mapping[str, Sequence[Any]],
    *,
    labels: Mapping[str, str] | None = None,
    loss_level: float | None = None,
) -> Sequence[Any]:
    r"""A linear learner trained by gradient descent on several representations, three panels.

    1. training loss :math:`L(w_t)/L(w_0)` against the step (band ± one std over seeds);
    2. squared weight norm :math:`\lVert w_t\rVert^2` against the training loss reached (one line per seed, the x
       axis reversed so that training runs left to right): representations compared at the same loss; a dotted
       line at ``loss_level``;
    3. test error against the step (band over seeds), when the runs recorded a test accuracy.

    Shape: axes (3,); runs map a name to a list over seeds of :class:`repalign.networks.linear.GDResult`; ``labels``
    optional legend text per name (e.g. with the AUC).
    """
    ax_loss, ax_norm, ax_err = axes
    for name, results in runs.items():
        label = (labels or {}).get(name, name)
        steps = np.asarray(results[0].steps)
        line = plot_band(ax_loss, steps[1:], np.stack([_relative_loss(r) for r in results])[:, 1:], label)
        for i, r in enumerate(results):
            ax_norm.plot(
                _relative_loss(r)[1:],
                np.asarray(r.weight_norm_sq)[1:],
                color=line.get_color(),
                lw=1.2,
                alpha=0.8,
                label=label if i == 0 else None,
            )
        if all(r.test_accuracy is not None for r in results):
            errors = np.stack([1.0 - np.asarray(r.test_accuracy) for r in results])
            plot_band(ax_err, steps[1:], errors[:, 1:], label, color=line.get_color())
    ax_loss.set(xscale="log", yscale="log", xlabel="gradient-descent step t", ylabel="training loss L(w_t) / L(w_0)")
    ax_loss.set_title("training loss")
    if loss_level is not None:
        ax_norm.axvline(loss_level, color="grey", ls=":", lw=1, label=f"loss level {loss_level:g}")
    ax_norm.set(xscale="log", yscale="log", xlabel="training loss L(w_t) / L(w_0)", ylabel="squared weight norm ‖w_t‖²")
    ax_norm.set_title("weight norm at the same loss (each seed)")
    ax_norm.invert_xaxis()
    ax_err.set(xscale="log", xlabel="gradient-descent step t", ylabel="test error")
    ax_err.set_title("test error")
    for ax in axes:
        ax.legend(fontsize="small", frameon=False)
        ax.grid(alpha=0.3)
    return axes


def _labelled(ax: Any, xlabel: str, ylabel: str, title: str | None) -> Any:
    """The finish of a labelled panel: axis labels, the title (if any), a small frameless legend and a light grid."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.legend(fontsize="small", frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_scatter_groups(
    ax: Any,
    x: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    *,
    labels: Mapping[Any, str] | None = None,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
    zero_line: bool = True,
    cmap: str = "viridis",
) -> Any:
    """One point per item, coloured by its group (e.g. targets by relatedness), a legend entry per group.

    Groups are drawn in sorted order with colours spread over ``cmap``; ``labels`` maps a group to its legend
    text (default ``str(group)``); ``zero_line`` draws y = 0 (e.g. no transfer gain).

    Shape: x, y, groups (m,).
    """
    import matplotlib.pyplot as plt

    x, y, groups = (np.asarray(v).reshape(-1) for v in (x, y, groups))
    if not x.shape == y.shape == groups.shape:
        raise ValueError(f"x, y and groups must have one entry per point; got {x.shape}, {y.shape}, {groups.shape}")
    keys = sorted(set(groups.tolist()))
    colours = plt.get_cmap(cmap)(np.linspace(0.0, 0.9, max(len(keys), 1)))
    for key, colour in zip(keys, colours, strict=False):
        sel = groups == key
        ax.scatter(x[sel], y[sel], s=14, color=colour, alpha=0.8, label=(labels or {}).get(key, str(key)))
    if zero_line:
        ax.axhline(0.0, color="grey", lw=1, ls=":")
    return _labelled(ax, xlabel, ylabel, title)


def plot_points_with_errors(
    ax: Any,
    x: Mapping[str, np.ndarray],
    y: Mapping[str, np.ndarray],
    *,
    xlabel: str = "",
    ylabel: str = "",
    title: str | None = None,
) -> Any:
    """One labelled point per name at (mean of ``x[name]``, mean of ``y[name]``) over seeds, with ± one-std error
    bars in both directions (e.g. each representation's alignment AUC against its probe accuracy).

    Shape: x and y map the same names to (seeds,) arrays (or scalars).
    """
    if set(x) != set(y):
        raise ValueError(f"x and y name different points: {sorted(set(x) ^ set(y))}")
    for name in x:
        xs, ys = np.atleast_1d(np.asarray(x[name], float)), np.atleast_1d(np.asarray(y[name], float))
        ax.errorbar(xs.mean(), ys.mean(), xerr=xs.std(), yerr=ys.std(), fmt="o", capsize=2, label=name)
    return _labelled(ax, xlabel, ylabel, title)


def plot_relative_losses(
    ax: Any, runs: Mapping[str, Sequence[Any]], *, loss_level: float | None = None, title: str = ""
) -> Any:
    r"""The linear learner's training loss :math:`L(w_t)/L(w_0)` against the step, a band over seeds per
    representation, on log-log axes, with a dotted line at ``loss_level``.

    Shape: runs map a name to a list over seeds of :class:`repalign.networks.linear.GDResult` that recorded the
    same steps.
    """
    for name, results in runs.items():
        rel = np.stack([_relative_loss(r) for r in results])
        plot_band(ax, results[0].steps[1:], rel[:, 1:], name)
    if loss_level is not None:
        ax.axhline(loss_level, color="grey", ls=":", lw=1)
    ax.set(xscale="log", yscale="log", xlabel="gradient-descent step t", ylabel="training loss L(w_t) / L(w_0)",
           title=title)  # fmt: skip
    ax.legend(fontsize="small", frameon=False)
    ax.grid(alpha=0.3)
    return ax


def plot_score_bars(
    ax: Any,
    values: Mapping[str, Mapping[str, np.ndarray]],
    *,
    labels: Sequence[str] | None = None,
    ylabel: str = "",
    title: str = "",
) -> Any:
    """Grouped bars: one group per score (x axis, ``labels`` as its tick labels, slanted), one bar per series
    within it (e.g. a target), height the mean over units, error bar ± one std; a grey line at 0.

    Shape: values map each score to ``{series: (units,)}``, every score the same series.
    """
    names = list(values)
    series = list(next(iter(values.values())))
    width = 0.8 / len(series)
    for j, key in enumerate(series):
        ax.bar(np.arange(len(names)) + (j - (len(series) - 1) / 2) * width, [values[s][key].mean() for s in names],
               width, yerr=[values[s][key].std() for s in names], label=key)  # fmt: skip
    ax.set_xticks(np.arange(len(names)), list(labels or names), rotation=30, ha="right")
    ax.axhline(0, color="grey", lw=1)
    ax.set(ylabel=ylabel, title=title)
    ax.legend(fontsize="small", frameon=False)
    ax.grid(alpha=0.3, axis="y")
    return ax


def plot_auc_by_layer(
    ax: Any,
    layers: Sequence[str],
    trained: Mapping[str, np.ndarray],
    init: Mapping[str, np.ndarray],
    *,
    ceiling: float | None = None,
) -> Any:
    """AUC of every layer after training (solid, dots) and at initialisation (dashed, the same colour), a band
    over seeds per data set; a dotted line at ``ceiling`` (e.g. the ReLU ceiling of a binary task).

    Shape: layers (L,); trained and init map a data set's label to its (seeds, L) AUCs.
    """
    for label in trained:
        line = plot_band(ax, np.arange(len(layers)), trained[label], f"{label}, trained", marker="o")
        plot_band(ax, np.arange(len(layers)), init[label], f"{label}, init", color=line.get_color(),
                  linestyle="--", marker=".")  # fmt: skip
    if ceiling is not None:
        ax.axhline(ceiling, color="0.4", linestyle=":", linewidth=1, label="ReLU ceiling (binary)")
    ax.set_xticks(range(len(layers)), layers)
    ax.set_xlabel("layer")
    ax.set_ylabel("AUC of A(τ)/‖y‖²")
    ax.legend(fontsize="small", frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    ax.grid(alpha=0.3)
    return ax


def plot_auc_over_training(axes: Any, panels: Mapping[str, Mapping[str, tuple[np.ndarray, np.ndarray]]]) -> Any:
    """AUC of each layer over the training epochs, one panel per data set (a band over seeds per layer), one
    legend (the first panel's); panels beyond the data sets are hidden.

    Shape: axes (rows, cols) with at least as many panels as data sets; panels map a data set's label to
    ``{layer: (epochs (t,), AUCs (seeds, t))}`` (:func:`repalign.recipes.layerwise.during_aucs`).
    """
    flat = list(np.asarray(axes).flat)
    for ax, (label, by_layer) in zip(flat, panels.items(), strict=False):
        for layer, (epochs, aucs) in by_layer.items():
            plot_band(ax, epochs, aucs, layer)
        ax.set_xlabel("epoch")
        ax.set_ylabel("AUC of A(τ)/‖y‖²")
        ax.set_title(label)
        ax.grid(alpha=0.3)
    flat[0].legend(fontsize="small", frameon=False, ncol=2)
    hide_unused(axes, len(panels))
    return axes
