"""Notebook parameters: which notebooks exist, what each one takes, and checks of what a user passes.

One home for the rules that ``make notebook``, sweeps (:mod:`repalign.run.sweep`), the command line and the notebooks
themselves apply before any work starts:

- :func:`resolve_notebook` accepts ``03_architectures``, ``03_architectures.ipynb``, ``notebooks/03_…``, a path, or a
  unique prefix (``03``), and lists the notebooks when a name matches none;
- :func:`defaults` reads a notebook's ``parameters`` cell (plain ``name = literal`` lines) without running it;
- :func:`validate` refuses an unknown name (listing the parameters and suggesting the closest) and a value whose
  type does not fit the default's (``epochs=five``, ``seeds=0``), with one message that says what was expected;
- :func:`check_kernel` runs the same check inside a kernel (papermill injects a ``# Parameters`` cell after the
  ``parameters`` cell; IPython's input history holds both), so plain ``papermill -p epoch 5`` fails early too;
- :func:`check_plain` is the one home of what a value may be: plain JSON data (null, true/false, an integer, a
  finite number, text, a list, a mapping with text keys), checked recursively. Papermill escapes strings only and
  writes anything else into the parameters cell as it prints, so a value of any other type could break out of its
  literal and run code in the kernel. :func:`validate`, and so every entry point (``repalign run``, ``make
  notebook``, sweeps, the kernel's own check), applies it;
- :func:`load_yaml` reads parameter values, scale files and grid files with a YAML loader that builds plain types
  only: no tags but the core ones (``!!binary``, ``!!set``, ``!!pairs``, ``!!omap``, ``!!timestamp`` and every
  ``!!python/…`` are refused), no aliases, no key twice in a mapping; dates stay text; ``1e-3`` is a number (as in
  JSON and YAML 1.2), and integers written with a leading zero (``03``, YAML 1.1's octal) or a colon (``1:30``, its
  base 60) stay text;
- the command line's own checks: :class:`CommandLineParser` (a mistake is one line, status 2), :func:`positive_int`
  and :func:`non_negative_int` for counts, :func:`require` (the extra to install when a package is missing).
"""

from __future__ import annotations

import argparse
import ast
import datetime
import difflib
import functools
import importlib.util
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from repalign.core.paths import notebooks_dir
from repalign.run.userfiles import MissingExtraError

__all__ = [
    "ParameterError",
    "list_notebooks",
    "resolve_notebook",
    "defaults",
    "scale_parameters",
    "validate",
    "parse_assignments",
    "check_kernel",
    "PLAIN",
    "MAX_DEPTH",
    "check_plain",
    "load_yaml",
    "CommandLineParser",
    "UsageError",
    "positive_int",
    "non_negative_int",
    "EXTRA_MODULES",
    "require",
    "missing_module",
]

_NOTEBOOK = re.compile(r"^\d\d_[A-Za-z0-9_]+$")
#: what a parameter value may be, in the words of every message that refuses one
PLAIN = "null, true/false, numbers, text, lists and mappings with text keys"
#: the deepest nesting of lists and mappings a value may have
MAX_DEPTH = 100


