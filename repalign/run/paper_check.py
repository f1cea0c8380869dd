"""``repalign paper-check``: what ``make paper`` needs that is not in place (data sets, weights, checkpoints), the
device, and how long each notebook and each missing checkpoint's pre-training will take (:mod:`repalign.run.durations`).

A checkpoint is in place only when ``load_pretrained`` would take it: a ``checkpoint.pt`` in its folder, finished, of
the architecture, ImageNet subset and image size the notebook names. ImageNet is asked for only where a checkpoint
has to be made. The command printed for a missing one has this machine's GPU count, the recipe's epochs and an
absolute ``--out`` under the data root.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repalign import data
from repalign.core.paths import notebooks_dir
from repalign.run import durations, params

__all__ = [
    "paper_check",
]

# ------------------------------------------------------------------------------------------------ paper preflight
#: parameters that name data sets (a name, a list, ``{label: name}``, ``{label: [name, subset]}`` or
#: ``{label: {name: ..., ...}}``); names that are not data sets of :func:`repalign.data.available` are ignored
DATA_KEYS = ("dataset", "datasets", "sources", "targets", "source_datasets", "target_datasets")
#: parameters that name pre-trained networks whose ImageNet weights torchvision downloads on first use
NETWORK_KEYS = ("pretrained", "networks")


def _data_needs(values: Mapping[str, Any], skip: Sequence[str] = ()) -> list[tuple[str, dict[str, Any]]]:
    """(data set name, load options) named by a notebook's parameters (:data:`DATA_KEYS`, ``*_dataset``), but for
    the keys in ``skip``."""

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
        if (key in DATA_KEYS or key.endswith("_dataset")) and key not in skip:
            add(value)
    return needs


def _check_dataset(name: str, options: Mapping[str, Any]) -> str | None:
    """None when data set ``name`` is in place under the data root, else its source's message naming the path and
    the fix (:meth:`repalign.data.Source.check`: a look at the files, never a full load)."""
    return data.source(name).check(data.data_root(), **options)


def _check_weights(values: Mapping[str, Any], notebooks: Path) -> list[tuple[str, str, bool]]:
    """Missing weight files as (name, message, blocking): torchvision's ImageNet checkpoints of
    :data:`NETWORK_KEYS` networks (not blocking: fetched on first use when online) and of a ``family`` that starts
    from ImageNet (``start: imagenet``, notebook 10; blocking: a download failing there stops ``make paper`` hours
    in), ``weights_paths`` files and ``checkpoints`` (:func:`_check_checkpoints`; blocking)."""
    import torch  # paper-check only: torch is loaded when the check runs, not when the command line starts

    problems = []
    paths = values.get("weights_paths") or {}
    names = [(n, False) for key in NETWORK_KEYS for n in (values.get(key) or []) if isinstance(n, str)]
    if values.get("start") == "imagenet" and isinstance(values.get("family"), str):
        names.insert(0, (values["family"], True))
    for name, blocking in dict.fromkeys(n for n in names if n[0] not in paths):
        url = _imagenet_weights_url(name)
        if url is None:
            continue
        file = Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(url)
        if not file.is_file() and not any(p[0] == name for p in problems):
            how = "offline, download" if not blocking else "this notebook starts from them: download"
            where = f"{file.parent} ($TORCH_HOME/hub/checkpoints)"
            problems.append((name, f"ImageNet weights not in {where}; {how} {url} there", blocking))
    for name, p in paths.items():
        if not Path(p).expanduser().is_file():
            problems.append((name, f"weights_paths file {p} not found", True))
    return problems + _check_checkpoints(values, notebooks)


def _imagenet_weights_url(name: str) -> str | None:
    """The URL of torchvision's default ImageNet weights of network ``name`` (None: not torchvision's)."""
    import torchvision  # paper-check only, as above

    try:
        return str(torchvision.models.get_model_weights(name).DEFAULT.url)
    except (ValueError, KeyError, AttributeError):  # not torchvision's (the library's own packages, timm)
        return None


def _checkpoint_paths(values: Mapping[str, Any], notebooks: Path) -> list[tuple[tuple[str, ...], Path]]:
    """``(keys, folder)`` of each path in ``checkpoints`` (any nesting; ``$REPALIGN_DATA`` expanded,
    :func:`repalign.networks.pretrain.resolve_path`; a relative path is relative to ``notebooks/``)."""
    from repalign.networks import pretrain  # lazily: torch only when a notebook names checkpoints

    found: list[tuple[tuple[str, ...], Path]] = []

    def walk(v: Any, keys: tuple[str, ...]) -> None:
        if isinstance(v, Mapping):
            for k, item in v.items():
                walk(item, (*keys, str(k)))
        elif isinstance(v, str):
            path = pretrain.resolve_path(v)
            found.append((keys, path if path.is_absolute() else notebooks / path))

    walk(values.get("checkpoints") or {}, ())
    return found


def _check_checkpoints(values: Mapping[str, Any], notebooks: Path) -> list[tuple[str, str, bool]]:
    """Each checkpoint of ``checkpoints`` that the notebook could not use, as (``"checkpoint <keys>"``, message,
    True): no ``checkpoint.pt`` in the folder (the message is the command that makes it, with its duration), an
    unreadable file, an unfinished run (``load_pretrained`` refuses it; the same command resumes it), or one of
    another architecture, ImageNet subset or image size than the notebook's ``checkpoints``/``sources``/``image_size``
    name."""
    from repalign.networks import pretrain  # lazily: torch only when a notebook names checkpoints

    problems = []
    for keys, folder in _checkpoint_paths(values, notebooks):
        arch, source = _arch_and_subset(values, keys)
        file = folder / pretrain.CHECKPOINT_NAME if folder.suffix != ".pt" else folder
        if not file.is_file():
            problem = f"no {pretrain.CHECKPOINT_NAME} in {file.parent}"
        else:
            try:
                info = pretrain.checkpoint_info(file)
            except (ValueError, OSError) as err:
                problems.append((f"checkpoint {' '.join(keys)}", f"{file}: {err}", True))
                continue
            problem = _checkpoint_mismatch(info, arch, source, values.get("image_size"))
            if problem is None:
                continue
        hint = _pretrain_hint(arch, source, folder)
        problems.append((f"checkpoint {' '.join(keys)}", f"{problem}; {hint} (docs/PRETRAIN.md), or set `checkpoints` "
                         "to where it is", True))  # fmt: skip
    return problems


def _arch_and_subset(values: Mapping[str, Any], keys: tuple[str, ...]) -> tuple[str | None, str | None]:
    """The architecture and ImageNet subset a ``checkpoints: {arch: {source label: path}}`` entry names (with the
    source label's ``[dataset, subset]`` in ``sources``); None where it cannot tell."""
    if len(keys) != 2:
        return None, None
    source = (values.get("sources") or {}).get(keys[-1])
    subset = str(source[1]) if isinstance(source, list | tuple) and len(source) == 2 else None
    return keys[0], subset


def _checkpoint_mismatch(info: Mapping[str, Any], arch: str | None, subset: str | None, image_size: Any) -> str | None:
    """Why a readable checkpoint record does not fit (None: it does): unfinished, another architecture, another
    subset, another image size."""
    config = info["config"]
    if not info["done"]:
        return (f"{info['path']} is unfinished: epoch {info['epoch']} of {config.get('epochs')} "
                "(load_pretrained refuses it): resume it with the same command, which continues from it")  # fmt: skip
    if arch is not None and config.get("arch") != arch:
        return f"{info['path']} is a {config.get('arch')} checkpoint, not a {arch}"
    where = config.get("subset") if config.get("dataset") == "imagenet" else config.get("domain")
    if subset is not None and where != subset:
        dataset = str(config.get("dataset")).replace("imagenet", "ImageNet")
        return f"{info['path']} was pre-trained on {dataset}-{where}, not on ImageNet-{subset}"
    if image_size is not None and config.get("image_size") != int(image_size):
        return (f"{info['path']} was pre-trained at {config.get('image_size')} px but the notebook's image_size is "
                f"{int(image_size)} (T2T-ViT's positional embedding fixes the size): set image_size to "
                f"{config.get('image_size')} or pre-train at {int(image_size)} px")  # fmt: skip
    return None


def _pretrain_hint(arch: str | None, subset: str | None, folder: Path) -> str:
    """The torchrun command that makes (or resumes) a checkpoint: this machine's GPU count, the recipe's epochs, an
    absolute ``--out``; with how long it takes (:func:`repalign.run.durations.pretraining`)."""
    from repalign.networks import pretrain  # lazily: torch only when a checkpoint is missing

    if arch is None or subset is None:
        return "pre-train it first with repalign.networks.pretrain"
    gpus = _gpu_count()
    epochs = _recipe_epochs(arch)
    try:
        cmd = pretrain.command(arch, subset, str(folder.resolve()), nproc=gpus, epochs=epochs)
    except ValueError:
        return "pre-train it first with repalign.networks.pretrain"
    took = durations.pretraining(arch, subset, epochs=epochs, gpus=gpus)
    about = durations.format_seconds(took.seconds)
    return f"make it with: {cmd} (pre-training takes about {about} on {gpus} GPU(s); {took.note})"


def _gpu_count() -> int:
    """GPUs torch sees here (at least 1: the command is for a GPU node)."""
    import torch  # paper-check only

    return max(1, torch.cuda.device_count())


def _device_kind() -> str:
    """``"cuda"`` where torch sees a GPU, else ``"cpu"`` (the package's device rule for ``device: auto``)."""
    try:
        import torch  # paper-check only
    except ImportError:
        return "cpu"
    return "cuda" if torch.cuda.is_available() else "cpu"


def paper_check(
    scale: str = "paper", notebooks: Sequence[str] = ()
) -> tuple[dict[str, tuple[str, list[str], bool]], str]:
    """What ``make paper`` would miss and the device it will use.

    Returns ``{thing: (message naming the fix, [notebooks that need it], blocking)}`` for each data set, weight
    file or checkpoint that is not in place (empty when everything is) and a line naming the device. ImageNet
    weights that torchvision fetches on first use are not blocking, but for a network a notebook starts from
    (``start: imagenet``). The sources of a notebook's checkpoints (ImageNet) are needed only when a checkpoint is.
    Looks at each data set once (its source's check; no full load).
    """

    names = [params.resolve_notebook(n).stem for n in notebooks] or params.list_notebooks()
    missing: dict[str, tuple[str, list[str], bool]] = {}
    checked: dict[str, str | None] = {}
    for stem in names:
        values = {**params.defaults(stem), **params.scale_parameters(stem, scale)}
        weights = _check_weights(values, notebooks_dir())
        # a notebook that reads checkpoints needs their sources (ImageNet) only to pre-train a missing one
        pretraining = any(name.startswith("checkpoint ") for name, _, _ in weights)
        skip = ("sources",) if values.get("checkpoints") and not pretraining else ()
        found = []
        for name, opts in _data_needs(values, skip):
            if name not in checked:
                checked[name] = _check_dataset(name, opts)
            if checked[name]:
                found.append((name, str(checked[name]).removeprefix(f"{name}: "), True))
        for name, message, blocking in found + weights:
            users = missing.setdefault(name, (message, [], blocking))[1]
            if stem not in users:
                users.append(stem)
    return missing, _device_line(names, scale)


def _device_line(names: Sequence[str], scale: str) -> str:

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


def _duration_lines(names: Sequence[str], scale: str) -> list[str]:
    """One line per notebook with its predicted duration on this machine's device (:func:`repalign.run.durations.
    predict`; a notebook that fixes ``device`` is predicted there), one per checkpoint its parameters name with the
    pre-training's duration on this machine's GPUs, and the total."""
    lines, total, kind = [], 0.0, _device_kind()
    pretraining: dict[tuple[str, str], float] = {}
    for stem in names:
        values = {**params.defaults(stem), **params.scale_parameters(stem, scale)}
        fixed = values.get("device")
        device = kind if fixed in (None, "auto") else ("cuda" if str(fixed).startswith("cuda") else "cpu")
        guess = durations.predict(stem, values, device)
        if guess is not None:
            total += guess.seconds
            lines.append(f"  {stem}: about {durations.format_seconds(guess.seconds)} on {device}")
        for keys, _ in _checkpoint_paths(values, notebooks_dir()):
            arch, subset = _arch_and_subset(values, keys)
            if arch and subset and (arch, subset) not in pretraining:
                epochs = _recipe_epochs(arch)
                pretraining[arch, subset] = durations.pretraining(
                    arch, subset, epochs=epochs, gpus=_gpu_count()
                ).seconds
    lines.append(
        f"  total: about {durations.format_seconds(total)} (the rates and their sources: repalign.run.durations)"
    )
    for (arch, subset), seconds in pretraining.items():
        lines.append(f"  pre-training {arch} on ImageNet-{subset}: about {durations.format_seconds(seconds)} on "
                     f"{_gpu_count()} GPU(s) (once; not part of make paper)")  # fmt: skip
    return lines


def _recipe_epochs(arch: str) -> int | None:
    """The epochs of ``arch``'s pre-training recipe (:data:`repalign.networks.pretrain.RECIPES`)."""
    from repalign.networks import pretrain  # lazily: torch only when a notebook names checkpoints

    return pretrain.RECIPES.get(arch, {}).get("epochs")


def _paper_check(args: argparse.Namespace) -> int:

    missing, device = paper_check(args.scale, args.notebooks)
    print(device)
    names = [params.resolve_notebook(n).stem for n in args.notebooks] or params.list_notebooks()
    print(f"predicted durations at the {args.scale} scale (order of magnitude):")
    print("\n".join(_duration_lines(names, args.scale)))
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
    fetchable = [n for n in blocking if n in data.available() and data.source(n).kind == "downloadable"]
    if fetchable:
        print(f'the downloadable data sets in one go: make data DATASETS="{" ".join(fetchable)}"')
    return 1
