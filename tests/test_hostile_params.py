"""Hostile input (issue #20): parameters, grid files, sweep names and arguments, the cache.

Every case states what a user (or whoever shared a grid file) may type and what must follow: a clear one-line
error with exit status 2, or the right result; never a raw traceback, a silently wrong result or code that runs.

- Values reach a notebook through papermill, which writes strings escaped and anything else *unescaped* into the
  parameters cell. :func:`render` is what papermill does with them (its Python translator's cell, executed): every
  injection attempt below goes that far when it is accepted, and a marker file proves whether code ran.
- In-process through ``cli.main`` with papermill's ``execute_notebook`` replaced by :func:`render` (no kernel); the
  few cases only a real kernel or a real process can prove are marked ``notebook`` or ``distributed``.
- A read-only cache is read-only for real in a subprocess: a non-root user's ``chmod``, or root in a user namespace
  (``unshare -U``, where the files' owner is unmapped and its capabilities do not apply).
"""

from __future__ import annotations

import base64
import contextlib
import errno
import io
import json
import math
import multiprocessing
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from repalign.core.cache import CacheWarning, load_or_compute
from repalign.run import cli, params, sweep

ROOT = Path(__file__).resolve().parents[1]
FIXTURE = Path(__file__).parent / "fixtures" / "sweep_tiny.ipynb"
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}
PROPERTY = settings(deadline=None, max_examples=60, derandomize=True, database=None)

#: the parameters of the issue that take a mapping, where a value is not a string papermill would escape
MAPPING_PARAMETERS = [
    ("02", "datasets"),
    ("05", "datasets"),
    ("08", "weights_paths"),
    ("09", "sources"),
    ("09", "targets"),
    ("09", "similar"),
    ("09", "paper_names"),
    ("09", "checkpoints"),
    ("11", "layers"),
    ("11", "weights_paths"),
]
TAGS = ["binary", "pairs", "omap", "set"]


# ------------------------------------------------------------------------------------------------ helpers
def payload(marker: Path) -> str:
    """Python source that creates ``marker`` once it is outside a string literal (it holds no single quote)."""
    return f'"+str(__import__("os").system("touch {marker}"))+"'


def tagged(kind: str, marker: Path) -> str:
    """A YAML value whose tag builds something other than a string around the payload."""
    code = payload(marker)
    return {
        "binary": f"!!binary {base64.b64encode(code.encode()).decode()}",
        "pairs": f"!!pairs [k: '{code}']",
        "omap": f"!!omap [k: '{code}']",
        "set": f"!!set {{'{code}': null}}",
    }[kind]


def render(parameters: Mapping[str, Any]) -> dict[str, Any]:
    """What papermill does with ``parameters``: its Python translator writes the cell, the kernel runs it."""
    from papermill.translators import PythonTranslator

    namespace: dict[str, Any] = {}
    try:
        exec(PythonTranslator.codify(dict(parameters)), namespace)  # noqa: S102 - what a kernel does with it
    except Exception:  # noqa: BLE001 - a payload that ran may leave the rest of the cell broken
        pass
    return namespace


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "MARKER"


@pytest.fixture
def papermill_cells(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """papermill.execute_notebook replaced by :func:`render`: the namespaces its parameters cells made."""
    import papermill

    cells: list[dict[str, Any]] = []

    def execute(input_path: str, output_path: str, parameters: Mapping[str, Any] | None = None, **_: Any) -> None:
        cells.append(render(parameters or {}))
        shutil.copyfile(input_path, output_path)

    monkeypatch.setattr(papermill, "execute_notebook", execute)
    monkeypatch.setenv("REPALIGN_PROGRESS", "text")
    return cells


def call(capsys: pytest.CaptureFixture[str], argv: list[str]) -> tuple[int, str]:
    """``repalign ARGV`` in this process: (exit status, everything printed)."""
    try:
        rc = cli.main(argv)
    except SystemExit as exit:
        rc = exit.code if isinstance(exit.code, int) else 1
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def refused(rc: int, text: str, match: str, marker: Path | None = None, *, one_line: bool = True) -> None:
    """A clear refusal: no code ran, no traceback, exit status 2, one line that matches ``match``."""
    if marker is not None:
        assert not marker.exists(), "[code] the value ran code"
    assert "Traceback" not in text, f"[traceback] {text[-800:]}"
    assert rc != 0, f"[silent] accepted: {text[-300:]!r}"
    assert rc == 2, f"[message] exit status {rc}: {text[-300:]!r}"
    assert re.search(match, text), f"[message] {text!r} does not match {match!r}"
    lines = [line for line in text.splitlines() if line.strip()]
    if one_line:
        assert len(lines) == 1 and lines[0].startswith("error: "), f"[message] not one line: {text!r}"


def run_cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, notebook: str, *assignments: str) -> tuple[int, str]:
    return call(capsys, ["run", notebook, *assignments, "--output", str(tmp_path / "out.ipynb")])


def grid_file(tmp_path: Path, text: str, name: str = "grid") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def dry_run(capsys: pytest.CaptureFixture[str], grid: Path, out: Path, *extra: str) -> tuple[int, str]:
    return call(capsys, ["sweep", str(grid), "--out", str(out), "--dry-run", *extra])


def render_points(grid: Path, **kw: Any) -> None:
    """What the sweep's kernels would run: every point's parameters through papermill."""
    for point in sweep.load_grid(grid, **kw).points:
        render(point.params)


TINY = f"notebook: {FIXTURE}\n"


# ------------------------------------------------------------------------------------------------ plain JSON values
TRICKY = st.sampled_from(['"', "'", "\\", "\n", '"+', '+"', "'''", '"""', '\\"', "{", "}", "#", "\x00", "\r", "\u2028"])
TEXTS = st.lists(st.one_of(TRICKY, st.text(max_size=4)), max_size=5).map("".join)
PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | TEXTS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXTS, inner, max_size=3),
    max_leaves=12,
)
NOT_PLAIN = st.one_of(
    st.binary(min_size=1, max_size=4),
    st.tuples(st.integers()),
    st.frozensets(st.integers(), min_size=1, max_size=2),
    st.sets(st.integers(), min_size=1, max_size=2),
    st.sampled_from([math.nan, math.inf, -math.inf, np.float64(0.5), np.int64(3), 1j, Path("x")]),
    st.dates(),
    st.dictionaries(st.integers(), st.integers(), min_size=1, max_size=2),
)
PLACES = st.lists(st.one_of(st.just(None), TEXTS), max_size=4)  # None: inside a list; text: under that key


