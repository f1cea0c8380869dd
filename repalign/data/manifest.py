"""Generated files in real on-disk formats: the manifest of a rehearsal data root.

``make rehearsal`` (:mod:`repalign.run.rehearsal`) writes made-up data in the exact layouts of the paper's data sets
(CIFAR pickles, MNIST IDX, the CT csv, ImageNet and Office-31 folders) so that every paper-scale code path runs
before anyone spends a GPU on it. It also writes :data:`MANIFEST_NAME` into that data root: each generated file's
path and sha256, per data set. Two loaders honour it, there only:

- :func:`repalign.data.load` describes such a data set as generated (``coverage="generated"``, "rehearsal on
  generated data"), never as real, and does not warn that it is a partial copy (:func:`mark_generated`);
- torchvision's CIFAR md5 check, which made-up files cannot pass, is waived for the files the manifest vouches
  for (:func:`vouches_for`): listed, and with exactly the hashed bytes.

Why this cannot weaken a real user's run: a real, intact copy passes torchvision's own check and never asks the
manifest; a damaged real copy is not vouched for (its bytes are not those of a generated file); and whatever the
manifest vouches for is labelled generated in every claim file. A data root without the file is untouched.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from repalign.core.files import atomic_write_text, sha256_file

__all__ = [
    "MANIFEST_NAME",
    "FORMAT",
    "GENERATED_NOTE",
    "write_manifest",
    "read_manifest",
    "recipe",
    "generated_sources",
    "vouches_for",
    "mark_generated",
]

#: the manifest's file name, at the top of a data root
MANIFEST_NAME = "REHEARSAL_MANIFEST.json"
FORMAT = "repalign.rehearsal-data/1"
#: what a generated data set says it stands in for (:meth:`repalign.data.DatasetInfo.describe` prints it)
GENERATED_NOTE = "rehearsal on generated data in its on-disk format"


def write_manifest(
    root: str | os.PathLike[str],
    files: Mapping[str, Iterable[str | os.PathLike[str]]],
    recipes: Mapping[str, str] | None = None,
) -> Path:
    """Write the manifest of data root ``root``: ``files`` maps a data set's name to its generated files (paths
    relative to ``root``), each recorded with its sha256; ``recipes`` names how each was generated (compared by
    :func:`recipe` to tell whether a copy is current). Entries already in the manifest for other data sets stay.

    Returns the manifest's path.
    """
    base = Path(root)
    current = read_manifest(base) or {"format": FORMAT, "sources": {}}
    current.setdefault("recipes", {})
    for name, paths in files.items():
        current["sources"][name] = {str(Path(p)): sha256_file(base / p) for p in sorted(map(str, paths))}
        current["recipes"][name] = (recipes or {}).get(name)
    current["note"] = (
        "written by repalign.run.rehearsal: the files listed are generated, not the real data sets; "
        "repalign labels them so and waives torchvision's md5 check for these exact bytes only"
    )
    return atomic_write_text(base / MANIFEST_NAME, json.dumps(current, indent=1, sort_keys=True) + "\n")


def read_manifest(root: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The manifest of data root ``root``, or None when there is none (or it is not one of ours)."""
    path = Path(root) / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("format") != FORMAT or not isinstance(record.get("sources"), dict):
        return None
    return record


def recipe(root: str | os.PathLike[str], name: str) -> str | None:
    """How data set ``name`` of the manifest of ``root`` was generated (None when not recorded)."""
    value = ((read_manifest(root) or {}).get("recipes") or {}).get(name)
    return value if isinstance(value, str) else None


def generated_sources(root: str | os.PathLike[str]) -> set[str]:
    """Names of the data sets the manifest of ``root`` lists as generated (empty without a manifest)."""
    record = read_manifest(root)
    return set(record["sources"]) if record else set()


def vouches_for(root: str | os.PathLike[str], name: str, paths: Iterable[str | os.PathLike[str]]) -> bool:
    """Whether the manifest of ``root`` lists every one of ``paths`` (relative to ``root``) under data set ``name``
    with the sha256 the file has now. False without a manifest, for an unlisted file or for changed bytes."""
    record = read_manifest(root)
    listed = (record or {}).get("sources", {}).get(name) or {}
    base = Path(root)
    wanted = [str(Path(p)) for p in paths]
    return bool(wanted) and all(
        p in listed and (base / p).is_file() and sha256_file(base / p) == listed[p] for p in wanted
    )


def mark_generated(ds: Any, root: str | os.PathLike[str], name: str) -> bool:
    """Label dataset ``ds`` (a :class:`repalign.data.Dataset`, changed in place) as generated when the manifest of
    ``root`` lists data set ``name``; returns whether it did."""
    if name not in generated_sources(root):
        return False
    title = ds.info.title or name
    ds.info = dataclasses.replace(
        ds.info, coverage="generated", is_standin=True, standin_for=f"{title} ({GENERATED_NOTE})", total=None
    )
    return True
