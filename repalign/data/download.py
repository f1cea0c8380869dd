"""TODO docstring (from data)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from repalign.data.base import _ALIASES, _LOADERS, EMBEDDED, available, data_root, load

__all__ = [
    "fetch",
    "main",
]

# --------------------------------------------------------------------------------------------------------------
# Command line: python -m repalign.data fetch NAME ...
# --------------------------------------------------------------------------------------------------------------
DOWNLOADABLE = ("mnist", "fashion_mnist", "cifar10", "cifar100", "ct_position")


def fetch(names: Sequence[str], root: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """Make sure each named data set is on disk (downloading what is missing); returns a status per name."""
    status: dict[str, str] = {}
    for name in names:
        base = _ALIASES.get(name, (name, {}))[0]
        if base in EMBEDDED:
            status[name] = "embedded (nothing to fetch)"
        elif base in DOWNLOADABLE:
            splits = ("train",) if base == "ct_position" else ("train", "test")
            for s in splits:
                ds = load(base, split=s, root=root, download=True)
            status[name] = f"ok ({ds.info.extra.get('path', '')})"
        elif base in _LOADERS:  # office31, imagenet: the user provides them
            root_path = Path(root).expanduser() if root is not None else data_root()
            where = root_path / base
            ok = where.is_dir() and any(where.iterdir())
            status[name] = (
                f"present at {where}"
                if ok
                else f"no automatic download for {base}: put it at {where} "
                + ("({amazon,dslr,webcam}/<class>/*.jpg)" if base == "office31" else "({train,val}/<wnid>/*.JPEG)")
            )
        else:
            raise ValueError(f"unknown data set {name!r}; available: {', '.join(available())}")
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m repalign.data fetch NAME ...`` (alias ``download``, used by ``make data``) | ``list``."""
    import argparse

    ap = argparse.ArgumentParser(prog="python -m repalign.data", description="repalign data sets")
    sub = ap.add_subparsers(dest="cmd", required=True)
    f = sub.add_parser("fetch", aliases=["download"], help="download data sets into the data root")
    f.add_argument("names", nargs="+")
    f.add_argument("--root", default=None)
    sub.add_parser("list", help="list data set names")
    args = ap.parse_args(argv)
    if args.cmd == "list":
        print("\n".join(available()))
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
