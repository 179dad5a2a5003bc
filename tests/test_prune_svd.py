"""prune.methods.svd: exact truncation (Eckart-Young), the factorise rule, the MP kept rank (no off-by-one), safety.

Exactness claims are checked in float64. Planted-spike matrices come from simulations.generators
(W = S + R, R of variance g / N): the identity "kept rank = BEMA's spike count" holds for every draw;
only "BEMA finds exactly the planted spikes" is statistical (false-spike rate ~0.15, theory.bema), so it
is asserted on one seeded draw and as ">= planted" (strong spikes, far above the BBP threshold) in general.
"""
import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prune.layers import FactorizedConv2d, FactorizedLinear, stored_parameters, weight_matrix
from functools import partial

from prune.methods import svd as _svd
from prune.methods.svd import layer_svd, mp_keep_rank, truncate_layer
from simulations.generators import deformed, low_rank, noise
from theory import bema, esd, fit_spectrum

D = torch.float64
TOL = 1e-10

# These tests check the arithmetic of the cut on single spiked layers, where the default floor (the model's output
# dimension, prune.methods.svd.default_min_rank) would be the layer's own size: they allow any rank >= 1.
mp_truncate, rank_truncate, energy_truncate, svd_truncate = (
    partial(f, min_rank=1) for f in (_svd.mp_truncate, _svd.rank_truncate, _svd.energy_truncate, _svd.svd_truncate))


def _gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _linear(W: torch.Tensor, bias: bool = True) -> nn.Linear:
    lin = nn.Linear(W.shape[1], W.shape[0], bias=bias, dtype=D)
    with torch.no_grad():
        lin.weight.copy_(W)
        if bias:
            lin.bias.copy_(torch.linspace(-1, 1, W.shape[0], dtype=D))
    return lin


def _conv(cout, cin, kh, kw, seed, **geometry) -> nn.Conv2d:
    c = nn.Conv2d(cin, cout, (kh, kw), dtype=D, **geometry)
    g = _gen(seed)
    with torch.no_grad():
        for p in c.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
    return c


def _spiked(N, M, n_spikes, seed, strength=4.0):
    """Noise of variance 1/N plus n_spikes signal singular values strength * (bulk edge) and above."""
    edge = 1.0 + math.sqrt(M / N)  # sqrt(g) (1 + sqrt(M/N)) with g = 1 (generators' convention, M <= N)
    sv = [strength * edge * (1 + 0.5 * i) for i in range(n_spikes)]
    S = low_rank((N, M), sv, seed=seed, device="cpu")
    W, _ = deformed(S, seed=seed + 1)
    return W


def _state(model):
    return {k: v.clone() for k, v in model.state_dict().items()}


def _same_state(model, before):
    now = model.state_dict()
    return now.keys() == before.keys() and all(torch.equal(now[k], before[k]) for k in before)


# ---------------------------------------------------------------- exact truncation


@settings(max_examples=20)
@given(N=st.integers(2, 14), M=st.integers(2, 14), bias=st.booleans(), seed=st.integers(0, 2**31 - 1),
       factorize=st.sampled_from(["always", "never", "auto"]))
def test_full_rank_truncation_reproduces_linear(N, M, bias, seed, factorize):
    lin = _linear(torch.randn(N, M, generator=_gen(seed), dtype=D), bias)
    svd = layer_svd(lin)
    new = truncate_layer(lin, svd, svd.rank, factorize=factorize)
    assert isinstance(new, FactorizedLinear) == (factorize == "always")
    x = torch.randn(4, M, generator=_gen(seed + 1), dtype=D)
    assert torch.allclose(new(x), lin(x), rtol=0, atol=TOL)


@settings(max_examples=20)
@given(cout=st.integers(1, 6), cin=st.integers(1, 3), kh=st.integers(1, 3), kw=st.integers(1, 3),
       stride=st.integers(1, 2), padding=st.integers(0, 2), dilation=st.integers(1, 2), bias=st.booleans(),
       seed=st.integers(0, 2**31 - 1))
