"""Figures: saving, bands, grids, heat maps, bar charts, and the panels the notebooks draw from the library."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from repalign.report import plotting  # noqa: E402


def test_save_figure_writes_pdf_and_png_and_closes(tmp_path):
    fig, axes = plotting.new_figure(ncols=2)
    taus = np.linspace(0, 1, 5)
    plotting.plot_alignment_curves(axes[0, 0], taus, {"a": np.ones((3, 5)), "b": np.linspace(1, 0, 5)})
    plotting.plot_band(axes[0, 1], taus, np.ones((2, 5)), "x", band="minmax")
    paths = plotting.save_figure(fig, "fig", tmp_path, show=False)
    assert [p.name for p in paths] == ["fig.pdf", "fig.png"]
    assert all(p.stat().st_size > 0 for p in paths)
    assert not plt.fignum_exists(fig.number)
    assert paths[1].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="band"):
        plotting.plot_band(plt.gca(), taus, np.ones((2, 5)), band="iqr")
    plt.close("all")
    assert not list(tmp_path.glob(".*.tmp"))


def test_tidy_grid_keeps_one_legend_and_bottom_labels():
    fig, axes = plotting.new_figure(ncols=2, nrows=2)
    taus = np.linspace(0, 1, 4)
    for ax in axes.ravel():
        plotting.plot_alignment_curves(ax, taus, {"a": np.ones(4)})
    plotting.tidy_grid(axes)
    assert [ax.get_legend() is not None for ax in axes.ravel()] == [True, False, False, False]
    assert [ax.get_xlabel() != "" for ax in axes.ravel()] == [False, False, True, True]
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ plots
def test_plot_auc_heatmap_annotates_every_cell_with_mean_and_std(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    values = rng.uniform(size=(3, 4, 5))  # rows, cols, seeds
    fig, axes = plotting.new_figure()
    image = plotting.plot_auc_heatmap(axes[0, 0], values, ["a", "b", "c"], [1, 2, 3, 4], xlabel="depth")
    np.testing.assert_allclose(image.get_array(), values.mean(axis=-1))
    texts = [t.get_text() for t in axes[0, 0].texts]
    assert len(texts) == 12
    assert texts[0] == f"{values[0, 0].mean():.2f}\n±{values[0, 0].std():.2f}"
    assert [t.get_text() for t in axes[0, 0].get_xticklabels()] == ["1", "2", "3", "4"]
    assert axes[0, 0].get_xlabel() == "depth"
    paths = plotting.save_figure(fig, "heat", tmp_path, show=False)
    assert all(p.stat().st_size > 0 for p in paths)
    # 2-D values: no std line
    fig, axes = plotting.new_figure()
    plotting.plot_auc_heatmap(axes[0, 0], values.mean(axis=-1), ["a", "b", "c"], [1, 2, 3, 4])
    assert "\n" not in axes[0, 0].texts[0].get_text()
    plt.close(fig)


def test_plot_auc_heatmap_rejects_mismatched_labels() -> None:
    fig, axes = plotting.new_figure()
    with pytest.raises(ValueError, match="labels"):
        plotting.plot_auc_heatmap(axes[0, 0], np.zeros((2, 3)), ["a", "b"], [1, 2])
    with pytest.raises(ValueError, match="shape"):
        plotting.plot_auc_heatmap(axes[0, 0], np.zeros(3), ["a"], [1, 2, 3])
    plt.close(fig)


def test_plot_auc_bars_draws_one_bar_per_group_and_series() -> None:
    rng = np.random.default_rng(2)
    series = {"adam": rng.uniform(size=(4, 3)), "sgd": rng.uniform(size=(4, 3)), "rmsprop": rng.uniform(size=4)}
    fig, axes = plotting.new_figure()
    ax = axes[0, 0]
    plotting.plot_auc_bars(ax, [16, 32, 64, 128], series, xlabel="batch size", reference={"input": 0.2})
    heights = sorted(p.get_height() for p in ax.patches)
    expected = sorted(np.concatenate([v.reshape(4, -1).mean(axis=1) for v in series.values()]))
    np.testing.assert_allclose(heights, expected)
    assert len(ax.patches) == 12
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert set(labels) == {"adam", "sgd", "rmsprop", "input"}
    assert any(np.allclose(line.get_ydata(), 0.2) for line in ax.get_lines())
    plt.close(fig)


def test_plot_auc_bars_rejects_a_series_of_the_wrong_length() -> None:
    fig, axes = plotting.new_figure()
    with pytest.raises(ValueError, match="groups"):
        plotting.plot_auc_bars(axes[0, 0], [1, 2, 3], {"adam": np.zeros((2, 3))})
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ linear learners
def _descents(seeds=(0, 1), steps=25, test=False):
    """Two planted problems (target on top / bottom directions) per seed: (Spectrum, GDResult) pairs."""
    from repalign.measure import theory
    from repalign.measure.alignment import spectrum
    from repalign.networks import linear

    sv = np.geomspace(1.0, 0.1, 8) * 3.0
    runs = {"top": [], "bottom": []}
    for seed in seeds:
        for name, where in (("top", slice(0, 2)), ("bottom", slice(6, 8))):
            mass = np.zeros(8)
            mass[where] = 20.0
            phi, y = theory.planted_problem(sv, mass, 40, seed=seed)
            kw = dict(test_features=phi[:10], test_targets=np.sign(y[:10]) + (y[:10] == 0)) if test else {}
            res = linear.gd_linear(
                phi, np.sign(y) if test else y, lr=1.0 / sv[0] ** 2, steps=steps, bias=False, normalize=False, **kw
            )
            runs[name].append((spectrum(phi, y, bias=False, normalize=False, center=False), res))
    return runs


def test_plot_loss_against_prediction_draws_measured_bands_predictions_and_levels(tmp_path: Path) -> None:
    runs = _descents()
    fig, axes = plotting.new_figure()
    ax = axes[0, 0]
    plotting.plot_loss_against_prediction(ax, runs, loss_levels=[0.5, 0.2], title="planted")
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels == ["top (measured)", "bottom (measured)", "exact prediction from the spectrum", "loss levels"]
    assert ax.get_xscale() == "log" and ax.get_yscale() == "log" and ax.get_title() == "planted"
    assert "L(w_t) / L(w_0)" in ax.get_ylabel() and ax.get_xlabel()
    # the measured line is the mean relative loss from step 1; the dashed prediction lies on it
    top = np.stack([r.train_loss / r.train_loss[0] for _, r in runs["top"]]).mean(axis=0)
    measured, predicted = ax.get_lines()[0], ax.get_lines()[1]
    np.testing.assert_allclose(measured.get_ydata(), top[1:])
    np.testing.assert_allclose(predicted.get_ydata(), top[1:], rtol=1e-8)
    assert sorted(line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() == ":") == [0.2, 0.5]
    paths = plotting.save_figure(fig, "loss", tmp_path, show=False)
    assert all(p.stat().st_size > 0 for p in paths)


def test_plot_phase_bound_keeps_the_measured_loss_under_every_drawn_bound() -> None:
    spec, res = _descents(seeds=(0,), steps=60)["bottom"][0]
    taus = np.linspace(0.0, spec.singular_values[0], 41)
    fig, axes = plotting.new_figure()
    ax = axes[0, 0]
    plotting.plot_phase_bound(ax, spec, res, taus, title="bottom")
    lines = {line.get_label(): np.asarray(line.get_ydata()) for line in ax.get_lines()}
    measured = lines.pop("measured loss")
    np.testing.assert_allclose(measured, res.train_loss[1:] / res.train_loss[0])
    assert "tightest bound over τ" in lines and any(k.startswith("bound, τ = ") for k in lines)
    for label, bound in lines.items():
        assert np.all(measured <= bound + 1e-12), label
    assert ax.get_xscale() == "log" and ax.get_title() == "bottom"
    plt.close(fig)


def test_plot_linear_learners_fills_three_labelled_panels() -> None:
    runs = {name: [r for _, r in pairs] for name, pairs in _descents(test=True).items()}
    fig, axes = plotting.new_figure(ncols=3)
    plotting.plot_linear_learners(axes[0], runs, labels={"top": "top (AUC 0.9)"}, loss_level=0.2)
    ax_loss, ax_norm, ax_err = axes[0]
    for ax in axes[0]:
        assert ax.get_xlabel() and ax.get_ylabel() and ax.get_legend() is not None
    assert [t.get_text() for t in ax_loss.get_legend().get_texts()] == ["top (AUC 0.9)", "bottom"]
    assert ax_norm.xaxis_inverted() and ax_norm.get_xscale() == "log"
    # weight norm against loss: one line per seed and representation, plus the loss level
    r = runs["top"][0]
    line = ax_norm.get_lines()[0]
    np.testing.assert_allclose(line.get_xdata(), r.train_loss[1:] / r.train_loss[0])
    np.testing.assert_allclose(line.get_ydata(), r.weight_norm_sq[1:])
    assert len(ax_norm.get_lines()) == 2 * 2 + 1
    err = np.mean([1.0 - x.test_accuracy for x in runs["bottom"]], axis=0)
    np.testing.assert_allclose(ax_err.get_lines()[1].get_ydata(), err[1:])
    plt.close(fig)


def test_plot_scatter_groups_one_collection_per_group() -> None:
    x = np.arange(6, dtype=float)
    fig, axes = plotting.new_figure()
    ax = axes[0, 0]
    plotting.plot_scatter_groups(ax, x, -x, np.array([2, 0, 2, 1, 0, 2]), labels={0: "none"}, xlabel="a", ylabel="b")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["none", "1", "2"]
    assert [len(c.get_offsets()) for c in ax.collections] == [2, 1, 3]
    np.testing.assert_allclose(ax.collections[2].get_offsets()[:, 0], [0, 2, 5])
    assert ax.get_xlabel() == "a" and ax.get_ylabel() == "b"
    with pytest.raises(ValueError):
        plotting.plot_scatter_groups(ax, x, x[:3], x)
    plt.close(fig)


def test_plot_points_with_errors_one_point_per_name() -> None:
    fig, axes = plotting.new_figure()
    ax = axes[0, 0]
    x = {"a": np.array([0.1, 0.3]), "b": np.array([0.5, 0.5])}
    y = {"a": np.array([0.6, 0.8]), "b": np.array([0.9, 0.9])}
    plotting.plot_points_with_errors(ax, x, y, xlabel="AUC", ylabel="accuracy")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b"]
    np.testing.assert_allclose(ax.get_lines()[0].get_xydata()[0], [0.2, 0.7])
    assert ax.get_xlabel() == "AUC" and ax.get_ylabel() == "accuracy"
    with pytest.raises(ValueError):
        plotting.plot_points_with_errors(ax, x, {"a": y["a"]})
    plt.close(fig)


def test_plot_relative_losses_draws_each_representation_from_its_first_loss() -> None:
    runs = {name: [r for _, r in pairs] for name, pairs in _descents().items()}
    fig, axes = plotting.new_figure()
    ax = axes[0, 0]
    plotting.plot_relative_losses(ax, runs, loss_level=0.2, title="GD")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(runs)
    r = runs["top"]
    mean = np.mean([x.train_loss / x.train_loss[0] for x in r], axis=0)
    np.testing.assert_allclose(ax.get_lines()[0].get_ydata(), mean[1:])
    assert ax.get_lines()[-1].get_ydata()[0] == 0.2 and ax.get_xscale() == ax.get_yscale() == "log"
    assert ax.get_title() == "GD"
    plt.close(fig)


def test_plot_score_bars_groups_the_series_under_each_score() -> None:
    values = {"auc": {"t1": np.array([0.5, 0.7]), "t2": np.array([0.1, 0.1])}, "logme": {"t1": np.zeros(2),
              "t2": np.array([-0.2, 0.0])}}  # fmt: skip
    fig, axes = plotting.new_figure()
    ax = axes[0, 0]
    plotting.plot_score_bars(ax, values, labels=["align auc", "logme"], ylabel="tau")
    bars = ax.patches
    assert len(bars) == 4 and [round(b.get_height(), 6) for b in bars] == [0.6, 0.0, 0.1, -0.1]
    assert bars[0].get_x() < bars[2].get_x() < bars[1].get_x()  # t1 left of t2 within the first score's group
    assert [t.get_text() for t in ax.get_xticklabels()] == ["align auc", "logme"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["t1", "t2"] and ax.get_ylabel() == "tau"
    plt.close(fig)


def test_layerwise_panels_draw_every_data_set_and_hide_the_spare_panels() -> None:
    layers = ["input", "hidden1", "hidden2"]
    trained = {"a": np.array([[0.2, 0.5, 0.7], [0.2, 0.6, 0.8]]), "b": np.array([[0.1, 0.2, 0.3]] * 2)}
    init = {k: v / 2 for k, v in trained.items()}
    fig, axes = plotting.new_figure(ncols=2)
    plotting.plot_auc_by_layer(axes[0, 0], layers, trained, init, ceiling=0.79)
    labels = [t.get_text() for t in axes[0, 0].get_legend().get_texts()]
    assert labels == ["a, trained", "a, init", "b, trained", "b, init", "ReLU ceiling (binary)"]
    np.testing.assert_allclose(axes[0, 0].get_lines()[0].get_ydata(), [0.2, 0.55, 0.75])
    assert [t.get_text() for t in axes[0, 0].get_xticklabels()] == layers
    plt.close(fig)
    fig, axes = plotting.new_figure(ncols=3, nrows=2)
    epochs = np.array([0, 5, 10])
    panels = {name: {layer: (epochs, np.ones((2, 3)) * j) for j, layer in enumerate(layers)} for name in "abc"}
    plotting.plot_auc_over_training(axes, panels)
    assert [ax.get_visible() for ax in axes.flat] == [True] * 3 + [False] * 3
    assert [ax.get_title() for ax in axes.flat][:3] == ["a", "b", "c"] and axes[0, 0].get_legend() is not None
    assert axes[0, 1].get_legend() is None and len(axes[0, 1].get_lines()) == 3
    plt.close(fig)


def test_plot_curve_panels_keep_one_y_label_and_one_legend() -> None:
    taus = np.linspace(0, 1, 4)
    panels = {title: {"input": np.ones((2, 4)), "deep": np.linspace(1, 0, 4)} for title in ("relu", "tanh", "linear")}
    fig, axes = plotting.new_figure(ncols=3, sharey=True)
    plotting.plot_curve_panels(axes, taus, panels, styles={"input": {"color": "k", "linestyle": "--"}})
    assert [ax.get_title() for ax in axes[0]] == list(panels)
    assert [bool(ax.get_ylabel()) for ax in axes[0]] == [True, False, False]
    assert [ax.get_legend() is not None for ax in axes[0]] == [True, False, False]
    assert axes[0, 1].get_lines()[0].get_linestyle() == "--"
    plt.close(fig)


def test_save_figure_writes_the_same_bytes_twice_without_dates(tmp_path):
    def draw():
        fig, axes = plotting.new_figure()
        axes[0, 0].plot([0, 1, 2], [1, 0, 2], label="x")
        axes[0, 0].legend()
        return fig

    a = plotting.save_figure(draw(), "f", tmp_path / "a", formats=("pdf", "png", "svg"))
    b = plotting.save_figure(draw(), "f", tmp_path / "b", formats=("pdf", "png", "svg"))
    for p, q in zip(a, b, strict=True):
        assert p.read_bytes() == q.read_bytes(), f"{p.name} differs between two saves of the same figure"
    pdf = (tmp_path / "a" / "f.pdf").read_bytes()
    assert b"CreationDate" not in pdf and b"ModDate" not in pdf
    assert b"<dc:date>" not in (tmp_path / "a" / "f.svg").read_bytes()


def test_relative_output_folders_mean_the_notebooks_folder_in_a_kernel(tmp_path, monkeypatch):
    from repalign.core import paths as params

    monkeypatch.setattr(params, "_in_kernel", lambda: True)
    monkeypatch.setattr(params, "repo_root", lambda: tmp_path)
    (tmp_path / "notebooks").mkdir()
    monkeypatch.chdir(tmp_path / "notebooks")
    assert params.resolve_output_dir("../figures/smoke") == tmp_path / "figures" / "smoke"
    monkeypatch.chdir(Path("/"))
    fig, _ = plotting.new_figure()
    plotting.save_figure(fig, "g", "../figures/smoke", formats=("png",))
    assert (tmp_path / "figures" / "smoke" / "g.png").is_file()
    assert params.resolve_output_dir(tmp_path / "abs") == tmp_path / "abs"
    monkeypatch.setattr(params, "_in_kernel", lambda: False)  # scripts and the command line: the working directory
    assert params.resolve_output_dir("out") == Path("out")
