"""``repalign paper-check`` (issue #23): what ``make paper`` needs, checked before a GPU-week is spent.

Each test states one thing paper-check must catch or say; each was written against the code of f91c348 and failed
there (noted per test). The checkpoints here are small files with the records of a real ``repalign.networks.pretrain``
checkpoint (no tensors): paper-check reads the record, never the weights.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from repalign import data as D
from repalign.data.torchvision import CIFAR10_CLASSES
from repalign.networks import pretrain
from repalign.run import cli, paper_check, params


# ------------------------------------------------------------------------------------------------ helpers
def _checkpoint(folder: Path, *, arch: str = "resnet18", subset: str = "natural", epochs: int = 90,
                done: int | None = None, image_size: int = 224) -> Path:  # fmt: skip
    """A pre-training checkpoint record (what ``pretrain._save`` writes, without weights) in ``folder``."""
    done = epochs if done is None else done
    config = {"arch": arch, "dataset": "imagenet", "subset": subset, "epochs": epochs, "image_size": image_size,
              "batch_size": 256, "seed": 0}  # fmt: skip
    record = {"format": pretrain.FORMAT, "model": {}, "optimizer": {}, "scheduler": {}, "scaler": {}, "epoch": done,
              "done": done >= epochs, "config": config, "classes": ["n01440764"], "n_train": 10, "world_size": 1,
              "metrics": {}, "provenance": {}}  # fmt: skip
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(record, folder / pretrain.CHECKPOINT_NAME)
    return folder


def _nine(monkeypatch: pytest.MonkeyPatch, checkpoints: dict[str, dict[str, str]], image_size: int = 224) -> None:
    """Make notebook 09's paper parameters name these checkpoints (the rest as the paper yaml has it)."""
    real = params.scale_parameters

    def patched(stem: Any, scale: str) -> dict[str, Any]:
        values = real(stem, scale)
        if "09_" in str(stem):
            values = {**values, "checkpoints": checkpoints, "families": list(checkpoints), "image_size": image_size}
        return values

    monkeypatch.setattr(params, "scale_parameters", patched)


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty data root and an empty TORCH_HOME."""
    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    (tmp_path / "data").mkdir()
    return tmp_path / "data"


# ------------------------------------------------------------------------------------------------ weights
def test_resnet18_imagenet_weights_of_notebook_10_are_listed_and_block(root: Path) -> None:
    """10 starts ResNet18 from ImageNet (``start: imagenet``): its weight file must be in place (f91c348: not
    listed at all, so make paper stopped in 10 when offline)."""
    missing, _ = paper_check.paper_check("paper", ["10"])
    message, users, blocking = missing["resnet18"]
    assert users == ["10_negative_transfer"] and blocking
    assert "resnet18-f37072fd.pth" in message and str(root.parent / "torch") in message


def test_a_weight_file_in_place_is_not_listed(root: Path) -> None:
    target = Path(root.parent / "torch" / "hub" / "checkpoints" / "resnet18-f37072fd.pth")
    target.parent.mkdir(parents=True)
    torch.save({}, target)
    missing, _ = paper_check.paper_check("paper", ["10"])
    assert "resnet18" not in missing


# ------------------------------------------------------------------------------------------------ checkpoints
def test_an_empty_checkpoint_folder_blocks(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """f91c348 asked only that the folder exists."""
    (root / "pretrain" / "r18").mkdir(parents=True)
    _nine(monkeypatch, {"resnet18": {"ImageNet-Natural": str(root / "pretrain" / "r18")}})
    missing, _ = paper_check.paper_check("paper", ["09"])
    message, _, blocking = missing["checkpoint resnet18 ImageNet-Natural"]
    assert blocking and "no checkpoint.pt" in message and "make it with: torchrun" in message


def test_an_unfinished_checkpoint_blocks_and_says_how_to_resume(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """load_pretrained refuses an unfinished run, so paper-check must too (f91c348 passed it)."""
    folder = _checkpoint(root / "pretrain" / "r18", epochs=90, done=12)
    _nine(monkeypatch, {"resnet18": {"ImageNet-Natural": str(folder)}})
    missing, _ = paper_check.paper_check("paper", ["09"])
    message, _, blocking = missing["checkpoint resnet18 ImageNet-Natural"]
    assert blocking and "unfinished: epoch 12 of 90" in message and "resume" in message


def test_a_checkpoint_of_another_image_size_blocks(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """T2T-ViT's positional embedding fixes its input size: a mismatch crashed 09 with a shape error (f91c348
    never compared them)."""
    folder = _checkpoint(root / "pretrain" / "t2t", arch="t2t_vit", epochs=300, image_size=224)
    _nine(monkeypatch, {"t2t_vit": {"ImageNet-Natural": str(folder)}}, image_size=160)
    missing, _ = paper_check.paper_check("paper", ["09"])
    message, _, blocking = missing["checkpoint t2t_vit ImageNet-Natural"]
    assert blocking and "224 px" in message and "image_size is 160" in message


def test_a_checkpoint_of_another_arch_or_subset_blocks(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = _checkpoint(root / "pretrain" / "x", arch="resnet18", subset="artificial")
    _nine(monkeypatch, {"resnet18": {"ImageNet-Natural": str(folder)}, "t2t_vit": {"ImageNet-Natural": str(folder)}})
    missing, _ = paper_check.paper_check("paper", ["09"])
    assert "pre-trained on ImageNet-artificial" in missing["checkpoint resnet18 ImageNet-Natural"][0]
    assert "is a resnet18" in missing["checkpoint t2t_vit ImageNet-Natural"][0]


def test_finished_checkpoints_pass_and_imagenet_is_not_needed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """09 reads only the checkpoints: with all of them in place ImageNet is not needed (f91c348 required it)."""
    folders = {f: {f"ImageNet-{s.title()}": str(_checkpoint(root / "pretrain" / f"{f}_{s}", arch=f, subset=s,
                                                            epochs=pretrain.RECIPES[f]["epochs"]))
                   for s in ("natural", "artificial")} for f in ("resnet18", "t2t_vit")}  # fmt: skip
    _nine(monkeypatch, folders)
    missing, _ = paper_check.paper_check("paper", ["09"])
    assert not any(k.startswith("checkpoint") for k in missing), missing
    assert "imagenet" not in missing


def test_a_missing_checkpoint_needs_imagenet_and_prints_a_complete_command(root: Path) -> None:
    """The command: this machine's GPU count (not a fixed 8), the epochs, an absolute --out under the data root
    (f91c348: --nproc_per_node=8, no epochs, --out relative to the current folder); and how long it takes."""
    missing, _ = paper_check.paper_check("paper", ["09"])
    message, _, blocking = missing["checkpoint t2t_vit ImageNet-Artificial"]
    command = message.split("make it with: ")[1].split(" (")[0]
    gpus = max(1, torch.cuda.device_count())
    assert command.startswith(f"torchrun --standalone --nproc_per_node={gpus} -m repalign.networks.pretrain")
    assert "--epochs 300" in command
    out = Path(command.split("--out ")[1].split()[0])
    assert out.is_absolute() and out == root / "pretrain" / "t2t_vit_imagenet_artificial"
    assert re.search(r"pre-training takes about [\d.]+ (h|min|days)", message), message
    assert "imagenet" in missing and "09_task_similarity" in missing["imagenet"][1]


def test_checkpoint_paths_follow_the_data_root(root: Path) -> None:
    """The paper yaml's checkpoint folders lie under $REPALIGN_DATA wherever that is (f91c348: ../data/pretrain)."""
    values = params.scale_parameters("09", "paper")
    for arch, by_source in values["checkpoints"].items():
        for path in by_source.values():
            assert pretrain.resolve_path(path).is_relative_to(root), (arch, path)


