"""The recipes by claim family (repalign.recipes): train and measure over seeds, sweeps over configurations, the
peaks transfer, whole networks transferred, the representation zoo; typed results that round-trip through the cache
and say how they were measured."""

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
    assert isinstance(out, peaks.PeaksTransfer) and out.source == 0
    for key in ("auc_source", "auc_untrained", "auc_input", "gd_test_source", "gd_test_untrained", "gd_train_input"):
        assert getattr(out, key).shape == (120,) and np.all(np.isfinite(getattr(out, key))), key
    assert out.curves_source.shape == (120, 7) and out.thresholds.shape == (7,)
    assert out.shared[0] == 3 and out.score[0] == 6 and out.score[119] == 0
    assert out.finetune_test.shape == out.scratch_test.shape == (2,) and np.isfinite(out.source_test_mse)
    assert out.options["center"] is True and out.others.sum() == 119 and not out.others[0]
    again = peaks.peaks_transfer(
        0, 0, config=cfg, n=80, n_test=40, units=2, gd_steps=5, finetune_targets=[5, 119], finetune_epochs=1,
        num_thresholds=7, cache=False,
    )  # fmt: skip
    np.testing.assert_array_equal(again.finetune_test, out.finetune_test)  # seeded
    np.testing.assert_array_equal(again.auc_source, out.auc_source)


def _peaks_run(source: int = 0, **values: np.ndarray) -> peaks.PeaksTransfer:
    """A PeaksTransfer of five targets (t = 2 thresholds) with the given per-target values, zeros elsewhere."""
    k = len(values.get("shared", np.zeros(5)))
    fields = {f: np.zeros(k) for f in ("auc_source", "auc_untrained", "auc_input", "gd_train_source", "gd_test_source",
                                       "gd_train_untrained", "gd_test_untrained", "gd_train_input", "gd_test_input",
                                       "shared", "score")}  # fmt: skip
    fields.update(curves_source=np.zeros((k, 2)), thresholds=np.array([0.0, 1.0]), finetune_targets=np.array([], int),
                  finetune_test=np.zeros(0), scratch_test=np.zeros(0))  # fmt: skip
    fields.update(values)
    return peaks.PeaksTransfer(source=source, layer="hidden2", source_test_mse=0.0, options={"center": True}, **fields)


def test_peaks_group_losses_counts_wins_and_excludes_the_source():
    shared = np.array([3, 3, 0, 0, 1])
    run = _peaks_run(
        shared=shared,
        gd_test_source=np.array([0.0, 0.1, 0.5, 0.7, 0.2]),
        gd_test_untrained=np.array([9.0, 0.3, 0.6, 0.6, 0.2]),
        finetune_targets=np.array([1, 2]),
        finetune_test=np.array([0.1, 0.9]),
        scratch_test=np.array([0.2, 0.8]),
    )
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
    assert isinstance(run, transfer.TrainedNetwork)
    assert run.train_accuracy >= 0.9 and run.epochs < 60 and run.epochs % 2 == 0
    assert len(run.history["train_loss"]) == run.epochs
    assert run.network["state"] is not None and run.network["id"] != spec["id"]
    from repalign.networks.evaluate import accuracy

    assert run.train_accuracy == accuracy(transfer.build_network(run.network), x, y)  # eval mode, after training
    calls = []
    monkeypatch.setattr(transfer, "_train_network_run", lambda *a, **k: calls.append(1))
    again = transfer.train_network(spec, x, y, seed=0, epochs=60, lr=1e-2, batch_size=16, until_accuracy=0.9,
                                   check_every=2)  # fmt: skip
    assert not calls and again.network["id"] == run.network["id"] and again.epochs == run.epochs


def test_transfer_to_target_measures_before_and_scores_after(images, cache_dir) -> None:
    import repalign as ra

    x, y = images
    trained = transfer.train_network(transfer.network_spec("mlp", 3, x.shape[1:], seed=0), x, y, seed=0,
                                     epochs=20, lr=1e-2, batch_size=16).network  # fmt: skip
    fresh = transfer.network_spec("mlp", 3, x.shape[1:], seed=0)
    out = {}
    for name, spec in {"trained": trained, "fresh": fresh}.items():
        out[name] = transfer.transfer_to_target(spec, (x, y), (x[::4], y[::4]), (x, y), seed=0, epochs=5)
        assert 0.0 <= out[name].auc <= 1.0 and out[name].curve.shape == out[name].thresholds.shape
        assert 0.0 <= out[name].test_accuracy <= 1.0 and out[name].options["center"] is True
    # the alignment is that of the representation before target training, measured directly
    from repalign.networks.features import extract

    feats = extract(transfer.build_network(trained), x, ["hidden2"], progress=False)["hidden2"]
    direct = ra.spectrum(feats.astype(np.float64), ra.one_vs_rest_targets(y)).auc()
    assert out["trained"].auc == pytest.approx(direct, rel=1e-6)
    assert out["trained"].auc > out["fresh"].auc  # trained on these very labels


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
    fake.checkpoint_identity = lambda path, note=False: {"path": str(path)}
    monkeypatch.setattr(transfer, "pretrain", fake)
    folder = tmp_path / "resnet18_natural"
    with pytest.raises(FileNotFoundError, match="torchrun --nproc_per_node=8 -m repalign.networks.pretrain --arch resnet18 "
                       "--subset natural"):  # fmt: skip
        transfer.pretrained_checkpoint("resnet18", "natural", folder, in_shape=(3, 32, 32))
    folder.mkdir()
    (folder / "checkpoint.pt").write_bytes(b"weights")
    spec = transfer.pretrained_checkpoint("resnet18", "natural", folder, in_shape=(3, 32, 32))
    assert spec["checkpoint"] == str(folder / "checkpoint.pt") and spec["family"] == "resnet18"


