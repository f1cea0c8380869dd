"""Tests for repalign.networks.features: one forward pass, pooling, validation, accumulators, modes and data types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from repalign.measure.alignment import AlignmentAccumulator, alignment_curve
from repalign.networks import models
from repalign.networks.features import extract, layer_names, pool_output
from repalign.networks.runtime import get_device


def _count_forwards(model: nn.Module) -> list[int]:
    calls = [0]

    def pre_hook(_module, _inputs):
        calls[0] += 1

    model.register_forward_pre_hook(pre_hook)
    return calls


@pytest.fixture
def net() -> nn.Sequential:
    return models.mlp(48, 3, 16, seed=0)


@pytest.fixture
def x() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((100, 3, 4, 4)).astype(np.float32)


def test_layer_names(net: nn.Sequential) -> None:
    assert layer_names(net) == [
        "input", "flatten", "linear1", "hidden1", "linear2", "hidden2", "linear3", "hidden3", "output",
    ]  # fmt: skip


def test_extract_shapes_and_values(net: nn.Sequential, x: np.ndarray) -> None:
    out = extract(net, x, ["input", "hidden1", "hidden3", "output"], batch_size=32, progress=False)
    assert {k: v.shape for k, v in out.items()} == {
        "input": (100, 48), "hidden1": (100, 16), "hidden3": (100, 16), "output": (100, 1),
    }  # fmt: skip
    assert all(v.dtype == np.float32 for v in out.values())
    xt = torch.from_numpy(x).flatten(1)
    with torch.no_grad():
        h1 = torch.relu(xt @ net.linear1.weight.T)
        assert np.allclose(out["input"], xt.numpy())
        assert np.allclose(out["hidden1"], h1.numpy(), atol=1e-6)
        assert np.allclose(out["output"], net(torch.from_numpy(x)).numpy(), atol=1e-6)
    assert (out["hidden3"] >= 0).all()


def test_one_forward_pass_per_batch(net: nn.Sequential, x: np.ndarray) -> None:
    calls = _count_forwards(net)
    extract(net, x, layer_names(net), batch_size=32, progress=False)  # all 9 layers
    assert calls[0] == 4  # ceil(100 / 32), not 4 * 9


def test_typo_lists_valid_names_before_running(net: nn.Sequential, x: np.ndarray) -> None:
    calls = _count_forwards(net)
    with pytest.raises(ValueError) as err:
        extract(net, x, ["hidden1", "hiden2"], progress=False)
    message = str(err.value)
    assert "'hiden2'" in message and "did you mean 'hidden2'" in message
    for name in layer_names(net):
        assert name in message
    assert calls[0] == 0
    with pytest.raises(ValueError, match="no layers"):
        extract(net, x, [], progress=False)


def test_batch_size_and_data_types_agree(net: nn.Sequential, x: np.ndarray) -> None:
    ref = extract(net, x, ["hidden2"], batch_size=100, progress=False)["hidden2"]
    xt = torch.from_numpy(x)
    y = torch.zeros(len(x))
    dataset = torch.utils.data.TensorDataset(xt, y)

    class Holder:  # like repalign.data.Dataset
        def __init__(self, arr):
            self.x, self.y = arr, np.zeros(len(arr))

    for data, bs in [
        (x, 7),
        (xt, 33),
        (dataset, 16),
        (torch.utils.data.DataLoader(dataset, batch_size=9), 1000),
        (torch.utils.data.DataLoader(torch.utils.data.TensorDataset(xt), batch_size=50), 1),
        (Holder(x), 64),
    ]:
        got = extract(net, data, "hidden2", batch_size=bs, progress=False)["hidden2"]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)


def test_determinism(net: nn.Sequential, x: np.ndarray) -> None:
    a = extract(net, x, ["hidden1", "hidden3"], progress=False)
    b = extract(net, x, ["hidden1", "hidden3"], progress=False)
    for k in a:
        assert np.array_equal(a[k], b[k])


class _ConvNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 5, 3, padding=1)
        self.tokens = nn.Identity()  # (b, t, d) token sequence
        self.head = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)  # (b, 5, 6, 6)
        t = self.tokens(h.flatten(2).transpose(1, 2))  # (b, 36, 5)
        return self.head(t.mean(1))


def test_pooling_modes() -> None:
    torch.manual_seed(0)
    model = _ConvNet()
    x = torch.randn(10, 3, 6, 6)
    with torch.no_grad():
        conv = model.conv(x)
    tokens = conv.flatten(2).transpose(1, 2)
    avg = extract(model, x, ["conv", "tokens"], progress=False)
    assert avg["conv"].shape == (10, 5) and avg["tokens"].shape == (10, 5)
    np.testing.assert_allclose(avg["conv"], conv.mean((2, 3)).numpy(), atol=1e-6)
    np.testing.assert_allclose(avg["tokens"], tokens.mean(1).numpy(), atol=1e-6)
    flat = extract(model, x, ["conv", "tokens"], pool="flatten", progress=False)
    assert flat["conv"].shape == (10, 180) and flat["tokens"].shape == (10, 180)
    mx = extract(model, x, ["conv"], pool="max", progress=False)["conv"]
    np.testing.assert_allclose(mx, conv.amax((2, 3)).numpy(), atol=1e-6)
    cls = extract(model, x, ["tokens"], pool="cls", progress=False)["tokens"]
    np.testing.assert_allclose(cls, tokens[:, 0].numpy(), atol=1e-6)
    custom = extract(model, x, ["conv"], pool=lambda t: t[:, :, 0, 0], progress=False)["conv"]
    np.testing.assert_allclose(custom, conv[:, :, 0, 0].numpy(), atol=1e-6)
    assert pool_output(torch.ones(4)).shape == (4, 1)
    with pytest.raises(ValueError, match="unknown pool"):
        extract(model, x, ["conv"], pool="median", progress=False)


def test_backbone_layers_pooled() -> None:
    model = models.backbone("resnet18", seed=0)
    x = torch.randn(3, 3, 32, 32)
    calls = _count_forwards(model)
    out = extract(model, x, ["layer1", "layer3.1.relu", "layer4", "avgpool", "fc"], progress=False)
    assert calls[0] == 1
    assert {k: v.shape for k, v in out.items()} == {
        "layer1": (3, 64), "layer3.1.relu": (3, 256), "layer4": (3, 512), "avgpool": (3, 512), "fc": (3, 1000),
    }  # fmt: skip
    np.testing.assert_allclose(out["layer4"], out["avgpool"], atol=1e-5)  # global average of layer4's map


def test_t2t_vit_tokens_pooled() -> None:
    pytest.importorskip("vit_pytorch")
    model = models.backbone("t2t_vit", image_size=32, seed=0)
    out = extract(model, torch.randn(2, 3, 32, 32), ["transformer", "to_latent"], progress=False)
    assert out["transformer"].shape == (2, 384) and out["to_latent"].shape == (2, 384)


def test_mode_restored_and_hooks_removed(net: nn.Sequential, x: np.ndarray) -> None:
    net.train()
    net.hidden2.eval()  # a mixed state must come back as it was
    extract(net, x, ["hidden1"], progress=False)
    assert net.training and net.hidden1.training and not net.hidden2.training
    assert all(not m._forward_hooks for m in net.modules())
    net.eval()
    extract(net, x, ["hidden1"], progress=False)
    assert not any(m.training for m in net.modules())


def test_mode_restored_after_error() -> None:
    class Skips(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.Linear(4, 4), nn.Linear(4, 4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.used(x)

    model = Skips().train()
    with pytest.raises(ValueError, match="did not run"):
        extract(model, torch.randn(3, 4), ["unused"], progress=False)
    assert model.training and not model.unused._forward_hooks


def test_eval_mode_and_no_grad_during_extraction() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 32), nn.Dropout(0.5), nn.BatchNorm1d(32)).train()
    x = torch.randn(20, 8)
    a = extract(model, x, ["1", "2"], batch_size=5, progress=False)
    b = extract(model, x, ["1", "2"], batch_size=20, progress=False)
    np.testing.assert_allclose(a["2"], b["2"], atol=1e-6)  # running stats, no dropout, batch independent
    with torch.no_grad():
        np.testing.assert_allclose(a["1"], model[0](x).numpy(), atol=1e-6)
    assert int(model[2].num_batches_tracked) == 0  # BN statistics not updated


def test_accumulators_equal_full_matrix(net: nn.Sequential, x: np.ndarray) -> None:
    y = np.where(np.random.default_rng(1).random(len(x)) > 0.5, 1.0, -1.0)
    accumulators = {"input": AlignmentAccumulator(), "hidden3": AlignmentAccumulator()}
    calls = _count_forwards(net)
    out = extract(net, x, ["hidden1"], batch_size=16, accumulators=accumulators, targets=y, progress=False)
    assert calls[0] == 7 and set(out) == {"hidden1"}
    full = extract(net, x, ["input", "hidden3"], progress=False)
    thresholds = np.linspace(0, 10, 41)
    for name, acc in accumulators.items():
        assert acc.n == len(x)
        np.testing.assert_allclose(acc.curve(thresholds), alignment_curve(full[name], y, thresholds), atol=1e-8)
    # layers=None: just the accumulators' layers; nothing big comes back
    multi = {"hidden2": AlignmentAccumulator()}
    y2 = np.stack([y, -y], axis=1)
    assert extract(net, x, None, accumulators=multi, targets=y2, batch_size=30, progress=False) == {}
    np.testing.assert_allclose(
        multi["hidden2"].curve(thresholds), alignment_curve(_hidden2(net, x), y2, thresholds), atol=1e-8
    )


def _hidden2(net: nn.Module, x: np.ndarray) -> np.ndarray:
    return extract(net, x, ["hidden2"], progress=False)["hidden2"]


def test_accumulators_need_matching_targets(net: nn.Sequential, x: np.ndarray) -> None:
    with pytest.raises(ValueError, match="targets"):
        extract(net, x, None, accumulators={"hidden1": AlignmentAccumulator()}, progress=False)
    with pytest.raises(ValueError, match="99 rows"):
        extract(net, x, None, accumulators={"hidden1": AlignmentAccumulator()}, targets=np.ones(99), progress=False)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.from_numpy(x)), batch_size=10)
    with pytest.raises(ValueError, match="101 rows"):
        extract(net, loader, None, accumulators={"hidden1": AlignmentAccumulator()}, targets=np.ones(101),
                progress=False)  # fmt: skip


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu(net: nn.Sequential, x: np.ndarray) -> None:
    cpu = extract(net, x, ["hidden3"], device="cpu", progress=False)["hidden3"]
    gpu = extract(net, x, ["hidden3"], progress=False)["hidden3"]  # None: the GPU, by the device rule
    assert next(net.parameters()).device.type == "cpu"  # moved back
    np.testing.assert_allclose(gpu, cpu, rtol=1e-4, atol=1e-5)
    y = np.sign(np.random.default_rng(0).standard_normal(len(x)))
    acc = AlignmentAccumulator()
    extract(net.cuda(), x, None, accumulators={"hidden3": acc}, targets=y, progress=False)
    t = np.linspace(0, 8, 9)
    np.testing.assert_allclose(acc.curve(t), alignment_curve(cpu, y, t), rtol=1e-4, atol=1e-3)


# ------------------------------------------------------------------------------------------------ cached


def test_extract_cached_computes_once_and_matches_extract(net: nn.Sequential, x: np.ndarray, tmp_path) -> None:
    from repalign.networks.features import extract_cached

    calls = _count_forwards(net)
    model_id = {"name": "mlp", "seed": 0}
    first = extract_cached(net, x, ["hidden1", "hidden3"], model_id=model_id, batch_size=32, cache_dir=tmp_path,
                           progress=False)  # fmt: skip
    assert not first.from_cache and calls[0] == 4 and first.n == 100 and first.seconds > 0
    again = extract_cached(net, x, ["hidden1", "hidden3"], model_id=model_id, cache_dir=tmp_path, progress=False)
    assert again.from_cache and calls[0] == 4  # loaded, no forward pass
    assert again.seconds == first.seconds and again.images_per_second == pytest.approx(100 / first.seconds)
    direct = extract(net, x, ["hidden1", "hidden3"], progress=False)
    for layer in ("hidden1", "hidden3"):
        np.testing.assert_array_equal(again.features[layer], direct[layer])
    other = extract_cached(net, x[:50], "hidden1", model_id=model_id, cache_dir=tmp_path, progress=False)
    assert not other.from_cache and other.features["hidden1"].shape == (50, 16)  # other data, other key
    reseeded = extract_cached(net, x, "hidden1", model_id={"name": "mlp", "seed": 1}, cache_dir=tmp_path,
                              progress=False)  # fmt: skip
    assert not reseeded.from_cache  # other weights, other key


def test_extract_cached_factory_is_not_built_when_cached(x: np.ndarray, tmp_path) -> None:
    from repalign.networks.features import extract_cached

    built = []

    def factory() -> nn.Module:
        built.append(1)
        return models.mlp(48, 1, 8, seed=3)

    for _ in range(2):
        out = extract_cached(factory, x, "hidden1", model_id={"mlp": 3}, cache_dir=tmp_path, progress=False)
    assert len(built) == 1 and out.from_cache and out.features["hidden1"].shape == (100, 8)
    with pytest.raises(ValueError, match="data_id"):
        extract_cached(factory, [x[0]], "hidden1", model_id={"mlp": 3}, cache_dir=tmp_path, progress=False)


def test_backbone_features_random_init_seeded_and_cached(tmp_path) -> None:
    from repalign.networks.features import backbone_features

    images = np.random.default_rng(0).random((6, 28, 28)).astype(np.float32)  # grey, values in [0, 1]
    a = backbone_features("efficientnet_lite0", images, pretrained=False, seed=0, image_size=32, cache_dir=tmp_path,
                          progress=False)  # fmt: skip
    assert a.features["global_pool"].shape == (6, 1280) and not a.from_cache and a.device == str(get_device(None))
    b = backbone_features("efficientnet_lite0", images, pretrained=False, seed=0, image_size=32, cache_dir=tmp_path,
                          progress=False)  # fmt: skip
    assert b.from_cache
    np.testing.assert_array_equal(a.features["global_pool"], b.features["global_pool"])
    c = backbone_features("efficientnet_lite0", images, pretrained=False, seed=1, image_size=32, cache_dir=tmp_path,
                          progress=False)  # fmt: skip
    assert not c.from_cache and not np.allclose(a.features["global_pool"], c.features["global_pool"])


def test_backbone_features_several_layers_in_one_pass_equal_one_layer_each(tmp_path) -> None:
    from repalign.networks.features import backbone_features

    images = np.random.default_rng(1).random((5, 28, 28)).astype(np.float32)
    kw = {"pretrained": False, "seed": 0, "image_size": 32, "cache_dir": tmp_path, "progress": False}
    both = backbone_features("efficientnet_lite0", images, layers=["blocks.3", "classifier"], **kw)
    assert both.features["blocks.3"].shape == (5, 80) and both.features["classifier"].shape == (5, 1000)
    for name in ("blocks.3", "classifier"):
        one = backbone_features("efficientnet_lite0", images, layer=name, **kw)
        np.testing.assert_allclose(one.features[name], both.features[name], rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="not both"):
        backbone_features("efficientnet_lite0", images, layer="blocks.3", layers=["classifier"], **kw)
    with pytest.raises(ValueError, match="empty"):
        backbone_features("efficientnet_lite0", images, layers=[], **kw)