def test_full_rank_truncation_reproduces_conv(cout, cin, kh, kw, stride, padding, dilation, bias, seed):
    conv = _conv(cout, cin, kh, kw, seed, stride=stride, padding=padding, dilation=dilation, bias=bias)
    svd = layer_svd(conv)
    x = torch.randn(2, cin, 7, 8, generator=_gen(seed + 1), dtype=D)
    for factorize in ("always", "never"):
        new = truncate_layer(conv, svd, svd.rank, factorize=factorize)
        assert isinstance(new, FactorizedConv2d) == (factorize == "always")
        assert torch.allclose(new(x), conv(x), rtol=0, atol=TOL)


@settings(max_examples=25)
@given(N=st.integers(2, 30), M=st.integers(2, 30), data=st.data(), seed=st.integers(0, 2**31 - 1),
       conv=st.booleans())
def test_rank_k_is_eckart_young_and_factorises_exactly_when_it_saves(N, M, data, seed, conv):
    if conv:  # im2col matrix N x (M' * 3 * 1)
        layer = _conv(N, max(1, M // 3), 3, 1, seed)
    else:
        layer = _linear(torch.randn(N, M, generator=_gen(seed), dtype=D))
    W = weight_matrix(layer).detach().clone()
    N, M = W.shape
    s = torch.linalg.svdvals(W)
    k = data.draw(st.integers(1, min(N, M) - 1 if min(N, M) > 1 else 1))
    model = nn.Sequential(layer)
    out, cuts = rank_truncate(model, k)
    cut = cuts[0]
    new = out[0]
    Wk = weight_matrix(new).detach()
    err = torch.linalg.matrix_norm(W - Wk)
    dropped = math.sqrt(float((s[k:] ** 2).sum()))
    assert err.item() == pytest.approx(dropped, rel=1e-9, abs=TOL)
    assert cut.rel_error == pytest.approx(dropped / float(torch.linalg.matrix_norm(W)), rel=1e-9, abs=TOL)
    if k < min(N, M):
        # spectral error is the first dropped singular value; the kept ones are unchanged
        assert torch.linalg.matrix_norm(W - Wk, ord=2).item() == pytest.approx(s[k].item(), rel=1e-9, abs=TOL)
        assert torch.allclose(torch.linalg.svdvals(Wk)[:k], s[:k], rtol=1e-9, atol=TOL)
        assert cut.rank_after == k
        saves = k * (N + M) < N * M
        assert cut.action == ("factorized" if saves else "recomposed")
        assert isinstance(new, (FactorizedLinear, FactorizedConv2d)) == saves
    assert cut.params_after == stored_parameters(new)
    assert cut.params_before == N * M and (cut.N, cut.M) == (N, M)


def test_factorize_always_and_never_respected():
    lin = _linear(torch.randn(20, 30, generator=_gen(0), dtype=D))
    model = nn.Sequential(lin)
    for k, factorize, cls in [(19, "always", FactorizedLinear), (2, "never", nn.Linear),
                              (11, "auto", FactorizedLinear), (12, "auto", nn.Linear)]:  # 12 * 50 = 600 = 20 * 30
        out, cuts = rank_truncate(model, k, factorize=factorize)
        assert type(out[0]) is cls, (k, factorize)
        assert cuts[0].params_after == (k * 50 if cls is FactorizedLinear else 600)
        assert cuts[0].params_after == stored_parameters(out[0])


# ---------------------------------------------------------------- the user's model is left alone


def test_model_unchanged_unless_inplace():
    g = _gen(1)
    model = nn.Sequential(nn.Conv2d(3, 16, 3, dtype=D), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 4, 40, dtype=D),
                          nn.ReLU(), nn.Linear(40, 30, dtype=D))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=D))
    before = _state(model)
    for fn in (lambda m, **kw: mp_truncate(m, **kw), lambda m, **kw: rank_truncate(m, 3, **kw),
               lambda m, **kw: energy_truncate(m, 0.5, **kw)):
        out, cuts = fn(model)
        assert out is not model and _same_state(model, before)
        assert any(c.action in ("factorized", "recomposed") for c in cuts)
    out, _ = rank_truncate(model, 3, inplace=True)
    assert out is model and isinstance(model[5], FactorizedLinear)


# ---------------------------------------------------------------- MP kept rank: no off-by-one


@settings(max_examples=15)
@given(n_spikes=st.integers(1, 6), seed=st.integers(0, 10_000), shape=st.sampled_from([(200, 100), (150, 150),
                                                                                        (120, 300)]))
