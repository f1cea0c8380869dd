"""The rehearsal of ``make paper`` (issue #23) and the failures it found.

``make rehearsal`` (``repalign.run.rehearsal``) writes generated data in the paper data sets' on-disk formats and
random weight files with the real keys, makes the four checkpoints of notebook 09 with the commands paper-check
prints, and runs every notebook through its paper-scale code path with ``notebooks/params/rehearsal``. These tests
check its parts (the full run is ``make rehearsal``, which CI runs after ``make test``):

- the rehearsal yamls differ from the paper yamls in sizes only (a property of every yaml pair, checked generically);
- the generated data load through the real loaders, learnably but not separably, and say they are generated;
- the weight files load into torchvision's own builders (strict keys);
- the failures the first hand-made rehearsal found, each with a test that failed on f91c348 (noted per test).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign import data as D
from repalign.core.paths import repo_root
from repalign.run import params

ROOT = repo_root()
PAPER = ROOT / "notebooks" / "params" / "paper"
REHEARSAL = ROOT / "notebooks" / "params" / "rehearsal"


# ------------------------------------------------------------------------------------------------ sizes only
def _pairs() -> list[str]:
    return sorted(p.stem for p in PAPER.glob("*.yaml"))


@pytest.mark.parametrize("stem", _pairs())
def test_each_rehearsal_yaml_differs_from_the_paper_yaml_in_sizes_only(stem: str) -> None:
    """Every paper yaml has a rehearsal yaml, and they differ only in parameters of
    :data:`repalign.run.rehearsal.SIZE_PARAMETERS` (smaller or equal; seeds a prefix) and in where the run writes."""
    from repalign.run import rehearsal

    paper = params.scale_parameters(stem, "paper")
    assert (REHEARSAL / f"{stem}.yaml").is_file(), (
        f"no rehearsal yaml for {stem}: copy the paper yaml, make its sizes small"
    )
    ours = params.scale_parameters(stem, "rehearsal")
    assert rehearsal.size_differences(paper, ours) == []
    assert (
        ours["run_scale"] == "rehearsal" and "rehearsal" in ours["results_dir"] and "rehearsal" in ours["figures_dir"]
    )
    params.validate(stem, ours)


def test_the_sizes_only_check_can_fail() -> None:
    from repalign.run import rehearsal

    paper = {"datasets": {"A n=10": {"name": "mnist", "n": 10}}, "seeds": [0, 1, 2], "epochs": 100, "lr": 0.1,
             "networks": ["resnet50"], "layers": {"resnet50": ["layer4"]}, "image_size": 224}  # fmt: skip
    fine = {**paper, "datasets": {"A n=10": {"name": "mnist", "n": 2}}, "seeds": [0], "epochs": 1, "image_size": 32}
    assert rehearsal.size_differences(paper, fine) == []
    bad = [
        {**paper, "datasets": {"A n=10": {"name": "cifar10", "n": 2}}},  # picks other data
        {**paper, "networks": ["resnet18"]},  # other networks
        {**paper, "layers": {"resnet50": ["layer3"]}},  # other layers
        {**paper, "lr": 0.01},  # another rule
        {**paper, "seeds": [5]},  # other seeds, not fewer
        {**paper, "epochs": 200},  # larger
        {k: v for k, v in paper.items() if k != "lr"},  # a parameter left out
        {**paper, "extra": 1},  # one added
    ]
    for changed in bad:
        assert rehearsal.size_differences(paper, changed), changed


def test_size_parameters_name_no_rule() -> None:
    """Sizes are counts, epochs, steps, image and batch sizes, numbers of seeds and draws: nothing that picks data,
    networks, layers or rules."""
    from repalign.run import rehearsal

    forbidden = {"dataset", "datasets", "targets", "sources", "classes", "networks", "pretrained", "layers",
                 "families", "family", "start", "lr", "optimizer", "activation", "depth", "width", "probe_C",
                 "loss_level", "loss_levels", "batch_sizes", "device", "checkpoints", "units", "hog_cell",
                 "sift_step"}  # fmt: skip
    assert not forbidden & set(rehearsal.SIZE_PARAMETERS)


# ------------------------------------------------------------------------------------------------ generated data
@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from repalign.run import rehearsal

    root = tmp_path_factory.mktemp("rehearsal_data")
    rehearsal.write_data(root, ["cifar10", "cifar100", "mnist", "ct_position", "office31", "imagenet"])
    return root


@pytest.mark.slow
def test_generated_data_load_through_the_real_loaders_and_say_so(generated: Path) -> None:
    for name, kw in [("cifar10", {}), ("cifar100", {}), ("mnist", {}), ("ct_position", {}),
                     ("office31", {"domain": "dslr", "image_size": 32})]:  # fmt: skip
        assert D.source(name).check(generated) is None, name
        ds = D.load(name, root=generated, **kw)
        assert ds.info.coverage == "generated", name
        assert "rehearsal on generated data" in ds.info.describe(), name
    for split in ("train", "val"):
        folders = sorted(p.name for p in (generated / "imagenet" / split).iterdir())
        assert folders == sorted(D.imagenet_wnids()), "all 1,000 wnid folders"
    assert (generated / "office31" / "amazon" / "images" / "back_pack").is_dir(), "the archive's layout"


@pytest.mark.slow
def test_generated_images_are_learnable_but_not_separable(generated: Path) -> None:
    from repalign.networks.probes import logistic_probe

    train, test = D.load("cifar10", root=generated), D.load("cifar10", split="test", root=generated)
    acc = logistic_probe(train.x, train.y, test.x, test.y, C=0.01)
    assert 0.3 < acc["accuracy"] < 0.95, acc["accuracy"]  # chance is 0.1
    assert acc["train_accuracy"] < 1.0 or acc["accuracy"] < 0.95


def test_random_weight_files_have_the_real_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """torchvision's own builder loads them strictly from $TORCH_HOME/hub/checkpoints."""
    import torchvision

    from repalign.run import rehearsal

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    written = rehearsal.write_weights(tmp_path, ["resnet18", "googlenet"])
    assert [p.name for p in written] == ["resnet18-f37072fd.pth", "googlenet-1378be20.pth"]
    model = torchvision.models.get_model("resnet18", weights="DEFAULT")
    assert torch.isfinite(model(torch.rand(2, 3, 32, 32))).all()
    torchvision.models.get_model("googlenet", weights="DEFAULT")


