"""One training loop for the paper's networks, and several seeds of one architecture trained together.

:func:`train` fits any ``nn.Module`` (MLPs, CNN backbones for fine-tuning) with a per-batch mean loss

.. math::

    \\text{binary:}\\quad \\ell = -\\tfrac{1}{b}\\sum_i \\big[y_i \\log s(f_i) + (1-y_i)\\log(1-s(f_i))\\big],
    \\qquad
    \\text{multiclass:}\\quad \\ell = -\\tfrac{1}{b}\\sum_i \\log \\operatorname{softmax}(f_i)_{y_i},
    \\qquad
    \\text{regression:}\\quad \\ell = \\tfrac{1}{bk}\\sum_{i,j} (f_{ij} - y_{ij})^2,

with :math:`s` the logistic sigmoid, and records alignment (or anything else) over training through a callback.
:func:`train_ensemble` trains several seeds of the same architecture *together*: the seeds' parameters are
stacked (``torch.func.stack_module_state``) and one batched forward/backward (``torch.bmm`` for plain MLPs,
``torch.func.vmap`` otherwise) and one optimizer step serve all seeds at once, which removes the per-seed,
per-step Python and dispatch overhead (the matrix-product FLOPs are the same, so the gain is bounded by how much
of a sequential step is overhead).

How a seed drives a run (identical in both functions, so per-seed ensemble results equal sequential ones):

* **initialisation**: ``init_model(make_model, seed)`` = ``torch.manual_seed(seed); make_model()`` (inside
  ``torch.random.fork_rng``, so the caller's global RNG state is left untouched). ``train`` does this itself
  when given a factory instead of a module.
* **shuffling**: a private ``g = torch.Generator().manual_seed(seed)`` (CPU); each epoch draws
  ``perm = torch.randperm(n, generator=g)`` and the batches are ``perm[0:b], perm[b:2b], ...`` (the last one
  may be smaller; nothing is dropped).
* **other randomness** (dropout in ``train``): the global torch RNG is set with ``torch.manual_seed(seed)``
  inside a ``fork_rng`` scope for the duration of the run.

Seeded runs are bit-identical on CPU (CUDA kernels may be non-deterministic).
"""

from __future__ import annotations

import contextlib
import copy
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
from tqdm.auto import tqdm

from repalign.utils import get_device

__all__ = [
    "TASKS",
    "OPTIMIZERS",
    "TrainResult",
    "init_model",
    "make_optimizer",
    "train",
    "train_ensemble",
]

TASKS: tuple[str, ...] = ("binary", "multiclass", "regression")
OPTIMIZERS: tuple[str, ...] = ("adam", "sgd", "rmsprop")
_LOSS_NAMES = {"binary": "bce_with_logits", "multiclass": "cross_entropy", "regression": "mse"}
_SHUFFLE_RULE = (
    "g = torch.Generator().manual_seed(seed); each epoch perm = torch.randperm(n, generator=g); "
    "batches perm[0:b], perm[b:2b], ... (last batch partial)"
)
_INIT_RULE = "torch.manual_seed(seed); make_model()"

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
        params: everything needed to reproduce the run (task, optimizer, lr, batch size, epochs, seed, ...).
        seconds: wall time of the run (for :func:`train_ensemble`: of the whole ensemble); not reproducible.
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


# ----------------------------------------------------------------------------------------------------------
# seeding
# ----------------------------------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded_scope(seed: int) -> Iterator[None]:
    """Seed torch's global RNG (CPU and CUDA) inside ``fork_rng`` so the caller's RNG state is restored after."""
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        yield


