"""Benchmark: 8 seeds of the demo MLP trained together (``train_ensemble``) vs 8 sequential ``train`` runs.

Setting (issue 4): MLP 784-128-128-128-1 (ReLU, no hidden bias, ``repalign.networks.models.mlp``), 1,000 examples,
batch 64, 20 epochs, Adam 1e-3, BCE-with-logits, CPU. Data: the first 1,000 scikit-learn ``digits`` images
(8 x 8), upsampled to 28 x 28 = 784 pixels (bilinear, ``torch.nn.functional.interpolate``), scaled to [0, 1],
label = (digit >= 5).

Both paths use the same data tensors, the same optimizer implementation and no DataLoader; the timings are
interleaved (sequential, ensemble, sequential, ...) ``--repeats`` times and the best and median of each are
reported, plus the sequential runs on one thread (on a shared 2-vCPU machine the two-thread sequential time
swings between about 2.1 and 3.7 s with the host's load, as tiny ops wait on each other's threads), with the time of the bare matrix products of the ensemble's work (a lower bound for any batched
implementation, so ``sequential / floor`` bounds the achievable speed-up). The CPU may be shared, so the
numbers are noisy. Prints torch's thread count, both times, the speed-up, and the largest per-seed difference
between the two paths (final train loss, weights).

The ensemble's code paths are measured in the same run, one training step (8 seeds, batch 64, fused Adam) at a
time in interleaved chunks (less sensitive to the host's load than whole runs): ``train_ensemble``'s batched-matmul
step (stacked forward, autograd backward) against its generic ``vmap(functional_call)`` step, and against a
hand-written backward of the same products (the aten backward ops autograd calls, gradients written into reused
buffers), which ``train_ensemble`` used before this benchmark showed it gaining less than the 1.3x that would pay
for its code.

Run: ``python benchmarks/bench_training.py [--repeats 3] [--threads N]``  (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.datasets import load_digits

from repalign.networks.ensemble import _mlp_forward, _mlp_plan, train_ensemble
from repalign.networks.models import mlp
from repalign.networks.training import _loss, init_model, make_optimizer, train

SEEDS = list(range(8))
OPTIONS = dict(task="binary", optimizer="adam", lr=1e-3, batch_size=64, epochs=20, device="cpu", progress=False)


def demo_data(n: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """First ``n`` sklearn digits, upsampled 8x8 -> 28x28 and flattened to (n, 784); labels (digit >= 5)."""
    digits = load_digits()
    images = torch.as_tensor(digits.images[:n], dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).reshape(n, 784)
    y = (digits.target[:n] >= 5).astype(np.float32)
    return x.numpy(), y


def make_model() -> torch.nn.Module:
    """The demo MLP: 784-128-128-128-1, ReLU, no bias in hidden layers."""
    return mlp(784, 3, 128, activation="relu", bias=False, out_features=1)


def run_sequential(x: np.ndarray, y: np.ndarray) -> tuple[float, float, list]:
    """8 ``train`` runs one after the other: (wall s, process CPU s, results)."""
    start, cpu = time.perf_counter(), time.process_time()
    results = [train(make_model, x, y, seed=s, **OPTIONS) for s in SEEDS]
    return time.perf_counter() - start, time.process_time() - cpu, results


def run_ensemble(x: np.ndarray, y: np.ndarray) -> tuple[float, float, list]:
    """One ``train_ensemble`` of the 8 seeds: (wall s, process CPU s, results)."""
    start, cpu = time.perf_counter(), time.process_time()
    results = train_ensemble(make_model, SEEDS, x, y, **OPTIONS)
    return time.perf_counter() - start, time.process_time() - cpu, results


def stacked_params() -> tuple[dict[str, torch.Tensor], list]:
    """The 8 seeds' initial parameters stacked as ``train_ensemble`` stacks them, and the MLP's plan."""
    models = [init_model(make_model, s) for s in SEEDS]
    return torch.func.stack_module_state(models)[0], _mlp_plan(models[0])


def _backward(outs: torch.Tensor, params: dict[str, torch.Tensor], yb: torch.Tensor) -> None:
    losses = torch.stack([_loss("binary", o, t) for o, t in zip(outs.unbind(0), yb.unbind(0), strict=True)])
    for p in params.values():
        p.grad = None
    losses.sum().backward()


def bmm_step(params: dict[str, torch.Tensor], plan: list, xb: torch.Tensor, yb: torch.Tensor) -> None:
    """``train_ensemble``'s step for plain MLPs, without the optimizer: batched matmuls, autograd backward."""
    _backward(_mlp_forward(plan, params, xb), params, yb)


