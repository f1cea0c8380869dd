"""Properties of the training loop and of seeds trained together (small nets, a few seconds on 2 CPU cores)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from repalign.measure.targets import TASKS
from repalign.networks.ensemble import train_ensemble
from repalign.networks.models import mlp
from repalign.networks.runtime import seeded
from repalign.networks.training import OPTIMIZERS, TrainOptions, init_model, make_optimizer, train

FAST = {"device": "cpu", "progress": False, "batch_size": 16}


def make_data(n: int = 96, d: int = 10, task: str = "binary", seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    score = x[:, 0] + 0.5 * x[:, 1]
    if task == "binary":
        return x, (score > 0).astype(np.float32)
    if task == "multiclass":
        return x, np.digitize(score, [-0.5, 0.5]).astype(np.int64)
    return x, np.stack([score, x[:, 2]], axis=1).astype(np.float32)


def small_mlp(task: str = "binary", d: int = 10) -> nn.Module:
    out = {"binary": 1, "multiclass": 3, "regression": 2}[task]
    return mlp(d, 2, 16, activation="relu", bias=False, out_features=out)


class TinyNet(nn.Module):
    """Not an nn.Sequential: exercises the vmap path of train_ensemble."""

    def __init__(self, d: int = 10) -> None:
        super().__init__()
        self.a = nn.Linear(d, 12)
        self.b = nn.Linear(12, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.tanh(self.a(x)))


def params_of(model: nn.Module) -> list[torch.Tensor]:
    return [p.detach().clone() for p in model.parameters()]


# ---------------------------------------------------------------------------------------------------- train


@pytest.mark.parametrize("task", TASKS)
def test_loss_decreases(task):
    x, y = make_data(task=task)
    res = train(small_mlp(task), x, y, task=task, lr=1e-2, epochs=15, seed=0, **FAST)
    loss = res.history["train_loss"]
    assert len(loss) == 15 and res.history["epoch"] == list(range(1, 16))
    assert loss[-1] < 0.5 * loss[0]
    if task != "regression":
        assert res.history["train_acc"][-1] > 0.8
    else:
        assert "train_acc" not in res.history


def test_seeded_runs_are_bit_identical_and_leave_global_rng_alone():
    x, y = make_data()
    state = torch.get_rng_state()
    a = train(lambda: small_mlp(), x, y, epochs=4, seed=3, **FAST)
    assert torch.equal(torch.get_rng_state(), state)
    b = train(lambda: small_mlp(), x, y, epochs=4, seed=3, **FAST)
    assert a.history == b.history
    for p, q in zip(a.model.parameters(), b.model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_different_seeds_differ():
    x, y = make_data()
    a = train(lambda: small_mlp(), x, y, epochs=2, seed=0, **FAST)
    b = train(lambda: small_mlp(), x, y, epochs=2, seed=1, **FAST)
    assert a.history["train_loss"] != b.history["train_loss"]
    assert not torch.equal(next(a.model.parameters()), next(b.model.parameters()))


def test_seed_drives_shuffling_and_init_separately():
    x, y = make_data()
    model = init_model(small_mlp, 0)
    # same initial weights, different shuffling seed -> different trajectories
    a = train(init_model(small_mlp, 0), x, y, epochs=1, seed=0, **FAST)
    b = train(init_model(small_mlp, 0), x, y, epochs=1, seed=5, **FAST)
    assert a.history["train_loss"] != b.history["train_loss"]
    # a factory is initialised with init_model(factory, seed) = torch.manual_seed(seed); factory()
    c = train(small_mlp, x, y, epochs=0, seed=0, **FAST)
    for p, q in zip(model.parameters(), c.model.parameters(), strict=True):
        assert torch.equal(p, q)
    torch.manual_seed(0)
    for p, q in zip(small_mlp().parameters(), model.parameters(), strict=True):
        assert torch.equal(p, q)


def test_torch_dataset_uses_the_same_batches_as_arrays():
    x, y = make_data()

    class Pairs(torch.utils.data.Dataset):
        def __len__(self) -> int:
            return len(x)

        def __getitem__(self, i: int):
            return torch.from_numpy(x[i]), torch.tensor(y[i])

    a = train(small_mlp, x, y, epochs=3, seed=2, **FAST)
    b = train(small_mlp, Pairs(), epochs=3, seed=2, **FAST)
    np.testing.assert_allclose(a.history["train_loss"], b.history["train_loss"], rtol=1e-6)


def test_validation_history_and_params():
    x, y = make_data()
    res = train(small_mlp, x[:64], y[:64], x_val=x[64:], y_val=y[64:], epochs=3, seed=0, **FAST)
    assert set(res.history) == {"epoch", "train_loss", "train_acc", "val_loss", "val_acc"}
    assert all(0 <= a <= 1 for a in res.history["val_acc"])
    for key in ("task", "optimizer", "lr", "batch_size", "epochs", "seed", "shuffle"):
        assert key in res.params
    assert res.params["n_train"] == 64 and res.params["n_val"] == 32
    assert not res.model.training


def test_validation_scores_are_the_final_models_loss_and_accuracy_on_the_validation_set():
    from repalign.networks.evaluate import predict

    x, y = make_data(task="multiclass")
    res = train(small_mlp("multiclass"), x[:64], y[:64], x_val=x[64:], y_val=y[64:], task="multiclass", epochs=2,
                seed=0, **FAST)  # fmt: skip
    logits = torch.from_numpy(predict(res.model, x[64:]))
    labels = torch.from_numpy(y[64:]).long()
    assert res.history["val_loss"][-1] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, labels)))
    assert res.history["val_acc"][-1] == pytest.approx(float((logits.argmax(1) == labels).float().mean()))
    empty = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(0, 10), torch.zeros(0)))
    with pytest.raises(ValueError, match="validation data yielded no examples"):
        train(small_mlp("multiclass"), x, y, task="multiclass", x_val=empty, epochs=1, **FAST)


def test_callback_records_at_the_right_epochs():
    x, y = make_data()
    seen = []

    def callback(epoch, model):
        seen.append(model.training)
        return {"epoch": epoch, "norm": float(next(model.parameters()).detach().norm())}

    res = train(small_mlp, x, y, epochs=5, seed=0, callback=callback, callback_every=2, **FAST)
    assert list(res.records) == [0, 2, 4, 5]
    assert all(r["epoch"] == e for e, r in res.records.items())
    assert not any(seen)  # called in eval mode
    assert res.records[0]["norm"] != res.records[5]["norm"]


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"optimizer": "adamw"}, "adam, sgd, rmsprop"),
        ({"task": "ranking"}, "binary, multiclass, regression"),
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"optimizer": "adam", "momentum": 0.9}, "momentum"),
    ],
)
def test_bad_options_raise(kwargs, match):
    x, y = make_data()
    with pytest.raises(ValueError, match=match):
        train(small_mlp, x, y, epochs=1, **{**FAST, **kwargs})


def test_bad_data_raise():
    x, y = make_data()
    with pytest.raises(ValueError, match="rows"):
        train(small_mlp, x, y[:-1], epochs=1, **FAST)
    bad = x.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train(small_mlp, bad, y, epochs=1, **FAST)
    with pytest.raises(ValueError, match="0/1"):
        train(small_mlp, x, 2 * y - 1, epochs=1, **FAST)
    with pytest.raises(ValueError, match="one logit"):
        train(lambda: small_mlp("multiclass"), x, y, epochs=1, **FAST)
    with pytest.raises(ValueError, match="out of range"):
        train(small_mlp("multiclass"), x, np.full(len(x), 5), task="multiclass", epochs=1, **FAST)
    with pytest.raises(ValueError, match="y is required"):
        train(small_mlp, x, None, epochs=1, **FAST)


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_every_optimizer_name_builds_one_that_lowers_the_loss(name):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(32, 4, generator=g)
    b = a @ torch.tensor([1.0, -2.0, 0.5, 1.5])  # a least-squares problem with zero loss at its minimum
    w = torch.zeros(4, requires_grad=True)
    opt, impl = make_optimizer(name.upper(), [w], lr=0.05)  # names are case-insensitive
    assert impl in ("fused", "default")

    def loss():
        return ((a @ w - b) ** 2).mean()

    first = loss().item()
    for _ in range(50):
        opt.zero_grad()
        loss().backward()
        opt.step()
    assert loss().item() < 0.3 * first


def test_unknown_optimizer_raises_listing_the_valid_names():
    with pytest.raises(ValueError, match="unknown optimizer 'adamw'; valid: " + ", ".join(OPTIMIZERS)):
        make_optimizer("adamw", [torch.zeros(2, requires_grad=True)], lr=0.1)


def test_seeded_is_manual_seed_in_a_forked_scope():
    state = torch.get_rng_state()
    with seeded(11):
        a = torch.rand(3)
    assert torch.equal(torch.get_rng_state(), state)
    torch.manual_seed(11)
    assert torch.equal(a, torch.rand(3))
    torch.set_rng_state(state)
    with seeded(None):  # no seed: the block draws from the global RNG
        b = torch.rand(3)
    torch.set_rng_state(state)
    assert torch.equal(b, torch.rand(3))
    with pytest.raises(ValueError, match="non-negative"):
        with seeded(-1):
            pass


def test_options_object_equals_keywords_and_records_the_run():
    x, y = make_data()
    opts = TrainOptions(task="binary", optimizer="SGD", lr=1e-2, momentum=0.9, epochs=2, batch_size=16, progress=False)
    assert opts.optimizer == "sgd"
    a = train(small_mlp, x, y, options=opts, device="cpu")
    b = train(small_mlp, x, y, optimizer="sgd", lr=1e-2, momentum=0.9, epochs=2, **FAST)
    assert a.history == b.history and a.params == b.params
    # keywords override the options object
    c = train(small_mlp, x, y, options=opts, epochs=1, device="cpu")
    assert c.params["epochs"] == 1 and c.params["momentum"] == 0.9
    expected = {"task", "loss", "optimizer", "optimizer_impl", "lr", "momentum", "weight_decay", "batch_size"}
    assert expected | {"epochs", "seed", "shuffle", "n_train", "n_val", "device", "num_parameters"} <= set(a.params)
    with pytest.raises(TypeError, match="epoch.*training options: task"):
        train(small_mlp, x, y, epoch=3, **FAST)
    with pytest.raises(ValueError, match="epochs"):
        TrainOptions(epochs=-1)


# ---------------------------------------------------------------------------------------------------- ensemble


def assert_same_run(ens, seq, rtol=1e-5, atol=1e-6):
    assert ens.params["seed"] == seq.params["seed"]
    assert ens.history.keys() == seq.history.keys()
    for key in ens.history:
        np.testing.assert_allclose(ens.history[key], seq.history[key], rtol=rtol, atol=atol, err_msg=key)
    for p, q in zip(ens.model.parameters(), seq.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=rtol, atol=atol)


@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("task", ["binary", "regression"])
def test_ensemble_equals_sequential(optimizer, task):
    x, y = make_data(n=80, task=task)  # 80 = 5 batches of 16: the last batch is full; see the next test
    opts = dict(task=task, optimizer=optimizer, lr=1e-2, epochs=3, weight_decay=1e-4, **FAST)
    if optimizer != "adam":
        opts["momentum"] = 0.9
    seeds = [0, 7, 3]
    ens = train_ensemble(lambda: small_mlp(task), seeds, x, y, **opts)
    assert [r.params["seed"] for r in ens] == seeds
    assert ens[0].params["ensemble_path"] == "bmm"
    for r in ens:
        assert_same_run(r, train(lambda: small_mlp(task), x, y, seed=r.params["seed"], **opts))


@pytest.mark.parametrize(
    ("activation", "bias"), [("tanh", True), ("leaky_relu", False), ("linear", True), ("prelu", False)]
)
def test_ensemble_per_activation_equals_sequential(activation, bias):
    x, y = make_data(n=72, task="multiclass")  # a partial last batch of 8
    opts = dict(task="multiclass", lr=1e-2, epochs=3, **FAST)

    def factory():
        return mlp(10, 3, 16, activation=activation, bias=bias, out_features=3)

    ens = train_ensemble(factory, [4, 5], x, y, **opts)
    assert ens[0].params["ensemble_path"] == "bmm"
    for r in ens:
        assert_same_run(r, train(factory, x, y, seed=r.params["seed"], **opts))


def _every_stacked_layer(out: int) -> nn.Module:
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(10, 20),
        nn.Sigmoid(),
        nn.Linear(20, 20, bias=False),
        nn.LeakyReLU(0.2),
        nn.Linear(20, 16),
        nn.PReLU(),
        nn.Dropout(0.0),
        nn.Linear(16, 16),
        nn.ReLU(),
        nn.Identity(),
        nn.Linear(16, out),
    )


@pytest.mark.parametrize(("task", "out"), [("binary", 1), ("multiclass", 3), ("regression", 2)])
def test_stacked_forward_gradients_equal_per_seed_autograd(task, out):
    """The batched-matmul path's outputs and gradients are each seed's own, for every layer kind it plans."""
    from repalign.networks.ensemble import _mlp_forward, _mlp_plan
    from repalign.networks.training import _loss

    seeds = [0, 1, 2]
    models = [init_model(lambda: _every_stacked_layer(out), s) for s in seeds]
    stacked, _ = torch.func.stack_module_state(models)
    plan = _mlp_plan(models[0])
    assert plan is not None
    g = torch.Generator().manual_seed(0)
    xb = torch.randn(len(seeds), 12, 2, 5, generator=g)  # flattened by the model
    yb = {
        "binary": (torch.rand(len(seeds), 12, generator=g) > 0.5).float(),
        "multiclass": torch.randint(0, out, (len(seeds), 12), generator=g),
        "regression": torch.randn(len(seeds), 12, out, generator=g),
    }[task]
    outs = _mlp_forward(plan, stacked, xb)
    torch.stack([_loss(task, o, t) for o, t in zip(outs.unbind(0), yb.unbind(0), strict=True)]).sum().backward()
    for s, m in enumerate(models):
        pred = m(xb[s])
        _loss(task, pred, yb[s]).backward()
        torch.testing.assert_close(outs[s].detach(), pred.detach(), rtol=1e-6, atol=1e-7)
        for name, p in m.named_parameters():
            torch.testing.assert_close(stacked[name].grad[s], p.grad, rtol=1e-5, atol=1e-7, msg=name)


def test_ensemble_checks_outputs_on_every_path():
    """The first step's shape and label checks run as in train()."""
    x, y = make_data(n=48, task="multiclass")
    two_outputs = lambda: mlp(10, 1, 16, out_features=2)  # noqa: E731 - labels go up to 2
    with pytest.raises(ValueError, match="out of range"):
        train_ensemble(two_outputs, [0, 1], x, y, task="multiclass", epochs=1, **FAST)
    with pytest.raises(ValueError, match="one logit per example"):
        train_ensemble(two_outputs, [0, 1], x, (y > 0).astype(np.float32), epochs=1, **FAST)


