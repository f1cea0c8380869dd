"""The ``repalign`` command line: measure alignment of one's own features or models, and run the notebooks.

``python -m repalign <command>`` or the console script ``repalign <command>``:

- ``measure``: the alignment of features (``.npy``/``.npz``/``.pt``/``.csv``) or of a model's layers on a data set
  with targets; prints the AUC and τ_q per layer, writes the curves as JSON and CSV and a PNG;
- ``run``: one notebook with other parameters (checked before a kernel starts), executed with papermill;
- ``params``: a notebook's parameters and their defaults (and a scale's values);
- ``paper-check``: what ``make paper`` needs (data sets, weight files) and the device it will use;
- ``sweep``: a grid of notebook runs (:mod:`repalign.sweep`).

Importing this module imports NumPy only; torch is imported when a model or a ``.pt`` file is measured.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["main", "measure_features", "load_features", "load_targets", "paper_check", "run_notebook"]

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

RUN_EXAMPLES = """\
examples:
  repalign run 03 depth=3 width=256
  repalign run 03_architectures.ipynb seeds=[0,1,2] --scale replicate
  repalign params 03            (its parameters and defaults)

The notebook runs with the notebooks/ folder as its working directory; the executed copy goes to
build/custom/<notebook>.ipynb, figures to figures/custom and verdicts to results/custom (unless given).
"""


# ------------------------------------------------------------------------------------------------ input files
def _csv_table(path: Path) -> tuple[list[str] | None, np.ndarray]:
    """A numeric CSV as (header or None, (n, c) float64); a first row that is not numeric is the header."""
    import csv

    with open(path, newline="") as fh:
        rows = [r for r in csv.reader(fh) if r]
    if not rows:
        raise ValueError(f"{path}: empty CSV")
    header = None
    try:
        [float(v) for v in rows[0]]
    except ValueError:
        header, rows = [h.strip() for h in rows[0]], rows[1:]
    try:
        table = np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except ValueError as err:
        raise ValueError(f"{path}: every value after the header must be a number ({err})") from None
    if table.ndim != 2 or table.shape[0] == 0:
        raise ValueError(f"{path}: rows of different lengths or no data rows")
    return header, table


def _load_pt(path: Path) -> dict[str, np.ndarray]:
    import torch

    obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping):
        return {str(k): np.asarray(v.detach().cpu().numpy() if hasattr(v, "detach") else v) for k, v in obj.items()}
    return {path.stem: np.asarray(obj.detach().cpu().numpy() if hasattr(obj, "detach") else obj)}


def load_features(
    path: str | os.PathLike[str], *, target_column: str | None = None
) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Layers of features from a file, and the targets when ``target_column`` names a CSV column.

    ``.npy``: one layer named after the file; ``.npz`` / ``.pt`` holding a dict: one layer per array; ``.pt``
    holding a tensor: one layer; ``.csv``: the numeric columns (a non-numeric first row is the header).
    Arrays with more than two axes are flattened per example.

    Shape: returns ``{layer: (n, d)}`` and ``(n,)`` targets or None.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    targets = None
    if suffix == ".npy":
        layers = {path.stem: np.load(path, allow_pickle=False)}
    elif suffix == ".npz":
        with np.load(path, allow_pickle=False) as z:
            layers = {k: z[k] for k in z.files}
    elif suffix in (".pt", ".pth"):
        layers = _load_pt(path)
    elif suffix in (".csv", ".txt", ".tsv"):
        header, table = _csv_table(path)
        names = header or [f"c{i}" for i in range(table.shape[1])]
        if target_column is not None:
            if target_column not in names:
                raise ValueError(f"{path}: no column {target_column!r}; columns: {', '.join(names)}")
            j = names.index(target_column)
            targets, table = table[:, j], np.delete(table, j, axis=1)
        layers = {path.stem: table}
    else:
        raise ValueError(f"{path}: unknown feature file type {suffix!r}; use .npy, .npz, .pt or .csv")
    if target_column is not None and targets is None:
        raise ValueError("--target-column applies to a CSV of features; give --targets FILE for other formats")
    out = {}
    for name, arr in layers.items():
        arr = np.asarray(arr)
        if arr.ndim == 1:
            raise ValueError(f"{path}: {name!r} is 1-D (shape {arr.shape}); features must be (n, d)")
        out[name] = arr.reshape(arr.shape[0], -1)
    if not out:
        raise ValueError(f"{path}: holds no arrays")
    return out, targets


def load_targets(path: str | os.PathLike[str], column: str | None = None) -> np.ndarray:
    """Targets from ``.npy``/``.npz`` (its only array, or ``column``)/``.pt``/``.csv``/``.txt``. Shape: (n,) or (n, k)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return np.load(path, allow_pickle=False)
    if suffix in (".npz", ".pt", ".pth"):
        arrays = _load_pt(path) if suffix != ".npz" else dict(np.load(path, allow_pickle=False))
        if column is None and len(arrays) != 1:
            raise ValueError(f"{path} holds {sorted(arrays)}: name one with --target-column")
        return np.asarray(arrays[column] if column is not None else next(iter(arrays.values())))
    header, table = _csv_table(path)
    if column is not None:
        if not header or column not in header:
            raise ValueError(f"{path}: no column {column!r}; columns: {header}")
        return table[:, header.index(column)]
    return table[:, 0] if table.shape[1] == 1 else table


