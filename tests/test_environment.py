"""The three dependency lists agree: pyproject (ranges for users), environment.yml (conda), the lock (make)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib
import yaml

ROOT = Path(__file__).resolve().parents[1]


def _name(req: str) -> str:
    return re.split(r"[<>=!~\[; ]", req.strip(), maxsplit=1)[0].lower().replace("_", "-")


def _pyproject_requirements() -> list[str]:
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(meta["dependencies"])
    for extra in meta["optional-dependencies"].values():
        reqs += extra
    return sorted({r for r in reqs if _name(r) != "repalign"})  # extras that name other extras (all = [...]) skipped


def test_environment_yml_matches_pyproject():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    conda_reqs = sorted(r.replace(" ", "") for r in pip if not r.startswith("-e"))
    assert conda_reqs == sorted(r.replace(" ", "") for r in _pyproject_requirements())
    assert "-e ." in pip


def test_lock_pins_every_dependency_exactly():
    lock = [
        ln.strip()
        for ln in (ROOT / "requirements-lock.txt").read_text().splitlines()
        if ln.strip() and not ln.startswith("#")
    ]
    locked = {_name(r): r for r in lock}
    for req in _pyproject_requirements():
        assert _name(req) in locked, f"{req} is in pyproject.toml but not in requirements-lock.txt"
        assert "==" in locked[_name(req)], f"requirements-lock.txt must pin {_name(req)} exactly"


def test_ruff_clean():
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed in this environment")
    out = subprocess.run(
        [str(ruff), "check", "repalign", "tests", "benchmarks", "scripts", "notebooks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    fmt = subprocess.run(
        [str(ruff), "format", "--check", "repalign", "tests", "benchmarks", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, "run `make lint` / `ruff format`: " + fmt.stdout + fmt.stderr
