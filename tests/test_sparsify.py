"""Tests for prune.masks (masks, frozen masks, reports) and prune.methods.magnitude / singular_vectors / mp_cycles
(magnitude pruning, algorithms C and D, the cycle driver)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prune.layers import FactorizedConv2d, FactorizedLinear, from_factors
from prune.params import count_nonzero, count_parameters
from prune.masks import apply_masks, freeze_masks, global_sparsity, masks_from_model, prunable_weights, sparsity_report
from prune.methods.magnitude import magnitude_prune


class QKVBlock(nn.Module):
    """An HF-like attention block with a fused qkv Linear (3d x d) and an output projection."""

    def __init__(self, d: int = 24) -> None:
        super().__init__()
        self.qkv = nn.Linear(d, 3 * d)
        self.proj = nn.Linear(d, d)

    def forward(self, x):
        q, k, v = self.qkv(x).chunk(3, dim=-1)
        a = torch.softmax(q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1]), dim=-1)
        return self.proj(a @ v)


class ConvNet(nn.Module):
    def __init__(self, factorized: bool = False) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.conv1 = nn.Conv2d(3, 16, 3, padding=1)
        conv2 = nn.Conv2d(16, 24, 3, padding=1)
        fc = nn.Linear(24 * 4 * 4, 40)
        if factorized:
            conv2 = from_factors(conv2, torch.randn(24, 6, generator=g) * 0.3, torch.randn(6, 144, generator=g) * 0.1)
            fc = from_factors(fc, torch.randn(40, 8, generator=g) * 0.2, torch.randn(8, 384, generator=g) * 0.1)
        self.conv2 = conv2
        self.pool = nn.AdaptiveAvgPool2d(4)
        self.fc = fc
        self.head = nn.Linear(40, 10)

    def forward(self, x):
        x = torch.relu(self.conv1(x))
        x = self.pool(torch.relu(self.conv2(x))).flatten(1)
        return self.head(torch.relu(self.fc(x)))


def attention_model():
    return nn.Sequential(QKVBlock(24), nn.Flatten(), nn.Linear(24 * 5, 10))


MODELS = {
    "conv": (lambda: ConvNet(False), lambda g: torch.randn(4, 3, 8, 8, generator=g)),
    "factorized": (lambda: ConvNet(True), lambda g: torch.randn(4, 3, 8, 8, generator=g)),
    "qkv": (attention_model, lambda g: torch.randn(4, 5, 24, generator=g)),
}


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(a, b):
    return all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("scope", ["global", "layer"])
def test_magnitude_prune_exact_count_and_not_in_place(kind, scope):
    torch.manual_seed(0)
    model = MODELS[kind][0]()
    before = _state(model)
    pruned, masks = magnitude_prune(model, amount=0.6, scope=scope)
    assert _same_state(before, _state(model)), "original model changed"
    items = prunable_weights(pruned)
    assert set(masks) == {n for n, _, _ in items}
    if kind == "factorized":
        assert "conv2.first.weight" in masks and "fc.second.weight" in masks
    total = sum(p.numel() for _, _, p in items)
    zeros = sum(int((p == 0).sum()) for _, _, p in items)
    if scope == "global":
        assert zeros == round(0.6 * total)
    else:
        for name, _, p in items:
            assert int((p == 0).sum()) == round(0.6 * p.numel()), name
    # masks agree with the zeros, and the kept entries are unchanged
    for name, _, p in items:
        assert torch.equal(masks[name], p != 0)
    params = dict(model.named_parameters())
    for name, _, p in items:
        assert torch.equal(p[masks[name]], params[name][masks[name]])
    # biases untouched
    assert count_nonzero(model) - count_nonzero(pruned) == zeros


def test_global_prunes_smallest_magnitudes():
    torch.manual_seed(3)
    model = ConvNet()
    pruned, masks = magnitude_prune(model, amount=0.3)
    kept = torch.cat([p[masks[n]].abs().flatten() for n, _, p in prunable_weights(pruned)])
    dropped = torch.cat([p[~masks[n]].abs().flatten() for n, _, p in prunable_weights(model)])
    assert kept.min() >= dropped.max()


def test_threshold_and_layers_selection():
    torch.manual_seed(0)
    model = ConvNet()
    pruned, masks = magnitude_prune(model, threshold=0.05, layers=["fc"])
    assert set(masks) == {"fc.weight"}
    assert torch.equal(masks["fc.weight"], model.fc.weight.abs() >= 0.05)
    assert torch.equal(pruned.conv1.weight, model.conv1.weight)
    assert bool((pruned.fc.weight[~masks["fc.weight"]] == 0).all())


@settings(max_examples=30)
@given(amount=st.floats(0.0, 1.0))
def test_amount_is_reached_exactly(amount):
    model = nn.Linear(13, 7)
    with torch.no_grad():
        model.weight.copy_(torch.randn(7, 13, generator=torch.Generator().manual_seed(5)))
    pruned, _ = magnitude_prune(model, amount=amount)
    assert int((pruned.weight == 0).sum()) == round(amount * 91)
    assert global_sparsity(pruned) == pytest.approx(round(amount * 91) / 91)


def test_inplace_changes_model():
    model = ConvNet()
    out, _ = magnitude_prune(model, amount=0.5, inplace=True)
    assert out is model and global_sparsity(model) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.parametrize("kwargs,exc", [
    (dict(), ValueError),
    (dict(amount=0.5, threshold=0.1), ValueError),
    (dict(amount=1.5), ValueError),
    (dict(amount=-0.1), ValueError),
    (dict(amount=True), ValueError),
    (dict(threshold=-1.0), ValueError),
    (dict(threshold=float("nan")), ValueError),
    (dict(amount=0.5, scope="row"), ValueError),
    (dict(amount=0.5, layers=["nope"]), ValueError),
    (dict(amount=0.5, layers="fc"), TypeError),
])
def test_magnitude_prune_bad_input(kwargs, exc):
    with pytest.raises(exc):
        magnitude_prune(ConvNet(), **kwargs)


def test_bad_model_and_nan():
    with pytest.raises(TypeError, match="model"):
        magnitude_prune("not a model", amount=0.5)
    with pytest.raises(ValueError, match="no nn.Linear"):
        magnitude_prune(nn.Sequential(nn.ReLU()), amount=0.5)
    m = nn.Linear(4, 4)
    with torch.no_grad():
        m.weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        magnitude_prune(m, amount=0.5)


def test_apply_masks_and_masks_from_model():
    torch.manual_seed(0)
    model = ConvNet(True)
    pruned, masks = magnitude_prune(model, amount=0.4)
    again = apply_masks(model, masks)
    assert _same_state(_state(again), _state(pruned))
    assert global_sparsity(model) == 0.0  # not in place
    got = masks_from_model(pruned)
    assert set(got) == set(masks) and all(torch.equal(got[k], masks[k]) for k in got)
    with pytest.raises(ValueError, match="not a parameter"):
        apply_masks(model, {"nope.weight": masks["conv1.weight"]})
    with pytest.raises(ValueError, match="shape"):
        apply_masks(model, {"conv1.weight": masks["head.weight"]})
    with pytest.raises(TypeError, match="bool"):
        apply_masks(model, {"conv1.weight": masks["conv1.weight"].float()})
    with pytest.raises(TypeError, match="dict"):
        apply_masks(model, [1, 2])


@pytest.mark.parametrize("opt_name", ["sgd_momentum_wd", "adamw", "adam_l2"])
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_frozen_masks_survive_momentum_and_weight_decay(opt_name, kind):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    build, data = MODELS[kind]
    model = build()
    make = {
        "sgd_momentum_wd": lambda ps: torch.optim.SGD(ps, lr=1e-3, momentum=0.9, weight_decay=1e-2),
        "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3, weight_decay=0.1),
        "adam_l2": lambda ps: torch.optim.Adam(ps, lr=1e-3, weight_decay=0.1),
    }[opt_name]
    opt = make(model.parameters())
    # fill the momentum / Adam moments before masking, so a plain re-zero-free scheme would drift
    for _ in range(3):
        opt.zero_grad()
        model(data(g)).pow(2).mean().backward()
        opt.step()
    _, masks = magnitude_prune(model, amount=0.5, inplace=True)
    frozen = freeze_masks(model, masks, optimizer=opt)
    for _ in range(4):
        opt.zero_grad()
        model(data(g)).pow(2).mean().backward()
        for name, p in model.named_parameters():
            if name in masks:
                assert bool((p.grad[~masks[name]] == 0).all()), "gradient reaches a masked weight"
        opt.step()
        for name, p in model.named_parameters():
            if name in masks:
                assert bool((p[~masks[name]] == 0).all())
    live = sum(int(masks[n].sum()) for n in masks)
    assert sum(int(torch.count_nonzero(p)) for n, p in model.named_parameters() if n in masks) == live
    frozen.remove()
    opt.zero_grad()
    model(data(g)).pow(2).mean().backward()
    opt.step()
    # removed: masked weights move again
    assert any(bool((p[~masks[n]] != 0).any()) for n, p in model.named_parameters() if n in masks)


def test_frozen_masks_without_optimizer_and_context_manager():
    torch.manual_seed(0)
    model = nn.Linear(10, 5)
    _, masks = magnitude_prune(model, amount=0.5, inplace=True)
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    with freeze_masks(model, masks) as fz:
        for _ in range(3):
            opt.zero_grad()
            model(torch.randn(3, 10)).sum().backward()
            opt.step()
            fz.reapply()
            assert bool((model.weight[~masks["weight"]] == 0).all())
    with pytest.raises(TypeError, match="optimizer"):
        freeze_masks(model, masks, optimizer="sgd")


def test_pruned_model_saves_and_reloads(tmp_path):
    torch.manual_seed(0)
    model = attention_model()
    pruned, _ = magnitude_prune(model, amount=0.7)
    torch.save(pruned.state_dict(), tmp_path / "m.pt")
    fresh = attention_model()
    fresh.load_state_dict(torch.load(tmp_path / "m.pt"))
    x = torch.randn(2, 5, 24)
    assert torch.equal(fresh(x), pruned(x))
    assert count_nonzero(fresh) == count_nonzero(pruned)


def test_sparsity_report(tmp_path):
    torch.manual_seed(0)
    pruned, _ = magnitude_prune(ConvNet(True), amount=0.25)
    rep = sparsity_report(pruned)
    assert rep.numel == sum(r.numel for r in rep.rows)
    assert rep.sparsity == pytest.approx(0.25, abs=1e-3)
    assert rep.model_parameters == count_parameters(pruned)
    assert rep.model_nonzero == count_nonzero(pruned)
    kinds = {r.layer: r.kind for r in rep.rows}
    assert kinds["conv2"] == "FactorizedConv2d" and kinds["fc"] == "FactorizedLinear"
    rep.to_csv(tmp_path / "s.csv")
    assert (tmp_path / "s.csv").read_text().count("\n") == len(rep.rows) + 1
    assert "sparsity" in str(rep)


# ---------------------------------------------------------------------------------------------------------
# Algorithm C, Algorithm D with the MP budget, and the cycle driver
# ---------------------------------------------------------------------------------------------------------
from theory import fit_spectrum  # noqa: E402

from prune.layers import weight_matrix  # noqa: E402
from prune.methods.mp_cycles import mp_budget, mp_magnitude_prune, rmt_cycle_prune  # noqa: E402
from prune.methods.singular_vectors import sparsify_singular_vectors  # noqa: E402


def _spiked_linear(N=120, M=80, seed=0):
    g = torch.Generator().manual_seed(seed)
    lin = nn.Linear(M, N)
    u, v = torch.randn(N, 2, generator=g), torch.randn(2, M, generator=g)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(N, M, generator=g) / math.sqrt(M) + 3 * (u @ v) / math.sqrt(N * M))
    return lin


def test_algorithm_c_matches_formula_on_a_linear():
    lin = _spiked_linear()
    W = lin.weight.detach().double()
    theta = 0.3
    new, rows = sparsify_singular_vectors(lin, theta)
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    edge = fit_spectrum(W, alpha=0.25, beta=0.8).sv_edge
    T = theta * torch.clamp(torch.clamp(1 - s / edge, min=0) ** 30, min=1 / 750)
    U2 = torch.where(U.abs() < T[None, :], 0.0, U)
    V2 = torch.where(Vh.abs() < T[:, None], 0.0, Vh)
    ref = (U2 * s) @ V2
    assert torch.allclose(new.weight.double(), ref, atol=1e-5)
    assert rows[0].sv_edge == pytest.approx(edge)
    assert rows[0].u_zeroed == int((U2 == 0).sum()) and rows[0].v_zeroed == int((V2 == 0).sum())
    assert torch.equal(lin.weight, _spiked_linear().weight)  # not in place
    assert rows[0].rel_change > 0


def test_algorithm_c_small_theta_is_identity_large_theta_kills():
    lin = _spiked_linear()
    same, rows = sparsify_singular_vectors(lin, 1e-9)
    assert torch.allclose(same.weight, lin.weight, atol=1e-5) and rows[0].u_zeroed == 0
    dead, _ = sparsify_singular_vectors(lin, 1e6)
    assert float(dead.weight.detach().abs().max()) == 0.0


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_algorithm_c_every_layer_kind(kind):
    torch.manual_seed(0)
    build, data = MODELS[kind]
    model = build()
    before = _state(model)
    new, rows = sparsify_singular_vectors(model, 20.0)  # floor theta/750 = 0.027 ~ a quarter of 1/sqrt(N)
    assert _same_state(before, _state(model))
    assert {r.name for r in rows} == {l for _, l, _ in prunable_weights(model)}
    assert all(r.u_zeroed + r.v_zeroed > 0 for r in rows if r.N * r.M > 1000)
    out = new(data(torch.Generator().manual_seed(0)))
    assert bool(torch.isfinite(out).all())
    if kind == "factorized":
        # the zeroed singular-vector entries are stored zeros of the factors
        assert isinstance(new.fc, FactorizedLinear) and isinstance(new.conv2, FactorizedConv2d)
        assert int((new.fc.second.weight == 0).sum()) > 0 or int((new.fc.first.weight == 0).sum()) > 0
        assert torch.allclose(weight_matrix(new.fc), weight_matrix(model.fc), atol=0.5)


def test_algorithm_c_keeps_zeros_and_reports_nofit():
    model = ConvNet()
    pruned, masks = magnitude_prune(model, amount=0.5)
    again, _ = sparsify_singular_vectors(pruned, 0.01)
    assert all(bool((p[~masks[n]] == 0).all()) for n, _, p in prunable_weights(again))
    loose, _ = sparsify_singular_vectors(pruned, 0.01, keep_zeros=False)
    assert global_sparsity(loose) < 0.1
    tiny = nn.Linear(3, 2)
    _, rows = sparsify_singular_vectors(tiny, 0.1)
    assert rows[0].action == "nofit" and math.isnan(rows[0].sv_edge)


@pytest.mark.parametrize("theta", [0.0, -1.0, float("inf"), "big", True])
def test_algorithm_c_bad_theta(theta):
    with pytest.raises(ValueError, match="theta"):
        sparsify_singular_vectors(ConvNet(), theta)
    with pytest.raises(ValueError, match="theta"):
        sparsify_singular_vectors(ConvNet(), lambda N, M: -1.0)


def test_mp_budget_formula_and_errors():
    assert mp_budget(0.1, 0.9, 1) == pytest.approx((0.9 * 0.9) ** 1.5)
    assert mp_budget(0.1, 0.9, 3) == pytest.approx((0.9 * 0.9) ** 0.5)
    assert mp_budget(0.0, 1.0, 1) == 1.0 and mp_budget(1.0, 0.5, 2) == 0.0
    for args in [(-0.1, 0.5, 1), (0.1, 1.5, 1), (0.1, 0.5, 0), (0.1, 0.5, 1.5), (float("nan"), 0.5, 1)]:
        with pytest.raises(ValueError):
            mp_budget(*args)


@pytest.mark.parametrize("kind", sorted(MODELS))
def test_algorithm_d_budget_counts(kind):
    torch.manual_seed(0)
    model = MODELS[kind][0]()
    pruned, masks, rows = mp_magnitude_prune(model, 0.2, cycle=2)
    assert global_sparsity(model) == 0.0
    by_layer = {}
    for n, l, p in prunable_weights(pruned):
        by_layer.setdefault(l, []).append((n, p))
    for r in rows:
        assert r.removed == min(r.nonzero_before, math.ceil(r.c * 0.2 * r.nonzero_before))
        zeros = sum(int((p == 0).sum()) for _, p in by_layer[r.name])
        assert zeros == r.removed
        if not math.isnan(r.mp_fit_error):
            W = weight_matrix(dict(model.named_modules())[r.name]).detach()
            rep = fit_spectrum(W, alpha=0.25, beta=0.8)
            assert r.c == pytest.approx(mp_budget(rep.mp_fit_error, rep.bulk_fraction, 2))
        # the smallest magnitudes of the layer went
        orig = dict(model.named_parameters())
        kept = torch.cat([orig[n].detach()[masks[n]].abs() for n, _ in by_layer[r.name]])
        gone = torch.cat([orig[n].detach()[~masks[n]].abs() for n, _ in by_layer[r.name]])
        if gone.numel():
            assert float(kept.min()) >= float(gone.max())


def test_algorithm_d_prunes_mp_like_layers_more():
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(120, 120), nn.Linear(120, 120))
    with torch.no_grad():
        model[0].weight.copy_(torch.randn(120, 120, generator=g) / 120 ** 0.5)  # pure MP noise
        model[1].weight.copy_(torch.randn(120, 120, generator=g) ** 3 / 120 ** 0.5)  # heavy-tailed: poor MP fit
    _, _, rows = mp_magnitude_prune(model, 0.3)
    assert rows[0].mp_fit_error < rows[1].mp_fit_error
    assert rows[0].c > rows[1].c and rows[0].removed > rows[1].removed


def test_algorithm_d_max_remove_is_exact():
    model = ConvNet()
    _, _, rows = mp_magnitude_prune(model, 0.5, max_remove=777)
    assert sum(r.removed for r in rows) == 777
    with pytest.raises(ValueError, match="max_remove"):
        mp_magnitude_prune(model, 0.5, max_remove=-1)
    with pytest.raises(ValueError, match="amount"):
        mp_magnitude_prune(model, 1.5)
    with pytest.raises(ValueError, match="alpha"):
        mp_magnitude_prune(model, 0.5, alpha=0.7)
    with pytest.raises(ValueError, match="cycle"):
        mp_magnitude_prune(model, 0.5, cycle=0)


@pytest.mark.slow
@pytest.mark.parametrize("kind", sorted(MODELS))
def test_cycle_driver_reaches_target_with_frozen_masks(kind):
    torch.manual_seed(0)
    build, data = MODELS[kind]
    model = build()
    seen = []
    x = data(torch.Generator().manual_seed(0))
    pruned, masks, hist = rmt_cycle_prune(model, 0.3, reg_steps=3, progress=False,
                                          eval_fn=lambda m: seen.append(global_sparsity(m)) or float(m(x).abs().mean()))
    assert global_sparsity(model) == 0.0
    assert hist[-1].sparsity == pytest.approx(0.3, abs=1.0 / sum(p.numel() for _, _, p in prunable_weights(model)))
    assert [h.cycle for h in hist] == list(range(1, len(hist) + 1))
    assert all(b.sparsity > a.sparsity for a, b in zip(hist, hist[1:]))
    assert any(h.sv_sparsified for h in hist) or len(hist) == 1
    assert len(seen) == len(hist) and all(not math.isnan(h.metric) for h in hist)
    assert set(masks) == {n for n, _, _ in prunable_weights(pruned)}


def test_cycle_driver_monotone_masks_and_errors():
    model = ConvNet()
    a, ma, _ = rmt_cycle_prune(model, 0.2, reg_steps=0, progress=False)
    b, mb, hist = rmt_cycle_prune(a, 0.4, reg_steps=2, progress=False)
    for n in ma:
        assert not bool((mb[n] & ~ma[n]).any()), "a pruned weight came back"
    assert hist[-1].sparsity == pytest.approx(0.4, abs=1e-4)
    with pytest.raises(ValueError, match="amount"):
        rmt_cycle_prune(model, 1.2)
    with pytest.raises(ValueError, match="max_cycles"):
        rmt_cycle_prune(model, 0.2, max_cycles=0)
    with pytest.raises(ValueError, match="reg_steps"):
        rmt_cycle_prune(model, 0.2, reg_steps=-3)


def test_algorithm_c_leaves_sparse_factors_alone():
    model = ConvNet(True)
    pruned, masks = magnitude_prune(model, amount=0.3, layers=["fc"])
    new, rows = sparsify_singular_vectors(pruned, 20.0)
    row = {r.name: r for r in rows}
    assert row["fc"].action == "skipped-sparse-factors"
    assert row["conv2"].action in ("sparsified-factors", "nofit")  # rank 6 of 24: BEMA may have no window
    assert torch.equal(new.fc.first.weight, pruned.fc.first.weight)


def test_cycle_driver_start_cycle_continues_the_schedule():
    model = nn.Linear(60, 40)
    _, _, hist = rmt_cycle_prune(model, 0.05, reg_steps=0, start_cycle=5, progress=False)
    assert hist[0].cycle == 5 and hist[0].reduction == pytest.approx(0.06 * 1.02 ** 5)
    assert not hist[0].sv_sparsified and (len(hist) < 2 or hist[1].sv_sparsified)
    with pytest.raises(ValueError, match="start_cycle"):
        rmt_cycle_prune(model, 0.05, start_cycle=0)


def test_cycle_schedules_default_fast_paper_by_name():
    """The default schedule runs no regularisation; "paper" runs the seed's 5000 + 1000 (i - 1) steps and, on a
    small model, gives the same masks (the regularisation at lr 5e-8 moves no weight across the threshold)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(30, 40), nn.ReLU(), nn.Linear(40, 10))
    a, ma, ha = rmt_cycle_prune(model, 0.1, max_cycles=1, progress=False)
    b, mb, hb = rmt_cycle_prune(model, 0.1, max_cycles=1, progress=False, schedule="paper")
    assert [h.reg_steps for h in ha] == [0] and [h.reg_steps for h in hb] == [5000]
    assert all(torch.equal(ma[k], mb[k]) for k in ma)
    assert max(float((pa - pb).abs().max()) for pa, pb in zip(a.parameters(), b.parameters())) < 5000 * 5e-8 * 1.01
    with pytest.raises(ValueError, match="schedule"):
        rmt_cycle_prune(model, 0.1, schedule="slow")
