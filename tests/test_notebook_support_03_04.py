"""Properties of the helpers behind notebooks 03 (architectures) and 04 (optimizers and batch size)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from repalign import experiments, plotting  # noqa: E402
from repalign.experiments import MLPConfig  # noqa: E402


@pytest.fixture
def tiny() -> tuple[np.ndarray, np.ndarray]:
    """A separable binary problem small enough to train in well under a second."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 6)).astype(np.float32)
    y = (x[:, 0] + 0.3 * x[:, 1] > 0).astype(np.int64)
    return x, y


@pytest.fixture
def cache_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


# ------------------------------------------------------------------------------------------------ config_grid
def test_config_grid_is_the_product_in_axis_order() -> None:
    grid = experiments.config_grid({"width": 16, "epochs": 3}, depth=[1, 2, 3], activation=["relu", "tanh"])
    assert list(grid) == [(d, a) for d in (1, 2, 3) for a in ("relu", "tanh")]
    for (d, a), cfg in grid.items():
        assert isinstance(cfg, MLPConfig)
        assert (cfg.depth, cfg.activation, cfg.width, cfg.epochs) == (d, a, 16, 3)
        assert cfg.optimizer == MLPConfig().optimizer  # untouched fields keep their defaults
    # an MLPConfig works as the base too, and a single axis gives 1-tuples
    assert list(experiments.config_grid(MLPConfig(width=8), lr=[0.1, 0.01])) == [(0.1,), (0.01,)]


def test_config_grid_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown MLPConfig field"):
        experiments.config_grid(None, dept=[1, 2])


# ------------------------------------------------------------------------------------------------ sweep
def test_sweep_measures_every_configuration_and_resumes_from_the_cache(tiny, cache_dir, monkeypatch) -> None:
    x, y = tiny
    configs = experiments.config_grid({"width": 8, "epochs": 2, "batch_size": 16}, depth=[1, 2])
    seeds = [0, 1]
    out = experiments.sweep(x, y, configs, task="binary", seeds=seeds, progress=False)
    assert list(out) == list(configs)
    for (depth,), runs in out.items():
        assert [r.seed for r in runs] == seeds
        assert runs[0].layers == ["input", *[f"hidden{i}" for i in range(1, depth + 1)]]

    # a re-run trains nothing: every configuration comes from the cache
    def no_training(*args, **kwargs):
        raise AssertionError("a cached configuration was trained again")

    monkeypatch.setattr(experiments, "_run", no_training)
    again = experiments.sweep(x, y, configs, task="binary", seeds=seeds, progress=False)
    np.testing.assert_array_equal(experiments.sweep_aucs(again), experiments.sweep_aucs(out))

    # aucs: (configurations, seeds), in [0, 1]; "last" is each configuration's own last hidden layer
    aucs = experiments.sweep_aucs(out)
    assert aucs.shape == (2, 2)
    assert np.all((aucs >= 0) & (aucs <= 1))
    np.testing.assert_array_equal(aucs[1], experiments.stack_aucs(out[(2,)], "hidden2"))
    np.testing.assert_array_equal(
        experiments.sweep_aucs(out, "hidden1")[1], experiments.stack_aucs(out[(2,)], "hidden1")
    )
    # the input does not depend on the configuration
    inp = experiments.sweep_aucs(out, "input")
    np.testing.assert_allclose(inp, inp[0, 0])
    before = experiments.sweep_aucs(out, when="before")
    assert before.shape == aucs.shape

    acc = experiments.sweep_final(out, "train_acc")
    assert acc.shape == (2, 2) and np.all((acc >= 0) & (acc <= 1))

    table = experiments.sweep_table(out, label="depth", metrics=["train_acc", "train_loss"])
    lines = table.splitlines()
    assert len(lines) == 2 + len(configs)  # header, rule, one row per configuration
    assert lines[0].split()[0] == "depth" and "AUC last (trained)" in lines[0] and "train_loss" in lines[0]
    assert lines[2].startswith("1 ") and lines[3].startswith("2 ")
    assert f"{aucs[0].mean():.3f} ± {aucs[0].std():.3f}" in lines[2]


def test_sweep_trains_identical_configurations_once(tiny, cache_dir, monkeypatch) -> None:
    x, y = tiny
    cfg = MLPConfig(depth=1, width=4, epochs=1)
    calls = []
    real = experiments._run

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(experiments, "_run", counting)
    out = experiments.sweep(x, y, {"a": cfg, "b": cfg.to_dict()}, task="binary", seeds=[0], progress=False)
    assert len(calls) == 1 and list(out) == ["a", "b"]


# ------------------------------------------------------------------------------------------------ increasing
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ([0.1, 0.2, 0.3], True),
        ([0.5, 0.9, 0.999, 0.9994], True),  # saturates: a tie at 3 decimals is not a step down
        ([0.5, 0.9, 0.9994, 0.9991], True),  # below the rounding: still a tie
        ([0.5, 0.9, 0.89], False),  # a real step down
        ([0.7, 0.7, 0.7], False),  # flat: no net rise
        ([0.3, 0.2], False),
    ],
)
def test_increasing(values, expected) -> None:
    assert experiments.increasing(values) is expected


def test_increasing_needs_two_values() -> None:
    with pytest.raises(ValueError, match="at least two"):
        experiments.increasing([0.5])


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
