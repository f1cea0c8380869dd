"""The architecture guard (docs/ARCHITECTURE.md): floors, no upward import, no circle, reasons, no torch below.

Read statically with :mod:`repalign.core.closure`'s import reader (no module of the package is imported here, so
the guard is fast and does not depend on what the modules do), except the torch check, which imports the light
floors in a fresh interpreter.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import tokenize
from pathlib import Path

import pytest

from repalign.core import closure

ROOT = closure.ROOT
DOC = ROOT / "docs" / "ARCHITECTURE.md"
#: the two modules outside a floor's folder, as the document places them: the package's own __init__ re-exports
#: the measure (floor 1); ``python -m repalign`` is the command line (floor 5)
OUTSIDE_FOLDERS = {closure.PACKAGE: 1, f"{closure.PACKAGE}.__main__": 5}
#: what a comment says that is not a reason
NOT_A_REASON = re.compile(r"noqa(:\s*[A-Z]+[0-9]+(\s*,\s*[A-Z]+[0-9]+)*)?|type:\s*ignore(\[[^\]]*\])?|pragma:[^#]*")


def doc_floors(text: str) -> dict[str, int]:
    """Folder → floor from the diagram of ARCHITECTURE.md: a line `` N  folder/ … other/ …`` puts each ``x/`` on N."""
    floors: dict[str, int] = {}
    for line in text.splitlines():
        match = re.match(r"^\s*(\d)\s+([a-z]+)/", line)
        if match:
            for folder in re.findall(r"(?:^|\s)([a-z]+)/", line[match.start(2) :]):
                floors[folder] = int(match.group(1))
    return floors


@pytest.fixture(scope="module")
def floors() -> dict[str, int]:
    return doc_floors(DOC.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def modules() -> list[str]:
    return closure.package_modules()


def floor_of(module: str, floors: dict[str, int]) -> int:
    if module in OUTSIDE_FOLDERS:
        return OUTSIDE_FOLDERS[module]
    return floors[module.split(".")[1]]


def write_package(root: Path, files: dict[str, str]) -> Path:
    """A made-up repalign package below ``root``: {relative path: source}."""
    for name, source in files.items():
        path = root / closure.PACKAGE / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(source)
    return root


def upward_imports(floors: dict[str, int], root: Path = ROOT) -> list[str]:
    """Every import of a module of a higher floor, as ``"a (floor n) imports b (floor m) at line k"``."""
    return [
        f"{m} (floor {floor_of(m, floors)}) imports {i.target} (floor {floor_of(i.target, floors)}) at line {i.line}"
        for m in closure.package_modules(root)
        for i in closure.imports(m, root)
        if floor_of(i.target, floors) > floor_of(m, floors)
    ]


def test_the_document_names_the_six_floors_and_every_folder_has_one(floors, modules) -> None:
    assert floors == {"core": 0, "measure": 1, "data": 2, "networks": 3, "recipes": 4, "report": 4, "run": 5}
    folders = {m.split(".")[1] for m in modules if m not in OUTSIDE_FOLDERS}
    assert folders <= set(floors), f"package folders without a floor in {DOC.name}: {sorted(folders - set(floors))}"


def test_an_upward_import_is_found_at_module_level_or_in_a_function(floors, tmp_path) -> None:
    write_package(tmp_path, {"__init__.py": "", "core/__init__.py": "", "networks/__init__.py": ""})
    write_package(tmp_path, {"networks/models.py": "", "core/files.py": "import os\n"})
    assert upward_imports(floors, tmp_path) == []
    write_package(tmp_path, {"core/files.py": "def f():\n    from repalign.networks import models  # lazily\n"})
    assert upward_imports(floors, tmp_path) == [
        "repalign.core.files (floor 0) imports repalign.networks.models (floor 3) at line 2"
    ]


def test_no_import_from_a_higher_floor(floors) -> None:
    upward = upward_imports(floors)
    assert not upward, "imports from a higher floor:\n" + "\n".join(upward)


def import_circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every circle of ``graph`` as one path around it (a module on a circle with itself included)."""
    circles: list[list[str]] = []
    state: dict[str, str] = {}  # "open" while on the current path, "done" when every path from it was followed

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = "done"

    for start in sorted(graph):
        if start not in state:
            visit(start, [start])
    return circles


