"""Properties of the result cache: computed once, keyed by what made it, corruption rebuilt."""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import repalign
from repalign.core import closure
from repalign.core.cache import CacheWarning, cache_key, code_version, is_cached, load_or_compute


class Counter:
    """A computation that counts its calls."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **params: Any) -> dict[str, Any]:
        self.calls.append(params)
        rng = np.random.default_rng(params.get("seed", 0))
        return {"x": rng.normal(size=(4, 3)), "loss": float(rng.random()), "seed": params.get("seed", 0)}


def _manifest(root: Path, name: str, params: dict[str, Any], **kw: Any) -> Path:
    return root / name / f"{cache_key(name, params, **kw)}.json"


def _value_file(manifest: Path) -> Path:
    return manifest.parent / json.loads(manifest.read_text())["file"]


def test_computes_once_then_loads(tmp_path: Path) -> None:
    fn = Counter()
    a = load_or_compute("exp", fn, {"seed": 1, "lr": 0.1}, cache_dir=tmp_path)
    b = load_or_compute("exp", fn, {"lr": 0.1, "seed": 1}, cache_dir=tmp_path)  # key order does not matter
    assert len(fn.calls) == 1
    np.testing.assert_array_equal(a["x"], b["x"])
    assert b["loss"] == a["loss"] and isinstance(b["loss"], float) and b["seed"] == 1
    manifest = json.loads(_manifest(tmp_path, "exp", {"seed": 1, "lr": 0.1}).read_text())
    assert manifest["payload"]["params"] == {"seed": 1, "lr": 0.1} and manifest["payload"]["name"] == "exp"
    assert manifest["payload"]["version"] == code_version() and manifest["file"].endswith(".npz")
    assert code_version().startswith(repalign.__version__ + "+src.")
    assert manifest["provenance"]["repalign"] == repalign.__version__ and len(manifest["sha256"]) == 64


def test_key_depends_on_everything_that_made_the_result(tmp_path: Path) -> None:
    fn = Counter()
    base = cache_key("exp", {"seed": 1})
    assert cache_key("exp", {"seed": 1}) == base
    assert cache_key("exp2", {"seed": 1}) != base
    assert cache_key("exp", {"seed": 2}) != base
    assert cache_key("exp", {"seed": 1.0}) != base
    assert cache_key("exp", {"seed": 1}, data_id="mnist") != base
    assert cache_key("exp", {"seed": 1}, version="other") != base
    assert cache_key("exp", {"seed": 1}, version=code_version()) == base
    assert cache_key("exp", {"a": {"x": 1, "y": [2, 3]}}) == cache_key("exp", {"a": {"y": (2, 3), "x": 1}})
    arr = np.arange(5.0)
    assert cache_key("exp", {"w": arr}) == cache_key("exp", {"w": arr.copy()})
    assert cache_key("exp", {"w": arr}) != cache_key("exp", {"w": arr + 1})
    assert cache_key("exp", {"w": arr}) != cache_key("exp", {"w": arr.astype(np.float32)})
    assert cache_key("exp", {"w": float("nan")}) != cache_key("exp", {"w": float("inf")})
    with pytest.raises(TypeError, match="data_id"):
        cache_key("exp", {"model": object()})
    # a new data_id or version recomputes
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path)
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path, data_id={"n": 10})
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path, version="0.0.0-test")
    load_or_compute("exp", fn, {"seed": 1}, cache_dir=tmp_path, data_id={"n": 10})
    assert len(fn.calls) == 3


def test_key_is_the_name_not_the_function(tmp_path: Path) -> None:
    """Closures made afresh on every call (the pattern of repalign.recipes) find their entry by name."""

    def make(offset: float) -> Any:
        def compute(seed: int) -> dict[str, Any]:
            return {"v": np.array([seed + offset])}

        return compute

    first = load_or_compute("exp", make(0.0), {"seed": 1}, cache_dir=tmp_path)
    again = load_or_compute("exp", make(100.0), {"seed": 1}, cache_dir=tmp_path)  # same name, params, data_id
    np.testing.assert_array_equal(again["v"], first["v"])
    other = load_or_compute("exp", make(100.0), {"seed": 1}, cache_dir=tmp_path, data_id="shifted")
    np.testing.assert_array_equal(other["v"], [101.0])


def test_a_library_function_is_keyed_by_the_closure_of_its_module(tmp_path: Path) -> None:
    """``fn.__module__`` chooses the code version: a repalign module's closure; outside the package, all of it."""
    module = "repalign.measure.targets"

    def compute(seed: int) -> dict[str, Any]:
        return {"v": np.array([seed])}

    def never(seed: int) -> dict[str, Any]:
        raise AssertionError("the cached entry should have been loaded")

    compute.__module__ = never.__module__ = module
    load_or_compute("lib", compute, {"seed": 1}, cache_dir=tmp_path)
    manifest = json.loads(_manifest(tmp_path, "lib", {"seed": 1}, module=module).read_text())
    assert manifest["payload"]["version"] == code_version(module) != code_version()
    assert is_cached("lib", {"seed": 1}, cache_dir=tmp_path, module=module)
    assert not is_cached("lib", {"seed": 1}, cache_dir=tmp_path)  # the whole package's key: another entry
    again = load_or_compute("lib", functools.partial(never), {"seed": 1}, cache_dir=tmp_path)  # through a partial
    np.testing.assert_array_equal(again["v"], [1])

    compute.__module__ = "__main__"  # defined in a notebook or a script
    load_or_compute("notebook", compute, {"seed": 1}, cache_dir=tmp_path)
    manifest = json.loads(_manifest(tmp_path, "notebook", {"seed": 1}).read_text())
    assert manifest["payload"]["version"] == code_version()


