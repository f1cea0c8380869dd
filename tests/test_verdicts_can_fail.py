"""Verdicts must be able to fail: an untrained network (learning rate ~0) makes no "training aligns" claim hold.

Each notebook whose claims are about what training does runs at its smoke scale with every learning rate set to
1e-12 (the weights stay at their initialisation), through papermill as `make` runs it, and every claim in its
claim file must come out "does not hold" or "indistinguishable from seed noise". A verdict that still says
"holds" would be one that cannot fail.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

papermill = pytest.importorskip("papermill")

ROOT = Path(__file__).resolve().parents[1]
UNTRAINED = 1e-12

# notebook -> the parameters that set its learning rates (every claim of these notebooks is about training)
NOTEBOOKS = {
    "00_quickstart": ["lr"],
    "02_emergence": ["lr"],
    "03_architectures": ["lr"],
    "04_optimizers_and_batch_size": ["lr_adam", "lr_sgd", "lr_rmsprop"],
    "05_layerwise": ["lr"],
}


@pytest.mark.parametrize("notebook", sorted(NOTEBOOKS))
def test_no_training_claim_holds_for_an_untrained_network(notebook, tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "cache"))
    params = {name: UNTRAINED for name in NOTEBOOKS[notebook]}
    params.update(figures_dir=str(tmp_path / "figures"), results_dir=str(tmp_path / "results"))
    papermill.execute_notebook(
        str(ROOT / "notebooks" / f"{notebook}.ipynb"),
        str(tmp_path / "out.ipynb"),
        parameters=params,
        cwd=str(ROOT / "notebooks"),
        kernel_name="python3",
        progress_bar=False,
    )
    result = json.loads((tmp_path / "results" / "claims" / f"{notebook}.json").read_text())
    assert result["claims"], "the notebook checked no claim"
    holding = [c["statement"] for c in result["claims"] if c["outcome"] == "holds"]
    assert not holding, f"claims that hold without training (they cannot fail): {holding}"