def _printed(scale: str) -> set[str]:
    """The commands paper-check prints for notebook 09's checkpoints at ``scale``, their process count left out."""
    from repalign.run import paper_check

    missing, _ = paper_check.paper_check(scale, ["09"])
    printed = {m.split("make it with: ")[1].split(" (")[0] for m, _, _ in missing.values() if "make it with: " in m}
    return {_one_process(cmd) for cmd in printed}


def _one_process(cmd: str) -> str:
    return re.sub(r"--nproc_per_node=\d+ ", "--nproc_per_node=N ", cmd)


@pytest.mark.slow
def test_rehearsal_checkpoint_commands_are_paper_checks_with_sizes_appended(tmp_path, monkeypatch) -> None:
    """The checkpoints are made by the exact commands paper-check prints at the rehearsal scale, with size flags
    appended (argparse keeps the last), one of them under 2 processes; those are the paper scale's commands (both
    name the checkpoints under ``$REPALIGN_DATA``: the rehearsal's data root when it runs)."""
    from repalign.run import rehearsal

    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path))  # every checkpoint missing
    planned = rehearsal.checkpoint_commands(epochs=1, image_size=32, batch_size=64)
    sizes = " --epochs 1 --image-size 32 --batch-size 64 --workers 0"
    assert len(planned) == 4 and all(cmd.endswith(sizes) for cmd in planned)
    assert sum("--nproc_per_node=2 " in c for c in planned) == 1
    assert sum("--nproc_per_node=1 " in c for c in planned) == 3
    assert {_one_process(cmd.removesuffix(sizes)) for cmd in planned} == _printed("rehearsal")
    assert _printed("rehearsal") == _printed("paper")
    assert all(f"--out {tmp_path}/pretrain/" in cmd for cmd in planned)


