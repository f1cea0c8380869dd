"""Notebook recipes: train and measure over seeds, cached; sweeps over configurations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import repalign as ra
from repalign import data
from repalign.core import arrays
from repalign.measure import alignment
from repalign.networks import models
from repalign.recipes import layerwise, peaks, transfer
from repalign.recipes.layerwise import MLPConfig


@pytest.fixture()
def blobs():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 40)
    x = rng.normal(size=(80, 10)).astype(np.float32) + 1.5 * y[:, None]
    return x, y


CFG = layerwise.MLPConfig(depth=2, width=16, epochs=5, batch_size=16)


def test_train_and_measure_structure_and_alignment(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path))
    x, y = blobs
    runs = layerwise.train_and_measure(x, y, task="binary", seeds=[0, 1], config=CFG, x_test=x, y_test=y)
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
    curves = layerwise.stack_curves(runs, "hidden2", ra.threshold_grid(80))
    assert curves.shape == (2, 62) and np.all(curves[:, 0] == 1.0)
    assert layerwise.stack_aucs(runs, "hidden2").shape == (2,)


def test_train_and_measure_is_cached_and_ensemble_matches_sequential(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path))
    x, y = blobs
    a = layerwise.train_and_measure(x, y, task="binary", seeds=[3, 4], config=CFG)
    files = list(tmp_path.rglob("*.npz"))
    assert len(files) == 1
    mtime = files[0].stat().st_mtime_ns
    b = layerwise.train_and_measure(x, y, task="binary", seeds=[3, 4], config=CFG)
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not recomputed
    for ra_, rb in zip(a, b, strict=True):
        np.testing.assert_array_equal(ra_.after["hidden2"].singular_values, rb.after["hidden2"].singular_values)
    seq = layerwise.train_and_measure(x, y, task="binary", seeds=[3, 4], config=CFG, ensemble=False, cache=False)
    for ens, one in zip(a, seq, strict=True):
        assert ens.after["hidden2"].auc() == pytest.approx(one.after["hidden2"].auc(), abs=1e-4)


def test_keep_features_and_record_every(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path))
    x, y = blobs
    (run,) = layerwise.train_and_measure(
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
    t = ra.alignment_targets(y, "multiclass")
    assert t.shape == (4, 3) and set(np.unique(t)) == {-1.0, 1.0}
    assert ra.alignment_targets(np.array([0, 1, 1]), "binary").tolist() == [-1, 1, 1]
    r = ra.alignment_targets(np.array([0.5, -1.0]), "regression")
    assert r.dtype == np.float64
    with pytest.raises(ValueError, match="unknown task"):
        ra.alignment_targets(y, "ranking")


def test_spectrum_dict_round_trip():
    rng = np.random.default_rng(1)
    spec = ra.spectrum(rng.normal(size=(30, 4)), rng.normal(size=(30, 2)))
    back = ra.Spectrum.from_dict(spec.to_dict())
    np.testing.assert_array_equal(back.singular_values, spec.singular_values)
    assert back.auc() == spec.auc() and back.mass_columns.shape == spec.mass_columns.shape


def test_data_fingerprint_sees_content():
    a = np.arange(6.0)
    assert arrays.data_fingerprint(a) == arrays.data_fingerprint(a.copy())
    b = a.copy()
    b[3] += 1e-9
    assert arrays.data_fingerprint(a) != arrays.data_fingerprint(b)
    assert arrays.data_fingerprint(a) != arrays.data_fingerprint(a.reshape(2, 3))


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
    grid = layerwise.config_grid({"width": 16, "epochs": 3}, depth=[1, 2, 3], activation=["relu", "tanh"])
    assert list(grid) == [(d, a) for d in (1, 2, 3) for a in ("relu", "tanh")]
    for (d, a), cfg in grid.items():
        assert isinstance(cfg, MLPConfig)
        assert (cfg.depth, cfg.activation, cfg.width, cfg.epochs) == (d, a, 16, 3)
        assert cfg.optimizer == MLPConfig().optimizer  # untouched fields keep their defaults
    # an MLPConfig works as the base too, and a single axis gives 1-tuples
    assert list(layerwise.config_grid(MLPConfig(width=8), lr=[0.1, 0.01])) == [(0.1,), (0.01,)]


def test_config_grid_rejects_unknown_fields() -> None:
    with pytest.raises(ValueError, match="unknown MLPConfig field"):
        layerwise.config_grid(None, dept=[1, 2])


# ------------------------------------------------------------------------------------------------ sweep
def test_sweep_measures_every_configuration_and_resumes_from_the_cache(tiny, cache_dir, monkeypatch) -> None:
    x, y = tiny
    configs = layerwise.config_grid({"width": 8, "epochs": 2, "batch_size": 16}, depth=[1, 2])
    seeds = [0, 1]
    out = layerwise.sweep(x, y, configs, task="binary", seeds=seeds, progress=False)
    assert list(out) == list(configs)
    for (depth,), runs in out.items():
        assert [r.seed for r in runs] == seeds
        assert runs[0].layers == ["input", *[f"hidden{i}" for i in range(1, depth + 1)]]

    # a re-run trains nothing: every configuration comes from the cache
    def no_training(*args, **kwargs):
        raise AssertionError("a cached configuration was trained again")

    monkeypatch.setattr(layerwise, "_run", no_training)
    again = layerwise.sweep(x, y, configs, task="binary", seeds=seeds, progress=False)
    np.testing.assert_array_equal(layerwise.sweep_aucs(again), layerwise.sweep_aucs(out))

    # aucs: (configurations, seeds), in [0, 1]; "last" is each configuration's own last hidden layer
    aucs = layerwise.sweep_aucs(out)
    assert aucs.shape == (2, 2)
    assert np.all((aucs >= 0) & (aucs <= 1))
    np.testing.assert_array_equal(aucs[1], layerwise.stack_aucs(out[(2,)], "hidden2"))
    np.testing.assert_array_equal(layerwise.sweep_aucs(out, "hidden1")[1], layerwise.stack_aucs(out[(2,)], "hidden1"))
    # the input does not depend on the configuration
    inp = layerwise.sweep_aucs(out, "input")
    np.testing.assert_allclose(inp, inp[0, 0])
    before = layerwise.sweep_aucs(out, when="before")
    assert before.shape == aucs.shape

    acc = layerwise.sweep_final(out, "train_acc")
    assert acc.shape == (2, 2) and np.all((acc >= 0) & (acc <= 1))

    table = layerwise.sweep_table(out, label="depth", metrics=["train_acc", "train_loss"])
    lines = table.splitlines()
    assert len(lines) == 2 + len(configs)  # header, rule, one row per configuration
    assert lines[0].split()[0] == "depth" and "AUC last (trained)" in lines[0] and "train_loss" in lines[0]
    assert lines[2].startswith("1 ") and lines[3].startswith("2 ")
    assert f"{aucs[0].mean():.3f} ± {aucs[0].std():.3f}" in lines[2]


def test_sweep_trains_identical_configurations_once(tiny, cache_dir, monkeypatch) -> None:
    x, y = tiny
    cfg = MLPConfig(depth=1, width=4, epochs=1)
    calls = []
    real = layerwise._run

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(layerwise, "_run", counting)
    out = layerwise.sweep(x, y, {"a": cfg, "b": cfg.to_dict()}, task="binary", seeds=[0], progress=False)
    assert len(calls) == 1 and list(out) == ["a", "b"]


def test_during_aucs_matches_before_and_after():
    ds = data.prepare_task("digits", classes=[0, 1], n_per_class=15, seed=0)
    cfg = MLPConfig(depth=2, width=8, epochs=4, batch_size=16)
    runs = layerwise.train_and_measure(ds.x, ds.y, task="binary", seeds=[0, 1], config=cfg, record_every=2, cache=False)
    epochs, aucs = layerwise.during_aucs(runs, "last")
    assert epochs.tolist() == [0, 2, 4] and aucs.shape == (2, 3)
    assert np.allclose(aucs[:, 0], layerwise.stack_aucs(runs, "hidden2", when="before"))
    assert np.allclose(aucs[:, -1], layerwise.stack_aucs(runs, "hidden2"))
    _, inp = layerwise.during_aucs(runs, "input")
    assert np.allclose(inp, inp[:, :1])  # the input does not train
    plain = layerwise.train_and_measure(ds.x, ds.y, task="binary", seeds=[0], config=cfg, cache=False)
    with pytest.raises(ValueError, match="record_every"):
        layerwise.during_aucs(plain, "last")


def test_epochs_for_steps_is_exact_when_divisible_and_rounds_otherwise():
    assert layerwise.epochs_for_steps(320, 1000, 1000) == (320, 320)  # full batch: one step per epoch
    assert layerwise.epochs_for_steps(320, 1000, 64) == (20, 320)  # ceil(1000/64) = 16 steps per epoch
    assert layerwise.epochs_for_steps(320, 1000, 16) == (5, 315)  # 63 per epoch: 5.08 epochs -> 5
    assert layerwise.epochs_for_steps(320, 1000, 256) == (80, 320)
    assert layerwise.epochs_for_steps(100, 1000, 50) == (5, 100)
    assert layerwise.epochs_for_steps(30, 1000, 50) == (2, 40)  # 1.5 epochs rounds up
    assert layerwise.epochs_for_steps(3, 1000, 16) == (1, 63)  # never fewer than one epoch
    with pytest.raises(ValueError, match="positive"):
        layerwise.epochs_for_steps(0, 1000, 16)


def test_stack_taus_is_tau_q_per_seed(blobs, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path))
    x, y = blobs
    runs = layerwise.train_and_measure(x, y, task="binary", seeds=[0, 1], config=CFG)
    taus = layerwise.stack_taus(runs, "hidden2", 0.9)
    assert taus.shape == (2,)
    for r, t in zip(runs, taus, strict=True):
        spec = r.after["hidden2"]
        assert t == spec.tau_q(0.9) and spec.curve([t])[0] >= 0.9 * spec.total - 1e-9


def test_final_fit_is_train_accuracy_or_r2(blobs):
    x, y = blobs
    runs = layerwise.train_and_measure(x, y, task="binary", seeds=[0, 1], config=CFG, cache=False)
    assert np.array_equal(layerwise.final_fit(runs), [r.history["train_acc"][-1] for r in runs])
    t = 3.0 * (x[:, 0] - x[:, 0].mean())  # regression targets of variance 9 * var(x0)
    reg = layerwise.train_and_measure(x, t, task="regression", seeds=[0, 1], config=CFG, cache=False)
    fit = layerwise.final_fit(reg, t)
    assert fit.shape == (2,)
    assert np.allclose(fit, [1.0 - r.history["train_loss"][-1] / t.var() for r in reg])
    assert np.allclose(layerwise.final_fit(reg, np.stack([t, t], axis=1)), fit)  # mean variance over columns
    with pytest.raises(ValueError, match="targets y"):
        layerwise.final_fit(reg)
    with pytest.raises(ValueError, match="constant"):
        layerwise.final_fit(reg, np.ones(len(t)))


def test_column_aucs_and_curves_equal_one_spectrum_per_column() -> None:
    from repalign.measure.alignment import spectrum, threshold_grid

    rng = np.random.default_rng(0)
    f = rng.standard_normal((120, 7))
    y = np.column_stack([f[:, 0] + 0.1 * rng.standard_normal(120), rng.standard_normal(120), 3.0 + f[:, 1]])
    spec = spectrum(f, y)
    taus = threshold_grid(120, num=9)
    aucs = alignment.column_aucs(spec, y)
    curves = alignment.column_curves(spec, y, taus)
    for c in range(3):
        one = spectrum(f, y[:, c])
        assert aucs[c] == pytest.approx(one.auc(), rel=1e-9)
        np.testing.assert_allclose(curves[c], one.curve(taus, relative=True), rtol=1e-9, atol=1e-12)
    assert aucs[0] > aucs[1]  # the target built from a feature is the more aligned
    with pytest.raises(ValueError, match="constant"):
        alignment.column_aucs(spectrum(f, np.ones((120, 2)) + y[:, :2] * 0), np.ones((120, 2)))


def test_peaks_transfer_shapes_and_relatedness() -> None:
    cfg = layerwise.MLPConfig(depth=1, width=8, bias=True, epochs=1, batch_size=40)
    out = peaks.peaks_transfer(
        0, 0, config=cfg, n=80, n_test=40, units=2, gd_steps=5, finetune_targets=[5, 119], finetune_epochs=1,
        num_thresholds=7, cache=False,
    )  # fmt: skip
    for key in ("auc_source", "auc_untrained", "auc_input", "gd_test_source", "gd_test_untrained", "gd_train_input"):
        assert out[key].shape == (120,) and np.all(np.isfinite(out[key])), key
    assert out["curves_source"].shape == (120, 7) and out["thresholds"].shape == (7,)
    assert out["shared"][0] == 3 and out["score"][0] == 6 and out["score"][119] == 0
    assert out["finetune_test"].shape == out["scratch_test"].shape == (2,)
    again = peaks.peaks_transfer(
        0, 0, config=cfg, n=80, n_test=40, units=2, gd_steps=5, finetune_targets=[5, 119], finetune_epochs=1,
        num_thresholds=7, cache=False,
    )  # fmt: skip
    np.testing.assert_array_equal(again["finetune_test"], out["finetune_test"])  # seeded
    np.testing.assert_array_equal(again["auc_source"], out["auc_source"])


def test_peaks_group_losses_counts_wins_and_excludes_the_source():
    shared = np.array([3, 3, 0, 0, 1])
    run = {
        "shared": shared,
        "gd_test_source": np.array([0.0, 0.1, 0.5, 0.7, 0.2]),
        "gd_test_untrained": np.array([9.0, 0.3, 0.6, 0.6, 0.2]),
        "finetune_targets": np.array([1, 2]),
        "finetune_test": np.array([0.1, 0.9]),
        "scratch_test": np.array([0.2, 0.8]),
    }
    out = peaks.peaks_group_losses({(0, 0): run}, 3)  # target 0 is the source: left out
    assert out["transfer"].tolist() == [0.1] and out["scratch"].tolist() == [0.3] and out["cases"] == 1
    unrelated = peaks.peaks_group_losses({(0, 0): run}, 0)
    assert unrelated["positive"] == 1 and unrelated["cases"] == 2
    ft = peaks.peaks_group_losses({(0, 0): run}, 0, "finetune")
    assert ft["transfer"].tolist() == [0.9] and ft["positive"] == 0
    with pytest.raises(ValueError, match="learner"):
        peaks.peaks_group_losses({(0, 0): run}, 0, "probe")


# ---------------------------------------------------------------------------------------------------------------
# whole networks pre-trained and transferred (claims 9 and 10)
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture()
def images() -> tuple[np.ndarray, np.ndarray]:
    """120 8x8 images of 3 classes: a bright square in one of three places, plus noise."""
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.uniform(0, 0.2, size=(120, 1, 8, 8)).astype(np.float32)
    for i, c in enumerate(y):
        x[i, 0, 2 * c : 2 * c + 3, 2 * c : 2 * c + 3] += 0.8
    return x, y


def test_small_cnn_and_network_layers() -> None:
    import torch

    from repalign.networks.features import extract

    net = models.small_cnn(7, image_size=12, channels=(4, 8), width=16, seed=0)
    assert net(torch.zeros(5, 1, 12, 12)).shape == (5, 7)
    assert extract(net, np.zeros((5, 1, 12, 12), np.float32), ["hidden"], progress=False)["hidden"].shape == (5, 16)
    assert transfer.network_layer("mlp") == "hidden2" and transfer.network_layer("resnet18") == "avgpool"
    with pytest.raises(ValueError, match="multiple of 4"):
        models.small_cnn(3, image_size=10)


def test_network_spec_id_and_build_round_trip() -> None:
    a = transfer.network_spec("cnn", 3, (1, 8, 8), seed=0)
    assert a["id"] == transfer.network_spec("cnn", 3, (1, 8, 8), seed=0)["id"]
    assert a["id"] != transfer.network_spec("cnn", 3, (1, 8, 8), seed=1)["id"]
    model = transfer.build_network(a)
    state = {k: v.detach().numpy() + 1.0 for k, v in model.state_dict().items()}
    b = transfer.network_spec("cnn", 3, (1, 8, 8), seed=0, state=state)
    assert b["id"] != a["id"]
    rebuilt = transfer.build_network(b).state_dict()
    assert all(np.allclose(rebuilt[k].numpy(), v) for k, v in state.items())
    with pytest.raises(ValueError, match="unknown network family"):
        transfer.network_spec("transformer9000", 3, (1, 8, 8))


def test_train_network_learns_stops_when_memorised_and_is_cached(images, cache_dir, monkeypatch) -> None:
    x, y = images
    spec = transfer.network_spec("cnn", 3, x.shape[1:], seed=0)
    run = transfer.train_network(spec, x, y, seed=0, epochs=60, lr=1e-2, batch_size=16, until_accuracy=0.9,
                                    check_every=2)  # fmt: skip
    assert run["train_accuracy"] >= 0.9 and run["epochs"] < 60 and run["epochs"] % 2 == 0
    assert len(run["history"]["train_loss"]) == run["epochs"]
    assert run["network"]["state"] is not None and run["network"]["id"] != spec["id"]
    calls = []
    monkeypatch.setattr(transfer, "_train_network_run", lambda *a, **k: calls.append(1))
    again = transfer.train_network(spec, x, y, seed=0, epochs=60, lr=1e-2, batch_size=16, until_accuracy=0.9,
                                      check_every=2)  # fmt: skip
    assert not calls and again["network"]["id"] == run["network"]["id"]


def test_transfer_to_target_measures_before_and_scores_after(images, cache_dir) -> None:
    import repalign as ra

    x, y = images
    trained = transfer.train_network(transfer.network_spec("mlp", 3, x.shape[1:], seed=0), x, y, seed=0,
                                        epochs=20, lr=1e-2, batch_size=16)["network"]  # fmt: skip
    fresh = transfer.network_spec("mlp", 3, x.shape[1:], seed=0)
    out = {}
    for name, spec in {"trained": trained, "fresh": fresh}.items():
        out[name] = transfer.transfer_to_target(spec, (x, y), (x[::4], y[::4]), (x, y), seed=0, epochs=5)
        assert 0.0 <= out[name]["auc"] <= 1.0 and out[name]["curve"].shape == out[name]["thresholds"].shape
        assert 0.0 <= out[name]["test_accuracy"] <= 1.0
    # the alignment is that of the representation before target training, measured directly
    from repalign.networks.features import extract

    feats = extract(transfer.build_network(trained), x, ["hidden2"], progress=False)["hidden2"]
    direct = ra.spectrum(feats.astype(np.float64), ra.one_vs_rest_targets(y)).auc()
    assert out["trained"]["auc"] == pytest.approx(direct, rel=1e-6)
    assert out["trained"]["auc"] > out["fresh"]["auc"]  # trained on these very labels


def test_class_split_relabels_and_holds_out_a_test_draw() -> None:
    pool, test = data.class_split("mnist_embedded", [5, 7], n_test_per_class=20, data_seed=0)
    assert sorted(set(pool.y.tolist())) == [0, 1] and np.bincount(test.y).tolist() == [20, 20]
    assert not set(pool.meta["source_index"][pool.y == 0]) & set(test.meta["source_index"][test.y == 0])
    pool, test = data.class_split("fashion_mnist_embedded", [0, 1, 2], n_test_per_class=None)
    assert len(pool) == 1500 and len(test) == 300 and pool.info.classes == ["T-shirt/top", "Trouser", "Pullover"]
    with pytest.raises(ValueError, match="named class sets exist for cifar10"):
        data.class_split("mnist_embedded", "natural")


def test_pretrained_checkpoint_says_which_command_makes_a_missing_one(tmp_path, monkeypatch) -> None:
    import types

    fake = types.ModuleType("repalign.networks.pretrain")
    fake.checkpoint_file = lambda out_dir: Path(out_dir) / "checkpoint.pt"
    fake.command = lambda arch, subset, out_dir, nproc=8, **o: (
        f"torchrun --nproc_per_node={nproc} -m repalign.networks.pretrain --arch {arch} --subset {subset} --out {out_dir}"
    )
    monkeypatch.setattr(transfer, "pretrain", fake)
    folder = tmp_path / "resnet18_natural"
    with pytest.raises(FileNotFoundError, match="torchrun --nproc_per_node=8 -m repalign.networks.pretrain --arch resnet18 "
                       "--subset natural"):  # fmt: skip
        transfer.pretrained_checkpoint("resnet18", "natural", folder, in_shape=(3, 32, 32))
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"weights")
    spec = transfer.pretrained_checkpoint("resnet18", "natural", folder, in_shape=(3, 32, 32))
    assert spec["checkpoint"] == str(folder / "checkpoint.pt") and spec["family"] == "resnet18"