def _nest(value: Any, places: list[str | None]) -> Any:
    for key in reversed(places):
        value = [value] if key is None else {key: value}
    return value


@pytest.fixture(scope="module")
def property_marker(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("property") / "MARKER"


@PROPERTY
@given(value=PLAIN, code=st.booleans())
def test_plain_values_pass_and_reach_the_kernel_as_themselves(property_marker: Path, value: Any, code: bool) -> None:
    """Any plain JSON value, text holding quotes, backslashes, newlines or a payload included, is accepted and
    papermill's cell gives it back exactly; nothing runs."""
    value = [value, payload(property_marker)] if code else value
    merged = params.validate({"x": None}, {"x": value})
    assert render(merged)["x"] == value
    assert not property_marker.exists(), "[code] a plain value ran code"


@PROPERTY
@given(bad=NOT_PLAIN, places=PLACES)
def test_a_value_that_is_not_plain_json_is_refused_wherever_it_is(bad: Any, places: list[str | None]) -> None:
    value = _nest(bad, places)
    with pytest.raises(params.ParameterError, match=r"^the notebook: x"):
        params.validate({"x": None}, {"x": value})


JSON_TEXT = st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=("Cs", "Cc")), max_size=6)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | JSON_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(JSON_TEXT, inner, max_size=3),
    max_leaves=12,
)


@PROPERTY
@given(value=JSON_VALUES)
@example(value=[1e-05, {"a": 1e16, "b": [-2.5e-300, "1e-3"]}])
def test_json_text_on_the_command_line_reads_as_itself(value: Any) -> None:
    """JSON is YAML: ``x=<json>`` gives the value the JSON says, numbers in exponent form (1e-05) included."""
    assert params.parse_assignments([f"x={json.dumps(value)}"])["x"] == value


TAG_SNIPPETS = [
    '!!binary "AAAA"',
    '!!set {"a": null}',
    '!!pairs [{"a": 1}]',
    '!!omap [{"a": 1}]',
    '!!timestamp "2001-12-14"',
    "!!python/tuple [1]",
    '!!python/object/apply:os.system ["true"]',
    '!!python/name:os.system ""',
    '!!float ".nan"',
    "!local 1",
]


@PROPERTY
@given(value=PLAIN, snippet=st.sampled_from(TAG_SNIPPETS), places=PLACES)
def test_a_tagged_node_anywhere_in_a_value_is_refused(value: Any, snippet: str, places: list[str | None]) -> None:
    hole = "\u0001HOLE\u0001"
    text = json.dumps([value, _nest(hole, places)]).replace(json.dumps(hole), snippet)
    with pytest.raises(params.ParameterError, match=r"^x\b"):
        params.parse_assignments([f"x={text}"])


# ------------------------------------------------------------------------------------------------ repalign run
@pytest.mark.parametrize("kind", TAGS)
@pytest.mark.parametrize(("notebook", "name"), MAPPING_PARAMETERS)
def test_run_refuses_a_tag_inside_a_mapping_before_papermill(
    capsys, tmp_path, marker, papermill_cells, notebook, name, kind
) -> None:
    rc, text = run_cli(capsys, tmp_path, notebook, f"{name}={{x: {tagged(kind, marker)}}}")
    refused(rc, text, rf"{name}=.*the YAML tag !!{kind} is not allowed", marker)
    assert papermill_cells == []


@pytest.mark.parametrize(
    "text",
    [
        '"+str(__import__("os").system("touch MARKER"))+"',
        "'+str(__import__('os').system('touch MARKER'))+'",
        'a\\"b',
        "back\\slash\\",
        "line\nbreak",
        '"""',
        "'''\n\"\"\"",
        "\x00\r\t",
    ],
)
def test_run_passes_text_with_quotes_backslashes_and_newlines_as_itself(
    capsys, tmp_path, papermill_cells, text
) -> None:
    text = text.replace("MARKER", str(tmp_path / "MARKER"))
    rc, out = run_cli(capsys, tmp_path, "08", f"weights_paths={json.dumps({'x': text})}", "device=" + json.dumps(text))
    assert rc == 0, out
    assert papermill_cells[0]["weights_paths"] == {"x": text} and papermill_cells[0]["device"] == text
    assert not (tmp_path / "MARKER").exists(), "[code] text ran code"


REFUSED_ASSIGNMENTS = [
    ("03", "lr=.inf", r"lr = inf is not a finite number"),
    ("03", "lr=.nan", r"lr = nan is not a finite number"),
    ("03", "lr=-.inf", r"not a finite number"),
    ("03", "lr=1e999", r"not a finite number"),
    ("03", "epochs=[1, 2", r"epochs=.*not valid YAML"),
    (
        "03",
        "epochs=!!python/object/apply:os.system ['touch MARKER']",
        r"!!python/object/apply:os.system is not allowed",
    ),
    ("03", "epochs=!!python/name:os.system ''", r"!!python/name:os.system is not allowed"),
    ("03", "seeds=!!python/tuple [0, 1]", r"!!python/tuple is not allowed"),
    ("03", "dataset=!!timestamp 2024-01-01", r"!!timestamp is not allowed"),
    ("03", "epochs=!local 3", r"the YAML tag !local is not allowed"),
    ("03", "seeds=&s [*s]", r"alias"),
    ("03", "epochs=" + "[" * 1000 + "]" * 1000, r"epochs=.*nested"),
    ("03", "seeds=" + "[" * 150 + "]" * 150, r"nested deeper than 100 levels"),
    ("08", "weights_paths={a: x, a: y}", r"key 'a' appears twice"),
    ("08", "weights_paths={1: x}", r"weights_paths has the key 1 .*keys are text"),
    ("08", "weights_paths={null: x}", r"keys are text"),
    ("08", "weights_paths=&w {x: *w}", r"alias"),
    ("03", "depth=010", r"depth = '010' is a string; depth expects an integer"),
    ("03", "depth=1:30", r"depth = '1:30' is a string; depth expects an integer"),
]


