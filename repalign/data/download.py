"""Fetching data sets: ``python -m repalign.data fetch NAME ...`` (``make data DATASETS="..."``) and :func:`fetch`.

What fetching means depends on the source's kind (:data:`repalign.data.base.SOURCE_KINDS`): a downloadable
source (MNIST, Fashion-MNIST, CIFAR-10/100, UCI CT Position) is downloaded into the data root, every split of it,
verified and moved into place whole; a manual one (Office-31, ImageNet) is looked at and, when it is missing,
the answer says where to put it and how; embedded, bundled and generated sources need nothing. Nothing else
downloads: :func:`repalign.data.load` only reads, unless called with ``download=True``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from repalign.data import bundled, embedded, folders, generated, torchvision, uci  # noqa: F401  (they register)
from repalign.data.base import OFFLINE_KINDS, available, load, source, sources

__all__ = [
    "EMBEDDED",
    "DOWNLOADABLE",
    "fetch",
    "main",
]

#: The built-in data sets whose data never need a download (embedded, bundled or generated), from their sources.
EMBEDDED = tuple(s.name for s in sources(*OFFLINE_KINDS))
#: The built-in data sets :func:`fetch` downloads, from their sources.
DOWNLOADABLE = tuple(s.name for s in sources("downloadable"))


def fetch(names: Sequence[str], root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Make sure each named data set is on disk, downloading what is missing; returns a status line per name.

    Downloadable sources are loaded with ``download=True`` for each of their splits (``"ok (<path>)"``); manual
    ones are checked (``"present at <path>"``, or ``"no automatic download for <name>: <what is missing and the
    fix>"``); embedded, bundled and generated ones need nothing (``"<kind> (nothing to fetch)"``).

    Raises:
        ValueError: an unknown name.
        ConnectionError: a download failed (names the manual fix).
    """
    status: dict[str, str] = {}
    for name in names:
        src = source(name)
        if src.kind in OFFLINE_KINDS:
            status[name] = f"{src.kind} (nothing to fetch)"
        elif src.kind == "downloadable":
            for split in src.splits:
                ds = load(src.name, split=split, root=root, download=True)
            status[name] = f"ok ({ds.info.extra.get('path', '')})"
        else:
            problem = src.check(root)
            status[name] = (
                f"present at {src.where(root)}"
                if problem is None
                else f"no automatic download for {src.name}: {problem.removeprefix(f'{src.name}: ')}"
            )
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repalign.data fetch NAME ...`` (alias ``download``, used by ``make data``) | ``list``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m repalign.data", description="repalign data sets")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", aliases=["download"], help="download data sets into the data root")
    f.add_argument("names", nargs="+")
    f.add_argument("--root", default=None)
    sub.add_parser("list", help="list data set names with their kind and what they are")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        for name in available():
            src = source(name)
            alias = "" if src.name == name else f" (a selection of {src.name})"
            print(f"{name:24s} {src.kind:12s} {src.description}{alias}")
        return 0
    rc = 0
    for name in args.names:
        try:
            for k, v in fetch([name], args.root).items():
                print(f"{k}: {v}")
        except (OSError, ValueError) as err:  # ConnectionError and FileNotFoundError are OSErrors
            print(f"{name}: FAILED: {err}")
            rc = 1
    return rc


if __name__ == "__main__":
    raise SystemExit(main())