# ---------------------------------------------------------------------------------------------------------------
# typed results: the cache round trip, and the preprocessing a result read back from the cache notes
# ---------------------------------------------------------------------------------------------------------------
PEAKS_SMALL = dict(config=layerwise.MLPConfig(depth=1, width=8, bias=True, epochs=1, batch_size=40), n=80, n_test=40,
                   units=2, gd_steps=5, finetune_targets=[5], finetune_epochs=1, num_thresholds=7)  # fmt: skip


def _refuse(*args, **kwargs):
    raise AssertionError("recomputed: the result should have come from the cache")


def test_peaks_transfer_from_the_cache_is_the_same_and_notes_its_preprocessing(cache_dir, monkeypatch) -> None:
    alignment.preprocessing_seen(reset=True)  # the record is per process: start it here, as claims.snapshot does
    computed = peaks.peaks_transfer(0, 0, **PEAKS_SMALL)
    assert alignment.preprocessing_seen() == [{"bias": True, "normalize": True, "center_targets": True}]
    alignment.preprocessing_seen(reset=True)
    monkeypatch.setattr(peaks, "train", _refuse)  # what computing would call first (the worker itself keys the cache)
    loaded = peaks.peaks_transfer(0, 0, **PEAKS_SMALL)
    assert alignment.preprocessing_seen() == [{"bias": True, "normalize": True, "center_targets": True}]
    for name, value in computed.to_dict().items():
        np.testing.assert_array_equal(getattr(loaded, name), value, err_msg=name)
    again = peaks.PeaksTransfer.from_dict(loaded.to_dict())
    np.testing.assert_array_equal(again.curves_source, computed.curves_source)


def test_transfer_results_from_the_cache_are_the_same_and_note_their_preprocessing(images, cache_dir, monkeypatch):
    x, y = images
    spec = transfer.network_spec("mlp", 3, x.shape[1:], seed=0)
    trained = transfer.train_network(spec, x, y, seed=0, epochs=2, lr=1e-2, batch_size=16)
    computed = transfer.transfer_to_target(trained.network, (x, y), (x, y), (x, y), seed=0, epochs=1)
    alignment.preprocessing_seen(reset=True)
    monkeypatch.setattr(transfer, "train", _refuse)
    monkeypatch.setattr(transfer, "fine_tune", _refuse)
    again = transfer.train_network(spec, x, y, seed=0, epochs=2, lr=1e-2, batch_size=16)
    assert again.network["id"] == trained.network["id"] and again.train_accuracy == trained.train_accuracy
    assert alignment.preprocessing_seen() == []  # pre-training measures nothing
    loaded = transfer.transfer_to_target(trained.network, (x, y), (x, y), (x, y), seed=0, epochs=1)
    assert alignment.preprocessing_seen() == [{"bias": True, "normalize": True, "center_targets": True}]
    assert loaded.auc == computed.auc and loaded.test_accuracy == computed.test_accuracy
    np.testing.assert_array_equal(loaded.curve, computed.curve)
    back = transfer.TrainedNetwork.from_dict(trained.to_dict())
    assert back.epochs == trained.epochs and list(back.history) == ["train_loss", "train_acc"]


def test_a_claim_file_says_how_it_was_measured_the_same_warm_or_cold(cache_dir, tmp_path, monkeypatch) -> None:
    from repalign.run import claims

    def one_run(folder: str) -> bytes:
        params = claims.snapshot({"seeds": [0]})  # resets the measure's record, as a notebook's first cell does
        run = peaks.peaks_transfer(0, 0, **PEAKS_SMALL)
        verdict = claims.check("the source is its own most related target", bool(run.shared[0] == 3))
        claims.report([verdict], "99_peaks", params, tmp_path / folder, echo=False)
        return (tmp_path / folder / "claims" / "99_peaks.json").read_bytes()

    cold = one_run("cold")
    monkeypatch.setattr(peaks, "train", _refuse)
    assert one_run("warm") == cold
    claims.snapshot({})
    with pytest.raises(ValueError, match="recorded no spectrum"):
        claims.report([claims.check("nothing measured", True)], "99_none", {}, tmp_path / "none", echo=False)