def test_make_rebuilds_09_when_a_checkpoint_under_the_data_root_changes(root: Path) -> None:
    """make's build key of 09 names the checkpoint folders under $REPALIGN_DATA (f91c348: ../data/pretrain,
    relative to notebooks/, whatever the data root)."""
    from repalign.run import notebook

    files = notebook.build_key("09", "paper")["files"]
    folders = [Path(f) for f in files if "pretrain" in f]
    assert len(folders) == 4 and all(f.is_relative_to(root) for f in folders), files


def test_resolve_path_expands_only_the_data_root(root: Path) -> None:
    assert pretrain.resolve_path("$REPALIGN_DATA/pretrain/a") == root / "pretrain" / "a"
    assert pretrain.resolve_path("${REPALIGN_DATA}/b") == root / "b"
    assert pretrain.checkpoint_file("$REPALIGN_DATA/x") == root / "x" / "checkpoint.pt"
    assert pretrain.resolve_path("$HOME_NOT_EXPANDED/a") == Path("$HOME_NOT_EXPANDED/a")


def test_checkpoint_identity_names_arch_epochs_size_and_hash(root: Path) -> None:
    folder = _checkpoint(root / "r", epochs=90, image_size=160)
    ident = pretrain.checkpoint_identity(folder)
    assert ident["arch"] == "resnet18" and ident["epochs"] == 90 and ident["image_size"] == 160
    assert ident["done"] is True and ident["subset"] == "natural"
    assert len(ident["sha256"]) == 64
    assert ident["sha256"] == pretrain.checkpoint_identity(folder / "checkpoint.pt")["sha256"]
    _checkpoint(root / "r", epochs=90, done=89)
    assert pretrain.checkpoint_identity(folder)["sha256"] != ident["sha256"]


