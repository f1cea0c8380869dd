"""The same numbers on any machine (issue 21): pinned numerical code paths, provenance that holds only what changes
results, and warm-cache runs byte-identical to cold ones.

The host's own choice of code paths is forced through the libraries' own variables (MKL, ATen, oneDNN, OpenBLAS,
NumPy, thread counts), once as an AVX-512 machine would choose and once as an AVX2 machine would; under
:func:`repalign.core.numerics.pinned_environment` a short training and measurement gives the same bytes both ways,
and without it (on a CPU with AVX-512, where the two choices are different code) it does not.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from repalign.core import numerics
from repalign.core.provenance import installed_torch_version, provenance

ROOT = Path(__file__).resolve().parents[1]

#: a short training (an MLP with Adam, a small CNN with SGD), measurement (the exact spectrum, a score) and
#: classic features (dense SIFT of colour images), hashed
WORKLOAD = r"""
import hashlib
import numpy as np
import torch
import repalign as ra
from repalign.measure.scores import logme, softmax_rows
from repalign.networks.baselines import dense_sift
from repalign.networks.models import mlp, small_cnn
from repalign.networks.training import train

rng = np.random.default_rng(0)
x = rng.standard_normal((256, 96)).astype(np.float32)
y = (x[:, :8].sum(1) > 0).astype(np.float32)
net = train(lambda: mlp(96, 2, 64), x, y, task="binary", epochs=3, lr=1e-3, batch_size=32, seed=0, device="cpu",
            progress=False).model
images = rng.random((64, 1, 28, 28)).astype(np.float32)
cnn = train(lambda: small_cnn(3), images, rng.integers(0, 3, 64), task="multiclass", epochs=2, lr=0.05,
            optimizer="sgd", batch_size=16, seed=0, device="cpu", progress=False).model
with torch.no_grad():
    features = torch.relu(net[0](torch.from_numpy(x))).double().numpy()
    probs = torch.softmax(cnn(torch.from_numpy(images)), 1).numpy()
spec = ra.spectrum(features, ra.binary_targets(y))
parts = [p.detach().numpy() for p in [*net.parameters(), *cnn.parameters()]]
colour = (np.random.default_rng(0).random((8, 32, 32, 3)) * 255).astype(np.uint8)
sift = dense_sift(colour, step=4, resize=64)
logits = rng.standard_normal((512, 1000))
with torch.no_grad():  # torch's vectorised kernels and its reductions' split over threads
    flat = torch.from_numpy(logits).float()
    torch_side = [torch.log_softmax(flat, 1), flat.sum(), flat.mean(0)]
parts += [spec.singular_values, spec.mass, probs, np.array([logme(features, y.astype(int))]), sift]
parts += [softmax_rows(logits), np.tanh(logits), *(t.numpy() for t in torch_side)]
print(hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in parts)).hexdigest())
"""

#: the host's own choice, forced: what an AVX-512 machine with two cores and one with AVX2 only would pick
AVX512_HOST = {
    "ATEN_CPU_CAPABILITY": "avx512",
    "ONEDNN_MAX_CPU_ISA": "ALL",
    "OPENBLAS_CORETYPE": "SkylakeX",
    "MKL_ENABLE_INSTRUCTIONS": "AVX512",
    **dict.fromkeys(numerics.THREAD_VARIABLES, "2"),
}
AVX2_HOST = {
    "ATEN_CPU_CAPABILITY": "avx2",
    "ONEDNN_MAX_CPU_ISA": "AVX2",
    "OPENBLAS_CORETYPE": "Zen",
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",
    "MKL_CBWR": "AUTO",
    "NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL",
    "OPENCV_CPU_DISABLE": "AVX512F,AVX512-COMMON,AVX512-SKX",
    **dict.fromkeys(numerics.THREAD_VARIABLES, "1"),
}


def _bare_environment() -> dict[str, str]:
    """This process's environment without any variable the numerics module sets or clears."""
    names = {*numerics.settings(), *numerics.CLEARED}
    return {k: v for k, v in os.environ.items() if k not in names}


def _workload(env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", WORKLOAD], env=env, capture_output=True, text=True, timeout=300,
                          cwd=ROOT)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout.strip()


def _has_avx512() -> bool:
    try:
        return "avx512f" in Path("/proc/cpuinfo").read_text().split()
    except OSError:
        return False


needs_avx2 = pytest.mark.skipif(not numerics._has_avx2(), reason="the ISA settings apply to x86-64 CPUs with AVX2")


# --------------------------------------------------------------------------------------------------------------
# the pinned settings
# --------------------------------------------------------------------------------------------------------------
@needs_avx2
def test_the_pinned_environment_overrides_every_host_choice_and_clears_the_contradicting_ones():
    host = {"PATH": "/usr/bin", **AVX512_HOST, "NPY_ENABLE_CPU_FEATURES": "X86_V4", "DNNL_MAX_CPU_ISA": "ALL"}
    env = numerics.pinned_environment(host)
    assert env["PATH"] == "/usr/bin", "the rest of the environment passes through"
    for name, value in numerics.ISA_SETTINGS.items():
        assert env[name] == value
    assert all(env[name] == "1" for name in numerics.THREAD_VARIABLES) and env["PYTHONHASHSEED"] == "0"
    assert not set(numerics.CLEARED) & set(env)
    assert numerics.pinned_environment(host, threads=4)["OMP_NUM_THREADS"] == "4"
    with pytest.raises(ValueError, match="at least 1"):
        numerics.pinned_environment(host, threads=0)


