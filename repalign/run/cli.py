"""The ``repalign`` command line: measure alignment of one's own features or models, and run the notebooks.

``python -m repalign <command>`` or the console script ``repalign <command>``:

- ``measure``: the alignment of features (``.npy``/``.npz``/``.pt``/``.csv``) or of a model's layers on a data set
  with targets; prints the AUC and τ_q per layer, writes the curves as JSON and CSV and a PNG;
- ``run``: one notebook with other parameters (checked before a kernel starts), executed with papermill;
- ``params``: a notebook's parameters and their defaults (and a scale's values);
- ``paper-check``: what ``make paper`` needs (data sets, weight files) and the device it will use;
- ``sweep``: a grid of notebook runs (:mod:`repalign.run.sweep`).

Importing this module imports NumPy only; torch is imported when a model or a ``.pt`` file is measured.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.files import atomic_write_json, atomic_write_text
from repalign.core.provenance import provenance
from repalign.measure.alignment import spectrum, threshold_grid
from repalign.run import params
from repalign.run.notebook import RUN_EXAMPLES, NotebookFailed, _run
from repalign.run.paper_check import _paper_check
from repalign.run.params import ParameterError
from repalign.run.userfiles import (
    MeasureWarning,
    check_writable_folder,
    load_features,
    load_targets,
    prepare_targets,
)

__all__ = [
    "measure_features",
    "main",
]

MEASURE_EXAMPLES = """\
examples:
  repalign measure feats.npy --targets labels.npy
      one layer's features (n, d) and class labels (n,): 2 classes become ±1, K classes one-vs-rest ±1
  repalign measure layers.npz --targets y.csv --task regression --out results/align
      every array in the .npz is a layer; regression targets measured as given (centred)
  repalign measure table.csv --target-column price
      a CSV with a header: every other numeric column is a feature
  repalign measure --model resnet18 --pretrained --dataset cifar10 --n 2000 --layers layer3 avgpool
      a model's layers on 2,000 CIFAR-10 training images (labels as targets); --device auto uses a GPU if present
  repalign measure --model resnet50 --weights my_checkpoint.pth --dataset mnist_embedded --n 1000