def test_checkpoint_commands_never_write_outside_the_rehearsal_folder(tmp_path: Path) -> None:
    from repalign.run import rehearsal

    with pytest.raises(ValueError, match="outside"):
        rehearsal.make_checkpoints(tmp_path, ["torchrun -m x --out ../elsewhere"], {})
    with pytest.raises(ValueError, match="outside"):
        rehearsal.make_checkpoints(tmp_path, ["torchrun -m x --out /tmp/elsewhere"], {})


def test_the_manifest_vouches_for_its_files_only(tmp_path: Path) -> None:
    """Changed bytes, an unlisted file or another data set's name are not vouched for; without a manifest nothing is."""
    from repalign.data import manifest

    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "f.bin").write_bytes(b"generated")
    (tmp_path / "a" / "g.bin").write_bytes(b"real")
    assert not manifest.vouches_for(tmp_path, "cifar10", ["a/f.bin"])
    manifest.write_manifest(tmp_path, {"cifar10": ["a/f.bin"]})
    assert manifest.vouches_for(tmp_path, "cifar10", ["a/f.bin"])
    assert not manifest.vouches_for(tmp_path, "cifar100", ["a/f.bin"])
    assert not manifest.vouches_for(tmp_path, "cifar10", ["a/f.bin", "a/g.bin"])
    (tmp_path / "a" / "f.bin").write_bytes(b"changed")
    assert not manifest.vouches_for(tmp_path, "cifar10", ["a/f.bin"])
    assert manifest.generated_sources(tmp_path) == {"cifar10"}


def test_generated_data_are_kept_while_current_and_written_again_when_not(tmp_path, monkeypatch) -> None:
    """A second run keeps an intact copy of today's recipe (so make re-runs nothing); a changed file or another
    recipe makes it write the data set again."""
    from repalign.run import rehearsal

    rehearsal.write_data(tmp_path, ["ct_position"])
    csv = next((tmp_path / "ct_position").iterdir())
    stamp = csv.stat().st_mtime_ns
    rehearsal.write_data(tmp_path, ["ct_position"])
    assert csv.stat().st_mtime_ns == stamp
    monkeypatch.setattr(rehearsal, "GENERATOR_VERSION", rehearsal.GENERATOR_VERSION + 1)
    rehearsal.write_data(tmp_path, ["ct_position"])
    assert csv.stat().st_mtime_ns != stamp and D.load("ct_position", root=tmp_path).info.coverage == "generated"
    csv.write_text(csv.read_text() + "0," * 385 + "0\n")
    rehearsal.write_data(tmp_path, ["ct_position"])
    assert D.source("ct_position").check(tmp_path) is None and rehearsal._intact(tmp_path, "ct_position")


# ------------------------------------------------------------------------------------------------ failures found
def test_ranking_agreement_of_a_constant_truth_is_zero_not_nan() -> None:
    """11 crashed when every representation reached the same probe accuracy (f91c348: weighted tau NaN)."""
    from repalign.measure.scores import ranking_agreement

    assert ranking_agreement([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]) == 0.0
    assert ranking_agreement([1.0, 1.0, 1.0], [0.1, 0.5, 0.9]) == 0.0
    assert ranking_agreement([1.0, 2.0, 3.0], [0.1, 0.5, 0.9]) == pytest.approx(1.0)
    assert ranking_agreement([1.0, 2.0, 3.0], [0.5, 0.5, 0.9]) > 0


