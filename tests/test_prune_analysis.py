"""prune.analysis: which matrices become rows, the DESIGN.md conventions (lambda = s^2 / n), the table API."""
import csv
import json
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from prune.analysis import LayerRow, LayerTable, analyze, layer_matrices
from prune.layers import FactorizedLinear
from prune.methods.svd import rank_truncate
from simulations.generators import deformed, low_rank
from theory import esd

D = torch.float64


def _gen(seed):
    g = torch.Generator()
    g.manual_seed(seed)
    return g


def _randomise(model, seed=0, std=1.0):
    g = _gen(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return model


class Attn(nn.Module):
    def __init__(self, dim=16):
        super().__init__()
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)


class Toy(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(100, 32)
        self.pos_embed = nn.Parameter(torch.zeros(1, 50, 32))
        self.conv = nn.Conv2d(16, 32, 3)
        self.block = Attn(16)
        self.mha = nn.MultiheadAttention(32, 4)
        self.head = nn.Linear(32, 5)  # p = 5 < 8: too small for BEMA


def test_rows_for_every_matrix_kind():
    model = _randomise(Toy())
    t = analyze(model)
    got = [(r.name, r.view, r.N, r.M) for r in t]
    assert got == [
        ("conv", "im2col", 32, 16 * 9),
        ("block.qkv", "matrix", 48, 16), ("block.qkv", "q", 16, 16), ("block.qkv", "k", 16, 16),
        ("block.qkv", "v", 16, 16),
        ("block.proj", "matrix", 16, 16),
        ("mha.out_proj", "matrix", 32, 32),
        ("head", "matrix", 5, 32),
        ("embed", "matrix", 100, 32),
        ("mha.in_proj", "matrix", 96, 32), ("mha.in_proj", "q", 32, 32), ("mha.in_proj", "k", 32, 32),
        ("mha.in_proj", "v", 32, 32),
        ("pos_embed", "matrix", 50, 32),
    ]
    mats = {(n, v): W for n, _, v, W, _ in layer_matrices(model)}
    W = model.block.qkv.weight.detach()
    for i, part in enumerate("qkv"):
        assert torch.equal(mats[("block.qkv", part)], W[16 * i:16 * (i + 1)])
    assert torch.equal(mats[("mha.in_proj", "k")], model.mha.in_proj_weight.detach()[32:64])
    # options remove rows
    assert len(analyze(model, split_qkv=False)) == len(t) - 6
    assert len(analyze(model, embeddings=False)) == len(t) - 2
    # the small matrix: a row with a note and NaN fit fields, its largest singular value still given
    head = t["head"]
    assert "too small" in head.note and math.isnan(head.sigma2) and math.isnan(head.mp_fit_error)
    assert head.n_spikes == -1
    assert head.largest_sv == pytest.approx(torch.linalg.matrix_norm(model.head.weight.double(), ord=2).item())
    # a fused name with the wrong shape is not split
    m = nn.Module()
    m.qkv = nn.Linear(16, 32)
    assert [r.view for r in analyze(_randomise(m))] == ["matrix"]


def test_multihead_attention_with_separate_projections():
    mha = _randomise(nn.MultiheadAttention(32, 4, kdim=24, vdim=16))
    t = analyze(nn.ModuleDict({"att": mha}))
    assert [(r.name, r.N, r.M) for r in t] == [("att.out_proj", 32, 32), ("att.q_proj", 32, 32),
                                                ("att.k_proj", 32, 24), ("att.v_proj", 32, 16)]


def test_conv_views_im2col_and_slices():
    model = _randomise(nn.Sequential(nn.Conv2d(16, 32, 3), nn.Conv2d(32, 24, (1, 2))))
    im = analyze(model)
    assert [(r.name, r.N, r.M) for r in im] == [("0", 32, 144), ("1", 24, 64)]
    sl = analyze(model, conv_view="slices")
    assert len(sl) == 9 + 2
    assert [r.view for r in sl][:3] == ["slice[0,0]", "slice[0,1]", "slice[0,2]"]
    assert all((r.N, r.M) == (32, 16) for r in sl[:9]) and (sl[9].N, sl[9].M) == (24, 32)
    assert sl[4].params == 32 * 16 and im[0].params == 32 * 144
    with pytest.raises(ValueError, match="conv_view"):
        analyze(model, conv_view="im2row")


def test_pure_noise_sigma2_and_no_spikes():
    """Entries N(0, s2): eigenvalues s^2 / n of W (N x M) follow MP(p/n, s2), so BEMA's sigma2 ~ s2.

    sigma2 is a linear spectral statistic: bias and fluctuations are O(1/p). Measured over 300 Gaussian
    draws at 200 x 400: p (sigma2/s2 - 1) has mean -1.4 and sd 1.15 (max |.| 4.9); the bound 8 / p is the
    bias plus ~6 sd.
    """
    for seed, (N, M) in enumerate([(200, 400), (400, 200), (150, 150)]):
        s2 = 0.02 * (seed + 1)
        lin = nn.Linear(M, N, bias=False, dtype=D)
        with torch.no_grad():
            lin.weight.copy_(torch.randn(N, M, generator=_gen(100 + seed), dtype=D) * math.sqrt(s2))
        r = analyze(nn.Sequential(lin))[0]
        p, n = min(N, M), max(N, M)
        assert (r.p, r.n) == (p, n)
        assert abs(r.sigma2 / s2 - 1) < 8 / p, (N, M, r.sigma2)
        lam_plus = s2 * (1 + math.sqrt(p / n)) ** 2  # MP edge; BEMA adds a TW margin of order n^(-2/3)
        assert 0.95 * lam_plus < r.lambda_plus < 1.15 * lam_plus
        assert r.sv_edge == pytest.approx(math.sqrt(n * r.lambda_plus))
        assert r.bulk_fraction == pytest.approx(1 - r.n_spikes / p)
        if seed == 0:  # a seeded draw without a false spike (the rate is ~0.16 per draw; next test)
            assert r.n_spikes == 0 and r.bulk_fraction == 1.0
        assert r.mp_fit_error < 0.05  # a central-window KS distance; 0.013 at 400 x 200
        assert r.largest_sv == pytest.approx(torch.linalg.matrix_norm(lin.weight, ord=2).item(), rel=1e-9)


def test_false_spike_rate_on_noise_layers():
    """40 pure-noise 64 x 128 layers: BEMA's false-spike rate (beta = 0.1) measured on 2000 draws is 0.18;
    the count of layers with a spike is then Binomial(40, 0.18), and exceeds its 1 - 1e-4 quantile
    with probability < 1e-4."""
    from scipy.stats import binom

    layers = [nn.Linear(128, 64, bias=False, dtype=D) for _ in range(40)]
    g = _gen(7)
    with torch.no_grad():
        for lin in layers:
            lin.weight.copy_(torch.randn(64, 128, generator=g, dtype=D))
    t = analyze(nn.Sequential(*layers))
    hits = sum(r.n_spikes > 0 for r in t)
    assert hits <= binom(40, 0.18).isf(1e-4)


def test_planted_spikes_found():
    N, M = 300, 150
    sv = [20.0, 15.0, 10.0]  # bulk edge sqrt(g)(1 + sqrt(M/N)) = 1.71 (g = 1)
    W, _ = deformed(low_rank((N, M), sv, seed=1, device="cpu"), seed=2)
    lin = nn.Linear(M, N, dtype=D)
    with torch.no_grad():
        lin.weight.copy_(W)
    t = analyze(nn.Sequential(lin), keep_eigenvalues=True)
    r = t[0]
    assert r.n_spikes == 3 and r.bulk_fraction == pytest.approx(1 - 3 / 150)
    assert r.sigma2 == pytest.approx(1 / N, rel=8 / 150)  # noise variance g / N
    s = torch.linalg.svdvals(W)
    assert int((s > r.sv_edge).sum()) == 3
    assert r.largest_sv == pytest.approx(s[0].item(), rel=1e-9)
    lam = t.eigenvalues["0[matrix]"]
    assert np.allclose(lam, np.sort(s.numpy() ** 2 / N), rtol=1e-9, atol=1e-14)  # lambda = s^2 / n, n = 300


def test_factorised_layer_is_fitted_on_its_exact_spectrum():
    lin = _randomise(nn.Linear(100, 80), seed=3, std=0.1)
    low, _ = rank_truncate(nn.Sequential(lin), 5, min_rank=1)
    r = analyze(low)[0]
    assert isinstance(low[0], FactorizedLinear) and r.type == "FactorizedLinear"
    # rank 5 of p = 80: BEMA's window is all zeros, so no fit (the product's rounding noise is not a bulk)
    assert "rank 5" in r.note and "no MP fit" in r.note and r.n_spikes == -1
    high, _ = rank_truncate(nn.Sequential(lin), 70, factorize="always", min_rank=1)
    r = analyze(high)[0]
    assert "rank 70" in r.note and 0 <= r.n_spikes <= 70 and r.bulk_fraction >= 10 / 80
    assert r.params == 70 * 180


def test_keep_eigenvalues_and_model_unchanged():
    model = _randomise(nn.Sequential(nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(16, 12), nn.Linear(12, 3)))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    t = analyze(model, keep_eigenvalues=True)
    assert set(t.eigenvalues) == {"0[im2col]", "2[matrix]", "3[matrix]"}  # the small one too (no fit)
    assert np.allclose(t.eigenvalues["3[matrix]"], np.linalg.eigvalsh(model[3].weight.double().detach() @
                                                                      model[3].weight.double().detach().T / 12))
    assert np.allclose(t.eigenvalues["0[im2col]"], esd(model[0].weight.detach().reshape(16, -1)).numpy())
    assert analyze(model).eigenvalues == {}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def _table():
    rows = [
        LayerRow("a", "Linear", "matrix", 10, 20, 10, 20, 0.1, 0.3, 2.0, 2, 0.8, 0.05, 200, 3.0),
        LayerRow("b", "Linear", "matrix", 30, 20, 20, 30, 0.2, 0.5, 4.0, 0, 1.0, 0.01, 600, 3.5),
        LayerRow("c", "Linear", "matrix", 5, 20, 5, 20, math.nan, math.nan, math.nan, -1, math.nan, math.nan, 100,
                 1.0, note="too small, with a comma"),
        LayerRow("d", "Conv2d", "im2col", 40, 20, 20, 40, 0.4, 0.9, 6.0, 5, 0.75, 0.2, 800, 9.0),
    ]
    return LayerTable(rows)


def test_sort_filter_and_lookup():
    t = _table()
    assert [r.name for r in t.sort_by("mp_fit_error")] == ["b", "a", "d", "c"]  # NaN last
    assert [r.name for r in t.sort_by("mp_fit_error", descending=True)] == ["d", "a", "b", "c"]
    assert [r.name for r in t.sort_by("name", descending=True)] == ["d", "c", "b", "a"]
    assert [r.name for r in t.filter(lambda r: r.n_spikes > 0)] == ["a", "d"]
    assert t["d"].N == 40 and t["d[im2col]"].N == 40 and t[1].name == "b"
    with pytest.raises(KeyError):
        t["zz"]
    with pytest.raises(ValueError, match="column"):
        t.sort_by("nope")
    assert "mp_fit_error" in repr(t)


def _parse(col, text):
    kind = {f: type(getattr(_table()[0], f)) for f in LayerTable.columns}[col]
    return kind(text) if kind is not float else float(text)


def test_csv_and_json_round_trip(tmp_path):
    t = _table()
    t.to_csv(tmp_path / "t.csv")
    with (tmp_path / "t.csv").open() as fh:
        back = list(csv.DictReader(fh))
    assert list(back[0].keys()) == list(LayerTable.columns)
    for row, rec in zip(t, back):
        for col in LayerTable.columns:
            v, w = getattr(row, col), _parse(col, rec[col])
            assert (isinstance(v, float) and math.isnan(v) and math.isnan(w)) or v == w, (col, v, w)
    t.to_json(tmp_path / "t.json")
    recs = json.loads((tmp_path / "t.json").read_text())  # strict JSON: NaN written as null
    for row, rec in zip(t, recs):
        for col in LayerTable.columns:
            v, w = getattr(row, col), rec[col]
            assert (w is None and math.isnan(v)) or v == w
    df = t.to_pandas()
    assert list(df.columns) == list(LayerTable.columns) and len(df) == 4


@settings(max_examples=10)
@given(N=st.integers(8, 40), M=st.integers(8, 40), seed=st.integers(0, 1000))
def test_any_shape_gives_consistent_row(N, M, seed):
    lin = _randomise(nn.Linear(M, N), seed)
    r = analyze(nn.Sequential(lin))[0]
    p, n = min(N, M), max(N, M)
    assert (r.N, r.M, r.p, r.n) == (N, M, p, n)
    assert r.bulk_fraction == pytest.approx(1 - r.n_spikes / p)
    assert r.sv_edge == pytest.approx(math.sqrt(n * r.lambda_plus))
    s = torch.linalg.svdvals(lin.weight.detach().double())
    assert int((s > r.sv_edge * (1 + 1e-12)).sum()) <= r.n_spikes <= int((s > r.sv_edge * (1 - 1e-12)).sum())


def test_errors():
    with pytest.raises(TypeError, match="model"):
        analyze(torch.ones(3, 3))
    with pytest.raises(ValueError, match="no Linear"):
        analyze(nn.Sequential(nn.ReLU()))
    model = nn.Sequential(nn.Linear(20, 20))
    with pytest.raises(ValueError, match="alpha"):
        analyze(model, alpha=0.5)
    with pytest.raises(TypeError, match="beta"):
        analyze(model, beta="0.1")
    with pytest.raises(ValueError, match="beta"):
        analyze(nn.Sequential(nn.Linear(20, 3)), beta=1.5)  # checked even when no matrix is fitted
    with torch.no_grad():
        model[0].weight[1, 2] = float("inf")
    with pytest.raises(ValueError, match=r"0\[matrix\].*non-finite"):  # names the matrix
        analyze(model)
    small = nn.Sequential(nn.Linear(20, 3))
    with torch.no_grad():
        small[0].weight[0, 0] = float("nan")
    with pytest.raises(ValueError, match=r"0\[matrix\].*non-finite"):
        analyze(small)


def test_other_weight_layers_get_rows_not_silence():
    """Conv1d / Conv3d / ConvTranspose2d are analysed (first axis against the rest), not dropped."""
    g = _gen(5)
    model = nn.Sequential(nn.Conv1d(12, 40, 5), nn.Conv3d(4, 24, 3), nn.ConvTranspose2d(30, 16, 3), nn.LayerNorm(8))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g))
    table = analyze(model)
    rows = {r.name: r for r in table}
    assert set(rows) == {"0", "1", "2"}  # LayerNorm's 1-D weight is no matrix
    assert (rows["0"].type, rows["0"].view, rows["0"].N, rows["0"].M) == ("Conv1d", "reshape", 40, 60)
    assert (rows["1"].N, rows["1"].M) == (24, 4 * 27)
    assert (rows["2"].type, rows["2"].N, rows["2"].M) == ("ConvTranspose2d", 30, 16 * 9)
    W = model[0].weight.detach().reshape(40, -1).double()
    s = torch.linalg.svdvals(W)
    assert rows["0"].largest_sv == pytest.approx(float(s[0]), rel=1e-9)
    assert all(math.isfinite(r.sigma2) and r.params == model[int(r.name)].weight.numel() for r in table)