# ------------------------------------------------------------------------------------------------ CIFAR
def _cifar10(root: Path, n: int = 20) -> Path:
    """A CIFAR-10 copy in torchvision's layout with made-up images (so every md5 differs from the real one)."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {"data": rng.integers(0, 255, (n, 3072), dtype=np.uint8), "labels": list(rng.integers(0, 10, n))}
        (folder / name).write_bytes(pickle.dumps(batch))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CIFAR10_CLASSES}))
    return folder


def test_cifar_two_problems_two_messages(root: Path) -> None:
    """f91c348 said "no train data ... (Dataset not found or corrupted)" for both."""
    missing = D.source("cifar10").check(root)
    assert "missing" in missing and "md5" not in missing
    folder = _cifar10(root)
    damaged = D.source("cifar10").check(root)
    assert "md5 mismatch" in damaged and "data_batch_1" in damaged and "missing" not in damaged
    (folder / "data_batch_3").unlink()
    partly = D.source("cifar10").check(root)
    assert "missing" in partly and "data_batch_3" in partly


def test_a_manifest_vouches_only_for_the_files_it_hashes(root: Path) -> None:
    """The supported way for generated CIFAR files to pass the md5 check: a manifest in the data root, written by
    the rehearsal, with each file's sha256. A real user's intact copy never reaches it (torchvision's own check
    passes first); a damaged copy is not vouched for (its bytes are not the hashed ones)."""
    from repalign.data import manifest

    folder = _cifar10(root)
    manifest.write_manifest(root, {"cifar10": sorted(p.relative_to(root) for p in folder.iterdir())})
    assert D.source("cifar10").check(root) is None
    ds = D.load("cifar10", root=root)
    assert ds.info.coverage == "generated" and "rehearsal on generated data" in ds.info.describe()
    (folder / "data_batch_2").write_bytes((folder / "data_batch_2").read_bytes()[:-5] + b"xxxxx")
    assert "md5 mismatch" in D.source("cifar10").check(root)


# ------------------------------------------------------------------------------------------------ advice, output
def test_partial_office31_copy_gets_its_own_fix(root: Path) -> None:
    """Office-31 and ImageNet cannot be fetched: the partial-copy warning gives their own fix (f91c348 said
    ``python -m repalign.data fetch office31``)."""
    from PIL import Image

    for domain in ("amazon", "dslr", "webcam"):
        (root / "office31" / domain / "back_pack").mkdir(parents=True)
        Image.new("RGB", (8, 8)).save(root / "office31" / domain / "back_pack" / "0.jpg")
    with pytest.warns(UserWarning, match="only part of the data set") as record:
        D.load("office31", domain="amazon", root=root, image_size=8)
    text = str(record[0].message)
    assert "fetch" not in text and "cannot be downloaded automatically" in text


def test_paper_check_prints_durations_per_notebook_and_per_checkpoint(root: Path, capsys) -> None:
    """A predicted duration per notebook on this machine's device and each checkpoint's pre-training
    (f91c348: none)."""
    assert cli.main(["paper-check", "00", "09"]) == 1
    out = capsys.readouterr().out
    device = "cuda" if torch.cuda.is_available() else "cpu"
    for stem in ("00_quickstart", "09_task_similarity"):
        assert re.search(rf"  {stem}: about [\d.]+ (s|min|h|days) on {device}", out), out
    assert re.search(r"pre-training resnet18 on ImageNet-natural: about [\d.]+ (h|days)", out), out
    assert "total" in out


def test_durations_grow_with_the_sizes_and_name_their_basis() -> None:
    """The prediction follows the yaml's sizes; every rate says where it comes from (measured here on the CPU, or
    an estimate from published throughputs for the GPU: no GPU measurement could be made)."""
    from repalign.run import durations

    values = {**params.defaults("09"), **params.scale_parameters("09", "paper")}
    short = durations.predict("09_task_similarity", values, "cuda")
    longer = durations.predict("09_task_similarity", {**values, "finetune_epochs": 60}, "cuda")
    assert longer.seconds > 1.5 * short.seconds
    assert all(basis.startswith(("measured", "estimate")) for basis in short.basis.values()), short.basis
    cpu = durations.predict("09_task_similarity", values, "cpu")
    assert all("measured" in basis for basis in cpu.basis.values()), cpu.basis
    assert cpu.seconds > 10 * short.seconds
    assert durations.predict("99_unknown", {}, "cuda") is None


def test_every_notebook_has_a_prediction() -> None:
    from repalign.run import durations

    for stem in params.list_notebooks():
        values = {**params.defaults(stem), **params.scale_parameters(stem, "paper")}
        guess = durations.predict(stem, values, "cuda")
        assert guess is not None and guess.seconds > 0, stem


def test_the_data_root_is_one_folder_for_paper_check_and_the_kernel(tmp_path, monkeypatch) -> None:
    """Without $REPALIGN_DATA, a checkpoint under the data root and the kernel's data root are both ./data of the
    folder the run starts from (before: paper-check looked in notebooks/data for checkpoints, in ./data for data)."""
    from repalign.run import notebook

    monkeypatch.delenv("REPALIGN_DATA", raising=False)
    monkeypatch.chdir(tmp_path)
    assert pretrain.resolve_path("$REPALIGN_DATA/pretrain/a") == tmp_path / "data" / "pretrain" / "a"
    assert notebook.kernel_environment()["REPALIGN_DATA"] == str(tmp_path / "data")
    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path / "elsewhere"))
    assert notebook.kernel_environment()["REPALIGN_DATA"] == str(tmp_path / "elsewhere")
