"""Paper-scale pre-training on ``torch.distributed``: ImageNet natural / artificial, Office-31 random labels.

Launch (one node, N processes; ``python -m repalign.networks.pretrain ...`` runs the same code as one process)::

    torchrun --standalone --nproc_per_node=8 -m repalign.networks.pretrain --arch resnet18 --subset natural \\
        --out $REPALIGN_DATA/pretrain/resnet18_imagenet_natural

What a run does
---------------
* **Data**: an ImageFolder streamed from disk by a ``DataLoader`` with workers: ImageNet restricted to the
  library's natural (449) or artificial (551) classes (:func:`repalign.data.image_folder`), an Office-31 domain,
  or any ``--data DIR`` (``DIR/<class>/*`` or ``DIR/{train,val}/<class>/*``; ``--classes`` keeps some).
* **Global batch**: ``--batch-size`` is the global batch. :class:`GlobalBatchSampler` draws one seeded
  permutation per epoch, cuts it into global batches of ``B`` (the last partial batch is dropped) and gives rank
  ``r`` of ``W`` the slice ``[r B/W, (r+1) B/W)`` of every global batch, so step ``s`` sees the same ``B``
  examples whatever ``W`` is. A plain ``DistributedSampler`` deals indices round-robin from a permutation padded
  to a multiple of ``W``: its global batches change with ``W``. Augmentation is seeded per example
  (seed, epoch, index), so worker count and rank do not change what an example looks like.
* **BatchNorm**: with more than one process, BatchNorm statistics are taken over the global batch:
  ``torch.nn.SyncBatchNorm`` on CUDA, and on CPU (gloo, where ``SyncBatchNorm`` refuses CPU tensors)
  :class:`CPUSyncBatchNorm`, which all-reduces the per-channel sums with autograd-aware collectives. So a
  W-process step computes the same function as a 1-process step on the same global batch.
* **Precision**: ``autocast`` (float16) with a ``GradScaler`` on CUDA (``--amp auto``), float32 on CPU.
* **Checkpoints**: after every epoch rank 0 writes ``<out>/checkpoint.pt`` atomically (``torch.save`` to a
  temporary file in the same folder, then ``os.replace``); ``--resume auto`` continues from it and refuses one
  written with a different configuration (:data:`RESUME_KEYS`) or on other training images (a digest of each
  image's path, label and size and of one image per class: swapped class folders are caught); a finished run is not
  redone. Every epoch re-seeds from (seed, epoch, rank), so a resumed run ends bitwise equal to an uninterrupted one
  on CPU. Temporaries of a write that was killed are removed when the next run starts; a checkpoint that is
  truncated, damaged, foreign or holds pickled objects is refused in one line (never unpickled).
* **Launcher**: under torchrun each rank stops when its agent dies (Linux: the parent-death signal; everywhere: the
  parent process is checked between steps), instead of running on without it.
* **Log**: one line per epoch on rank 0 (loss, accuracy, images/s) and ``<out>/metrics.jsonl``.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import math
import os
import random
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from repalign.core.files import atomic_write_text, json_default, sha256_file
from repalign.core.provenance import note_checkpoint, provenance
from repalign.data.base import data_root, resolve_path
from repalign.data.folders import image_folder, load_image
from repalign.networks.evaluate import batch_sums
from repalign.networks.models import BACKBONES, PREPROCESSING, backbone, preprocess
from repalign.networks.runtime import get_device
from repalign.networks.torchfiles import load_torch_file

__all__ = [
    "CHECKPOINT_NAME",
    "METRICS_NAME",
    "RECIPES",
    "RESUME_KEYS",
    "PretrainConfig",
    "parse_args",
    "GlobalBatchSampler",
    "CPUSyncBatchNorm",
    "checkpoint_file",
    "checkpoint_info",
    "checkpoint_identity",
    "resolve_path",
    "load_pretrained",
    "train",
    "run_name",
    "default_out_dir",
    "command",
    "main",
]

CHECKPOINT_NAME = "checkpoint.pt"
METRICS_NAME = "metrics.jsonl"
FORMAT = "repalign.pretrain/1"
#: test hook: exit the process hard (``os._exit(17)``) right after the checkpoint of this epoch is written
EXIT_AFTER_EPOCH_ENV = "REPALIGN_PRETRAIN_EXIT_AFTER_EPOCH"

#: Per-architecture defaults (used where an option is not given). ResNet18: the torchvision ImageNet recipe
#: (SGD momentum 0.9, weight decay 1e-4, 90 epochs; cosine here); T2T-ViT: the T2T-ViT paper's AdamW recipe (weight
#: decay 0.05, 5 warm-up epochs, 300 epochs; lr 5e-4 per 512 images). Without ``--lr`` the learning rate is
#: :data:`_BASE_LR` of the optimizer times ``batch_size / 256``.
RECIPES: dict[str, dict[str, Any]] = {
    "resnet18": {"optimizer": "sgd", "weight_decay": 1e-4, "epochs": 90, "warmup_epochs": 0.0},
    "t2t_vit": {"optimizer": "adamw", "weight_decay": 0.05, "epochs": 300, "warmup_epochs": 5.0},
}
_DEFAULT_RECIPE: dict[str, Any] = RECIPES["resnet18"]
#: learning rate per 256 images of global batch when ``--lr`` is not given
_BASE_LR: dict[str, float] = {"sgd": 0.1, "adamw": 2.5e-4}

#: Config fields that must agree between a checkpoint and the run resuming it (plus the class list and the
#: number of training images). Not compared: paths, workers, backend, device, progress, number of processes.
RESUME_KEYS: tuple[str, ...] = (
    "arch", "dataset", "subset", "domain", "classes", "epochs", "batch_size", "optimizer", "lr", "momentum",
    "weight_decay", "warmup_epochs", "label_smoothing", "image_size", "augment", "random_labels", "init", "seed",
    "amp", "dtype",
)  # fmt: skip

_IMAGENET_SUBSETS = ("natural", "artificial", "all")
_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_OFFICE31_DOMAINS = ("amazon", "dslr", "webcam")


# ------------------------------------------------------------------------------------------------ configuration


@dataclasses.dataclass
class PretrainConfig:
    """Every option of a run (the CLI's ``--kebab-case`` flags); ``None`` means the arch's :data:`RECIPES` value."""

    out: str
    arch: str = "resnet18"
    dataset: str = "imagenet"  # imagenet | office31 | folder
    subset: str | None = None  # imagenet: natural | artificial | all
    domain: str | None = None  # office31: amazon | dslr | webcam
    data: str | None = None  # folder: an ImageFolder root
    root: str | None = None  # data root for imagenet / office31 (default $REPALIGN_DATA)
    classes: list[str] | None = None
    epochs: int | None = None
    batch_size: int = 256
    optimizer: str | None = None
    lr: float | None = None
    momentum: float = 0.9
    weight_decay: float | None = None
    warmup_epochs: float | None = None
    label_smoothing: float = 0.0
    image_size: int = 224
    augment: bool = True
    random_labels: bool = False
    init: str | None = None  # None (random) | "imagenet" | a state-dict file
    seed: int = 0
    workers: int = 8
    amp: str = "auto"  # auto | on | off
    dtype: str = "float32"  # float64: CPU exactness checks (the tests)
    backend: str = "auto"  # auto | nccl | gloo
    device: str = "auto"
    resume: str = "auto"  # auto | never
    evaluate: bool = True
    progress: bool = True

    def resolved(self, device_type: str) -> PretrainConfig:
        """A copy with the recipe defaults filled in, ``lr`` scaled to the batch and ``amp`` made on/off."""
        recipe = RECIPES.get(self.arch, _DEFAULT_RECIPE)
        c = dataclasses.replace(self)
        for key in ("optimizer", "weight_decay", "epochs", "warmup_epochs"):
            if getattr(c, key) is None:
                setattr(c, key, recipe[key])
        if c.lr is None:
            c.lr = _BASE_LR[c.optimizer] * c.batch_size / 256
        if c.amp == "auto":
            c.amp = "on" if device_type == "cuda" else "off"
        if c.dataset == "imagenet" and c.subset is None:
            c.subset = "natural"
        return c


def _check_config(c: PretrainConfig) -> None:

    problems = []
    if c.arch not in BACKBONES:
        problems.append(f"--arch must be one of {', '.join(BACKBONES)}, got {c.arch!r}")
    if c.dataset not in ("imagenet", "office31", "folder"):
        problems.append(f"--dataset must be imagenet, office31 or folder, got {c.dataset!r}")
    if c.dataset == "imagenet" and c.subset not in (*_IMAGENET_SUBSETS, None):
        problems.append(f"--subset must be one of {_IMAGENET_SUBSETS}, got {c.subset!r}")
    if c.dataset == "office31" and c.domain not in _OFFICE31_DOMAINS:
        problems.append(f"--domain must be one of {_OFFICE31_DOMAINS} for office31, got {c.domain!r}")
    if c.dataset == "folder" and not c.data:
        problems.append("--dataset folder needs --data DIR (an ImageFolder: DIR/<class>/*.jpg)")
    for key in ("batch_size", "image_size"):
        if int(getattr(c, key)) < 1:
            problems.append(f"--{key.replace('_', '-')} must be >= 1, got {getattr(c, key)}")
    if c.epochs is not None and int(c.epochs) < 1:
        problems.append(f"--epochs must be >= 1, got {c.epochs}")
    for key, allowed in (("amp", ("auto", "on", "off")), ("backend", ("auto", "nccl", "gloo"))):
        if getattr(c, key) not in allowed:
            problems.append(f"--{key} must be one of {allowed}, got {getattr(c, key)!r}")
    if c.dtype not in ("float32", "float64") or (c.dtype == "float64" and c.amp == "on"):
        problems.append(f"--dtype must be float32 or float64 (float64 without --amp on), got {c.dtype!r}")
    if c.resume not in ("auto", "never"):
        problems.append(f"--resume must be auto or never, got {c.resume!r}")
    if c.optimizer not in (None, "sgd", "adamw"):
        problems.append(f"--optimizer must be sgd or adamw, got {c.optimizer!r}")
    if problems:
        raise ValueError("; ".join(problems))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m repalign.networks.pretrain",
        description="Pre-train a backbone on an ImageFolder (ImageNet natural/artificial, Office-31, any folder); "
        "launch with torchrun --nproc_per_node=N -m repalign.networks.pretrain ... for several processes.",
    )
    p.add_argument("--out", required=True, help="run folder: checkpoint.pt and metrics.jsonl go here")
    p.add_argument("--arch", default="resnet18", help="a repalign.networks.models backbone: resnet18 or t2t_vit")
    p.add_argument("--dataset", choices=("imagenet", "office31", "folder"), help="default: folder with --data")
    p.add_argument("--subset", help="ImageNet classes: natural (449), artificial (551) or all; default natural")
    p.add_argument("--domain", help="Office-31 domain: amazon, dslr or webcam")
    p.add_argument("--data", help="an ImageFolder root: DIR/<class>/* or DIR/{train,val}/<class>/*")
    p.add_argument("--root", help="data root holding imagenet/ and office31/ (default $REPALIGN_DATA or ./data)")
    p.add_argument("--classes", help="comma-separated class folders to keep (default: all)")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int, default=256, help="the GLOBAL batch (split evenly over processes)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"))
    p.add_argument("--lr", type=float, help="default: the arch's recipe, scaled by batch-size / 256")
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--weight-decay", type=float)
    p.add_argument("--warmup-epochs", type=float)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--no-augment", dest="augment", action="store_false", help="resize + centre crop only")
    p.add_argument("--random-labels", action="store_true", help="a fixed seeded permutation of the labels")
    p.add_argument("--init", help="start from 'imagenet' (torchvision weights) or a state-dict file")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=8, help="DataLoader workers per process")
    p.add_argument("--amp", default="auto", choices=("auto", "on", "off"), help="float16 autocast (CUDA only)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"), help="float64: exactness checks")
    p.add_argument("--backend", default="auto", choices=("auto", "nccl", "gloo"))
    p.add_argument("--device", default="auto", help="auto, cpu or cuda")
    p.add_argument("--resume", default="auto", choices=("auto", "never"), help="never: start over, overwriting")
    p.add_argument("--no-eval", dest="evaluate", action="store_false", help="skip the validation pass")
    p.add_argument("--no-progress", dest="progress", action="store_false")
    return p


def parse_args(argv: Sequence[str] | None = None) -> PretrainConfig:
    """Parse the command line into a :class:`PretrainConfig` (not yet resolved against a recipe)."""
    ns = vars(_parser().parse_args(argv))
    if ns["dataset"] is None:
        ns["dataset"] = "folder" if ns["data"] else ("office31" if ns["domain"] else "imagenet")
    ns["classes"] = [c for c in ns["classes"].split(",") if c] if ns["classes"] else None
    config = PretrainConfig(**ns)
    _check_config(config)
    return config


# ------------------------------------------------------------------------------------------------------- data


def _restricted_folder(base: Path, classes: Sequence[str]) -> Any:
    """``torchvision.datasets.ImageFolder`` over ``base`` keeping ``classes`` (label = index in ``classes``)."""
    from torchvision.datasets import ImageFolder

    keep = list(classes)

    class _Restricted(ImageFolder):
        def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
            return keep, {c: i for i, c in enumerate(keep)}

    return _Restricted(str(base))


def _folder_splits(c: PretrainConfig) -> tuple[Any, Any | None]:
    """Train and (optional) val ImageFolders of ``--data DIR``."""
    base = Path(c.data).expanduser()
    if not base.is_dir():
        raise FileNotFoundError(
            f"--data {base}: folder not found. Give an ImageFolder: {base}/<class>/*.jpg, or "
            f"{base}/train/<class>/*.jpg with an optional {base}/val/<class>/*.jpg"
        )
    train_dir = base / "train" if (base / "train").is_dir() else base
    present = sorted(p.name for p in train_dir.iterdir() if p.is_dir())
    classes = list(c.classes) if c.classes else present
    missing = [k for k in classes if k not in present]
    if not classes or missing:
        raise ValueError(
            f"--data {train_dir}: " + (f"no class folders {missing[:5]}" if missing else "no class folders")
            + f" (present: {present[:10]}); the layout is {train_dir}/<class>/*.jpg"
        )  # fmt: skip
    val_dir = base / "val"
    val = _restricted_folder(val_dir, classes) if train_dir != base and val_dir.is_dir() else None
    return _restricted_folder(train_dir, classes), val


def _library_splits(c: PretrainConfig) -> tuple[Any, Any | None]:
    """Train and val ImageFolders of ImageNet (natural / artificial / all) or of an Office-31 domain."""

    if c.dataset == "office31":
        return image_folder("office31", root=c.root, domain=c.domain), None
    subset = None if c.subset == "all" else c.subset
    train = image_folder("imagenet", "train", c.root, subset=subset)
    if c.classes:
        train = _restricted_folder(Path(train.root), c.classes)
    try:
        val = image_folder("imagenet", "val", c.root, subset=subset)
    except (FileNotFoundError, ValueError) as err:
        print(f"no ImageNet validation set, training without one ({err})", file=sys.stderr)
        return train, None
    if val.classes != train.classes:
        val = _restricted_folder(Path(val.root), train.classes)
    return train, val


def _transform(c: PretrainConfig, train: bool) -> Any:
    """Training: random resized crop + horizontal flip (``augment``); else the arch's resize + centre crop."""

    if not (train and c.augment):
        return preprocess(c.arch, c.image_size)
    from torchvision.transforms import v2

    cfg = PREPROCESSING.get(c.arch, PREPROCESSING["resnet18"])
    return v2.Compose(
        [
            v2.ToImage(),
            v2.RandomResizedCrop(c.image_size, antialias=True),
            v2.RandomHorizontalFlip(),
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(mean=list(cfg["mean"]), std=list(cfg["std"])),
        ]
    )


def _mix(*values: int) -> int:
    """A deterministic 63-bit seed from integers (SplitMix64-style mixing)."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (int(v) & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


class _Examples(torch.utils.data.Dataset):
    """An ImageFolder whose items are keyed ``(index, epoch)``: the transform runs under a seed of
    (seed, epoch, index), so an example looks the same in any process or worker. ``labels`` override the folder's.

    Shape: item -> ``(image (3, S, S) float32, label int)``.
    """

    def __init__(self, folder: Any, transform: Any, seed: int, labels: np.ndarray | None = None) -> None:
        self.folder = folder
        self.transform = transform
        self.seed = int(seed)
        self.labels = np.asarray(folder.targets if labels is None else labels, dtype=np.int64)

    def __len__(self) -> int:
        return len(self.folder.samples)

    def __getitem__(self, key: tuple[int, int]) -> tuple[torch.Tensor, int]:
        index, epoch = key
        image = load_image(self.folder.samples[index][0], self.folder.loader)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(_mix(self.seed, epoch, index))
            x = self.transform(image)
        return x, int(self.labels[index])


def _random_labels(targets: Sequence[int], seed: int) -> np.ndarray:
    """A fixed seeded permutation of the labels (keeps each class's frequency): labels carry no information."""
    return np.random.default_rng(_mix(seed, 0xC0FFEE)).permutation(np.asarray(targets, dtype=np.int64))


class GlobalBatchSampler(DistributedSampler):
    """Deals each global batch across processes so that step ``s`` uses the same examples for any world size.

    One permutation per epoch (seeded by ``seed`` and the epoch), cut into ``len(dataset) // global_batch``
    global batches (the rest is dropped); rank ``r`` of ``W`` gets positions ``[r b, (r+1) b)`` of each, with
    ``b = global_batch / W``. Yields ``(index, epoch)`` keys for :class:`_Examples`.
    """

    def __init__(self, dataset: Any, global_batch: int, *, num_replicas: int, rank: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=True, seed=seed, drop_last=True)
        if global_batch % num_replicas:
            raise ValueError(
                f"--batch-size {global_batch} (the global batch) must be a multiple of the {num_replicas} processes"
            )
        self.global_batch = int(global_batch)
        self.local_batch = self.global_batch // num_replicas
        self.steps = len(dataset) // self.global_batch
        if self.steps < 1:
            raise ValueError(f"--batch-size {global_batch} is larger than the {len(dataset)} training images")

    def __len__(self) -> int:
        return self.steps * self.local_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        g = torch.Generator()
        g.manual_seed(_mix(self.seed, self.epoch))
        order = torch.randperm(len(self.dataset), generator=g)[: self.steps * self.global_batch]
        lo = self.rank * self.local_batch
        mine = order.view(self.steps, self.global_batch)[:, lo : lo + self.local_batch].reshape(-1)
        return iter([(int(i), self.epoch) for i in mine])


class _Shard(torch.utils.data.Sampler):
    """Contiguous, unpadded shard of an evaluation set for one rank (counts are summed across ranks)."""

    def __init__(self, n: int, num_replicas: int, rank: int) -> None:
        self.keys = [(i, 0) for i in range(rank * n // num_replicas, (rank + 1) * n // num_replicas)]

    def __len__(self) -> int:
        return len(self.keys)

    def __iter__(self) -> Iterator[tuple[int, int]]:
        return iter(self.keys)


def _loaders(c: PretrainConfig, world: int, rank: int, pin: bool) -> tuple[DataLoader, DataLoader | None, Any]:
    """Training loader (global batch split over ranks), optional validation loader, and the train folder."""
    train_folder, val_folder = _folder_splits(c) if c.dataset == "folder" else _library_splits(c)
    if len(train_folder.samples) == 0:
        raise ValueError(f"no training images under {train_folder.root}")
    labels = _random_labels(train_folder.targets, c.seed) if c.random_labels else None
    train_set = _Examples(train_folder, _transform(c, True), c.seed, labels)
    sampler = GlobalBatchSampler(train_set, c.batch_size, num_replicas=world, rank=rank, seed=c.seed)
    kw: dict[str, Any] = {"num_workers": c.workers, "pin_memory": pin, "persistent_workers": c.workers > 0}
    train = DataLoader(train_set, batch_size=sampler.local_batch, sampler=sampler, drop_last=True, **kw)
    val = None
    if val_folder is not None and c.evaluate and len(val_folder.samples):
        val_set = _Examples(val_folder, _transform(c, False), c.seed)
        val_batch = max(1, sampler.local_batch)
        val = DataLoader(val_set, batch_size=val_batch, sampler=_Shard(len(val_set), world, rank), **kw)
    return train, val, train_folder


# ------------------------------------------------------------------------------------------ model, BatchNorm


class _AllReduceSum(torch.autograd.Function):
    """Sum over processes whose backward sums the incoming gradients over processes too."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:
        return _AllReduceSum.apply(grad)


class CPUSyncBatchNorm(nn.BatchNorm2d):
    r"""BatchNorm2d whose training statistics span every process, for gloo on CPU (``nn.SyncBatchNorm`` is
    GPU-only). Same parameters, buffers and state-dict keys as ``nn.BatchNorm2d``.

    .. math::  \mu_c = \frac{1}{N}\sum_{r,i} x_{r,i,c},\quad \sigma_c^2 = \frac{1}{N}\sum_{r,i} (x_{r,i,c}-\mu_c)^2,
               \quad y = \gamma_c (x - \mu_c)/\sqrt{\sigma_c^2 + \epsilon} + \beta_c

    with ``N`` the number of values per channel over all processes (two autograd-aware all-reduces, so the
    gradient is that of the global-batch loss); the running variance takes the unbiased ``N/(N-1)`` correction as
    ``nn.BatchNorm2d`` does. With one process, or in eval mode, it is ``nn.BatchNorm2d``.

    Shape: ``(n, C, H, W)`` -> ``(n, C, H, W)``.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        import torch.distributed as dist

        if not (self.training and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
            return super().forward(x)
        dims = [0, 2, 3]
        all_reduce = _AllReduceSum.apply
        count = torch.tensor([x.numel() // x.shape[1]], dtype=x.dtype, device=x.device)
        total = all_reduce(torch.cat([x.sum(dims), count]))
        n = total[-1]
        mean = total[:-1] / n
        centred = x - mean.view(1, -1, 1, 1)
        var = all_reduce((centred * centred).sum(dims)) / n
        if self.track_running_stats and self.running_mean is not None:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(var.detach() * (n / (n - 1)), alpha=m)
        y = centred * torch.rsqrt(var + self.eps).view(1, -1, 1, 1)
        if self.affine:
            y = y * self.weight.view(1, -1, 1, 1) + self.bias.view(1, -1, 1, 1)
        return y


def _sync_batchnorm(model: nn.Module, device: torch.device) -> nn.Module:
    """Global-batch BatchNorm: ``nn.SyncBatchNorm`` on CUDA, :class:`CPUSyncBatchNorm` elsewhere."""
    if device.type == "cuda":
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)
    for name, child in model.named_children():
        if type(child) is nn.BatchNorm2d:
            new = CPUSyncBatchNorm(
                child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats
            )
            new.load_state_dict(child.state_dict())
            setattr(model, name, new)
        else:
            _sync_batchnorm(child, device)
    return model


def _build_model(c: PretrainConfig, num_classes: int) -> nn.Module:
    """``models.backbone(arch)`` with a ``num_classes`` head: random (seeded), ImageNet or a state-dict file."""

    if c.init is None:
        return backbone(c.arch, num_classes=num_classes, image_size=c.image_size, seed=c.seed)
    if c.init == "imagenet":
        return backbone(c.arch, pretrained=True, num_classes=num_classes, image_size=c.image_size, seed=c.seed)
    return backbone(c.arch, num_classes=num_classes, weights_path=c.init, image_size=c.image_size, seed=c.seed)


def _optimizer(c: PretrainConfig, model: nn.Module) -> torch.optim.Optimizer:
    """SGD (Nesterov-free momentum) or AdamW; no weight decay on biases and norm parameters (1-D tensors)."""
    decay = [p for p in model.parameters() if p.ndim > 1]
    rest = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": c.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    if c.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=c.lr)
    return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum)


def _scheduler(c: PretrainConfig, opt: torch.optim.Optimizer, steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    r"""Per-step linear warm-up then cosine decay to 0: :math:`\eta_t = \eta\,\tfrac12(1+\cos(\pi\,
    \tfrac{t-w}{T-w}))` for ``t >= w`` (``w`` warm-up steps, ``T`` total steps)."""
    total = max(1, int(c.epochs) * steps)
    warm = int(round(float(c.warmup_epochs) * steps))

    def factor(t: int) -> float:
        if t < warm:
            return (t + 1) / warm
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (t - warm) / max(1, total - warm))))

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def _grad_scaler(enabled: bool) -> Any:
    """``torch.amp.GradScaler("cuda")`` (``torch.cuda.amp.GradScaler`` on torch < 2.3); a no-op when disabled."""
    if hasattr(torch, "amp") and hasattr(torch.amp, "GradScaler"):
        return torch.amp.GradScaler("cuda", enabled=enabled)
    return torch.cuda.amp.GradScaler(enabled=enabled)  # pragma: no cover - old torch


# ------------------------------------------------------------------------------------------------ distributed


@dataclasses.dataclass
class _Dist:
    rank: int
    world: int
    local_rank: int
    device: torch.device
    initialized: bool
    launcher: int | None = None  # the torchrun agent's pid, watched between steps (None: not launched by it)

    @property
    def main(self) -> bool:
        return self.rank == 0

    def check_launcher(self) -> None:
        """Stop this rank when its torchrun agent is gone (this process was re-parented)."""
        if self.launcher is not None and os.getppid() != self.launcher:
            raise SystemExit(
                f"repalign.networks.pretrain: rank {self.rank}: the torchrun agent (pid {self.launcher}) is gone; "
                "stopping (run the same command again to resume from the last checkpoint)"
            )


def _setup_distributed(c: PretrainConfig) -> _Dist:
    """Join the process group when launched by torchrun (``RANK``/``WORLD_SIZE`` set): NCCL on CUDA, else gloo."""
    import torch.distributed as dist

    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if c.device not in ("auto", "cpu", "cuda") and not c.device.startswith("cuda:"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {c.device!r}")
    device = get_device(c.device)  # the package's device rule; a GPU without an index is this process's local rank
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError("--device cuda but CUDA is not available; use --device cpu")
        torch.cuda.set_device(device)
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return _Dist(0, 1, 0, device, False)
    backend = c.backend if c.backend != "auto" else ("nccl" if device.type == "cuda" else "gloo")
    launcher = _follow_launcher() if "TORCHELASTIC_RUN_ID" in os.environ else None
    dist.init_process_group(backend=backend)
    return _Dist(dist.get_rank(), dist.get_world_size(), local_rank, device, True, launcher)


def _follow_launcher() -> int:
    """Make this rank (a torchrun worker) stop when its agent dies; returns the agent's pid.

    A SIGTERM (torchrun's own stop, or on Linux the parent-death signal set here with ``prctl``) raises
    ``SystemExit``, so that ``finally`` blocks run (a checkpoint's temporary file is removed); where ``prctl`` is
    missing, :meth:`_Dist.check_launcher` notices the new parent between steps."""
    import threading

    parent = os.getppid()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM, 0, 0, 0)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):  # pragma: no cover - no prctl: check_launcher polls instead
            pass
    if os.getppid() != parent:  # the agent died before the signal was set
        raise SystemExit(128 + signal.SIGTERM)
    return parent


def _exit_on_sigterm(signum: int, frame: Any) -> None:
    """SIGTERM as ``SystemExit(128 + signum)``: ``finally`` blocks run (temporaries removed), status as killed."""
    raise SystemExit(128 + signum)


def _all_sum(values: list[float], d: _Dist) -> list[float]:
    """Sum floats over processes (float64)."""
    t = torch.tensor(values, dtype=torch.float64, device=d.device)
    if d.initialized:
        import torch.distributed as dist

        dist.all_reduce(t)
    return t.tolist()


# ------------------------------------------------------------------------------------------------ checkpoints


def checkpoint_file(out_dir: str | os.PathLike[str]) -> Path:
    """The checkpoint of the run in ``out_dir`` (:func:`resolve_path`): ``<out_dir>/checkpoint.pt``, whether or not
    it exists yet."""
    return resolve_path(out_dir) / CHECKPOINT_NAME


def _atomic_torch_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file in ``path``'s folder, fsync, then ``os.replace`` onto ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            torch.save(obj, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_checkpoint(path_or_dir: str | os.PathLike[str], map_location: Any = "cpu") -> dict[str, Any]:
    path = resolve_path(path_or_dir)
    if path.is_dir():
        path = checkpoint_file(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no pre-training checkpoint at {path}; make it with `torchrun --nproc_per_node=<GPUs> -m "
            f"repalign.networks.pretrain --out {path.parent} ...` (docs/PRETRAIN.md; repalign.networks.pretrain.command() writes the line)"
        )
    start_over = "move it away, choose another --out, or pass --resume never to start over (overwrites it)"
    ckpt = load_torch_file(path, what="checkpoint", fix=start_over, map_location=map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise ValueError(f"{path} is not a repalign.networks.pretrain checkpoint (no format {FORMAT!r}); {start_over}")
    missing = [k for k in _CHECKPOINT_KEYS if k not in ckpt]
    if missing:
        raise ValueError(f"{path} is an incomplete repalign.networks.pretrain checkpoint (no {', '.join(missing)}); "
                         f"{start_over}")  # fmt: skip
    ckpt["path"] = str(path)
    return ckpt


#: what every checkpoint :func:`_save` writes holds (``data`` only since the digest of the training images)
_CHECKPOINT_KEYS = ("model", "optimizer", "scheduler", "scaler", "epoch", "done", "config", "classes", "n_train")


def _rng_states() -> dict[str, Any]:
    """torch (CPU, CUDA), numpy and Python RNG states, for the record (every epoch re-seeds anyway)."""
    bit = np.random.get_state(legacy=False)
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"key": bit["state"]["key"].tolist(), "pos": int(bit["state"]["pos"])},
        "python": random.getstate(),
    }


def _save(path: Path, state: dict[str, Any], c: PretrainConfig, epoch: int, metrics: dict[str, Any]) -> None:

    model = state["model"]
    model = model.module if hasattr(model, "module") else model
    _atomic_torch_save(
        {
            "format": FORMAT,
            "model": model.state_dict(),
            "optimizer": state["optimizer"].state_dict(),
            "scheduler": state["scheduler"].state_dict(),
            "scaler": state["scaler"].state_dict(),
            "epoch": int(epoch),
            "done": int(epoch) >= int(c.epochs),
            "config": _plain(dataclasses.asdict(c)),
            "classes": list(state["classes"]),
            "n_train": int(state["n_train"]),
            "data": {"digest": _data_digest(state)},
            "world_size": int(state["world"]),
            "metrics": _plain(metrics),
            "rng": _rng_states(),
            "provenance": _plain(provenance(arch=c.arch, dataset=c.dataset, world_size=int(state["world"]))),
        },
        path,
    )


def _plain(obj: Any) -> Any:
    """Plain Python types only (``torch.load(weights_only=True)`` refuses e.g. ``TorchVersion``)."""

    return json.loads(json.dumps(obj, default=json_default))


def _mismatch(ckpt: dict[str, Any], c: PretrainConfig, state: dict[str, Any]) -> dict[str, Any]:
    """What differs between a checkpoint and this run, among the things that change the result."""
    old = ckpt["config"]
    now = dataclasses.asdict(c)
    diff = {k: (old.get(k), now[k]) for k in RESUME_KEYS if old.get(k) != now[k]}
    classes, n_train = state["classes"], state["n_train"]
    if list(ckpt["classes"]) != list(classes):
        diff["classes (folders)"] = (f"{len(ckpt['classes'])} classes", f"{len(classes)} classes")
    if int(ckpt["n_train"]) != int(n_train):
        diff["training images"] = (int(ckpt["n_train"]), int(n_train))
    recorded = (ckpt.get("data") or {}).get("digest")  # None: written before the digest existed
    if not diff and recorded is not None and recorded != _data_digest(state):
        diff["training images"] = (
            f"digest {recorded}",
            f"digest {_data_digest(state)}: the same class folders and counts hold other files or sizes (classes "
            "swapped, or images replaced)",
        )
    return diff


def _data_digest(state: dict[str, Any]) -> str:
    """A digest of the training images as the run sees them (computed once per run): each file's path under the
    folder, its label and its size in bytes (a stat), and the first 64 KiB of the first file of each class (one
    small read per class). Swapped class folders or replaced images change it; a copy of the folder elsewhere does
    not."""
    if "data_digest" not in state:
        folder = state["folder"]
        root, digest, first = Path(folder.root), hashlib.sha256(), {}
        for path, label in folder.samples:
            digest.update(f"{Path(path).relative_to(root)}\0{label}\0{os.stat(path).st_size}\n".encode())
            first.setdefault(label, path)
        for label in sorted(first):
            with open(first[label], "rb") as fh:
                digest.update(hashlib.sha256(fh.read(65536)).digest())
        state["data_digest"] = digest.hexdigest()[:16]
    return state["data_digest"]


def checkpoint_info(path_or_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """A checkpoint's record without the tensors: ``config``, ``epoch``, ``done``, ``classes``, ``n_train``,
    ``world_size``, ``metrics`` (of the last epoch), ``provenance`` and ``path``."""
    ckpt = _read_checkpoint(path_or_dir)
    keys = ("config", "epoch", "done", "classes", "n_train", "world_size", "metrics", "provenance", "path")
    return {k: ckpt[k] for k in keys}


#: checkpoint identities already hashed, by (path, size, mtime_ns): a notebook asks once per seed
_IDENTITIES: dict[tuple[str, int, int], dict[str, Any]] = {}


def checkpoint_identity(path_or_dir: str | os.PathLike[str], *, note: bool = False) -> dict[str, Any]:
    """What identifies a checkpoint in a claim file: ``arch``, ``dataset``, ``subset`` (or ``domain``), ``epochs``
    (completed), ``epochs_planned``, ``done``, ``image_size``, ``sha256`` of the file and its ``path``.

    Two checkpoints with the same hash hold the same bytes; a resumed or retrained one has another. With ``note``
    the identity is recorded for this run's provenance (:func:`repalign.core.provenance.note_checkpoint`), so the
    claim files written afterwards name it. Hashed once per file version (path, size, modification time).
    """
    path = resolve_path(path_or_dir)
    path = checkpoint_file(path) if path.is_dir() else path
    stat = path.stat() if path.is_file() else None
    key = (str(path), stat.st_size, stat.st_mtime_ns) if stat else None
    if key is None or key not in _IDENTITIES:
        ckpt = _read_checkpoint(path)
        config = ckpt["config"]
        identity = {
            "arch": config.get("arch"),
            "dataset": config.get("dataset"),
            "subset": config.get("subset") if config.get("dataset") == "imagenet" else config.get("domain"),
            "epochs": int(ckpt["epoch"]),
            "epochs_planned": config.get("epochs"),
            "done": bool(ckpt["done"]),
            "image_size": config.get("image_size"),
            "sha256": sha256_file(ckpt["path"]),
            "path": str(ckpt["path"]),
        }
        if key is None:
            return identity
        _IDENTITIES[key] = identity
    if note:
        note_checkpoint(_IDENTITIES[key])
    return dict(_IDENTITIES[key])


def load_pretrained(
    path_or_dir: str | os.PathLike[str], *, map_location: Any = "cpu", allow_unfinished: bool = False
) -> nn.Module:
    """Rebuild the pre-trained network of a run: ``models.backbone(arch, num_classes, image_size)`` from the
    checkpoint's config, with its weights (a plain ``nn.Module``: BatchNorm as ``nn.BatchNorm2d``, no DDP).

    Args:
        path_or_dir: a ``checkpoint.pt`` or the run folder holding one.
        map_location: where the tensors go (``torch.load``'s argument).
        allow_unfinished: accept a run that has not completed all its epochs (default: refuse).

    Returns:
        the model in training mode (as :func:`repalign.networks.models.backbone` returns it), output ``(n, num_classes)``.

    Raises:
        FileNotFoundError: no checkpoint there (the message gives the command that makes one).
        ValueError: the run stopped after epoch ``e`` of ``E`` and ``allow_unfinished`` is False.
    """

    ckpt = _read_checkpoint(path_or_dir, map_location)
    cfg = ckpt["config"]
    if not ckpt["done"] and not allow_unfinished:
        raise ValueError(
            f"{ckpt['path']} is unfinished: epoch {ckpt['epoch']} of {cfg['epochs']}. Run the same command again to "
            f"resume it (it continues from this checkpoint), or pass allow_unfinished=True to use it as it is"
        )
    model = backbone(cfg["arch"], num_classes=len(ckpt["classes"]), image_size=int(cfg["image_size"]))
    model.load_state_dict(ckpt["model"])
    return model.to(map_location) if isinstance(map_location, (str, torch.device)) else model


# --------------------------------------------------------------------------------------------------- training


def _train_epoch(state: dict[str, Any], loader: DataLoader, epoch: int, c: PretrainConfig, d: _Dist) -> dict:
    """One epoch over the global batches; returns the global mean loss, accuracy and images/s."""
    from tqdm.auto import tqdm

    model, opt, sched, scaler = state["model"], state["optimizer"], state["scheduler"], state["scaler"]
    model.train()
    loader.sampler.set_epoch(epoch)
    torch.manual_seed(_mix(c.seed, epoch, d.rank, 1))  # dropout etc.: the same stream after a resume
    criterion = nn.CrossEntropyLoss(label_smoothing=c.label_smoothing)
    amp = c.amp == "on"
    sums = torch.zeros(3, dtype=torch.float64, device=d.device)  # loss * n, correct, n
    start = time.perf_counter()
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{c.epochs}", disable=not (c.progress and d.main), leave=False)
    for x, y in bar:
        d.check_launcher()
        x, y = x.to(d.device, _DTYPES[c.dtype], non_blocking=True), y.to(d.device, non_blocking=True)
        with torch.autocast(device_type=d.device.type, dtype=torch.float16, enabled=amp):
            out = model(x)
            loss = criterion(out, y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        sched.step()
        with torch.no_grad():
            sums += torch.stack(
                [loss.detach().double() * len(y), (out.argmax(1) == y).sum().double(), sums.new_tensor(len(y))]
            )
    loss_sum, correct, n = _all_sum(sums.tolist(), d)
    seconds = time.perf_counter() - start
    return {"loss": loss_sum / n, "accuracy": correct / n, "images_per_s": n / seconds, "seconds": seconds}


def _evaluate(model: nn.Module, loader: DataLoader | None, d: _Dist, c: PretrainConfig) -> dict[str, float]:
    """Top-1 accuracy and mean loss on the validation shards, summed over processes.

    Each process adds up its shard (:func:`repalign.networks.evaluate.batch_sums`, in ``eval()`` mode, autocast
    when ``amp`` is on); the sums are then added over processes.
    """
    if loader is None:
        return {}
    model = model.module if hasattr(model, "module") else model  # no collectives: shards may differ by a batch
    model.eval()
    batches = (
        (x.to(d.device, _DTYPES[c.dtype], non_blocking=True), y.to(d.device, non_blocking=True)) for x, y in loader
    )

    def forward(x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=d.device.type, dtype=torch.float16, enabled=c.amp == "on"):
            return model(x).float()

    def score(out: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        return float(nn.functional.cross_entropy(out, y, reduction="sum")), float((out.argmax(1) == y).sum())

    sums, n = batch_sums(forward, batches, score)
    loss, correct = sums or (0.0, 0.0)  # a shard without batches adds nothing
    loss, correct, n = _all_sum([loss, correct, float(n)], d)
    return {"val_loss": loss / max(n, 1), "val_accuracy": correct / max(n, 1)}


def _prepare(c: PretrainConfig, d: _Dist) -> tuple[dict[str, Any], DataLoader, DataLoader | None]:
    """Data, model (DDP-wrapped when distributed), optimizer, scheduler and scaler."""
    train_loader, val_loader, folder = _loaders(c, d.world, d.rank, pin=d.device.type == "cuda")
    if c.random_labels:
        val_loader = None  # the labels were drawn at random: held-out accuracy measures nothing
    model = _build_model(c, len(folder.classes))
    if d.initialized and d.world > 1 and any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in model.modules()):
        model = _sync_batchnorm(model, d.device)
    model = model.to(d.device, _DTYPES[c.dtype])
    if d.initialized:
        from torch.nn.parallel import DistributedDataParallel

        model = DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    opt = _optimizer(c, model)
    state = {
        "model": model,
        "optimizer": opt,
        "scheduler": _scheduler(c, opt, len(train_loader)),
        "scaler": _grad_scaler(c.amp == "on"),
        "classes": list(folder.classes),
        "n_train": len(folder.samples),
        "folder": folder,
        "world": d.world,
    }
    return state, train_loader, val_loader


def _resume(state: dict[str, Any], c: PretrainConfig, out: Path) -> tuple[int, bool]:
    """Load ``<out>/checkpoint.pt`` into ``state`` when resuming; returns (epochs done, run finished)."""
    path = checkpoint_file(out)
    if c.resume == "never" or not path.is_file():
        return 0, False
    ckpt = _read_checkpoint(path)
    diff = _mismatch(ckpt, c, state)
    if diff:
        lines = "; ".join(f"{k}: checkpoint {a!r}, now {b!r}" for k, (a, b) in diff.items())
        raise ValueError(
            f"{path} was written by a run with a different configuration ({lines}). Run with the checkpoint's "
            f"options to resume it, choose another --out, or pass --resume never to start over (overwrites it)"
        )
    model = state["model"].module if hasattr(state["model"], "module") else state["model"]
    model.load_state_dict(ckpt["model"])
    for key in ("optimizer", "scheduler", "scaler"):
        state[key].load_state_dict(ckpt[key])
    return int(ckpt["epoch"]), bool(ckpt["done"])


def _log_epoch(out: Path, record: dict[str, Any], c: PretrainConfig) -> None:
    """Append one JSON line to ``metrics.jsonl`` (rewritten atomically) and print the epoch's line."""

    path = out / METRICS_NAME
    keep = [ln for ln in _metric_lines(path) if json.loads(ln)["epoch"] < record["epoch"]]
    atomic_write_text(path, "".join(ln + "\n" for ln in [*keep, json.dumps(record, default=json_default)]))
    val = f"  val {100 * record['val_accuracy']:.2f}%" if "val_accuracy" in record else ""
    print(
        f"epoch {record['epoch']}/{c.epochs}  loss {record['loss']:.4f}  acc {100 * record['accuracy']:.2f}%{val}  "
        f"{record['images_per_s']:.0f} img/s  lr {record['lr']:.4g}  ({record['seconds']:.1f} s)",
        flush=True,
    )


def _metric_lines(path: Path) -> list[str]:
    return [ln for ln in path.read_text().splitlines() if ln.strip()] if path.is_file() else []


def train(config: PretrainConfig) -> Path:
    """Run (or resume, or skip when finished) the pre-training ``config`` describes; returns the checkpoint path.

    Call once per process: under torchrun every process calls it and they train together (see the module
    docstring); without torchrun it trains in this process alone.
    """
    _check_config(config)
    d = _setup_distributed(config)
    out = resolve_path(config.out)
    try:
        if d.main:
            _remove_stale_temporaries(out, announce=True)
        c = config.resolved(d.device.type)
        _check_config(c)
        state, train_loader, val_loader = _prepare(c, d)
        done_epochs, finished = _resume(state, c, out)
        if finished:
            if d.main:
                print(f"{checkpoint_file(out)}: finished ({done_epochs} epochs); nothing to do", flush=True)
            return checkpoint_file(out)
        if d.main:
            _announce(c, d, state, len(train_loader), done_epochs)
        for epoch in range(done_epochs, int(c.epochs)):
            record = _run_epoch(state, train_loader, val_loader, epoch, c, d)
            if d.main:
                _log_epoch(out, record, c)
                _save(checkpoint_file(out), state, c, epoch + 1, record)
            _barrier(d)
            if os.environ.get(EXIT_AFTER_EPOCH_ENV) == str(epoch + 1):
                os._exit(17)  # test hook: a hard kill right after this epoch's checkpoint
        return checkpoint_file(out)
    finally:
        if d.main:  # a write interrupted on the way out (an error, or SIGTERM under torchrun) leaves nothing behind
            _remove_stale_temporaries(out)
        if d.initialized:
            import torch.distributed as dist

            dist.destroy_process_group()


def _remove_stale_temporaries(out: Path, announce: bool = False) -> None:
    """Remove the temporary files of this run's checkpoint and metrics (``.checkpoint.pt.*.tmp``,
    ``.metrics.jsonl.*.tmp``) that a process killed while writing them left behind; other files stay."""
    stale = [p for name in (CHECKPOINT_NAME, METRICS_NAME) for p in out.glob(f".{name}.*.tmp")] if out.is_dir() else []
    for path in stale:
        path.unlink(missing_ok=True)
    if stale and announce:
        print(f"removed {len(stale)} temporary file(s) of an interrupted write in {out}", file=sys.stderr, flush=True)


def _run_epoch(
    state: dict[str, Any],
    train_loader: DataLoader,
    val_loader: DataLoader | None,
    epoch: int,
    c: PretrainConfig,
    d: _Dist,
) -> dict[str, Any]:
    record = {"epoch": epoch + 1, **_train_epoch(state, train_loader, epoch, c, d)}
    record.update(_evaluate(state["model"], val_loader, d, c))
    record["lr"] = state["scheduler"].get_last_lr()[0]
    record["world_size"] = d.world
    return record


def _barrier(d: _Dist) -> None:
    if d.initialized:
        import torch.distributed as dist

        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[d.device.index])
        else:
            dist.barrier()


def _announce(c: PretrainConfig, d: _Dist, state: dict[str, Any], steps: int, done: int) -> None:
    print(
        f"pretrain {c.arch} on {c.dataset}"
        + (f"/{c.subset}" if c.dataset == "imagenet" else f"/{c.domain}" if c.dataset == "office31" else f" {c.data}")
        + f": {len(state['classes'])} classes, {state['n_train']} images"
        + (" (random labels)" if c.random_labels else "")
        + f"; {d.world} process(es) on {d.device.type}, global batch {c.batch_size}, {steps} steps/epoch, "
        f"{c.optimizer} lr {c.lr:g}, amp {c.amp}" + (f"; resuming after epoch {done}" if done else ""),
        flush=True,
    )


# ------------------------------------------------------------------------------------------- commands, main


def run_name(arch: str, source: str, *, random_labels: bool = False) -> str:
    """The conventional run folder name: ``<arch>_imagenet_<subset>`` or ``<arch>_office31_<domain>[_random]``."""
    dataset = "office31" if source in _OFFICE31_DOMAINS else "imagenet"
    return f"{arch}_{dataset}_{source}" + ("_random_labels" if random_labels else "")


def default_out_dir(arch: str, source: str, *, random_labels: bool = False, root: Any = None) -> Path:
    """Where runs go by convention: ``<data root>/pretrain/<run_name>`` (``$REPALIGN_DATA`` or ``./data``)."""

    base = Path(root).expanduser() if root is not None else data_root()
    return base / "pretrain" / run_name(arch, source, random_labels=random_labels)


def command(arch: str, subset: str, out_dir: str | os.PathLike[str], nproc: int = 8, **options: Any) -> str:
    """The torchrun command line that makes a run's checkpoint (what a notebook prints when it is missing).

    ``subset``: an ImageNet subset (``natural``, ``artificial``, ``all``) or an Office-31 domain (``amazon``,
    ``dslr``, ``webcam``). ``options`` are further flags by their Python names: ``epochs=90`` -> ``--epochs 90``,
    ``random_labels=True`` -> ``--random-labels``, ``augment=False`` -> ``--no-augment``, ``evaluate=False`` ->
    ``--no-eval``, ``classes=[...]`` -> ``--classes a,b``; ``None`` and other ``False`` values are left out.

    Example: ``command("resnet18", "natural", "runs/r18_nat")`` ->
    ``torchrun --standalone --nproc_per_node=8 -m repalign.networks.pretrain --arch resnet18 --dataset imagenet
    --subset natural --out runs/r18_nat``.
    """
    if subset in _OFFICE31_DOMAINS:
        where = ["--dataset", "office31", "--domain", subset]
    elif subset in _IMAGENET_SUBSETS:
        where = ["--dataset", "imagenet", "--subset", subset]
    else:
        raise ValueError(f"subset must be one of {_IMAGENET_SUBSETS + _OFFICE31_DOMAINS}, got {subset!r}")
    args = ["torchrun", "--standalone", f"--nproc_per_node={int(nproc)}", "-m", "repalign.networks.pretrain"]
    args += ["--arch", arch, *where, "--out", os.fspath(out_dir)]
    negated = {"augment": "--no-augment", "evaluate": "--no-eval", "progress": "--no-progress"}
    valid = {f.name for f in dataclasses.fields(PretrainConfig)} - {"out", "arch", "dataset", "subset", "domain"}
    for key, value in options.items():
        if key not in valid:
            raise ValueError(f"unknown option {key!r}; valid: {', '.join(sorted(valid))}")
        if key in negated:
            args += [] if value else [negated[key]]
        elif value is True:
            args.append("--" + key.replace("_", "-"))
        elif value is not None and value is not False:
            text = ",".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)
            args += ["--" + key.replace("_", "-"), text]
    return " ".join(shlex.quote(a) for a in args)


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns 0 on success, 2 on bad input (the message says what and how to fix it)."""
    try:
        train(parse_args(argv))
    except (FileNotFoundError, ValueError) as err:
        print(f"repalign.networks.pretrain: error: {_one_line(err)}", file=sys.stderr, flush=True)
        return 2
    return 0


def _one_line(err: BaseException) -> str:
    """The message of ``err``; for an error a DataLoader worker raised (re-raised with the worker's traceback in its
    message), the worker's own message: the traceback's last line without the exception's name."""
    text = str(err).strip()
    if "Original Traceback" not in text:
        return text
    last = text.splitlines()[-1]
    return last.split(": ", 1)[1] if ": " in last else last


if __name__ == "__main__":
    sys.exit(main())