@pytest.mark.parametrize(("notebook", "assignment", "match"), REFUSED_ASSIGNMENTS)
def test_run_refuses_a_value_that_is_not_plain(capsys, tmp_path, papermill_cells, notebook, assignment, match) -> None:
    marker = tmp_path / "MARKER"
    rc, text = run_cli(capsys, tmp_path, notebook, assignment.replace("MARKER", str(marker)))
    refused(rc, text, match, marker, one_line="expects" not in match)
    assert papermill_cells == []


@pytest.mark.parametrize(
    ("notebook", "assignment", "name", "value"),
    [
        ("03", "lr=1e-3", "lr", 0.001),
        ("03", "lr=2E-4", "lr", 0.0002),
        ("11", "probe_C=[1e-2, 1e+1]", "probe_C", [0.01, 10.0]),
        ("08", "device=2024-01-01", "device", "2024-01-01"),
        ("08", "device='1e-3'", "device", "1e-3"),
        ("08", "weights_paths={a: 1.5e3}", "weights_paths", {"a": 1500.0}),
    ],
)
def test_run_reads_numbers_in_exponent_form_and_dates_as_they_are_written(
    capsys, tmp_path, papermill_cells, notebook, assignment, name, value
) -> None:
    rc, text = run_cli(capsys, tmp_path, notebook, assignment)
    assert rc == 0, f"[message] {text}"
    got = papermill_cells[0][name]
    assert got == value and type(got) is type(value), f"[silent] {got!r}"


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["run"], r"the following arguments are required: notebook"),
        (["run", "03", "--timeout", "x"], r"--timeout: .*positive"),
        (["run", "03", "--timeout", "0"], r"--timeout: .*positive"),
        (["run", "03", "--timeout", "-5"], r"--timeout: .*positive"),
        (["run", "03", "--progress", "fancy"], r"--progress: invalid choice"),
        (["bogus"], r"invalid choice: 'bogus'"),
        (["run", "03", "--scale", ".."], r"unknown scale '\.\.'; the scales are smoke, "),
        (["params", "03", "--scale", ".."], r"unknown scale '\.\.'"),
        (["params", "03", "--scale", "../params/paper"], r"unknown scale"),
        (["run", "a\x00b.ipynb"], r"is not a notebook"),
        (["run", "03", "epochs=5", "epochs=6"], r"epochs is given twice"),
        (["run", "03", "epochs"], r"not name=value"),
        (["run", "03", "1x=5"], r"not name=value"),
        (["params", "nosuch"], r"'nosuch' is not a notebook"),
    ],
)
def test_command_line_mistakes_are_one_line_with_status_2(capsys, tmp_path, papermill_cells, argv, match) -> None:
    argv = [*argv, "--output", str(tmp_path / "o.ipynb")] if argv[:1] == ["run"] and len(argv) > 1 else argv
    rc, text = call(capsys, argv)
    refused(rc, text, match, one_line="not a notebook" not in match)
    assert papermill_cells == []


# ------------------------------------------------------------------------------------------------ sweep arguments
@pytest.mark.parametrize(
    ("options", "match"),
    [
        (["--workers", "-1"], r"--workers: must be a positive integer"),
        (["--workers", "0"], r"--workers: must be a positive integer"),
        (["--workers", "two"], r"--workers: must be a positive integer"),
        (["--threads-per-point", "0"], r"--threads-per-point: must be a positive integer"),
        (["--retries", "-1"], r"--retries: must be 0 or more"),
        (["--cell-timeout", "0"], r"--cell-timeout: must be a positive integer"),
        (["--jobs", "0"], r"--jobs: must be a positive integer"),
        (["--cores", "-8"], r"--cores: must be a positive integer"),
        (["--name", "../victim"], r"sweep name '\.\./victim' is not a folder name"),
        (["--no-such-option"], r"unrecognized arguments: --no-such-option"),
    ],
)
def test_sweep_arguments_are_checked_before_anything_starts(capsys, tmp_path, options, match) -> None:
    grid = grid_file(tmp_path, TINY + "grid: {x: [1.0]}\n")
    rc, text = dry_run(capsys, grid, tmp_path / "out", *options)
    refused(rc, text, match)


def test_sweep_needs_a_grid_file(capsys, tmp_path) -> None:
    rc, text = call(capsys, ["sweep"])
    refused(rc, text, r"the following arguments are required: grid")
    rc, text = call(capsys, ["sweep", str(tmp_path / "missing.yaml")])
    refused(rc, text, r"missing\.yaml does not exist")


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"workers": -1}, r"workers must be a positive integer"),
        ({"threads_per_point": 0}, r"threads_per_point must be a positive integer"),
        ({"retries": -1}, r"retries must be 0 or more"),
        ({"cell_timeout": 0}, r"cell_timeout must be a positive integer"),
    ],
)
def test_run_sweep_refuses_impossible_counts(tmp_path, options, match) -> None:
    spec = sweep.SweepSpec("empty", FIXTURE, "smoke", [], [])
    try:
        sweep.run_sweep(spec, tmp_path / "out", progress=False, **options)
    except ValueError as err:
        assert re.search(match, str(err)), f"[message] {err}"
        assert not (tmp_path / "out").exists(), "[silent] wrote before checking"
    else:
        pytest.fail(f"[silent] run_sweep accepted {options}")


