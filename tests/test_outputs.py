"""Published results only from make (issue 21): every run but ``make replicate`` / ``make paper`` writes under
``*/custom/<run name>``, make re-runs a scale's notebook when what it depends on beyond its code changes, and
Ctrl-C leaves nothing behind.

The runs and make calls happen in a copy of the checkout made into a git repository of its own, so that
``git status`` sees only what they wrote (colleagues' edits in the real checkout cannot disturb it).
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from repalign.run import notebook, params

ROOT = Path(__file__).resolve().parents[1]
VENV = Path(sys.executable).parent.parent
#: 07 (generated data, offline) made small enough for seconds at any scale
SMALL_07 = ["seeds=[0,1]", "sources=[0]", "n=100", "n_test=100", "depth=1", "width=16", "epochs=2", "gd_steps=20",
            "finetune_per_group=1", "finetune_epochs=2"]  # fmt: skip


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *args], cwd=repo, capture_output=True,
                          text=True, check=True)  # fmt: skip
    return done.stdout


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The checkout's files (tracked and not ignored) in a fresh git repository, everything committed."""
    copy = tmp_path_factory.mktemp("checkout")
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")  # fmt: skip
    for name in filter(None, listed):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    _git(copy, "init", "-q")
    _git(copy, "add", "-A")
    _git(copy, "commit", "-q", "-m", "copy")
    return copy


def _env(repo: Path, cache: Path) -> dict[str, str]:
    """The copy's own code everywhere (papermill's kernel too), its data folder, a cache of the test's."""
    drop = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEFILES")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, "PYTHONPATH": str(repo), "REPALIGN_DATA": str(repo / "data"), "REPALIGN_CACHE": str(cache),
            "REPALIGN_PROGRESS": "off"}  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# where a run writes
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.notebook
@pytest.mark.parametrize("scale", ["smoke", "replicate", "paper"])
def test_a_custom_run_at_any_scale_writes_under_custom_and_leaves_git_status_clean(repo, scale, tmp_path):
    done = subprocess.run([sys.executable, "-m", "repalign", "run", "07", *SMALL_07, "--scale", scale], cwd=repo,
                          env=_env(repo, tmp_path / "cache"), capture_output=True, text=True, timeout=600)  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    name = re.search(r"build/custom/(\S+)\.ipynb", done.stdout).group(1)
    assert re.fullmatch(rf"07_peaks_transfer-{scale}-[0-9a-f]{{8}}", name)
    assert (repo / "results" / "custom" / name / "claims" / "07_peaks_transfer.json").is_file()
    assert list((repo / "figures" / "custom" / name).glob("07_peaks_transfer_*.png"))
    executed = nbformat.read(repo / "build" / "custom" / f"{name}.ipynb", as_version=4)
    first = next(c for c in executed.cells if c.cell_type == "code" and c.get("outputs"))
    assert first.outputs[0]["text"].startswith(f"Scale: {scale} ("), "the banner is the first output"
    assert "results/claims/07_peaks_transfer.json" in first.outputs[0]["text"]
    assert _git(repo, "status", "--porcelain") == "", "a custom run must leave every tracked file as it was"


def test_a_run_is_named_by_notebook_scale_and_parameters_and_its_folders_follow_the_name():
    chosen, out = notebook.plan("07", {"epochs": 3}, scale="replicate")
    name = out.stem
    assert re.fullmatch(r"07_peaks_transfer-replicate-[0-9a-f]{8}", name)
    assert out == ROOT / "build" / "custom" / f"{name}.ipynb"
    assert chosen["figures_dir"] == f"../figures/custom/{name}" and chosen["results_dir"] == f"../results/custom/{name}"
    assert notebook.plan("07", {"epochs": 3}, scale="replicate")[1] == out, "the same run, the same name"
    assert notebook.plan("07", {"epochs": 4}, scale="replicate")[1] != out
    assert notebook.plan("07", {}, scale="paper")[0]["results_dir"].startswith(
        "../results/custom/07_peaks_transfer-paper-"
    )
    named, out = notebook.plan("07", {}, scale="paper", name="peaks_trial")
    assert named["results_dir"] == "../results/custom/peaks_trial" and out.name == "peaks_trial.ipynb"
    with pytest.raises(params.ParameterError, match="--name"):
        notebook.plan("07", {}, name="../escape")


@pytest.mark.parametrize("folder", ["../results", "../results/paper", "../figures", "../results/claims"])
def test_a_run_refuses_a_published_folder(folder):
    with pytest.raises(params.ParameterError, match="make replicate and make paper only"):
        notebook.plan("07", {"results_dir": folder, "figures_dir": folder}, scale="replicate")


