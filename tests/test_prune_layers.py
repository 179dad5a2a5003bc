"""prune.layers: factorised Linear/Conv2d compute exactly what the dense layer of their matrix computes.

All checks run in float64, where the two computations differ only by rounding (1e-10 is ~1e6 ulps of
the outputs, which are O(1)); shapes, strides, paddings, dilations and bias are drawn by hypothesis.
"""
import copy

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prune.layers import (
    FactorizedConv2d,
    FactorizedLinear,
    factorization_saves,
    from_factors,
    matrix_shape,
    prunable_layers,
    set_submodule,
    stored_parameters,
    weight_matrix,
    with_matrix,
)

D = torch.float64
TOL = 1e-10


def _gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _fill(module: nn.Module, seed: int) -> nn.Module:
    g = _gen(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype))
    return module


@settings(max_examples=25)
@given(N=st.integers(1, 12), M=st.integers(1, 12), k=st.integers(1, 6), bias=st.booleans(),
       batch=st.integers(1, 4), seed=st.integers(0, 2**31 - 1))
def test_factorized_linear_equals_dense(N, M, k, bias, batch, seed):
    f = _fill(FactorizedLinear(M, N, k, bias=bias, dtype=D), seed)
    dense = with_matrix(f, f.matrix().detach())
    assert isinstance(dense, nn.Linear) and (dense.bias is None) == (not bias)
    x = torch.randn(batch, M, generator=_gen(seed + 1), dtype=D)
    assert torch.allclose(f(x), dense(x), rtol=0, atol=TOL)
    assert torch.equal(weight_matrix(f), f.second.weight @ f.first.weight)
    assert matrix_shape(f) == (N, M) == tuple(weight_matrix(f).shape)
    assert stored_parameters(f) == k * (N + M)
    assert stored_parameters(dense) == N * M
    assert f.bias is f.second.bias


conv_geometry = dict(
    cin=st.integers(1, 4), cout=st.integers(1, 5), k=st.integers(1, 4),
    kh=st.integers(1, 3), kw=st.integers(1, 4), stride=st.tuples(st.integers(1, 2), st.integers(1, 3)),
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)), dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    bias=st.booleans(), seed=st.integers(0, 2**31 - 1),
)


@settings(max_examples=30)
@given(**conv_geometry)
def test_factorized_conv_equals_dense(cin, cout, k, kh, kw, stride, padding, dilation, bias, seed):
    f = _fill(FactorizedConv2d(cin, cout, k, (kh, kw), stride=stride, padding=padding, dilation=dilation,
                               bias=bias, dtype=D), seed)
    dense = with_matrix(f, f.matrix().detach())
    assert isinstance(dense, nn.Conv2d)
    assert (dense.kernel_size, dense.stride, dense.padding, dense.dilation) == ((kh, kw), stride, padding, dilation)
    assert (dense.bias is None) == (not bias)
    x = torch.randn(2, cin, 9, 11, generator=_gen(seed + 1), dtype=D)
    assert torch.allclose(f(x), dense(x), rtol=0, atol=TOL)
    # the im2col matrix: C_out x (C_in kh kw), and it is what the dense conv holds
    assert matrix_shape(f) == (cout, cin * kh * kw) == tuple(weight_matrix(dense).shape)
    assert torch.equal(weight_matrix(dense), f.matrix().detach())
    assert stored_parameters(f) == k * (cout + cin * kh * kw)


@settings(max_examples=30)
@given(**conv_geometry)
def test_from_factors_reproduces_dense_conv(cin, cout, k, kh, kw, stride, padding, dilation, bias, seed):
    """A dense conv's matrix W = L R split by from_factors (exact SVD factors) computes the same outputs."""
    conv = _fill(nn.Conv2d(cin, cout, (kh, kw), stride=stride, padding=padding, dilation=dilation, bias=bias,
                           dtype=D), seed)
    before = copy.deepcopy(conv.state_dict())
    W = weight_matrix(conv).detach()
    U, s, Vh = torch.linalg.svd(W, full_matrices=False)
    r = s.sqrt()
    f = from_factors(conv, U * r, r[:, None] * Vh)
    assert isinstance(f, FactorizedConv2d) and f.rank == s.numel()
    x = torch.randn(2, cin, 8, 10, generator=_gen(seed + 2), dtype=D)
    assert torch.allclose(f(x), conv(x), rtol=0, atol=TOL)
    assert torch.allclose(f.matrix(), W, rtol=0, atol=TOL)
    for key, t in conv.state_dict().items():  # from_factors does not touch its template
        assert torch.equal(t, before[key])