# ------------------------------------------------------------------------------------------------ grid files
@pytest.mark.parametrize(
    "where",
    [
        "parameters: {weights_paths: {x: TAG}}",
        "grid: {weights_paths: [{x: TAG}]}",
        "zip: {weights_paths: [{x: TAG}], seeds: [[0, 1]]}",
        "parameters: {weights_paths: {x: [TAG]}}",
    ],
)
@pytest.mark.parametrize("kind", TAGS)
def test_a_grid_file_with_a_tag_is_refused_before_anything_runs(capsys, tmp_path, marker, where, kind) -> None:
    grid = grid_file(tmp_path, "notebook: 08_pretrained_features\n" + where.replace("TAG", tagged(kind, marker)) + "\n")
    rc, text = dry_run(capsys, grid, tmp_path / "out")
    if rc == 0:
        render_points(grid)
    refused(rc, text, rf"grid\.yaml.*the YAML tag !!{kind} is not allowed", marker)


GRID_MISTAKES = [
    ("grid: [1, 2\n", r"grid\.yaml.*not valid YAML"),
    ("grid:\n\tx: [1.0]\n", r"not valid YAML"),
    (
        "grid: {x: !!python/object/apply:os.system ['touch MARKER']}\n",
        r"!!python/object/apply:os.system is not allowed",
    ),
    ("!!python/object/apply:os.system ['touch MARKER']\n", r"!!python/object/apply:os.system is not allowed"),
    ("grid: {x: [1.0]}\nplot: !!python/name:os.system ''\n", r"!!python/name:os.system is not allowed"),
    ("grid:\n  x: [1.0]\n  x: [2.0]\n", r"key 'x' appears twice"),
    ("name: a\nname: b\ngrid: {x: [1.0]}\n", r"key 'name' appears twice"),
    ("grid: {x: [.inf]}\n", r"not a finite number"),
    ("parameters: {x: .nan}\n", r"not a finite number"),
    ("parameters: &p {label: *p}\n", r"alias"),
    ("parameters: {label: " + "[" * 1000 + "]" * 1000 + "}\n", r"nested"),
    ("parameters: [1, 2]\n", r"parameters: must be a mapping"),
    ("grid: [1, 2]\n", r"grid: must be a mapping"),
    ("grid: {x: [1.0]}\nzip: 5\n", r"zip: must be a mapping or a list of mappings"),
    ("grid: {x: [1.0]}\nzip: [5]\n", r"zip: must be a mapping or a list of mappings"),
    ("grid: {x: [1.0]}\nplot: [x]\n", r"plot: must be a mapping"),
    ("grid: {x: [1.0]}\nparameters: {results_dir: /tmp/elsewhere}\n", r"results_dir is set by the sweep"),
    ("grid: {figures_dir: [/tmp/a, /tmp/b]}\n", r"figures_dir is set by the sweep"),
    ("seeds: {a: 1}\n", r"seeds .* expects a list"),
    ("grid: {x: [1.0]}\nseeds: [0, 1]\nnotebook: x\n", r"key 'notebook' appears twice"),
]


@pytest.mark.parametrize(("text", "match"), GRID_MISTAKES)
def test_a_grid_file_mistake_is_one_line_with_status_2(capsys, tmp_path, marker, text, match) -> None:
    grid = grid_file(tmp_path, (TINY if not text.startswith("!!") else "") + text.replace("MARKER", str(marker)))
    rc, text_out = dry_run(capsys, grid, tmp_path / "out")
    if rc == 0:
        render_points(grid)
    refused(rc, text_out, match, marker, one_line="expects" not in match)


@pytest.mark.parametrize(
    ("head", "match"),
    [
        ("notebook: 3\n", r"notebook: write the notebook's name or its two-digit prefix as text"),
        ("notebook: [03]\n", r"notebook: write the notebook's name"),
        ("notebook: null\n", r"notebook: write the notebook's name"),
        ("scale: ..\nnotebook: 03_architectures\n", r"unknown scale '\.\.'"),
        ("scale: ../../notebooks/params/paper\nnotebook: 03_architectures\n", r"unknown scale"),
    ],
)
def test_a_grid_files_notebook_and_scale_are_names(capsys, tmp_path, head, match) -> None:
    grid = grid_file(tmp_path, head + "grid: {depth: [2]}\n")
    rc, text = dry_run(capsys, grid, tmp_path / "out")
    refused(rc, text, match)


def test_a_grid_file_that_is_not_utf8_is_refused(capsys, tmp_path) -> None:
    grid = tmp_path / "grid.yaml"
    grid.write_bytes(TINY.encode() + b"name: caf\xe9\n")
    rc, text = dry_run(capsys, grid, tmp_path / "out")
    refused(rc, text, r"grid\.yaml is not UTF-8 text")


@pytest.mark.parametrize(
    ("text", "check"),
    [
        ("notebook: 03\ngrid: {depth: [2, 3]}\n", lambda spec: spec.notebook.stem == "03_architectures"),
        (TINY + "parameters: {x: 1e-3}\ngrid: {label: [a]}\n", lambda spec: spec.points[0].params["x"] == 0.001),
        (TINY + "grid: {x: [1e-3, 2.5E+2]}\n", lambda spec: [p.params["x"] for p in spec.points] == [0.001, 250.0]),
        (
            TINY + "parameters: {label: 2024-01-01}\ngrid: {x: [1.0]}\n",
            lambda s: s.points[0].params["label"] == "2024-01-01",
        ),
        (TINY + "name: my-sweep_2.0\ngrid: {x: [1.0]}\n", lambda spec: spec.name == "my-sweep_2.0"),
    ],
)
def test_a_grid_file_reads_as_the_docs_say(capsys, tmp_path, text, check) -> None:
    grid = grid_file(tmp_path, text)
    rc, out = dry_run(capsys, grid, tmp_path / "out")
    assert rc == 0, f"[message] {out}"
    assert check(sweep.load_grid(grid)), "[silent] read otherwise"


# ------------------------------------------------------------------------------------------------ sweep names
@pytest.mark.parametrize(
    "name", ["/VICTIM", "../victim", "a/../../victim", "..", ".", "a\\\\b", ".hidden", "x\\0y", "''"]
)
def test_a_sweep_name_stays_inside_its_folder(capsys, tmp_path, name) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "SUMMARY.md").write_text("precious")
    out = tmp_path / "out" / "sweeps"
    grid = grid_file(tmp_path, TINY + f'name: "{name.replace("VICTIM", str(victim))}"\ngrid: {{x: [1.0]}}\n')
    rc, text = dry_run(capsys, grid, out)
    if rc == 0:
        folder = (out / sweep.load_grid(grid).name).resolve()
        assert folder.parent == out.resolve(), f"[silent] the sweep would write to {folder}"
    refused(rc, text, r"sweep name .* is not a folder name: use letters, digits")