def test_mp_kept_rank_is_exactly_bema_spike_count(n_spikes, seed, shape):
    N, M = shape
    W = _spiked(N, M, n_spikes, 3 * seed)
    model = nn.Sequential(_linear(W))
    out, cuts = mp_truncate(model, bulk_keep=0.0, alpha=0.25, beta=0.1)
    cut = cuts[0]
    p, n = min(N, M), max(N, M)
    fit = bema(esd(W), p=p, n=n, alpha=0.25, beta=0.1)  # independent of prune.methods.svd
    s = torch.linalg.svdvals(W)
    assert cut.n_spikes == fit.n_spikes
    assert cut.sv_edge == pytest.approx(fit.sv_edge, rel=1e-9)
    assert cut.rank_after == fit.n_spikes == int((s > cut.sv_edge).sum())  # not one more (seed code's lt = i - 1)
    assert fit.n_spikes >= n_spikes  # spikes far above the BBP threshold are all found
    assert torch.linalg.matrix_rank(weight_matrix(out[0]).detach()).item() == cut.rank_after


def test_planted_spikes_found_exactly_at_a_seeded_draw():
    W = _spiked(200, 100, 3, seed=11)
    _, cuts = mp_truncate(nn.Sequential(_linear(W)), bulk_keep=0.0)
    assert cuts[0].n_spikes == 3 and cuts[0].rank_after == 3 and cuts[0].action == "factorized"


@settings(max_examples=15)
@given(f=st.floats(0.0, 1.0), seed=st.integers(0, 1000))
def test_bulk_keep_formula(f, seed):
    W = _spiked(120, 80, 2, seed)
    _, cuts = mp_truncate(nn.Sequential(_linear(W)), bulk_keep=f)
    k_sig = cuts[0].n_spikes
    expected = max(1, k_sig + math.floor(f * (80 - k_sig)))
    assert cuts[0].rank_after == expected
    assert cuts[0].action == ("unchanged" if expected == 80 else
                              "factorized" if expected * 200 < 120 * 80 else "recomposed")


def test_bulk_keep_one_keeps_everything_and_min_rank_floor():
    W = _spiked(120, 80, 2, seed=5)
    model = nn.Sequential(_linear(W))
    out, cuts = mp_truncate(model, bulk_keep=1.0)
    assert cuts[0].action == "unchanged" and cuts[0].rank_after == 80 and torch.equal(out[0].weight, W)
    out, cuts = mp_truncate(model, bulk_keep=0.0, min_rank=10)
    assert cuts[0].n_spikes < 10 and cuts[0].rank_after == 10
    out, cuts = mp_truncate(model, bulk_keep=0.0, min_rank=500)  # floor above the rank: nothing to cut
    assert cuts[0].action == "unchanged"


def test_mp_keep_rank_rule():
    rep = fit_spectrum(_spiked(120, 80, 3, seed=2).numpy())
    assert mp_keep_rank(rep, 80, 0.0) == rep.n_spikes
    assert mp_keep_rank(rep, 80, 1.0) == 80
    assert mp_keep_rank(rep, 80, 0.5) == rep.n_spikes + (80 - rep.n_spikes) // 2
    assert mp_keep_rank(rep, 2, 0.0) == 2  # capped at the current rank
    with pytest.raises(ValueError, match="bulk_keep"):
        mp_keep_rank(rep, 80, 1.5)


def test_fit_cutoff_leaves_misfitting_layers_untouched():
    # layer 0: pure noise (MP-like, small fit error); layer 1: flat spectrum (all s equal, far from MP)
    Wn = noise((100, 200), seed=3, device="cpu")
    Q = torch.linalg.qr(torch.randn(200, 100, generator=_gen(4), dtype=D))[0].T  # 100 x 200, orthonormal rows
    model = nn.Sequential(_linear(Wn), _linear(Q))
    before = _state(model)
    _, free = mp_truncate(model)
    err_noise, err_flat = free[0].mp_fit_error, free[1].mp_fit_error
    assert err_noise < err_flat
    cutoff = (err_noise + err_flat) / 2
    out, cuts = mp_truncate(model, fit_cutoff=cutoff)
    assert cuts[1].action == "misfit" and cuts[1].rank_after == cuts[1].rank_before == 100
    assert cuts[1].mp_fit_error == err_flat  # the fit is reported even when the layer is left alone
    assert torch.equal(out[1].weight, Q) and type(out[1]) is nn.Linear
    assert cuts[0].action != "misfit" and cuts[0].rank_after < 100
    assert _same_state(model, before)