def test_code_version_is_the_digest_of_a_closure() -> None:
    module = "repalign.measure.targets"
    version = code_version(module)
    assert version.startswith(repalign.__version__ + "+src.") and version != code_version()
    assert version == f"{repalign.__version__}+src.{closure.digest(closure.closure_files([module]))[:12]}"
    several = code_version([module, "repalign.core.files"])
    assert several == code_version(("repalign.core.files", module, "repalign.core.files")) != version
    assert code_version("repalign.run.cli") != version  # a larger closure
    with pytest.raises(ModuleNotFoundError):
        code_version("repalign.nowhere")


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
    assert is_cached("exp", {"seed": 3}) and not is_cached("exp", {"seed": 4})
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
        "f64": np.float64(0.5),
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
        assert got["f64"] == 0.5
        assert np.isnan(got["nan"])
    manifest = _manifest(tmp_path, "nested", {})
    with np.load(_value_file(manifest), allow_pickle=False) as data:  # a plain npz: no pickles inside
        assert len(data.files) >= 4


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
def test_corrupt_file_is_detected_deleted_and_recomputed(tmp_path: Path, damage: Any) -> None:
    calls = []

    def make(**params: Any) -> Any:
        calls.append(1)
        return {"a": np.arange(100.0)}

    load_or_compute("c", make, {"k": 1}, cache_dir=tmp_path)
    value_file = _value_file(_manifest(tmp_path, "c", {"k": 1}))
    damage(value_file)
    with pytest.warns(CacheWarning, match="checksum"):
        out = load_or_compute("c", make, {"k": 1}, cache_dir=tmp_path)
    assert len(calls) == 2
    np.testing.assert_array_equal(out["a"], np.arange(100.0))
    # the rebuilt entry is valid again: loaded silently
    load_or_compute("c", make, {"k": 1}, cache_dir=tmp_path)
    assert len(calls) == 2


def test_damaged_manifest_or_missing_manifest_recomputes(tmp_path: Path) -> None:
    fn = Counter()
    load_or_compute("m", fn, {"seed": 0}, cache_dir=tmp_path)
    manifest = _manifest(tmp_path, "m", {"seed": 0})
    manifest.write_text("{ truncated")
    with pytest.warns(CacheWarning, match="unusable"):
        load_or_compute("m", fn, {"seed": 0}, cache_dir=tmp_path)
    assert len(fn.calls) == 2
    manifest.unlink()  # value file without manifest: an interrupted write
    with pytest.warns(CacheWarning, match="interrupted"):
        load_or_compute("m", fn, {"seed": 0}, cache_dir=tmp_path)
    assert len(fn.calls) == 3
    entries = [p for p in manifest.parent.iterdir() if p.name != ".lock"]  # the folder's lock stays
    assert len(entries) == 2  # one value file and its manifest, no leftovers
    # a manifest that describes other parameters (e.g. copied by hand) is not trusted
    load_or_compute("m", fn, {"seed": 1}, cache_dir=tmp_path)
    other = _manifest(tmp_path, "m", {"seed": 1})
    other.write_text(manifest.read_text())
    with pytest.warns(CacheWarning, match="different parameters"):
        out = load_or_compute("m", fn, {"seed": 1}, cache_dir=tmp_path)
    assert len(fn.calls) == 5 and out["seed"] == 1


def test_failed_or_unstorable_computation_leaves_no_entry(tmp_path: Path) -> None:
    def boom() -> None:
        raise RuntimeError("fail")

    with pytest.raises(RuntimeError):
        load_or_compute("f", boom, {}, cache_dir=tmp_path)
    assert not is_cached("f", {}, cache_dir=tmp_path)
    assert not (tmp_path / "f").exists() or not list((tmp_path / "f").iterdir())
    for bad in ({"x": object()}, {1: np.zeros(2)}, [np.array([object()])]):
        with pytest.raises(TypeError, match="store"):
            load_or_compute("f", lambda bad=bad: bad, {}, cache_dir=tmp_path)
        assert not is_cached("f", {}, cache_dir=tmp_path)