def test_run_sweep_refuses_a_name_that_leaves_its_folder(tmp_path) -> None:
    """The Python API too: a SweepSpec made by hand is checked before anything is written or deleted."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "SUMMARY.md").write_text("precious")
    spec = sweep.SweepSpec("../victim", FIXTURE, "smoke", [], [])
    with contextlib.suppress(ValueError):
        sweep.run_sweep(spec, tmp_path / "out", progress=False)
    assert (victim / "SUMMARY.md").read_text() == "precious", "[silent] overwrote a file outside the sweep"
    with pytest.raises(ValueError, match="is not a folder name"):
        sweep.run_sweep(spec, tmp_path / "out", progress=False)


def test_a_grid_files_stem_becomes_a_safe_default_name(tmp_path) -> None:
    grid = grid_file(tmp_path, TINY + "grid: {x: [1.0]}\n", name="my grid (v2)")
    assert sweep.load_grid(grid).name == "my_grid__v2_"


# ------------------------------------------------------------------------------------------------ sweep points
CLAIMS = json.dumps({"claims": [{"statement": "x is positive", "outcome": "holds", "evidence": {"double": 2.0}}]})


def _point(tmp_path: Path, claims: bytes | None, record: dict[str, Any] | str | None = None) -> tuple[Any, Path]:
    """A one-point sweep whose point has a completion record (status ok) and the given claim file."""
    grid = grid_file(tmp_path, TINY + "name: s\ngrid: {x: [1.0]}\n")
    spec = sweep.load_grid(grid)
    folder = tmp_path / "out" / "s"
    point = folder / "x=1.0"
    (point / "claims").mkdir(parents=True)
    if claims is not None:
        (point / "claims" / "sweep_tiny.json").write_bytes(claims)
    record = {"key": "K", "point": "x=1.0", "status": "ok", "seconds": 1.0, "attempts": 1} if record is None else record
    (point / "record.json").write_text(record if isinstance(record, str) else json.dumps(record))
    (folder / "sweep.json").write_text(json.dumps({"points": {"x=1.0": "K"}}))
    return spec, point


def _sha(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    ("claims", "outputs"),
    [
        (CLAIMS.encode()[: len(CLAIMS) // 2], None),  # truncated by a full disk or a killed copy
        (b"", None),
        (b"[]", None),
        (json.dumps({"claims": [1, "x"]}).encode(), None),
        (json.dumps({"claims": "x"}).encode(), None),
        (None, {"claims/sweep_tiny.json": _sha(CLAIMS.encode())}),  # recorded, then deleted
        (CLAIMS.replace("holds", "does not hold").encode(), {"claims/sweep_tiny.json": _sha(CLAIMS.encode())}),
    ],
)
def test_a_done_point_whose_claims_are_damaged_is_run_again(tmp_path, claims, outputs) -> None:
    record = {"key": "K", "point": "x=1.0", "status": "ok", "seconds": 1.0, "attempts": 1}
    spec, point = _point(tmp_path, claims, record | ({"outputs": outputs} if outputs else {}))
    assert sweep.point_state(point, "K") != "done", "[silent] a damaged point counts as done"
    rows, _ = sweep.collect(spec, point.parent)
    assert rows[0]["status"] == "not run" and rows[0]["claims_hold"] == "", f"[silent] {rows[0]}"


@pytest.mark.parametrize("record", ["[]", '"ok"', "{", json.dumps({"key": "K", "status": ["ok"]})])
def test_a_malformed_record_is_no_record(tmp_path, record) -> None:
    spec, point = _point(tmp_path, CLAIMS.encode(), record)
    assert sweep.point_state(point, "K") == "todo"
    rows, _ = sweep.collect(spec, point.parent)
    assert rows[0]["status"] == "not run"


def test_an_intact_point_is_done_and_tabulated(tmp_path) -> None:
    record = {"key": "K", "point": "x=1.0", "status": "ok", "seconds": 1.0, "attempts": 1}
    spec, point = _point(
        tmp_path, CLAIMS.encode(), record | {"outputs": {"claims/sweep_tiny.json": _sha(CLAIMS.encode())}}
    )
    assert sweep.point_state(point, "K") == "done"
    rows, _ = sweep.collect(spec, point.parent)
    assert rows[0]["status"] == "ok" and rows[0]["c1"] == "holds" and rows[0]["c1.double"] == 2.0


# ------------------------------------------------------------------------------------------------ the cache
def _values(**params: Any) -> dict[str, Any]:
    return {"a": np.arange(200.0) * params["k"], "k": params["k"]}


class _Counted:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, **params: Any) -> dict[str, Any]:
        self.calls += 1
        return _values(**params)


@contextlib.contextmanager
def _collect_warnings() -> Iterator[list[str]]:
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        messages: list[str] = []
        yield messages
    messages += [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def _read_only(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Make ``root`` read-only to this process (EACCES on every change below it), as a read-only mount is."""
    prefix = str(root)

    def below(path: Any) -> bool:
        return isinstance(path, str | os.PathLike) and os.path.abspath(os.fspath(path)).startswith(prefix)

    def denied(path: Any) -> OSError:
        return PermissionError(errno.EACCES, "Permission denied", os.fspath(path))

    def guard(name: str, writes: Callable[..., bool] = lambda *a, **k: True) -> None:
        original = getattr(os, name)

        def wrapped(path: Any, *args: Any, **kwargs: Any) -> Any:
            if below(path) and writes(path, *args, **kwargs):
                if name == "mkdir" and os.path.exists(path):
                    raise FileExistsError(errno.EEXIST, "File exists", os.fspath(path))
                raise denied(path)
            return original(path, *args, **kwargs)

        monkeypatch.setattr(os, name, wrapped)

    for name in ("mkdir", "unlink", "remove", "rmdir", "rename", "replace"):
        guard(name)
    guard("open", lambda path, flags, *a, **k: bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC)))