# ---------------------------------------------------------------- factorised layers: QR path, second round


@settings(max_examples=20)
@given(N=st.integers(1, 25), M=st.integers(1, 25), k=st.integers(1, 30), seed=st.integers(0, 2**31 - 1))
def test_layer_svd_of_factorised_equals_svd_of_product(N, M, k, seed):
    f = FactorizedLinear(M, N, k, dtype=D)
    g = _gen(seed)
    with torch.no_grad():
        f.first.weight.copy_(torch.randn(k, M, generator=g, dtype=D))
        f.second.weight.copy_(torch.randn(N, k, generator=g, dtype=D))
    P = f.matrix().detach()
    svd = layer_svd(f)
    r = min(N, M, k)
    assert svd.rank == r and svd.U.shape == (N, r) and svd.Vh.shape == (r, M)
    s = torch.linalg.svdvals(P)
    assert torch.allclose(svd.s, s[:r], rtol=1e-9, atol=TOL * float(s[0]))
    assert torch.allclose((svd.U * svd.s) @ svd.Vh, P, rtol=0, atol=TOL * float(s[0]))
    assert torch.allclose(svd.U.T @ svd.U, torch.eye(r, dtype=D), atol=TOL)
    lam = svd.eigenvalues()
    assert lam.shape == (min(N, M),) and np.all(lam[r:] == 0)


def test_layer_svd_factorised_conv():
    conv = _conv(12, 4, 3, 3, seed=0)
    out, _ = rank_truncate(nn.Sequential(conv), 3, factorize="always")
    f = out[0]
    svd = layer_svd(f)
    P = f.matrix().detach()
    assert torch.allclose((svd.U * svd.s) @ svd.Vh, P, atol=TOL)
    assert torch.allclose(svd.s, torch.linalg.svdvals(P)[:3], atol=TOL)


def test_mp_truncate_twice_and_below_alpha_p_is_misfit():
    W1 = _spiked(200, 100, 4, seed=21)
    W2 = _spiked(200, 60, 2, seed=31)
    model = nn.Sequential(_linear(W1), nn.ReLU(), _linear(W2.T.contiguous()))
    once, cuts1 = mp_truncate(model, bulk_keep=0.9)
    assert [c.action for c in cuts1] == ["recomposed", "recomposed"]  # 0.9 of the bulk: no saving
    twice, cuts2 = mp_truncate(once, bulk_keep=0.5)
    for c1, c2, p in zip(cuts1, cuts2, (100, 60)):
        # a recomposed layer is dense again (rank_before = p), but only its numerical rank r = the
        # first cut's rank counts: the removed values are censored in the fit, not bulk zeros
        r = c1.rank_after
        assert c2.rank_before == p and c2.rank_after == c2.n_spikes + (r - c2.n_spikes) // 2
        assert c2.n_spikes == c1.n_spikes  # the censored fit does not turn bulk values into spikes
    for c in cuts2:
        assert c.action == ("factorized" if c.rank_after * (c.N + c.M) < c.N * c.M else "recomposed")
    third, cuts3 = mp_truncate(twice, bulk_keep=0.5)  # operates on the factorised layer's product (QR path)
    assert cuts3[0].kind == "FactorizedLinear" and cuts3[0].rank_before == cuts2[0].rank_after
    assert cuts3[0].action == "factorized" and cuts3[0].rank_after < cuts3[0].rank_before
    P, k = weight_matrix(twice[0]).detach(), cuts3[0].rank_after
    s = torch.linalg.svdvals(P)
    err = torch.linalg.matrix_norm(P - weight_matrix(third[0]).detach()).item()
    assert err == pytest.approx(math.sqrt(float((s[k:] ** 2).sum())), rel=1e-8)  # Eckart-Young on the product
    low, _ = rank_truncate(model, 5)  # rank 5 < alpha p = 25 (and 15): no bulk left in BEMA's window
    assert all(isinstance(low[i], FactorizedLinear) for i in (0, 2))
    again, cuts4 = mp_truncate(low, bulk_keep=0.0)
    for c in cuts4:
        assert c.action == "misfit" and c.rank_after == c.rank_before == 5 and "no MP fit" in c.note
    x = torch.randn(3, 100, generator=_gen(0), dtype=D)
    assert torch.equal(again(x), low(x))