def test_import_circles_are_found() -> None:
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": set()}) == []
    assert import_circles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert import_circles({"a": {"a"}}) == [["a", "a"]]


def test_no_import_circle(modules) -> None:
    graph = {m: {i.target for i in closure.imports(m) if not i.type_checking} for m in modules}
    circles = import_circles(graph)
    assert not circles, "import circles (module-level and in-function imports):\n" + "\n".join(
        " -> ".join(c) for c in circles
    )


def comments(source: str) -> dict[int, str]:
    """Line → the text of the comment on it (tokenized: a ``#`` inside a string is no comment)."""
    found = {}
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            found[tok.start[0]] = tok.string.lstrip("#").strip()
    return found


def is_reason(comment: str) -> bool:
    """Whether a comment gives a reason: at least two words once linter directives are taken out."""
    return len(re.findall(r"[A-Za-z]{2,}", NOT_A_REASON.sub("", comment))) >= 2


def test_a_reason_is_a_sentence_not_a_directive() -> None:
    assert is_reason("lazily: torch only when a checkpoint is missing")
    assert is_reason("noqa: F401  (they register)")
    assert not is_reason("noqa: F401")
    assert not is_reason("type: ignore[attr-defined]")
    assert not is_reason("lazy")
    assert comments("x = '# no comment'\ny = 1  # a comment\n") == {2: "a comment"}


def silent_imports(root: Path = ROOT) -> list[str]:
    """Every import of a repalign module inside a function without a reason on its lines, as ``"path:line: m"``."""
    silent = []
    for m in closure.package_modules(root):
        path = closure.module_file(m, root)
        notes = comments(path.read_text(encoding="utf-8"))
        for i in closure.imports(m, root):
            lines = range(i.line, i.end_line + 1)  # ruff format may move the comment into the parenthesised names
            if i.in_function and not any(is_reason(notes.get(n, "")) for n in lines):
                silent.append(f"{path.relative_to(root).as_posix()}:{i.line}: {i.target}")
    return silent


def test_a_silent_import_in_a_function_is_found(tmp_path) -> None:
    body = "import os\n\n\ndef f():\n    import json  # no repalign module: no reason needed\n"
    body += "    from repalign.core import (  # lazily: the reason may stand on any line of the statement\n"
    body += "        files,\n    )\n"
    write_package(tmp_path, {"__init__.py": "", "core/__init__.py": "", "core/files.py": "", "core/x.py": body})
    assert silent_imports(tmp_path) == []
    write_package(tmp_path, {"core/x.py": body + "    from repalign.core import files  # noqa: F401\n"})
    assert silent_imports(tmp_path) == ["repalign/core/x.py:9: repalign.core.files"]


def test_every_import_inside_a_function_gives_a_reason() -> None:
    silent = silent_imports()
    assert not silent, "imports inside a function without a reason on their line:\n" + "\n".join(silent)


def test_light_floors_load_no_torch(modules) -> None:
    light = [
        closure.PACKAGE,
        *[m for m in modules if m.startswith(f"{closure.PACKAGE}.measure.")],
        f"{closure.PACKAGE}.data",
    ]
    script = (
        "import importlib, json, sys\n"
        "first = None\n"
        f"for name in {light!r}:\n"
        "    importlib.import_module(name)\n"
        "    if first is None and 'torch' in sys.modules:\n"
        "        first = name\n"
        "print(json.dumps(first))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout.strip().splitlines()[-1])
    assert first is None, f"importing {first} loads torch; {light} must not"