class ParameterError(ValueError):
    """A notebook parameter that does not exist, whose value has the wrong type or is not plain JSON data."""


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
    """The overrides of ``notebooks/params/<scale>/<stem>.yaml`` (empty for ``smoke`` or when no file exists).

    ``scale`` is the name of a folder of ``notebooks/params`` (never a path: ``..`` is no scale); the file is read
    by :func:`load_yaml` and must be a mapping of plain values.
    """
    if scale == "smoke":
        return {}
    path = resolve_notebook(notebook)
    folder = path.parent / "params"
    scales = sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; the scales are {', '.join(['smoke', *scales])}")
    file = folder / scale / f"{path.stem}.yaml"
    if not file.is_file():
        return {}
    values = load_yaml(file.read_text(encoding="utf-8"), source=str(file))
    if values is not None and not isinstance(values, dict):
        raise ValueError(f"{file}: a scale file is a mapping of parameters (name: value), got {_what(values)}")
    check_plain(values or {}, str(file))
    return dict(values or {})


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

    ``notebook`` is a notebook name/path or the defaults themselves. Raises :class:`ParameterError`, in one line,
    for a value that is not plain JSON data (:func:`check_plain`: papermill would write it into the kernel's cell
    unescaped); then naming every unknown parameter (with the closest known name and the full list) and every value
    whose type does not fit its default (an integer is accepted for a number; list elements are checked against the
    default's elements).
    """
    base = dict(notebook) if isinstance(notebook, Mapping) else defaults(notebook)
    label = name or ("the notebook" if isinstance(notebook, Mapping) else resolve_notebook(notebook).stem)
    not_plain = [problem for key, value in given.items() if (problem := _plain_problem(value, str(key), 0))]
    not_plain += [f"the parameter name {key!r} is not text" for key in given if not isinstance(key, str)]
    if not_plain:
        raise ParameterError(f"{label}: " + "; ".join(not_plain))
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


def _shortened(text: str, width: int = 40) -> str:
    return text if len(text) <= width else text[:width] + "..."


def parse_assignments(items: Sequence[str]) -> dict[str, Any]:
    """``["epochs=5", "seeds=[0, 1]", "lr=1e-3"]`` → ``{"epochs": 5, "seeds": [0, 1], "lr": 0.001}``.

    Values are YAML read by :func:`load_yaml` (plain values only, ``1e-3`` a number as in a grid file; quote text
    that would read otherwise: ``name='1e-3'``); ``x=`` is the empty text. Raises :class:`ParameterError` in one
    line for an item that is not ``name=value``, a name given twice, and a value that is not plain.
    """
    out: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key.isidentifier():
            raise ParameterError(f"{item!r} is not name=value (e.g. epochs=5 or seeds=[0,1])")
        if key in out:
            raise ParameterError(f"{key} is given twice ({key}={_shortened(text)} and before); give it once")
        value = load_yaml(text, source=f"{key}={_shortened(text)}") if text.strip() else ""
        check_plain(value, key)
        out[key] = value
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
            given = {k: namespace[k] for k in _assigned_names(source) if k in namespace}
            if base:
                validate(base, given)
            return


def _assigned_names(source: str) -> list[str]:
    """The names a cell assigns (``name = …``), whatever the value (papermill writes ``float('nan')`` for NaN)."""
    try:
        body = ast.parse(source).body
    except SyntaxError:
        return []
    return [t.id for node in body if isinstance(node, ast.Assign) for t in node.targets if isinstance(t, ast.Name)]


# ---------------------------------------------------------------------------------------------------------------
# plain values: what papermill can write into a cell as a literal
_KINDS: dict[type, tuple[str, str]] = {
    bytes: ("bytes (a YAML !!binary value)", "write text instead"),
    bytearray: ("bytes", "write text instead"),
    tuple: ("a tuple (a YAML !!pairs, !!omap or !!python/tuple value)", "write a list, e.g. [1, 2]"),
    set: ("a set (a YAML !!set value)", "write a list, e.g. [1, 2]"),
    frozenset: ("a set", "write a list, e.g. [1, 2]"),
    datetime.date: ("a date (a YAML timestamp)", "quote it to pass text, e.g. '2024-01-01'"),
    datetime.datetime: ("a date and time (a YAML timestamp)", "quote it to pass text"),
}


def _what(value: Any) -> str:
    """``value``'s kind in words: ``an integer``, ``a mapping``, ``bytes (a YAML !!binary value)``, ``a float64``."""
    kind = type(value)
    if kind in _KINDS:
        return _KINDS[kind][0]
    if value is None:
        return "null"
    return _type_name(value) if kind in (bool, int, float, str, dict, list) else f"a {kind.__name__}"


def _plain_problem(value: Any, where: str, depth: int) -> str | None:
    """Why ``value`` (called ``where``) is not plain JSON data, or None when it is."""
    if depth > MAX_DEPTH:
        return f"{where} is nested deeper than {MAX_DEPTH} levels (or contains itself); flatten it"
    kind = type(value)
    if value is None or kind in (bool, int, str):
        return None
    if kind is float and not math.isfinite(value):
        return f"{where} = {value!r} is not a finite number; write a finite number such as 0.001"
    if kind is float:
        return None
    if kind is list:
        return next((p for i, v in enumerate(value) if (p := _plain_problem(v, f"{where}[{i}]", depth + 1))), None)
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"{where} has the key {key!r} ({_what(key)}): mapping keys are text; quote it: '{key}'"
            if problem := _plain_problem(item, f"{where}[{key!r}]", depth + 1):
                return problem
        return None
    fix = _KINDS[kind][1] if kind in _KINDS else "write it as one of those"
    return f"{where} is {_what(value)}, not a plain value ({PLAIN}); {fix}"


def check_plain(value: Any, name: str = "the value") -> None:
    """Raise :class:`ParameterError` unless ``value`` is plain JSON data, at any depth.

    Plain: ``None``, ``bool``, ``int``, a finite ``float``, ``str``, and ``list`` and ``dict`` (text keys) of plain
    values, at most :data:`MAX_DEPTH` levels deep; exactly these types (no tuple, set, bytes, date, NumPy scalar,
    subclass). The message names the place, e.g. ``weights_paths['x'] is bytes (a YAML !!binary value), …``.
    """
    problem = _plain_problem(value, name, 0)
    if problem:
        raise ParameterError(problem)


# ---------------------------------------------------------------------------------------------------------------
# YAML that builds plain values only
_CORE = "tag:yaml.org,2002:"
_IMPLICIT = [  # (tag, regular expression, first characters); YAML 1.1's bool and null, JSON's numbers
    ("bool", r"^(?:yes|Yes|YES|no|No|NO|true|True|TRUE|false|False|FALSE|on|On|ON|off|Off|OFF)$", "yYnNtTfFoO"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?0b[0-1_]+|[-+]?0x[0-9a-fA-F_]+|[-+]?(?:0|[1-9][0-9_]*))$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?|[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
]
_CONSTRUCTED = ("null", "bool", "int", "float", "str", "seq", "map")


def _tag(tag: str) -> str:
    return "!!" + tag[len(_CORE) :] if tag.startswith(_CORE) else tag


def _at(mark: Any) -> str:
    return f" (line {mark.line + 1}, column {mark.column + 1})" if mark is not None else ""


@functools.cache
def _plain_loader() -> type:
    """A ``yaml.SafeLoader`` that builds null, bool, int, float, str, list and dict only (see :func:`load_yaml`)."""
    import yaml

    class PlainLoader(yaml.SafeLoader):
        source = "YAML"

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise ParameterError(
                    f"{self.source}: the alias *{event.anchor} is not allowed{_at(event.start_mark)}: anchors and "
                    "aliases (&name, *name) are refused here; write the value out"
                )
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            seen = set()
            for key, _ in node.value:
                if isinstance(key, yaml.ScalarNode) and (key.tag, key.value) in seen:
                    raise ParameterError(
                        f"{self.source}: the key {key.value!r} appears twice in one mapping{_at(key.start_mark)}; "
                        "keep one"
                    )
                seen.add((key.tag, key.value) if isinstance(key, yaml.ScalarNode) else id(key))
            return super().construct_mapping(node, deep=deep)

        def refuse_tag(self, node: Any) -> Any:
            raise ParameterError(
                f"{self.source}: the YAML tag {_tag(node.tag)} is not allowed{_at(node.start_mark)}: values are "
                f"plain ({PLAIN}); quote the value to pass it as text"
            )

    PlainLoader.yaml_implicit_resolvers = {}
    for name, pattern, first in _IMPLICIT:
        PlainLoader.add_implicit_resolver(_CORE + name, re.compile(pattern), list(first))
    PlainLoader.yaml_constructors = {_CORE + t: yaml.SafeLoader.yaml_constructors[_CORE + t] for t in _CONSTRUCTED}
    PlainLoader.yaml_constructors[None] = PlainLoader.refuse_tag
    return PlainLoader


def load_yaml(text: str, *, source: str = "YAML") -> Any:
    """The plain value a YAML text writes; ``source`` (a file, ``name=value``) begins every message.

    Builds null, true/false, integers, numbers, text, lists and mappings only (check the value with
    :func:`check_plain`: keys that are not text and non-finite numbers pass here). Raises :class:`ParameterError`
    in one line for a tag other than the core ones, an alias, a key twice in a mapping, nesting too deep to read,
    and text that is not YAML (with the line and column).
    """
    try:
        import yaml
    except ModuleNotFoundError:
        raise MissingExtraError(
            f"reading {source} needs yaml (PyYAML), which is not installed: pip install 'repalign[notebooks]'",
            name="yaml",
        ) from None
    loader = _plain_loader()(text)
    loader.source = source
    try:
        return loader.get_single_data()
    except RecursionError:
        raise ParameterError(f"{source}: nested too deeply to read; flatten the value") from None
    except yaml.MarkedYAMLError as err:
        problem = f"{err.problem or err.context}{_at(err.problem_mark or err.context_mark)}"
    except yaml.YAMLError as err:  # a character YAML does not allow (a reader error)
        problem = " ".join(str(err).split())
    finally:
        loader.dispose()
    raise ParameterError(
        f"{source}: not valid YAML: {problem}; quote text that holds : # [ ] {{ }} or starts with ! & *"
    )


# ---------------------------------------------------------------------------------------------------------------
# the command line's own checks
class UsageError(ValueError):
    """A command line that does not parse (an unknown option, a missing argument, a count below one)."""


class CommandLineParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose mistakes raise :class:`UsageError` (one line, the command's ``--help`` named)
    instead of printing the usage and exiting, so that ``main`` says them in one line with status 2."""

    def error(self, message: str) -> Any:
        """argparse's hook for every mistake on the command line."""
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def positive_int(text: str) -> int:
    """An argparse ``type``: an integer of at least 1 (a count of workers, threads, jobs, seconds)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer (1, 2, ...), got {text!r}")
    return value


def non_negative_int(text: str) -> int:
    """An argparse ``type``: an integer of at least 0 (a number of retries)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more (0, 1, 2, ...), got {text!r}")
    return value


#: what each extra of pyproject.toml brings that a command needs in its own process (import names)
EXTRA_MODULES = {
    "notebooks": ("yaml", "papermill", "nbclient", "ipykernel", "torch", "matplotlib", "tqdm"),
    "sweep": ("yaml", "dask", "distributed"),
}
#: the extra that installs each optional package (import name), for a module found missing while working
_EXTRA_OF = {
    **{m: "notebooks" for m in ("yaml", "papermill", "nbclient", "nbformat", "ipykernel", "jupyter_client")},
    **{m: "models" for m in ("torch", "torchvision", "timm", "tqdm")},
    **{m: "sweep" for m in ("dask", "distributed", "dask_jobqueue")},
    **{m: "classic" for m in ("sklearn", "skimage", "cv2")},
    "matplotlib": "plot",
}


def _installed(module: str) -> bool:
    if module in sys.modules:
        return sys.modules[module] is not None
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def require(command: str, *extras: str) -> None:
    """Raise :class:`~repalign.run.userfiles.MissingExtraError` (a ``ValueError``: one line, status 2) unless the
    packages ``extras`` bring (:data:`EXTRA_MODULES`) are installed, naming them and the ``pip install`` to run.
    Looks the packages up without importing them."""
    wanted = dict.fromkeys(m for extra in extras for m in EXTRA_MODULES[extra])
    missing = [m for m in wanted if not _installed(m)]
    if missing:
        raise MissingExtraError(
            f"{command} needs {', '.join(missing)}, not installed: pip install 'repalign[{','.join(sorted(extras))}]'",
            name=missing[0],
        )


def user_error(err: Exception) -> int:
    """Print a user's mistake as one ``error:`` line on stderr and return the exit status 2.

    A ``ModuleNotFoundError`` is a user's mistake only for an optional package (:func:`missing_module` names the
    extra to install); any other is re-raised, as it is a bug.
    """
    if isinstance(err, ModuleNotFoundError):
        known = missing_module(err)
        if known is None:
            raise err
        err = known
    print(f"error: {err}", file=sys.stderr)
    return 2


def missing_module(err: ModuleNotFoundError) -> MissingExtraError | None:
    """The one-line error for an optional package found missing while working (None for any other module)."""
    name = (err.name or "").split(".")[0]
    if name not in _EXTRA_OF:
        return None
    return MissingExtraError(f"{name} is not installed: pip install 'repalign[{_EXTRA_OF[name]}]'", name=name)