# ---------------------------------------------------------------------------------------------------------------
# summaries of peaks runs
# ---------------------------------------------------------------------------------------------------------------
def test_peaks_summaries_leave_the_source_out_and_average_over_seeds() -> None:
    shared = np.array([3, 3, 0, 2, 1])
    curves = np.arange(10.0).reshape(5, 2)
    a = _peaks_run(shared=shared, auc_source=np.array([9.0, 0.8, 0.2, 0.4, 0.5]), curves_source=curves,
                   gd_test_source=np.array([0.0, 0.1, 0.5, 0.7, 0.2]), gd_test_untrained=np.full(5, 0.4),
                   finetune_targets=np.array([2, 4]), finetune_test=np.array([0.3, 0.1]),
                   scratch_test=np.array([0.2, 0.2]))  # fmt: skip
    b = _peaks_run(shared=shared, auc_source=np.array([9.0, 0.6, 0.0, 0.2, 0.3]), curves_source=curves + 1.0,
                   gd_test_source=np.full(5, 0.3), gd_test_untrained=np.full(5, 0.4), finetune_targets=np.array([2, 4]),
                   finetune_test=np.array([0.1, 0.1]), scratch_test=np.array([0.2, 0.4]))  # fmt: skip
    c = _peaks_run(shared=np.array([3, 3, 2, 1, 1, 0]), auc_source=np.array([9.0, 0.8, 0.6, 0.2, 0.4, 0.1]))
    np.testing.assert_allclose(c.by_shared(c.auc_source), [0.1, 0.3, 0.6, 0.8])  # groups 0..3, the source left out
    auc, gain, groups = peaks.transfer_gains([a, b], "linear")
    assert auc.shape == gain.shape == groups.shape == (4,)  # the source (target 0) is left out
    np.testing.assert_allclose(auc, [0.7, 0.1, 0.3, 0.4])
    np.testing.assert_allclose(gain, 0.4 - (np.array([0.1, 0.5, 0.7, 0.2]) + 0.3) / 2)
    auc, gain, groups = peaks.transfer_gains([a, b], "finetune")
    np.testing.assert_allclose(auc, [0.1, 0.4])
    np.testing.assert_allclose(gain, [0.0, 0.2])
    assert groups.tolist() == [0, 1]
    curves_by_group = peaks.shared_group_curves([a, b])
    assert list(curves_by_group)[0] == "the source P001" and "shares 3 variables (1 targets)" in curves_by_group
    np.testing.assert_array_equal(curves_by_group["the source P001"], [curves[0], curves[0] + 1.0])
    np.testing.assert_array_equal(curves_by_group["shares 1 variables (1 targets)"][1], curves[4] + 1.0)
    pairs = peaks.run_pairs([a, b], lambda r: r.shared, lambda r: r.auc_source)
    assert len(pairs) == 2 and pairs[0][0].tolist() == [3, 0, 2, 1]
    (x, y), _ = peaks.run_pairs([a, b], lambda r: r.auc_source, lambda r: r.finetune_test, "finetune")
    assert x.tolist() == [0.2, 0.5] and y.tolist() == [0.3, 0.1]
    with pytest.raises(ValueError, match="single source"):
        peaks.shared_group_curves([a, _peaks_run(source=1, shared=shared)])
    with pytest.raises(ValueError, match="learner"):
        peaks.transfer_gains([a], "probe")


# ---------------------------------------------------------------------------------------------------------------
# peaks: what training on the source did to alignment, and Kendall's tau per run (claim 7, issue #22)
# ---------------------------------------------------------------------------------------------------------------
def test_peaks_group_alignment_pairs_each_target_with_itself_and_leaves_the_source_out() -> None:
    shared = np.array([3, 3, 3, 0, 0])
    a = _peaks_run(shared=shared, auc_source=np.array([9.0, 0.5, 0.7, 0.1, 0.3]),
                   auc_untrained=np.array([0.0, 0.2, 0.8, 0.2, 0.2]))  # fmt: skip
    b = _peaks_run(source=1, shared=np.array([3, 3, 3, 0, 0]), auc_source=np.array([0.4, 9.0, 0.6, 0.0, 0.1]),
                   auc_untrained=np.array([0.2, 0.0, 0.2, 0.2, 0.2]))  # fmt: skip
    related = peaks.peaks_group_alignment([a, b], 3)
    np.testing.assert_allclose(related["trained"], [0.6, 0.5])  # the source (9.0) never counts
    np.testing.assert_allclose(related["untrained"], [0.5, 0.2])
    assert related["fell"] == 1 and related["cases"] == 4  # only a's target 2 went down (0.8 -> 0.7)
    unrelated = peaks.peaks_group_alignment([a, b], 0)
    assert unrelated["fell"] == 3 and unrelated["cases"] == 4
    np.testing.assert_allclose(a.auc_change, a.auc_source - a.auc_untrained)
    with pytest.raises(ValueError, match="no target shares 2"):
        peaks.peaks_group_alignment([a], 2)