def test_a_run_honours_a_private_folder_and_only_make_keeps_the_scales_folders(tmp_path):
    chosen, _ = notebook.plan("07", {"results_dir": str(tmp_path), "figures_dir": "../figures/custom/mine"})
    assert chosen["results_dir"] == str(tmp_path) and chosen["figures_dir"] == "../figures/custom/mine"
    chosen, out = notebook.plan("07", {}, scale="paper", scale_dirs=True)
    assert chosen["results_dir"] == "../results/paper" and out == ROOT / "build" / "paper" / "07_peaks_transfer.ipynb"
    with pytest.raises(params.ParameterError, match="yaml's parameters alone"):
        notebook.plan("07", {"epochs": 2}, scale="replicate", scale_dirs=True)


@pytest.mark.parametrize(
    ("scale", "folder", "first", "replicate_line"),
    [
        ("smoke", "results/smoke", "a check that the notebook runs, not the replication", True),
        ("replicate", "results", "as make replicate runs it). This run's verdicts: results/claims/07_x.json; all "
         "notebooks: results/SUMMARY.md.", False),
        ("paper", "results/paper", "as make paper runs it). This run's verdicts: results/paper/claims/07_x.json; all "
         "notebooks: results/paper/SUMMARY.md.", True),
        ("replicate", "results/custom/r1", "a custom run from the replicate scale's parameters", True),
    ],
)  # fmt: skip
def test_the_banner_says_which_scale_and_where_the_replicate_verdicts_are(scale, folder, first, replicate_line, capsys):
    from repalign.run import claims

    claims.banner("07_x", scale, ROOT / folder)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"Scale: {scale} (") and first in lines[0]
    assert (lines[1:] == ["Replicate-scale verdicts (make replicate): results/claims/07_x.json; all notebooks: "
                          "results/SUMMARY.md."]) == replicate_line  # fmt: skip


# --------------------------------------------------------------------------------------------------------------
# what make re-runs
# --------------------------------------------------------------------------------------------------------------
def _make(repo: Path, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["make", "--no-print-directory", *args, f"VENV={VENV}"], cwd=repo, capture_output=True,
                          text=True, env=_env(repo, tmp_path / "cache"), timeout=300)  # fmt: skip


def _would_run(repo: Path, tmp_path: Path, *goal: str) -> set[str]:
    done = _make(repo, tmp_path, "-n", *goal)
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"-m repalign run (\S+) --scale", done.stdout))


@pytest.mark.slow
def test_make_paper_reruns_the_notebook_whose_checkpoints_changed_and_only_it(repo, tmp_path):
    assert _make(repo, tmp_path, "-n", "notebooks", "SCALE=paper").returncode == 0  # writes deps.mk and the keys
    keys = sorted((repo / "build" / "paper").glob("*.key"))
    assert len(keys) == len(params.list_notebooks())
    for scale in ("paper", "replicate"):
        for stem in params.list_notebooks():
            (repo / "build" / scale / f"{stem}.ipynb").touch()  # every build made after its key
    assert _would_run(repo, tmp_path, "notebooks", "SCALE=paper") == set()
    assert _make(repo, tmp_path, "-q", "notebooks", "SCALE=paper").returncode == 0
    before = {k.name: k.stat().st_mtime_ns for k in keys}
    time.sleep(0.05)
    checkpoint = repo / "data" / "pretrain" / "resnet18_imagenet_natural" / "final.pt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(b"trial")
    assert _would_run(repo, tmp_path, "paper") == {"09_task_similarity"}
    assert _would_run(repo, tmp_path, "notebooks", "SCALE=replicate") == set()
    changed = {k.name for k in keys if k.stat().st_mtime_ns != before[k.name]}
    assert changed == {"09_task_similarity.key"}, "a key is rewritten only when what it holds changed"


# --------------------------------------------------------------------------------------------------------------
# Ctrl-C
# --------------------------------------------------------------------------------------------------------------
@pytest.mark.notebook
def test_ctrl_c_prints_one_line_and_leaves_no_partial_copy(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("import time\ntime.sleep(120)")]
    nb.cells[0].metadata["tags"] = ["parameters"]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "sleepy.ipynb")
    out = tmp_path / "out" / "sleepy.ipynb"

    def interruptible() -> None:  # a terminal's Ctrl-C: SIGINT to a process group of its own
        signal.signal(signal.SIGINT, signal.SIG_DFL)
        os.setsid()

    proc = subprocess.Popen([sys.executable, "-m", "repalign", "run", str(tmp_path / "sleepy.ipynb"), "--output",
                             str(out)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=interruptible)  # fmt: skip
    for line in proc.stdout:
        if "cell 2/2" in line:
            break
    time.sleep(1.0)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130
    assert [line for line in err.splitlines() if line.strip()] == ["sleepy: interrupted; nothing was written"]
    assert not out.exists() and not list(out.parent.glob(".*.part.ipynb"))
