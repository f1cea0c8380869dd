"""Structure of the notebooks: what papermill, nbval and the Makefile rely on."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text())["cells"]


def _parameters(path: Path) -> dict:
    cell = next(c for c in _cells(path) if "parameters" in c.get("metadata", {}).get("tags", []))
    tree = ast.parse("".join(cell["source"]))
    out = {}
    for node in tree.body:
        assert isinstance(node, ast.Assign) and len(node.targets) == 1, "parameters cell: plain `name = value` lines"
        out[node.targets[0].id] = ast.literal_eval(node.value)
    return out


def test_every_notebook_has_its_parameter_files_and_a_row_in_the_readme():
    stems = {p.stem for p in NOTEBOOKS}
    assert stems, "no notebooks found"
    for scale in ("replicate", "paper"):
        yamls = {p.stem for p in (ROOT / "notebooks" / "params" / scale).glob("*.yaml")}
        assert yamls == stems, f"params/{scale}: missing {sorted(stems - yamls)}, orphaned {sorted(yamls - stems)}"
    readme = (ROOT / "README.md").read_text()
    missing = sorted(s for s in stems if f"`{s}`" not in readme)
    assert not missing, f"README's notebook table lacks {missing}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_structure(path):
    nb = json.loads(path.read_text())
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    params = _parameters(path)
    assert isinstance(params.get("seeds"), list) and len(params["seeds"]) >= 2, "several seeds"
    assert params["figures_dir"] == "../figures/smoke" and params["results_dir"] == "../results/smoke"
    first = nb["cells"][0]
    assert first["cell_type"] == "markdown" and "claim" in "".join(first["source"]).lower()
    last = "".join(nb["cells"][-1]["source"])
    assert last == (
        f'# NBVAL_CHECK_OUTPUT\nclaims.report(verdicts, "{path.stem}", params, results_dir, data=data_used)'
    ), "one form for every notebook's last cell"
    stored = "".join("".join(o.get("text", "")) for o in nb["cells"][-1].get("outputs", []))
    assert stored.count("claim: ") >= 1, "store the smoke outputs (scripts/store_outputs.py) for nbval"
    checked = [c for c in nb["cells"] if "".join(c["source"]).startswith("# NBVAL_CHECK_OUTPUT")]
    assert len(checked) == 1, "only the verdict cell is compared by nbval"


@pytest.mark.parametrize("scale", ["replicate", "paper"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameter_files_only_set_existing_parameters(path, scale):
    yml = ROOT / "notebooks" / "params" / scale / f"{path.stem}.yaml"
    assert yml.exists(), f"missing {yml.relative_to(ROOT)}"
    values = yaml.safe_load(yml.read_text()) or {}
    unknown = set(values) - set(_parameters(path))
    assert not unknown, f"{yml.name} sets parameters the notebook does not have: {sorted(unknown)}"
    expected = {"replicate": "../figures", "paper": "../figures/paper"}[scale]
    assert values.get("figures_dir") == expected


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_stored_notebooks_show_their_figures_inline(path):
    """Every figure a notebook saves is also shown as an image in its stored outputs (not `<Figure size …>`)."""
    cells = _cells(path)
    saving = [c for c in cells if c["cell_type"] == "code" and "save_figure(" in "".join(c["source"])]
    for cell in saving:
        images = [o for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
        assert images, f"a cell calling save_figure has no image output: {''.join(cell['source'])[:80]!r}"
        texts = "".join("".join(o.get("data", {}).get("text/plain", "")) for o in cell.get("outputs", []))
        assert "<Figure size" not in texts


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_a_notebook_with_a_device_parameter_defaults_to_auto_at_every_scale(path):
    params = _parameters(path)
    if "device" not in params:
        return
    assert params["device"] == "auto"
    for scale in ("replicate", "paper"):
        values = yaml.safe_load((ROOT / "notebooks" / "params" / scale / f"{path.stem}.yaml").read_text()) or {}
        assert values.get("device", "auto") == "auto", f"params/{scale}/{path.stem}.yaml: use device: auto"