def test_alignment_change_table_splits_by_shared_variables_and_roles_most_related_first() -> None:
    shared, score = np.array([3, 3, 2, 2, 0]), np.array([6, 4, 2, 3, 0])  # roles: 3 (the source), 1, 0, 1, 0
    runs = [_peaks_run(shared=shared, score=score, auc_source=np.array([1.0, 0.5, 0.4, 0.3, 0.1]) + d,
                       auc_untrained=np.array([0.0, 0.2, 0.5, 0.2, 0.2])) for d in (0.0, 0.2)]  # fmt: skip
    assert runs[0].roles.tolist() == [3, 1, 0, 1, 0]
    table = peaks.alignment_change_table(runs)
    assert list(table) == ["3 shared, 1 in the same role", "2 shared, 1 in the same role",
                           "2 shared, 0 in the same role", "0 shared, 0 in the same role"]  # fmt: skip
    three = table["3 shared, 1 in the same role"]
    assert three["change"] == pytest.approx(0.4) and three["cases"] == 2 and three["fell"] == 0
    assert three["std_error"] == pytest.approx(0.1)  # sd of (0.3, 0.5) over sqrt(2) runs
    assert table["2 shared, 0 in the same role"]["fell"] == 1  # 0.5 -> 0.4 in the first run, 0.5 -> 0.6 next
    assert table["0 shared, 0 in the same role"]["change"] == pytest.approx(0.0)


def test_run_taus_is_kendall_tau_of_each_run_and_refuses_a_constant() -> None:
    up = _peaks_run(shared=np.array([3, 2, 1, 0]), auc_source=np.array([9.0, 0.1, 0.2, 0.3]),
                    gd_test_source=np.array([0.0, 3.0, 2.0, 1.0]))  # fmt: skip
    down = _peaks_run(shared=np.array([3, 2, 1, 0]), auc_source=np.array([9.0, 0.3, 0.2, 0.1]),
                      gd_test_source=np.array([0.0, 3.0, 2.0, 1.0]))  # fmt: skip
    taus = peaks.run_taus([up, down], lambda r: r.auc_source, lambda r: -r.gd_test_source)
    np.testing.assert_allclose(taus, [1.0, -1.0])  # the source (target 0) left out in both
    with pytest.raises(ValueError, match="undefined"):
        peaks.run_taus([up], lambda r: r.auc_source, lambda r: r.auc_untrained)  # all zeros


def test_alignment_before_after_averages_seeds_and_leaves_the_source_out() -> None:
    shared = np.array([3, 0, 1])
    a = _peaks_run(shared=shared, auc_source=np.array([9.0, 0.2, 0.4]), auc_untrained=np.array([9.0, 0.3, 0.1]))
    b = _peaks_run(shared=shared, auc_source=np.array([9.0, 0.0, 0.6]), auc_untrained=np.array([9.0, 0.1, 0.1]))
    before, after, groups = peaks.alignment_before_after([a, b])
    np.testing.assert_allclose(before, [0.2, 0.1])
    np.testing.assert_allclose(after, [0.1, 0.5])
    assert groups.tolist() == [0, 1]


def test_peaks_sources_of_one_seed_share_the_untrained_and_input_scores(cache_dir, monkeypatch) -> None:
    import functools

    calls: list[int] = []
    original = peaks._baseline_run

    @functools.wraps(original)  # the same module and name: the same cache key
    def counted(**kw):
        calls.append(kw["seed"])
        return original(**kw)

    monkeypatch.setattr(peaks, "_baseline_run", counted)
    first = peaks.peaks_transfer(0, 0, **PEAKS_SMALL)
    fresh = peaks.peaks_transfer(7, 0, **{**PEAKS_SMALL, "cache": False})  # uncached: computes its own
    second = peaks.peaks_transfer(7, 0, **PEAKS_SMALL)  # the second source of seed 0 reads them back
    assert calls == [0, 0]
    for name in ("auc_untrained", "gd_test_untrained", "gd_train_untrained", "auc_input", "gd_test_input"):
        np.testing.assert_array_equal(getattr(second, name), getattr(first, name), err_msg=name)
        np.testing.assert_array_equal(getattr(second, name), getattr(fresh, name), err_msg=name)
    np.testing.assert_array_equal(second.auc_source, fresh.auc_source)
    assert not np.array_equal(second.auc_source, first.auc_source)  # another source: another trained network
    other_seed = peaks.peaks_transfer(0, 1, **PEAKS_SMALL)  # another seed: another untrained network, computed
    assert calls == [0, 0, 1] and not np.array_equal(other_seed.auc_untrained, first.auc_untrained)