def test_small_and_zero_layers_are_misfit_not_crash():
    tiny = nn.Linear(50, 2, dtype=D)
    zero = nn.Linear(60, 40, dtype=D)
    nn.init.zeros_(zero.weight)
    out, cuts = mp_truncate(nn.Sequential(zero, nn.ReLU(), tiny))
    assert [c.action for c in cuts] == ["misfit", "misfit"]
    assert "window" in cuts[1].note and "rank-deficient" in cuts[0].note


def test_grouped_conv_recomposed_under_auto():
    model = nn.Sequential(nn.Conv2d(16, 16, 3, groups=16, dtype=D), nn.Conv2d(16, 32, 3, dtype=D))
    out, cuts = rank_truncate(model, 2)
    assert type(out[0]) is nn.Conv2d and out[0].groups == 16 and cuts[0].action == "recomposed"
    assert isinstance(out[1], FactorizedConv2d)
    with pytest.raises(ValueError, match="groups"):
        rank_truncate(model, 2, factorize="always")


# ---------------------------------------------------------------- baselines


@settings(max_examples=25)
@given(e=st.floats(0.01, 1.0), seed=st.integers(0, 2**31 - 1))
def test_energy_truncate_minimal_k(e, seed):
    W = torch.randn(30, 20, generator=_gen(seed), dtype=D) * torch.logspace(0, -2, 20, dtype=D)
    _, cuts = energy_truncate(nn.Sequential(_linear(W)), e)
    s2 = torch.linalg.svdvals(W) ** 2
    cum = torch.cumsum(s2, 0)
    k = cuts[0].rank_after
    target = e * float(cum[-1])
    assert float(cum[k - 1]) >= target * (1 - 1e-12)  # reaches the energy (up to rounding of the sums)
    if k > 1:
        assert float(cum[k - 2]) < target  # and k - 1 does not
    assert cuts[0].rel_error == pytest.approx(math.sqrt(1 - float(cum[k - 1] / cum[-1])), abs=1e-7)


def test_rank_truncate_caps_at_current_rank():
    model = nn.Sequential(_linear(torch.randn(10, 8, generator=_gen(0), dtype=D)))
    out, cuts = rank_truncate(model, 1000)
    assert cuts[0].action == "unchanged" and cuts[0].rank_after == 8 and cuts[0].params_after == 80
    low, _ = rank_truncate(model, 3)
    out, cuts = rank_truncate(low, 5)
    assert cuts[0].rank_before == 3 and cuts[0].action == "unchanged" and out[0].rank == 3


def test_layers_subset_and_progress():
    model = nn.Sequential(nn.Linear(20, 20, dtype=D), nn.Linear(20, 20, dtype=D))
    out, cuts = rank_truncate(model, 2, layers=["1"], progress=True)
    assert [c.name for c in cuts] == ["1"] and type(out[0]) is nn.Linear
    out, cuts = rank_truncate(model, 2, layers="0")  # one name as a string
    assert [c.name for c in cuts] == ["0"]


# ---------------------------------------------------------------- errors


