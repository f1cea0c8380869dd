"""Tests for repalign.networks.runtime: the one device rule, and that every function of the floor follows it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
import torch
from torch import nn

import repalign.networks
from repalign.networks import runtime
from repalign.networks.runtime import get_device, model_device, model_dtype

# ------------------------------------------------------------------------------------------------ the rule


@pytest.mark.parametrize("request_", [None, "auto"])
@pytest.mark.parametrize("cuda", [True, False])
def test_none_and_auto_pick_cuda_exactly_when_torch_sees_it(monkeypatch, request_: Any, cuda: bool) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
    assert get_device(request_) == torch.device("cuda" if cuda else "cpu")


def test_anything_else_goes_to_torch_device(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # an explicit choice wins over the GPU
    assert get_device("cpu") == torch.device("cpu")
    assert get_device(torch.device("cpu")) == torch.device("cpu")
    assert get_device("cuda:1") == torch.device("cuda", 1)


@pytest.mark.parametrize("bad", ["gpu", "Auto ", 2.5, object()])
def test_an_unknown_device_names_the_valid_ones(bad: Any) -> None:
    with pytest.raises(ValueError, match="'auto'.*'cpu'.*torch.device"):
        get_device(bad)


def test_model_device_and_dtype() -> None:
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3)).double()
    assert model_device(net) == torch.device("cpu") and model_dtype(net) == torch.float64
    assert model_device(nn.ReLU()) == torch.device("cpu") and model_dtype(nn.ReLU()) == torch.get_default_dtype()
    only_buffer = nn.Module()
    only_buffer.register_buffer("scale", torch.ones(2, dtype=torch.float16))
    assert model_dtype(only_buffer) == torch.float16


# ------------------------------------------------------------------------------------------------ every function


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))


def _data(n: int = 24) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    return x, (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1).astype(np.int64)


def _run_block(context: Any) -> None:
    with context:
        pass


def _call(name: str, device: Any, tmp_path: Any) -> None:
    """Run the public callable ``name`` (module.qualname) on a tiny problem with ``device``."""
    from repalign.networks import baselines, ensemble, evaluate, features, finetune, linear, probes, training

    x, y = _data()
    quiet = {"progress": False}
    calls: dict[str, Callable[[], Any]] = {
        "baselines.random_network_features": lambda: baselines.random_network_features(x, "mlp", device=device),
        "ensemble.train_ensemble": lambda: ensemble.train_ensemble(
            _net, [0, 1], x, y, task="multiclass", epochs=1, device=device, **quiet
        ),
        "evaluate.evaluating": lambda: _run_block(evaluate.evaluating(_net(), device)),
        "evaluate.predict": lambda: evaluate.predict(_net(), x, device=device),
        "evaluate.predict_classes": lambda: evaluate.predict_classes(_net(), x, device=device),
        "evaluate.accuracy": lambda: evaluate.accuracy(_net(), x, y, device=device),
        "features.extract": lambda: features.extract(_net(), x, "1", device=device, **quiet),
        "features.extract_cached": lambda: features.extract_cached(
            _net(), x, "1", model_id={"net": 0}, device=device, cache_dir=tmp_path, **quiet
        ),
        "features.backbone_features": lambda: features.backbone_features(
            "efficientnet_lite0",
            np.zeros((2, 8, 8), np.float32),
            pretrained=False,
            seed=0,
            image_size=32,
            device=device,
            cache_dir=tmp_path,
            **quiet,
        ),  # fmt: skip
        "finetune.fine_tune": lambda: finetune.fine_tune(_net(), x, y, x, y, num_classes=3, epochs=1, device=device),
        "linear.gd_linear": lambda: linear.gd_linear(x.reshape(len(x), -1), np.eye(3)[y], steps=2, device=device),
        "probes.logistic_probe": lambda: probes.logistic_probe(
            x.reshape(len(x), -1), y, x.reshape(len(x), -1), y, device=device
        ),
        "probes.probe_grid": lambda: probes.probe_grid(
            x.reshape(len(x), -1), y, x.reshape(len(x), -1), y, Cs=(1.0,), device=device
        ),
        "probes.TorchProbe.fit": lambda: probes.TorchProbe.fit(
            x.reshape(len(x), -1), y, C=1.0, max_iter=20, device=device
        ),
        "probes.linear_probe": lambda: probes.linear_probe(_net(), (x, y), (x, y), "1", device=device, **quiet),
        "training.train": lambda: training.train(_net(), x, y, task="multiclass", epochs=1, device=device, **quiet),
    }
    if name not in calls:
        raise AssertionError(f"{name} takes device: add a call of it to this test's table")
    calls[name]()


# Public callables with a ``device`` parameter that is not a request to resolve, and why.
_NOT_A_REQUEST = {
    "runtime.get_device": "the rule itself",
    "features.Extracted": "a record: the device a cached pass ran on (a string)",
    "training.TrainOptions.record": "writes the already resolved device into the provenance dict",
    "pretrain.CPUSyncBatchNorm": "nn.BatchNorm2d's factory argument (where torch allocates the parameters)",
    "pretrain.PretrainConfig": "the CLI's --device (default 'auto'), resolved by get_device when the run starts",
}


def _public_callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    """``(module.qualname, callable)`` for every public function, class and method defined in repalign.networks."""
    for info in pkgutil.iter_modules(repalign.networks.__path__):
        module = importlib.import_module(f"repalign.networks.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or getattr(obj, "__module__", None) != module.__name__ or not callable(obj):
                continue
            yield f"{info.name}.{name}", obj
            if inspect.isclass(obj):
                for attr, member in vars(obj).items():
                    if not attr.startswith("_") and inspect.isfunction(member):
                        yield f"{info.name}.{name}.{attr}", member


def _device_parameters() -> dict[str, inspect.Parameter]:
    found = {}
    for name, obj in _public_callables():
        try:
            params = inspect.signature(obj).parameters
        except (TypeError, ValueError):  # builtins without a signature
            continue
        if "device" in params:
            found[name] = params["device"]
    return found


def test_the_introspection_finds_the_functions_that_take_device() -> None:
    found = _device_parameters()
    assert {"training.train", "features.extract", "finetune.fine_tune", "evaluate.predict"} <= set(found)
    assert set(_NOT_A_REQUEST) <= set(found), "an exception names a callable that no longer takes device"


def test_every_device_parameter_defaults_to_none() -> None:
    for name, param in _device_parameters().items():
        if name == "pretrain.PretrainConfig":
            assert param.default == "auto", name  # a CLI flag's text; the same request as None
        elif name not in _NOT_A_REQUEST:
            assert param.default is None, f"{name}: device defaults to {param.default!r}, not None"


@pytest.fixture
def recorded(monkeypatch) -> list[Any]:
    """Every call of get_device, through any module of the floor that bound it, records its argument."""
    calls: list[Any] = []
    real = runtime.get_device

    def recording(device: Any = None) -> torch.device:
        calls.append(device)
        return real(device)

    for info in pkgutil.iter_modules(repalign.networks.__path__):
        module = importlib.import_module(f"repalign.networks.{info.name}")
        if getattr(module, "get_device", None) is real:
            monkeypatch.setattr(module, "get_device", recording)
    return calls


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_every_function_resolves_its_device_through_get_device(recorded: list[Any], tmp_path) -> None:
    names = sorted(set(_device_parameters()) - set(_NOT_A_REQUEST))
    for name in names:
        for request in (torch.device("cpu"), None):
            recorded.clear()
            _call(name, request, tmp_path)
            assert recorded, f"{name} never called get_device"
            first = recorded[0]
            assert first is request, f"{name}(device={request!r}) resolved {first!r} first, not the caller's value"


# ------------------------------------------------------------------------------------------------ "auto" works


def _auto_and_named(run: Callable[[Any], Any]) -> tuple[Any, Any]:
    """``run("auto")`` and ``run(<the device "auto" resolves to>)``."""
    return run("auto"), run(str(get_device("auto")))


def test_auto_in_extract_and_backbone_features(tmp_path) -> None:
    from repalign.networks.features import backbone_features, extract

    x, _ = _data()
    net = _net()
    auto, named = _auto_and_named(lambda d: extract(net, x, ["0", "2"], device=d, progress=False))
    for layer in ("0", "2"):
        np.testing.assert_array_equal(auto[layer], named[layer])
    assert model_device(net) == torch.device("cpu")  # moved back where it was
    images = np.random.default_rng(0).random((3, 8, 8)).astype(np.float32)
    kw = {"pretrained": False, "seed": 0, "image_size": 32, "progress": False, "cache_dir": tmp_path}
    out = backbone_features("efficientnet_lite0", images, device="auto", **kw)
    assert out.device == str(get_device("auto")) and out.features["global_pool"].shape == (3, 1280)


def test_auto_in_train_and_fine_tune() -> None:
    from repalign.networks.finetune import fine_tune
    from repalign.networks.training import train

    x, y = _data()
    kw = {"task": "multiclass", "epochs": 2, "batch_size": 8, "progress": False, "x_val": x, "y_val": y}
    auto, named = _auto_and_named(lambda d: train(_net, x, y, device=d, **kw))
    assert model_device(auto.model).type == get_device("auto").type and auto.params["device"] == named.params["device"]
    np.testing.assert_allclose(auto.history["val_loss"], named.history["val_loss"], rtol=1e-6)
    tuned, tuned_named = _auto_and_named(
        lambda d: fine_tune(_net(), x, y, x, y, num_classes=3, epochs=2, device=d, progress=False)
    )
    assert tuned["test_accuracy"] == tuned_named["test_accuracy"]
    assert model_device(tuned["model"]).type == get_device("auto").type


def test_auto_in_linear_probe() -> None:
    from repalign.networks.probes import linear_probe

    x, y = _data(40)
    auto, named = _auto_and_named(lambda d: linear_probe(_net(), (x, y), (x, y), "1", device=d, progress=False))
    assert auto["accuracy"] == named["accuracy"] and auto["n_features"] == 8