def prepare_targets(y: np.ndarray, task: str = "auto") -> tuple[np.ndarray, str]:
    """Targets for the measure and a note saying what was done.

    ``classification`` (or ``auto`` with integer values and at most 100 distinct ones in one column): class labels
    become ±1 (two classes, :func:`repalign.binary_targets`) or a one-vs-rest ±1 matrix (K classes);
    ``regression`` (or ``auto`` otherwise): the values as given (the measure centres them).
    """
    from repalign.alignment import binary_targets, one_vs_rest_targets

    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(f"targets must be numbers, got dtype {y.dtype}")
    values = np.unique(y) if y.ndim == 1 else np.array([])
    integral = y.ndim == 1 and bool(np.all(np.isfinite(y))) and bool(np.all(np.asarray(y) == np.round(y)))
    if task == "auto":
        task = "classification" if integral and len(values) <= 100 else "regression"
    if task == "regression":
        return y.astype(np.float64), f"regression targets as given, shape {y.shape}"
    if task != "classification":
        raise ValueError(f"task must be auto, classification or regression, got {task!r}")
    if y.ndim != 1 or not integral:
        raise ValueError("classification targets must be one column of integer class labels")
    if len(values) < 2:
        raise ValueError(f"the targets hold one class only ({values.tolist()}); alignment needs two or more")
    if len(values) == 2:
        labels = (y == values[1]).astype(np.int64)
        return binary_targets(labels), f"2 classes {values.tolist()} -> ±1 (binary_targets)"
    return one_vs_rest_targets(y), f"{len(values)} classes -> one-vs-rest ±1 matrix"


# ------------------------------------------------------------------------------------------------ the measure
def measure_features(
    layers: Mapping[str, np.ndarray],
    targets: np.ndarray,
    *,
    center: bool = True,
    qs: Sequence[float] = (0.9, 0.99),
    num: int = 62,
) -> dict[str, dict[str, Any]]:
    """The spectrum of each layer: AUC, τ_q and the curve on the demo's grid. Shape: layers {name: (n, d)}."""
    from repalign.alignment import spectrum, threshold_grid

    out = {}
    for name, x in layers.items():
        spec = spectrum(x, targets, center=center)
        taus = threshold_grid(spec.n, num=num)
        out[name] = {
            "n": spec.n,
            "d": int(np.asarray(x).shape[1]),
            "auc": spec.auc(),
            **{f"tau_{q:g}": spec.tau_q(q) for q in qs},
            "thresholds": taus,
            "curve": spec.curve(taus, relative=True),
            "total": spec.total,
        }
    return out