The measure: A(τ) = Σ_{σ_i ≥ τ} ‖u_iᵀY‖² of the features with a bias column and unit-norm rows, the targets
centred (--no-center measures them as given, and warns when their mean would be counted as alignment).
AUC: area under A(τ)/‖Y‖² over τ ∈ [0, √n], divided by √n; τ_q: the largest τ with A(τ) ≥ q‖Y‖².
"""


# ------------------------------------------------------------------------------------------------ the measure
#: layers whose numerical ranks differ by this factor or more are compared with a warning (the AUC favours the lower)
RANK_RATIO_WARNING = 2.0


def measure_features(
    layers: Mapping[str, np.ndarray],
    targets: np.ndarray,
    *,
    center: bool = True,
    qs: Sequence[float] = (0.9, 0.99),
    num: int = 62,
) -> dict[str, dict[str, Any]]:
    """The spectrum of each layer: AUC, τ_q, the numerical rank and the curve on the demo's grid.

    Warns (:class:`repalign.run.userfiles.MeasureWarning`) when the layers differ much in rank: the AUC favours
    low-dimensional codes. Shape: layers {name: (n, d)}.
    """

    out = {}
    for name, x in layers.items():
        try:
            spec = spectrum(x, targets, center=center)
        except ValueError as err:
            raise ValueError(f"layer {name!r}: {err}") from None
        taus = threshold_grid(spec.n, num=num)
        out[name] = {
            "n": spec.n,
            "d": int(np.asarray(x).shape[1]),
            "rank": spec.rank,
            "auc": spec.auc(),
            **{f"tau_{q:g}": spec.tau_q(q) for q in qs},
            "thresholds": taus,
            "curve": spec.curve(taus, relative=True),
            "total": spec.total,
        }
    _warn_if_ranks_differ(out)
    return out


def _warn_if_ranks_differ(results: Mapping[str, Mapping[str, Any]]) -> None:
    """Warn when the layers compared differ in numerical rank by :data:`RANK_RATIO_WARNING` or more."""
    ranks = {name: int(r["rank"]) for name, r in results.items() if r["rank"] > 0}
    if len(ranks) < 2:
        return
    low, high = min(ranks, key=ranks.__getitem__), max(ranks, key=ranks.__getitem__)
    if ranks[high] < RANK_RATIO_WARNING * ranks[low]:
        return
    warnings.warn(
        f"the layers compared differ much in rank ({low!r}: {ranks[low]} directions, {high!r}: {ranks[high]}): the "
        "AUC favours low-dimensional codes (with unit-norm rows the squared singular values sum to n, so fewer "
        "directions are larger), so do not rank these layers by AUC alone: compare them at equal width (e.g. PCA "
        "of each to the same number of components), or compare tau_q and the relative curves",
        MeasureWarning,
        stacklevel=3,
    )


def _write_results(results: Mapping[str, Mapping[str, Any]], out: Path, meta: Mapping[str, Any]) -> list[Path]:
    try:
        out.mkdir(parents=True, exist_ok=True)
        payload = {"measure": dict(meta), "layers": {k: dict(v) for k, v in results.items()}}
        written = [atomic_write_json(out / "alignment.json", payload)]
        rows = ["layer,tau,relative_alignment"]
        for name, r in results.items():
            rows += [f"{name},{t:.10g},{a:.10g}" for t, a in zip(r["thresholds"], r["curve"], strict=True)]
        written.append(atomic_write_text(out / "alignment_curves.csv", "\n".join(rows) + "\n"))
    except OSError as err:
        raise ValueError(f"cannot write the results to {out} ({err.strerror or err}); choose another --out") from None
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(no PNG: matplotlib is not installed; pip install 'repalign[plot]')")
        return written
    if len({r["n"] for r in results.values()}) == 1:
        from repalign.report.plotting import new_figure  # lazily: matplotlib only when a figure is written

        fig, axes = new_figure(width=5.0, height=3.6)
        from repalign.report.plotting import (  # lazily: matplotlib only when a figure is written
            plot_alignment_curves,
            save_figure,
        )

        first = next(iter(results.values()))
        curves = {f"{k} (AUC {r['auc']:.3f})": r["curve"] for k, r in results.items()}
        plot_alignment_curves(axes[0, 0], first["thresholds"], curves, title=f"alignment, n = {first['n']:,}")
        written += save_figure(fig, "alignment", out, formats=("png",), show=False)
    return written


def _print_table(results: Mapping[str, Mapping[str, Any]], qs: Sequence[float]) -> None:
    width = max(8, *(len(k) for k in results))
    head = f"{'layer':<{width}} {'n':>7} {'d':>7} {'AUC':>7} " + " ".join(f"{'tau_' + format(q, 'g'):>9}" for q in qs)
    print(head)
    for name, r in results.items():
        taus = " ".join(f"{r[f'tau_{q:g}']:>9.4g}" for q in qs)
        print(f"{name:<{width}} {r['n']:>7} {r['d']:>7} {r['auc']:>7.4f} {taus}")


def _model_layers(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], np.ndarray, str]:
    """Features of a model's layers on ``args.dataset`` and the data set's labels/targets."""
    import torch

    from repalign import data  # lazily: torch only for --model: measuring feature files never imports it
    from repalign.networks import (  # lazily: torch only for --model: measuring feature files never imports it
        features,
        models,
    )
    from repalign.networks.runtime import (
        get_device,  # lazily: torch only for --model: measuring feature files never imports it
    )

    ds = data.load(args.dataset, split=args.split)
    if args.n and args.n < len(ds):
        idx = np.sort(np.random.default_rng(args.seed).choice(len(ds), args.n, replace=False))
        ds = ds.subset(idx, note=f"{args.n} random examples (seed {args.seed})")
    device = get_device(args.device)
    name = args.model
    if name in models.BACKBONES:
        model = models.backbone(name, pretrained=args.pretrained, weights_path=args.weights, seed=args.seed)
        x = models.prepare_images(ds.x, name, args.image_size)
        default_layer = models.feature_layer(name)
    else:
        model, cfg = _timm_model(args, models.BACKBONES)
        x = torch.nn.functional.interpolate(torch.as_tensor(ds.x), size=cfg["input_size"][1:], mode="bilinear")
        x = x.repeat(1, 3 // x.shape[1], 1, 1)
        x = (x - torch.tensor(cfg["mean"])[:, None, None]) / torch.tensor(cfg["std"])[:, None, None]
        default_layer = features.layer_names(model)[-2]
    layers = args.layers or [default_layer]
    feats = features.extract(model, x, layers, batch_size=args.batch_size, device=device, progress=False)
    return feats, ds.y, f"{ds.info.describe()}; model {name} on {device}"


def _timm_model(args: argparse.Namespace, backbones: Sequence[str]) -> tuple[Any, dict[str, Any]]:
    """The timm model ``args.model`` and its preprocessing configuration (input size, mean, std); ``args.weights``
    is read first, so that a damaged or planted file is refused in one line."""
    import timm

    from repalign.networks.torchfiles import load_torch_file  # lazily: torch only for --model

    if args.weights:
        load_torch_file(args.weights, what="weights file", fix="give a state dict saved with torch.save")
    try:
        model = timm.create_model(args.model, pretrained=args.pretrained, checkpoint_path=args.weights or "")
    except RuntimeError as err:
        if "Unknown model" not in str(err):
            raise
        raise ValueError(
            f"--model {args.model!r} is neither a repalign backbone ({', '.join(backbones)}) nor a timm model name "
            "(python -c 'import timm; print(timm.list_models())' lists them)"
        ) from None
    return model, timm.data.resolve_data_config({}, model=model)


def _check_measure_options(args: argparse.Namespace) -> None:
    """Everything about the options that can be checked before any file is read or anything measured."""
    if bool(args.features) == bool(args.model):
        raise ValueError("measure: give feature files, or --model with --dataset (not both); see --help")
    if args.model and not args.dataset:
        raise ValueError("measure: --model needs --dataset NAME (see `python -m repalign.data` for the names)")
    bad = [q for q in args.q if not 0.0 < q <= 1.0]
    if bad:
        raise ValueError(f"--q must be in (0, 1] (the share of the targets tau_q keeps), got {bad[0]:g}")
    if args.n < 0:
        raise ValueError(f"--n must be >= 0 (the number of examples to measure; 0: all), got {args.n}")
    check_writable_folder(args.out, "--out")


def _feature_files(args: argparse.Namespace) -> tuple[dict[str, np.ndarray], dict[str, str], np.ndarray | None]:
    """The layers of the feature files (a clash of names is prefixed with the file's stem), the file of each layer
    and the targets of a CSV's ``--target-column``."""
    layers: dict[str, np.ndarray] = {}
    origin: dict[str, str] = {}
    y = None
    for f in args.features:
        got, y_csv = load_features(f, target_column=None if args.targets else args.target_column)
        clash = set(got) & set(layers)
        for k, v in got.items():
            name = f"{Path(f).stem}:{k}" if k in clash else k
            layers[name], origin[name] = v, f
        y = y_csv if y_csv is not None else y
    return layers, origin, y


def _measure(args: argparse.Namespace) -> int:
    """``repalign measure``: options checked first, then the files or the model, the targets, the measure."""
    _check_measure_options(args)
    if args.features:
        layers, origin, y = _feature_files(args)
        source = ", ".join(args.features)
    else:
        layers, y, source = _model_layers(args)
        origin = {name: f"--model {args.model}" for name in layers}
    if args.targets:
        y = load_targets(args.targets, args.target_column)
    if y is None:
        raise ValueError("measure: no targets: give --targets FILE (or --target-column NAME for a CSV, or --dataset)")
    targets, how = prepare_targets(y, args.task)
    for name, x in layers.items():
        if x.shape[0] != targets.shape[0]:
            raise ValueError(
                f"{origin[name]}: {name!r} has {x.shape[0]} rows but the targets have {targets.shape[0]}; features "
                "and targets must describe the same examples in the same order"
            )
    print(f"features: {source}")
    print(f"targets: {how}; {'centred' if args.center else 'NOT centred (--no-center)'}")
    qs = tuple(args.q)
    results = measure_features(layers, targets, center=args.center, qs=qs)
    _print_table(results, qs)
    meta = {"features": source, "targets": how, "center": args.center, "bias": True, "normalize": True}

    meta["provenance"] = provenance(timestamp=False)
    written = _write_results(results, Path(args.out), meta)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ------------------------------------------------------------------------------------------------ notebooks
def _params(args: argparse.Namespace) -> int:

    if not args.notebook:
        print("notebooks (python -m repalign params NB shows one's parameters):")
        for name in params.list_notebooks():
            print(f"  {name}")
        return 0
    path = params.resolve_notebook(args.notebook)
    base = params.defaults(path)
    scaled = params.scale_parameters(path, args.scale) if args.scale else {}
    print(f"{path.stem}: parameters (smoke defaults{f'; {args.scale} values after ->' if scaled else ''})")
    for key, value in base.items():
        extra = f"  -> {scaled[key]!r}" if key in scaled and scaled[key] != value else ""
        print(f"  {key} = {value!r}{extra}")
    print(f"run with others: python -m repalign run {path.stem} key=value ...   (make notebook NB={path.stem} P=...)")
    return 0


# ------------------------------------------------------------------------------------------------ entry point
def _parser() -> argparse.ArgumentParser:
    parser = params.CommandLineParser(
        prog="repalign",
        description="Representation alignment (Imani, Hu, White, TMLR 2022): measure it, and run the notebooks.",
        epilog="`repalign <command> --help` for each command's options and examples.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="command")
    m = sub.add_parser(
        "measure",
        help="alignment of features or a model's layers with targets (AUC, tau_q, curves)",
        epilog=MEASURE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    m.add_argument("features", nargs="*", help=".npy / .npz / .pt / .csv feature files (n, d); .npz: one layer each")
    m.add_argument("--targets", help="targets file (.npy, .npz, .pt, .csv, .txt): class labels or regression values")
    m.add_argument("--target-column", help="the target's column in a CSV (features CSV or --targets CSV)")
    m.add_argument("--task", choices=("auto", "classification", "regression"), default="auto",
                   help="auto: integer labels with <= 100 values are classes (default)")  # fmt: skip
    m.add_argument("--no-center", dest="center", action="store_false", help="measure the targets uncentred")
    m.add_argument("--q", type=float, nargs="+", default=[0.9, 0.99], help="levels q of tau_q (default 0.9 0.99)")
    m.add_argument("--out", default="alignment_out", help="folder for alignment.json, alignment_curves.csv, .png")
    g = m.add_argument_group("a model on a data set (needs torch: pip install 'repalign[models]')")
    g.add_argument("--model", help="a backbone (resnet18, resnet50, vgg16, efficientnet_lite0, ...) or a timm name")
    g.add_argument("--pretrained", action="store_true", help="ImageNet weights")
    g.add_argument("--weights", help="a state-dict checkpoint for the architecture (implies --pretrained)")
    g.add_argument("--layers", nargs="+", help="layer names (default: the penultimate layer)")
    g.add_argument(
        "--dataset", help="a repalign.data name (cifar10, mnist, mnist_embedded, ...); its labels are targets"
    )
    g.add_argument("--split", default="train")
    g.add_argument("--n", type=int, default=0, help="measure n random examples (default: all)")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--image-size", type=int, default=224)
    g.add_argument("--batch-size", type=int, default=128)
    g.add_argument("--device", default="auto", help="auto (a GPU when present), cpu, cuda, cuda:1")
    m.set_defaults(func=_measure)

    r = sub.add_parser("run", help="run one notebook with other parameters (checked first)", epilog=RUN_EXAMPLES,
                       formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    r.add_argument("notebook", help="03_architectures, 03_architectures.ipynb, notebooks/03_..., or 03")
    r.add_argument("assignments", nargs="*", metavar="key=value", help="parameters (YAML values: seeds=[0,1])")
    r.add_argument(
        "--scale",
        default="smoke",
        help="smoke (the parameters cell), replicate, paper or rehearsal (any folder under notebooks/params)",
    )
    r.add_argument("--name", help="the run name: folder of its outputs (default <notebook>-<scale>-<hash>)")
    r.add_argument("--output", help="the executed copy (default build/custom/<run name>.ipynb)")
    r.add_argument("--scale-dirs", action="store_true", help=argparse.SUPPRESS)  # make replicate / make paper only
    r.add_argument("--progress", choices=("lines", "bar", "none"), default="lines", help="a line per cell (default)")
    r.add_argument("--log-output", action="store_true", help="also print the notebook's own output")
    r.add_argument("--timeout", type=params.positive_int, default=None, help="seconds per cell")
    r.set_defaults(func=_run)

    p = sub.add_parser("params", help="list the notebooks, or one notebook's parameters and defaults")
    p.add_argument("notebook", nargs="?")
    p.add_argument("--scale", help="also show this scale's values (replicate, paper)")
    p.set_defaults(func=_params)

    c = sub.add_parser("paper-check", help="what `make paper` needs that is missing, and the device it will use")
    c.add_argument("notebooks", nargs="*", help="only these notebooks (default all)")
    c.add_argument("--scale", default="paper")
    c.set_defaults(func=_paper_check)

    s = sub.add_parser(
        "sweep", help="a grid of notebook runs (repalign.run.sweep; `repalign sweep --help`)", add_help=False
    )
    s.add_argument("args", nargs=argparse.REMAINDER)
    s.set_defaults(func=_sweep)
    return parser


def _sweep(args: argparse.Namespace) -> int:
    from repalign.run.sweep import main as sweep_main  # lazily: it brings dask

    return int(sweep_main(args.args) or 0)


def _one_line_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    return f"warning ({category.__name__}): {message}\n"


#: the extras (pyproject.toml) a command needs in this process, checked before it starts
NEEDS = {"run": ("notebooks",)}


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``repalign`` and ``python -m repalign``; returns the exit status.

    A user's mistake (a command line that does not parse, a wrong parameter, a missing file or extra) is one line,
    ``error: …``, and status 2; a notebook that raised, status 2 with where to find its traceback.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    warnings.formatwarning = _one_line_warning
    if argv[:1] == ["sweep"]:  # everything after `sweep` belongs to repalign.run.sweep, --help included
        return _sweep(argparse.Namespace(args=argv[1:]))
    try:
        args = _parser().parse_args(argv)
        params.require(f"repalign {args.command}", *NEEDS.get(args.command, ()))
        return int(args.func(args) or 0)
    except (ParameterError, FileNotFoundError, ValueError, NotebookFailed, ModuleNotFoundError) as err:
        return params.user_error(err)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