# ---------------------------------------------------------------------------------------------------------------
# whole networks: draws and per-seed tables
# ---------------------------------------------------------------------------------------------------------------
def test_per_seed_stacks_results_in_seed_order() -> None:
    def result(auc: float) -> transfer.TransferResult:
        return transfer.TransferResult(auc, np.array([1.0, auc]), np.array([0.0, 1.0]), 0.5, 0.9, 0.0, {})

    table = {("a", "t"): [result(0.1), result(0.2), result(0.3)], ("b", "t"): [result(0.4)] * 3}
    assert transfer.per_seed(table, "auc")[("a", "t")].tolist() == [0.1, 0.2, 0.3]
    assert transfer.per_seed(table, "curve")[("b", "t")].shape == (3, 2)
    assert list(transfer.per_seed(table, "test_accuracy")) == list(table)


def test_nested_draws_take_the_smaller_set_from_the_larger() -> None:
    pool, _ = data.class_split("mnist_embedded", [5, 7], n_test_per_class=20, data_seed=0)
    for n_align, n_finetune in ((30, 10), (10, 30), (20, 20)):
        align, finetune = transfer.nested_draws(pool, n_align, n_finetune, seed=1)
        assert np.bincount(align.y).tolist() == [n_align] * 2 and np.bincount(finetune.y).tolist() == [n_finetune] * 2
        small, big = sorted((align, finetune), key=len)
        assert set(small.meta["source_index"]) <= set(big.meta["source_index"])
    other, _ = transfer.nested_draws(pool, 30, 10, seed=2)
    assert set(other.meta["source_index"]) != set(transfer.nested_draws(pool, 30, 10, seed=1)[0].meta["source_index"])


# ---------------------------------------------------------------------------------------------------------------
# the representation zoo (notebooks 08 and 11)
# ---------------------------------------------------------------------------------------------------------------
def test_draw_splits_hold_a_fixed_balanced_test_set_out_of_every_training_draw() -> None:
    from repalign.recipes import zoo

    splits, described = zoo.draw_splits(["digits"], [0, 1], n_train_per_class=5, n_test_per_class=4, test_seed=7)
    trains, test = splits["digits"]
    assert np.bincount(test.y).tolist() == [4] * 10 and [np.bincount(t.y).tolist() for t in trains] == [[5] * 10] * 2
    assert set(described) == {"digits train", "digits test"} and "each seed draws its own" in described["digits train"]
    splits, _ = zoo.draw_splits(["digits"], [1], n_train_per_class=5, n_test_per_class=4, test_seed=7)
    (again, test_again) = splits["digits"]
    np.testing.assert_array_equal(test_again.x, test.x)  # the test set does not depend on the seeds
    np.testing.assert_array_equal(again[0].x, trains[1].x)  # a seed's draw does not depend on the other seeds
    assert not np.array_equal(trains[0].x, trains[1].x)
    flat = test.x.reshape(len(test), -1)
    assert not any((flat == row).all(axis=1).any() for t in trains for row in t.x.reshape(len(t), -1)[:20])
    _, left_out = zoo.available_networks(["t2t_vit"], {})
    assert "t2t_vit" in left_out and "weights_paths" in left_out["t2t_vit"]


