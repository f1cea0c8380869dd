"""Predicted paper-scale durations: per notebook from its parameters' sizes, per checkpoint from its recipe.

A notebook's work is counted in a few units, each with a throughput per device kind (:data:`RATES`):

- ``mlp_examples``: examples × epochs through a small MLP (3 × 128, batch 64; notebooks 00–07);
- ``forward_224``: images through an ImageNet network at 224 px, no gradient (the zoo of 08 and 11);
- ``finetune_<arch>_224``: training images through ResNet-18 / T2T-ViT at 224 px (09, 10);
- ``probe_work``: logistic-probe work, in units of one fit on 1,000 × 2,048 features with 10 classes (scaled by
  n · d · K);
- ``gd_flops``: the float64 flops of full-batch gradient descent on a linear model (4 · n · d · k a step).

.. math::  T = \\sum_u \\mathrm{count}_u(\\text{parameters}) \\,/\\, \\mathrm{rate}_u(\\text{device})

Where each rate comes from is its :attr:`Rate.basis`: ``measured`` (on the development machine's CPU, one thread,
as the notebook runner pins it; ``/tmp`` script recorded in docs/PAPER_SCALE.md) or ``estimate`` (GPU rates, from
published throughputs scaled by FLOPs; no GPU measurement was possible when this was written). A prediction is an
order of magnitude, not a promise: re-measure with the progress lines (images/s) of a first run.
Pre-training: ImageNet images of the subset × epochs / (images/s per GPU × GPUs) (:func:`pretraining`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from repalign.data.folders import OFFICE31_SIZES, imagenet_wnids

__all__ = [
    "Rate",
    "RATES",
    "Prediction",
    "predict",
    "pretraining",
    "format_seconds",
]


@dataclass(frozen=True)
class Rate:
    """A throughput: ``per_second`` units a second, and where the number comes from (``basis``)."""

    per_second: float
    basis: str


_CPU = "measured on the development machine's CPU, one thread (2026-12-06)"
#: throughput of each unit of work by device kind (``"cpu"``, ``"cuda"``)
RATES: dict[str, dict[str, Rate]] = {
    "mlp_examples": {
        "cpu": Rate(4500.0, f"{_CPU}: Adam steps of a 3072-128-128-128 MLP at batch 64"),
        "cuda": Rate(60000.0, "estimate: a batch-64 step of a small MLP is kernel-launch bound, ~1 ms on any GPU"),
    },
    "forward_224": {
        "cpu": Rate(1.6, f"{_CPU}: ResNet-50 forward at 224 px, 3.2 images/s, halved for the zoo's deeper networks"),
        "cuda": Rate(
            1000.0,
            "estimate: ResNet-50 inference ~2,600 images/s TF32 on an A100 (NVIDIA Deep Learning "
            "Examples), the zoo's ResNet-152/DenseNet-201 ~2-3x slower; about 1,000 images/s on average",
        ),
    },
    "finetune_resnet18_224": {
        "cpu": Rate(2.3, f"{_CPU}: ResNet-18 forward+backward+Adam at 224 px"),
        "cuda": Rate(
            3000.0,
            "estimate: ResNet-50 AMP training ~2,700 images/s on an A100 (NVIDIA Deep Learning "
            "Examples); ResNet-18 has 0.44x its FLOPs; batch 64 from memory, bfloat16 autocast",
        ),
    },
    "finetune_t2t_vit_224": {
        "cpu": Rate(
            0.9,
            "estimate: the ResNet-18 rate measured on the development machine's CPU, scaled by FLOPs "
            "(T2T-ViT-14 4.8 vs ResNet-18 1.8 GFLOPs)",
        ),
        "cuda": Rate(1000.0, "estimate: T2T-ViT-14 has ResNet-50's FLOPs (4.8 G), attention at lower utilisation"),
    },
    "probe_work": {
        "cpu": Rate(1 / 0.24, f"{_CPU}: scikit-learn lbfgs on 1,000 x 2,048 features, 10 classes, 0.24 s"),
        "cuda": Rate(20.0, "estimate: torch L-BFGS in float64 on the GPU, launch bound at this size (~0.05 s a fit)"),
    },
    "gd_flops": {
        "cpu": Rate(2.8e9, f"{_CPU}: float64 NumPy/torch matmuls of the linear learner's shapes"),
        "cuda": Rate(2e11, "estimate: float64 matmuls of a few thousand rows, kernel-launch bound per step"),
    },
}
#: pre-training images/s per GPU (estimates: JPEG decoding on ~16 cores per GPU bounds ResNet-18)
PRETRAIN_RATES: dict[str, Rate] = {
    "resnet18": Rate(2000.0, "estimate: ~2,000 images/s per H100-class GPU, bounded by JPEG decoding on 16 cores"),
    "t2t_vit": Rate(800.0, "estimate: ~800 images/s per H100-class GPU (ResNet-50's FLOPs, attention at 224 px)"),
}
#: ImageNet training images per class (1,281,167 / 1,000)
IMAGENET_PER_CLASS = 1281.167
#: classes of the data sets the paper scale names
CLASSES = {"cifar10": 10, "cifar100": 100, "mnist": 10, "fashion_mnist": 10}
#: features of a zoo network (a typical ImageNet network's penultimate layer)
ZOO_FEATURES = 2048


@dataclass(frozen=True)
class Prediction:
    """A predicted duration: ``seconds`` in all, ``units`` (seconds per unit of work), ``basis`` (unit: where its
    rate comes from), on ``device``."""

    notebook: str
    device: str
    seconds: float
    units: dict[str, float] = field(default_factory=dict)
    basis: dict[str, str] = field(default_factory=dict)


def format_seconds(seconds: float) -> str:
    """``"40 s"``, ``"12 min"``, ``"3.5 h"``, ``"2.1 days"``."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _n(values: Mapping[str, Any], name_key: str = "classes") -> int:
    """Examples of a binary/class-subset task: ``len(classes) * n_per_class``, or ``n``."""
    if "n_per_class" in values:
        return len(values.get(name_key) or [0, 1]) * int(values["n_per_class"])
    return int(values.get("n", 1000))