def _blobs(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    x = rng.normal(size=(n, d)) * rng.uniform(0.5, 3, size=d) + rng.normal(size=(k, d))[y] * 0.7 + 5.0
    return x.astype(np.float32), y


def _objective(z: np.ndarray, labels: np.ndarray, weight: np.ndarray, bias: np.ndarray, C: float) -> float:
    """scikit-learn's logistic objective (mean loss + ||W||^2 / (2 C n)) at (weight (d, K'), bias (K',))."""
    logits = z @ weight + bias
    if weight.shape[1] == 1:
        data = np.mean(np.logaddexp(0, -np.where(labels == 1, 1, -1) * logits[:, 0]))
    else:
        data = np.mean(np.logaddexp.reduce(logits, axis=1) - logits[np.arange(len(labels)), labels])
    return float(data + (weight * weight).sum() / (2 * C * len(labels)))


@pytest.mark.parametrize("k", [2, 5])
def test_torch_logistic_probe_equals_scikit_learn(k: int) -> None:
    """The paper scale's probe runs in torch on the device (f91c348: scikit-learn on the CPU only); same
    objective, never solved worse, the same answers within :data:`repalign.networks.probes.TORCH_TOLERANCE`."""
    from repalign.networks import probes

    x, y = _blobs(300, 20, k, 0)
    xt, yt = _blobs(200, 20, k, 1)
    tol = probes.TORCH_TOLERANCE
    for C in (0.01, 1.0):
        ref = probes.logistic_probe(x, y, xt, yt, C=C)
        got = probes.logistic_probe(x, y, xt, yt, C=C, device="cpu")
        assert abs(got["accuracy"] - ref["accuracy"]) <= tol["accuracy"]
        assert abs(got["loss"] - ref["loss"]) <= tol["loss"] * ref["loss"]
        scaler, sk = ref["model"].steps[0][1], ref["model"].steps[1][1]
        z = (x.astype(np.float64) - scaler.mean_) / scaler.scale_
        torch_probe = got["model"]
        ours = _objective(z, y, torch_probe.weight.numpy(), torch_probe.bias.numpy(), C)
        assert ours <= _objective(z, y, sk.coef_.T, sk.intercept_, C) + 1e-12
        if C <= 0.1:
            p_ref = ref["model"].predict_proba(xt.astype(np.float64))
            assert np.abs(torch_probe.predict_proba(xt) - p_ref).max() <= tol["probability"]
    grid = probes.probe_grid(x, y, xt, yt, Cs=(0.01, 1.0), device="cpu")
    assert grid["accuracy"] == pytest.approx(probes.probe_grid(x, y, xt, yt, Cs=(0.01, 1.0))["accuracy"],
                                             abs=tol["accuracy"])  # fmt: skip


def test_gd_linear_runs_on_a_named_device_with_the_same_numbers() -> None:
    """gd_linear took no device (NumPy input always ran on the CPU); ``device=`` moves it, the CPU numbers stay."""
    from repalign.networks.linear import gd_linear

    x, y = _blobs(100, 8, 2, 0)
    t = np.where(y == 1, 1.0, -1.0)
    ref = gd_linear(x, t, steps=50)
    got = gd_linear(x, t, steps=50, device="cpu")
    assert np.array_equal(ref.train_loss, got.train_loss) and np.array_equal(ref.weights, got.weights)


def test_backbone_features_prepare_images_batch_by_batch(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """11 held every image at 224 px as float32 in RAM (~21 GB at the paper's size, f91c348); now each batch is
    prepared as it is used, and the features are the same."""
    from repalign.networks import features, models

    seen = []
    real = models.prepare_images

    def spy(images, *a, **kw):
        seen.append(len(images))
        return real(images, *a, **kw)

    images = np.random.default_rng(0).random((10, 3, 16, 16)).astype(np.float32)
    whole = features.extract(models.backbone("resnet18", seed=0), real(images, "resnet18", 32), ["avgpool"],
                             batch_size=4, device="cpu", progress=False)["avgpool"]  # fmt: skip
    monkeypatch.setattr(models, "prepare_images", spy)
    out = features.backbone_features("resnet18", images, pretrained=False, seed=0, image_size=32, batch_size=4,
                                     device="cpu", progress=False, cache_dir=tmp_path)  # fmt: skip
    assert max(seen) <= 4
    assert np.array_equal(out.features["avgpool"], whole)


def test_fine_tune_uses_autocast_where_asked_and_float32_by_default_on_cpu() -> None:
    """Fine-tuning ran in float32 everywhere (f91c348); ``amp="auto"`` is bfloat16 autocast on CUDA, float32 on the
    CPU (so no replicate number changes); ``amp="bfloat16"`` asks for it anywhere."""
    from repalign.networks.finetune import fine_tune, precision
    from repalign.networks.models import mlp

    y = np.arange(96) % 3
    x = (np.eye(12)[y] * 3 + np.random.default_rng(0).normal(scale=0.3, size=(96, 12))).astype(np.float32)
    dtypes = []

    def run(amp: str) -> dict:
        model = mlp(12, 1, 16, bias=True, out_features=3, seed=0)
        model.hidden1.register_forward_hook(lambda m, i, o: dtypes.append(o.dtype))
        return fine_tune(model, x, y, x, y, num_classes=3, epochs=5, device="cpu", amp=amp, progress=False, lr=0.01)

    run("auto")
    assert set(dtypes) == {torch.float32} and precision("auto", torch.device("cpu")) == "float32"
    dtypes.clear()
    res = run("bfloat16")
    assert torch.bfloat16 in dtypes and res["test_accuracy"] > 0.9
    assert precision("auto", torch.device("cuda")) in ("bfloat16 autocast", "float32")


def test_fine_tune_prints_images_per_second_and_an_eta(capsys: pytest.CaptureFixture[str]) -> None:
    from repalign.networks.finetune import fine_tune
    from repalign.networks.models import mlp

    x, y = _blobs(64, 12, 3, 0)
    fine_tune(mlp(12, 1, 16, bias=True, out_features=3, seed=0), x, y, x, y, num_classes=3, epochs=3, device="cpu",
              progress=True)  # fmt: skip
    err = capsys.readouterr()
    lines = [ln for ln in (err.out + err.err).splitlines() if "fine-tune epoch" in ln]
    assert len(lines) == 3 and all("images/s" in ln and "ETA" in ln for ln in lines), lines


def test_provenance_names_the_device_and_the_precision() -> None:
    """Claim files recorded neither (f91c348)."""
    from repalign.core.provenance import provenance

    record = provenance(timestamp=False)["device"]
    assert record["auto"] in ("cpu", "cuda")
    assert ("gpu" in record) and (record["gpu"] is None) == (record["auto"] == "cpu")
    assert set(record["precision"]) >= {"fine_tuning", "features", "measure"}


def test_the_paper_scale_has_no_per_cell_limit_unless_asked() -> None:
    """The Makefile gave every paper notebook 3,600 s per cell: 09's one fine-tuning cell takes hours (f91c348)."""
    text = (ROOT / "Makefile").read_text()
    rule = text[text.index("define NOTEBOOK_RULE") : text.index("endef")]
    assert "$(NB_TIMEOUT)" not in rule or "PAPER_TIMEOUT" in text
    assert "PAPER_TIMEOUT ?=\n" in text or "PAPER_TIMEOUT ?= \n" in text


@pytest.mark.notebook
def test_a_cell_over_its_limit_fails_with_a_clear_message(tmp_path: Path) -> None:
    """A user-set limit ends in one NotebookFailed line naming the cell and the limit (f91c348: a raw
    CellTimeoutError from nbclient)."""
    import nbformat

    from repalign.run import notebook

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import time\ntime.sleep(30)")]  # fmt: skip
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(notebook.NotebookFailed, match=r"cell 2: .*limit of 2 s"):
        notebook._execute(path, tmp_path / "out.ipynb", {}, dict(os.environ), "none", False, 2)
