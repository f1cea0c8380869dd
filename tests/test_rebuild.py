"""Results and rebuilds keyed by the code they depend on (docs/ARCHITECTURE.md; repalign.core.closure).

The closure reader on made-up packages (every form of import, the packages above a module, declared data files,
notebooks), and the rebuild rule on a temporary copy of the repository whose ``build/replicate`` notebooks are made
up to date by setting their times, so that ``make -n`` says what would run and no notebook ever runs.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from repalign.core import closure

ROOT = closure.ROOT
PKG = closure.PACKAGE
CLOSURE_PY = Path(closure.__file__)


def write_package(root: Path, files: dict[str, str]) -> Path:
    """A made-up repalign package below ``root``: {path relative to the package folder: source}."""
    for name, source in files.items():
        path = root / PKG / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


@pytest.fixture
def toy(tmp_path: Path) -> Path:
    """A package whose modules use each form of import (a: the application; the rest its dependencies)."""
    return write_package(
        tmp_path,
        {
            "__init__.py": "from repalign.base import core  # the package's own __init__ runs first\n",
            "base/__init__.py": "",
            "base/core.py": "import os\n",
            "base/extra.py": "",
            "app/__init__.py": "",
            "app/a.py": (
                "from typing import TYPE_CHECKING\n"
                "import repalign.lib.plain as plain\n"
                "from repalign.lib import sub, helper_function\n"
                "from . import sibling\n"
                "if TYPE_CHECKING:\n"
                "    from repalign.lib import typing_only\n"
                "def f():\n"
                "    from repalign.lib.lazy import thing  # lazily: only when f runs\n"
            ),
            "app/sibling.py": "from .. import base\n",
            "app/unused.py": "",
            "lib/__init__.py": "def helper_function():\n    pass\n",
            "lib/plain.py": "",
            "lib/sub.py": "",
            "lib/lazy.py": "from repalign.base.extra import *\n",
            "lib/typing_only.py": "",
            "lib/data.py": 'RESOURCES = ("resources/table.csv", "resources/*.npz")\n',
            "resources/table.csv": "a,b\n",
            "resources/one.npz": "1",
            "resources/two.npz": "2",
        },
    )


# --------------------------------------------------------------------------------------------------------------
# the closure reader
# --------------------------------------------------------------------------------------------------------------
def test_imports_name_the_modules_each_statement_imports(toy: Path) -> None:
    found = {(i.target, i.in_function, i.type_checking) for i in closure.imports(f"{PKG}.app.a", toy)}
    assert found == {
        (f"{PKG}.lib.plain", False, False),  # import repalign.x as z
        (f"{PKG}.lib.sub", False, False),  # from repalign.x import y, y a module
        (f"{PKG}.lib", False, False),  # … and a name that is not a module: the package itself
        (f"{PKG}.app.sibling", False, False),  # a relative import
        (f"{PKG}.lib.typing_only", False, True),
        (f"{PKG}.lib.lazy", True, False),
    }
    assert [i.target for i in closure.imports(f"{PKG}.app.sibling", toy)] == [f"{PKG}.base"]


def test_the_closure_follows_every_import_that_runs_and_the_packages_above(toy: Path) -> None:
    got = closure.closure([f"{PKG}.app.a"], toy)
    expected = ["", ".app", ".app.a", ".app.sibling", ".base", ".base.core", ".base.extra", ".lib", ".lib.lazy"]
    expected += [".lib.plain", ".lib.sub"]
    assert got == sorted(PKG + e for e in expected)  # no typing_only, no unused, no data
    assert closure.closure([f"{PKG}.base.core"], toy) == [PKG, f"{PKG}.base", f"{PKG}.base.core"]
    with pytest.raises(ModuleNotFoundError):
        closure.closure([f"{PKG}.nowhere"], toy)


def test_declared_resources_join_the_files_and_a_missing_one_is_an_error(toy: Path) -> None:
    files = {p.relative_to(toy / PKG).as_posix() for p in closure.closure_files([f"{PKG}.lib.data"], toy)}
    assert {"resources/table.csv", "resources/one.npz", "resources/two.npz", "lib/data.py"} <= files
    assert not any(f.startswith("resources/") for f in map(str, closure.closure_files([f"{PKG}.app.a"], toy)))
    write_package(toy, {"lib/data.py": 'RESOURCES = ("resources/tabel.csv",)\n'})
    with pytest.raises(FileNotFoundError, match="tabel.csv"):
        closure.closure_files([f"{PKG}.lib.data"], toy)
    write_package(toy, {"lib/data.py": 'NAME = "table.csv"\nRESOURCES = ("resources/" + NAME,)\n'})
    with pytest.raises(ValueError, match="literal tuple"):
        closure.closure_files([f"{PKG}.lib.data"], toy)


def test_the_digest_sees_every_byte_of_the_closure_and_nothing_else(toy: Path) -> None:
    def version() -> str:
        return closure.digest(closure.closure_files([f"{PKG}.app.a"], toy), toy)

    before = version()
    write_package(toy, {"app/unused.py": "x = 1\n", "lib/typing_only.py": "x = 1\n", "resources/table.csv": "c\n"})
    assert version() == before
    write_package(toy, {"base/extra.py": "x = 1\n"})  # reached only through an in-function import and a star
    assert version() != before
    before = version()
    write_package(toy, {"__init__.py": "from repalign.base import core  # the package's own __init__ runs first!\n"})
    assert version() != before


def test_notebook_imports_are_read_from_code_cells_only(toy: Path, tmp_path: Path) -> None:
    cells = [
        {"cell_type": "markdown", "source": ["import repalign.lib.plain\n"]},
        {"cell_type": "code", "source": ["%matplotlib inline\n", "!ls\n", "from repalign.lib import sub\n"]},
        {"cell_type": "code", "source": "import numpy as np\nimport repalign\n"},
    ]
    notebook = tmp_path / "nb.ipynb"
    notebook.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    assert closure.notebook_modules(notebook, toy) == [PKG, f"{PKG}.lib.sub"]
    cells.append({"cell_type": "code", "source": "def broken(:\n"})
    notebook.write_text(json.dumps({"cells": cells}))
    with pytest.raises(SyntaxError, match="code cell 2"):
        closure.notebook_modules(notebook, toy)


def test_closure_runs_on_a_bare_python_and_imports_only_the_standard_library() -> None:
    tree = ast.parse(CLOSURE_PY.read_text(encoding="utf-8"))
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    if hasattr(sys, "stdlib_module_names"):
        assert imported - {"__future__"} <= set(sys.stdlib_module_names), imported
    # -S: no site-packages (no NumPy, no repalign install); -I: not even the script's folder on the path
    run = [sys.executable, "-I", "-S", str(CLOSURE_PY), "--digest", f"{PKG}.run.cli"]
    out = subprocess.run(run, capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.returncode == 0, out.stderr
    assert re.fullmatch(r"[0-9a-f]{64}\n", out.stdout)


def test_every_module_that_reads_package_data_declares_it() -> None:
    for module in closure.package_modules():
        source = closure.module_file(module).read_text(encoding="utf-8")
        if re.search(r"resources\.files\(", source):
            assert closure.resources(module), f"{module} reads package data but declares no RESOURCES"


# --------------------------------------------------------------------------------------------------------------
# the rebuild rule, on a copy of the repository
# --------------------------------------------------------------------------------------------------------------
CODE_VERSIONS = """
import json, sys
from repalign.core import cache, closure
recipes = [m for m in closure.package_modules() if m.startswith("repalign.recipes.")]
print(json.dumps({"file": cache.__file__, "keys": {m: cache.code_version(m) for m in recipes}}))
"""


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the checkout: sources long ago, executed notebooks newer, an installed (stamped) environment."""
    copy = tmp_path_factory.mktemp("repo")
    skip = shutil.ignore_patterns("__pycache__", ".*")
    for folder in ("repalign", "notebooks"):
        shutil.copytree(ROOT / folder, copy / folder, ignore=skip)
    for name in ("Makefile", "pyproject.toml", "requirements-lock.txt"):
        shutil.copy(ROOT / name, copy / name)
    now = time.time()
    for path in copy.rglob("*"):
        os.utime(path, (now - 1000, now - 1000))
    (copy / "venv").mkdir()
    (copy / "venv" / ".repalign-installed").touch()
    (copy / "build" / "replicate").mkdir(parents=True)
    for notebook in (copy / "notebooks").glob("[0-9][0-9]_*.ipynb"):
        (copy / "build" / "replicate" / notebook.name).touch()
    for path in [copy / "venv" / ".repalign-installed", *(copy / "build" / "replicate").iterdir()]:
        os.utime(path, (now - 500, now - 500))
    return copy


