"""What made a result: package versions, platform and numerical settings, recorded in every result file written.

Only what can change the numbers goes in, each read one way whatever the run did before: the operating system and
architecture (not the kernel build, which differs between machines that compute the same bytes), torch's installed
version with its build tag read from the installed files (a run served from the cache never imports torch, one that
trains does; both record the same), and the numerical code paths in effect (:func:`repalign.core.numerics.in_effect`).
"""

from __future__ import annotations

import ast
import datetime as _dt
import importlib.util
import platform
from pathlib import Path
from typing import Any

import numpy as np

from repalign.core.numerics import in_effect
from repalign.core.version import __version__

__all__ = [
    "provenance",
    "installed_torch_version",
]


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
    info.update(extra)
    return info
