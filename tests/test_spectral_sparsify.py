"""Tests for prune.methods.spectral_sparsify: water-filling probabilities, unbiasedness, spectral error vs magnitude."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prune.masks import global_sparsity, prunable_weights
from prune.methods.spectral_sparsify import (
    keep_probabilities,
    singular_value_error,
    sparsification_curve,
    sparsify_matrix,
    spectral_error,
    spectral_sparsify,
)
from test_sparsify import MODELS, _same_state, _state


@settings(max_examples=40)
@given(seed=st.integers(0, 2**31 - 1), d=st.floats(0.0, 1.0), q=st.sampled_from([1.0, 2.0]),
       n=st.integers(1, 12), m=st.integers(1, 12))
def test_keep_probabilities_water_filling(seed, d, q, n, m):
    W = torch.randn(n, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    P = keep_probabilities(W, d, power=q)
    assert P.shape == W.shape and float(P.min()) >= 0 and float(P.max()) <= 1
    assert float(P.sum()) == pytest.approx(d * W.numel(), abs=1e-9 * W.numel() + 1e-9)
    a = W.abs().flatten()
    p = P.flatten()
    order = torch.argsort(a)
    assert bool((torch.diff(p[order]) >= -1e-12).all()), "p not monotone in |w|"
    inner = (p > 0) & (p < 1)
    normal = inner & (p >= 2.0**-970)  # subnormal p (d ~ 5e-324) keeps only a few bits: no ratio to test there
    if int(normal.sum()) >= 2:
        ratio = p[normal] / a[normal] ** q
        assert float(ratio.max() / ratio.min()) == pytest.approx(1.0, rel=1e-6)  # one scale s
    if int(inner.sum()) and bool((p == 1).any()):
        assert float(a[p == 1].min()) >= float(a[inner].max())  # the deterministic entries are the largest


def test_keep_probabilities_with_zeros_and_bad_input():
    W = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    assert torch.equal(keep_probabilities(W, 0.5), torch.tensor([[1.0, 0.0], [0.0, 1.0]], dtype=torch.float64))
    assert float(keep_probabilities(W, 0.0).sum()) == 0
    with pytest.raises(ValueError, match="amount"):
        keep_probabilities(W, 1.5)
    with pytest.raises(ValueError, match="power"):
        keep_probabilities(W, 0.5, power=0)
    with pytest.raises(ValueError, match="NaN"):
        keep_probabilities(torch.tensor([[float("nan")]]), 0.5)
    with pytest.raises(ValueError, match="empty"):
        keep_probabilities(torch.zeros(0, 3), 0.5)
    with pytest.raises(TypeError, match="floating"):
        keep_probabilities(torch.ones(2, 2, dtype=torch.int64), 0.5)
    with pytest.raises(TypeError, match="Tensor"):
        keep_probabilities(np.ones((2, 2)), 0.5)
    with pytest.raises(TypeError, match="seed"):
        sparsify_matrix(W, 0.5, seed=1.5)


@pytest.mark.parametrize("q", [1.0, 2.0])
def test_sampler_is_unbiased_monte_carlo(q):
    """E[W_sparse] = W: per-entry z-scores of the mean over R draws, against the exact variance."""
    g = torch.Generator().manual_seed(7)
    W = torch.randn(12, 15, generator=g, dtype=torch.float64)
    d, R = 0.3, 4000
    P = keep_probabilities(W, d, power=q)
    draws = torch.stack([sparsify_matrix(W, d, power=q, seed=g) for _ in range(R)])
    det = P == 1
    assert bool((draws[:, det] == W[det]).all()), "deterministic entries must be kept exactly"
    mean = draws.mean(0)
    var = W**2 * (1 - P) / P
    z = ((mean - W)[~det] / torch.sqrt(var[~det] / R)).numpy()
    k = z.size
    # chi-square statistic mean(z^2) ~ 1 +- sqrt(2/k); 6 sd allowance (the entries are Bernoulli, not Gaussian)
    assert abs(np.mean(z**2) - 1) < 6 * math.sqrt(2 / k) + 0.15
    # Bonferroni bound on the largest |z| at level 1e-6 over k entries (Gaussian approximation)
    assert np.abs(z).max() < 5.5
    # realised count: mean d n, exact variance sum p(1-p)
    nnz = (draws != 0).sum(dim=(1, 2)).double()
    sd = math.sqrt(float((P * (1 - P)).sum()))
    assert abs(float(nnz.mean()) - d * W.numel()) < 5 * sd / math.sqrt(R)
    assert float(nnz.std()) == pytest.approx(sd, rel=0.1)


def test_seed_reproducible_and_generator_not_global():
    W = torch.randn(30, 20, generator=torch.Generator().manual_seed(0))
    state = torch.get_rng_state()
    a = sparsify_matrix(W, 0.4, seed=3)
    b = sparsify_matrix(W, 0.4, seed=3)
    assert torch.equal(a, b) and not torch.equal(a, sparsify_matrix(W, 0.4, seed=4))
    assert torch.equal(state, torch.get_rng_state())


def _coherent(n=150, seed=0):
    """A sparse set of large entries on top of a small constant offset shared by every entry (rank one)."""
    g = torch.Generator().manual_seed(seed)
    S = (torch.rand(n, n, generator=g) < 0.05).double() * torch.randn(n, n, generator=g, dtype=torch.float64)
    return 0.05 + S


def test_sampler_beats_magnitude_when_small_entries_are_coherent():
    """Thresholding drops the shared offset (a rank-one error of norm ~ 0.05 n); the sampler keeps it in
    expectation and its error is zero-mean noise. Measured at 150 x 150: spectral error 0.145 vs 0.604 at 50 %,
    0.31-0.33 vs 0.764 at 80 %, 0.57-0.60 vs 0.811 at 90 %."""
    W = _coherent()
    rows = sparsification_curve(W, [0.5, 0.8, 0.9], seeds=[0, 1])
    for a in (0.5, 0.8, 0.9):
        mag = [r for r in rows if r["method"] == "magnitude" and r["target_sparsity"] == a][0]
        spec = [r for r in rows if r["method"] == "spectral_q2" and r["target_sparsity"] == a]
        assert max(r["spectral_error"] for r in spec) < 0.85 * mag["spectral_error"]
        assert max(r["sv_error"] for r in spec) < mag["sv_error"]
        assert all(abs(r["sparsity"] - a) < 0.01 for r in spec)
        # the sampler pays in Frobenius error (magnitude pruning is Frobenius-optimal among masks)
        assert all(r["frobenius_error"] > mag["frobenius_error"] for r in spec)


@pytest.mark.slow
def test_magnitude_beats_sampler_on_iid_gaussian():
    """Honest negative result: on an i.i.d. Gaussian matrix the small entries carry no coherent part, and the
    sampler's 1/p rescaling of small kept entries costs more than it saves (measured at 200 x 200, 50 %
    sparsity: spectral error ~0.27 magnitude, ~0.56 for q = 1, ~0.97-1.4 for q = 2)."""
    W = torch.randn(200, 200, generator=torch.Generator().manual_seed(0))
    rows = sparsification_curve(W, [0.5], seeds=[0, 1], powers=(1.0, 2.0))
    mag = [r for r in rows if r["method"] == "magnitude"][0]
    assert all(r["spectral_error"] > mag["spectral_error"] for r in rows if r["method"] != "magnitude")


def test_errors_weyl_and_bad_input():
    g = torch.Generator().manual_seed(1)
    W = torch.randn(40, 30, generator=g)
    Ws = sparsify_matrix(W, 0.5, seed=0)
    assert spectral_error(W, W) == 0.0 and singular_value_error(W, W) == 0.0
    assert singular_value_error(W, Ws) <= spectral_error(W, Ws) + 1e-12
    assert singular_value_error(W, Ws, k=3) <= singular_value_error(W, Ws) + 1e-12
    K = torch.randn(8, 3, 3, 3, generator=g)  # a conv kernel, as its 8 x 27 matrix
    assert spectral_error(K, sparsify_matrix(K, 0.5, seed=0)) > 0
    with pytest.raises(ValueError, match="shape"):
        spectral_error(W, W[:, :5])
    with pytest.raises(ValueError, match="zero matrix"):
        spectral_error(torch.zeros(3, 3), torch.zeros(3, 3))
    with pytest.raises(ValueError, match="k must"):
        singular_value_error(W, Ws, k=0)


@pytest.mark.parametrize("kind", sorted(MODELS))
@pytest.mark.parametrize("scope", ["layer", "global"])
def test_spectral_sparsify_every_layer_kind(kind, scope):
    torch.manual_seed(0)
    build, data = MODELS[kind]
    model = build()
    before = _state(model)
    new, masks = spectral_sparsify(model, amount=0.6, scope=scope, seed=0)
    assert _same_state(before, _state(model))
    items = prunable_weights(new)
    assert set(masks) == {n for n, _, _ in items}
    total = sum(p.numel() for _, _, p in items)
    P = {n: keep_probabilities(p, 0.4) for n, _, p in prunable_weights(model)} if scope == "layer" else None
    sd = math.sqrt(sum(float((q * (1 - q)).sum()) for q in P.values())) if P else math.sqrt(total) / 2
    assert abs(global_sparsity(new) * total - 0.6 * total) < 6 * sd + 1
    orig = dict(model.named_parameters())
    for n, _, p in items:
        assert torch.equal(masks[n], p != 0)
        if P is not None:  # kept entries are w / p
            k = masks[n]
            assert torch.allclose(p[k].double(), orig[n][k].double() / P[n][k], rtol=1e-5)
    out = new(data(torch.Generator().manual_seed(0)))
    assert bool(torch.isfinite(out).all())
    again, _ = spectral_sparsify(model, amount=0.6, scope=scope, seed=0)
    assert _same_state(_state(again), _state(new))


def test_spectral_sparsify_bad_input():
    model = MODELS["conv"][0]()
    with pytest.raises(ValueError, match="amount"):
        spectral_sparsify(model, amount=2.0)
    with pytest.raises(ValueError, match="scope"):
        spectral_sparsify(model, amount=0.5, scope="rows")
    with pytest.raises(TypeError, match="model"):
        spectral_sparsify(torch.ones(3), amount=0.5)
    with pytest.raises(ValueError, match="layers"):
        spectral_sparsify(model, amount=0.5, layers=["nope"])
    m = nn.Linear(3, 3)
    with torch.no_grad():
        m.weight[0, 0] = float("inf")
    with pytest.raises(ValueError, match="NaN or Inf"):
        spectral_sparsify(m, amount=0.5)
