"""Progress bars that read well in a terminal, a live notebook, and a notebook stored by papermill."""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "progress_bar",
]


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """A tqdm bar that reads well wherever it runs: ``$REPALIGN_PROGRESS`` ``"off"`` (none), ``"text"`` (plain text,
    at most one update every 10 s) or ``"auto"`` (the default: tqdm.auto, a widget in a live Jupyter session;
    papermill and nbval runs started by ``python -m repalign run`` / ``make`` set ``text`` / ``off``, so stored
    notebooks hold no widget frozen at 0 %). ``kwargs`` go to tqdm (``disable=True`` still disables)."""
    mode = os.environ.get("REPALIGN_PROGRESS", "auto")
    if mode == "off":
        kwargs["disable"] = True
    if mode == "text":
        from tqdm import tqdm

        kwargs.setdefault("mininterval", 10.0)
        kwargs.setdefault("ascii", True)
        return tqdm(iterable, **kwargs)
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm(iterable, **kwargs)


def _write(text: str, **kwargs: Any) -> None:
    """``tqdm.write``: print a line without breaking a running bar."""
    from tqdm import tqdm

    tqdm.write(text, **kwargs)


progress_bar.write = _write  # type: ignore[attr-defined]  # a drop-in for `from tqdm.auto import tqdm`
