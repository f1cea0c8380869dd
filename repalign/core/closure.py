r"""The code closure of a module: the files of the package that importing it runs or reads, found statically.

The **closure** of a set of modules of the :mod:`repalign` package is the smallest set of modules that

- holds the modules themselves and every package above them (``import repalign.data.embedded`` runs
  ``repalign/__init__.py`` and ``repalign/data/__init__.py`` first), and
- holds every repalign module that a module of the set imports, at module level or inside a function (an
  import under ``if TYPE_CHECKING:`` never runs and does not count). ``import repalign.x as z``, ``from
  repalign.x import y`` (``repalign.x``, and ``repalign.x.y`` when ``y`` is a module) and relative imports are
  read from the source with :mod:`ast`; nothing is imported.

Its **files** are the modules' source files plus the data files they declare they read: a module-level
``RESOURCES = ("resources/<file>", ...)`` tuple of paths (or glob patterns) relative to the package folder, read
statically. The **digest** of a list of files is

.. math::  \mathrm{sha256}\bigl(\textstyle\bigoplus_{f\ \text{sorted}} \mathrm{path}(f) \,\|\, 0 \,\|\,
           |f| \,\|\, 0 \,\|\, \mathrm{bytes}(f)\bigr)

(``path`` relative to the folder that holds the package), so a change to any byte of the closure, a file added
to it or removed from it, changes the digest, and nothing outside it does.

Standard library only, and nothing from repalign: the ``Makefile`` runs this file with a bare ``python3`` (no
NumPy) to write the prerequisites of every notebook::

    python3 -I repalign/core/closure.py repalign.recipes.layerwise        # the closure's files, one a line
    python3 -I repalign/core/closure.py --digest repalign.recipes.layerwise
    python3 -I repalign/core/closure.py --make build/deps.mk --target 'build/replicate/{stem}.ipynb' \
        --with repalign.run.notebook notebooks/00_quickstart.ipynb     # make rules: notebook → its files
"""

from __future__ import annotations

import argparse
import ast
import functools
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PACKAGE",
    "ROOT",
    "Import",
    "module_file",
    "package_modules",
    "read_imports",
    "imports",
    "resources",
    "closure",
    "closure_files",
    "package_files",
    "digest",
    "notebook_modules",
    "make_rules",
    "main",
]

#: the package whose modules closures follow
PACKAGE = "repalign"
#: the folder that holds the package folder (the repository checkout, or site-packages)
ROOT = Path(__file__).resolve().parents[2]
#: the module-level name under which a module declares the data files it reads
RESOURCES_NAME = "RESOURCES"


@dataclass(frozen=True)
class Import:
    """One imported module of the package, as written in a module's source.

    ``target`` is the module the statement names (``from repalign.x import y`` names ``repalign.x.y`` when that is
    a module, else ``repalign.x``); the packages above it are implied, not listed. ``line``/``end_line`` span the
    statement; ``in_function`` is true inside a ``def``; ``type_checking`` under ``if TYPE_CHECKING:``.
    """

    target: str
    line: int
    end_line: int
    in_function: bool
    type_checking: bool


# --------------------------------------------------------------------------------------------------------------
# modules and their files
# --------------------------------------------------------------------------------------------------------------
def module_file(module: str, root: Path = ROOT) -> Path | None:
    """The source file of ``module`` below ``root`` (``a/b.py`` or ``a/b/__init__.py``), None when there is none."""
    base = Path(root, *module.split("."))
    for path in (base.with_name(base.name + ".py"), base / "__init__.py"):
        if path.is_file():
            return path
    return None


def _in_package(module: str) -> bool:
    return module == PACKAGE or module.startswith(PACKAGE + ".")


def _visible(relative: Path) -> bool:
    return not any(part == "__pycache__" or part.startswith(".") for part in relative.parts)