def test_errors_name_the_argument():
    model = nn.Sequential(nn.Linear(20, 20, dtype=D))
    with pytest.raises(ValueError, match="layers"):
        rank_truncate(model, 2, layers=["nope"])
    with pytest.raises(ValueError, match="no nn.Linear"):
        mp_truncate(nn.Sequential(nn.ReLU()))
    with pytest.raises(TypeError, match="model"):
        mp_truncate(torch.ones(3, 3))
    for bad in (-0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match="bulk_keep"):
            mp_truncate(model, bulk_keep=bad)
    for bad in (0.0, 1.5, float("nan"), -1):
        with pytest.raises(ValueError, match="energy"):
            energy_truncate(model, bad)
    for bad in (0, 2.5, True, -3):
        with pytest.raises(ValueError, match="rank"):
            rank_truncate(model, bad)
    for name in ("bulk_keep", "alpha", "beta", "fit_cutoff"):
        with pytest.raises(TypeError, match=name):
            mp_truncate(model, **{name: "0.1"})
    with pytest.raises(TypeError, match="energy"):
        energy_truncate(model, None)
    with pytest.raises(ValueError, match="factorize"):
        rank_truncate(model, 50, factorize="sometimes")  # checked even when nothing is cut
    for bad in (0, 1.5, True):
        with pytest.raises(ValueError, match="min_rank"):
            mp_truncate(model, min_rank=bad)
    with pytest.raises(ValueError, match="alpha"):
        mp_truncate(model, alpha=0.6)
    with pytest.raises(ValueError, match="beta"):
        mp_truncate(model, beta=0.0)
    with pytest.raises(ValueError, match="fit_cutoff"):
        mp_truncate(model, fit_cutoff=0.0)
    with pytest.raises(TypeError):
        mp_truncate(model, not_an_option=1)
    bad = copy.deepcopy(model)
    with torch.no_grad():
        bad[0].weight[3, 4] = float("nan")
    for fn in (mp_truncate, lambda m: rank_truncate(m, 2), lambda m: energy_truncate(m, 0.5)):
        with pytest.raises(ValueError, match=r"layer '0'.*NaN"):
            fn(bad)
    with pytest.raises(ValueError, match="rank"):
        truncate_layer(model[0], layer_svd(model[0]), 0)
    with pytest.raises(ValueError, match="factorize"):
        truncate_layer(model[0], layer_svd(model[0]), 2, factorize="yes")
    with pytest.raises(ValueError, match="min_rank"):
        svd_truncate(model, lambda *a: (1, {}), min_rank=0)


def test_layers_read_by_their_parent_stay_dense():
    """nn.MultiheadAttention uses out_proj.weight, TransformerEncoderLayer's eval fast path linear1/2.weight:
    factorised, they would break the forward; they are recomposed at the same rank instead."""
    torch.manual_seed(0)  # module initialisation only; the checks are exact given the weights
    enc = nn.TransformerEncoderLayer(32, 4, 64, batch_first=True, dropout=0.0, dtype=D)
    model = nn.Sequential(enc, nn.Linear(32, 48, dtype=D))
    out, cuts = rank_truncate(model, 4)
    assert {c.name: c.action for c in cuts} == {"0.self_attn.out_proj": "recomposed", "0.linear1": "recomposed",
                                                 "0.linear2": "recomposed", "1": "factorized"}
    x = torch.randn(2, 5, 32, generator=_gen(0), dtype=D)
    out.eval()
    with torch.no_grad():
        y = out(x)  # eval: the fast path
    out.train()
    assert torch.allclose(out(x), y, atol=1e-10)  # and the slow path agree
    W = enc.self_attn.out_proj.weight.detach()
    s = torch.linalg.svdvals(W)
    err = torch.linalg.matrix_norm(W - out[0].self_attn.out_proj.weight.detach()).item()
    assert err == pytest.approx(math.sqrt(float((s[4:] ** 2).sum())), rel=1e-9)  # rank-4 truncation
    with pytest.raises(ValueError, match="out_proj"):
        rank_truncate(model, 4, factorize="always")
    out, cuts = rank_truncate(model, 4, factorize="always", layers=["1"])  # other layers still can
    assert isinstance(out[1], FactorizedLinear)


def test_shared_layer_is_replaced_everywhere():
    shared = _linear(torch.randn(30, 30, generator=_gen(2), dtype=D))
    model = nn.Sequential(shared, nn.ReLU(), shared)  # one layer applied twice (weight sharing)
    x = torch.randn(4, 30, generator=_gen(3), dtype=D)
    out, cuts = rank_truncate(model, 3)
    assert len(cuts) == 1 and out[0] is out[2] and isinstance(out[0], FactorizedLinear)
    ref = nn.Sequential(truncate_layer(shared, layer_svd(shared), 3), nn.ReLU())
    assert torch.allclose(out(x), ref[0](ref[1](ref[0](x))), atol=TOL)