@pytest.mark.parametrize("how", ["read-only", "a file in the way"])
def test_an_unwritable_cache_warns_once_and_computes(tmp_path, monkeypatch, how) -> None:
    root = tmp_path / "cache"
    if how == "read-only":
        root.mkdir()
        _read_only(monkeypatch, root)
    else:
        (tmp_path / "file").write_text("not a folder")
        root = tmp_path / "file" / "cache"
    fn = _Counted()
    with _collect_warnings() as messages:
        first = load_or_compute("ro", fn, {"k": 2}, cache_dir=root)
        again = load_or_compute("ro", fn, {"k": 2}, cache_dir=root)
        other = load_or_compute("ro2", fn, {"k": 3}, cache_dir=root)
    assert fn.calls == 3 and first["k"] == again["k"] == 2 and other["k"] == 3
    np.testing.assert_array_equal(first["a"], np.arange(200.0) * 2)
    assert len(messages) == 1 and re.search(r"not writable.*computed but not stored.*REPALIGN_CACHE", messages[0])


def _unprivileged() -> list[str]:
    """A command prefix under which chmod a-w is binding: none for a non-root user; ``unshare -U`` for root."""
    if os.geteuid() != 0:
        return []
    if shutil.which("unshare") and subprocess.run(["unshare", "-U", "true"], capture_output=True).returncode == 0:
        return ["unshare", "-U"]
    pytest.skip("running as root without user namespaces: no way to make a folder read-only")


READER = """
import json, sys, warnings
import numpy as np
from repalign.core.cache import CacheWarning, load_or_compute
calls = []
def fn(k):
    calls.append(k)
    return {"a": np.arange(200.0) * k, "k": k}
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    got = {k: load_or_compute("ro", fn, {"k": k}, cache_dir=sys.argv[1])["k"] for k in (1, 1, 2, 3)}
print(json.dumps({"calls": calls, "got": got, "warnings": [str(w.message) for w in caught]}))
"""


def test_a_really_read_only_cache_is_read_and_not_written(tmp_path, monkeypatch) -> None:
    for name in ("OMP_NUM_THREADS", "PYTHONHASHSEED"):  # the reader's environment: the pinned settings key the cache
        monkeypatch.setenv(name, ENV[name])
    prefix = _unprivileged()
    root = tmp_path / "cache"
    fn = _Counted()
    load_or_compute("ro", fn, {"k": 2}, cache_dir=root)  # a valid entry
    load_or_compute("ro", fn, {"k": 3}, cache_dir=root)  # an entry that will be corrupt
    (bad,) = [p for p in (root / "ro").glob("*.json") if json.loads(p.read_text())["payload"]["params"] == {"k": 3}]
    value = bad.with_suffix(".npz")
    value.write_bytes(value.read_bytes()[:100])
    for folder in (root, root / "ro"):
        folder.chmod(0o555)
    try:
        done = subprocess.run([*prefix, sys.executable, "-c", READER, str(root)], capture_output=True, text=True,
                              env=ENV, cwd=tmp_path, timeout=120)  # fmt: skip
    finally:
        for folder in (root, root / "ro"):
            folder.chmod(0o755)
    assert "Traceback" not in done.stderr, f"[traceback] {done.stderr[-1500:]}"
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["got"] == {"1": 1, "2": 2, "3": 3} and sorted(report["calls"]) == [1, 1, 3]
    not_writable = [w for w in report["warnings"] if "not writable" in w]
    corrupt = [w for w in report["warnings"] if "checksum" in w]
    assert len(not_writable) == 1 and len(corrupt) == 1, report["warnings"]
    assert value.stat().st_size == 100  # left as it was: nothing can be deleted there


class _Pickled:
    """Runs ``touch marker`` when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, tuple[str]]:
        return os.system, (f"touch {self.marker}",)


def _plant(entry: Path, data: bytes) -> None:
    """Replace an entry's value file by ``data`` and make its manifest vouch for it (size and checksum)."""
    manifest = json.loads(entry.read_text())
    value = entry.with_name(manifest["file"])
    value.write_bytes(data)
    manifest.update(size=len(data), sha256=_sha(data))
    entry.write_text(json.dumps(manifest))


def _npz(**arrays: Any) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


@pytest.mark.parametrize("where", ["an array", "the structure", "a bare pickle"])
def test_a_planted_pickle_is_detected_and_recomputed_without_running(tmp_path, marker, where) -> None:
    fn = _Counted()
    load_or_compute("p", fn, {"k": 2}, cache_dir=tmp_path)
    (entry,) = (tmp_path / "p").glob("*.json")
    bomb = np.array([_Pickled(marker)], dtype=object)
    structure = np.array(json.dumps({"t": "dict", "items": [["a", {"t": "array", "k": "a0"}]]}))
    data = {
        "an array": lambda: _npz(a0=bomb, __structure__=structure),
        "the structure": lambda: _npz(__structure__=bomb),
        "a bare pickle": lambda: __import__("pickle").dumps(_Pickled(marker)),
    }[where]()
    _plant(entry, data)
    with pytest.warns(CacheWarning, match="could not be read"):
        again = load_or_compute("p", fn, {"k": 2}, cache_dir=tmp_path)
    assert not marker.exists(), "[code] the cache unpickled a planted object"
    assert fn.calls == 2 and again["k"] == 2


@pytest.mark.parametrize("name", ["../../escape", "/abs/escape", "a/../../escape"])
def test_a_cache_name_stays_inside_the_cache(tmp_path, name) -> None:
    root = tmp_path / "cache"
    load_or_compute(name, _Counted(), {"k": 1}, cache_dir=root)
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(root in p.parents for p in written), written


@pytest.mark.parametrize("name", ["..", ".", "", "///"])
def test_a_cache_name_without_usable_characters_is_refused(tmp_path, name) -> None:
    with pytest.raises(ValueError, match="has no usable characters"):
        load_or_compute(name, _Counted(), {"k": 1}, cache_dir=tmp_path)