def package_modules(root: Path = ROOT) -> list[str]:
    """Every module of the package below ``root``, sorted (packages by their own name, not ``…__init__``)."""
    names = []
    for path in (Path(root) / PACKAGE).rglob("*.py"):
        relative = path.relative_to(root)
        if _visible(relative):
            parts = relative.with_suffix("").parts
            names.append(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return sorted(names)


def package_files(root: Path = ROOT) -> list[Path]:
    """Every file below the package folder (modules and data; not ``__pycache__`` nor hidden files), sorted."""
    folder = Path(root) / PACKAGE
    return sorted(p for p in folder.rglob("*") if p.is_file() and _visible(p.relative_to(root)))


def _parents(module: str) -> list[str]:
    """``a.b.c`` → ``[a, a.b, a.b.c]``: what ``import a.b.c`` runs, in order."""
    parts = module.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


# --------------------------------------------------------------------------------------------------------------
# reading imports and declarations
# --------------------------------------------------------------------------------------------------------------
def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


#: the nodes an import statement can sit in: statements, ``except`` clauses and ``case`` blocks (no expression)
_BLOCKS = (ast.stmt, ast.excepthandler, *((ast.match_case,) if hasattr(ast, "match_case") else ()))


def _import_nodes(tree: ast.AST) -> Iterable[tuple[ast.Import | ast.ImportFrom, bool, bool]]:
    """Every import statement with (in a function, under ``if TYPE_CHECKING:``)."""
    stack: list[tuple[ast.AST, bool, bool]] = [(tree, False, False)]
    while stack:
        node, in_function, typing_only = stack.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, in_function, typing_only
            continue
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack += [(child, in_function, True) for child in node.body]
            stack += [(child, in_function, typing_only) for child in node.orelse]
            continue
        inner = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        stack += [(child, inner, typing_only) for child in ast.iter_child_nodes(node) if isinstance(child, _BLOCKS)]


def _from_base(node: ast.ImportFrom, module: str | None, is_package: bool) -> str | None:
    """The module ``from <base> import …`` reads from, with relative imports resolved against ``module``."""
    if not node.level:
        return node.module
    if module is None:
        return None
    parts = module.split(".") if is_package else module.split(".")[:-1]
    if node.level - 1 > len(parts) - 1:
        raise ImportError(f"{module}: relative import beyond the top-level package at line {node.lineno}")
    parts = parts[: len(parts) - (node.level - 1)]
    return ".".join(parts + ([node.module] if node.module else []))


def _targets(node: ast.Import | ast.ImportFrom, module: str | None, is_package: bool, root: Path) -> list[str]:
    """The package's modules one import statement names (see :class:`Import`)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = _from_base(node, module, is_package)
        if base is None:
            return []
        submodules = [f"{base}.{a.name}" for a in node.names if a.name != "*"]
        submodules = [s for s in submodules if _in_package(s) and module_file(s, root) is not None]
        names = submodules + ([base] if len(submodules) < len(node.names) else [])
    return [n for n in names if _in_package(n) and module_file(n, root) is not None]


def _tree_imports(tree: ast.AST, module: str | None, is_package: bool, root: Path) -> list[Import]:
    found = []
    for node, in_function, typing_only in _import_nodes(tree):
        end = node.end_lineno or node.lineno
        for target in _targets(node, module, is_package, Path(root)):
            found.append(Import(target, node.lineno, end, in_function, typing_only))
    return sorted(found, key=lambda i: (i.line, i.target))


def read_imports(
    source: str, module: str | None = None, *, is_package: bool = False, root: Path = ROOT
) -> list[Import]:
    """The package's modules that ``source`` imports, in the order of the source.

    Args:
        source: Python source (a module, or a notebook's code).
        module: the dotted name of the module it is, for relative imports; None for a script or a notebook.
        is_package: whether ``source`` is a package's ``__init__.py`` (relative imports start from it).
        root: the folder holding the package, where imported names are looked up as modules.
    """
    return _tree_imports(ast.parse(source), module, is_package, root)


def _source_file(module: str, root: Path) -> tuple[Path, tuple[int, int]]:
    """The source file of ``module`` and its (mtime, size): what the parsed trees are cached by."""
    path = module_file(module, root)
    if path is None:
        raise ModuleNotFoundError(f"{module} is not a module of the {PACKAGE} package below {root}")
    stat = path.stat()
    return path, (stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=1024)
def _parsed(path: Path, stamp: tuple[int, int]) -> ast.Module:
    """The syntax tree of ``path``; ``stamp`` (mtime, size) makes an edited file be read again."""
    return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


@functools.lru_cache(maxsize=1024)
def _module_imports(module: str, root: Path, path: Path, stamp: tuple[int, int]) -> tuple[Import, ...]:
    return tuple(_tree_imports(_parsed(path, stamp), module, path.name == "__init__.py", root))


def imports(module: str, root: Path = ROOT) -> list[Import]:
    """The package's modules that ``module`` imports (:func:`read_imports` of its source file)."""
    return list(_module_imports(module, Path(root), *_source_file(module, Path(root))))


def _declared(tree: ast.Module, module: str) -> list[str]:
    """The strings of the module-level ``RESOURCES = (...)`` of a syntax tree (empty when it has none)."""
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        if any(isinstance(t, ast.Name) and t.id == RESOURCES_NAME for t in targets):
            value = node.value
            items = value.elts if isinstance(value, (ast.Tuple, ast.List)) else None
            if items is None or not all(isinstance(i, ast.Constant) and isinstance(i.value, str) for i in items):
                raise ValueError(
                    f"{module}: {RESOURCES_NAME} must be a literal tuple of strings (paths in the package)"
                )
            return [i.value for i in items]
    return []


def resources(module: str, root: Path = ROOT) -> list[Path]:
    """The data files ``module`` declares in ``RESOURCES`` (paths or glob patterns relative to the package folder).

    Raises:
        FileNotFoundError: when a declared path or pattern matches no file (a misspelt name would otherwise
            silently leave the file out of every digest).
    """
    folder = Path(root) / PACKAGE
    files: list[Path] = []
    for pattern in _declared(_parsed(*_source_file(module, Path(root))), module):
        matched = sorted(p for p in folder.glob(pattern) if p.is_file())
        if not matched:
            raise FileNotFoundError(f"{module}: {RESOURCES_NAME} names {pattern!r}, which matches no file in {folder}")
        files += matched
    return files


# --------------------------------------------------------------------------------------------------------------
# closures and digests
# --------------------------------------------------------------------------------------------------------------
def closure(modules: Iterable[str], root: Path = ROOT) -> list[str]:
    """The closure of ``modules`` (see the module docstring), sorted.

    Raises:
        ModuleNotFoundError: when one of ``modules`` is not a module of the package below ``root``.
    """
    todo = list(modules)
    for name in todo:
        if not _in_package(name) or module_file(name, root) is None:
            raise ModuleNotFoundError(f"{name} is not a module of the {PACKAGE} package below {root}")
    seen: set[str] = set()
    while todo:
        for name in _parents(todo.pop()):
            if name not in seen:
                seen.add(name)
                todo += [i.target for i in imports(name, root) if not i.type_checking]
    return sorted(seen)


def closure_files(modules: Iterable[str], root: Path = ROOT) -> list[Path]:
    """The files of the closure of ``modules``: its modules' sources and the data files they declare, sorted."""
    files: set[Path] = set()
    for name in closure(modules, root):
        files.add(module_file(name, root))  # type: ignore[arg-type]  # closure() lists existing modules only
        files.update(resources(name, root))
    return sorted(files)


def digest(files: Iterable[Path], root: Path = ROOT) -> str:
    """sha256 (hex) over the relative path, size and bytes of each file, in sorted order (see the module docstring)."""
    h = hashlib.sha256()
    for path in sorted({Path(f) for f in files}):
        data = path.read_bytes()
        h.update(path.relative_to(root).as_posix().encode() + b"\0" + str(len(data)).encode() + b"\0")
        h.update(data)
    return h.hexdigest()


# --------------------------------------------------------------------------------------------------------------
# notebooks and make rules
# --------------------------------------------------------------------------------------------------------------
def _cell_source(cell: dict) -> str:
    """A code cell's Python: IPython magics and shell escapes (``%…``, ``!…``) become blank lines."""
    source = cell.get("source", "")
    text = "".join(source) if isinstance(source, list) else source
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in text.splitlines())


def notebook_modules(notebook: str | os.PathLike[str], root: Path = ROOT) -> list[str]:
    """The package's modules that the code cells of a Jupyter notebook import, sorted.

    Raises:
        SyntaxError: when a code cell (magics removed) is not Python.
    """
    cells = json.loads(Path(notebook).read_text(encoding="utf-8"))["cells"]
    found: set[str] = set()
    for index, cell in enumerate(c for c in cells if c.get("cell_type") == "code"):
        try:
            found.update(i.target for i in read_imports(_cell_source(cell), root=root))
        except SyntaxError as err:
            raise SyntaxError(f"{notebook}: code cell {index} is not Python ({err.msg}, line {err.lineno})") from None
    return sorted(found)


def _make_path(path: Path) -> str:
    """A path as make should see it: relative to the working directory when below it; spaces are not supported."""
    relative = os.path.relpath(Path(path).resolve(), Path.cwd().resolve())
    text = str(path) if relative.startswith("..") else relative
    if any(c in text for c in " \t#:$"):
        raise ValueError(f"make cannot name {text!r} in a prerequisite list: move the checkout to a simpler path")
    return text


def make_rules(
    notebooks: Sequence[str | os.PathLike[str]], targets: Sequence[str], also: Sequence[str] = (), root: Path = ROOT
) -> str:
    """Make rules: each notebook's targets depend on the closure files of its imports and of ``also``.

    ``targets`` are templates of the files built from a notebook, ``{stem}`` standing for its name without
    ``.ipynb`` (e.g. ``build/replicate/{stem}.ipynb``). The rules have no recipe (the Makefile's pattern rule
    builds them); every file named also gets an empty rule, so that a module deleted later does not stop make.
    """
    lines = ["# Generated by repalign/core/closure.py: what each notebook's code imports, transitively.", ""]
    named: set[str] = set()
    for notebook in notebooks:
        stem = Path(notebook).stem
        files = [_make_path(f) for f in closure_files([*notebook_modules(notebook, root), *also], root)]
        named.update(files)
        built = " ".join(_make_path(Path(t.format(stem=stem))) for t in targets)
        lines += [f"{built}: \\", *[f"  {f} \\" for f in files], "", ""]
    lines += [f"{f}:" for f in sorted(named)]
    return "\n".join(lines) + "\n"


def _write(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (``-``: standard output) through a temporary file and a rename."""
    if path == "-":
        sys.stdout.write(text)
        return
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, target)


def main(argv: Sequence[str] | None = None) -> int:
    """``python3 repalign/core/closure.py [--digest | --make FILE --target T ...] ITEM ...``; see the docstring."""
    p = argparse.ArgumentParser(prog="closure.py", description=__doc__.splitlines()[0])
    p.add_argument("items", nargs="+", help="modules (repalign.recipes.layerwise) or notebooks (.ipynb)")
    p.add_argument("--digest", action="store_true", help="print the closure's digest instead of its files")
    p.add_argument("--make", metavar="FILE", help="write make rules (notebooks only) to FILE ('-': stdout)")
    p.add_argument("--target", action="append", default=[], help="--make: a built file, {stem} = notebook name")
    p.add_argument("--with", dest="also", action="append", default=[], help="--make: a module every notebook runs")
    args = p.parse_args(argv)
    notebooks = [i for i in args.items if i.endswith(".ipynb")]
    modules = [i for i in args.items if not i.endswith(".ipynb")]
    try:
        if args.make:
            if modules or not args.target:
                p.error("--make takes notebooks only, and at least one --target")
            _write(args.make, make_rules(notebooks, args.target, args.also))
            return 0
        names = modules + [m for nb in notebooks for m in notebook_modules(nb)]
        files = closure_files(names)
        print(digest(files) if args.digest else "\n".join(_make_path(f) for f in files))
    except (ModuleNotFoundError, FileNotFoundError, SyntaxError, ValueError, ImportError) as err:
        print(f"closure.py: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
