"""SEB, SER, Hybrid and the spectral budgets (prune.methods): exact sparsity, masks frozen through fine-tuning,
input model unchanged, bad options rejected, the SEB formula against a hand computation, and the CLI end to end."""
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from prune.finetune import finetune
from prune.masks import global_sparsity
from prune.methods import hybrid_prune, layer_spectra, seb_prune, seb_weights, ser_prune, spectral_budget_prune
from prune.methods.seb import SEB_FLOOR, layer_type, seb_band

from _shared_paths import shared_env  # noqa: F401


class Tiny(nn.Module):
    """A ViT-named MLP: attention and MLP layer names, so the layer-type betas apply."""

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.attn = nn.Module()
        self.attn.qkv = nn.Linear(24, 48)
        self.mlp = nn.Module()
        self.mlp.fc1 = nn.Linear(48, 64)
        self.head = nn.Linear(64, 5)
        with torch.no_grad():
            for i, p in enumerate(self.parameters()):
                p.copy_(torch.randn(p.shape, generator=g) * (0.3 + 0.2 * i))

    def forward(self, x):
        return self.head(torch.relu(self.mlp.fc1(torch.relu(self.attn.qkv(x)))))


def _data(n=96, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 24, generator=g), torch.randint(0, 5, (n,), generator=g)


def _n(model):
    return sum(m.weight.numel() for m in (model.attn.qkv, model.mlp.fc1, model.head))


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


METHODS = {
    "seb": lambda m, s, **kw: seb_prune(m, s, **kw),
    "ser": lambda m, s, **kw: ser_prune(m, s, _data(), select_steps=3, batch_size=32, **kw),
    "hybrid": lambda m, s, **kw: hybrid_prune(m, s, _data(), select_steps=3, batch_size=32, **kw),
    "bulk": lambda m, s, **kw: spectral_budget_prune(m, s, **kw),
    "edge": lambda m, s, **kw: spectral_budget_prune(m, s, signal="edge-norm", **kw),
    "edge-data": lambda m, s, **kw: spectral_budget_prune(m, s, signal="edge-norm", calibration=_data()[0], **kw),
}


@pytest.mark.parametrize("method", sorted(METHODS))
@pytest.mark.parametrize("amount", [0.0, 0.15, 0.35, 0.5, 0.62, 0.8, 1.0])
def test_exact_sparsity_and_input_unchanged(method, amount):
    model = Tiny()
    before = _state(model)
    out, masks, rows = METHODS[method](model, amount)
    n = _n(model)
    zeros = sum(int((~m).sum()) for m in masks.values())
    assert zeros == round(amount * n)  # the exact count of zeros, not approximately
    assert math.isclose(global_sparsity(out), round(amount * n) / n, abs_tol=1e-12)
    for name, p in out.named_parameters():
        if name in masks:
            assert torch.equal(p == 0, ~masks[name]) or not bool((p[masks[name]] == 0).any()) and \
                bool((p[~masks[name]] == 0).all())
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the input is untouched
    assert len(rows) == 3


@pytest.mark.parametrize("method", ["seb", "ser", "edge"])
def test_inplace_changes_the_model(method):
    model = Tiny()
    out, _, _ = METHODS[method](model, 0.5, inplace=True)
    assert out is model and abs(global_sparsity(model) - 0.5) < 1e-2


@pytest.mark.parametrize("method", ["seb", "ser", "hybrid", "edge-data"])
def test_masks_frozen_through_finetune(method):
    out, masks, _ = METHODS[method](Tiny(), 0.6)
    tuned, _ = finetune(out, _data(), epochs=2, lr=0.05, optimizer="sgd", momentum=0.9, weight_decay=1e-3,
                        batch_size=16, masks=masks, progress=False)
    moved = False
    for name, p in tuned.named_parameters():
        if name in masks:
            assert bool((p[~masks[name]] == 0).all())
            moved |= not torch.equal(p[masks[name]], dict(out.named_parameters())[name][masks[name]])
    assert moved  # the fine-tune did train the kept weights


