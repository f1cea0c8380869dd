"""Issue #23: the paper scale on the GPU and what its claim files record.

Each test states one property and failed on the committed code (f91c348), as noted per test. The torch probe's
agreement with scikit-learn, gd_linear's ``device=``, the batch-by-batch image preparation, AMP in fine-tuning and
the per-cell limit's message are tested in ``tests/test_rehearsal.py`` (written with these fixes); here: that the
GPU paths are taken without the recipes passing a device, that the CPU path stays the replicate scale's, the
Makefile's paper-scale limit and the checkpoint's identity in the provenance.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch

from repalign.core import provenance as prov
from repalign.networks import linear, pretrain, probes

ROOT = Path(__file__).resolve().parents[1]


def _blobs(n: int, d: int, k: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = np.arange(n) % k
    return (rng.normal(size=(n, d)) + rng.normal(size=(k, d))[y]).astype(np.float32), y


# ------------------------------------------------------------------------------------------------ probes, descent
@pytest.mark.slow
def test_probes_without_a_device_are_scikit_learn_on_the_cpu_and_torch_on_a_gpu(monkeypatch) -> None:
    """The recipes call logistic_probe without a device. Where the device rule gives the CPU the probe is exactly
    scikit-learn's (the replicate numbers stay); where it gives a GPU it is the torch probe there (f91c348: always
    scikit-learn on the CPU, no TorchProbe)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = _blobs(120, 6, 3, 0)
    xt, yt = _blobs(60, 6, 3, 1)
    got = probes.logistic_probe(x, y, xt, yt, C=0.1)
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, max_iter=1000, random_state=0))
    ref.fit(x.astype(np.float64), y)
    assert np.array_equal(got["model"].predict_proba(xt.astype(np.float64)), ref.predict_proba(xt.astype(np.float64)))

    asked = []
    real_fit = probes.TorchProbe.fit  # bound to the class

    def fit(x: np.ndarray, labels: np.ndarray, *, C: float, max_iter: int, device: torch.device) -> probes.TorchProbe:
        asked.append(device)
        return real_fit(x, labels, C=C, max_iter=max_iter, device="cpu")  # the real solver, on the CPU here

    fake_gpu = torch.device("cuda", 0)
    monkeypatch.setattr(probes, "get_device", lambda device=None: fake_gpu if device is None else torch.device(device))
    monkeypatch.setattr(probes.TorchProbe, "fit", staticmethod(fit))
    out = probes.logistic_probe(x, y, xt, yt, C=0.1)
    assert asked == [fake_gpu] and isinstance(out["model"], probes.TorchProbe)
    assert abs(out["accuracy"] - got["accuracy"]) <= probes.TORCH_TOLERANCE["accuracy"]


def test_gd_linear_puts_numpy_input_where_the_device_rule_says(monkeypatch) -> None:
    """NumPy features (what the recipes pass) go to ``get_device(None)``: the GPU where there is one (f91c348: always
    the CPU); on the CPU the numbers are those of a CPU tensor input."""
    calls = []
    real = linear.get_device
    monkeypatch.setattr(linear, "get_device", lambda device=None: calls.append(device) or real("cpu"))
    x, y = _blobs(80, 5, 2, 0)
    t = np.where(y == 1, 1.0, -1.0)
    res = linear.gd_linear(x, t, steps=20)
    assert calls == [None]
    ref = linear.gd_linear(torch.as_tensor(x), torch.as_tensor(t), steps=20)
    assert np.array_equal(res.train_loss, ref.train_loss) and np.array_equal(res.weights, ref.weights)


# ------------------------------------------------------------------------------------------------ make paper
def _dry_run(tmp_path: Path, target: str, *extra: str) -> str:
    """The command ``make -n`` prints for ``target`` in a bare copy of the Makefile (no venv, no notebook run)."""
    for rel in ("notebooks/params/paper", "notebooks/params/replicate", "build", "vx"):
        (tmp_path / rel).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Makefile", tmp_path / "Makefile")
    files = ["notebooks/00_quickstart.ipynb", "notebooks/params/paper/00_quickstart.yaml",
             "notebooks/params/replicate/00_quickstart.yaml", "requirements-lock.txt", "pyproject.toml",
             "build/deps.mk", "vx/.repalign-installed"]  # fmt: skip
    for i, rel in enumerate(files):
        (tmp_path / rel).write_text("{}\n" if rel.endswith(".ipynb") else "")
        stamp = 1_700_000_000 + i
        os.utime(tmp_path / rel, (stamp, stamp))
    out = subprocess.run(["make", "-n", target, "VENV=vx", *extra], cwd=tmp_path, capture_output=True, text=True,
                         check=True).stdout  # fmt: skip
    return next(line for line in out.splitlines() if " -m repalign run " in line)


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_make_paper_sets_no_per_cell_limit_unless_paper_timeout_is_given(tmp_path: Path) -> None:
    """f91c348 passed ``--timeout 3600`` to every paper notebook: 09's fine-tuning cell (hours) stopped there."""
    assert "--timeout" not in _dry_run(tmp_path, "build/paper/00_quickstart.ipynb")
    assert _dry_run(tmp_path, "build/paper/00_quickstart.ipynb", "PAPER_TIMEOUT=7200").endswith("--timeout 7200")
    assert _dry_run(tmp_path, "build/replicate/00_quickstart.ipynb").endswith("--timeout 3600")


# ------------------------------------------------------------------------------------------------ provenance
def test_a_noted_checkpoint_is_in_the_provenance_of_later_results(tmp_path: Path, monkeypatch) -> None:
    """Claim files did not say which checkpoint their numbers came from (f91c348): the identity (arch, epochs,
    image size, sha256) of each checkpoint a run reads is in :func:`provenance` afterwards; a run that read none
    has no such entry (the replicate claim files keep their keys)."""
    monkeypatch.setattr(prov, "_CHECKPOINTS", {})
    assert "checkpoints" not in prov.provenance(timestamp=False)
    config = {"arch": "t2t_vit", "dataset": "imagenet", "subset": "natural", "epochs": 300, "image_size": 224}
    record = {"format": pretrain.FORMAT, "model": {}, "optimizer": {}, "scheduler": {}, "scaler": {}, "epoch": 300,
              "done": True, "config": config, "classes": ["n01440764"], "n_train": 10, "world_size": 1,
              "metrics": {}, "provenance": {}}  # fmt: skip
    torch.save(record, tmp_path / pretrain.CHECKPOINT_NAME)
    ident = pretrain.checkpoint_identity(tmp_path, note=True)
    seen = prov.provenance(timestamp=False)["checkpoints"]
    assert seen == [ident]
    assert (seen[0]["arch"], seen[0]["epochs"], seen[0]["image_size"]) == ("t2t_vit", 300, 224)
    assert len(seen[0]["sha256"]) == 64
    device = prov.provenance(timestamp=False)["device"]
    assert {"auto", "gpu", "gpus", "precision"} <= set(device)


def test_note_checkpoint_refuses_an_identity_without_a_hash() -> None:
    with pytest.raises(ValueError, match="sha256"):
        prov.note_checkpoint({"path": "x"})
