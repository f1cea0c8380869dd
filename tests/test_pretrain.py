"""repalign.networks.pretrain on CPU: DDP (2 gloo processes under torchrun) equals one process, resume is exact, bad input.

Runs share three trainings (module fixtures): a 1-process reference, a 2-process torchrun run of the same global
batch, and a run killed right after its first checkpoint. The equivalence is checked in float64 (``--dtype
float64``): ResNet18 on 8-image batches is numerically chaotic in float32 (a 1e-7 rounding difference grows to
~1e-2 within a few SGD steps), so float32 cannot tell a real bug from rounding; float64 can (see docs/PRETRAIN.md).

The tests that need a training are ``slow`` (the torchrun one also ``distributed``): out of `make test-fast`. Each
training costs seconds of process start-up (torch imports, the torchrun agent and its rendezvous) more than of
computing (6 SGD steps): 16-pixel images instead of 32 would save about a second a run, so the sizes stay.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.networks import pretrain

#: max |w_2proc - w_1proc| over every parameter and BatchNorm buffer after 6 SGD steps in float64
#: (measured: ~1e-12; a per-process BatchNorm or a wrong data split gives > 1e-3)
DDP_TOLERANCE = 1e-9
REPO = Path(__file__).resolve().parents[1]


def _write_folder(root: Path, n_train: int = 8, n_val: int = 2, size: int = 32) -> Path:
    """3 classes of textured RGB noise (PNG), ``root/{train,val}/<class>/<i>.png``."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, n in (("train", n_train), ("val", n_val)):
        for k, name in enumerate(("ant", "bee", "cat")):
            folder = root / split / name
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                a = rng.random((size, size, 3))
                a[..., k] += 0.5 * rng.random()
                Image.fromarray((a / a.max() * 255).astype(np.uint8)).save(folder / f"{i}.png")
    return root


def _args(data: Path, out: Path, *extra: str, workers: int = 0) -> list[str]:
    common = "--epochs 2 --batch-size 8 --image-size 32 --lr 0.01 --dtype float64 --no-progress"
    return ["--data", str(data), "--out", str(out), *common.split(), "--workers", str(workers), *extra]


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    env.pop(pretrain.EXIT_AFTER_EPOCH_ENV, None)
    return env


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(pretrain.checkpoint_file(run), map_location="cpu", weights_only=True)["model"]


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_folder(tmp_path_factory.mktemp("folder"))


@pytest.fixture(scope="module")
def reference(data: Path, tmp_path_factory: pytest.TempPathFactory, pretrain_in_process) -> Path:
    out = tmp_path_factory.mktemp("ref")
    assert pretrain_in_process(_args(data, out)) == 0
    return out


