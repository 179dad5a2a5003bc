"""Tests for theory.spectrum: esd (numpy and torch, batched) and fit_spectrum."""
from __future__ import annotations

import dataclasses
import math
import subprocess
import sys

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from theory.bema import bema
from theory.goodness_of_fit import mp_fit_error
from theory.spectrum import SpectrumReport, esd, fit_spectrum
from theory.spiked import bbp_threshold


def _svd_spectrum(W: np.ndarray) -> np.ndarray:
    s = np.linalg.svd(np.asarray(W, dtype=np.float64), compute_uv=False)
    return np.sort(s**2 / max(W.shape[-2:]), axis=-1)


def _close_to_svd(lam: np.ndarray, W: np.ndarray) -> None:
    ref = _svd_spectrum(W)
    assert lam.shape == ref.shape
    # Gram eigenvalues carry an absolute error ~ eps * lambda_max (documented)
    scale = np.max(np.abs(ref), axis=-1, keepdims=True)
    err = np.abs(lam - ref)
    assert np.all(err <= 1e-12 * scale), float(np.max(err / np.maximum(scale, 1e-300)))


# ------------------------------------------------------------------------------ esd against the SVD
@settings(max_examples=60, deadline=None)
@given(
    st.integers(min_value=1, max_value=60),
    st.integers(min_value=1, max_value=60),
    st.floats(min_value=1e-3, max_value=1e3),
    st.integers(min_value=0, max_value=2**32 - 1),
)
def test_esd_equals_svd_both_orientations(N, M, scale, seed):
    W = scale * np.random.default_rng(seed).standard_normal((N, M))
    lam = esd(W)
    assert lam.dtype == np.float64 and lam.shape == (min(N, M),)
    assert np.all(np.diff(lam) >= 0)  # ascending
    _close_to_svd(lam, W)
    np.testing.assert_allclose(esd(W.T), lam, rtol=0, atol=1e-12 * np.max(np.abs(lam)))


@pytest.mark.parametrize("shape", [(30, 80), (80, 30), (40, 40)])
def test_esd_float32_and_integer_input_is_computed_in_float64(shape):
    rng = np.random.default_rng(1)
    W32 = rng.standard_normal(shape).astype(np.float32)
    lam = esd(W32)
    assert lam.dtype == np.float64
    _close_to_svd(lam, W32.astype(np.float64))  # the float32 values, exactly, in float64
    Wi = rng.integers(-3, 4, size=shape)
    _close_to_svd(esd(Wi), Wi.astype(np.float64))
    Wb = rng.random(shape) < 0.3
    _close_to_svd(esd(Wb), Wb.astype(np.float64))


def test_esd_known_values():
    W = np.array([[3.0, 0.0, 0.0], [0.0, 4.0, 0.0]])  # singular values 3, 4; n = 3
    np.testing.assert_allclose(esd(W), [3.0, 16.0 / 3.0], rtol=1e-15)
    np.testing.assert_allclose(esd(W.T), [3.0, 16.0 / 3.0], rtol=1e-15)
    np.testing.assert_allclose(esd(np.array([[2.0, 0.0, 0.0, 0.0]])), [1.0], rtol=1e-15)


def test_esd_batched():
    rng = np.random.default_rng(2)
    for shape in [(3, 20, 50), (2, 3, 50, 20), (4, 1, 7)]:
        W = rng.standard_normal(shape)
        lam = esd(W)
        assert lam.shape == shape[:-2] + (min(shape[-2:]),)
        for idx in np.ndindex(*shape[:-2]):
            np.testing.assert_allclose(lam[idx], esd(W[idx]), rtol=0, atol=1e-13 * np.max(lam[idx]))
        _close_to_svd(lam, W)


def test_rank_deficient_values_are_returned_unclipped():
    # rank 5 in a 40 x 60 matrix: 35 eigenvalues are 0 in exact arithmetic and come out as
    # rounding noise of either sign; esd must return exactly what eigvalsh of the Gram gives.
    rng = np.random.default_rng(3)
    W = rng.standard_normal((40, 5)) @ rng.standard_normal((5, 60))
    lam = esd(W)
    np.testing.assert_array_equal(lam, np.linalg.eigvalsh(W @ W.T / 60))
    assert lam.min() < 0.0  # the documented tiny negatives (for this seed) ...
    assert abs(lam.min()) < 1e-13 * lam.max()  # ... of size ~ eps * lambda_max
    assert np.count_nonzero(lam > 1e-10 * lam.max()) == 5


# ------------------------------------------------------------------------------ torch
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.int64])
@pytest.mark.parametrize("shape", [(25, 70), (70, 25), (2, 3, 25, 70)])
def test_esd_torch_matches_numpy(dtype, shape):
    g = torch.Generator().manual_seed(4)
    W = (10 * torch.randn(shape, generator=g, dtype=torch.float64)).to(dtype)
    lam = esd(W)
    assert isinstance(lam, torch.Tensor)
    assert lam.dtype == torch.float64 and lam.device == W.device
    ref = esd(W.numpy())
    np.testing.assert_allclose(lam.numpy(), ref, rtol=0, atol=1e-12 * np.max(ref))


def test_esd_torch_keeps_the_device_and_ignores_grad():
    W = torch.randn(30, 50, dtype=torch.float64, requires_grad=True)
    lam = esd(W)
    assert lam.device == W.device and not lam.requires_grad
    if torch.cuda.is_available():  # the same check on the GPU when there is one
        Wc = W.detach().cuda()
        lc = esd(Wc)
        assert lc.device == Wc.device
        np.testing.assert_allclose(lc.cpu().numpy(), lam.numpy(), rtol=0, atol=1e-12 * float(lam.max()))


