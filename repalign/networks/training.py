"""One training loop for the paper's networks.

:func:`train` fits any ``nn.Module`` (MLPs, CNN backbones for fine-tuning) with a per-batch mean loss

.. math::

    \\text{binary:}\\quad \\ell = -\\tfrac{1}{b}\\sum_i \\big[y_i \\log s(f_i) + (1-y_i)\\log(1-s(f_i))\\big],
    \\qquad
    \\text{multiclass:}\\quad \\ell = -\\tfrac{1}{b}\\sum_i \\log \\operatorname{softmax}(f_i)_{y_i},
    \\qquad
    \\text{regression:}\\quad \\ell = \\tfrac{1}{bk}\\sum_{i,j} (f_{ij} - y_{ij})^2,

with :math:`s` the logistic sigmoid, and records alignment (or anything else) over training through a callback.
Its options (task, optimizer, learning rate, batch size, epochs, ...) are one :class:`TrainOptions`, shared with
:func:`repalign.networks.ensemble.train_ensemble` (several seeds trained together), which also
shares this module's per-epoch bookkeeping, so both record the same history, callbacks and provenance.

How a seed drives a run (identical for :func:`train` and ``train_ensemble``, so per-seed ensemble results equal
sequential ones):

* **initialisation**: ``init_model(make_model, seed)`` = ``with seeded(seed): make_model()``, where
  :func:`seeded` is ``torch.manual_seed(seed)`` inside ``torch.random.fork_rng`` (the caller's global RNG state
  is left untouched; the package's one seeding rule). ``train`` does this itself when given a factory.
* **shuffling**: a private ``g = torch.Generator().manual_seed(seed)`` (CPU); each epoch draws
  ``perm = torch.randperm(n, generator=g)`` and the batches are ``perm[0:b], perm[b:2b], ...`` (the last one
  may be smaller; nothing is dropped).
* **other randomness** (dropout in ``train``): the run executes inside ``seeded(seed)``.

Seeded runs are bit-identical on CPU (CUDA kernels may be non-deterministic).
"""

from __future__ import annotations

import dataclasses
import inspect
import math
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.core.progress import progress_bar as tqdm
from repalign.measure.targets import TASKS
from repalign.networks.evaluate import batch_sums
from repalign.networks.runtime import _check_seed, get_device, model_dtype, seeded

__all__ = [
    "OPTIMIZERS",
    "TrainResult",
    "TrainOptions",
    "seeded",
    "init_model",
    "make_optimizer",
    "train",
]

OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "rmsprop")
_LOSS_NAMES = {"binary": "bce_with_logits", "multiclass": "cross_entropy", "regression": "mse"}
_SHUFFLE_RULE = (
    "g = torch.Generator().manual_seed(seed); each epoch perm = torch.randperm(n, generator=g); "
    "batches perm[0:b], perm[b:2b], ... (last batch partial)"
)

Callback = Callable[[int, nn.Module], Any]


@dataclass
class TrainResult:
    """What a training run produced.

    Attributes:
        model: the trained module (on the training device, left in ``eval()`` mode).
        history: per-epoch lists, index ``i`` is epoch ``i + 1``: ``epoch``, ``train_loss`` (mean of the batch
            losses weighted by batch size, taken while training), ``train_acc`` (classification), ``val_loss`` and
            ``val_acc`` (when validation data were given; measured in ``eval()`` mode after the epoch).
        records: ``{epoch: callback(epoch, model)}`` for epoch 0 (before training), every ``callback_every``
            epochs and the last epoch.
        params: everything needed to reproduce the run (:meth:`TrainOptions.record`).
        seconds: wall time of the run (for ``train_ensemble``: of the whole ensemble); not reproducible.
    """

    model: nn.Module
    history: dict[str, list[float]]
    records: dict[int, Any] = field(default_factory=dict)
    params: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def final_loss(self) -> float:
        """Training loss of the last epoch (``nan`` when no epoch ran)."""
        losses = self.history.get("train_loss", [])
        return float(losses[-1]) if losses else float("nan")


