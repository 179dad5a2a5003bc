"""prune.training, prune.models.fc / fashion_cnn: the training loop with pruning during training (issue 4).

Tiny runs on real Fashion-MNIST subsets: pruning really lowers the stored parameters, bulk_keep = 1 changes
nothing, resume equals an uninterrupted run, penalties and their gradient are exact, and the reference code's
bugs (edge off-by-one, dropout at test time, log_softmax over the batch) are absent.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from prune.layers import FactorizedLinear, prunable_layers
from prune.methods.svd import layer_svd
from prune.models.fashion_cnn import FashionCNN
from prune.models.fc import FCNet
from prune.params import count_parameters
from prune.training import (TrainConfig, add_penalty_grad, bulk_schedule, evaluate, image_tensors, layer_structure,
                            learning_rate, load_trained, penalty, prune_step, restructure, train,
                            uniform_rank_for_budget, weight_counts)

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "RMT_DATA_DIR" not in os.environ and SHARED.is_dir():
    os.environ["RMT_DATA_DIR"] = str(SHARED)
os.environ.setdefault("RMT_REQUIRE_DATA", "1")  # never download in tests


@pytest.fixture(scope="module")
def fmnist():
    from prune.data import load_idx_dataset

    xtr, ytr = image_tensors(*load_idx_dataset("fashion-mnist", "train"))
    xte, yte = image_tensors(*load_idx_dataset("fashion-mnist", "test"))
    return (xtr[:1000], ytr[:1000]), (xte[:300], yte[:300])


@pytest.fixture(scope="module")
def trained(fmnist):
    """A [784, 128, 128, 10] net trained 3 epochs: its hidden layers have spikes above a bulk."""
    cfg = TrainConfig(epochs=3, lr=0.02, seed=0)
    return train(FCNet([784, 128, 128, 10], seed=0), *fmnist, cfg, progress=False).model


def _dropout_net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 48), nn.ReLU(), nn.Dropout(0.3), nn.Linear(48, 48), nn.ReLU(),
                         nn.Linear(48, 10), nn.LogSoftmax(dim=1))


# --------------------------------------------------------------------------- models
def test_fc_init_and_log_softmax_over_classes():
    net = FCNet([784, 400, 10], seed=3)
    w = net.layers[0].weight.detach()
    # N(0, 1/784): sample variance of 313600 entries within 5 standard errors (sd of s^2 ~ sqrt(2/n) var)
    var, n = float(w.var()), w.numel()
    assert abs(var * 784 - 1) < 5 * math.sqrt(2 / n)
    assert abs(float(w.mean())) < 5 / math.sqrt(784 * n)
    assert all(float(l.bias.detach().abs().max()) == 0 for l in net.layers)
    x = torch.randn(7, 1, 28, 28)
    out = net(x)
    assert torch.allclose(out.exp().sum(1), torch.ones(7), atol=1e-5)       # normalised over classes
    assert torch.allclose(net(x[:1]), out[:1], atol=1e-6)                    # not over the batch (dim=0 bug)
    assert torch.equal(FCNet([784, 400, 10], seed=3).layers[0].weight, w)   # seeded
    with pytest.raises(ValueError, match="sizes"):
        FCNet([784])


def test_fashion_cnn_fixes_reference_bugs():
    net = FashionCNN((1, 4, 8, 8, 8, 8), hidden=16, seed=0)
    x = torch.randn(6, 1, 28, 28)
    net.eval()
    a, b = net(x), net(x)
    assert torch.equal(a, b)                                      # dropout off at test time
    assert torch.allclose(net(x[:2]), a[:2], atol=1e-5)           # log_softmax over classes, not the batch
    assert torch.allclose(a.exp().sum(1), torch.ones(6), atol=1e-5)
    net.train()
    torch.manual_seed(1)
    c = net(x)
    torch.manual_seed(2)
    assert not torch.allclose(c, net(x))                          # dropout active in training mode
    block = net.features[0]
    assert [type(m) for m in block][:3] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU]   # Conv -> BN -> ReLU
    assert net.fc1.in_features == 8 * 3 * 3
    with pytest.raises(ValueError, match="conv_dropout"):
        FashionCNN(conv_dropout=1.0)


# --------------------------------------------------------------------------- penalties, schedules
def test_penalty_and_its_gradient_are_exact():
    torch.manual_seed(0)
    net = _dropout_net()
    with torch.no_grad():
        net[1].weight[0, :5] = 0.0                                 # |.| at 0: gradient 0 in both
    l1, l2 = 3e-3, 7e-3
    params = list(net.parameters())
    expect = l1 * sum(float(p.detach().abs().sum()) for p in params) + l2 * sum(float((p.detach()**2).sum()) for p in params)
    assert float(penalty(net, l1, l2).detach()) == pytest.approx(expect, rel=1e-6)
    net.zero_grad()
    penalty(net, l1, l2).backward()
    auto = [p.grad.clone() for p in params]
    for p in params:
        p.grad = torch.zeros_like(p)
    add_penalty_grad(net, l1, l2)
    for a, p in zip(auto, params):
        assert torch.allclose(a, p.grad, atol=1e-9)
        assert torch.allclose(p.grad, l1 * torch.sign(p.detach()) + 2 * l2 * p.detach(), atol=1e-9)
    assert float(penalty(net, 0.0, 0.0).detach()) == 0.0


def test_schedule_and_learning_rate():
    assert bulk_schedule(0, 200) == 1.0 and bulk_schedule(100, 200) == 0.5 and bulk_schedule(300, 200) == 0.0
    cfg = TrainConfig(lr=0.01, lr_decay=0.96, lr_decay_every=4)
    assert [learning_rate(cfg, e) for e in (1, 4, 5, 9)] == pytest.approx([0.01, 0.01, 0.0096, 0.01 * 0.96**2])


def test_config_rejects_bad_input():
    with pytest.raises(ValueError, match="prune"):
        TrainConfig(prune="svd")
    with pytest.raises(ValueError, match="budget"):
        TrainConfig(prune="magnitude")
    with pytest.raises(ValueError, match="rank or budget"):
        TrainConfig(prune="rank")
    with pytest.raises(ValueError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="lr_decay"):
        TrainConfig(lr_decay=1.5)
    with pytest.raises(TypeError, match="cfg"):
        train(FCNet([784, 10]), (torch.zeros(1, 784), torch.zeros(1, dtype=torch.long)),
              (torch.zeros(1, 784), torch.zeros(1, dtype=torch.long)), cfg={"epochs": 1})


# --------------------------------------------------------------------------- the pruning step
def test_mp_step_reduces_stored_parameters_at_the_exact_edge(trained):
    model = FCNet([784, 128, 128, 10])
    model.load_state_dict(trained.state_dict())
    svds = {n: layer_svd(m) for n, m in prunable_layers(model)}
    before = count_parameters(model)
    cfg = TrainConfig(prune="mp", schedule_T=1.0, min_rank=10)   # f(1) = 0: keep only the signal values
    rows, _ = prune_step(model, cfg, epoch=1)
    assert count_parameters(model) < before
    assert weight_counts(model)[0] == sum(r["params_after"] for r in rows)
    assert isinstance(model.layers[0], FactorizedLinear)        # 784 x 128 at low rank: two thin layers
    for r in rows:
        if r["action"] in ("factorized", "recomposed"):
            s = svds[r["name"]].s
            k_sig = int((s > r["sv_edge"]).sum())                 # exact spike count: no "lt = i - 1" extra value
            assert r["n_spikes"] == k_sig
            assert r["rank_after"] == max(10, k_sig)
    stored, nonzero = weight_counts(model)
    assert stored == nonzero                                     # factorised storage, no hidden zeros


def test_bulk_keep_one_changes_nothing(trained, fmnist):
    model = FCNet([784, 128, 128, 10])
    model.load_state_dict(trained.state_dict())
    x = fmnist[1][0][:64]
    ref = model(x)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    rows, _ = prune_step(model, TrainConfig(prune="mp"), epoch=0)   # f(0) = 1: keep every value
    assert all(r["action"] in ("unchanged", "misfit") for r in rows)
    assert torch.equal(model(x), ref)
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())


def test_rank_and_magnitude_budgets(trained):
    model = FCNet([784, 128, 128, 10])
    model.load_state_dict(trained.state_dict())
    budget = 60000
    k = uniform_rank_for_budget(model, budget, min_rank=10)
    cfg = TrainConfig(prune="rank", budget={1: budget}, min_rank=10)
    rank_model = FCNet([784, 128, 128, 10])
    rank_model.load_state_dict(trained.state_dict())
    prune_step(rank_model, cfg, epoch=1)
    assert weight_counts(rank_model)[0] <= budget
    assert uniform_rank_for_budget(model, budget, min_rank=10) == k
    roomier = FCNet([784, 128, 128, 10])
    roomier.load_state_dict(trained.state_dict())
    prune_step(roomier, TrainConfig(prune="rank", rank=k + 1, min_rank=10), epoch=1)
    assert weight_counts(roomier)[0] > budget                      # k is the largest common rank that fits
    mag = TrainConfig(prune="magnitude", budget={1: budget})
    _, masks = prune_step(model, mag, epoch=1)
    assert weight_counts(model)[1] == budget                       # non-zero weights = the budget exactly
    assert masks and all(m.dtype == torch.bool for m in masks.values())


# --------------------------------------------------------------------------- the loop
def test_training_learns_and_records(fmnist):
    cfg = TrainConfig(epochs=2, lr=0.02, l1=1e-6, l2=1e-6, prune="mp", prune_every=1, schedule_T=2.0, min_rank=10)
    net = FCNet([784, 96, 96, 10], seed=1)
    res = train(net, *fmnist, cfg, progress=False)
    assert count_parameters(net) == 784 * 96 + 96 * 96 + 960 + 202          # the caller's model untouched
    h = res.history
    assert [r["epoch"] for r in h] == [1, 2] and h[0]["pruned"] and not h[1]["pruned"]   # no prune after the last
    assert h[-1]["test_acc"] > 0.5                                          # well above chance (0.1)
    assert h[0]["params"] < count_parameters(net) and h[0]["params"] == count_parameters(res.model)
    assert evaluate(res.model, *fmnist[1])[1] == h[-1]["test_acc"]


@pytest.mark.parametrize("rule", ["mp", pytest.param("magnitude", marks=pytest.mark.slow),
                                  pytest.param("rank", marks=pytest.mark.slow)])
def test_resume_equals_uninterrupted_run(fmnist, tmp_path, rule):
    kw = dict(epochs=3, lr=0.02, l1=1e-5, l2=1e-5, prune=rule, prune_every=1, schedule_T=3.0, min_rank=10, seed=4)
    if rule == "magnitude":
        kw["budget"] = {1: 30000, 2: 20000}
    if rule == "rank":
        kw["budget"] = {1: 40000, 2: 20000}
    cfg = TrainConfig(**kw)
    full = train(_dropout_net(), *fmnist, cfg, progress=False)
    ckpt = tmp_path / "run.pt"
    part = train(_dropout_net(), *fmnist, cfg, checkpoint=ckpt, stop_after=2, progress=False)
    assert len(part.history) == 2
    resumed = train(_dropout_net(), *fmnist, cfg, checkpoint=ckpt, resume=True, progress=False)
    assert [r["test_acc"] for r in resumed.history] == [r["test_acc"] for r in full.history]
    assert layer_structure(resumed.model) == layer_structure(full.model)
    sa, sb = full.model.state_dict(), resumed.model.state_dict()
    assert sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)
    if rule == "magnitude":
        assert weight_counts(resumed.model)[1] <= 20000            # masks stayed frozen after the last step
    rebuilt, hist = load_trained(_dropout_net(), ckpt)
    assert all(torch.equal(rebuilt.state_dict()[k], sb[k]) for k in sb) and len(hist) == 3
    with pytest.raises(ValueError, match="another configuration"):
        train(_dropout_net(), *fmnist, TrainConfig(**{**kw, "lr": 0.03}), checkpoint=ckpt, resume=True, progress=False)


def test_momentum_carried_only_for_untouched_parameters(fmnist):
    from prune.training import _optimizer

    net = FCNet([784, 64, 10], seed=0)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
    x, y = fmnist[0]
    nn.functional.nll_loss(net(x[:128]), y[:128]).backward()
    opt.step()
    last = net.layers[1].weight
    restructure(net, {"layers.0": 8})                             # layer 0 replaced, layer 1 untouched
    new = _optimizer(net, TrainConfig(), 0.01, old=opt)
    assert torch.equal(new.state[last]["momentum_buffer"], opt.state[last]["momentum_buffer"])
    assert not new.state[net.layers[0].first.weight]
    reset = _optimizer(net, TrainConfig(carry_momentum=False), 0.01, old=opt)
    assert not reset.state


def test_fashion_cnn_notebook_layout_and_seed_bugs():
    ch = (1, 4, 8, 8, 8, 8)
    x = torch.randn(6, 1, 28, 28)
    net = FashionCNN(ch, hidden=16, seed=0, layout="notebook")
    assert net.fc1.in_features == 8 * 3 * 3 and net(x).shape == (6, 10)          # 28-26-24-22-11-9-7-3
    assert [m.padding for m in net.modules() if isinstance(m, nn.Conv2d)] == [(0, 0)] * 5
    assert sum(isinstance(m, nn.MaxPool2d) for m in net.modules()) == 2
    assert sum(isinstance(m, nn.Dropout) for m in net.modules()) == 6              # after every conv + fc1
    assert float(net.fc1.bias.detach().abs().sum()) == 0.0
    assert abs(float(net.fc1.weight.detach().std()) * 72 ** 0.5 - 1.0) < 0.1               # N(0, 1/in)
    net.eval()
    assert torch.equal(net(x), net(x))
    bug = FashionCNN(ch, hidden=16, seed=0, layout="notebook", seed_bugs=True)
    assert [type(m) for m in bug.features[0]][:3] == [nn.Conv2d, nn.ReLU, nn.BatchNorm2d]
    bug.eval()
    torch.manual_seed(1)
    a = bug(x)
    assert not torch.equal(a, bug(x))                                             # dropout on at test time
    assert torch.allclose(a.exp().sum(0), torch.ones(10), atol=1e-5)              # normalised over the batch
    with pytest.raises(ValueError, match="layout"):
        FashionCNN(layout="other")
    with pytest.raises(ValueError, match="seed_bugs"):
        FashionCNN(seed_bugs=True)


def test_fcnet_notebook_options():
    x = torch.rand(5, 784)
    torch.manual_seed(43554454)
    ref = [nn.Linear(784, 30), nn.Linear(30, 10)]                 # the notebook: default init after manual_seed
    state = torch.get_rng_state()
    net = FCNet([784, 30, 10], seed=43554454, init="torch", output_relu=True)
    assert torch.equal(torch.get_rng_state(), state)             # the global RNG is untouched
    for a, b in zip(net.layers, ref):
        assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    h = torch.relu(ref[1](torch.relu(ref[0](x))))
    assert torch.allclose(net(x), torch.log_softmax(h, dim=1), atol=1e-6)
    plain = FCNet([784, 30, 10], seed=43554454, init="torch")
    assert torch.allclose(plain(x), torch.log_softmax(ref[1](torch.relu(ref[0](x))), dim=1), atol=1e-6)
    with pytest.raises(ValueError, match="init"):
        FCNet([784, 10], init="kaiming")


def test_image_tensors_without_normalisation():
    img = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    x, _ = image_tensors(img, np.array([3]), normalize=False)
    assert torch.allclose(x, torch.tensor([[0.0, 1.0, 0.2, 0.4]]))
    xn, _ = image_tensors(img, np.array([3]))
    assert torch.allclose(xn, 2 * x - 1)