def test_seb_weights_match_the_formula():
    """w_l = max(0.1, 1 + beta_type * (1 - s/s_d)_+ * z_l), z over the layers' BEMA edges, by hand."""
    model = Tiny()
    spectra = layer_spectra(model)
    edges = np.array([s.sv_edge for s in spectra])
    z = (edges - edges.mean()) / edges.std()
    for s in (0.35, 0.5, 0.62):
        b, ba, bm, sd = seb_band(s)
        betas = [ba, bm, b]  # qkv (attn), fc1 (mlp), head (other)
        want = [max(SEB_FLOOR, 1 + bt * max(0.0, 1 - s / sd) * zi) for bt, zi in zip(betas, z)]
        got = seb_weights(spectra, s)
        assert np.allclose([got[x.name] for x in spectra], want, rtol=1e-12)
    assert seb_weights(spectra, 0.2) == {x.name: 1.0 for x in spectra}  # below 0.30: plain magnitude
    assert [layer_type(x.name) for x in spectra] == ["attn", "mlp", "other"]


def test_seb_below_030_is_global_magnitude():
    from prune.methods.magnitude import magnitude_prune

    _, m1, _ = seb_prune(Tiny(), 0.25)
    _, m2 = magnitude_prune(Tiny(), amount=0.25)
    assert all(torch.equal(m1[k], m2[k]) for k in m2)


def test_ser_restores_exactly_the_reserve_and_keeps_existing_zeros():
    model = Tiny()
    out, masks, _ = ser_prune(model, 0.5, _data(), select_steps=4, batch_size=32, reserve=0.1)
    _, over, _ = seb_prune(Tiny(), 0.6, beta=None)
    assert sum(int((~m).sum()) for m in masks.values()) == round(0.5 * _n(model))
    # a second SER on the pruned model keeps its zeros (pruning never revives a zero)
    out2, masks2, _ = ser_prune(out, 0.7, _data(), select_steps=2, batch_size=32)
    assert all(bool((~masks2[k] | masks[k]).all()) for k in masks)


@pytest.mark.parametrize("call, message", [
    (lambda m: seb_prune(m, 1.5), "amount"),
    (lambda m: seb_prune(m, 0.5, beta=-1.0), "beta"),
    (lambda m: seb_prune(m, 0.5, s_d=0.0), "s_d"),
    (lambda m: seb_prune(m, 0.5, alpha_bema=0.7), "alpha"),
    (lambda m: seb_prune(m, 0.5, layers=["nope"]), "layers"),
    (lambda m: ser_prune(m, 0.5, _data(), reserve=2.0), "reserve"),
    (lambda m: ser_prune(m, 0.5, _data(), select_steps=-1), "select_steps"),
    (lambda m: ser_prune(m, 0.5, _data(), select_lr=0.0), "select_lr"),
    (lambda m: ser_prune(m, 0.5, _data(), restore_value="dense"), "restore_value"),
    (lambda m: ser_prune(m, 0.5, (torch.zeros(3, 24), torch.zeros(2))), "train"),
    (lambda m: hybrid_prune(m, 0.5, _data(), switch=1.5), "switch"),
    (lambda m: spectral_budget_prune(m, 0.5, signal="alpha"), "signal"),
    (lambda m: spectral_budget_prune(m, 0.5, gamma=0), "gamma"),
    (lambda m: spectral_budget_prune(m, 0.5, max_layer_sparsity=0), "max_layer_sparsity"),
    (lambda m: seb_prune(seb_prune(m, 0.6)[0], 0.3), "existing sparsity"),
])
def test_bad_options_are_rejected(call, message):
    with pytest.raises(ValueError, match=message):
        call(Tiny())
    with pytest.raises(TypeError, match="model"):
        seb_prune("not a model", 0.5)


@pytest.mark.parametrize("method", ["seb", "ser", "hybrid"])
def test_cli_end_to_end(shared_env, tmp_path, method):
    from rmt.cli import main

    out, rep = tmp_path / "p.pt", tmp_path / "r.json"
    argv = ["prune", "mnist-cnn", "--method", method, "--amount", "0.6", "--out", str(out), "--report", str(rep),
            "--eval-samples", "300", "--no-progress", "--select-steps", "2", "--finetune-samples", "256"]
    assert main(argv) == 0
    r = json.loads(rep.read_text())
    assert r["reload_identical"] is True and r["method"] == method
    weights = 32 * 9 + 64 * 32 * 9 + 128 * 3136 + 10 * 128
    assert r["nonzero_before"] - r["nonzero_after"] == round(0.6 * weights)
    from prune.io import read_pruned

    f = read_pruned(out)
    assert sum(int((~m).sum()) for m in f.masks.values()) == round(0.6 * weights)
    assert main(["prune", "mnist-cnn", "--method", method, "--out", str(tmp_path / "x.pt"), "--no-eval"]) == 2