def test_on_another_architecture_only_threads_and_hashing_are_pinned(monkeypatch):
    monkeypatch.setattr(numerics.platform, "machine", lambda: "aarch64")
    env = numerics.pinned_environment({"OPENBLAS_CORETYPE": "NEOVERSEN1"})
    assert env["OPENBLAS_CORETYPE"] == "NEOVERSEN1" and "ATEN_CPU_CAPABILITY" not in env
    assert env["OMP_NUM_THREADS"] == "1" and env["PYTHONHASHSEED"] == "0"


@needs_avx2
@pytest.mark.slow
def test_training_and_measurement_give_the_same_bytes_whatever_the_host_would_choose():
    bare = _bare_environment()
    pinned = {name: _workload(numerics.pinned_environment({**bare, **host})) for name, host in
              {"avx512": AVX512_HOST, "avx2": AVX2_HOST}.items()}  # fmt: skip
    assert pinned["avx512"] == pinned["avx2"]
    if not _has_avx512():
        pytest.skip("without AVX-512 the host's two choices are the same code: nothing to tell apart")
    assert _workload({**bare, **AVX512_HOST}) != _workload({**bare, **AVX2_HOST}), (
        "unpinned, the two hosts' code paths should give different bytes (else this test proves nothing)"
    )


# --------------------------------------------------------------------------------------------------------------
# provenance
# --------------------------------------------------------------------------------------------------------------
PROVENANCE = "import json, sys\nfrom repalign.core.provenance import provenance\n{}print(json.dumps(provenance(timestamp=False)))"


def test_provenance_is_the_same_whether_or_not_torch_was_imported_and_names_no_kernel_build():
    env = numerics.pinned_environment(_bare_environment())
    records = []
    for before in ("", "import torch\n"):
        done = subprocess.run([sys.executable, "-c", PROVENANCE.format(before)], env=env, capture_output=True,
                              text=True, cwd=ROOT, timeout=120, check=True)  # fmt: skip
        records.append(json.loads(done.stdout))
    assert records[0] == records[1]
    record = records[0]
    assert record["torch"] == installed_torch_version() and "+" in record["torch"], "torch's build tag is kept"
    assert record["platform"].count("-") == 1, "system and architecture only, no kernel release"
    assert record["numerics"]["variables"] == {k: env[k] for k in record["numerics"]["variables"]}


def test_provenance_shows_a_run_that_did_not_get_the_pinned_settings(monkeypatch):
    for name in {*numerics.settings(), *numerics.CLEARED}:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MKL_ENABLE_INSTRUCTIONS", "AVX512")
    seen = provenance(timestamp=False)["numerics"]["variables"]
    assert seen["MKL_CBWR"] is None and seen["MKL_ENABLE_INSTRUCTIONS"] == "AVX512"


# --------------------------------------------------------------------------------------------------------------
# warm and cold caches
# --------------------------------------------------------------------------------------------------------------
CACHED_CELL = """\
import numpy as np
import repalign as ra
from repalign.core.cache import load_or_compute
from repalign.run import claims

params = claims.snapshot(globals())


def compute(n):
    import torch  # only a cold run imports torch: a warm one loads the result

    torch.manual_seed(0)
    return {"x": torch.rand(n, 2, dtype=torch.float64).numpy(), "y": np.array([0, 1] * (n // 2))}


result = load_or_compute("warm_cold_fixture", compute, {"n": n})
ra.spectrum(result["x"], ra.binary_targets(result["y"]))
verdicts = [claims.check("the fixture ran", True, first=float(result["x"][0, 0]))]
claims.report(verdicts, "warm_cold", params, results_dir)
"""


def test_a_result_cached_without_the_pinned_settings_is_not_served_to_a_run_with_them(monkeypatch):
    from repalign.core.cache import cache_key

    for name, value in numerics.pinned_environment({}).items():
        monkeypatch.setenv(name, value)
    pinned = cache_key("fixture", {"n": 1}, version="v")
    assert cache_key("fixture", {"n": 1}, version="v") == pinned
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # another thread count: other bytes
    assert cache_key("fixture", {"n": 1}, version="v") != pinned


@pytest.mark.notebook
def test_a_warm_cache_run_writes_the_same_claim_file_as_a_cold_one(tmp_path, monkeypatch):
    from repalign.run.notebook import run_notebook

    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "cache"))
    nb = nbformat.v4.new_notebook()
    parameters = nbformat.v4.new_code_cell('n = 8\nresults_dir = "unset"')
    parameters.metadata["tags"] = ["parameters"]
    nb.cells = [parameters, nbformat.v4.new_code_cell(CACHED_CELL)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, tmp_path / "warm_cold.ipynb")
    written = []
    for run in ("cold", "warm"):
        out = tmp_path / run
        run_notebook(tmp_path / "warm_cold.ipynb", {"results_dir": str(tmp_path / "results")}, output=out / "nb.ipynb",
                     progress="none")  # fmt: skip
        written.append((tmp_path / "results" / "claims" / "warm_cold.json").read_bytes())
    assert any((tmp_path / "cache").rglob("*")), "the first run should have filled the cache"
    assert written[0] == written[1]