def test_ensemble_unflattened_input_equals_sequential():
    """A Linear on (b, 2, 5) inputs acts on the last axis, as nn.Linear does."""
    x, y = make_data(n=48)
    x = x.reshape(48, 2, 5)

    def factory():
        return nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Flatten(), nn.Linear(32, 1))

    opts = dict(lr=1e-2, epochs=2, **FAST)
    ens = train_ensemble(factory, [0, 1], x, y, **opts)
    assert ens[0].params["ensemble_path"] == "bmm"
    for r in ens:
        assert_same_run(r, train(factory, x, y, seed=r.params["seed"], **opts))


def test_mlp_plan_only_for_plain_sequential_mlps():
    from repalign.networks.ensemble import _mlp_plan

    assert _mlp_plan(nn.Sequential(nn.Linear(4, 16), nn.PReLU(), nn.Linear(16, 1))) is not None
    assert _mlp_plan(nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.Linear(16, 1))) is None
    assert _mlp_plan(nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(4, 1))) is None
    assert _mlp_plan(TinyNet()) is None


def test_ensemble_equals_sequential_multiclass_partial_batches_validation():
    x, y = make_data(n=90, task="multiclass")  # 90 = 5 x 16 + 10: a partial last batch
    opts = dict(task="multiclass", lr=1e-2, epochs=3, x_val=x[:30], y_val=y[:30], **FAST)
    ens = train_ensemble(lambda: small_mlp("multiclass"), [1, 2], x, y, **opts)
    for r in ens:
        assert "val_acc" in r.history
        assert_same_run(r, train(lambda: small_mlp("multiclass"), x, y, seed=r.params["seed"], **opts))


