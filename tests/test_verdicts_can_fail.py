"""Verdicts must be able to fail: an untrained network (learning rate ~0) makes no "training aligns" claim hold.

Each notebook whose claims are about what training does runs through papermill, as `make` runs it, at its smoke
scale with every learning rate set to 1e-12 (the weights stay at their initialisation), and every claim in its claim
file must come out "does not hold" or "indistinguishable from seed noise". A verdict that still says "holds" would
be one that cannot fail.

All five training notebooks (00, 02-05) run: between them they use four verdict rules, ``more`` (00, 02),
``all_more`` (00, 03, 04), ``increasing`` (00, 03, 05) and ``provided`` (02), on every data set and every network,
optimizer and batch size they train; :func:`test_the_negative_control_covers_every_verdict_rule` fails when a
training notebook starts using a rule none of them runs untrained.

They train for one epoch instead of the smoke scale's 15-40: at a learning rate of 1e-12 the weights move by about
1e-12 per step, so a longer run ends at the same initialisation and decides the same verdicts; the data, the seeds
and the networks are the smoke scale's.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UNTRAINED = 1e-12

#: the notebooks whose every claim is about training -> the parameters that set their learning rates
LEARNING_RATES = {
    "00_quickstart": ["lr"],
    "02_emergence": ["lr"],
    "03_architectures": ["lr"],
    "04_optimizers_and_batch_size": ["lr_adam", "lr_sgd", "lr_rmsprop"],
    "05_layerwise": ["lr"],
}
#: notebook -> the parameters that set how long it trains, at their smallest (see the module docstring)
SHORTEST = {
    "00_quickstart": {"epochs": 1},
    "02_emergence": {"epochs": 1, "epochs_shuffled": 1},
    "03_architectures": {"epochs": 1},
    "04_optimizers_and_batch_size": {"steps": 1},
    "05_layerwise": {"epochs": 1, "record_every": 1},
}
#: the notebooks the negative control runs: every training notebook, so every rule on every configuration
RUN = tuple(LEARNING_RATES)
#: the functions of repalign.run.claims that make a verdict
VERDICT_RULES = (
    "check",
    "more",
    "all_more",
    "all_more_where",
    "increasing",
    "ordered",
    "ordered_each",
    "rank_correlated",
    "provided",
)


def _rules(notebook: str) -> set[str]:
    cells = json.loads((ROOT / "notebooks" / f"{notebook}.ipynb").read_text())["cells"]
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    return set(re.findall(r"\bclaims\.(\w+)\(", code)) & set(VERDICT_RULES)


def test_the_negative_control_covers_every_verdict_rule() -> None:
    used = set().union(*(_rules(nb) for nb in LEARNING_RATES))
    covered = set().union(*(_rules(nb) for nb in RUN))
    assert used, "no verdict rule found in the training notebooks: has claims.<rule>( changed?"
    assert used <= covered, f"rules the negative control never runs untrained: {sorted(used - covered)}"


@pytest.mark.notebook
@pytest.mark.parametrize("notebook", RUN)
def test_no_training_claim_holds_for_an_untrained_network(notebook, tmp_path, monkeypatch):
    papermill = pytest.importorskip("papermill")
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "cache"))
    params = {name: UNTRAINED for name in LEARNING_RATES[notebook]}
    params.update(SHORTEST[notebook], figures_dir=str(tmp_path / "figures"), results_dir=str(tmp_path / "results"))
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
    assert result["parameters"]["seeds"] == [0, 1, 2], "the smoke scale's seeds: the noise rule sees three"
    holding = [c["statement"] for c in result["claims"] if c["outcome"] == "holds"]
    assert not holding, f"claims that hold without training (they cannot fail): {holding}"
