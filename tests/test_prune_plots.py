"""prune.plots: the ESD panel draws what it claims (MP density, edge, spikes, a density histogram) and files are written."""
import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

from prune import analyze
from prune.analysis import LayerTable
from prune.methods.svd import rank_truncate
from prune.plots import plot_esd, save_esd_plots
from simulations.generators import deformed, low_rank
from theory import MarchenkoPastur

D = torch.float64


def _linear(W):
    lin = nn.Linear(W.shape[1], W.shape[0], dtype=D)
    with torch.no_grad():
        lin.weight.copy_(W)
    return lin


def _spiked_table(sv, N=300, M=150, seed=1):
    W, _ = deformed(low_rank((N, M), sv, seed=seed, device="cpu"), seed=seed + 1)
    return analyze(nn.Sequential(_linear(W)), keep_eigenvalues=True)


def _bars_area(ax, log_x):
    area = 0.0
    for patch in ax.patches:
        x0, w, h = patch.get_x(), patch.get_width(), patch.get_height()
        area += h * (math.log10(x0 + w) - math.log10(x0) if log_x else w)
    return area


def test_panel_contents_linear_axis():
    t = _spiked_table([3.0, 2.6])  # outliers near the bulk (edge 1.71): linear axis
    row, lam = t[0], t.eigenvalues["0[matrix]"]
    ax = Figure().add_subplot()
    plot_esd(ax, lam, row)
    assert ax.get_xscale() == "linear"
    assert _bars_area(ax, False) == pytest.approx(1.0)  # a density over all p values
    mp_line, edge_line, spike_marks = ax.lines[:3]
    xs, ys = mp_line.get_data()
    law = MarchenkoPastur(ratio=row.p / row.n, sigma2=row.sigma2)
    assert np.allclose(ys, law.pdf(xs)) and xs.min() >= law.lambda_minus and xs.max() <= law.lambda_plus
    assert np.allclose(edge_line.get_xdata(), row.lambda_plus)
    assert np.allclose(np.sort(spike_marks.get_xdata()), np.sort(lam[lam > row.lambda_plus]))
    assert len(spike_marks.get_xdata()) == row.n_spikes == 2
    title = ax.get_title()
    for part in ("0", "300×150", "2 spikes", f"{row.mp_fit_error:.3f}"):
        assert part in title
    assert ax.get_legend() is not None


def test_far_spikes_switch_to_log_axis_with_log_density():
    t = _spiked_table([60.0, 30.0])  # lambda of the outliers ~ 1000 x the edge
    row, lam = t[0], t.eigenvalues["0[matrix]"]
    ax = Figure().add_subplot()
    plot_esd(ax, lam, row)
    assert ax.get_xscale() == "log"
    assert _bars_area(ax, True) == pytest.approx(1.0)  # a density in log10(lambda)
    xs, ys = ax.lines[0].get_data()
    law = MarchenkoPastur(ratio=row.p / row.n, sigma2=row.sigma2)
    assert np.allclose(ys, law.pdf(xs) * xs * math.log(10))
    assert "log" in ax.get_ylabel() and "log" in ax.get_xlabel()
    ax2 = Figure().add_subplot()
    plot_esd(ax2, lam, row, log_x=False)  # the option overrides the default
    assert ax2.get_xscale() == "linear"


def test_square_matrix_density_diverging_at_zero_keeps_histogram_visible():
    W = torch.randn(120, 120, generator=torch.Generator().manual_seed(0), dtype=D) / math.sqrt(120)
    t = analyze(nn.Sequential(_linear(W)), keep_eigenvalues=True)
    ax = Figure().add_subplot()
    plot_esd(ax, t.eigenvalues["0[matrix]"], t[0])
    top = ax.get_ylim()[1]
    assert math.isfinite(top) and top >= max(p.get_height() for p in ax.patches)


def test_rows_without_fit_and_factorised_zeros():
    model = nn.Sequential(nn.Linear(64, 40, dtype=D), nn.Linear(40, 3, dtype=D))
    low, _ = rank_truncate(model, 4, layers=["0"])  # 36 zero eigenvalues, no fit
    t = analyze(low, keep_eigenvalues=True)
    assert [r.note != "" for r in t] == [True, True]
    for row in t:
        ax = Figure().add_subplot()
        plot_esd(ax, t.eigenvalues[f"{row.name}[{row.view}]"], row)
        assert row.name in ax.get_title() and len(ax.lines) <= 1  # no MP curve, no edge
    ax = Figure().add_subplot()
    plot_esd(ax, t.eigenvalues["0[matrix]"], t[0], log_x=True)
    assert "36 zero" in ax.get_legend().get_texts()[0].get_text()  # exact zeros, not rounding noise
    assert np.count_nonzero(t.eigenvalues["0[matrix]"]) == 4


def test_save_one_png_per_row_and_grids(tmp_path):
    t = analyze(nn.Sequential(nn.Conv2d(8, 16, 3), nn.Flatten(), nn.Linear(16, 12), nn.Linear(12, 20)),
                keep_eigenvalues=True)
    files = save_esd_plots(t, tmp_path / "one")
    assert [f.name for f in files] == ["000_0_im2col.png", "001_2_matrix.png", "002_3_matrix.png"]
    grids = save_esd_plots(t, tmp_path / "grid", grid=True, max_per_grid=2)
    assert [f.name for f in grids] == ["esd_grid_00.png", "esd_grid_01.png"]
    for f in files + grids:
        assert f.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f.stat().st_size > 5000


def test_errors(tmp_path):
    model = nn.Sequential(nn.Linear(16, 12))
    with pytest.raises(ValueError, match="keep_eigenvalues=True"):
        save_esd_plots(analyze(model), tmp_path)
    t = analyze(model, keep_eigenvalues=True)
    with pytest.raises(TypeError, match="table"):
        save_esd_plots(list(t), tmp_path)
    for bad in (0, 2.5, True):
        with pytest.raises(ValueError, match="max_per_grid"):
            save_esd_plots(t, tmp_path, grid=True, max_per_grid=bad)
    partial = LayerTable(t.rows + [t.rows[0].__class__(**{**t.rows[0].as_dict(), "name": "other"})], t.eigenvalues)
    with pytest.raises(ValueError, match="other"):
        save_esd_plots(partial, tmp_path)
    ax = Figure().add_subplot()
    with pytest.raises(ValueError, match="p = 12"):
        plot_esd(ax, np.ones(5), t[0])
    with pytest.raises(ValueError, match="finite"):
        plot_esd(ax, np.full(12, np.nan), t[0])
    with pytest.raises(ValueError, match="bins"):
        plot_esd(ax, t.eigenvalues["0[matrix]"], t[0], bins=0)
    assert not list(tmp_path.iterdir())  # nothing written by failed calls


def test_fitted_factorised_row_shows_its_note_and_zeros():
    W = torch.randn(120, 120, generator=torch.Generator().manual_seed(0), dtype=D) / math.sqrt(120)
    low, _ = rank_truncate(nn.Sequential(_linear(W)), 100, factorize="always", min_rank=1)
    t = analyze(low, keep_eigenvalues=True)
    row = t[0]
    assert math.isfinite(row.sigma2) and "rank 100" in row.note
    ax = Figure().add_subplot()
    plot_esd(ax, t.eigenvalues["0[matrix]"], row)
    assert "rank 100" in ax.get_title()
    assert "incl. 20 at 0" in ax.get_legend().get_texts()[-1].get_text()