def make(repo: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES")}
    cmd = ["make", "--no-print-directory", *args, "VENV=venv"]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=repo, env=env, timeout=120)


def would_run(repo: Path, *goal: str) -> set[str]:
    """The notebooks ``make -n <goal>`` would run."""
    out = make(repo, "-n", *goal)
    assert out.returncode == 0, out.stderr
    return set(re.findall(r"-m repalign run (\S+) --scale replicate", out.stdout))


def recipe_keys(repo: Path) -> dict[str, str]:
    """``code_version`` of every recipe module, computed by the copy's own code in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", CODE_VERSIONS], capture_output=True, text=True, cwd=repo, timeout=120)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert Path(result["file"]).resolve().is_relative_to(repo.resolve()), "the copy's repalign was not the one used"
    assert result["keys"], "no recipe module found"
    return result["keys"]


def edit(path: Path, change: Callable[[str], str]) -> None:
    text = path.read_text(encoding="utf-8")
    assert change(text) != text
    path.write_text(change(text), encoding="utf-8")
    os.utime(path, (time.time() - 100, time.time() - 100))  # newer than the executed notebooks, not in the future


def test_a_docstring_edit_in_the_cli_reruns_nothing_and_an_edit_in_alignment_reruns_everything(repo: Path) -> None:
    notebooks = {p.stem for p in (repo / "notebooks").glob("[0-9][0-9]_*.ipynb")}
    assert make(repo, "help").returncode == 0
    assert not (repo / "build" / "deps.mk").exists(), "make help must not compute the notebooks' closures"
    assert make(repo, "-q", "notebooks", "SCALE=replicate").returncode == 0, "the copy should start up to date"
    keys = recipe_keys(repo)

    cli = repo / PKG / "run" / "cli.py"
    first_line = ast.get_docstring(ast.parse(cli.read_text(encoding="utf-8"))).splitlines()[0]
    edit(cli, lambda text: text.replace(first_line, first_line + " (docstring edited)", 1))
    assert make(repo, "-q", "notebooks", "SCALE=replicate").returncode == 0
    assert would_run(repo, "notebooks", "SCALE=replicate") == set()
    assert recipe_keys(repo) == keys

    alignment = repo / PKG / "measure" / "alignment.py"
    edit(alignment, lambda text: text + "\nEDITED = True  # a change to the code\n")
    assert make(repo, "-q", "notebooks", "SCALE=replicate").returncode != 0
    assert would_run(repo, "notebooks", "SCALE=replicate") == notebooks
    assert would_run(repo, "replicate") == notebooks  # the way make replicate goes: a make of notebooks inside
    changed = recipe_keys(repo)
    assert changed.keys() == keys.keys() and all(changed[m] != keys[m] for m in keys)