_BASE = make_model().to("meta")
_VMAPPED = torch.func.vmap(lambda p, xx: torch.func.functional_call(_BASE, p, (xx,)))


def vmap_step(params: dict[str, torch.Tensor], plan: list, xb: torch.Tensor, yb: torch.Tensor) -> None:
    """``train_ensemble``'s generic step (any module), without the optimizer: ``vmap(functional_call)``."""
    _backward(_VMAPPED(params, xb), params, yb)


def hand_written_step(params: dict[str, torch.Tensor], plan: list, xb: torch.Tensor, yb: torch.Tensor) -> None:
    """The same step with the hidden layers' backward written out (the removed explicit path, for this MLP).

    Forward without a graph, keeping each ReLU's input and output; only the loss goes through autograd; then per
    layer ``dW = g^T h`` (into last step's gradient buffer), ``dh = g W`` and ``threshold_backward`` for the ReLU;
    the thin output layer (one logit) per seed, as ``train_ensemble`` runs it.
    """
    names = [arg[0] for kind, arg in plan if kind.startswith("linear")]
    *hidden, last = names
    acts = []
    with torch.no_grad():
        h = xb.reshape(xb.shape[0], xb.shape[1], -1)
        for w in hidden:
            h_in, h = h, torch.relu(torch.bmm(h, params[w].transpose(1, 2)))
            acts.append((h_in, h))
        bias = last.replace("weight", "bias")
        out = torch.stack([F.linear(hs, ws, bs) for hs, ws, bs in zip(h, params[last], params[bias], strict=True)])
    out.requires_grad_()
    losses = torch.stack([_loss("binary", o, t) for o, t in zip(out.unbind(0), yb.unbind(0), strict=True)])
    (g,) = torch.autograd.grad(losses.sum(), out)
    with torch.no_grad():
        params[last].grad = torch.stack([gs.t().mm(hs) for gs, hs in zip(g, h, strict=True)])
        params[bias].grad = g.sum(1)
        g = torch.stack([gs.mm(ws) for gs, ws in zip(g, params[last], strict=True)])
        for k in range(len(hidden) - 1, -1, -1):
            (h_in, h_out), w = acts[k], params[hidden[k]]
            g = torch.ops.aten.threshold_backward(g, h_out, 0)
            if w.grad is None:
                w.grad = torch.bmm(g.transpose(1, 2), h_in)
            else:
                torch.bmm(g.transpose(1, 2), h_in, out=w.grad)
            if k:
                g = torch.bmm(g, w)