@dataclass(frozen=True)
class TrainOptions:
    """The options of a run, shared by :func:`train` and ``train_ensemble``; validated when built.

    Both functions take ``options=TrainOptions(...)`` and/or the same fields as keyword arguments (these override
    ``options``). An invalid value raises ``ValueError`` naming the option (unknown names list the valid ones).

    Attributes:
        task: ``binary | multiclass | regression`` (the loss: BCE with logits, cross-entropy, MSE).
        optimizer: ``adam | sgd | rmsprop`` (:func:`make_optimizer`); lr, momentum (SGD/RMSprop), weight_decay.
        batch_size: examples per step; epochs: passes over the training set (0: only the epoch-0 callback).
        callback_every: record the callback every that many epochs (and at epoch 0 and the last one).
        progress: show a tqdm bar over epochs; log_every: print a summary every that many epochs (0: never).
    """

    task: str = "binary"
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.0
    weight_decay: float = 0.0
    batch_size: int = 64
    epochs: int = 100
    callback_every: int = 1
    progress: bool = True
    log_every: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "task", _check_choice("task", self.task, TASKS))
        object.__setattr__(self, "optimizer", _check_choice("optimizer", self.optimizer, OPTIMIZERS))
        if not (isinstance(self.lr, (int, float)) and math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for what, low in (("batch_size", 1), ("epochs", 0), ("callback_every", 1), ("log_every", 0)):
            value = getattr(self, what)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
                raise ValueError(f"{what} must be an int >= {low}, got {value!r}")

    @classmethod
    def of(cls, options: TrainOptions | None, overrides: dict[str, Any]) -> TrainOptions:
        """``options`` (default: the defaults) with the keyword arguments ``overrides`` replacing fields."""
        names = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(overrides) - set(names))
        if unknown:
            raise TypeError(
                f"unexpected keyword argument(s) {', '.join(unknown)}; training options: {', '.join(names)}"
            )
        if options is not None and not isinstance(options, cls):
            raise ValueError(f"options must be a TrainOptions, got {type(options).__name__}")
        return dataclasses.replace(options or cls(), **overrides)

    def record(
        self, *, seed: int, impl: str, n_train: int, n_val: int | None, device: Any, model: nn.Module, **extra: Any
    ) -> dict[str, Any]:
        """The provenance dict of a run (:attr:`TrainResult.params`); ``extra`` goes after the shuffle rule."""
        return {
            "task": self.task,
            "loss": _LOSS_NAMES[self.task],
            "optimizer": self.optimizer,
            "optimizer_impl": impl,
            "lr": self.lr,
            "momentum": self.momentum,
            "weight_decay": self.weight_decay,
            "batch_size": self.batch_size,
            "epochs": self.epochs,
            "seed": seed,
            "shuffle": _SHUFFLE_RULE,
            **extra,
            "n_train": n_train,
            "n_val": n_val,
            "device": str(device),
            "model": type(model).__name__,
            "num_parameters": sum(p.numel() for p in model.parameters()),
            "torch": torch.__version__,
        }


# ----------------------------------------------------------------------------------------------------------
# seeding
# ----------------------------------------------------------------------------------------------------------


