"""Notebook parameters: which notebooks exist, what each one takes, and checks of what a user passes.

One home for the rules that ``make notebook``, sweeps (:mod:`repalign.run.sweep`), the command line and the notebooks
themselves apply before any work starts:

- :func:`resolve_notebook` accepts ``03_architectures``, ``03_architectures.ipynb``, ``notebooks/03_…``, a path, or a
  unique prefix (``03``), and lists the notebooks when a name matches none;
- :func:`defaults` reads a notebook's ``parameters`` cell (plain ``name = literal`` lines) without running it;
- :func:`validate` refuses an unknown name (listing the parameters and suggesting the closest) and a value whose
  type does not fit the default's (``epochs=five``, ``seeds=0``), with one message that says what was expected;
- :func:`check_kernel` runs the same check inside a kernel (papermill injects a ``# Parameters`` cell after the
  ``parameters`` cell; IPython's input history holds both), so plain ``papermill -p epoch 5`` fails early too.
"""

from __future__ import annotations

import ast
import difflib
import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repalign.core.paths import notebooks_dir

__all__ = [
    "ParameterError",
    "list_notebooks",
    "resolve_notebook",
    "defaults",
    "scale_parameters",
    "validate",
    "parse_assignments",
    "check_kernel",
]

_NOTEBOOK = re.compile(r"^\d\d_[A-Za-z0-9_]+$")
_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


class ParameterError(ValueError):
    """A notebook parameter that does not exist or whose value has the wrong type."""


def list_notebooks() -> list[str]:
    """The notebooks' stems in order, e.g. ``['00_quickstart', '01_alignment_and_convergence', …]``."""
    return sorted(p.stem for p in notebooks_dir().glob("*.ipynb") if _NOTEBOOK.match(p.stem))


def resolve_notebook(name: str | Path) -> Path:
    """The notebook a user means by ``name``: a stem, a file name, a path, or a unique prefix such as ``03``.

    Raises ``ValueError`` listing every notebook when ``name`` matches none or several.
    """
    path = Path(name)
    if path.suffix == ".ipynb" and path.is_file():
        return path.resolve()
    stem = path.name.removesuffix(".ipynb")
    names = list_notebooks()
    matches = [n for n in names if n == stem] or [n for n in names if n.startswith(stem)] if stem else []
    if len(matches) == 1:
        return notebooks_dir() / f"{matches[0]}.ipynb"
    listing = "\n  ".join(names)
    what = f"matches several notebooks ({', '.join(matches)})" if matches else "is not a notebook"
    raise ValueError(f"{str(name)!r} {what}; the notebooks are:\n  {listing}")


def _parameters_source(notebook: str | Path) -> str:
    path = resolve_notebook(notebook)
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    for cell in cells:
        if cell["cell_type"] == "code" and "parameters" in cell.get("metadata", {}).get("tags", []):
            return "".join(cell["source"])
    raise ValueError(f"{path.name} has no cell tagged 'parameters'")


def _literal_assignments(source: str) -> dict[str, Any]:
    """``name = literal`` lines of a cell, in order; anything else in the cell is ignored."""
    values: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                values[node.targets[0].id] = ast.literal_eval(node.value)
            except ValueError:
                continue
    return values


def defaults(notebook: str | Path) -> dict[str, Any]:
    """The notebook's parameters and their smoke-scale defaults, read from its ``parameters`` cell."""
    return _literal_assignments(_parameters_source(notebook))


def scale_parameters(notebook: str | Path, scale: str) -> dict[str, Any]:
    """The overrides of ``notebooks/params/<scale>/<stem>.yaml`` (empty for ``smoke`` or when no file exists)."""
    import yaml

    if scale == "smoke":
        return {}
    path = resolve_notebook(notebook)
    file = path.parent / "params" / scale / f"{path.stem}.yaml"
    if not (path.parent / "params" / scale).is_dir():
        scales = sorted(p.name for p in (path.parent / "params").iterdir() if p.is_dir())
        raise ValueError(f"unknown scale {scale!r}; the scales are smoke, {', '.join(scales)}")
    return dict(yaml.safe_load(file.read_text(encoding="utf-8")) or {}) if file.is_file() else {}


def _type_name(value: Any) -> str:
    return {bool: "true/false", int: "an integer", float: "a number", str: "a string", dict: "a mapping"}.get(
        type(value), "a list" if isinstance(value, list | tuple) else type(value).__name__
    )


def _fits(default: Any, value: Any) -> bool:
    if default is None or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, int | float)
    if isinstance(default, list | tuple):
        kinds = {type(v) for v in default}
        if not isinstance(value, list | tuple):
            return False
        return len(kinds) != 1 or not default or all(_fits(default[0], v) for v in value)
    return isinstance(value, type(default))


def validate(notebook: str | Path | Mapping[str, Any], given: Mapping[str, Any], *, name: str = "") -> dict[str, Any]:
    """Check ``given`` against a notebook's parameters and return the merged parameters (defaults updated).

    ``notebook`` is a notebook name/path or the defaults themselves. Raises :class:`ParameterError` naming every
    unknown parameter (with the closest known name and the full list) and every value whose type does not fit its
    default (an integer is accepted for a number; list elements are checked against the default's elements).
    """
    base = dict(notebook) if isinstance(notebook, Mapping) else defaults(notebook)
    label = name or ("the notebook" if isinstance(notebook, Mapping) else resolve_notebook(notebook).stem)
    problems = []
    for key, value in given.items():
        if key not in base:
            close = difflib.get_close_matches(key, list(base), n=1)
            problems.append(f"unknown parameter {key!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        elif not _fits(base[key], value):
            problems.append(
                f"{key} = {value!r} is {_type_name(value)}; {key} expects {_type_name(base[key])}, "
                f"like its default {base[key]!r}"
            )
    if problems:
        listing = "\n  ".join(f"{k} = {v!r}" for k, v in base.items())
        raise ParameterError(f"{label}: " + "; ".join(problems) + f"\nits parameters (defaults):\n  {listing}")
    return {**base, **dict(given)}


def _yaml_value(text: str) -> Any:
    import yaml

    value = yaml.safe_load(text) if text.strip() else ""
    return float(value) if isinstance(value, str) and _FLOAT.match(value) else value


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["epochs=5", "seeds=[0, 1]", "lr=1e-3"]`` → ``{"epochs": 5, "seeds": [0, 1], "lr": 0.001}`` (YAML values;
    ``1e-3``, which YAML reads as a string, is a number here)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep or not key.strip().isidentifier():
            raise ParameterError(f"{item!r} is not name=value (e.g. epochs=5 or seeds=[0,1])")
        out[key.strip()] = _yaml_value(text)
    return out


def check_kernel(namespace: Mapping[str, Any]) -> None:
    """Inside a kernel: check the parameters papermill injected against the notebook's ``parameters`` cell.

    Papermill runs the ``parameters`` cell and then its injected ``# Parameters`` cell; IPython's ``In`` history
    holds both sources. Does nothing when there is no injected cell (Jupyter, nbval) or no history.
    """
    history = namespace.get("In")
    if not isinstance(history, list):
        return
    for i, source in enumerate(history):
        if isinstance(source, str) and source.lstrip().startswith("# Parameters") and i > 0:
            base = _literal_assignments(history[i - 1])
            injected = _literal_assignments(source)
            given = {k: namespace.get(k, v) for k, v in injected.items()}
            if base:
                validate(base, given)
            return