def time_steps(x: np.ndarray, y: np.ndarray, chunks: int = 8, chunk: int = 40) -> tuple[dict, float]:
    """Seconds per training step (with fused Adam) of each step kind, in interleaved chunks of ``chunk`` steps.

    Returns ``{kind: per-chunk seconds per step}`` and the largest difference between the hand-written and the
    batched-matmul step's gradients on one batch (a check that both compute the same thing).
    """
    xt, yt = torch.as_tensor(x), torch.as_tensor(y)
    g = torch.Generator().manual_seed(0)
    batches = [torch.randint(0, len(xt), (len(SEEDS) * 64,), generator=g) for _ in range(chunk)]
    batches = [(xt[i].view(len(SEEDS), 64, -1), yt[i].view(len(SEEDS), 64)) for i in batches]
    runs = {}
    for name, step in (("hand-written", hand_written_step), ("bmm", bmm_step), ("vmap", vmap_step)):
        params, plan = stacked_params()
        opt, _ = make_optimizer("adam", params.values(), lr=1e-3)
        step(params, plan, *batches[0])  # warm-up; its gradients for the check below
        runs[name] = (step, params, plan, opt, [p.grad.clone() for p in params.values()])
    pairs = zip(runs["hand-written"][4], runs["bmm"][4], strict=True)
    grad_diff = max((a - b).abs().max().item() for a, b in pairs)
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(chunks):
        for name, (step, params, plan, opt, _) in runs.items():
            start = time.perf_counter()
            for xb, yb in batches:
                step(params, plan, xb, yb)
                opt.step()
            times[name].append((time.perf_counter() - start) / chunk)
    return times, grad_diff


def matmul_floor(steps: int = 320, seeds: int = 8, batch: int = 64) -> float:
    """Seconds for just the matrix products of the ensemble's work (forward and backward, ``torch.bmm``).

    No path can train the 8 seeds faster than this on this CPU; sequential time / floor bounds the speed-up.
    """
    g = torch.Generator().manual_seed(0)
    x = torch.randn(seeds, batch, 784, generator=g)
    ws = [torch.randn(seeds, o, i, generator=g) for i, o in ((784, 128), (128, 128), (128, 128), (128, 1))]
    start = time.perf_counter()
    for _ in range(steps):
        hs = [x]
        for w in ws:  # forward: h W^T
            hs.append(torch.bmm(hs[-1], w.transpose(1, 2)))
        grad = torch.ones_like(hs[-1])
        for k in range(len(ws) - 1, -1, -1):  # backward: dW = g^T h, dh = g W (not for the input)
            torch.bmm(grad.transpose(1, 2), hs[k])
            if k:
                grad = torch.bmm(grad, ws[k])
    return time.perf_counter() - start