def _hammer(root: str, writer: bool, seconds: float, queue: Any) -> None:
    """One process of the concurrency test: read (or force-write) three entries over and over."""
    fn = _Counted()
    wrong = n = 0
    with _collect_warnings() as messages:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            k = n % 3 + 1
            got = load_or_compute("shared", fn, {"k": k}, cache_dir=root, force=writer)
            wrong += int(got["k"] != k or not np.array_equal(got["a"], np.arange(200.0) * k))
            n += 1
    queue.put({"writer": writer, "calls": fn.calls, "n": n, "wrong": wrong, "warnings": messages[:3],
               "n_warnings": len(messages)})  # fmt: skip


def test_processes_sharing_a_cache_never_see_an_entry_being_written_as_corrupt(tmp_path) -> None:
    for k in (1, 2, 3):
        load_or_compute("shared", _values, {"k": k}, cache_dir=tmp_path)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_hammer, args=(str(tmp_path), i < 2, 1.5, queue)) for i in range(4)]
    for w in workers:
        w.start()
    reports = [queue.get(timeout=60) for _ in workers]
    for w in workers:
        w.join(timeout=30)
    assert sum(r["wrong"] for r in reports) == 0
    readers = [r for r in reports if not r["writer"]]
    assert all(r["n"] > 10 for r in reports), reports
    assert sum(r["n_warnings"] for r in reports) == 0, f"[silent] spurious warnings: {reports}"
    assert sum(r["calls"] for r in readers) == 0, f"[silent] readers recomputed: {reports}"


def test_a_cache_warning_in_a_kernel_also_reaches_the_console(tmp_path, monkeypatch, capfd) -> None:
    """In a kernel sys.stderr is the notebook's; the process's own stderr is the console of `repalign run`."""
    load_or_compute("w", _values, {"k": 1}, cache_dir=tmp_path)
    (value,) = (tmp_path / "w").glob("*.npz")
    value.write_bytes(b"garbage")
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    notebook = io.StringIO()
    monkeypatch.setattr(sys, "stderr", notebook)
    with pytest.warns(CacheWarning):
        load_or_compute("w", _values, {"k": 1}, cache_dir=tmp_path)
    console = capfd.readouterr().err
    assert re.search(r"warning \(CacheWarning\): cache entry .* unusable", console), f"[silent] {console!r}"


def test_a_sweep_warns_once_about_an_unwritable_cache_before_it_starts(capsys, tmp_path, monkeypatch) -> None:
    (tmp_path / "file").write_text("")
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "file" / "cache"))
    started = []
    monkeypatch.setattr(sweep, "run_sweep", lambda spec, out, **kw: started.append(capsys.readouterr().err))
    monkeypatch.setattr(sweep, "_report", lambda result: 0)
    grid = grid_file(tmp_path, TINY + "grid: {x: [1.0]}\n")
    with _collect_warnings() as messages:
        assert sweep.main([str(grid), "--out", str(tmp_path / "out")]) == 0
    assert len(started) == 1
    shown = started[0] + "".join(messages)
    assert shown.count("not writable") == 1, f"[silent] {shown!r}"


# ------------------------------------------------------------------------------------------------ optional extras
MISSING = ("yaml", "papermill", "torch", "dask", "distributed", "ipykernel", "matplotlib")


@pytest.mark.parametrize(
    ("argv", "missing", "match"),
    [
        (["run", "00"], MISSING, r"repalign run needs .*: pip install 'repalign\[notebooks\]'"),
        (["run", "00", "lr=0.1"], ("papermill",), r"repalign run needs papermill.*pip install 'repalign\[notebooks\]'"),
        (["params", "03", "--scale", "replicate"], ("yaml",), r"pip install 'repalign\[notebooks\]'"),
        (["sweep", "GRID", "--dry-run"], ("yaml",), r"repalign sweep needs yaml.*pip install 'repalign\[sweep\]'"),
        (["sweep", "GRID"], ("distributed",), r"needs distributed.*pip install 'repalign\[notebooks,sweep\]'"),
    ],
)
def test_a_missing_extra_is_named_with_its_pip_command(capsys, tmp_path, monkeypatch, argv, missing, match) -> None:
    for name in missing:
        monkeypatch.setitem(sys.modules, name, None)
    grid = grid_file(tmp_path, TINY + "grid: {x: [1.0]}\n")
    argv = [str(grid) if a == "GRID" else a for a in argv]
    argv += ["--output", str(tmp_path / "o.ipynb")] if argv[0] == "run" else []
    argv += ["--out", str(tmp_path / "out")] if argv[0] == "sweep" else []
    rc, text = call(capsys, argv)
    refused(rc, text, match)


def test_params_needs_no_extra(capsys, monkeypatch) -> None:
    for name in MISSING:
        monkeypatch.setitem(sys.modules, name, None)
    rc, text = call(capsys, ["params", "03"])
    assert rc == 0 and "epochs = " in text


BLOCKED = (
    "import sys; sys.modules.update(dict.fromkeys({missing!r}, None)); "
    "from repalign.run.cli import main; sys.exit(main(sys.argv[1:]))"
)


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["run", "00"], r"pip install 'repalign\[notebooks\]'"),
        (["sweep", "GRID"], r"pip install 'repalign\[notebooks,sweep\]'"),
    ],
)
def test_a_core_install_names_the_extra_in_a_real_process(tmp_path, argv, match) -> None:
    grid = grid_file(tmp_path, TINY + "grid: {x: [1.0]}\n")
    argv = [str(grid) if a == "GRID" else a for a in argv]
    code = BLOCKED.format(missing=MISSING)
    done = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, env=ENV,
                          cwd=tmp_path, timeout=120)  # fmt: skip
    refused(done.returncode, done.stdout + done.stderr, match)