def _mlp(values: Mapping[str, Any], runs: float = 1.0, n: float | None = None, epochs: float | None = None) -> float:
    """MLP examples × epochs of ``runs`` runs per seed."""
    n = _n(values) if n is None else n
    epochs = float(values.get("epochs", 100)) if epochs is None else epochs
    return len(values.get("seeds", [0])) * runs * n * epochs


def _datasets_n(values: Mapping[str, Any]) -> float:
    """Examples over a notebook's ``datasets`` mapping (02, 05)."""
    sets = values.get("datasets") or {}
    return sum(_n(d) for d in sets.values() if isinstance(d, Mapping))


def _fit_size(k: int, n_per_class: int) -> float:
    """Probe work of one fit on ``k`` classes of ``n_per_class`` examples, in units of 1,000 × 2,048 × 10 classes."""
    return max(k * n_per_class * ZOO_FEATURES * k / (1000 * 2048 * 10), 1.0)


def _images(values: Mapping[str, Any], sets: list[str], nets: int) -> float:
    """Images through ``nets`` networks: per data set, the training draws of every seed and one test set."""
    seeds = len(values.get("seeds", [0]))
    per = [CLASSES.get(s, 10) * (seeds * int(values["n_train_per_class"]) + int(values["n_test_per_class"]))
           for s in sets]  # fmt: skip
    return float(nets * sum(per))


def _count_08(v: Mapping[str, Any]) -> dict[str, float]:
    sets = list(v.get("datasets") or ["cifar10"])
    nets = len(v.get("pretrained") or [])
    reps = nets + 4  # the classic representations
    fits = sum(len(v["seeds"]) * reps * 3 * _fit_size(CLASSES.get(s, 10), int(v["n_train_per_class"])) for s in sets)
    gd = len(v["seeds"]) * len(sets) * reps * int(v.get("gd_steps", 0)) * 4 * 1000 * ZOO_FEATURES * 10
    return {"forward_224": _images(v, sets, nets), "probe_work": fits, "gd_flops": gd}


def _count_09(v: Mapping[str, Any]) -> dict[str, float]:
    runs = len(v["seeds"]) * len(v.get("sources") or {}) * len(v.get("targets") or {})
    images = runs * 5 * int(v["n_finetune_per_class"]) * int(v["finetune_epochs"])
    extra = runs * 5 * (int(v["n_finetune_per_class"]) + int(v["n_test_per_class"]) * (1 + int(v["finetune_epochs"])))
    out = {f"finetune_{f}_224": float(images) for f in v.get("families") or []}
    return {**out, "forward_224": float(extra * len(out))}


def _count_10(v: Mapping[str, Any]) -> dict[str, float]:
    total = sum(OFFICE31_SIZES.values())
    memorise = total * int(v.get("max_random_epochs", 100))  # at most: until memorised
    targets = sum(3 * (1 - float(v.get("target_test_size", 0.3))) * n for n in OFFICE31_SIZES.values())
    return {"finetune_resnet18_224": len(v["seeds"]) * (memorise + targets * int(v.get("target_epochs", 30)))}