def optimizer_floor(steps: int = 320, seeds: int = 8) -> float:
    """Seconds for just the optimizer's work: ``steps`` fused Adam steps on the 8 seeds' stacked parameters.

    Adam is elementwise, so this is the same work in any implementation that keeps per-seed results (one fused
    kernel over all parameters is the cheapest form torch has); sequential runs do exactly this work too.
    """
    shapes = [(seeds, 128, 784), (seeds, 128, 128), (seeds, 128, 128), (seeds, 1, 128), (seeds, 1)]
    params = [torch.zeros(s, requires_grad=True) for s in shapes]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    opt = torch.optim.Adam(params, lr=1e-3, fused=True)
    opt.step()
    start = time.perf_counter()
    for _ in range(steps):
        opt.step()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="interleaved timing repeats (best is reported)")
    parser.add_argument("--budget", type=float, default=90.0, help="stop repeating after this many seconds")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    x, y = demo_data()
    print(
        f"torch {torch.__version__}, threads {torch.get_num_threads()}, cpus {os.cpu_count()}, "
        f"{platform.processor() or platform.machine()}"
    )
    print(
        f"data: sklearn digits upsampled to 784 px, x {x.shape}, positives {int(y.sum())}; "
        f"{len(SEEDS)} seeds, MLP 784-128-128-128-1, batch 64, 20 epochs, Adam 1e-3"
    )

    # warm-up (allocator, MKL, vmap batching rules), not timed
    train(make_model, x[:128], y[:128], seed=0, **{**OPTIONS, "epochs": 1})
    train_ensemble(make_model, SEEDS[:2], x[:128], y[:128], **{**OPTIONS, "epochs": 1})

    seq_times, ens_times, seq_cpu, ens_cpu, floors, opt_floors, seq1_times = [], [], [], [], [], [], []
    threads = torch.get_num_threads()
    start = time.perf_counter()
    for _ in range(args.repeats):
        t, c, seq = run_sequential(x, y)
        seq_times.append(t)
        seq_cpu.append(c)
        if threads > 1:  # the same runs on one thread: tiny ops can lose more to thread sync than they gain
            torch.set_num_threads(1)
            seq1_times.append(run_sequential(x, y)[0])
            torch.set_num_threads(threads)
        t, c, ens = run_ensemble(x, y)
        ens_times.append(t)
        ens_cpu.append(c)
        floors.append(matmul_floor())
        opt_floors.append(optimizer_floor())
        if time.perf_counter() - start > args.budget:
            break
    steps, grad_diff = time_steps(x, y)
    floor, opt_floor = min(floors), min(opt_floors)
    identical = all(
        torch.equal(p, q)
        for a, b in zip(seq, ens, strict=True)
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True)
    )
    loss_diff = max(abs(a.final_loss - b.final_loss) for a, b in zip(seq, ens, strict=True))
    weight_diff = max(
        (p - q).abs().max().item()
        for a, b in zip(seq, ens, strict=True)
        for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True)
    )
    best_seq, best_ens = min(seq_times), min(ens_times)
    med_seq, med_ens = statistics.median(seq_times), statistics.median(ens_times)

    def runs(times: list[float]) -> str:
        return " ".join(f"{t:.2f}" for t in times)

    print(f"sequential (8 x train):      best {best_seq:6.2f} s   median {med_seq:6.2f} s   runs {runs(seq_times)}")
    print(f"together   (train_ensemble): best {best_ens:6.2f} s   median {med_ens:6.2f} s   runs {runs(ens_times)}")
    print(f"process CPU time, best: sequential {min(seq_cpu):.2f} s, together {min(ens_cpu):.2f} s")
    print(f"speed-up: best {best_seq / best_ens:.2f}x   median {med_seq / med_ens:.2f}x   (target >= 3x)")
    if seq1_times:
        best_seq1 = min(seq1_times)
        print(
            f"sequential on 1 thread:      best {best_seq1:6.2f} s   runs {runs(seq1_times)}"
            f"   -> speed-up against the faster sequential setting: {min(best_seq, best_seq1) / best_ens:.2f}x"
        )
    best = {k: min(v) for k, v in steps.items()}
    med = {k: statistics.median(v) for k, v in steps.items()}
    print(
        "one step, 8 seeds, batch 64, with Adam (interleaved chunks): "
        + ", ".join(f"{k} best {1e3 * best[k]:.2f} ms (median {1e3 * med[k]:.2f})" for k in steps)
    )
    print(
        f"  hand-written backward vs batched autograd (bmm): {best['bmm'] / best['hand-written']:.2f}x best, "
        f"{med['bmm'] / med['hand-written']:.2f}x median (a path must gain >= 1.3x to be kept); "
        f"max |gradient difference| {grad_diff:.1e}"
    )
    print(
        f"  batched autograd (bmm) vs generic vmap: {best['vmap'] / best['bmm']:.2f}x best, "
        f"{med['vmap'] / med['bmm']:.2f}x median"
    )
    print(
        f"matmul-only floor of the same work (bmm, no autograd/optimizer): {floor:.2f} s -> no batching of "
        f"seeds can beat {best_seq / floor:.2f}x here"
    )
    print(
        f"plus the optimizer's own work (fused Adam on the stacked parameters, the same in every path): "
        f"{opt_floor:.2f} s -> floor {floor + opt_floor:.2f} s, bound {best_seq / (floor + opt_floor):.2f}x"
    )
    print("final train losses per seed: " + " ".join(f"{r.final_loss:.4f}" for r in ens))
    print(f"max |final loss difference| over seeds: {loss_diff:.2e}")
    print(f"max |weight difference| over seeds:     {weight_diff:.2e}   (bit-identical: {identical})")
    print("note: a shared CPU makes these timings noisy; compare best-of-repeats.")


if __name__ == "__main__":
    main()
