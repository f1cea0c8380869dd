"""Sweeps (repalign.run.sweep): grid expansion and checks, and real sweeps of a tiny notebook on a 2-worker LocalCluster.

The fixture notebook (tests/fixtures/sweep_tiny.ipynb) reports one exact claim about its parameter ``x`` and raises
when ``fail`` is true. The library's code version is pinned in these tests, so that an edit to ``repalign/`` while
they run does not make a finished point look out of date.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from repalign.run import sweep
from repalign.run.params import ParameterError

FIXTURE = Path(__file__).parent / "fixtures" / "sweep_tiny.ipynb"
PINNED = "test-version"


def write_grid(folder: Path, name: str, **fields) -> Path:
    path = folder / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"notebook": str(FIXTURE), "name": name, **fields}, sort_keys=False))
    return path


@pytest.fixture(autouse=True)
def pinned_version(monkeypatch):
    monkeypatch.setattr("repalign.core.cache.code_version", lambda *_: PINNED)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    with sweep.local_cluster(workers=2) as cluster, distributed.Client(cluster) as c:
        yield c


def read_table(folder: Path) -> list[dict[str, str]]:
    with open(folder / "table.csv", newline="") as fh:
        return list(csv.DictReader(fh))


# ---------------------------------------------------------------------------------------------------- the grid
def test_expand_is_the_product_of_grid_and_zip_groups():
    points = sweep.expand({"a": [1, 2], "b": ["x", "y", "z"]}, [{"c": [0.1, 0.2], "d": [True, False]}])
    assert len(points) == 2 * 3 * 2
    assert points[0] == {"a": 1, "b": "x", "c": 0.1, "d": True}
    assert points[-1] == {"a": 2, "b": "z", "c": 0.2, "d": False}
    assert len({sweep.point_name(p) for p in points}) == len(points)
    with pytest.raises(ValueError, match="one length"):
        sweep.expand({}, [{"c": [1, 2], "d": [1]}])
    with pytest.raises(ValueError, match="vary in two places"):
        sweep.expand({"a": [1]}, [{"a": [2]}])


def test_point_names_are_readable_and_safe():
    assert sweep.point_name({"depth": 3, "width": 256}) == "depth=3,width=256"
    assert sweep.point_name({"seeds": [0, 1, 2], "act": "leaky relu/x"}) == "seeds=0-1-2,act=leaky_relu_x"
    assert sweep.point_name({}) == "base"
    assert len(sweep.point_name({"x": "y" * 500})) <= 120


def test_misspelt_parameter_fails_before_anything_runs(tmp_path, capsys):
    grid = write_grid(tmp_path, "bad", grid={"x": [1.0, 2.0], "lable": ["a"]})
    with pytest.raises(ParameterError, match="lable"):
        sweep.load_grid(grid)
    assert sweep.main([str(grid), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "did you mean 'label'" in err and "x = 1.0" in err  # names the fix and lists the parameters
    assert not (tmp_path / "out").exists()
    wrong_type = write_grid(tmp_path, "typed", grid={"x": ["one"]})
    with pytest.raises(ParameterError, match="expects a number"):
        sweep.load_grid(wrong_type)


def test_seeds_and_scale_enter_every_point(tmp_path):
    spec = sweep.load_grid(write_grid(tmp_path, "s", seeds=[3, 4, 5], parameters={"label": "q"}, grid={"x": [1, 2]}))
    assert [p.params["seeds"] for p in spec.points] == [[3, 4, 5]] * 2
    assert {p.params["label"] for p in spec.points} == {"q"}
    with pytest.raises(ValueError, match="both fixed"):
        sweep.load_grid(write_grid(tmp_path, "t", seeds=[0, 1], grid={"seeds": [[0, 1], [2, 3]]}))


def test_flatten_evidence_keeps_numbers_and_mean_std_pairs():
    flat = sweep.flatten_evidence(
        {"AUC_a": [0.5, 0.01], "n": 3, "ok": True, "text": "x", "by": {"d1": 0.2}, "classes": [3, 8]}, "c1"
    )
    assert flat == {"c1.AUC_a.mean": 0.5, "c1.AUC_a.std": 0.01, "c1.n": 3, "c1.ok": True, "c1.by.d1": 0.2}


def test_slurm_job_script_has_the_requested_options():
    pytest.importorskip("dask_jobqueue")
    with sweep.slurm_cluster(
        queue="cpu", account="proj42", cores=8, memory="16GB", walltime="01:30:00", job_extra=["--qos=low"]
    ) as cluster:
        script = cluster.job_script()
    for line in ("#SBATCH -p cpu", "#SBATCH -A proj42", "#SBATCH -t 01:30:00", "#SBATCH --qos=low"):
        assert line in script
    worker = script.strip().splitlines()[-1]
    assert "--nworkers 8" in worker and "--nthreads 1" in worker and worker.endswith("--memory-limit 0")


# ---------------------------------------------------------------------------------------------------- real sweeps
@pytest.mark.distributed
@pytest.mark.notebook
def test_sweep_records_points_failures_and_reruns_nothing(tmp_path, client):
    grid = write_grid(
        tmp_path, "tiny", seeds=[0, 1], grid={"label": ["a"]}, zip={"x": [1.0, 2.0, 3.0], "fail": [False, False, True]}
    )
    spec = sweep.load_grid(grid)
    result = sweep.run_sweep(spec, tmp_path / "out", client=client, progress=False)
    folder = tmp_path / "out" / "tiny"
    failing = {"label=a,x=3.0,fail=True"}
    assert sorted(result.ran) == sorted(p.name for p in spec.points)
    assert set(result.failed) == failing
    for p in spec.points:
        record = json.loads((folder / p.name / "record.json").read_text())
        assert json.loads((folder / p.name / "point.json").read_text())["params"]["x"] == p.params["x"]
        if p.name in failing:
            assert record["status"] == "failed" and record["error"]["ename"] == "ValueError"
            assert "raise ValueError" in record["error"]["cell_source"] and record["attempts"] == 1
        else:
            assert record["status"] == "ok"
            claim_file = folder / p.name / "claims" / "sweep_tiny.json"
            digest = hashlib.sha256(claim_file.read_bytes()).hexdigest()
            assert record["outputs"] == {"claims/sweep_tiny.json": digest}  # a claim file damaged later: run again
            claim = json.loads(claim_file.read_text())
            assert claim["parameters"]["x"] == p.params["x"]
            assert (folder / p.name / "figures" / "x.txt").read_text().strip() == str(p.params["x"])
    rows = read_table(folder)
    assert [r["point"] for r in rows] == [p.name for p in spec.points]
    for r in rows:
        ok = r["fail"] == "False"
        assert r["status"] == ("ok" if ok else "failed")
        assert (r["c1"], r["c1.double"]) == (("holds", str(2 * float(r["x"]))) if ok else ("", ""))
        assert ("ValueError" in r["error"]) != ok
    assert "1 failed" in (folder / "SUMMARY.md").read_text()
    assert (folder / "figure.png").is_file() and (folder / "figure.pdf").is_file()
    table = (folder / "table.csv").read_text()

    again = sweep.run_sweep(spec, tmp_path / "out", client=client, progress=False, skip_failed=True)
    assert again.ran == [] and len(again.skipped) == 3
    retry = sweep.run_sweep(spec, tmp_path / "out", client=client, progress=False)
    assert set(retry.ran) == failing  # a failed point runs again unless --skip-failed; done ones never
    assert [r["point"] for r in read_table(folder)] == [r["point"] for r in rows]
    assert table.count("\n") == (folder / "table.csv").read_text().count("\n")


@pytest.mark.distributed
@pytest.mark.notebook
def test_killed_sweep_reruns_only_the_missing_points(tmp_path, client):
    grid = write_grid(tmp_path, "killed", grid={"x": [1.0, 2.0]})
    folder = tmp_path / "out" / "killed"
    launcher = (
        f"import sys, repalign.core.cache as c; c.code_version = lambda *_: {PINNED!r}; from repalign.run.sweep import main; "
        "sys.exit(main(sys.argv[1:]))"
    )
    args = [sys.executable, "-c", launcher, str(grid), "--out", str(tmp_path / "out"), "--workers", "1"]
    proc = subprocess.Popen([*args, "--no-progress"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not list(folder.glob("*/record.json")) and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.kill(proc.pid, signal.SIGKILL)  # a lost node: no clean-up at all
        proc.wait()
    done = {p.parent.name for p in folder.glob("*/record.json")}
    assert done, "the sweep was killed before its first point finished"
    spec = sweep.load_grid(grid)
    result = sweep.run_sweep(spec, tmp_path / "out", client=client, progress=False)
    assert set(result.skipped) == done
    assert set(result.ran) == {p.name for p in spec.points} - done
    assert not result.failed and [r["status"] for r in read_table(folder)] == ["ok"] * 2


def test_errors_are_classified_notebook_or_infrastructure():
    from papermill.exceptions import PapermillExecutionError

    raised = PapermillExecutionError(4, 3, "if fail:\n    raise ValueError('x')", "ValueError", "x", [])
    info = sweep._error_info(raised)
    assert info["kind"] == "notebook" and info["cell_index"] == 4 and info["cell_source"].startswith("if fail:")
    died = RuntimeError("Kernel died before replying to kernel_info")  # nteract/papermill#511: retried
    assert sweep._error_info(died)["kind"] == "infrastructure"
    assert sweep._error_info(ValueError("no such file"))["kind"] == "setup"  # not retried


@pytest.mark.notebook
def test_a_kernel_that_dies_at_start_is_retried_then_left_to_run_again(tmp_path, monkeypatch):
    spec_dir = tmp_path / "jupyter" / "kernels" / "dying"
    spec_dir.mkdir(parents=True)
    argv = [sys.executable, "-c", "import sys; sys.exit(3)", "-f", "{connection_file}"]
    (spec_dir / "kernel.json").write_text(json.dumps({"argv": argv, "display_name": "dies", "language": "python"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    spec = sweep.load_grid(write_grid(tmp_path, "dying", grid={"x": [1.0]}))
    options = {"kernel": "dying", "threads": 1, "retries": 1, "cell_timeout": 60, "start_timeout": 20}
    (task,) = sweep._tasks(spec, tmp_path / "out" / "dying", options)
    record = sweep.run_point(task)
    assert record["error"]["kind"] == "infrastructure" and record["attempts"] == 2
    assert sweep.point_state(task["dir"], task["key"]) == "error"  # no completion record: runs again next time
