"""What made a result: package versions, platform and numerical settings, recorded in every result file written.

Only what can change the numbers goes in, each read one way whatever the run did before: the operating system and
architecture (not the kernel build, which differs between machines that compute the same bytes), torch's installed
version with its build tag read from the installed files (a run served from the cache never imports torch, one that
trains does; both record the same), the numerical code paths in effect (:func:`repalign.core.numerics.in_effect`),
and the device (:func:`device_record`): the one ``device: auto`` resolves to on this machine, its GPU's name and the
precision the library computes each kind of work in there (:data:`PRECISION`). The device is read from the driver
(never by importing torch), not from what the run touched, so a run served from the cache records the device the
same way as the run that computed it. The pre-trained checkpoints a run used are recorded too
(:func:`note_checkpoint`, by whoever reads one: arch, epochs, image size, sha256), so a claim file names the weights
its numbers came from.
"""

from __future__ import annotations

import ast
import datetime as _dt
import functools
import importlib.util
import os
import platform
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.numerics import in_effect
from repalign.core.version import __version__

__all__ = [
    "provenance",
    "installed_torch_version",
    "PRECISION",
    "device_record",
    "visible_gpus",
    "note_checkpoint",
    "checkpoints_seen",
]

#: identities of the checkpoints used in this process, by path (:func:`note_checkpoint`)
_CHECKPOINTS: dict[str, dict[str, Any]] = {}

#: The precision of each kind of work, by the device type ``device: auto`` gives: the rule the library follows
#: (:func:`repalign.networks.finetune.precision`, :mod:`repalign.networks.probes`, :mod:`repalign.networks.linear`).
PRECISION: dict[str, dict[str, str]] = {
    "cpu": {
        "fine_tuning": "float32",
        "features": "float32",
        "probes": "float64 (scikit-learn lbfgs)",
        "linear_descent": "float64",
        "measure": "float64",
    },
    "cuda": {
        "fine_tuning": "bfloat16 autocast (float32 on a GPU without bfloat16)",
        "features": "float32 (convolutions as cuDNN allows: TF32 by default)",
        "probes": "float64 (torch L-BFGS on the GPU)",
        "linear_descent": "float64 on the GPU",
        "measure": "float64",
    },
}


def installed_torch_version() -> str | None:
    """torch's version with its build tag (``2.14.1+cu130``) from the installed ``torch/version.py``, without
    importing torch; None when torch is not installed."""
    try:
        spec = importlib.util.find_spec("torch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    file = Path(next(iter(spec.submodule_search_locations))) / "version.py"
    try:
        tree = ast.parse(file.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return None
    for node in tree.body:
        target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None
        if isinstance(node, ast.AnnAssign):
            target = node.target
        if isinstance(target, ast.Name) and target.id == "__version__" and isinstance(node.value, ast.Constant):
            return str(node.value.value)
    return None


def device_record() -> dict[str, Any]:
    """The device of ``device: auto`` here (``"cuda"`` when an installed CUDA build of torch has a GPU to use, else
    ``"cpu"``), the first GPU's name, the number of GPUs, and the precision of each kind of work there
    (:data:`PRECISION`).

    Read without importing torch (:func:`visible_gpus`), so that a run served from the cache, a command that never
    loads torch (``repalign measure``) and a run that trains record the same.
    """
    version = installed_torch_version()
    gpus = visible_gpus() if version is not None and "+cpu" not in version else ()
    kind = "cuda" if gpus else "cpu"
    return {"auto": kind, "gpu": gpus[0] if gpus else None, "gpus": len(gpus), "precision": dict(PRECISION[kind])}


@functools.lru_cache(maxsize=1)
def visible_gpus() -> tuple[str, ...]:
    """Names of the NVIDIA GPUs a process started here may use, without torch: the driver's
    ``/proc/driver/nvidia/gpus/*/information`` (``Model:`` lines), else ``nvidia-smi``; ``CUDA_VISIBLE_DEVICES``
    set to ``""`` or ``-1`` hides them all, a list keeps that many. Empty where there is no NVIDIA driver."""
    names = []
    for info in sorted(Path("/proc/driver/nvidia/gpus").glob("*/information")):
        try:
            lines = info.read_text().splitlines()
        except OSError:
            continue
        names += [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("Model:")]
    if not names and shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True,
                                 text=True, timeout=20, check=True).stdout  # fmt: skip
            names = [ln.strip() for ln in out.splitlines() if ln.strip()]
        except (OSError, subprocess.SubprocessError):
            names = []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        chosen = [v for v in visible.split(",") if v.strip()]
        names = [] if not chosen or chosen[0].strip() == "-1" else names[: len(chosen)]
    return tuple(names)


def note_checkpoint(identity: dict[str, Any]) -> None:
    """Record that this process used the checkpoint ``identity`` (a plain dict with at least ``path`` and
    ``sha256``, e.g. :func:`repalign.networks.pretrain.checkpoint_identity`): :func:`provenance` lists it."""
    if "path" not in identity or "sha256" not in identity:
        raise ValueError(f"a checkpoint identity needs 'path' and 'sha256', got keys {sorted(identity)}")
    _CHECKPOINTS[str(identity["path"])] = dict(identity)


def checkpoints_seen(*, reset: bool = False) -> list[dict[str, Any]]:
    """The checkpoints noted since the process started (or the last reset), sorted by path; ``reset`` forgets them
    afterwards."""
    seen = [dict(_CHECKPOINTS[k]) for k in sorted(_CHECKPOINTS)]
    if reset:
        _CHECKPOINTS.clear()
    return seen


def provenance(*, timestamp: bool = True, **extra: Any) -> dict[str, Any]:
    """What made a result: package versions, the operating system and architecture, the numerical settings in
    effect and (``timestamp``) a UTC timestamp, plus ``extra`` entries.

    Every result file the project writes embeds this dictionary. Files a user re-creates and compares byte for
    byte (claim verdicts, ``make replicate``'s outputs) pass ``timestamp=False``: same inputs, same bytes, on any
    machine whose numerical settings are the same.
    """

    info: dict[str, Any] = {
        "repalign": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": f"{platform.system()}-{platform.machine()}",
    }
    if timestamp:
        info["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    torch = installed_torch_version()
    if torch is not None:
        info["torch"] = torch
    info["numerics"] = in_effect()
    info["device"] = device_record()
    if _CHECKPOINTS:  # only runs that read pre-trained checkpoints carry the entry
        info["checkpoints"] = checkpoints_seen()
    info.update(extra)
    return info
