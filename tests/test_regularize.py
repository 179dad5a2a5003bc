"""Tests for prune.regularize: the data-free regularisation phase of seed paper 2."""

import pytest
import torch
from torch import nn

from prune.masks import prunable_weights
from prune.methods.magnitude import magnitude_prune
from prune.regularize import layer_kappas, regularization_loss, regularize
from test_sparsify import MODELS, _same_state, _state


def test_kappas_formula():
    k = layer_kappas({"a": 0.01, "b": 0.0, "c": float("nan")}, ["a", "b", "c", "d"], cycle=2)
    assert k["a"] == pytest.approx(1 / (1 + 1e4 * 0.01 / 2))
    assert k["b"] == 1.0 and k["c"] == 1.0 and k["d"] == 1.0
    with pytest.raises(ValueError, match="cycle"):
        layer_kappas({}, ["a"], cycle=0)
    with pytest.raises(ValueError, match="kappa_scale"):
        layer_kappas({}, ["a"], kappa_scale=-1.0)
    with pytest.raises(ValueError, match="mus"):
        layer_kappas({"a": -0.1}, ["a"])


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_loss_value_matches_definition(kind):
    torch.manual_seed(0)
    model = MODELS[kind][0]()
    items = prunable_weights(model)
    kap = {l: 0.5 + 0.1 * i for i, (_, l, _) in enumerate(items)}
    got = float(regularization_loss(model, kap, group_lasso=1e-3, l1=2e-4, l2=3e-4).detach())
    with torch.no_grad():
        ref = sum(kap[l] * 1e-3 * float(p.norm()) + 2e-4 * float(p.abs().sum()) + 3e-4 * float((p**2).sum())
                  for _, l, p in items)
    assert got == pytest.approx(ref, rel=1e-5)
    with pytest.raises(ValueError, match="l1"):
        regularization_loss(model, l1=-1.0)


def test_zero_tensor_has_finite_gradient():
    m = nn.Linear(4, 3)
    with torch.no_grad():
        m.weight.zero_()
    loss = regularization_loss(m)
    loss.backward()
    assert float(loss.detach()) == 0.0 and bool(torch.isfinite(m.weight.grad).all())


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_regularize_shrinks_keeps_masks_and_is_not_in_place(kind):
    torch.manual_seed(0)
    model, masks = magnitude_prune(MODELS[kind][0](), amount=0.5)
    before = _state(model)
    names = {n for n, _, _ in prunable_weights(model)}
    # a larger learning rate than the seed's 5e-8 so that the change is visible in a few steps
    new, h = regularize(model, 30, lr=1e-3, mus={l: 0.02 for _, l, _ in prunable_weights(model)}, cycle=1)
    assert _same_state(before, _state(model))
    assert h["loss_end"] < h["loss_start"] and h["steps"] == 30
    assert all(k == pytest.approx(1 / (1 + 1e4 * 0.02)) for k in h["kappas"].values())
    for n, p in new.named_parameters():
        if n in names:
            assert bool((p[~masks[n]] == 0).all()), "a pruned weight moved"
            assert float(p.detach().abs().sum()) < float(dict(model.named_parameters())[n].detach().abs().sum())
        else:
            assert torch.equal(p, dict(model.named_parameters())[n]), f"{n} is not a prunable weight"
    assert all(p.grad is None for p in new.parameters())


def test_seed_constants_move_weights_by_at_most_lr_times_steps():
    torch.manual_seed(0)
    model = MODELS["conv"][0]()
    new, _ = regularize(model, 50)  # the seed's lr 5e-8
    for (n, p), (_, q) in zip(new.named_parameters(), model.named_parameters()):
        assert float((p - q).detach().abs().max()) <= 50 * 5e-8 * (1 + 1e-3) + 1e-9


def test_regularize_zero_steps_and_bad_input():
    model = MODELS["conv"][0]()
    new, h = regularize(model, 0)
    assert _same_state(_state(new), _state(model)) and h["loss_start"] == h["loss_end"]
    same, _ = regularize(model, 3, inplace=True)
    assert same is model
    with pytest.raises(ValueError, match="steps"):
        regularize(model, -1)
    with pytest.raises(ValueError, match="lr"):
        regularize(model, 1, lr=float("nan"))
    with pytest.raises(TypeError, match="model"):
        regularize("model", 1)