def init_model(make_model: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build a model deterministically from a seed: ``torch.manual_seed(seed); make_model()``.

    The caller's global RNG state is left untouched (``torch.random.fork_rng``). This is the initialisation rule
    shared by :func:`train` (when given a factory) and :func:`train_ensemble`.
    """
    seed = _check_seed(seed)
    with _seeded_scope(seed):
        model = make_model()
    if not isinstance(model, nn.Module):
        raise ValueError(f"make_model() must return a torch.nn.Module, got {type(model).__name__}")
    return model


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise ValueError(f"seed must be an int, got {seed!r}")
    if seed < 0:
        raise ValueError(f"seed must be non-negative, got {seed}")
    return int(seed)


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


def _model_dtype(model: nn.Module) -> torch.dtype:
    for p in model.parameters():
        if p.is_floating_point():
            return p.dtype
    return torch.get_default_dtype()


def _check_options(
    task: str, optimizer: str, lr: float, batch_size: int, epochs: int, callback_every: int, log_every: int
) -> tuple[str, str]:
    task = _check_choice("task", task, TASKS)
    optimizer = _check_choice("optimizer", optimizer, OPTIMIZERS)
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    for what, value, low in (
        ("batch_size", batch_size, 1),
        ("epochs", epochs, 0),
        ("callback_every", callback_every, 1),
        ("log_every", log_every, 0),
    ):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
            raise ValueError(f"{what} must be an int >= {low}, got {value!r}")
    return task, optimizer


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


@torch.no_grad()
def _evaluate(
    forward: Callable[[torch.Tensor], torch.Tensor],
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]],
    task: str,
) -> tuple[float, float]:
    """Mean loss and accuracy (nan for regression) of ``forward`` over ``batches``."""
    loss_sum, correct, count = 0.0, 0.0, 0
    for xb, yb in batches:
        out = forward(xb)
        b = yb.shape[0]
        loss_sum += float(_loss(task, out, yb)) * b
        if task != "regression":
            correct += float(_n_correct(task, out, yb))
        count += b
    return loss_sum / count, (correct / count if task != "regression" else float("nan"))


def _chunks(x: torch.Tensor, y: torch.Tensor, size: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for start in range(0, x.shape[0], size):
        yield x[start : start + size], y[start : start + size]


def train(
    model: nn.Module | Callable[[], nn.Module],
    x: Any,
    y: Any = None,
    *,
    task: str = "binary",
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.0,
    batch_size: int = 64,
    epochs: int = 100,
    seed: int = 0,
    device: Any = None,
    weight_decay: float = 0.0,
    x_val: Any = None,
    y_val: Any = None,
    callback: Callback | None = None,
    callback_every: int = 1,
    progress: bool = True,
    log_every: int = 0,
    num_workers: int = 0,
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
        callback: ``callback(epoch, model)`` is called with the model in ``eval()`` mode at epoch 0 (before
            training), after every ``callback_every``-th epoch and after the last epoch; its return values are
            collected in ``TrainResult.records[epoch]``.
        progress: show a tqdm bar over epochs. log_every: print a one-line summary every that many epochs (0:
            never). num_workers: DataLoader workers when ``x`` is a torch Dataset.

    Returns:
        :class:`TrainResult` with the trained model, per-epoch history, callback records and the parameters.

    Raises:
        ValueError: unknown task/optimizer (the valid ones are listed), mismatched lengths, non-finite inputs,
            labels that do not fit the task, or a model output that does not fit the targets.
    """
    task, optimizer = _check_options(task, optimizer, lr, batch_size, epochs, callback_every, log_every)
    seed = _check_seed(seed)
    if not isinstance(model, nn.Module):
        if not callable(model):
            raise ValueError(f"model must be an nn.Module or a factory returning one, got {type(model).__name__}")
        model = init_model(model, seed)
    dev = get_device(device)
    dtype = _model_dtype(model)
    x, y = _unpack(x, y)
    generator = _shuffle_generator(seed)

    # Data: in-memory tensors are indexed directly (no DataLoader overhead); datasets go through a DataLoader
    # whose sampler applies the same per-epoch permutation.
    if isinstance(x, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        if y is not None:
            raise ValueError("pass y=None when x is a torch Dataset/DataLoader (it yields the targets)")
        loader = _make_loader(x, batch_size, generator, num_workers)
        n = len(loader.dataset)  # type: ignore[arg-type]
        xt = yt = None
        label_max = None

        def epoch_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            return _loader_batches(loader, task, dtype, dev)

    else:
        xt, yt = _in_memory(x, y, task, dtype, dev)
        n = xt.shape[0]
        label_max = int(yt.max()) if task == "multiclass" else None

        def epoch_batches() -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
            perm = torch.randperm(n, generator=generator).to(dev)
            return ((xt.index_select(0, idx), yt.index_select(0, idx)) for idx in perm.split(batch_size))

    val_batches = _val_source(x_val, y_val, task, dtype, dev, batch_size, num_workers)

    model.to(dev)
    opt, impl = make_optimizer(optimizer, model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    params = _run_params(
        model, task, optimizer, impl, lr, momentum, weight_decay, batch_size, epochs, seed, n, x_val, val_batches, dev
    )
    history = _empty_history(task, val_batches is not None)
    records: dict[int, Any] = {}
    record_at = _callback_epochs(epochs, callback_every)
    start = time.perf_counter()
    checked = False

    with _seeded_scope(seed):
        if callback is not None:
            model.eval()
            records[0] = callback(0, model)
        bar = tqdm(range(1, epochs + 1), desc="train", disable=not progress, leave=False)
        for epoch in bar:
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
                row["val_loss"], acc = _evaluate(model, val_batches(), task)
                if task != "regression":
                    row["val_acc"] = acc
            _append(history, epoch, row)
            _warn_nonfinite(row["train_loss"], epoch)
            if callback is not None and epoch in record_at:
                records[epoch] = callback(epoch, model)
            bar.set_postfix(loss=f"{row['train_loss']:.4g}", refresh=False)
            if log_every and (epoch % log_every == 0 or epoch == epochs):
                _log("", epoch, epochs, row)
        bar.close()
    model.eval()
    return TrainResult(model, history, records, params, time.perf_counter() - start)


def _val_count(x_val: Any) -> int:
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


def _run_params(
    model: nn.Module,
    task: str,
    optimizer: str,
    impl: str,
    lr: float,
    momentum: float,
    weight_decay: float,
    batch_size: int,
    epochs: int,
    seed: int,
    n: int,
    x_val: Any,
    val_batches: Any,
    dev: torch.device,
    **extra: Any,
) -> dict[str, Any]:
    """What a :class:`TrainResult` records of its run (``extra`` goes after the shuffle rule)."""
    return {
        "task": task,
        "loss": _LOSS_NAMES[task],
        "optimizer": optimizer,
        "optimizer_impl": impl,
        "lr": lr,
        "momentum": momentum,
        "weight_decay": weight_decay,
        "batch_size": batch_size,
        "epochs": epochs,
        "seed": seed,
        "shuffle": _SHUFFLE_RULE,
        **extra,
        "n_train": n,
        "n_val": None if val_batches is None else _val_count(x_val),
        "device": str(dev),
        "model": type(model).__name__,
        "num_parameters": sum(p.numel() for p in model.parameters()),
        "torch": torch.__version__,
    }


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
            stacklevel=3,
        )


# ----------------------------------------------------------------------------------------------------------
# train_ensemble
# ----------------------------------------------------------------------------------------------------------

# Parameter-free elementwise modules: applying them to a seed-stacked (S, b, w) tensor is the per-seed maths.
_ELEMENTWISE: tuple[type[nn.Module], ...] = (
    nn.ReLU,
    nn.ReLU6,
    nn.LeakyReLU,
    nn.Tanh,
    nn.Sigmoid,
    nn.ELU,
    nn.GELU,
    nn.SiLU,
    nn.Softplus,
    nn.Hardtanh,
    nn.Identity,
)
# Linear layers with fewer outputs than this run as one F.linear per seed in the batched-matmul path: they cost
# little, and single matrix-vector products round differently from batched ones (kernel choice by shape).
_THIN_LINEAR = 16
_LOOP_HINT = "train the seeds one by one with train(init_model(make_model, seed), ..., seed=seed) in a loop"


class _StackedLinear(torch.autograd.Function):
    """Seed-stacked linear layer ``h_s W_s^T (+ b_s)`` with the same matrix products as ``nn.Linear`` per seed.

    Shape:
        h: ``(S, b, in)``, weight: ``(S, out, in)``, bias: ``(S, out)`` or None; returns ``(S, b, out)``.
        Backward: ``dW_s = g_s^T h_s`` (contiguous, as autograd computes it for ``nn.Linear``),
        ``dh_s = g_s W_s``, ``db_s = \\sum_i g_{s,i}``.
    """

    @staticmethod
    def forward(ctx: Any, h: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        if bias is None:
            return torch.bmm(h, weight.transpose(1, 2))
        return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        h, weight = ctx.saved_tensors
        gh = torch.bmm(g, weight) if ctx.needs_input_grad[0] else None
        gw = torch.bmm(g.transpose(1, 2), h) if ctx.needs_input_grad[1] else None
        gb = g.sum(1) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gh, gw, gb


def _mlp_plan(model: nn.Module) -> list[tuple[str, Any]] | None:
    """Steps of the batched-matmul path for a plain MLP (``nn.Sequential`` of Flatten, Linear, PReLU and
    elementwise activations), or None when ``model`` is anything else (then the vmap path is used)."""
    if not isinstance(model, nn.Sequential):
        return None
    plan: list[tuple[str, Any]] = []
    for name, m in model.named_children():
        if isinstance(m, nn.Flatten) and m.start_dim == 1 and m.end_dim == -1:
            plan.append(("flatten", None))
        elif isinstance(m, nn.Linear):
            kind = "linear" if m.out_features >= _THIN_LINEAR else "linear_per_seed"
            plan.append((kind, (f"{name}.weight", f"{name}.bias" if m.bias is not None else None)))
        elif isinstance(m, nn.PReLU):
            plan.append(("prelu", f"{name}.weight"))
        elif isinstance(m, _ELEMENTWISE) or (isinstance(m, nn.modules.dropout._DropoutNd) and m.p == 0):
            plan.append(("elementwise", m))
        else:
            return None
    return plan


def _mlp_forward(
    plan: list[tuple[str, Any]],
    params: dict[str, torch.Tensor],
    x: torch.Tensor,
    saved: list[tuple[str, Any, torch.Tensor, torch.Tensor]] | None = None,
) -> torch.Tensor:
    """Forward of all seeds at once: ``x`` ``(S, b, ...)`` -> output ``(S, b, out)``.

    ``saved``, when given, receives ``(kind, arg, input, output)`` of every step (for :func:`_explicit_step`).
    """
    S, b = x.shape[0], x.shape[1]
    h = x
    for kind, arg in plan:
        h_in = h
        if kind == "flatten":
            h = h.reshape(S, b, -1)
        elif kind == "linear":
            w, bias = arg
            lead = h.shape[:-1]
            h = _StackedLinear.apply(h.reshape(S, -1, h.shape[-1]), params[w], None if bias is None else params[bias])
            h = h.reshape(*lead, h.shape[-1])
        elif kind == "linear_per_seed":
            w, bias = arg
            biases = params[bias].unbind(0) if bias is not None else [None] * S
            h = torch.stack(
                [F.linear(hs, ws, bs) for hs, ws, bs in zip(h.unbind(0), params[w].unbind(0), biases, strict=True)]
            )
        elif kind == "prelu":
            h = torch.stack([F.prelu(hs, a) for hs, a in zip(h.unbind(0), params[arg].unbind(0), strict=True)])
        else:
            h = arg(h)
        if saved is not None:
            saved.append((kind, arg, h_in, h))
    return h


# Backward of the elementwise modules the explicit step handles, as the aten ops autograd itself calls for them
# (so the gradients are the per-seed ones bit for bit): f(grad, input, output) -> grad of the input.
def _elementwise_backward(m: nn.Module) -> Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor] | None:
    aten = torch.ops.aten
    if type(m) is nn.ReLU:
        return lambda g, i, o: aten.threshold_backward(g, o, 0)
    if type(m) is nn.Tanh:
        return lambda g, i, o: aten.tanh_backward(g, o)
    if type(m) is nn.Sigmoid:
        return lambda g, i, o: aten.sigmoid_backward(g, o)
    if type(m) is nn.LeakyReLU and not m.inplace:
        slope = m.negative_slope
        return lambda g, i, o: aten.leaky_relu_backward(g, i, slope, False)
    if type(m) is nn.Identity or (isinstance(m, nn.modules.dropout._DropoutNd) and m.p == 0):
        return lambda g, i, o: g
    return None


def _explicit_plan(plan: list[tuple[str, Any]] | None, sample_ndim: int = 1) -> bool:
    """Whether :func:`_explicit_step` handles every step of ``plan`` (else autograd runs the bmm path).

    ``sample_ndim``: dimensions of one input example; a Linear layer must see flat ``(S, b, features)``
    activations (a 1-D input, or a Flatten before it), as the written-out products are 3-D.
    """
    if plan is None:
        return False
    flat = sample_ndim == 1
    for kind, arg in plan:
        if kind == "flatten":
            flat = True
        elif kind.startswith("linear") and not flat:
            return False
        elif kind == "prelu" or (
            kind == "elementwise" and (getattr(arg, "inplace", False) or _elementwise_backward(arg) is None)
        ):
            return False
    return True


def _explicit_step(
    plan: list[tuple[str, Any]],
    params: dict[str, torch.Tensor],
    xb: torch.Tensor,
    yb: torch.Tensor,
    task: str,
    check: bool = False,
    label_max: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One forward and backward of all seeds without building an autograd graph; sets ``params[k].grad``.

    The forward is :func:`_mlp_forward`'s. The layers' gradients are written out with the same products autograd
    takes for ``nn.Linear`` (per seed ``dW = g^T h``, ``dh = g W``, ``db = \\sum_i g_i``; stacked as
    ``torch.bmm``), and each activation's backward is the aten op autograd calls for it; only the loss (per seed,
    :func:`_loss`) goes through autograd, on a graph of its own. Cutting the Python autograd machinery out of the
    hidden layers is what makes the step cheap for small networks. ``check`` runs the output shape and label
    checks of :func:`train` (``label_max`` as there) before the loss is computed: the first step's.

    Shape: ``xb`` ``(S, b, ...)``, ``yb`` ``(S, b, ...)``; returns outputs ``(S, b, out)`` and losses ``(S,)``.
    """
    saved: list[tuple[str, Any, torch.Tensor, torch.Tensor]] = []
    with torch.no_grad():
        h = _mlp_forward(plan, params, xb, saved)
    if check:
        _check_output(task, h[0], yb[0], label_max)
    out = h.detach().requires_grad_()
    losses = torch.stack([_loss(task, o, t) for o, t in zip(out.unbind(0), yb.unbind(0), strict=True)])
    (g,) = torch.autograd.grad(losses.sum(), out)
    # the input needs no gradient: stop at the first layer with parameters
    first_param = next((i for i, (kind, _, _, _) in enumerate(saved) if kind.startswith("linear")), len(saved))
    with torch.no_grad():
        for index in range(len(saved) - 1, first_param - 1, -1):
            kind, arg, h_in, h_out = saved[index]
            first = index == first_param
            if kind == "flatten":
                g = g.reshape(h_in.shape)
            elif kind == "linear":
                w, bias = arg
                # into last step's gradient buffer: a fresh (S, out, in) result costs more to allocate and fault
                # in than the product itself for small nets
                grad = params[w].grad
                if grad is None or grad.shape != params[w].shape:
                    params[w].grad = torch.bmm(g.transpose(1, 2), h_in)
                else:
                    torch.bmm(g.transpose(1, 2), h_in, out=grad)
                if bias is not None:
                    params[bias].grad = g.sum(1)
                g = None if first else torch.bmm(g, params[w])
            elif kind == "linear_per_seed":
                w, bias = arg
                gs, hs, ws = g.unbind(0), h_in.unbind(0), params[w].unbind(0)
                params[w].grad = torch.stack([gi.t().mm(hi) for gi, hi in zip(gs, hs, strict=True)])
                if bias is not None:
                    params[bias].grad = torch.stack([gi.sum(0) for gi in gs])
                g = None if first else torch.stack([gi.mm(wi) for gi, wi in zip(gs, ws, strict=True)])
            else:
                g = _elementwise_backward(arg)(g, h_in, h_out)  # type: ignore[misc]
    return out.detach(), losses.detach()


def _check_ensemble_module(model: nn.Module) -> None:
    """Reject modules whose training step cannot be batched over seeds or would not match sequential runs."""
    for name, module in model.named_modules():
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats:
            raise ValueError(
                f"train_ensemble cannot vmap {type(module).__name__} ('{name}'): its running statistics are "
                f"updated in place during training; {_LOOP_HINT}"
            )
        if isinstance(module, nn.modules.dropout._DropoutNd) and module.p > 0:
            raise ValueError(
                f"train_ensemble does not support dropout ('{name}', p={module.p}): its random masks cannot "
                f"match sequential runs per seed; {_LOOP_HINT}"
            )


def _n_correct_stacked(task: str, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Correct predictions per seed, ``(S,)``; ``out`` ``(S, b, ...)``, ``y`` ``(S, b)``."""
    if task == "binary":
        return ((out.reshape(y.shape) > 0) == (y > 0.5)).sum(1)
    return (out.argmax(dim=-1) == y).sum(1)


def train_ensemble(
    make_model: Callable[[], nn.Module],
    seeds: Sequence[int],
    x: Any,
    y: Any = None,
    *,
    task: str = "binary",
    optimizer: str = "adam",
    lr: float = 1e-3,
    momentum: float = 0.0,
    batch_size: int = 64,
    epochs: int = 100,
    device: Any = None,
    weight_decay: float = 0.0,
    x_val: Any = None,
    y_val: Any = None,
    callback: Callback | None = None,
    callback_every: int = 1,
    progress: bool = True,
    log_every: int = 0,
) -> list[TrainResult]:
    """Train one model per seed, all seeds together; result ``s`` equals ``train(make_model, ..., seed=seeds[s])``.

    Seed ``s`` initialises its model with :func:`init_model` ``(make_model, s)`` and shuffles with its own
    generator (the rules of the module docstring). The seeds' parameters are stacked along a new leading axis
    (``torch.func.stack_module_state``); each step evaluates

    .. math::  L(\\Theta) = \\textstyle\\sum_s \\ell_s(\\theta_s; B^{(s)}_t),
               \\qquad \\nabla_{\\theta_s} L = \\nabla_{\\theta_s} \\ell_s,

    with one forward and one backward for all seeds, then takes one elementwise optimizer step on the stacked
    tensors, which is exactly a per-seed step. Plain MLPs (``nn.Sequential`` of Flatten, Linear, PReLU and
    elementwise activations, e.g. :func:`repalign.models.mlp`) use batched matrix products (``torch.bmm``) laid
    out like ``nn.Linear``'s, so on CPU the per-seed results match sequential training to float rounding. When
    every activation is ReLU, Tanh, Sigmoid, LeakyReLU or Identity the backward of the hidden layers is written
    out (the same products, and the aten backward op autograd calls for each activation; only the loss goes
    through autograd), which removes autograd's per-step overhead (``params["ensemble_path"] == "bmm"``); with
    PReLU or other activations the stacked layers run under autograd (``"bmm-autograd"``). Any other module
    goes through ``torch.func.vmap(functional_call)`` (``"vmap"``), equal to float rounding. (Training is
    chaotic: rounding-level differences can grow over many epochs, just as with another BLAS or thread count.)

    Shape:
        x: ``(n, ...)`` array/tensor (in memory; shared by all seeds), y as in :func:`train`.
        The stacked parameters have shape ``(len(seeds), *param.shape)``.

    Args:
        callback: called as ``callback(epoch, model_s)`` for every seed (in order) at the same epochs as in
            :func:`train`; each seed's records go to its own result.
        Other arguments as in :func:`train`.

    Returns:
        One :class:`TrainResult` per seed, in the order of ``seeds``; ``params["ensemble_path"]`` says which
        path ran (``"bmm"``, ``"bmm-autograd"`` or ``"vmap"``).

    Raises:
        ValueError: as :func:`train`; also for modules that cannot be trained per seed in a batch (BatchNorm with
            running statistics, dropout, anything vmap rejects): train those with :func:`train` in a loop.
    """
    task, optimizer = _check_options(task, optimizer, lr, batch_size, epochs, callback_every, log_every)
    if isinstance(seeds, (int, np.integer, str)) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    seeds = [_check_seed(s) for s in seeds]
    x, y = _unpack(x, y)
    if isinstance(x, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        raise ValueError(
            "train_ensemble needs in-memory arrays/tensors x, y (shared by all seeds); for a Dataset use "
            "train(init_model(make_model, seed), dataset, seed=seed) in a loop"
        )
    dev = get_device(device)
    models = [init_model(make_model, s) for s in seeds]
    _check_ensemble_module(models[0])
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in models]
    if any(s != shapes[0] for s in shapes[1:]):
        raise ValueError("make_model() returned models with different parameter shapes for different seeds")
    dtype = _model_dtype(models[0])
    xt, yt = _in_memory(x, y, task, dtype, dev)
    n = xt.shape[0]
    val_batches = _val_source(x_val, y_val, task, dtype, dev, batch_size, 0)

    for m in models:
        m.to(dev)
    stacked, buffers = torch.func.stack_module_state(models)
    base = copy.deepcopy(models[0]).to("meta")
    opt, impl = make_optimizer(optimizer, stacked.values(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    S = len(seeds)
    plan = _mlp_plan(models[0])
    explicit = _explicit_plan(plan, xt.dim() - 1)
    label_max = int(yt.max()) if task == "multiclass" else None

    if plan is not None:
        path = "bmm" if explicit else "bmm-autograd"

        def forward(xb: torch.Tensor) -> torch.Tensor:
            return _mlp_forward(plan, stacked, xb)

    else:
        path = "vmap"
        vmapped = torch.func.vmap(lambda p, bufs, xx: torch.func.functional_call(base, (p, bufs), (xx,)))

        def forward(xb: torch.Tensor) -> torch.Tensor:
            return vmapped(stacked, buffers, xb)

    def sync(s: int) -> nn.Module:
        """Copy seed ``s``'s current parameters into its own module and return it (in eval mode)."""
        with torch.no_grad():
            for k, v in models[s].named_parameters():
                v.copy_(stacked[k][s])
        return models[s].eval()

    generators = [_shuffle_generator(s) for s in seeds]
    histories = [_empty_history(task, val_batches is not None) for _ in seeds]
    records: list[dict[int, Any]] = [{} for _ in seeds]
    record_at = _callback_epochs(epochs, callback_every)
    start = time.perf_counter()
    checked = False

    if callback is not None:
        for s in range(S):
            records[s][0] = callback(0, sync(s))
    bar = tqdm(range(1, epochs + 1), desc=f"train x{S}", disable=not progress, leave=False)
    for epoch in bar:
        base.train()
        perms = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(dev)
        loss_sum = torch.zeros(S, device=dev)
        correct = torch.zeros(S, device=dev, dtype=torch.long)
        count = 0
        for idx in perms.split(batch_size, dim=1):
            flat = idx.reshape(-1)
            xb = xt.index_select(0, flat).view(S, -1, *xt.shape[1:])
            yb = yt.index_select(0, flat).view(S, -1, *yt.shape[1:])
            if explicit:
                outs, losses = _explicit_step(plan, stacked, xb, yb, task, not checked, label_max)  # type: ignore[arg-type]
            else:
                outs = forward(xb) if checked else _first_forward(forward, xb, yb, task, label_max)
                # one loss per seed, computed exactly as in train() (same reduction, same backward)
                losses = torch.stack([_loss(task, o, t) for o, t in zip(outs.unbind(0), yb.unbind(0), strict=True)])
                opt.zero_grad(set_to_none=True)
                losses.sum().backward()
            checked = True
            opt.step()
            b = idx.shape[1]
            with torch.no_grad():
                loss_sum += losses.detach() * b
                if task != "regression":
                    correct += _n_correct_stacked(task, outs.detach(), yb)
            count += b
        rows: list[dict[str, float]] = [{"train_loss": v / count} for v in loss_sum.tolist()]
        if task != "regression":
            for row, c in zip(rows, correct.tolist(), strict=True):
                row["train_acc"] = c / count
        base.eval()
        if val_batches is not None:
            _ensemble_validation(rows, forward, val_batches, task)
        for s in range(S):
            _append(histories[s], epoch, rows[s])
            _warn_nonfinite(rows[s]["train_loss"], epoch, f"seed {seeds[s]}: ")
        if callback is not None and epoch in record_at:
            for s in range(S):
                records[s][epoch] = callback(epoch, sync(s))
        mean_loss = sum(r["train_loss"] for r in rows) / S
        bar.set_postfix(loss=f"{mean_loss:.4g}", refresh=False)
        if log_every and (epoch % log_every == 0 or epoch == epochs):
            summary = {k: sum(r[k] for r in rows) / S for k in rows[0]}
            _log(f"[{S} seeds, mean] ", epoch, epochs, summary)
    bar.close()
    seconds = time.perf_counter() - start

    results = []
    for s, seed in enumerate(seeds):
        model = sync(s)
        params = _run_params(
            model,
            task,
            optimizer,
            impl,
            lr,
            momentum,
            weight_decay,
            batch_size,
            epochs,
            seed,
            n,
            x_val,
            val_batches,
            dev,
            init=_INIT_RULE,
            trained_with=f"train_ensemble ({S} seeds: {seeds})",
            ensemble_path=path,
        )
        results.append(TrainResult(model, histories[s], records[s], params, seconds))
    return results


def _first_forward(
    forward: Callable[[torch.Tensor], torch.Tensor],
    xb: torch.Tensor,
    yb: torch.Tensor,
    task: str,
    label_max: int | None,
) -> torch.Tensor:
    """The first batched forward, turning vmap failures into ValueError and checking the output shape."""
    try:
        outs = forward(xb)
    except (RuntimeError, NotImplementedError) as e:
        raise ValueError(
            f"train_ensemble cannot batch this model over seeds ({type(e).__name__}: {e}); {_LOOP_HINT}"
        ) from e
    _check_output(task, outs[0], yb[0], label_max)
    return outs


def _ensemble_validation(
    rows: list[dict[str, float]],
    forward: Callable[[torch.Tensor], torch.Tensor],
    val_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]],
    task: str,
) -> None:
    """Add ``val_loss``/``val_acc`` per seed to ``rows`` (same per-chunk maths as :func:`train`)."""
    S = len(rows)
    loss_sum = [0.0] * S
    correct = [0.0] * S
    count = 0
    with torch.no_grad():
        for xb, yb in val_batches():
            outs = forward(xb.unsqueeze(0).expand(S, *xb.shape))
            b = yb.shape[0]
            for s in range(S):
                loss_sum[s] += float(_loss(task, outs[s], yb)) * b
                if task != "regression":
                    correct[s] += float(_n_correct(task, outs[s], yb))
            count += b
    for s in range(S):
        rows[s]["val_loss"] = loss_sum[s] / count
        if task != "regression":
            rows[s]["val_acc"] = correct[s] / count