def _count_11(v: Mapping[str, Any]) -> dict[str, float]:
    targets = [t for t in (v.get("targets") or {}).values() if isinstance(t, Mapping)]
    sets = sorted({t["data"] for t in targets}) or ["cifar10"]
    nets = len(v.get("networks") or []) + len(v.get("random_networks") or [])
    per_fit = sum(_fit_size(len(t.get("classes") or []) or CLASSES.get(t["data"], 10), int(v["n_train_per_class"]))
                  for t in targets)  # fmt: skip
    return {
        "forward_224": _images(v, sets, nets),
        "probe_work": nets * len(v["seeds"]) * len(v.get("probe_C") or [1]) * per_fit,
    }


def _count_03(v: Mapping[str, Any]) -> dict[str, float]:
    sizes = [len(v.get(k) or [1]) for k in ("depths", "widths", "activations")]
    runs = sizes[0] * sizes[1] * sizes[2] if v.get("full_grid") else sum(sizes)
    return {"mlp_examples": _mlp(v, runs)}


def _count_07(v: Mapping[str, Any]) -> dict[str, float]:
    runs = len(v.get("sources") or [0])
    tuned = _mlp(v, runs * 4 * int(v.get("finetune_per_group", 1)), epochs=float(v.get("finetune_epochs", 50)))
    gd = len(v["seeds"]) * runs * 120 * int(v.get("gd_steps", 0)) * 4 * int(v["n"]) * int(v.get("width", 128))
    return {"mlp_examples": _mlp(v, runs) + tuned, "gd_flops": gd}


def _gd(v: Mapping[str, Any], reps: int) -> float:
    """Float64 flops of ``reps`` descents of ``gd_steps`` on the task's features (``width`` wide, one target)."""
    return len(v["seeds"]) * reps * int(v.get("gd_steps", 0)) * 4 * _n(v) * int(v.get("random_width", 512))


#: the work of each notebook, from its resolved parameters
COUNTS: dict[str, Callable[[Mapping[str, Any]], dict[str, float]]] = {
    "00_quickstart": lambda v: {"mlp_examples": _mlp(v)},
    "01_alignment_and_convergence": lambda v: {
        "mlp_examples": _mlp(v, 1, _n(v) + int(v.get("regression_n", 0))),
        "gd_flops": _gd(v, 4),
    },
    "02_emergence": lambda v: {"mlp_examples": _mlp(v, 1, _datasets_n(v), v["epochs"] + v.get("epochs_shuffled", 0))},
    "03_architectures": _count_03,
    "04_optimizers_and_batch_size": lambda v: {
        "mlp_examples": len(v["seeds"]) * len(v["optimizers"]) * int(v["steps"]) * sum(v["batch_sizes"])
    },
    "05_layerwise": lambda v: {"mlp_examples": _mlp(v, 1, _datasets_n(v))},
    "06_downstream_convergence": lambda v: {"mlp_examples": _mlp(v), "gd_flops": _gd(v, 4)},
    "07_peaks_transfer": _count_07,
    "08_pretrained_features": _count_08,
    "09_task_similarity": _count_09,
    "10_negative_transfer": _count_10,
    "11_transferability_scores": _count_11,
}


def predict(notebook: str, values: Mapping[str, Any], device: str) -> Prediction | None:
    """The predicted duration of ``notebook`` (its stem) with resolved parameters ``values`` on a ``device`` kind
    (``"cpu"`` or ``"cuda"``); None for a notebook without a work model or parameters it cannot read."""
    count = COUNTS.get(notebook)
    if count is None:
        return None
    kind = "cuda" if str(device).startswith("cuda") else "cpu"
    try:
        work = count(values)
    except (KeyError, TypeError, ValueError):  # parameters of another shape than the paper yaml's
        return None
    units, basis = {}, {}
    for unit, amount in work.items():
        rate = RATES[unit][kind]
        units[unit] = float(amount) / rate.per_second
        basis[unit] = rate.basis
    return Prediction(notebook, kind, sum(units.values()), units, basis)


@dataclass(frozen=True)
class PretrainEstimate:
    """A pre-training duration: ``seconds`` and a ``note`` naming its basis."""

    seconds: float
    note: str


def pretraining(arch: str, subset: str, *, epochs: int | None, gpus: int = 1) -> PretrainEstimate:
    """How long ``repalign.networks.pretrain`` takes on ImageNet ``subset`` (``natural``, ``artificial``, ``all``)
    for ``epochs`` on ``gpus`` GPUs: images × epochs / (:data:`PRETRAIN_RATES` × gpus)."""
    classes = 1000 if subset == "all" else len(imagenet_wnids(subset))
    rate = PRETRAIN_RATES.get(arch, PRETRAIN_RATES["t2t_vit"])
    seconds = classes * IMAGENET_PER_CLASS * int(epochs or 90) / (rate.per_second * max(1, gpus))
    return PretrainEstimate(seconds, f"{classes} classes, {int(epochs or 90)} epochs; {rate.basis}")
