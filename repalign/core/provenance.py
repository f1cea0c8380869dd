"""What made a result: package versions and platform, recorded in every result file the project writes."""

from __future__ import annotations

import contextlib
import datetime as _dt
import platform
from typing import Any

import numpy as np

from repalign.core.version import __version__

__all__ = [
    "provenance",
]


def provenance(*, timestamp: bool = True, **extra: Any) -> dict[str, Any]:
    """What made a result: package versions, platform and (``timestamp``) a UTC timestamp, plus ``extra`` entries.

    Every result file the project writes embeds this dictionary. Files a user re-creates and compares byte for
    byte (claim verdicts, ``make replicate``'s outputs) pass ``timestamp=False``: same inputs, same bytes.
    """

    info: dict[str, Any] = {
        "repalign": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "platform": platform.platform(),
    }
    if timestamp:
        info["created_utc"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    import sys

    if "torch" in sys.modules:  # with its build tag (e.g. 2.14.1+cu130)
        info["torch"] = sys.modules["torch"].__version__
    else:  # the installed version, without importing torch (seconds, and heavy) for a NumPy-only measure
        with contextlib.suppress(ImportError):
            from importlib.metadata import version

            info["torch"] = version("torch")
    info.update(extra)
    return info
