"""Cost of each transferability score (``repalign.measure.scores``), measured in one run on the same features.

Prints, for n × d fp32 features with C classes (default 10,000 × 1,280, 10 classes: a penultimate layer of an
EfficientNet-Lite on a CIFAR-sized target set) and a 1,000-way source classifier's probabilities (LEEP, NCE), the
seconds of each score (best of two) and its ratio to the unit of cost: one float64 Gram accumulation
:math:`\\tilde\\Phi^\\top\\tilde\\Phi` of the (n, d + 1) preprocessed features (one BLAS ``syrk``/``gemm``).

- ``score_card``: every alignment summary, LogME and the GCV-optimal ridge on the preprocessed features from one
  spectrum (one Gram accumulation + one eigendecomposition): the whole spectral card for about the price of the
  alignment alone (``card_from_spectrum``, everything after the spectrum, and ``ridge_gcv`` alone, a function of
  the spectrum's r values, are printed on their own lines).
- ``spectrum``: the alignment spectrum alone (``repalign.spectrum``); ``logme`` (the paper's formula, raw features:
  its own Gram), ``logme_published_code`` (the same, plus the published code's SVD of the raw Gram to count its
  terms when n > d), ``h_score``, ``regularized_h_score`` (one d × d eigendecomposition each), ``transrate`` (C + 1
  log determinants), ``sfda`` (two shrinkage Fisher discriminants), ``leep``, ``nce`` (n × 1,000 probabilities, no
  features).
- The leave-one-out ridge scores: ``ridge_basis`` (σ and U: a Gram, its eigendecomposition and the product
  :math:`U = \\tilde\\Phi V\\Lambda^{-1/2}`, the size of one more Gram product), then ``loo_ridge_error`` /
  ``loo_ridge_accuracy`` given them (the residuals and leverages at 37 penalties: :math:`n r (C + 1)` per penalty);
  ``ridge_scores`` all three together, on the measure's preprocessing and on standardised features.
- CUDA (when torch sees a GPU): ``score_card`` and ``spectrum`` on a CUDA tensor against one fp64 Gram product on
  the device; the other scores are NumPy (CPU) functions.

Usage: ``python benchmarks/bench_scores.py [--n 10000] [--d 1280] [--classes 10] [--only cpu|cuda]``.
"""

from __future__ import annotations

import argparse
import gc
import time
from collections.abc import Callable

import numpy as np

import repalign as ra
from repalign.measure import scores


def best_of(fn: Callable[[], object], repeat: int = 3, sync: Callable[[], None] | None = None) -> float:
    best = float("inf")
    for _ in range(repeat):
        gc.collect()
        if sync:
            sync()
        start = time.perf_counter()
        fn()
        if sync:
            sync()
        best = min(best, time.perf_counter() - start)
    return best


def make_data(n: int, d: int, classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Non-negative low-rank-plus-noise fp32 features (like pooled ReLU features) with class structure, labels, and
    softmax probabilities of a 1,000-way source classifier."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    basis = rng.standard_normal((64, d), dtype=np.float32)
    codes = rng.standard_normal((n, 64), dtype=np.float32) + 2.0 * np.eye(classes, 64, dtype=np.float32)[y]
    x = np.maximum(codes @ basis + 0.5 * rng.standard_normal((n, d), dtype=np.float32), 0.0)
    logits = rng.standard_normal((n, 1000)) + 3.0 * np.eye(classes, 1000)[y]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return x, y, probs / probs.sum(axis=1, keepdims=True)


def cpu_section(n: int, d: int, classes: int) -> None:
    x, y, probs = make_data(n, d, classes)
    phi = ra.preprocess(x)
    unit = best_of(lambda: phi.T @ phi)
    print(f"CPU, {n:,} x {d:,} fp32 features, {classes} classes; unit = one fp64 Gram product of the preprocessed")
    print(f"features ({n:,} x {d + 1:,}): {unit:.3f} s")
    spec, counts = ra.spectrum(x, ra.one_hot_targets(y)), np.bincount(y)
    sig, left = scores.ridge_basis(x)
    runs = {
        "score_card (alignment + LogME + GCV)": lambda: scores.score_card(x, y),
        "  of which card_from_spectrum": lambda: scores.card_from_spectrum(spec, counts),
        "  of which ridge_gcv": lambda: scores.ridge_gcv(spec.singular_values, spec.mass, spec.total, spec.n),
        "spectrum (alignment alone)": lambda: ra.spectrum(x, ra.one_hot_targets(y)),
        "ridge_basis (sigma and U)": lambda: scores.ridge_basis(x),
        "  then loo_ridge_error": lambda: scores.loo_ridge_error(sig, left, y),
        "  then loo_ridge_accuracy": lambda: scores.loo_ridge_accuracy(sig, left, y),
        "ridge_scores (measure's preprocessing)": lambda: scores.ridge_scores(x, y),
        "ridge_scores (standardised)": lambda: scores.ridge_scores(x, y, standardize=True),
        "logme (paper's formula, raw)": lambda: scores.logme(x, y),
        "logme_published_code (raw)": lambda: scores.logme_published_code(x, y),
        "h_score": lambda: scores.h_score(x, y),
        "regularized_h_score": lambda: scores.regularized_h_score(x, y),
        "transrate": lambda: scores.transrate(x, y),
        "sfda": lambda: scores.sfda(x, y),
        "leep (n x 1000 probabilities)": lambda: scores.leep(probs, y),
        "nce (n x 1000 probabilities)": lambda: scores.nce(probs, y),
    }
    print(f"  {'score':<40} {'seconds':>8} {'x Gram':>7}")
    for name, fn in runs.items():
        t = best_of(fn)
        print(f"  {name:<40} {t:8.3f} {t / unit:7.2f}")


def cuda_section(n: int, d: int, classes: int) -> None:
    import torch

    if not torch.cuda.is_available():
        print("CUDA: no device, skipped")
        return
    x, y, _ = make_data(n, d, classes)
    xc, yc = torch.from_numpy(x).cuda(), torch.from_numpy(y).cuda()
    sync = torch.cuda.synchronize
    phi = ra.preprocess(xc)
    scores.score_card(xc, yc)  # warm-up (CUDA context, kernels)
    unit = best_of(lambda: phi.T @ phi, repeat=3, sync=sync)
    print(f"CUDA ({torch.cuda.get_device_name()}), {n:,} x {d:,}, {classes} classes; unit = one fp64 Gram product on")
    print(f"the device: {unit:.4f} s")
    for name, fn in {
        "score_card (alignment + LogME + GCV)": lambda: scores.score_card(xc, yc),
        "spectrum (alignment alone)": lambda: ra.spectrum(xc, ra.one_hot_targets(yc)),
    }.items():
        t = best_of(fn, repeat=3, sync=sync)
        print(f"  {name:<40} {t:8.4f} s {t / unit:7.2f} x Gram")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--d", type=int, default=1_280)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--only", choices=["cpu", "cuda"], default=None)
    args = parser.parse_args()
    if args.only in (None, "cpu"):
        cpu_section(args.n, args.d, args.classes)
    if args.only in (None, "cuda"):
        cuda_section(args.n, args.d, args.classes)


if __name__ == "__main__":
    main()
