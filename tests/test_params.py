"""repalign.run.params: notebook names, parameter defaults, and the checks of what a user passes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from repalign.run import params


def _notebook(path, source="epochs = 3\nlr = 1e-3\nseeds = [0, 1]\nname = 'a'\nflag = False\nextra = None\n"):
    cells = [
        {"cell_type": "markdown", "metadata": {}, "source": "# tiny", "id": "m"},
        {"cell_type": "code", "metadata": {"tags": ["parameters"]}, "source": source, "outputs": [],
         "execution_count": None, "id": "p"},
        {"cell_type": "code", "metadata": {}, "source": "from repalign.run import claims\nsnap = claims.snapshot(globals())",
         "outputs": [], "execution_count": None, "id": "c"},
    ]  # fmt: skip
    nb = {
        "cells": cells,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path.write_text(json.dumps(nb))
    return path


def test_every_notebook_resolves_and_has_defaults():
    names = params.list_notebooks()
    assert names and names[0].startswith("00_")
    for name in names:
        assert params.resolve_notebook(name).stem == name
        assert params.resolve_notebook(f"{name}.ipynb").stem == name
        assert params.resolve_notebook(f"notebooks/{name}.ipynb").stem == name
        got = params.defaults(name)
        assert {"figures_dir", "results_dir", "seeds"} <= set(got)


def test_every_scale_yaml_fits_its_notebook():
    for name in params.list_notebooks():
        for scale in ("replicate", "paper"):
            params.validate(name, params.scale_parameters(name, scale))


def test_prefix_and_unknown_names():
    assert params.resolve_notebook("03").stem.startswith("03_")
    with pytest.raises(ValueError, match="is not a notebook; the notebooks are:\n  00_quickstart"):
        params.resolve_notebook("does_not_exist")
    with pytest.raises(ValueError, match="unknown scale 'huge'"):
        params.scale_parameters("00", "huge")


def test_validate_names_and_types(tmp_path):
    nb = _notebook(tmp_path / "99_tiny.ipynb")
    assert params.validate(nb, {"epochs": 5, "lr": 1})["lr"] == 1  # an integer is a number
    with pytest.raises(params.ParameterError, match="unknown parameter 'epoch' \\(did you mean 'epochs'\\?\\)"):
        params.validate(nb, {"epoch": 5})
    with pytest.raises(params.ParameterError, match="epochs = 'five' is a string; epochs expects an integer"):
        params.validate(nb, {"epochs": "five"})
    with pytest.raises(params.ParameterError, match="seeds = 0 is an integer; seeds expects a list"):
        params.validate(nb, {"seeds": 0})
    with pytest.raises(params.ParameterError, match="seeds = \\[0.5\\]"):
        params.validate(nb, {"seeds": [0.5]})
    with pytest.raises(params.ParameterError, match="flag = 1"):
        params.validate(nb, {"flag": 1})
    assert params.validate(nb, {"extra": [1, 2]})["extra"] == [1, 2]  # a None default takes anything


def test_parse_assignments():
    got = params.parse_assignments(["epochs=5", "seeds=[0, 1]", "lr=1e-3", "name=abc", "x="])
    assert got == {"epochs": 5, "seeds": [0, 1], "lr": 0.001, "name": "abc", "x": ""}
    with pytest.raises(params.ParameterError, match="not name=value"):
        params.parse_assignments(["epochs"])


def test_check_kernel_on_history():
    history = ["", "epochs = 3\nseeds = [0]\n", "# Parameters\nepoch = 5\n", "x = 1"]
    with pytest.raises(params.ParameterError, match="unknown parameter 'epoch'"):
        params.check_kernel({"In": history, "epoch": 5})
    params.check_kernel({"In": ["", "epochs = 3\n", "# Parameters\nepochs = 5\n"], "epochs": 5})
    params.check_kernel({})  # no history (nbval): nothing to check


@pytest.mark.notebook
def test_papermill_misspelt_parameter_fails_with_the_list(tmp_path):
    nb = _notebook(tmp_path / "99_tiny.ipynb")
    cmd = [sys.executable, "-m", "papermill", "--no-progress-bar", "-k", "python3", str(nb), str(tmp_path / "o.ipynb")]
    bad = subprocess.run([*cmd, "-p", "epoch", "5"], capture_output=True, text=True, timeout=120)
    assert bad.returncode != 0
    assert "unknown parameter 'epoch' (did you mean 'epochs'?)" in bad.stdout + bad.stderr
    good = subprocess.run([*cmd, "-p", "epochs", "5"], capture_output=True, text=True, timeout=120)
    assert good.returncode == 0, good.stderr[-2000:]