def test_score_zoo_scores_every_member_and_ranks_a_readable_one_first() -> None:
    from types import SimpleNamespace

    from repalign.recipes import zoo

    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 20)  # per part: seed 0's draw, seed 1's draw, the test set
    ys = [rng.permutation(y) for _ in range(3)]
    labels = np.concatenate(ys)
    readable = np.eye(3)[labels] * 3.0 + 0.3 * rng.normal(size=(180, 3))
    feats = {"readable": np.hstack([readable, rng.normal(size=(180, 5))]), "noise": rng.normal(size=(180, 8))}
    feats["half"] = np.hstack([readable[:, :1], rng.normal(size=(180, 7))])
    logits = {"readable": readable, "noise": rng.normal(size=(180, 3))}
    fz = zoo.FeatureZoo(feats, logits, np.array([0, 60, 120, 180]))
    trains, test = [SimpleNamespace(y=ys[0]), SimpleNamespace(y=ys[1])], SimpleNamespace(y=ys[2])
    seconds = {}
    values = zoo.score_zoo(fz, trains, test, seeds=[0, 1], probe_C=[1.0], seconds=seconds)
    assert len(values) == 2 and set(values[0]) == set(feats)
    row = values[0]["readable"]
    assert {"alignment_auc", "logme", "sfda", "alignment_auc_uncentred", "accuracy", "leep", "nce"} <= set(row)
    assert row["accuracy"] > values[0]["noise"]["accuracy"] and "leep" not in values[0]["half"]
    assert set(seconds) == {"feature_scores", "alignment_auc_uncentred", "probe_grid", "leep", "nce"}
    taus = zoo.ranking_taus(values, "alignment_auc", ["readable", "half", "noise"])
    assert taus.shape == (2,) and np.all(taus > 0.5)
    z, acc, groups = zoo.standardised_points({"a": values[0], "b": values[1]}, "alignment_auc", ["readable", "noise"])
    assert z.shape == acc.shape == groups.shape == (4,) and groups.tolist() == ["a", "a", "b", "b"]
    np.testing.assert_allclose([z[:2].mean(), z[:2].std()], [0.0, 1.0], atol=1e-12)


def test_scores_over_seeds_gathers_each_representation_per_seed() -> None:
    from types import SimpleNamespace

    from repalign.recipes import zoo

    rng = np.random.default_rng(1)
    y = np.repeat([0, 1], 15)
    reps = [{"good": (np.eye(2)[y] + 0.1 * rng.normal(size=(30, 2)), np.eye(2)[y]), "noise": (rng.normal(size=(30, 4)),
             rng.normal(size=(30, 4)))} for _ in range(2)]  # fmt: skip
    out = zoo.scores_over_seeds(reps, [SimpleNamespace(y=y)] * 2, SimpleNamespace(y=y), [0, 1], gd_steps=20,
                                loss_level=0.5)  # fmt: skip
    assert list(out.auc) == ["good", "noise"] and out.auc["good"].shape == (2,) and len(out.gd["good"]) == 2
    assert out.curves["good"].shape == (2, out.thresholds.size) and out.steps["noise"].shape == (2,)
    assert np.all(out.auc["good"] > out.auc["noise"]) and np.all(out.probe_accuracy["good"] == 1.0)


# ---------------------------------------------------------------------------------------------------------------
# the linear learner on fixed representations (notebooks 01 and 06)
# ---------------------------------------------------------------------------------------------------------------
def test_shared_step_descents_use_one_step_for_every_representation() -> None:
    from repalign.networks.linear import gd_linear
    from repalign.recipes import descent

    rng = np.random.default_rng(0)
    y = np.repeat([-1.0, 1.0], 20)
    feats = {"aligned": np.column_stack([y, rng.normal(size=40)]), "noise": rng.normal(size=(40, 6)) * 5.0}
    specs = {k: ra.spectrum(v, y, center=False) for k, v in feats.items()}
    out = descent.shared_step_descents(feats, y, specs, steps=30, test_features=feats, test_targets=y, device="cpu")
    step = 1.0 / max(s.singular_values[0] ** 2 for s in specs.values())
    assert list(out) == ["aligned", "noise"] and all(r.lr == pytest.approx(step) for r in out.values())
    direct = gd_linear(feats["noise"], y, lr=step, steps=30)
    np.testing.assert_allclose(out["noise"].train_loss, direct.train_loss, rtol=1e-12)
    assert out["aligned"].train_loss[-1] < out["noise"].train_loss[-1] and out["aligned"].test_accuracy is not None


def test_planted_descents_put_the_target_on_the_top_or_the_bottom_directions() -> None:
    from repalign.recipes import descent

    out = descent.planted_descents(n=60, rank=8, condition=10.0, k=2, seeds=[0, 1], steps=40, device="cpu")
    assert tuple(out) == descent.PLANTED and all(len(v) == 2 for v in out.values())
    for (top_spec, top), (bottom_spec, bottom) in zip(*out.values(), strict=True):
        np.testing.assert_allclose(top_spec.singular_values, bottom_spec.singular_values, rtol=1e-9)
        assert top_spec.total == pytest.approx(60.0) and top_spec.auc() > bottom_spec.auc()
        assert np.all(top.train_loss[1:] < bottom.train_loss[1:])  # same spectrum, target on top: faster


