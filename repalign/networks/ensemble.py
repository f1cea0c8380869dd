"""Several seeds of one architecture trained together; result ``s`` equals ``train(make_model, ..., seed=seeds[s])``.

The seeds' parameters are stacked along a new leading axis (``torch.func.stack_module_state``); one forward, one
autograd backward and one elementwise optimizer step serve all seeds, which removes the per-seed, per-step Python
and dispatch overhead of sequential runs (the FLOPs are the same). Plain MLPs (``nn.Sequential`` of Flatten,
Linear, PReLU and elementwise activations, e.g. :func:`repalign.networks.models.mlp`) run as batched matrix products laid
out like ``nn.Linear``'s, forward and backward (``params["ensemble_path"] == "bmm"``; per seed equal to sequential
training bit for bit on CPU in our tests); any other module goes through ``torch.func.vmap(functional_call)`` (``"vmap"``, equal to
float rounding). ``benchmarks/bench_training.py`` measures both against sequential training.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from repalign.networks.runtime import get_device, model_dtype
from repalign.networks.training import (
    Callback,
    TrainOptions,
    TrainResult,
    _check_output,
    _check_seed,
    _in_memory,
    _loss,
    _run_epochs,
    _shuffle_generator,
    _unpack,
    _val_count,
    _val_source,
    _validation,
    init_model,
    make_optimizer,
)

__all__ = [
    "train_ensemble",
]

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
# Linear layers with fewer outputs than this run as one F.linear per seed: they cost little, and matrix-vector
# products round differently when batched (kernel choice by shape), which would break equality with train().
_THIN_LINEAR = 16
_INIT_RULE = "torch.manual_seed(seed); make_model()"
_LOOP_HINT = "train the seeds one by one with train(init_model(make_model, seed), ..., seed=seed) in a loop"


class _StackedLinear(torch.autograd.Function):
    """Seed-stacked ``h_s W_s^T (+ b_s)`` whose backward takes ``nn.Linear``'s products per seed.

    ``dW_s = g_s^T h_s`` (plain autograd of ``bmm(h, W^T)`` computes ``(h_s^T g_s)^T``, which rounds differently
    for small layers), ``dh_s = g_s W_s``, ``db_s = \\sum_i g_{s,i}``. Shape: h ``(S, b, in)``, weight
    ``(S, out, in)``, bias ``(S, out)`` or None; returns ``(S, b, out)``.
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
    """Steps of the batched-matmul path for a plain MLP, or None when ``model`` is anything else (vmap path)."""
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


def _mlp_forward(plan: list[tuple[str, Any]], params: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Forward of all seeds at once: ``x`` ``(S, b, ...)`` -> output ``(S, b, out)``, differentiable by autograd."""
    S, b = x.shape[0], x.shape[1]
    h = x
    for kind, arg in plan:
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
    return h


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
    device: Any = None,
    x_val: Any = None,
    y_val: Any = None,
    callback: Callback | None = None,
    options: TrainOptions | None = None,
    **kwargs: Any,
) -> list[TrainResult]:
    """Train one model per seed, all seeds together; result ``s`` equals ``train(make_model, ..., seed=seeds[s])``.

    Seed ``s`` initialises its model with :func:`~repalign.networks.training.init_model` ``(make_model, s)`` and shuffles
    with its own generator (the rules of :mod:`repalign.networks.training`). Each step evaluates

    .. math::  L(\\Theta) = \\textstyle\\sum_s \\ell_s(\\theta_s; B^{(s)}_t),
               \\qquad \\nabla_{\\theta_s} L = \\nabla_{\\theta_s} \\ell_s,

    with one forward and one backward for all seeds, then takes one elementwise optimizer step on the stacked
    tensors, which is exactly a per-seed step. (Training is chaotic: rounding-level differences, e.g. from the
    vmap path, can grow over many epochs, just as with another BLAS or thread count.)

    Shape:
        x: ``(n, ...)`` array/tensor (in memory; shared by all seeds), y as in :func:`~repalign.networks.training.train`.
        The stacked parameters have shape ``(len(seeds), *param.shape)``.

    Args:
        device: where to train, by the package's device rule (:func:`repalign.networks.runtime.get_device`), as
            in ``train``.
        callback: called as ``callback(epoch, model_s)`` for every seed (in order) at the same epochs as in
            ``train``; each seed's records go to its own result.
        options, **kwargs: the :class:`~repalign.networks.training.TrainOptions`, as in ``train``.

    Returns:
        One :class:`~repalign.networks.training.TrainResult` per seed, in the order of ``seeds``;
        ``params["ensemble_path"]`` says which path ran (``"bmm"`` or ``"vmap"``).

    Raises:
        ValueError: as ``train``; also for modules that cannot be trained per seed in a batch (BatchNorm with
            running statistics, dropout, anything vmap rejects): train those with ``train`` in a loop.
    """
    opts = TrainOptions.of(options, kwargs)
    seeds = _check_seeds(seeds)
    x, y = _unpack(x, y)
    if isinstance(x, (torch.utils.data.Dataset, torch.utils.data.DataLoader)):
        raise ValueError(
            "train_ensemble needs in-memory arrays/tensors x, y (shared by all seeds); for a Dataset use "
            "train(init_model(make_model, seed), dataset, seed=seed) in a loop"
        )
    dev = get_device(device)
    models = _seed_models(make_model, seeds)
    dtype = model_dtype(models[0])
    xt, yt = _in_memory(x, y, opts.task, dtype, dev)
    val_batches = _val_source(x_val, y_val, opts.task, dtype, dev, opts.batch_size, 0)

    for m in models:
        m.to(dev)
    stacked, buffers = torch.func.stack_module_state(models)
    opt, impl = make_optimizer(
        opts.optimizer, stacked.values(), lr=opts.lr, momentum=opts.momentum, weight_decay=opts.weight_decay
    )
    forward, path, base = _stacked_forward(models[0], stacked, buffers)

    def sync(s: int) -> nn.Module:
        """Copy seed ``s``'s current parameters into its own module and return it (in eval mode)."""
        with torch.no_grad():
            for k, v in models[s].named_parameters():
                v.copy_(stacked[k][s])
        return models[s].eval()

    start = time.perf_counter()
    run_epoch = _ensemble_epoch_runner(forward, base, opt, xt, yt, seeds, opts, val_batches)
    histories, records = _run_epochs(opts, run_epoch, sync, callback, val_batches, [f"seed {s}: " for s in seeds])
    seconds = time.perf_counter() - start
    n_val = _val_count(x_val, val_batches)
    results = []
    for s, seed in enumerate(seeds):
        model = sync(s)
        params = opts.record(
            seed=seed,
            impl=impl,
            n_train=xt.shape[0],
            n_val=n_val,
            device=dev,
            model=model,
            init=_INIT_RULE,
            trained_with=f"train_ensemble ({len(seeds)} seeds: {seeds})",
            ensemble_path=path,
        )
        results.append(TrainResult(model, histories[s], records[s], params, seconds))
    return results


def _check_seeds(seeds: Any) -> list[int]:
    """``seeds`` as a non-empty list of non-negative ints (ValueError otherwise)."""
    if isinstance(seeds, (int, np.integer, str)) or len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r}")
    return [_check_seed(s) for s in seeds]