# ------------------------------------------------------------------------------------------------ the kernel's check
@pytest.mark.parametrize(
    ("injected", "namespace", "match"),
    [
        ("lr = float('nan')\n", {"lr": math.nan}, r"lr = nan is not a finite number"),
        ("seeds = (0, 1)\n", {"seeds": (0, 1)}, r"seeds is a tuple"),
        ("paths = {'x': b'a'}\n", {"paths": {"x": b"a"}}, r"paths\['x'\] is bytes"),
        ("paths = {1: 'a'}\n", {"paths": {1: "a"}}, r"paths has the key 1"),
        ("paths = {'x': {1, 2}}\n", {"paths": {"x": {1, 2}}}, r"paths\['x'\] is a set"),
    ],
)
def test_the_kernels_own_check_refuses_values_that_are_not_plain(injected, namespace, match) -> None:
    history = ["", "lr = 0.1\nseeds = [0]\npaths = {}\n", "# Parameters\n" + injected]
    with pytest.raises(params.ParameterError, match=match):
        params.check_kernel({"In": history, **namespace})


def test_the_kernels_own_check_passes_plain_values() -> None:
    history = ["", "lr = 0.1\npaths = {}\n", '# Parameters\nlr = 0.001\npaths = {"x": "a\'\\"b"}\n']
    params.check_kernel({"In": history, "lr": 0.001, "paths": {"x": "a'\"b"}})


# ------------------------------------------------------------------------------------------------ real processes
def _notebook(path: Path, parameters: str, code: str) -> Path:
    cells = [
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": parameters, "outputs": [],
         "execution_count": None, "id": "p"},
        {"cell_type": "code", "metadata": {}, "source": code, "outputs": [], "execution_count": None, "id": "c"},
    ]  # fmt: skip
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path.write_text(json.dumps({"cells": cells, "metadata": {"kernelspec": kernelspec}, "nbformat": 4,
                                "nbformat_minor": 5}))  # fmt: skip
    return path


@pytest.mark.notebook
def test_run_refuses_a_binary_value_before_a_real_kernel_starts(tmp_path, marker) -> None:
    nb = _notebook(tmp_path / "99_tiny.ipynb", "paths = {}\nfigures_dir = 'f'\nresults_dir = 'r'\n", "x = 1")
    argv = [sys.executable, "-m", "repalign", "run", str(nb), f"paths={{x: {tagged('binary', marker)}}}",
            "--output", str(tmp_path / "o.ipynb")]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    refused(done.returncode, done.stdout + done.stderr, r"!!binary is not allowed", marker)


@pytest.mark.notebook
def test_a_cache_warning_of_a_real_kernel_reaches_the_console(tmp_path, monkeypatch) -> None:
    from repalign.core.numerics import CLEARED, pinned_environment

    cache = tmp_path / "cache"
    for name in CLEARED:  # the kernel runs pinned, and the pinned settings are part of the key: plant it the same way
        monkeypatch.delenv(name, raising=False)
    for name, value in pinned_environment({}).items():
        monkeypatch.setenv(name, value)
    load_or_compute("w", _values, {"k": 1}, cache_dir=cache, version="test")
    (value,) = (cache / "w").glob("*.npz")
    value.write_bytes(b"garbage")
    code = (
        "import numpy as np\nfrom repalign.core.cache import load_or_compute\n"
        "got = load_or_compute('w', lambda k: {'a': np.arange(200.0) * k, 'k': k}, {'k': 1}, version='test')"
    )
    nb = _notebook(tmp_path / "99_cache.ipynb", "figures_dir = 'f'\nresults_dir = 'r'\n", code)
    argv = [sys.executable, "-m", "repalign", "run", str(nb), "--output", str(tmp_path / "o.ipynb")]
    done = subprocess.run(argv, capture_output=True, text=True, env={**ENV, "REPALIGN_CACHE": str(cache)},
                          cwd=tmp_path, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert re.search(r"warning \(CacheWarning\): cache entry .* unusable", done.stderr), f"[silent] {done.stderr!r}"


SLOW = """x = 1.0
sleep = 0.0
seeds = [0, 1]
figures_dir = 'f'
results_dir = 'r'
"""
SLOW_CODE = """import time
import repalign as ra
from repalign.run import claims
params = claims.snapshot(globals())
time.sleep(sleep)
ra.spectrum([[0.0], [1.0], [3.0]], [0.0, 1.0, 1.0])
claims.report([claims.check('x is positive', x > 0, double=2 * x)], 'slow', params, results_dir)
"""


@pytest.mark.distributed
@pytest.mark.notebook
def test_ctrl_c_on_a_two_worker_sweep_is_quiet_and_its_table_tells_the_truth(tmp_path) -> None:
    """Ctrl-C (SIGINT to the terminal's process group) while two points run: one line, status 130; the table and
    the summary line count every record on disk, including points that finished during the shutdown; a second run
    would run exactly the points without a record."""
    _notebook(tmp_path / "slow.ipynb", SLOW, SLOW_CODE)
    grid = grid_file(tmp_path, "notebook: slow.ipynb\nname: slow\nparameters: {sleep: 4}\ngrid: {x: [1.0, 2.0, 3.0]}\n")
    folder = tmp_path / "out" / "slow"
    argv = [sys.executable, "-m", "repalign", "sweep", str(grid), "--out", str(tmp_path / "out"), "--workers", "2",
            "--no-progress"]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV, cwd=tmp_path,
                            start_new_session=True)  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while len(list(folder.glob("*/kernel.log"))) < 2 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        time.sleep(4.5)  # the points are near their end: some finish while the sweep shuts down
        os.killpg(proc.pid, signal.SIGINT)
        out, err = proc.communicate(timeout=120)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in out + err and "WARNING" not in err, f"[traceback] {err[-3000:]}"
    assert len([line for line in err.splitlines() if line.strip()]) <= 1, err
    time.sleep(2)  # anything still running after the sweep returned would write now
    on_disk = {p.parent.name for p in folder.glob("*/record.json") if json.loads(p.read_text())["status"] == "ok"}
    table = (folder / "table.csv").read_text().splitlines()
    in_table = {line.split(",")[0] for line in table[1:] if ",ok," in line}
    assert in_table == on_disk, f"[silent] table {in_table} vs records {on_disk}"
    assert f"{len(on_disk)} ok" in out, out
    assert not list(folder.glob("*/error.json")), "an interrupted point is no infrastructure error"