@settings(max_examples=20)
@given(N=st.integers(1, 10), M=st.integers(1, 10), bias=st.booleans(), seed=st.integers(0, 2**31 - 1))
def test_from_factors_linear_and_back(N, M, bias, seed):
    lin = _fill(nn.Linear(M, N, bias=bias, dtype=D), seed)
    U, s, Vh = torch.linalg.svd(lin.weight.detach(), full_matrices=False)
    f = from_factors(lin, U * s, Vh)
    x = torch.randn(3, M, generator=_gen(seed + 3), dtype=D)
    assert torch.allclose(f(x), lin(x), rtol=0, atol=TOL)
    back = with_matrix(f, weight_matrix(f).detach())
    assert torch.allclose(back(x), lin(x), rtol=0, atol=TOL)
    # a factorised layer can be re-factorised (second truncation round)
    f2 = from_factors(f, U * s, Vh)
    assert torch.allclose(f2(x), lin(x), rtol=0, atol=TOL)


def test_padding_modes_and_same_padding():
    for mode in ("zeros", "reflect", "circular", "replicate"):
        f = _fill(FactorizedConv2d(3, 4, 2, 3, padding=1, padding_mode=mode, dtype=D), 5)
        dense = with_matrix(f, f.matrix().detach())
        assert dense.padding_mode == mode
        x = torch.randn(1, 3, 6, 7, generator=_gen(1), dtype=D)
        assert torch.allclose(f(x), dense(x), rtol=0, atol=TOL)
    conv = _fill(nn.Conv2d(3, 5, (3, 5), padding="same", dtype=D), 2)
    U, s, Vh = torch.linalg.svd(weight_matrix(conv).detach(), full_matrices=False)
    f = from_factors(conv, U * s, Vh)
    x = torch.randn(1, 3, 6, 7, generator=_gen(3), dtype=D)
    assert f(x).shape == conv(x).shape == (1, 5, 6, 7)
    assert torch.allclose(f(x), conv(x), rtol=0, atol=TOL)


def test_grouped_conv_matrix_and_no_factorisation():
    conv = _fill(nn.Conv2d(8, 12, 3, groups=4, dtype=D), 0)
    assert matrix_shape(conv) == (12, 2 * 9)
    dense = with_matrix(conv, weight_matrix(conv).detach())
    x = torch.randn(1, 8, 5, 5, generator=_gen(0), dtype=D)
    assert dense.groups == 4 and torch.equal(dense(x), conv(x))
    with pytest.raises(ValueError, match="groups"):
        from_factors(conv, torch.ones(12, 1, dtype=D), torch.ones(1, 18, dtype=D))


def test_factorization_saves_boundary():
    # k (N + M) < N M exactly
    assert factorization_saves((10, 10), 4)  # 80 < 100
    assert not factorization_saves((10, 10), 5)  # 100 == 100: no saving
    assert not factorization_saves((10, 10), 6)
    assert factorization_saves((3136, 128), 122) and not factorization_saves((3136, 128), 123)


def test_dtype_device_training_flag_kept():
    lin = nn.Linear(6, 4).to(torch.float32).eval()
    f = from_factors(lin, torch.ones(4, 2), torch.ones(2, 6))
    assert f.first.weight.dtype == torch.float32 and not f.training and not f.first.training
    d = with_matrix(f, torch.zeros(4, 6))
    assert d.weight.dtype == torch.float32 and not d.training
    assert torch.equal(d.bias, lin.bias)


def test_bad_inputs():
    lin = nn.Linear(5, 4)
    with pytest.raises(ValueError, match="factors"):
        from_factors(lin, torch.ones(4, 2), torch.ones(3, 5))
    with pytest.raises(ValueError, match="W must have shape"):
        with_matrix(lin, torch.ones(5, 4))
    with pytest.raises(ValueError, match="rank"):
        FactorizedLinear(5, 4, 0)
    with pytest.raises(ValueError, match="rank"):
        FactorizedConv2d(5, 4, 0, 3)
    for fn in (weight_matrix, matrix_shape, stored_parameters):
        with pytest.raises(TypeError, match="BatchNorm1d"):
            fn(nn.BatchNorm1d(3))
    with pytest.raises(ValueError, match="name"):
        set_submodule(nn.Sequential(lin), "", lin)


def test_prunable_layers_and_set_submodule():
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(),
                          nn.Sequential(FactorizedLinear(10, 6, 2), nn.Linear(6, 3)),
                          nn.MultiheadAttention(8, 2))
    names = [n for n, _ in prunable_layers(model)]
    # the halves of a factorised layer are not separate entries; MHA's out_proj is a Linear
    assert names == ["0", "3.0", "3.1", "4.out_proj"]
    new = nn.Linear(6, 3)
    set_submodule(model, "3.1", new)
    assert model[3][1] is new
