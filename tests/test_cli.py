"""The command line (`python -m repalign`, the `repalign` script): measure, run, params, paper-check; and the
guardrails a user meets first (a partial data set on disk, parameters checked before a kernel starts)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import repalign as ra
from repalign.measure.alignment import TargetWarning
from repalign.run import cli, paper_check, userfiles

ROOT = Path(__file__).resolve().parents[1]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONHASHSEED": "0"}


def _labelled(n: int = 240, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d))
    return x, (x[:, 0] + 0.5 * rng.normal(size=n) > 0).astype(np.int64)


def test_measure_on_npy_in_a_subprocess_prints_auc_and_tau_writes_curves_and_never_imports_torch(tmp_path):
    x, y = _labelled()
    np.save(tmp_path / "feats.npy", x)
    np.save(tmp_path / "labels.npy", y)
    code = (
        "import sys; from repalign.run.cli import main; "
        "rc = main(['measure', 'feats.npy', '--targets', 'labels.npy', '--out', 'out']); "
        "print('torch imported:', 'torch' in sys.modules); sys.exit(rc)"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "torch imported: False" in out
    assert "2 classes [0, 1] -> ±1" in out and "AUC" in out and "tau_0.9" in out
    expected = ra.spectrum(x, ra.binary_targets(y))
    row = next(line for line in out.splitlines() if line.startswith("feats "))
    assert f"{expected.auc():.4f}" in row
    saved = json.loads((tmp_path / "out" / "alignment.json").read_text())
    layer = saved["layers"]["feats"]
    assert layer["auc"] == pytest.approx(expected.auc(), rel=1e-12)
    assert layer["tau_0.99"] == pytest.approx(expected.tau_q(0.99), rel=1e-12)
    assert saved["measure"]["center"] is True and "created_utc" not in saved["measure"]["provenance"]
    csv = (tmp_path / "out" / "alignment_curves.csv").read_text().splitlines()
    assert csv[0] == "layer,tau,relative_alignment" and len(csv) == 1 + 62
    assert (tmp_path / "out" / "alignment.png").read_bytes()[:4] == b"\x89PNG"


def test_importing_the_measure_does_not_import_torch():
    code = (
        "import sys, repalign.measure.alignment, repalign.run.cli, repalign.run.params; print('torch' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"


def test_measure_reads_npz_layers_and_a_csv_with_a_target_column(tmp_path, capsys):
    x, y = _labelled()
    np.savez(tmp_path / "layers.npz", input=x, relu=np.maximum(x, 0))
    np.savetxt(tmp_path / "y.csv", y, fmt="%d")
    assert cli.main(["measure", str(tmp_path / "layers.npz"), "--targets", str(tmp_path / "y.csv"),
                     "--out", str(tmp_path / "a")]) == 0  # fmt: skip
    saved = json.loads((tmp_path / "a" / "alignment.json").read_text())
    assert set(saved["layers"]) == {"input", "relu"}
    assert saved["layers"]["relu"]["auc"] == pytest.approx(ra.spectrum(np.maximum(x, 0), 2.0 * y - 1).auc())
    table = np.column_stack([x[:, :3], 50 + 10 * x[:, 0]])
    header = "a,b,c,price"
    np.savetxt(tmp_path / "t.csv", table, delimiter=",", header=header, comments="")
    assert cli.main(["measure", str(tmp_path / "t.csv"), "--target-column", "price", "--out", str(tmp_path / "b")]) == 0
    out = capsys.readouterr().out
    assert "regression targets as given" in out and "centred" in out
    saved = json.loads((tmp_path / "b" / "alignment.json").read_text())
    assert saved["layers"]["t"]["d"] == 3
    assert saved["layers"]["t"]["auc"] == pytest.approx(ra.spectrum(x[:, :3], 50 + 10 * x[:, 0]).auc(), rel=1e-9)


def test_measure_guardrail_warns_on_uncentred_zero_one_targets(tmp_path, capsys):
    x, y = _labelled()
    np.save(tmp_path / "f.npy", x)
    np.save(tmp_path / "y.npy", y.astype(float))
    argv = ["measure", str(tmp_path / "f.npy"), "--targets", str(tmp_path / "y.npy"), "--task", "regression"]
    with pytest.warns(TargetWarning, match="center=True"):
        assert cli.main([*argv, "--no-center", "--out", str(tmp_path / "o")]) == 0
    assert "NOT centred" in capsys.readouterr().out


def test_measure_errors_are_one_line_and_name_the_fix(tmp_path, capsys):
    np.save(tmp_path / "f.npy", np.ones((5, 2)))
    assert cli.main(["measure", str(tmp_path / "f.npy"), "--targets", str(tmp_path / "missing.npy")]) == 2
    assert "missing.npy: no such file" in capsys.readouterr().err
    assert cli.main(["measure", str(tmp_path / "f.npy")]) == 2  # a user's mistake: exit 2, one line
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no targets: give --targets" in err[0]


def test_help_has_examples():
    done = subprocess.run([sys.executable, "-m", "repalign", "measure", "--help"], env=ENV, capture_output=True,
                          text=True, check=True)  # fmt: skip
    assert "examples:" in done.stdout and "--model resnet18" in done.stdout and ".npz" in done.stdout


# ------------------------------------------------------------------------------------------------ notebooks
def test_run_refuses_a_misspelt_or_mistyped_parameter_before_starting_a_kernel(capsys):
    assert cli.main(["run", "03_architectures.ipynb", "epoch=5"]) == 2
    err = capsys.readouterr().err
    assert "unknown parameter 'epoch' (did you mean 'epochs'?)" in err and "epochs = 10" in err
    assert cli.main(["run", "03", "epochs=five", "seeds=0"]) == 2
    err = capsys.readouterr().err
    assert "epochs expects an integer" in err and "seeds expects a list" in err
    assert not list((ROOT / "build" / "custom").glob(".03_architectures.part.ipynb"))


def test_run_lists_the_notebooks_on_a_wrong_name(capsys):
    assert cli.main(["run", "does_not_exist"]) == 2
    err = capsys.readouterr().err
    assert "'does_not_exist' is not a notebook" in err and "00_quickstart" in err and "03_architectures" in err


def test_params_accepts_a_prefix_and_shows_a_scales_values(capsys):
    assert cli.main(["params", "03", "--scale", "replicate"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("03_architectures: parameters") and "epochs = 10" in out and "->" in out
    assert cli.main(["params"]) == 0
    assert "08_pretrained_features" in capsys.readouterr().out


def test_make_help_lists_the_notebooks_and_how_to_see_their_parameters():
    done = subprocess.run(
        ["make", "--no-print-directory", "help"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert "repalign params NB" in done.stdout and "make lab" in done.stdout
    for stem in ("00_quickstart", "03_architectures", "08_pretrained_features"):
        assert f"  {stem}" in done.stdout


def test_makefile_leaves_the_kernels_backend_alone_and_checks_before_paper():
    text = (ROOT / "Makefile").read_text()
    assert "export MPLBACKEND" not in text, "kernels must use the inline backend so figures show"
    paper = text[text.index("\npaper:") :].split("\n\n")[0]
    assert paper.index("paper-check") < paper.index("notebooks SCALE=paper")
    assert "-m repalign run" in text


def test_paper_check_lists_every_missing_data_set_with_its_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path))
    assert cli.main(["paper-check", "00", "01", "02"]) == 1
    out = capsys.readouterr().out
    assert out.startswith("device: ")
    assert "nothing was run" in out
    for name in ("cifar10", "ct_position", "mnist"):
        assert any(name in line and "Fix:" in line for line in out.splitlines()), f"{name} missing from\n{out}"
    assert "  - cifar10 (for 00, 01, 02): " in out, "one line per missing thing, naming the notebooks"
    assert 'make data DATASETS="' in out
    assert cli.main(["paper-check", "07"]) == 0  # generated data: nothing to fetch


def test_paper_check_names_the_torchrun_command_of_each_missing_checkpoint(tmp_path, monkeypatch):
    monkeypatch.setenv("REPALIGN_DATA", str(tmp_path))
    missing, _ = paper_check.paper_check("paper", ["09"])
    message, users, blocking = missing["checkpoint resnet18 ImageNet-Natural"]
    assert blocking and users == ["09_task_similarity"]
    gpus = max(1, __import__("torch").cuda.device_count())  # this machine's GPUs (issue #23: not a fixed 8)
    assert (
        f"make it with: torchrun --standalone --nproc_per_node={gpus} -m repalign.networks.pretrain --arch resnet18"
        in message
    )
    assert "--subset natural --out " in message
    assert message.split("--out ")[1].split()[0].endswith("pretrain/resnet18_imagenet_natural")


@pytest.mark.notebook
def test_plain_papermill_from_elsewhere_writes_into_the_repository(tmp_path):
    """A notebook's relative output folders mean <repository>/notebooks/<folder>, whatever the kernel's cwd."""
    import nbformat
    import papermill as pm

    tag = f"pytest-{uuid.uuid4().hex[:8]}"
    nb = nbformat.v4.new_notebook()
    params_cell = nbformat.v4.new_code_cell(f'figures_dir = "../build/{tag}/figures"\nresults_dir = "../build/{tag}"')
    params_cell.metadata["tags"] = ["parameters"]
    nb.cells = [
        params_cell,
        nbformat.v4.new_code_cell(
            "import matplotlib.pyplot as plt\nimport repalign as ra\nfrom repalign.report import plotting\n"
            "from repalign.run import claims\nparams = claims.snapshot(globals())\n"
            "ra.spectrum([[0.0], [1.0], [3.0]], [0.0, 1.0, 1.0])  # a claim file says how its spectra were made\n"
            "fig, ax = plt.subplots()\nax.plot([0, 1])\nplotting.save_figure(fig, 'f', figures_dir)\n"
            "claims.report([], 'tiny', params, results_dir)"
        ),
    ]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "tiny.ipynb")
    try:
        out = pm.execute_notebook(str(tmp_path / "tiny.ipynb"), str(tmp_path / "out.ipynb"), cwd=str(tmp_path),
                                  kernel_name="python3", progress_bar=False)  # fmt: skip
        assert (ROOT / "build" / tag / "figures" / "f.png").is_file()
        assert (ROOT / "build" / tag / "claims" / "tiny.json").is_file()
        assert not (tmp_path.parent / "build").exists()
        shown = [o for c in out.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
        assert len(shown) == 1, "the figure is shown inline once"
    finally:
        shutil.rmtree(ROOT / "build" / tag, ignore_errors=True)


# ------------------------------------------------------------------------------------------------ data on disk
def _write_idx(path: Path, arr: np.ndarray, code: int) -> None:
    header = np.array([0, 0, code, arr.ndim], dtype=np.uint8).tobytes()
    dims = np.array(arr.shape, dtype=">i4").tobytes()
    path.write_bytes(header + dims + arr.astype(np.uint8).tobytes())


def test_a_partial_data_set_on_disk_warns_when_loading(tmp_path):
    from repalign import data

    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, n in (("train", 40), ("t10k", 10)):
        _write_idx(raw / f"{prefix}-images-idx3-ubyte", np.zeros((n, 28, 28)), 8)
        _write_idx(raw / f"{prefix}-labels-idx1-ubyte", np.arange(n) % 10, 8)
    with pytest.warns(UserWarning, match=r"only part of the data set is on disk .*40 of 60,000"):
        ds = data.load("mnist", root=tmp_path)
    assert len(ds) == 40 and ds.info.coverage == "subset"


def test_sweep_passes_every_argument_to_repalign_sweep(monkeypatch):
    import types

    seen = []
    fake = types.ModuleType("repalign.run.sweep")
    fake.main = lambda argv: seen.append(list(argv)) or 0
    monkeypatch.setitem(sys.modules, "repalign.run.sweep", fake)
    assert cli.main(["sweep", "grid.yaml", "--dry-run", "--help"]) == 0
    assert seen == [["grid.yaml", "--dry-run", "--help"]]


def test_progress_bars_are_text_or_off_outside_a_live_session(monkeypatch):
    from tqdm import tqdm as text_tqdm

    from repalign.core.progress import progress_bar

    monkeypatch.setenv("REPALIGN_PROGRESS", "off")
    bar = progress_bar(range(3))
    assert bar.disable and list(bar) == [0, 1, 2]
    monkeypatch.setenv("REPALIGN_PROGRESS", "text")
    import io

    stream = io.StringIO()
    bar = progress_bar(range(3), file=stream, desc="train")
    assert type(bar) is text_tqdm and bar.mininterval == 10.0 and list(bar) == [0, 1, 2]
    bar.close()
    assert "train" in stream.getvalue() and "3/3" in stream.getvalue()


def test_class_labels_become_plus_minus_one_targets_and_floats_stay_regression():
    y, how = userfiles.prepare_targets(np.array([3, 8, 8, 3]))
    assert np.array_equal(y, [-1.0, 1.0, 1.0, -1.0]) and "2 classes" in how
    y, how = userfiles.prepare_targets(np.array([0, 1, 2, 2, 1]))
    assert y.shape == (5, 3) and set(np.unique(y)) == {-1.0, 1.0} and "one-vs-rest" in how
    y, how = userfiles.prepare_targets(np.array([0.5, 1.25, 3.0]))
    assert "regression" in how and y.dtype == np.float64
    with pytest.raises(ValueError, match="one class only"):
        userfiles.prepare_targets(np.array([1, 1, 1]), "classification")
