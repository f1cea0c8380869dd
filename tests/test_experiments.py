"""Notebook recipes, claim verdicts and figure saving."""

from __future__ import annotations

import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

import repalign as ra  # noqa: E402
from repalign import claims, experiments, plotting  # noqa: E402


@pytest.fixture()
def blobs():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    x = rng.normal(size=(80, 10)).astype(np.float32) + 1.5 * y[:, None]
    return x, y


CFG = experiments.MLPConfig(depth=2, width=16, epochs=5, batch_size=16)


def test_train_and_measure_structure_and_alignment(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path))
    x, y = blobs
    runs = experiments.train_and_measure(x, y, task="binary", seeds=[0, 1], config=CFG, x_test=x, y_test=y)
    assert [r.seed for r in runs] == [0, 1]
    assert runs[0].layers == ["input", "hidden1", "hidden2"]
    for r in runs:
        for layer in r.layers:
            for spec in (r.before[layer], r.after[layer]):
                assert spec.n == 80 and spec.total == pytest.approx(80.0)
        # the input representation does not change with training
        assert r.before["input"].auc() == pytest.approx(r.after["input"].auc())
        assert len(r.history["train_loss"]) == 5 and "val_acc" in r.history
    direct = ra.spectrum(x, ra.binary_targets(y))
    assert runs[0].after["input"].auc() == pytest.approx(direct.auc(), rel=1e-10)
    curves = experiments.stack_curves(runs, "hidden2", ra.threshold_grid(80))
    assert curves.shape == (2, 62) and np.all(curves[:, 0] == 1.0)
    assert experiments.stack_aucs(runs, "hidden2").shape == (2,)


def test_train_and_measure_is_cached_and_ensemble_matches_sequential(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path))
    x, y = blobs
    a = experiments.train_and_measure(x, y, task="binary", seeds=[3, 4], config=CFG)
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    b = experiments.train_and_measure(x, y, task="binary", seeds=[3, 4], config=CFG)
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not recomputed
    for ra_, rb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ra_.after["hidden2"].singular_values, rb.after["hidden2"].singular_values)
    seq = experiments.train_and_measure(x, y, task="binary", seeds=[3, 4], config=CFG, ensemble=False, cache=False)
    for ens, one in zip(a, seq, strict=True):
        assert ens.after["hidden2"].auc() == pytest.approx(one.after["hidden2"].auc(), abs=1e-4)


def test_keep_features_and_record_every(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path))
    x, y = blobs
    (run,) = experiments.train_and_measure(
        x, y, task="binary", seeds=[0], config=CFG, x_test=x[:10], y_test=y[:10], keep_features=True, record_every=2
    )
    assert run.features["hidden1"]["train"].shape == (80, 16)
    assert run.features["hidden2"]["test"].shape == (10, 16)
    assert sorted(run.during) == [0, 2, 4, 5]
    assert run.during[5]["hidden2"].auc() == pytest.approx(run.after["hidden2"].auc())
    spec = ra.spectrum(run.features["hidden2"]["train"], ra.binary_targets(y))
    assert spec.auc() == pytest.approx(run.after["hidden2"].auc(), rel=1e-6)


def test_multiclass_and_regression_targets():
    y = np.array([0, 2, 1, 2])
    t = experiments.alignment_targets(y, "multiclass")
    assert t.shape == (4, 3) and set(np.unique(t)) == {-1.0, 1.0}
    assert experiments.alignment_targets(np.array([0, 1, 1]), "binary").tolist() == [-1, 1, 1]
    r = experiments.alignment_targets(np.array([0.5, -1.0]), "regression")
    assert r.dtype == np.float64
    with pytest.raises(ValueError, match="unknown task"):
        experiments.alignment_targets(y, "ranking")


def test_spectrum_dict_round_trip():
    rng = np.random.default_rng(1)
    spec = ra.spectrum(rng.normal(size=(30, 4)), rng.normal(size=(30, 2)))
    back = ra.Spectrum.from_dict(spec.to_dict())
    np.testing.assert_array_equal(back.singular_values, spec.singular_values)
    assert back.auc() == spec.auc() and back.mass_columns.shape == spec.mass_columns.shape


def test_data_fingerprint_sees_content():
    a = np.arange(6.0)
    assert experiments.data_fingerprint(a) == experiments.data_fingerprint(a.copy())
    b = a.copy()
    b[3] += 1e-9
    assert experiments.data_fingerprint(a) != experiments.data_fingerprint(b)
    assert experiments.data_fingerprint(a) != experiments.data_fingerprint(a.reshape(2, 3))


# ------------------------------------------------------------------------------------------------ claims
def test_claims_report_and_summary(tmp_path, capsys):
    v = [
        claims.check("A beats B", np.float64(0.7) > 0.5, auc=(0.7, 0.01)),
        claims.check("C holds", False, note="small n", n=np.int64(10)),
    ]
    assert claims.report(v, "99_test", {"seeds": [0, 1]}, tmp_path) is None
    path = tmp_path / "claims" / "99_test.json"
    out = capsys.readouterr().out
    assert out == "claim: A beats B ... True\nclaim: C holds ... False\n"
    data = json.loads(path.read_text())
    assert data["parameters"] == {"seeds": [0, 1]} and data["claims"][1]["holds"] is False
    assert data["provenance"]["repalign"] == ra.__version__ and "torch" in data["provenance"]
    text = claims.summarize(tmp_path / "claims", tmp_path / "SUMMARY.md")
    assert "1 of 2 claims hold" in text and "| 99_test | C holds | **does not hold** |" in text
    assert "0.700 ± 0.010" in claims.evidence_table(v)


def test_snapshot_keeps_plain_parameters_only():
    ns = {"seeds": [0], "lr": 1e-3, "name": "x", "np": np, "_hidden": 1, "In": [], "f": len, "none": None}
    assert claims.snapshot(ns) == {"seeds": [0], "lr": 1e-3, "name": "x", "none": None}


# ------------------------------------------------------------------------------------------------ plotting
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
