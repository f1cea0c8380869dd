"""Properties of the result cache: computed once, keyed by what made it, corruption rebuilt, sweeps resume."""

from __future__ import annotations

import functools
import json
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import repalign
from repalign.cache import (
    CacheWarning,
    cache_key,
    cache_path,
    clear_cache,
    code_version,
    is_cached,
    load_or_compute,
    run_sweep,
)


class Counter:
    """A computation that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        rng = np.random.default_rng(params.get("seed", 0))
        return {"x": rng.normal(size=(4, 3)), "loss": float(rng.random()), "seed": params.get("seed", 0)}


def _value_file(manifest: Path) -> Path:
    return manifest.parent / json.loads(manifest.read_text())["file"]


def test_computes_once_then_loads(tmp_path: Path) -> None:
    fn = Counter()
    a = load_or_compute("exp", fn, {"seed": 1, "lr": 0.1}, cache_dir=tmp_path)
    b = load_or_compute("exp", fn, {"lr": 0.1, "seed": 1}, cache_dir=tmp_path)  # key order does not matter
    assert len(fn.calls) == 1
    np.testing.assert_array_equal(a["x"], b["x"])
    assert b["loss"] == a["loss"] and isinstance(b["loss"], float) and b["seed"] == 1
    manifest = json.loads(cache_path("exp", fn, {"seed": 1, "lr": 0.1}, cache_dir=tmp_path).read_text())
    assert manifest["params"] == {"seed": 1, "lr": 0.1}
    assert manifest["version"] == code_version() and manifest["format"] == "npz"
    assert manifest["version"].startswith(repalign.__version__ + "+src.")
    assert manifest["provenance"]["repalign"] == repalign.__version__ and len(manifest["sha256"]) == 64


def test_key_depends_on_everything_that_made_the_result(tmp_path: Path) -> None:
    fn = Counter()
    base = cache_key("exp", fn, {"seed": 1})
    assert cache_key("exp", fn, {"seed": 1}) == base
    assert cache_key("exp2", fn, {"seed": 1}) != base
    assert cache_key("exp", fn, {"seed": 2}) != base
    assert cache_key("exp", fn, {"seed": 1}, data_id="mnist") != base
    assert cache_key("exp", fn, {"seed": 1}, version="other") != base
    assert cache_key("exp", Counter.__call__, {"seed": 1}) != base
    assert cache_key("exp", functools.partial(fn, depth=2), {"seed": 1}) != cache_key(
        "exp", functools.partial(fn, depth=3), {"seed": 1}
    )
    arr = np.arange(5.0)
    assert cache_key("exp", fn, {"w": arr}) == cache_key("exp", fn, {"w": arr.copy()})
    assert cache_key("exp", fn, {"w": arr}) != cache_key("exp", fn, {"w": arr + 1})
    with pytest.raises(TypeError, match="data_id"):
        cache_key("exp", fn, {"model": object()})
    # a new data_id or version recomputes
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path)
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path, data_id={"n": 10})
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path, version="0.0.0-test")
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path, data_id={"n": 10})
    assert len(fn.calls) == 3


def test_force_recomputes(tmp_path: Path) -> None:
    fn = Counter()
    load_or_compute("exp", fn, {"seed": 0}, cache_dir=tmp_path)
    load_or_compute("exp", fn, {"seed": 0}, cache_dir=tmp_path, force=True)
    load_or_compute("exp", fn, {"seed": 0}, cache_dir=tmp_path)
    assert len(fn.calls) == 2


def test_cache_dir_defaults_to_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REPALIGN_CACHE", str(tmp_path / "envcache"))
    fn = Counter()
    load_or_compute("exp", fn, {"seed": 3})
    assert is_cached("exp", fn, {"seed": 3})
    assert list((tmp_path / "envcache" / "exp").glob("*.json"))
    monkeypatch.delenv("REPALIGN_CACHE")
    monkeypatch.chdir(tmp_path)
    load_or_compute("exp", fn, {"seed": 3})
    assert (tmp_path / ".cache" / "repalign" / "exp").is_dir() and len(fn.calls) == 2


def test_nested_values_round_trip_without_pickle(tmp_path: Path) -> None:
    value = {
        "curve": np.linspace(0, 1, 7),
        "ints": np.arange(3, dtype=np.int16),
        "history": {"loss": [0.5, 0.25], "acc": (0.9, np.float32(0.95))},
        "layers": ["input", "1"],
        "tensor": torch.arange(4.0),
        "n": 3,
        "ok": True,
        "nothing": None,
        "nan": float("nan"),
    }
    out = load_or_compute("nested", lambda: value, {}, cache_dir=tmp_path)
    again = load_or_compute("nested", lambda: 1 / 0, {}, cache_dir=tmp_path)  # from cache: fn not called
    for got in (out, again):
        np.testing.assert_array_equal(got["curve"], value["curve"])
        assert got["ints"].dtype == np.int16
        assert got["history"]["loss"] == [0.5, 0.25]
        assert isinstance(got["history"]["acc"], tuple) and got["history"]["acc"][1] == np.float32(0.95)
        assert isinstance(got["history"]["acc"][1], np.float32)
        assert got["layers"] == ["input", "1"] and got["n"] == 3 and got["ok"] is True and got["nothing"] is None
        assert isinstance(got["tensor"], torch.Tensor) and torch.equal(got["tensor"], value["tensor"])
        assert np.isnan(got["nan"])
    manifest = cache_path("nested", lambda: None, {}, cache_dir=tmp_path)
    with np.load(_value_file(manifest), allow_pickle=False) as data:  # a plain npz: no pickles inside
        assert len(data.files) >= 4


def test_state_dict_round_trips_with_torch_save(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))

    def make() -> OrderedDict[str, torch.Tensor]:
        return model.state_dict()

    sd = load_or_compute("weights", make, {}, cache_dir=tmp_path)
    sd2 = load_or_compute("weights", make, {}, cache_dir=tmp_path)
    assert json.loads(cache_path("weights", make, {}, cache_dir=tmp_path).read_text())["format"] == "pt"
    fresh = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 1))
    fresh.load_state_dict(sd2)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(sd[k], v)
        torch.testing.assert_close(fresh.state_dict()[k], v)


class Opaque:
    def __init__(self, v: int) -> None:
        self.v = v


def test_pickle_fallback_and_refusal(tmp_path: Path) -> None:
    out = load_or_compute("obj", lambda: Opaque(7), {}, cache_dir=tmp_path)
    again = load_or_compute("obj", lambda: Opaque(8), {}, cache_dir=tmp_path)
    assert out.v == again.v == 7
    assert json.loads(cache_path("obj", lambda: None, {}, cache_dir=tmp_path).read_text())["format"] == "pickle"
    with pytest.raises(TypeError, match="allow_pickle"):
        load_or_compute("obj", lambda: Opaque(8), {}, cache_dir=tmp_path, allow_pickle=False)
    with pytest.raises(TypeError, match="pickle"):
        load_or_compute("obj2", lambda: Opaque(8), {}, cache_dir=tmp_path, allow_pickle=False)


def _corrupt_truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _corrupt_flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"not a zip file at all")


@pytest.mark.parametrize("damage", [_corrupt_truncate, _corrupt_flip, _corrupt_garbage])
@pytest.mark.parametrize("kind", ["npz", "pt", "pickle"])
def test_corrupt_file_is_detected_deleted_and_recomputed(tmp_path: Path, damage: Any, kind: str) -> None:
    calls = []

    def make(**params: Any) -> Any:
        calls.append(1)
        if kind == "npz":
            return {"a": np.arange(100.0)}
        if kind == "pt":
            return {"w": torch.arange(100.0)}
        return Opaque(5)

    load_or_compute("c", make, {"k": kind}, cache_dir=tmp_path)
    manifest = cache_path("c", make, {"k": kind}, cache_dir=tmp_path)
    value_file = _value_file(manifest)
    assert value_file.suffix == {"npz": ".npz", "pt": ".pt", "pickle": ".pkl"}[kind]
    damage(value_file)
    with pytest.warns(CacheWarning, match="checksum"):
        out = load_or_compute("c", make, {"k": kind}, cache_dir=tmp_path)
    assert len(calls) == 2
    if kind == "npz":
        np.testing.assert_array_equal(out["a"], np.arange(100.0))
    # the rebuilt entry is valid again: loaded silently
    load_or_compute("c", make, {"k": kind}, cache_dir=tmp_path)
    assert len(calls) == 2


def test_damaged_manifest_or_missing_manifest_recomputes(tmp_path: Path) -> None:
    fn = Counter()
    load_or_compute("m", fn, {"seed": 0}, cache_dir=tmp_path)
    manifest = cache_path("m", fn, {"seed": 0}, cache_dir=tmp_path)
    manifest.write_text("{ truncated")
    with pytest.warns(CacheWarning, match="unusable"):
        load_or_compute("m", fn, {"seed": 0}, cache_dir=tmp_path)
    assert len(fn.calls) == 2
    manifest.unlink()  # value file without manifest: an interrupted write
    with pytest.warns(CacheWarning, match="interrupted"):
        load_or_compute("m", fn, {"seed": 0}, cache_dir=tmp_path)
    assert len(fn.calls) == 3
    assert len(list(manifest.parent.iterdir())) == 2  # one value file and its manifest, no leftovers


def test_failed_computation_leaves_no_entry(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("fail")

    with pytest.raises(RuntimeError):
        load_or_compute("f", boom, {}, cache_dir=tmp_path)
    assert not is_cached("f", boom, {}, cache_dir=tmp_path)
    assert not (tmp_path / "f").exists() or not list((tmp_path / "f").iterdir())


def test_interrupted_sweep_resumes(tmp_path: Path) -> None:
    calls: list[int] = []
    interrupt = {"at": 3}

    def job(i: int, lr: float) -> dict[str, Any]:
        calls.append(i)
        if i == interrupt["at"]:
            raise KeyboardInterrupt
        return {"i": i, "score": np.array([i * lr])}

    configs = [{"i": i, "lr": 0.5} for i in range(1, 6)]
    with pytest.raises(KeyboardInterrupt):
        run_sweep("sweep", configs, job, cache_dir=tmp_path, progress=False)
    assert calls == [1, 2, 3]
    interrupt["at"] = None
    calls.clear()
    results = run_sweep("sweep", configs, job, cache_dir=tmp_path, progress=False)
    assert calls == [3, 4, 5]  # configs 1-2 came from the cache
    assert [r["i"] for r in results] == [1, 2, 3, 4, 5]
    calls.clear()
    run_sweep("sweep", configs, job, cache_dir=tmp_path, progress=False)
    assert calls == []
    run_sweep("sweep", configs[:2], job, cache_dir=tmp_path, progress=False, force=True)
    assert calls == [1, 2]


def test_clear_cache(tmp_path: Path) -> None:
    fn = Counter()
    load_or_compute("a", fn, {"seed": 0}, cache_dir=tmp_path)
    load_or_compute("b", fn, {"seed": 0}, cache_dir=tmp_path)
    assert clear_cache("a", cache_dir=tmp_path) == 2
    assert not is_cached("a", fn, {"seed": 0}, cache_dir=tmp_path)
    assert is_cached("b", fn, {"seed": 0}, cache_dir=tmp_path)
    assert clear_cache(cache_dir=tmp_path) == 2