def _seed_models(make_model: Callable[[], nn.Module], seeds: list[int]) -> list[nn.Module]:
    """One model per seed (:func:`~repalign.networks.training.init_model`), checked to be trainable together."""
    models = [init_model(make_model, s) for s in seeds]
    _check_ensemble_module(models[0])
    shapes = [{k: tuple(v.shape) for k, v in m.state_dict().items()} for m in models]
    if any(s != shapes[0] for s in shapes[1:]):
        raise ValueError("make_model() returned models with different parameter shapes for different seeds")
    return models


def _stacked_forward(
    model: nn.Module, stacked: dict[str, torch.Tensor], buffers: dict[str, torch.Tensor]
) -> tuple[Callable[[torch.Tensor], torch.Tensor], str, nn.Module]:
    """The forward of all seeds at once, ``(S, b, ...) -> (S, b, out)``: ``(forward, path, base)``.

    ``path`` is ``"bmm"`` for a plain MLP (:func:`_mlp_plan`), else ``"vmap"`` (``functional_call`` of ``base``, a
    parameter-free copy of ``model`` on the meta device, vmapped over the seeds); ``base``'s train/eval flag is the
    one the vmap path runs in.
    """
    base = copy.deepcopy(model).to("meta")
    plan = _mlp_plan(model)
    if plan is not None:

        def forward_bmm(xb: torch.Tensor) -> torch.Tensor:
            return _mlp_forward(plan, stacked, xb)

        return forward_bmm, "bmm", base
    vmapped = torch.func.vmap(lambda p, bufs, xx: torch.func.functional_call(base, (p, bufs), (xx,)))

    def forward_vmap(xb: torch.Tensor) -> torch.Tensor:
        return vmapped(stacked, buffers, xb)

    return forward_vmap, "vmap", base


def _ensemble_epoch_runner(
    forward: Callable[[torch.Tensor], torch.Tensor],
    base: nn.Module,
    opt: torch.optim.Optimizer,
    xt: torch.Tensor,
    yt: torch.Tensor,
    seeds: list[int],
    opts: TrainOptions,
    val_batches: Callable[[], Iterator[tuple[torch.Tensor, torch.Tensor]]] | None,
) -> Callable[[], list[dict[str, float]]]:
    """``run_epoch()`` of :func:`train_ensemble`: one pass of stacked optimizer steps, then one history row per seed.

    Seed ``s`` draws its permutation from its own generator (the shuffling rule of
    :mod:`repalign.networks.training`); step ``t`` of every seed runs in one forward and one backward, each seed's
    loss computed exactly as in ``train``. The rows are those of ``train`` (train loss and accuracy while
    training, validation after the epoch).
    """
    task = opts.task
    S, n, dev = len(seeds), xt.shape[0], xt.device
    label_max = int(yt.max()) if task == "multiclass" else None
    generators = [_shuffle_generator(s) for s in seeds]
    checked = False

    def run_epoch() -> list[dict[str, float]]:
        nonlocal checked
        base.train()
        perms = torch.stack([torch.randperm(n, generator=g) for g in generators]).to(dev)
        loss_sum = torch.zeros(S, device=dev)
        correct = torch.zeros(S, device=dev, dtype=torch.long)
        count = 0
        for idx in perms.split(opts.batch_size, dim=1):
            flat = idx.reshape(-1)
            xb = xt.index_select(0, flat).view(S, -1, *xt.shape[1:])
            yb = yt.index_select(0, flat).view(S, -1, *yt.shape[1:])
            outs = forward(xb) if checked else _first_forward(forward, xb, yb, task, label_max)
            checked = True
            # one loss per seed, computed exactly as in train() (same reduction, same backward)
            losses = torch.stack([_loss(task, o, t) for o, t in zip(outs.unbind(0), yb.unbind(0), strict=True)])
            opt.zero_grad(set_to_none=True)
            losses.sum().backward()
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
            stacked_val = _validation(lambda xv: forward(xv.unsqueeze(0).expand(S, *xv.shape)), val_batches(), task)
            for row, val in zip(rows, stacked_val, strict=True):
                row.update(val)
        return rows

    return run_epoch


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