def test_theory_does_not_import_torch_at_load():
    code = (
        "import sys, numpy as np\n"
        "import theory.bema, theory.goodness_of_fit, theory.spectrum\n"
        "theory.spectrum.fit_spectrum(np.random.default_rng(0).standard_normal((20, 30)))\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ------------------------------------------------------------------------------ esd errors
@pytest.mark.parametrize(
    "W, exc, word",
    [
        (np.ones(5), ValueError, "W must be at least 2-dimensional"),
        (np.float64(1.0), ValueError, "W must be at least 2-dimensional"),
        (np.ones((0, 5)), ValueError, "W must not be empty"),
        (np.ones((3, 0, 5)), ValueError, "W must not be empty"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), ValueError, "W contains 1 non-finite"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), ValueError, "W contains 1 non-finite"),
        (np.array([["a", "b"], ["c", "d"]]), TypeError, "W must be a real numeric"),
        (np.ones((2, 2), dtype=complex), TypeError, "W must be real"),
        (np.array([[object(), 1]], dtype=object), TypeError, "W must be a real numeric"),
        (torch.ones(5), ValueError, "W must be at least 2-dimensional"),
        (torch.ones(0, 5), ValueError, "W must not be empty"),
        (torch.tensor([[1.0, float("nan")], [0.0, 1.0]]), ValueError, "W contains 1 non-finite"),
        (torch.tensor([[1.0, float("-inf")], [0.0, 1.0]]), ValueError, "W contains 1 non-finite"),
        (torch.ones(2, 2, dtype=torch.complex64), TypeError, "W must be real"),
    ],
)
def test_esd_bad_input(W, exc, word):
    with pytest.raises(exc, match=word):
        esd(W)


# ------------------------------------------------------------------------------ fit_spectrum
DESIGN_FIELDS = {"p", "n", "sigma2", "lambda_plus", "sv_edge", "n_spikes", "bulk_fraction", "mp_fit_error"}


def _planted(rng, N, M, thetas):
    n = max(N, M)
    W = rng.standard_normal((N, M))
    for th in thetas:
        u, v = rng.standard_normal(N), rng.standard_normal(M)
        W += th * math.sqrt(n) * np.outer(u / np.linalg.norm(u), v / np.linalg.norm(v))
    return W


@pytest.mark.parametrize("shape", [(200, 500), (500, 200), (300, 300)])
def test_fit_spectrum_fields_are_consistent(shape):
    rng = np.random.default_rng([5, *shape])
    p, n = min(shape), max(shape)
    tc = bbp_threshold(p / n)
    W = 0.1 * _planted(rng, *shape, [2 * tc, 3 * tc, 4 * tc])
    rep = fit_spectrum(W, alpha=0.25, beta=0.05)
    assert isinstance(rep, SpectrumReport)
    assert {f.name for f in dataclasses.fields(rep)} == DESIGN_FIELDS | {"bema", "eigenvalues"}
    assert (rep.p, rep.n) == (p, n)
    assert rep.sv_edge == pytest.approx(math.sqrt(n * rep.lambda_plus), rel=1e-15)
    assert rep.n_spikes == 3
    assert rep.bulk_fraction == pytest.approx(1.0 - rep.n_spikes / p, rel=1e-15)
    s = np.linalg.svd(W, compute_uv=False)
    assert np.count_nonzero(s > rep.sv_edge) == rep.n_spikes
    assert rep.sigma2 == pytest.approx(0.01, rel=0.03)
    fit = bema(esd(W), p=p, n=n, alpha=0.25, beta=0.05)
    assert (rep.bema.sigma2, rep.bema.lambda_plus, rep.bema.n_spikes) == (fit.sigma2, fit.lambda_plus, fit.n_spikes)
    assert (rep.sigma2, rep.lambda_plus) == (fit.sigma2, fit.lambda_plus)
    assert rep.bema.alpha == 0.25 and rep.bema.beta == 0.05
    assert rep.mp_fit_error == mp_fit_error(esd(W), p=p, n=n, sigma2=fit.sigma2, alpha=0.25)
    np.testing.assert_array_equal(rep.eigenvalues, esd(W))
    with pytest.raises(ValueError):
        rep.eigenvalues[0] = 0.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        rep.n_spikes = 0  # type: ignore[misc]


def test_fit_spectrum_orientation_and_torch_agree():
    W = np.random.default_rng(6).standard_normal((150, 400))
    a, b, c = fit_spectrum(W), fit_spectrum(W.T), fit_spectrum(torch.from_numpy(W).float())
    for r in (b, c):
        assert (r.p, r.n, r.n_spikes) == (a.p, a.n, a.n_spikes)
        assert r.sigma2 == pytest.approx(a.sigma2, rel=1e-6)  # float32 copy for c
        assert isinstance(r.eigenvalues, np.ndarray)
    assert a.bulk_fraction == 1.0 - a.n_spikes / a.p


@pytest.mark.parametrize(
    "W, exc, word",
    [
        (np.ones((2, 30, 40)), ValueError, "2-dimensional"),
        (np.ones(30), ValueError, "2-dimensional"),
        (torch.ones(2, 30, 40), ValueError, "2-dimensional"),
        (np.full((30, 40), np.nan), ValueError, "W contains"),
        (np.zeros((30, 40)), ValueError, "sigma2"),
    ],
)
def test_fit_spectrum_bad_input(W, exc, word):
    with pytest.raises(exc, match=word):
        fit_spectrum(W)


def test_fit_spectrum_validates_alpha_and_beta():
    W = np.random.default_rng(8).standard_normal((30, 40))
    with pytest.raises(ValueError, match="alpha"):
        fit_spectrum(W, alpha=0.5)
    with pytest.raises(ValueError, match="beta"):
        fit_spectrum(W, beta=1.0)
