"""``repalign paper-check``: what ``make paper`` needs that is not in place (data sets, weights, checkpoints), and the device."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repalign import data
from repalign.core.paths import notebooks_dir
from repalign.run import params

__all__ = [
    "paper_check",
]

# ------------------------------------------------------------------------------------------------ paper preflight
#: parameters that name data sets (a name, a list, ``{label: name}``, ``{label: [name, subset]}`` or
#: ``{label: {name: ..., ...}}``); names that are not data sets of :func:`repalign.data.available` are ignored
DATA_KEYS = ("dataset", "datasets", "sources", "targets", "source_datasets", "target_datasets")
#: parameters that name pre-trained networks whose ImageNet weights torchvision downloads on first use
NETWORK_KEYS = ("pretrained", "networks")


def _data_needs(values: Mapping[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(data set name, load options) named by a notebook's parameters (:data:`DATA_KEYS`, ``*_dataset``)."""

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
    """None when data set ``name`` is in place under the data root, else its source's message naming the path and
    the fix (:meth:`repalign.data.Source.check`: a look at the files, never a full load)."""
    return data.source(name).check(data.data_root(), **options)


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
    source label's ``[dataset, subset]`` in ``sources``), or a pointer to repalign.networks.pretrain when it cannot tell."""
    from repalign.networks import pretrain  # lazily: torch only when a checkpoint is missing

    source = (values.get("sources") or {}).get(keys[-1]) if len(keys) == 2 else None
    if not isinstance(source, list | tuple) or len(source) != 2:
        return "pre-train it first with repalign.networks.pretrain"
    out = os.path.relpath(path.resolve(), Path.cwd())
    try:
        return "make it with: " + pretrain.command(keys[0], str(source[1]), out)
    except ValueError:
        return "pre-train it first with repalign.networks.pretrain"


def paper_check(
    scale: str = "paper", notebooks: Sequence[str] = ()
) -> tuple[dict[str, tuple[str, list[str], bool]], str]:
    """What ``make paper`` would miss and the device it will use.

    Returns ``{thing: (message naming the fix, [notebooks that need it], blocking)}`` for each data set or weight
    file that is not in place (empty when everything is) and a line naming the device. ImageNet weights that
    torchvision fetches on first use are not blocking. Looks at each data set once (its source's check; no full load).
    """

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
        for name, message, blocking in found + _check_weights(values, notebooks_dir()):
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


def _paper_check(args: argparse.Namespace) -> int:

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
    fetchable = [n for n in blocking if n in data.available() and data.source(n).kind == "downloadable"]
    if fetchable:
        print(f'the downloadable data sets in one go: make data DATASETS="{" ".join(fetchable)}"')
    return 1