def init_model(make_model: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model deterministically from a seed: ``with seeded(seed): make_model()``.

    The caller's global RNG state is left untouched. This is the initialisation rule shared by :func:`train`
    (when given a factory) and ``train_ensemble``.
    """
    with seeded(_check_seed(seed)):
        model = make_model()
    if not isinstance(model, nn.Module):
        raise ValueError(f"make_model() must return a torch.nn.Module, got {type(model).__name__}")
    return model


def _shuffle_generator(seed: int) -> torch.Generator:
    return torch.Generator(device="cpu").manual_seed(seed)


# ----------------------------------------------------------------------------------------------------------
# optimizers and losses
# ----------------------------------------------------------------------------------------------------------


def make_optimizer(
    name: str,
    params: Any,
    *,
    lr: float,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> tuple[torch.optim.Optimizer, str]:
    """Build ``adam | sgd | rmsprop`` on ``params``; returns ``(optimizer, implementation)``.

    All three are elementwise, so one optimizer over seed-stacked tensors performs exactly the per-seed updates
    (Adam's bias correction :math:`1-\\beta^t` depends only on the shared step count ``t``). The fused kernel is
    used where torch has one for the optimizer and device (Adam, SGD), else torch's default; the choice depends
    only on (optimizer, device), so :func:`train` and :func:`train_ensemble` always use the same maths.
    """
    name = _check_choice("optimizer", name, OPTIMIZERS)
    params = list(params)
    classes = {"adam": torch.optim.Adam, "sgd": torch.optim.SGD, "rmsprop": torch.optim.RMSprop}
    cls = classes[name]
    kwargs: dict[str, Any] = {"lr": lr, "weight_decay": weight_decay}
    if name in ("sgd", "rmsprop"):
        kwargs["momentum"] = momentum
    elif momentum:
        raise ValueError("momentum applies to optimizer='sgd' or 'rmsprop'; Adam uses its betas (0.9, 0.999)")
    if "fused" in inspect.signature(cls).parameters:
        try:
            return cls(params, fused=True, **kwargs), "fused"
        except (RuntimeError, ValueError, TypeError):
            pass
    return cls(params, **kwargs), "default"


def _logits(out: torch.Tensor, b: int) -> torch.Tensor:
    return out.reshape(b)


def _loss(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-batch mean loss; ``out`` is the model output for a batch of ``b = len(y)`` examples."""
    if task == "binary":
        return F.binary_cross_entropy_with_logits(_logits(out, y.shape[0]), y)
    if task == "multiclass":
        return F.cross_entropy(out, y)
    return F.mse_loss(out.reshape(y.shape), y)


def _n_correct(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Number of correct predictions in a batch (0-dim tensor); binary predicts 1 when the logit is > 0."""
    if task == "binary":
        return ((_logits(out, y.shape[0]) > 0) == (y > 0.5)).sum()
    return (out.argmax(dim=-1) == y).sum()


def _check_output(task: str, out: torch.Tensor, y: torch.Tensor, label_max: int | None = None) -> None:
    """Validate the model's output against the targets once, on the first batch.

    ``label_max``: the largest class label of the whole training set (multiclass), when known up front.
    """
    b = y.shape[0]
    if out.shape[0] != b:
        raise ValueError(f"model returned {out.shape[0]} rows for a batch of {b} examples")
    if task == "binary" and out.numel() != b:
        raise ValueError(
            f"task='binary' needs one logit per example (output (b, 1)), got output shape {tuple(out.shape)}; "
            "use out_features=1 or task='multiclass'"
        )
    if task == "multiclass":
        if out.ndim != 2:
            raise ValueError(f"task='multiclass' needs output (b, classes), got {tuple(out.shape)}")
        top = int(y.max()) if label_max is None else label_max
        if top >= out.shape[1]:
            raise ValueError(f"label {top} is out of range for a model with {out.shape[1]} outputs")
    if task == "regression" and out.numel() != y.numel():
        raise ValueError(f"task='regression': output shape {tuple(out.shape)} does not match targets {tuple(y.shape)}")


# ----------------------------------------------------------------------------------------------------------
# inputs
# ----------------------------------------------------------------------------------------------------------


def _check_choice(what: str, value: Any, valid: Sequence[str]) -> str:
    if not isinstance(value, str) or value.lower() not in valid:
        raise ValueError(f"unknown {what} {value!r}; valid: {', '.join(valid)}")
    return value.lower()


def _to_tensor(a: Any, name: str) -> torch.Tensor:
    if isinstance(a, torch.Tensor):
        return a.detach()
    try:
        arr = np.asarray(a)
    except Exception as e:  # noqa: BLE001 - re-raised as the documented error
        raise ValueError(f"{name} must be an array or tensor, got {type(a).__name__}") from e
    if arr.dtype == object:
        raise ValueError(f"{name} must be a numeric array or tensor, got dtype object")
    return torch.as_tensor(np.ascontiguousarray(arr))


def _prepare_x(x: Any, name: str, dtype: torch.dtype) -> torch.Tensor:
    t = _to_tensor(x, name)
    if t.ndim < 2:
        raise ValueError(f"{name} must have shape (n, ...) with a feature axis, got {tuple(t.shape)}")
    if not (t.is_floating_point() or t.dtype in (torch.uint8, torch.int8, torch.int16, torch.int32, torch.int64)):
        raise ValueError(f"{name} must be numeric, got dtype {t.dtype}")
    t = t.to(dtype)
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values; clean or impute them before training")
    return t


def _prepare_y(y: Any, task: str, name: str, dtype: torch.dtype) -> torch.Tensor:
    t = _to_tensor(y, name)
    if t.is_floating_point() and not bool(torch.isfinite(t).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    if task == "binary":
        if t.ndim == 2 and t.shape[1] == 1:
            t = t[:, 0]
        if t.ndim != 1:
            raise ValueError(f"task='binary' needs labels of shape (n,) or (n, 1), got {tuple(t.shape)}")
        values = torch.unique(t)
        if not bool(((values == 0) | (values == 1)).all()):
            raise ValueError(
                f"task='binary' needs 0/1 labels, got values {values[:5].tolist()}...; map them first "
                "(e.g. (y == positive_class)) or use task='multiclass'"
            )
        return t.to(dtype)
    if task == "multiclass":
        if t.ndim != 1:
            raise ValueError(f"task='multiclass' needs integer labels of shape (n,), got {tuple(t.shape)}")
        if t.is_floating_point():
            if not bool((t == t.round()).all()):
                raise ValueError("task='multiclass' needs integer class labels, got non-integer values")
        elif t.dtype == torch.bool:
            raise ValueError("task='multiclass' needs integer class labels, got booleans; use task='binary'")
        t = t.long()
        if t.numel() and int(t.min()) < 0:
            raise ValueError("task='multiclass' needs labels in 0..classes-1, got negative labels")
        return t
    if t.ndim not in (1, 2):
        raise ValueError(f"task='regression' needs targets of shape (n,) or (n, k), got {tuple(t.shape)}")
    return t.to(dtype)


def _unpack(x: Any, y: Any) -> tuple[Any, Any]:
    """Accept ``(x, y)``, a ``TensorDataset(x, y)`` or an object with ``.x`` and ``.y`` (``repalign.data``)."""
    if y is None and isinstance(x, torch.utils.data.TensorDataset) and len(x.tensors) == 2:
        return x.tensors[0], x.tensors[1]
    if (
        y is None
        and not isinstance(x, (torch.Tensor, np.ndarray, torch.utils.data.Dataset, torch.utils.data.DataLoader))
        and hasattr(x, "x")
        and hasattr(x, "y")
    ):
        return x.x, x.y
    return x, y


def _in_memory(
    x: Any, y: Any, task: str, dtype: torch.dtype, device: torch.device, what: str = "x"
) -> tuple[torch.Tensor, torch.Tensor]:
    if y is None:
        raise ValueError(f"y is required when {what} is an array or tensor")
    xt = _prepare_x(x, what, dtype)
    yt = _prepare_y(y, task, "y" if what == "x" else "y_val", dtype)
    if xt.shape[0] != yt.shape[0]:
        raise ValueError(f"{what} has {xt.shape[0]} rows but its targets have {yt.shape[0]}; they must match")
    if xt.shape[0] == 0:
        raise ValueError(f"{what} is empty")
    return xt.to(device), yt.to(device)


class _EpochPermutation(torch.utils.data.Sampler):
    """Sampler yielding ``torch.randperm(n, generator=g)`` once per epoch (the shared shuffling rule)."""

    def __init__(self, n: int, generator: torch.Generator) -> None:
        self.n = n
        self.generator = generator

    def __len__(self) -> int:
        return self.n

    def __iter__(self) -> Iterator[int]:
        return iter(torch.randperm(self.n, generator=self.generator).tolist())


def _make_loader(
    data: Any, batch_size: int, generator: torch.Generator | None, num_workers: int
) -> torch.utils.data.DataLoader:
    if isinstance(data, torch.utils.data.DataLoader):
        return data
    sampler = _EpochPermutation(len(data), generator) if generator is not None else None
    return torch.utils.data.DataLoader(
        data, batch_size=batch_size, sampler=sampler, shuffle=False, num_workers=num_workers
    )


def _loader_batches(
    loader: torch.utils.data.DataLoader, task: str, dtype: torch.dtype, device: torch.device
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for batch in loader:
        if not isinstance(batch, (tuple, list)) or len(batch) < 2:
            raise ValueError("a Dataset/DataLoader must yield (inputs, targets) pairs")
        xb = batch[0].to(device=device, dtype=dtype)
        yb = _prepare_y(batch[1], task, "targets", dtype).to(device)
        yield xb, yb


# ----------------------------------------------------------------------------------------------------------
# train
# ----------------------------------------------------------------------------------------------------------


def _callback_epochs(epochs: int, every: int) -> set[int]:
    return {e for e in range(epochs + 1) if e % every == 0} | {epochs}


def _log(prefix: str, epoch: int, epochs: int, row: dict[str, float]) -> None:
    parts = [f"{k} {v:.4g}" for k, v in row.items()]
    tqdm.write(f"{prefix}epoch {epoch}/{epochs}: " + ", ".join(parts))


def _validation(
    forward: Callable[[torch.Tensor], Sequence[torch.Tensor]],
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    task: str,
) -> list[dict[str, float]]:
    r"""``val_loss`` (and ``val_acc``, classification) of each model whose output ``forward`` returns, over ``batches``.

    .. math::  \text{val\_loss}_s = \tfrac1n \textstyle\sum_B |B|\, \ell(f_s(x_B), y_B), \qquad
               \text{val\_acc}_s = \tfrac1n \textstyle\sum_B \#\{i \in B: \text{correct}\}

    with the per-batch mean loss :math:`\ell` of training (:func:`repalign.networks.evaluate.batch_sums` adds them
    up). ``forward(x_B)`` returns one output per model (``(model(x_B),)`` for :func:`train`, the seeds' stacked
    outputs for ``train_ensemble``); the models are in ``eval()`` mode. Returns one row per model.
    """
    classify = task != "regression"

    def score(outs: Sequence[torch.Tensor], yb: torch.Tensor) -> list[float]:
        b = yb.shape[0]
        values = []
        for out in outs:
            values.append(float(_loss(task, out, yb)) * b)
            if classify:
                values.append(float(_n_correct(task, out, yb)))
        return values

    sums, count = batch_sums(forward, batches, score)
    if count == 0:
        raise ValueError("the validation data yielded no examples; pass a non-empty x_val (or none)")
    per = 2 if classify else 1
    rows = []
    for s in range(len(sums) // per):
        row = {"val_loss": sums[per * s] / count}
        if classify:
            row["val_acc"] = sums[per * s + 1] / count
        rows.append(row)
    return rows


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, x.shape[0], size):
        yield x[start : start + size], y[start : start + size]


def train(
    model: nn.Module | Callable[[], nn.Module],
    x: Any,
    y: Any = None,
    *,
    seed: int = 0,
    device: Any = None,
    x_val: Any = None,
    y_val: Any = None,
    callback: Callback | None = None,
    num_workers: int = 0,
    options: TrainOptions | None = None,
    **kwargs: Any,
) -> TrainResult:
    """Train ``model`` with mini-batch ``adam | sgd | rmsprop`` on a binary, multiclass or regression task.

    .. math::

        \\theta_{t+1} = \\operatorname{opt}\\big(\\theta_t, \\nabla_\\theta \\tfrac{1}{b}\\textstyle\\sum_{i \\in B_t}
        \\ell(f_\\theta(x_i), y_i)\\big),

    batches :math:`B_t` drawn without replacement by the seeded shuffling rule of this module (see the module
    docstring). ``model`` may be a module (trained in place, moved to ``device``) or a zero-argument factory,
    built with :func:`init_model` ``(factory, seed)``.

    Shape:
        x: ``(n, ...)`` array/tensor (``(n, d)`` for MLPs, ``(n, C, H, W)`` for CNNs); or a torch ``Dataset``
        yielding ``(input, target)`` (shuffled by the same rule), or a ``DataLoader`` used as is (its own
        shuffling; ``seed`` then only seeds the global RNG); or an object with ``.x`` and ``.y``.
        y: binary ``(n,)`` or ``(n, 1)`` 0/1 labels (model output ``(b, 1)``); multiclass ``(n,)`` ints in
        ``0..k-1`` (output ``(b, k)``); regression ``(n,)`` or ``(n, k)`` floats (output matching).

    Args:
        device: where to train, by the package's device rule (:func:`repalign.networks.runtime.get_device`:
            ``None``/``"auto"`` is CUDA when torch sees one, else the CPU); the model and the data are moved there.
        callback: ``callback(epoch, model)`` is called with the model in ``eval()`` mode at epoch 0 (before
            training), after every ``callback_every``-th epoch and after the last epoch; its return values are
            collected in ``TrainResult.records[epoch]``.
        num_workers: DataLoader workers when ``x`` is a torch Dataset.
        options, **kwargs: the training options, a :class:`TrainOptions` and/or its fields as keywords (``task``,
            ``optimizer``, ``lr``, ``momentum``, ``weight_decay``, ``batch_size``, ``epochs``, ``callback_every``,
            ``progress``, ``log_every``; keywords win).

    Returns:
        :class:`TrainResult` with the trained model, per-epoch history, callback records and the parameters.

    Raises:
        ValueError: unknown task/optimizer (the valid ones are listed), mismatched lengths, non-finite inputs,
            labels that do not fit the task, or a model output that does not fit the targets.
    """
    opts = TrainOptions.of(options, kwargs)
    seed = _check_seed(seed)
    if not isinstance(model, nn.Module):
        if not callable(model):
            raise ValueError(f"model must be an nn.Module or a factory returning one, got {type(model).__name__}")
        model = init_model(model, seed)
    dev = get_device(device)
    dtype = model_dtype(model)
    x, y = _unpack(x, y)
    generator = _shuffle_generator(seed)
    epoch_batches, n, label_max = _training_batches(x, y, opts, dtype, dev, generator, num_workers)
    val_batches = _val_source(x_val, y_val, opts.task, dtype, dev, opts.batch_size, num_workers)

    model.to(dev)
    opt, impl = make_optimizer(
        opts.optimizer, model.parameters(), lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay
    )
    params = opts.record(seed=seed, impl=impl, n_train=n, n_val=_val_count(x_val, val_batches), device=dev, model=model)
    start = time.perf_counter()
    run_epoch = _epoch_runner(model, opt, epoch_batches, opts.task, dev, label_max, val_batches)
    with seeded(seed):
        histories, records = _run_epochs(opts, run_epoch, lambda _: model.eval(), callback, val_batches, [""])
    model.eval()
    return TrainResult(model, histories[0], records[0], params, time.perf_counter() - start)


def _training_batches(
    x: Any,
    y: Any,
    opts: TrainOptions,
    dtype: torch.dtype,
    dev: torch.device,
    generator: torch.Generator,
    num_workers: int,
) -> tuple[Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]], int, int | None]:
    """The training set of :func:`train`: ``(epoch_batches, n, label_max)``.

    ``epoch_batches()`` yields one epoch's ``(x_B, y_B)`` on ``dev`` by the shuffling rule (module docstring):
    in-memory tensors are indexed directly (no DataLoader overhead), a Dataset goes through a DataLoader whose
    sampler applies the same per-epoch permutation, a DataLoader is used as it is. ``label_max`` is the largest
    class label (multiclass, in memory; else None).
    """
    task = opts.task
    if isinstance(x, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        if y is not None:
            raise ValueError("pass y=None when x is a torch Dataset/DataLoader (it yields the targets)")
        loader = _make_loader(x, opts.batch_size, generator, num_workers)

        def from_loader() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            return _loader_batches(loader, task, dtype, dev)

        return from_loader, len(loader.dataset), None  # type: ignore[arg-type]

    xt, yt = _in_memory(x, y, task, dtype, dev)
    n = xt.shape[0]

    def from_memory() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        perm = torch.randperm(n, generator=generator).to(dev)
        return ((xt.index_select(0, idx), yt.index_select(0, idx)) for idx in perm.split(opts.batch_size))

    return from_memory, n, (int(yt.max()) if task == "multiclass" else None)


def _epoch_runner(
    model: nn.Module,
    opt: torch.optim.Optimizer,
    epoch_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
    task: str,
    dev: torch.device,
    label_max: int | None,
    val_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None,
) -> Callable[[], list[dict[str, float]]]:
    """``run_epoch()`` of :func:`train`: one pass of optimizer steps, then the epoch's row of the history.

    The row holds ``train_loss`` (batch losses weighted by batch size, taken while training), ``train_acc``
    (classification) and, with validation data, ``val_loss``/``val_acc`` measured in ``eval()`` mode after the
    epoch. The model's output is checked against the targets on the first batch of the run.
    """
    checked = False

    def run_epoch() -> list[dict[str, float]]:
        nonlocal checked
        model.train()
        loss_sum = torch.zeros((), device=dev)
        correct = torch.zeros((), device=dev, dtype=torch.long)
        count = 0
        for xb, yb in epoch_batches():
            out = model(xb)
            if not checked:
                _check_output(task, out, yb, label_max)
                checked = True
            loss = _loss(task, out, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            b = yb.shape[0]
            with torch.no_grad():
                loss_sum += loss.detach() * b
                if task != "regression":
                    correct += _n_correct(task, out, yb)
            count += b
        row = {"train_loss": float(loss_sum) / count}
        if task != "regression":
            row["train_acc"] = float(correct) / count
        model.eval()
        if val_batches is not None:
            row.update(_validation(lambda xb: (model(xb),), val_batches(), task)[0])
        return [row]

    return run_epoch


def _run_epochs(
    opts: TrainOptions,
    run_epoch: Callable[[], list[dict[str, float]]],
    model_of: Callable[[int], nn.Module],
    callback: Callback | None,
    val_batches: Any,
    labels: Sequence[str],
) -> tuple[list[dict[str, list[float]]], list[dict[int, Any]]]:
    """The per-epoch bookkeeping of :func:`train` and ``train_ensemble``, for ``len(labels)`` models at once.

    ``run_epoch()`` trains all models one epoch and returns one row per model (``train_loss``, ``train_acc``,
    ``val_loss``, ``val_acc``); ``model_of(s)`` returns model ``s`` in ``eval()`` mode for the callback;
    ``labels[s]`` prefixes model ``s``'s divergence warning. Returns per-model histories and callback records.
    """
    S = len(labels)
    histories = [_empty_history(opts.task, val_batches is not None) for _ in range(S)]
    records: list[dict[int, Any]] = [{} for _ in range(S)]
    record_at = _callback_epochs(opts.epochs, opts.callback_every)
    if callback is not None:
        for s in range(S):
            records[s][0] = callback(0, model_of(s))
    bar = tqdm(
        range(1, opts.epochs + 1), desc="train" if S == 1 else f"train x{S}", disable=not opts.progress, leave=False
    )
    for epoch in bar:
        rows = run_epoch()
        for s in range(S):
            _append(histories[s], epoch, rows[s])
            _warn_nonfinite(rows[s]["train_loss"], epoch, labels[s])
        if callback is not None and epoch in record_at:
            for s in range(S):
                records[s][epoch] = callback(epoch, model_of(s))
        mean = {k: sum(r[k] for r in rows) / S for k in rows[0]}
        bar.set_postfix(loss=f"{mean['train_loss']:.4g}", refresh=False)
        if opts.log_every and (epoch % opts.log_every == 0 or epoch == opts.epochs):
            _log("" if S == 1 else f"[{S} seeds, mean] ", epoch, opts.epochs, mean)
    bar.close()
    return histories, records


def _val_count(x_val: Any, val_batches: Any) -> int | None:
    """Validation examples for the provenance dict: None without validation data, -1 when not countable."""
    if val_batches is None:
        return None
    if isinstance(x_val, torch.utils.data.DataLoader):
        return len(x_val.dataset)  # type: ignore[arg-type]
    if hasattr(x_val, "__len__"):
        return len(x_val)
    return -1


def _val_source(
    x_val: Any, y_val: Any, task: str, dtype: torch.dtype, dev: torch.device, batch_size: int, num_workers: int
) -> Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None:
    """A function returning validation batches (in order), or None when no validation data were given."""
    x_val, y_val = _unpack(x_val, y_val)
    if x_val is None:
        if y_val is not None:
            raise ValueError("y_val was given without x_val")
        return None
    eval_size = max(batch_size, 256)
    if isinstance(x_val, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        if y_val is not None:
            raise ValueError("pass y_val=None when x_val is a torch Dataset/DataLoader")
        loader = _make_loader(x_val, eval_size, None, num_workers)
        return lambda: _loader_batches(loader, task, dtype, dev)
    xv, yv = _in_memory(x_val, y_val, task, dtype, dev, what="x_val")
    return lambda: _chunks(xv, yv, eval_size)


def _empty_history(task: str, has_val: bool) -> dict[str, list[float]]:
    keys = ["epoch", "train_loss"]
    if task != "regression":
        keys.append("train_acc")
    if has_val:
        keys.append("val_loss")
        if task != "regression":
            keys.append("val_acc")
    return {k: [] for k in keys}


def _append(history: dict[str, list[float]], epoch: int, row: dict[str, float]) -> None:
    history["epoch"].append(epoch)
    for k, v in row.items():
        history[k].append(v)


def _warn_nonfinite(loss: float, epoch: int, label: str = "") -> None:
    if not math.isfinite(loss):
        warnings.warn(
            f"{label}training loss is {loss} at epoch {epoch}; the run diverged (try a smaller lr)",
            RuntimeWarning,
            stacklevel=4,
        )
