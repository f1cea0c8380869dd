"""Torch files read without running code: ``torch.load(weights_only=True)`` with one clear error per failure.

Every file repalign reads with torch (a user's ``.pt`` features or targets, ``--weights`` / ``weights_path``,
``pretrain --init``, a pre-training checkpoint) goes through :func:`load_torch_file`. ``weights_only=True`` makes
torch refuse any pickled Python object other than tensors and plain containers, so a planted file cannot run code;
this module turns torch's long multi-paragraph errors into one line that names the file, what is wrong with it and
what to do.
"""

from __future__ import annotations

import os
import pickle
import re
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

__all__ = ["load_torch_file"]

#: what torch (and the zip and pickle readers under it) raise on a file that is not a readable torch file
_DAMAGED = (RuntimeError, EOFError, OSError, zipfile.BadZipFile, UnicodeDecodeError, ValueError, KeyError, IndexError)


def _first_line(err: BaseException) -> str:
    """The first non-empty line of an error's message (torch's run to paragraphs)."""
    lines = [ln.strip() for ln in str(err).splitlines() if ln.strip()]
    return lines[0] if lines else type(err).__name__


def load_torch_file(
    path: str | os.PathLike[str], *, what: str = "file", fix: str = "", map_location: Any = "cpu"
) -> Any:
    """``torch.load(path, weights_only=True)``, or a one-line ``ValueError`` naming the file and the problem.

    Args:
        path: the file.
        what: what the file is meant to be, for the messages (``"weights file"``, ``"checkpoint"``).
        fix: what to do when the file cannot be used (appended to the message; a default names the usual fix).
        map_location: ``torch.load``'s argument.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file holds pickled Python objects (refused: they could run code), is truncated or damaged,
            is not a torch file, or cannot be read.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such {what}")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of files it then refuses anyway
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        blocked = re.search(r"GLOBAL ([\w.]+)", str(err))
        if blocked:
            raise ValueError(
                f"{path}: refused: the {what} holds pickled Python objects ({blocked.group(1)}), which repalign "
                f"never unpickles (they can run code); {fix or 'save plain tensors (a tensor or a dict of tensors)'}"
            ) from None
        raise ValueError(_damaged(path, what, err, fix)) from None
    except (PermissionError, IsADirectoryError) as err:
        raise ValueError(f"{path}: cannot read the {what} ({err.strerror or _first_line(err)})") from None
    except _DAMAGED as err:  # torch's zip reader says OSError(EINVAL) on some truncated files
        raise ValueError(_damaged(path, what, err, fix)) from None


def _damaged(path: Path, what: str, err: BaseException, fix: str) -> str:
    """The message for a file torch cannot read: empty, truncated, damaged or not a torch file."""
    size = path.stat().st_size if path.exists() else 0
    detail = "the file is empty" if size == 0 else _first_line(err).split(". ")[0][:160]
    return (
        f"{path}: not a readable torch {what} (truncated, damaged or not written by torch.save: {detail}); "
        f"{fix or 'write it again with torch.save'}"
    )
