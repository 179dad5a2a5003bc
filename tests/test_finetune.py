"""Tests for prune.finetune: frozen masks, schedule, checkpoints and resume, seeding."""

import pytest
import torch
from torch import nn

from prune.finetune import finetune, lr_factor
from prune.methods.magnitude import magnitude_prune
from test_sparsify import _same_state, _state


def _task(n=512, seed=0):
    """A 3-class problem in 10 dimensions whose labels one fixed linear map decides; ``seed`` draws new inputs."""
    A = torch.randn(10, 3, generator=torch.Generator().manual_seed(12345))
    X = torch.randn(n, 10, generator=torch.Generator().manual_seed(seed))
    return X, (X @ A).argmax(1)


def _net(seed=0):
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.Dropout(0.1), nn.Linear(32, 3))


def _acc(X, y):
    return lambda m: float((m(X).argmax(1) == y).float().mean())


def test_lr_factor_schedule():
    assert lr_factor(0, 100, 10, 0.01) == 0.01 and lr_factor(9, 100, 10) == 0.01
    assert lr_factor(10, 100, 10) == pytest.approx(1.0)
    assert lr_factor(55, 100, 10) == pytest.approx(0.5)
    assert lr_factor(100, 100, 10) == pytest.approx(0.0, abs=1e-12)
    assert lr_factor(0, 100) == 1.0


def test_finetune_learns_with_frozen_masks_and_leaves_rng_alone():
    X, y = _task()
    Xt, yt = _task(seed=1)
    model, masks = magnitude_prune(_net(), amount=0.5)
    before = _state(model)
    rng = torch.get_rng_state()
    acc0 = _acc(Xt, yt)(model.eval())
    tuned, hist = finetune(model, (X, y), epochs=6, lr=0.1, batch_size=32, eval_fn=_acc(Xt, yt), progress=False)
    assert torch.equal(rng, torch.get_rng_state())
    assert _same_state(before, _state(model))
    assert hist[-1]["metric"] > acc0 + 0.2 and hist[-1]["metric"] > 0.85  # measured 0.93
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    assert hist[-1]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine to 0
    for n, p in tuned.named_parameters():
        if n in masks:
            assert bool((p[~masks[n]] == 0).all())
    assert not tuned.training


def test_no_masks_option_lets_zeros_move():
    X, y = _task()
    model, masks = magnitude_prune(_net(), amount=0.5)
    tuned, _ = finetune(model, (X, y), epochs=1, lr=0.05, masks=False, progress=False)
    assert any(bool((p[~masks[n]] != 0).any()) for n, p in tuned.named_parameters() if n in masks)


def test_seeded_and_resume_is_exact(tmp_path):
    X, y = _task()
    model, _ = magnitude_prune(_net(), amount=0.3)
    kw = dict(lr=0.05, batch_size=50, seed=3, progress=False, warmup_epochs=1, optimizer="adamw",
              weight_decay=0.01)
    full, h_full = finetune(model, (X, y), epochs=3, **kw)
    again, _ = finetune(model, (X, y), epochs=3, **kw)
    assert _same_state(_state(full), _state(again))
    other, _ = finetune(model, (X, y), epochs=3, **{**kw, "seed": 4})
    assert not _same_state(_state(full), _state(other))
    # interrupted after 2 epochs, then resumed to 3: the same weights as the uninterrupted run
    # (the schedule is defined over the 3 epochs, so the first run is told epochs=3 and stopped by a failing eval)
    calls = {"n": 0}

    def stop_after_two(m):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return 0.0

    with pytest.raises(KeyboardInterrupt):
        finetune(model, (X, y), epochs=3, checkpoint_dir=tmp_path, eval_fn=stop_after_two, **kw)
    assert (tmp_path / "finetune.pt").exists()
    resumed, h = finetune(model, (X, y), epochs=3, checkpoint_dir=tmp_path, **kw)
    assert [r["epoch"] for r in h] == [1, 2, 3]
    assert _same_state(_state(resumed), _state(full))


def test_dataloader_input_and_clipping():
    X, y = _task()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X, y), batch_size=32, shuffle=False)
    tuned, hist = finetune(_net(), loader, epochs=3, lr=0.1, progress=False, eval_fn=_acc(X, y))
    assert len(hist) == 3 and hist[-1]["metric"] > 0.8
    # a huge learning rate with clipping at 1e-3: every step moves each weight by at most lr * clip (SGD, no momentum)
    net = _net()
    small, _ = finetune(net, (X, y), epochs=1, lr=1.0, momentum=0.0, clip=1e-3, batch_size=512, progress=False)
    for p, q in zip(small.parameters(), net.parameters()):
        assert float((p - q).detach().norm()) <= 1e-3 + 1e-7


@pytest.mark.parametrize("kwargs,exc,match", [
    (dict(epochs=0), ValueError, "epochs"),
    (dict(lr=-1.0), ValueError, "lr"),
    (dict(optimizer="lbfgs"), ValueError, "optimizer"),
    (dict(batch_size=0), ValueError, "batch_size"),
    (dict(clip=0.0), ValueError, "clip"),
    (dict(warmup_epochs=5), ValueError, "warmup_epochs"),
])
def test_bad_arguments(kwargs, exc, match):
    X, y = _task(64)
    with pytest.raises(exc, match=match):
        finetune(_net(), (X, y), progress=False, **kwargs)


def test_bad_data_and_divergence():
    X, y = _task(64)
    with pytest.raises(ValueError, match="same"):
        finetune(_net(), (X, y[:10]), progress=False)
    with pytest.raises(TypeError, match="train"):
        finetune(_net(), (X, y, y), progress=False)
    with pytest.raises(TypeError, match="train"):
        finetune(_net(), 3, progress=False)
    with pytest.raises(TypeError, match="model"):
        finetune("net", (X, y), progress=False)
    bad = _net()
    with torch.no_grad():
        bad[0].weight[0, 0] = float("nan")
    with pytest.raises(FloatingPointError, match="loss"):
        finetune(bad, (X, y), progress=False)