@pytest.fixture(scope="module")
def ddp_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("ddp")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m"]
    proc = subprocess.run(
        [*cmd, "repalign.networks.pretrain", *_args(data, out)], env=_env(), capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out


@pytest.fixture(scope="module")
def killed_run(data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 1-process run (one DataLoader worker) that exits hard right after writing epoch 1's checkpoint."""
    out = tmp_path_factory.mktemp("killed")
    env = {**_env(), pretrain.EXIT_AFTER_EPOCH_ENV: "1"}
    argv = [sys.executable, "-m", "repalign.networks.pretrain", *_args(data, out, workers=1)]
    proc = subprocess.run(argv, env=env, capture_output=True, text=True)
    assert proc.returncode == 17, proc.stderr[-3000:]
    return out


# ------------------------------------------------------------------------------------------- distributed = one


@pytest.mark.distributed
@pytest.mark.slow
def test_two_processes_match_one_process_of_the_same_global_batch(reference: Path, ddp_run: Path) -> None:
    one, two = _weights(reference), _weights(ddp_run)
    assert one.keys() == two.keys()
    diff = max(float((one[k] - two[k]).abs().max()) for k in one if one[k].is_floating_point())
    assert diff <= DDP_TOLERANCE, f"2-process run differs from the 1-process run by {diff:.3g}"
    assert all(torch.equal(one[k], two[k]) for k in one if not one[k].is_floating_point())  # num_batches_tracked
    from repalign.networks.models import backbone

    init = backbone("resnet18", num_classes=3, seed=0).state_dict()
    moved = max(
        float((one[k].double() - init[k].double()).abs().max())
        for k in one
        if "running" not in k and one[k].is_floating_point()
    )
    assert moved > 1e6 * DDP_TOLERANCE, "training barely moved the weights: the comparison would say nothing"
    info = pretrain.checkpoint_info(ddp_run)
    assert info["world_size"] == 2 and info["done"] and info["epoch"] == 2


def test_global_batches_do_not_depend_on_the_number_of_processes() -> None:
    data = list(range(29))
    for epoch in (0, 3):
        samplers = {
            (w, r): pretrain.GlobalBatchSampler(data, 8, num_replicas=w, rank=r, seed=5)
            for w, r in ((1, 0), (2, 0), (2, 1), (4, 3))
        }
        for s in samplers.values():
            s.set_epoch(epoch)
        one = [list(samplers[1, 0])[i : i + 8] for i in range(0, 24, 8)]
        r0, r1 = list(samplers[2, 0]), list(samplers[2, 1])
        assert [r0[4 * s : 4 * s + 4] + r1[4 * s : 4 * s + 4] for s in range(3)] == one
        assert list(samplers[4, 3]) == [k for b in one for k in b[6:8]]
        assert len(samplers[2, 1]) == 12  # 3 global batches of 8, the 5 left over are dropped
    with pytest.raises(ValueError, match="multiple of the 3 processes"):
        pretrain.GlobalBatchSampler(data, 8, num_replicas=3, rank=0, seed=0)


def test_augmentation_is_seeded_per_example(data: Path) -> None:
    config = pretrain.parse_args(_args(data, data / "unused"))
    train, _, _ = pretrain._loaders(config.resolved("cpu"), world=1, rank=0, pin=False)
    ds = train.dataset
    assert torch.equal(ds[(3, 1)][0], ds[(3, 1)][0])
    assert not torch.equal(ds[(3, 1)][0], ds[(3, 2)][0])  # a new crop each epoch
    assert ds[(3, 1)][0].shape == (3, 32, 32)


# ------------------------------------------------------------------------------------------------------ resume


@pytest.mark.slow
def test_killed_run_resumes_to_the_same_weights(
    killed_run: Path, reference: Path, data: Path, tmp_path: Path, pretrain_in_process
) -> None:
    info = pretrain.checkpoint_info(killed_run)
    assert info["epoch"] == 1 and not info["done"]
    lines = (killed_run / pretrain.METRICS_NAME).read_text().splitlines()
    assert len(lines) == 1
    with pytest.raises(ValueError, match="unfinished: epoch 1 of 2"):
        pretrain.load_pretrained(killed_run)
    assert isinstance(pretrain.load_pretrained(killed_run, allow_unfinished=True), torch.nn.Module)

    # a kill during the next checkpoint's write leaves its temporary beside the last complete checkpoint
    orphan = killed_run / ".checkpoint.pt.k1ll3d.tmp"
    orphan.write_bytes(pretrain.checkpoint_file(killed_run).read_bytes()[:1000])
    assert pretrain_in_process(_args(data, killed_run)) == 0  # resumes from epoch 1 (0 workers now: does not matter)
    resumed, ref = _weights(killed_run), _weights(reference)
    assert all(torch.equal(resumed[k], ref[k]) for k in ref), (
        "resumed run is not bitwise equal to the uninterrupted one"
    )
    assert not orphan.exists(), "the temporary of the interrupted write was left behind"
    records = [json.loads(ln) for ln in (killed_run / pretrain.METRICS_NAME).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2]


@pytest.mark.slow
def test_finished_run_is_not_redone(
    reference: Path, data: Path, capsys: pytest.CaptureFixture[str], pretrain_in_process
) -> None:
    before = pretrain.checkpoint_file(reference).stat().st_mtime_ns
    assert pretrain_in_process(_args(data, reference)) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert pretrain.checkpoint_file(reference).stat().st_mtime_ns == before


@pytest.mark.slow
def test_resume_refuses_a_different_configuration(
    reference: Path, data: Path, capsys: pytest.CaptureFixture[str], pretrain_in_process
) -> None:
    assert pretrain_in_process(_args(data, reference, "--lr", "0.02")) == 2
    err = capsys.readouterr().err
    assert "different configuration" in err and "lr: checkpoint 0.01, now 0.02" in err and "--resume never" in err


# ------------------------------------------------------------------------------------ checkpoints and the API


@pytest.mark.slow
def test_checkpoint_records_the_run(reference: Path) -> None:
    ckpt = torch.load(pretrain.checkpoint_file(reference), map_location="cpu", weights_only=True)
    for key in ("model", "optimizer", "scheduler", "scaler", "epoch", "rng", "config", "done", "provenance", "data"):
        assert key in ckpt, key
    assert len(ckpt["data"]["digest"]) == 16  # the training images' digest: a resume on other images is refused
    assert ckpt["done"] and ckpt["epoch"] == 2 and ckpt["classes"] == ["ant", "bee", "cat"] and ckpt["n_train"] == 24
    assert ckpt["config"]["arch"] == "resnet18" and ckpt["config"]["optimizer"] == "sgd"
    assert "torch" in ckpt["provenance"] and "repalign" in ckpt["provenance"]
    assert not any(p.name.endswith(".tmp") for p in reference.iterdir())  # the atomic write left nothing behind
    records = [json.loads(ln) for ln in (reference / pretrain.METRICS_NAME).read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2] and all(0 <= r["val_accuracy"] <= 1 for r in records)


@pytest.mark.slow
def test_load_pretrained_round_trip(reference: Path) -> None:
    model = pretrain.load_pretrained(reference)
    state = _weights(reference)
    assert all(torch.allclose(v.double(), state[k].double()) for k, v in model.state_dict().items())
    model.eval()
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 3)
    assert pretrain.load_pretrained(pretrain.checkpoint_file(reference)).state_dict().keys() == state.keys()


def test_command_round_trips_through_the_parser(tmp_path: Path) -> None:
    cmd = pretrain.command(
        "t2t_vit", "artificial", tmp_path / "run dir", nproc=4, epochs=3, augment=False, classes=["a", "b"]
    )
    words = shlex.split(cmd)
    assert words[:3] == ["torchrun", "--standalone", "--nproc_per_node=4"]
    config = pretrain.parse_args(words[words.index("repalign.networks.pretrain") + 1 :])
    assert (config.arch, config.dataset, config.subset, config.epochs) == ("t2t_vit", "imagenet", "artificial", 3)
    assert config.out == str(tmp_path / "run dir") and not config.augment and config.classes == ["a", "b"]
    office = pretrain.command("resnet18", "amazon", "o", random_labels=True, init="imagenet")
    assert (
        "--dataset office31 --domain amazon" in office and "--random-labels" in office and "--init imagenet" in office
    )
    with pytest.raises(ValueError, match="unknown option"):
        pretrain.command("resnet18", "natural", "o", epoch=3)
    with pytest.raises(ValueError, match="subset must be one of"):
        pretrain.command("resnet18", "animals", "o")


# --------------------------------------------------------------------------------------------------- bad input


def test_missing_folder_says_what_layout_is_expected(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert pretrain.main(["--data", str(tmp_path / "nope"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "nope" in err and "<class>" in err


def test_missing_imagenet_names_the_layout(tmp_path: Path) -> None:
    config = pretrain.parse_args(["--subset", "natural", "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    with pytest.raises(FileNotFoundError, match=r"imagenet.*<wnid>"):
        pretrain.train(config)


def test_bad_options_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--arch must be one of"):
        pretrain.parse_args(["--arch", "resnet17", "--data", str(tmp_path), "--out", str(tmp_path)])
    with pytest.raises(ValueError, match="--domain must be one of"):
        pretrain.parse_args(["--dataset", "office31", "--out", str(tmp_path)])
    with pytest.raises(FileNotFoundError, match="no pre-training checkpoint"):
        pretrain.load_pretrained(tmp_path)