# ---------------------------------------------------------------------------------------------------------------
# tasks and curves of notebooks 00-06
# ---------------------------------------------------------------------------------------------------------------
def test_tasks_are_labelled_by_title_and_pair_and_flattened() -> None:
    pair = data.prepare_task("mnist_embedded", classes=[3, 8], n_per_class=10, seed=0)
    assert layerwise.task_label(pair) == "MNIST 3 vs 8"
    x, label, described = layerwise.flat_task(pair, "mnist_embedded")
    assert x.shape == (20, 784) and label == "MNIST 3 vs 8" and described == {label: pair.info.describe()}
    tasks, described = layerwise.prepare_tasks(
        {"pair": {"name": "mnist_embedded", "classes": [3, 8], "n_per_class": 10},
         "ridership": {"name": "chicago_ridership", "n": 30}}, seed=0, target_scaling="standardize",
    )  # fmt: skip
    assert list(tasks) == list(described) == ["pair", "ridership"]
    np.testing.assert_array_equal(tasks["pair"].x, pair.x)  # the same draw as prepare_task's
    assert tasks["ridership"].info.task == "regression" and abs(tasks["ridership"].y.mean()) < 1e-9
    assert layerwise.task_label(tasks["ridership"]) == (tasks["ridership"].info.title or tasks["ridership"].info.name)


def test_last_layer_curves_read_the_input_once_and_each_last_layer(blobs) -> None:
    x, y = blobs
    runs = {f"depth {d}": layerwise.train_and_measure(x, y, task="binary", seeds=[0, 1], cache=False,
                                                      config=MLPConfig(depth=d, width=8, epochs=2)) for d in (1, 2)}  # fmt: skip
    taus = ra.threshold_grid(80)
    curves = layerwise.last_layer_curves(runs, taus)
    assert list(curves) == ["input", "depth 1", "depth 2"] and curves["input"].shape == (2, 62)
    np.testing.assert_array_equal(curves["depth 2"], layerwise.stack_curves(runs["depth 2"], "hidden2", taus))
    np.testing.assert_array_equal(curves["input"], layerwise.stack_curves(runs["depth 2"], "input", taus))


# ---------------------------------------------------------------------------------------------------------------
# whole networks transferred (claims 9 and 10, issue #22): standardised inputs, the frozen-feature probe, accuracy
# as a number of test images
# ---------------------------------------------------------------------------------------------------------------
def test_network_inputs_standardise_a_small_network_by_given_statistics_and_refuse_them_for_a_backbone() -> None:
    rng = np.random.default_rng(1)
    start, other = rng.uniform(0.3, 0.8, size=(50, 1, 8, 8)), rng.uniform(0, 1, size=(7, 1, 8, 8))
    mean, std = transfer.pixel_statistics(start)
    own = transfer.network_inputs("mlp", start, standardize=(mean, std))
    assert own.dtype == np.float32 and abs(own.mean()) < 1e-6 and abs(own.std() - 1.0) < 1e-5
    np.testing.assert_allclose(transfer.network_inputs("cnn", other, standardize=(mean, std)), (other - mean) / std,
                               rtol=1e-5, atol=1e-6)  # fmt: skip
    np.testing.assert_array_equal(transfer.network_inputs("mlp", other), other.astype(np.float32))  # none given
    with pytest.raises(ValueError, match="its own \\(ImageNet\\) statistics"):
        transfer.network_inputs("resnet18", other, 16, standardize=(mean, std))
    with pytest.raises(ValueError, match="constant"):
        transfer.pixel_statistics(np.full((3, 1, 4, 4), 0.5))


def test_the_probe_reads_the_frozen_representation_and_leaves_the_fine_tuning_alone(cache_dir) -> None:
    from repalign.networks.features import extract
    from repalign.networks.probes import logistic_probe

    rng = np.random.default_rng(2)  # a task a random representation reads only in part: the probe is imperfect
    x = rng.uniform(0, 1, size=(120, 1, 8, 8)).astype(np.float32)
    y = np.digitize(x[:, 0, :2, :2].mean(axis=(1, 2)) + rng.normal(0, 0.1, 120), [0.4, 0.6])
    trained = transfer.network_spec("mlp", 3, x.shape[1:], seed=0)  # untrained: its features move a lot in training
    train, test = (x[::2], y[::2]), (x[1::2][:45], y[1::2][:45])
    kw = dict(seed=3, epochs=30, lr=1e-2)  # enough target training to move the representation
    probed = transfer.transfer_to_target(trained, train, train, test, probe=True, **kw)
    plain = transfer.transfer_to_target(trained, train, train, test, **kw)
    # the probe is logistic regression on the untouched network's features, measured before the fine-tuning
    untouched = transfer.build_network(trained)
    feats = [extract(untouched, a, ["hidden2"], progress=False)["hidden2"] for a in (train[0], test[0])]
    direct = logistic_probe(feats[0].astype(np.float64), train[1], feats[1].astype(np.float64), test[1], seed=3)
    assert probed.probe_accuracy == direct["accuracy"]
    # asking for a probe changes nothing else: same alignment, same fine-tuned accuracy; none asked, none reported
    assert probed.auc == plain.auc and probed.test_accuracy == plain.test_accuracy
    assert plain.probe_accuracy is None and plain.probe_correct is None
    # accuracies as numbers of test images: whole numbers, one image being 1 / n_test of accuracy
    assert probed.n_test == 45 == plain.n_test
    for correct in (probed.test_correct, probed.probe_correct):
        assert correct == pytest.approx(round(correct), abs=1e-9) and 0 <= correct <= 45
    assert transfer.per_seed({"k": [probed, plain]}, "test_correct")["k"].tolist() == [probed.test_correct] * 2
    back = transfer.TransferResult.from_dict(probed.to_dict())
    assert (back.probe_accuracy, back.n_test, back.test_correct) == (probed.probe_accuracy, 45, probed.test_correct)


