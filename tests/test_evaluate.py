"""Tests for repalign.networks.evaluate: batched outputs, predictions, accuracy and summed scores without gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from repalign.networks.evaluate import accuracy, batch_sums, evaluating, predict, predict_classes
from repalign.networks.runtime import get_device


def _net(out: int = 3) -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, out))


def _x(n: int = 23) -> np.ndarray:
    return np.random.default_rng(0).normal(size=(n, 5)).astype(np.float32)


def _watch(model: nn.Module) -> list[tuple[bool, bool]]:
    """Record (model.training, grad enabled) at every forward."""
    seen: list[tuple[bool, bool]] = []
    model.register_forward_pre_hook(lambda m, _inputs: seen.append((m.training, torch.is_grad_enabled())))
    return seen


# ------------------------------------------------------------------------------------------------ evaluating


def test_evaluating_runs_in_eval_mode_without_grad_and_restores_every_flag() -> None:
    net = _net()
    net.train()
    net[2].eval()  # mixed flags must come back as they were, not all set by net.train(True)
    before = [m.training for m in net.modules()]
    with evaluating(net) as dev:
        assert dev == get_device(None)
        assert not any(m.training for m in net.modules()) and not torch.is_grad_enabled()
    assert [m.training for m in net.modules()] == before and torch.is_grad_enabled()


def test_evaluating_restores_the_model_after_an_error() -> None:
    net = _net()
    net.train()
    with pytest.raises(RuntimeError, match="boom"), evaluating(net, "cpu"):
        raise RuntimeError("boom")
    assert all(m.training for m in net.modules()) and torch.is_grad_enabled()


# ------------------------------------------------------------------------------------------------ predict


@pytest.mark.parametrize("batch_size", [1, 7, 23, 1000])
def test_predict_is_the_model_batch_by_batch_in_eval_mode(batch_size: int) -> None:
    net, x = _net(), _x()
    net.train()
    seen = _watch(net)
    out = predict(net, x, batch_size=batch_size, device="cpu")
    assert len(seen) == -(-len(x) // batch_size) and all(s == (False, False) for s in seen)
    assert net.training  # restored
    with torch.no_grad():
        net.eval()
        direct = torch.cat([net(torch.from_numpy(x[i : i + batch_size])) for i in range(0, len(x), batch_size)])
    np.testing.assert_array_equal(out, direct.numpy())  # dropout off: eval mode


def test_predict_casts_floats_to_the_model_dtype_and_keeps_integers() -> None:
    net = _net().double()
    seen_dtypes = []
    net.register_forward_pre_hook(lambda _m, inputs: seen_dtypes.append(inputs[0].dtype))
    out = predict(net, torch.from_numpy(_x()), batch_size=10)
    assert out.dtype == np.float64 and set(seen_dtypes) == {torch.float64}
    emb = nn.Sequential(nn.Embedding(10, 4), nn.Flatten(), nn.Linear(8, 2))
    tokens = np.random.default_rng(1).integers(0, 10, size=(6, 2))
    assert predict(emb, tokens).shape == (6, 2)  # an int64 input is not cast to float


def test_predict_reduce_classes_and_accuracy() -> None:
    net, x = _net(), _x()
    logits = predict(net, x, batch_size=5)
    np.testing.assert_array_equal(predict(net, x, reduce=lambda o: o.argmax(1), batch_size=5), logits.argmax(1))
    classes = predict_classes(net, x, batch_size=4)
    assert classes.dtype == np.int64
    np.testing.assert_array_equal(classes, logits.argmax(1))
    labels = classes.copy()
    labels[:5] = (labels[:5] + 1) % 3  # five wrong
    assert accuracy(net, x, labels) == pytest.approx((len(x) - 5) / len(x))
    assert accuracy(net, x, torch.from_numpy(classes)) == 1.0
    assert np.isnan(accuracy(net, x[:0], labels[:0]))


def test_predict_edge_cases() -> None:
    net = _net()
    assert predict(net, _x(0)).shape == (0,)
    for bad in (0, -1, True, 2.5):
        with pytest.raises(ValueError, match="batch_size"):
            predict(net, _x(), batch_size=bad)
    with pytest.raises(ValueError, match="unknown device"):
        predict(net, _x(), device="gpu")


# ------------------------------------------------------------------------------------------------ batch_sums


def test_batch_sums_adds_scores_in_batch_order_without_grad() -> None:
    net, x = _net(), torch.from_numpy(_x())
    y = torch.arange(len(x)) % 3
    net.eval()
    batches = [(x[i : i + 6], y[i : i + 6]) for i in range(0, len(x), 6)]
    grad_flags = []

    def score(out: torch.Tensor, yb: torch.Tensor) -> list[float]:
        grad_flags.append(out.requires_grad)
        b = yb.shape[0]
        return [float(nn.functional.cross_entropy(out, yb)) * b, float((out.argmax(1) == yb).sum())]

    (loss_sum, correct), n = batch_sums(net, iter(batches), score)
    assert n == len(x) and grad_flags == [False] * len(batches)
    expected = [0.0, 0.0]
    with torch.no_grad():
        for xb, yb in batches:
            values = score(net(xb), yb)
            expected = [expected[0] + values[0], expected[1] + values[1]]
        full = float(nn.functional.cross_entropy(net(x), y))
    assert [loss_sum, correct] == expected  # the same additions in the same order
    assert loss_sum / n == pytest.approx(full, rel=1e-6)
    assert batch_sums(net, iter([]), score) == ([], 0)


def test_batch_sums_serves_several_models_at_once() -> None:
    nets = [_net().eval(), _net(2).eval()]
    x = torch.from_numpy(_x())
    y = torch.zeros(len(x), dtype=torch.long)
    sums, n = batch_sums(lambda xb: [m(xb) for m in nets], [(x[:10], y[:10]), (x[10:], y[10:])],
                         lambda outs, yb: [float(o.sum()) for o in outs])  # fmt: skip
    with torch.no_grad():
        whole = [float(m(x[:10]).sum()) + float(m(x[10:]).sum()) for m in nets]
    assert n == len(x) and sums == whole