def test_ensemble_vmap_path_for_other_modules():
    x, y = make_data()
    opts = dict(lr=1e-2, epochs=2, **FAST)
    ens = train_ensemble(TinyNet, [0, 1], x, y, **opts)
    assert ens[0].params["ensemble_path"] == "vmap"
    for r in ens:
        assert_same_run(r, train(TinyNet, x, y, seed=r.params["seed"], **opts), rtol=1e-4, atol=1e-5)


def test_ensemble_callback_records_per_seed():
    x, y = make_data()

    def callback(epoch, model):
        return float(next(model.parameters()).detach().norm())

    opts = dict(epochs=4, callback=callback, callback_every=3, **FAST)
    ens = train_ensemble(small_mlp, [0, 1], x, y, **opts)
    for r in ens:
        seq = train(small_mlp, x, y, seed=r.params["seed"], **opts)
        assert list(r.records) == list(seq.records) == [0, 3, 4]
        np.testing.assert_allclose(list(r.records.values()), list(seq.records.values()), rtol=1e-5)
    assert ens[0].records[0] != ens[1].records[0]


def test_ensemble_rejects_what_it_cannot_batch():
    x, y = make_data()

    def with_batchnorm():
        return nn.Sequential(nn.Linear(10, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 1))

    def with_dropout():
        return nn.Sequential(nn.Linear(10, 8), nn.Dropout(0.5), nn.Linear(8, 1))

    for factory in (with_batchnorm, with_dropout):
        with pytest.raises(ValueError, match=r"train\(init_model"):
            train_ensemble(factory, [0, 1], x, y, epochs=1, **FAST)
    with pytest.raises(ValueError, match="seeds"):
        train_ensemble(small_mlp, [], x, y, epochs=1, **FAST)
    with pytest.raises(ValueError, match="adam, sgd, rmsprop"):
        train_ensemble(small_mlp, [0], x, y, optimizer="lbfgs", epochs=1, **FAST)
    # the same model trains fine sequentially
    train(with_batchnorm, x, y, epochs=1, **FAST)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_training_matches_cpu():  # pragma: no cover - runs where a GPU exists
    """train and train_ensemble (batched matmuls, fused optimizer) on the GPU agree with the CPU to float rounding."""
    x, y = make_data(n=64)
    opts = dict(lr=1e-2, epochs=2, progress=False, batch_size=16)
    cpu = train(small_mlp, x, y, seed=0, device="cpu", **opts)
    gpu = train(small_mlp, x, y, seed=0, device="cuda", **opts)
    ens = train_ensemble(small_mlp, [0, 1], x, y, device="cuda", **opts)
    assert ens[0].params["ensemble_path"] == "bmm" and ens[0].params["device"].startswith("cuda")
    for run in (gpu, ens[0]):
        np.testing.assert_allclose(run.history["train_loss"], cpu.history["train_loss"], rtol=1e-4, atol=1e-5)
        for p, q in zip(run.model.parameters(), cpu.model.parameters(), strict=True):
            torch.testing.assert_close(p.detach().cpu(), q.detach().cpu(), rtol=1e-4, atol=1e-5)