def _write_results(results: Mapping[str, Mapping[str, Any]], out: Path, meta: Mapping[str, Any]) -> list[Path]:
    from repalign.utils import atomic_write_json, atomic_write_text

    out.mkdir(parents=True, exist_ok=True)
    payload = {"measure": dict(meta), "layers": {k: dict(v) for k, v in results.items()}}
    written = [atomic_write_json(out / "alignment.json", payload)]
    rows = ["layer,tau,relative_alignment"]
    for name, r in results.items():
        rows += [f"{name},{t:.10g},{a:.10g}" for t, a in zip(r["thresholds"], r["curve"], strict=True)]
    written.append(atomic_write_text(out / "alignment_curves.csv", "\n".join(rows) + "\n"))
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("(no PNG: matplotlib is not installed; pip install 'repalign[plot]')")
        return written
    if len({r["n"] for r in results.values()}) == 1:
        from repalign.plotting import new_figure

        fig, axes = new_figure(width=5.0, height=3.6)
        from repalign.plotting import plot_alignment_curves, save_figure

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

    from repalign import data, features, models
    from repalign.utils import get_device

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
        import timm

        model = timm.create_model(name, pretrained=args.pretrained, checkpoint_path=args.weights or "")
        cfg = timm.data.resolve_data_config({}, model=model)
        x = torch.nn.functional.interpolate(torch.as_tensor(ds.x), size=cfg["input_size"][1:], mode="bilinear")
        x = x.repeat(1, 3 // x.shape[1], 1, 1)
        x = (x - torch.tensor(cfg["mean"])[:, None, None]) / torch.tensor(cfg["std"])[:, None, None]
        default_layer = features.layer_names(model)[-2]
    layers = args.layers or [default_layer]
    feats = features.extract(model, x, layers, batch_size=args.batch_size, device=device, progress=False)
    return feats, ds.y, f"{ds.info.describe()}; model {name} on {device}"


def _measure(args: argparse.Namespace) -> int:
    if bool(args.features) == bool(args.model):
        raise SystemExit("measure: give feature files, or --model with --dataset (not both); see --help")
    if args.model and not args.dataset:
        raise SystemExit("measure: --model needs --dataset NAME (see `python -m repalign.data` for the names)")
    if args.features:
        layers: dict[str, np.ndarray] = {}
        y = None
        for f in args.features:
            got, y_csv = load_features(f, target_column=None if args.targets else args.target_column)
            clash = set(got) & set(layers)
            layers.update({(f"{Path(f).stem}:{k}" if k in clash else k): v for k, v in got.items()})
            y = y_csv if y_csv is not None else y
        source = ", ".join(args.features)
    else:
        layers, y, source = _model_layers(args)
    if args.targets:
        y = load_targets(args.targets, args.target_column)
    if y is None:
        raise SystemExit("measure: no targets: give --targets FILE (or --target-column NAME for a CSV, or --dataset)")
    targets, how = prepare_targets(y, args.task)
    print(f"features: {source}")
    print(f"targets: {how}; {'centred' if args.center else 'NOT centred (--no-center)'}")
    qs = tuple(args.q)
    results = measure_features(layers, targets, center=args.center, qs=qs)
    _print_table(results, qs)
    meta = {"features": source, "targets": how, "center": args.center, "bias": True, "normalize": True}
    from repalign.utils import provenance

    meta["provenance"] = provenance(timestamp=False)
    written = _write_results(results, Path(args.out), meta)
    print("wrote " + ", ".join(str(p) for p in written))
    return 0


# ------------------------------------------------------------------------------------------------ notebooks
def _params(args: argparse.Namespace) -> int:
    from repalign import params

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


def _line_progress_engine(label: str) -> str:
    """Register a papermill engine that prints one line as each code cell starts (busy told from hung)."""
    from papermill.engines import NBClientEngine, papermill_engines

    class LineProgress(NBClientEngine):
        @classmethod
        def execute_managed_notebook(cls, nb_man: Any, kernel_name: str, **kwargs: Any) -> Any:
            start, t0 = nb_man.cell_start, time.monotonic()
            code = [i for i, c in enumerate(nb_man.nb.cells) if c.cell_type == "code"]

            def cell_start(cell: Any, cell_index: int | None = None, **kw: Any) -> Any:
                if cell.cell_type == "code" and cell_index in code:
                    first = next((ln for ln in cell.source.splitlines() if ln and not ln.startswith("#")), "")
                    print(
                        f"[{label}] cell {code.index(cell_index) + 1}/{len(code)} "
                        f"({time.monotonic() - t0:.0f} s): {first[:70]}",
                        flush=True,
                    )
                return start(cell, cell_index, **kw)

            nb_man.cell_start = cell_start
            return super().execute_managed_notebook(nb_man, kernel_name, **kwargs)

    papermill_engines.register("repalign-lines", LineProgress)
    return "repalign-lines"


def run_notebook(
    notebook: str | os.PathLike[str],
    given: Mapping[str, Any],
    *,
    scale: str = "smoke",
    output: str | os.PathLike[str] | None = None,
    custom_dirs: bool = True,
    progress: str = "lines",
    log_output: bool = False,
    timeout: int | None = None,
) -> Path:
    """Check the parameters, then execute the notebook with papermill in ``notebooks/`` and return the output path.

    ``given`` overrides the scale's parameters (``notebooks/params/<scale>/<stem>.yaml``); with ``custom_dirs`` the
    figures and verdicts go to ``figures/custom`` and ``results/custom`` unless ``given`` names folders. The
    executed copy is written atomically (``build/custom/<stem>.ipynb`` by default). ``progress``: ``"lines"`` (a
    line per code cell), ``"bar"`` (papermill's bar) or ``"none"``.
    """
    from repalign import params
    from repalign.utils import atomic_write_bytes

    path = params.resolve_notebook(notebook)
    chosen = {**params.scale_parameters(path, scale), **dict(given)}
    if custom_dirs:
        chosen.setdefault("figures_dir", "../figures/custom")
        chosen.setdefault("results_dir", "../results/custom")
    params.validate(path, chosen)  # before any kernel starts: one clear message
    root = params.repo_root() or Path.cwd()
    out = Path(output) if output else root / "build" / "custom" / f"{path.stem}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    part = out.with_name(f".{out.stem}.part.ipynb")
    import papermill as pm

    engine = _line_progress_engine(path.stem) if progress == "lines" else None
    _quiet_kernel_logs()
    os.environ.setdefault("REPALIGN_PROGRESS", "text")  # the kernel's bars: plain text, no widget frozen at 0 %
    try:
        _execute(pm, path, part, chosen, progress, log_output, timeout, engine)
    except pm.PapermillExecutionError as err:
        raise NotebookFailed(
            f"{path.stem} stopped in cell {err.exec_count}: {err.ename}: {err.evalue}\n"
            f"the executed part, with the traceback: {part}"
        ) from None
    atomic_write_bytes(out, part.read_bytes())
    part.unlink()
    return out


class NotebookFailed(RuntimeError):
    """A notebook raised in one of its cells (the partial executed copy is kept)."""


def _execute(pm: Any, path: Path, part: Path, chosen: Mapping[str, Any], progress: str, log_output: bool,
             timeout: int | None, engine: str | None) -> None:  # fmt: skip
    pm.execute_notebook(
        str(path),
        str(part),
        parameters=chosen,
        cwd=str(path.parent),
        kernel_name="python3",
        progress_bar={"desc": path.stem, "unit": "cell"} if progress == "bar" else False,
        log_output=log_output,
        execution_timeout=timeout,
        engine_name=engine,
        extra_arguments=["--IPKernelApp.log_level=CRITICAL"],
    )


def _quiet_kernel_logs() -> None:
    """papermill logs every cell's start at INFO; keep its warnings. (The kernel's own "running over TCP without
    encryption" and the "KeyboardInterrupt caught in kernel" that jupyter_client's shutdown interrupt provokes are
    silenced by starting the kernel with ``--IPKernelApp.log_level=CRITICAL``: both are harmless here.)"""
    import logging

    logging.getLogger("papermill").setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", category=DeprecationWarning, module="jupyter_client")


def _short(path: Path) -> str:
    """``path`` resolved, relative to the working directory when it lies below it."""
    path = Path(os.path.normpath(path.resolve()))
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _run(args: argparse.Namespace) -> int:
    from repalign import params

    given = params.parse_assignments(args.assignments)
    out = run_notebook(
        args.notebook,
        given,
        scale=args.scale,
        output=args.output,
        custom_dirs=not args.scale_dirs,
        progress=args.progress,
        log_output=args.log_output,
        timeout=args.timeout,
    )
    values = {**params.scale_parameters(args.notebook, args.scale), **given}
    if not args.scale_dirs:
        values = {"figures_dir": "../figures/custom", "results_dir": "../results/custom", **values}
    nbdir = params.resolve_notebook(args.notebook).parent
    shown = {k: _short(nbdir / str(values[k])) for k in ("figures_dir", "results_dir") if k in values}
    print(f"executed copy: {_short(out)}; figures in {shown.get('figures_dir', '?')}, verdicts in "
          f"{shown.get('results_dir', '?')}")  # fmt: skip
    return 0


# ------------------------------------------------------------------------------------------------ paper preflight
#: parameters that name data sets (a name, a list, ``{label: name}``, ``{label: [name, subset]}`` or
#: ``{label: {name: ..., ...}}``); names that are not data sets of :func:`repalign.data.available` are ignored
DATA_KEYS = ("dataset", "datasets", "sources", "targets", "source_datasets", "target_datasets")
#: parameters that name pre-trained networks whose ImageNet weights torchvision downloads on first use
NETWORK_KEYS = ("pretrained", "networks")


def _data_needs(values: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(data set name, load options) named by a notebook's parameters (:data:`DATA_KEYS`, ``*_dataset``)."""
    from repalign import data

    known = set(data.available())
    needs: list[tuple[str, dict[str, Any]]] = []

    def add(v: Any) -> None:
        if isinstance(v, str):
            if v in known:
                needs.append((v, {}))
        elif isinstance(v, Mapping) and isinstance(v.get("name"), str):
            add(v["name"])
        elif isinstance(v, Mapping):
            for item in v.values():
                add(item)
        elif isinstance(v, list | tuple):
            for item in v:
                add(item)

    for key, value in values.items():
        if key in DATA_KEYS or key.endswith("_dataset"):
            add(value)
    return needs


def _check_dataset(name: str, options: Mapping[str, Any]) -> str | None:
    """None when ``data.load(name)`` finds the data, else the loader's message (which names the fix)."""
    from repalign import data

    if name in data.EMBEDDED or name.endswith("_embedded"):
        return None
    split = "train" if name not in ("ct_position", "office31") else "all"
    try:
        if name in ("office31", "imagenet") or name.startswith("imagenet_"):
            root = data.data_root() / ("office31" if name == "office31" else "imagenet")
            if not root.is_dir():
                fix = "put it at" if name == "office31" else "put the ImageNet train/val class folders at"
                return f"{name}: {root} not found; {fix} {root} (it cannot be downloaded automatically)"
            return None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data.load(name, split=split, **options)
    except (FileNotFoundError, ValueError) as err:
        return str(err)
    return None


def _check_weights(values: Mapping[str, Any], notebooks: Path) -> list[tuple[str, str, bool]]:
    """Missing weight files as (name, message, blocking): torchvision's ImageNet checkpoints of
    :data:`NETWORK_KEYS` networks (not blocking: fetched on first use when online), ``weights_paths`` files and
    ``checkpoints`` (paths relative to ``notebooks/``, any nesting; blocking)."""
    import torch
    import torchvision

    problems = []
    paths = values.get("weights_paths") or {}
    names = [n for key in NETWORK_KEYS for n in (values.get(key) or []) if isinstance(n, str) and n not in paths]
    for name in dict.fromkeys(names):
        try:
            url = torchvision.models.get_model_weights(name).DEFAULT.url
        except (ValueError, KeyError, AttributeError):  # not torchvision's (the library's own packages, timm)
            continue
        file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if not file.is_file():
            problems.append((name, f"ImageNet weights not in {file.parent}; offline, download {url} there", False))
    for name, p in paths.items():
        if not Path(p).expanduser().is_file():
            problems.append((name, f"weights_paths file {p} not found", True))

    def walk(v: Any, keys: tuple[str, ...]) -> None:
        if isinstance(v, Mapping):
            for k, item in v.items():
                walk(item, (*keys, str(k)))
        elif isinstance(v, str) and not (notebooks / v).expanduser().exists():
            message = (
                f"{v} not found (relative to notebooks/); {_pretrain_hint(values, keys, notebooks / v)}"
                " (docs/PRETRAIN.md), or set `checkpoints` to where it is"
            )
            problems.append((f"checkpoint {' '.join(keys)}", message, True))

    walk(values.get("checkpoints") or {}, ())
    return problems


def _pretrain_hint(values: Mapping[str, Any], keys: tuple[str, ...], path: Path) -> str:
    """The torchrun command that makes a missing checkpoint (``checkpoints: {arch: {source label: path}}`` with the
    source label's ``[dataset, subset]`` in ``sources``), or a pointer to repalign.pretrain when it cannot tell."""
    from repalign import pretrain

    source = (values.get("sources") or {}).get(keys[-1]) if len(keys) == 2 else None
    if not isinstance(source, list | tuple) or len(source) != 2:
        return "pre-train it first with repalign.pretrain"
    out = os.path.relpath(path.resolve(), Path.cwd())
    try:
        return "make it with: " + pretrain.command(keys[0], str(source[1]), out)
    except ValueError:
        return "pre-train it first with repalign.pretrain"


def paper_check(
    scale: str = "paper", notebooks: Sequence[str] = ()
) -> tuple[dict[str, tuple[str, list[str], bool]], str]:
    """What ``make paper`` would miss and the device it will use.

    Returns ``{thing: (message naming the fix, [notebooks that need it], blocking)}`` for each data set or weight
    file that is not in place (empty when everything is) and a line naming the device. ImageNet weights that
    torchvision fetches on first use are not blocking. Loads each data set once (seconds).
    """
    from repalign import params

    names = [params.resolve_notebook(n).stem for n in notebooks] or params.list_notebooks()
    missing: dict[str, tuple[str, list[str], bool]] = {}
    checked: dict[str, str | None] = {}
    for stem in names:
        values = {**params.defaults(stem), **params.scale_parameters(stem, scale)}
        found = []
        for name, opts in _data_needs(values):
            if name not in checked:
                checked[name] = _check_dataset(name, opts)
            if checked[name]:
                found.append((name, str(checked[name]).removeprefix(f"{name}: "), True))
        for name, message, blocking in found + _check_weights(values, params.notebooks_dir()):
            users = missing.setdefault(name, (message, [], blocking))[1]
            if stem not in users:
                users.append(stem)
    return missing, _device_line(names, scale)


def _device_line(names: Sequence[str], scale: str) -> str:
    from repalign import params

    fixed = sorted(
        {
            str(v)
            for n in names
            for k, v in {**params.defaults(n), **params.scale_parameters(n, scale)}.items()
            if k == "device" and v not in (None, "auto")
        }
    )
    try:
        import torch
    except ImportError:
        return "device: torch is not installed (pip install 'repalign[models]')"
    if torch.cuda.is_available():
        line = f"device: cuda ({torch.cuda.get_device_name(0)}), chosen by device: auto"
    else:
        line = "device: cpu (no GPU found; device: auto falls back to the CPU: the paper scale takes hours there)"
    return line + (f"; some notebooks fix device to {', '.join(fixed)}" if fixed else "")


def _paper_check(args: argparse.Namespace) -> int:
    from repalign import data

    missing, device = paper_check(args.scale, args.notebooks)
    print(device)
    blocking = {k: v for k, v in missing.items() if v[2]}
    later = {k: v for k, v in missing.items() if not v[2]}
    if later:
        print(f"to be downloaded on first use (needs internet): {', '.join(later)}")
        for name, (message, users, _) in later.items():
            print(f"  - {name} (for {', '.join(u[:2] for u in users)}): {message}")
    if not blocking:
        print(f"paper-check: every data set and checkpoint the {args.scale} scale needs is in place")
        return 0
    print(f"paper-check: {len(blocking)} thing(s) missing; nothing was run:")
    for name, (message, users, _) in blocking.items():
        print(f"  - {name} (for {', '.join(u[:2] for u in users)}): {message}")
    fetchable = [n for n in blocking if n in data.available() and not n.startswith(("office31", "imagenet"))]
    if fetchable:
        print(f'the downloadable data sets in one go: make data DATASETS="{" ".join(fetchable)}"')
    return 1


# ------------------------------------------------------------------------------------------------ entry point
def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
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
    r.add_argument("--scale", default="smoke", help="smoke (the parameters cell), replicate or paper")
    r.add_argument("--output", help="the executed copy (default build/custom/<notebook>.ipynb)")
    r.add_argument("--scale-dirs", action="store_true", help="write figures/results where the scale says")
    r.add_argument("--progress", choices=("lines", "bar", "none"), default="lines", help="a line per cell (default)")
    r.add_argument("--log-output", action="store_true", help="also print the notebook's own output")
    r.add_argument("--timeout", type=int, default=None, help="seconds per cell")
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
        "sweep", help="a grid of notebook runs (repalign.sweep; `repalign sweep --help`)", add_help=False
    )
    s.add_argument("args", nargs=argparse.REMAINDER)
    s.set_defaults(func=_sweep)
    return parser


def _sweep(args: argparse.Namespace) -> int:
    from repalign.sweep import main as sweep_main  # lazily: it brings dask

    return int(sweep_main(args.args) or 0)


def _one_line_warning(message: Any, category: type[Warning], *args: Any, **kwargs: Any) -> str:
    return f"warning ({category.__name__}): {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``repalign`` and ``python -m repalign``; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["sweep"]:  # everything after `sweep` belongs to repalign.sweep, --help included
        return _sweep(argparse.Namespace(args=argv[1:]))
    args = _parser().parse_args(argv)
    from repalign.params import ParameterError

    warnings.formatwarning = _one_line_warning
    try:
        return int(args.func(args) or 0)
    except (ParameterError, FileNotFoundError, ValueError, NotebookFailed) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