def test_a_probe_run_is_cached_apart_from_a_run_without_one(images, cache_dir, monkeypatch) -> None:
    x, y = images
    spec = transfer.network_spec("mlp", 3, x.shape[1:], seed=0)
    first = transfer.transfer_to_target(spec, (x, y), (x, y), (x, y), seed=0, epochs=1)
    monkeypatch.setattr(transfer, "fine_tune", _refuse)
    assert transfer.transfer_to_target(spec, (x, y), (x, y), (x, y), seed=0, epochs=1).auc == first.auc  # cached
    with pytest.raises(AssertionError, match="recomputed"):  # a probe is another result: computed, not read back
        transfer.transfer_to_target(spec, (x, y), (x, y), (x, y), seed=0, epochs=1, probe=True)


# ------------------------------------------------------------------------ notebook 11's zoo helpers (issue 24)
def _labelled(y: np.ndarray, names: list[str]) -> data.Dataset:
    info = data.DatasetInfo(name="toy", source="test", n=len(y), shape=(2,), classes=names, task="multiclass",
                            licence="none")  # fmt: skip
    return data.Dataset(np.zeros((len(y), 2), dtype=np.float32), y.astype(np.int64), info)


def test_subset_zoo_keeps_exactly_the_rows_of_its_classes_in_every_part() -> None:
    from repalign.recipes import zoo

    names = ["a", "b", "c", "d"]
    parts = [_labelled(np.array(y), names) for y in ([0, 1, 2, 3, 2, 0], [3, 3, 1, 2], [2, 0, 1, 3, 1])]
    offsets = np.cumsum([0] + [len(p.y) for p in parts])
    tag = np.arange(offsets[-1], dtype=np.float64)[:, None]  # each row carries its own index
    labels = np.concatenate([p.y for p in parts])
    picked, trains, test = zoo.subset_zoo(zoo.FeatureZoo({"r": tag}, {"r": tag}, offsets), parts[:2], parts[2],
                                          ["c", "a"])  # fmt: skip
    assert set(labels[picked.features["r"][:, 0].astype(int)]) == {0, 2}
    for i, part in enumerate([*trains, test]):
        rows = picked.features["r"][picked.part(i), 0].astype(int)
        assert np.all((rows >= offsets[i]) & (rows < offsets[i + 1]))  # each part stays its own
        assert np.array_equal(np.where(labels[rows] == 2, 0, 1), part.y)  # relabelled in the order given: c→0, a→1


def test_build_targets_refuses_a_malformed_target_before_loading_anything() -> None:
    from repalign.recipes import zoo

    with pytest.raises(ValueError, match="must be"):
        zoo.build_targets({"t": {"data": "digits", "clases": [3, 5]}}, [0, 1], n_train_per_class=2,
                          n_test_per_class=2, test_seed=0)  # fmt: skip


def test_ground_truth_agreement_score_gap_and_the_tau_table() -> None:
    from repalign.recipes import zoo

    items = ["p", "q", "r"]
    same = [{k: {"accuracy": v, "s": 2 * v} for k, v in zip(items, (0.9, 0.5, 0.1), strict=True)}] * 3
    assert zoo.ground_truth_agreement(same, items) == pytest.approx([1.0, 1.0, 1.0])  # 3 seeds: 3 pairs
    flipped = [same[0], {k: {"accuracy": -v["accuracy"]} for k, v in same[0].items()}]
    assert zoo.ground_truth_agreement(flipped, items) == pytest.approx([-1.0])
    assert zoo.score_gap(same, "s", "accuracy", items) == pytest.approx(np.tile([0.9, 0.5, 0.1], (3, 1)))
    tau = {"x": {"t1": np.array([0.2, 0.4]), "t2": np.array([0.6, 0.0])}}
    row = zoo.tau_table(tau, {"both": ["t1", "t2"]}).splitlines()[1].split()
    # per seed the mean over targets: 0.4 and 0.2; then mean ± population sd over seeds: 0.30 ± 0.10
    assert row[1:] == ["+0.30", "+0.30", "+0.30", "±", "0.10"]  # per target: the mean over its seeds
