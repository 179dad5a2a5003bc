"""Hypothesis tests of theory.hypotheses against matrices whose truth is known, and rmt verify --model end to end."""
from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from threadpoolctl import threadpool_limits
from torch import nn

from theory.bema import bema
from theory.hypotheses import (STATISTICS, bema_sigma2_batch, datapath_test, split_at_edge, check_hypotheses)

P, N_, DRAWS = 40, 100, 100
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    with threadpool_limits(1):
        yield


def planted(rng, p=P, n=N_, k=2, strength=(6.0, 4.0)):
    """S (rank k, well above the BBP threshold) + Gaussian R of variance 1/n; random orientation."""
    U = np.linalg.qr(rng.standard_normal((p, k)))[0]
    V = np.linalg.qr(rng.standard_normal((n, k)))[0]
    return (U * np.array(strength[:k])) @ V.T + rng.standard_normal((p, n)) / math.sqrt(n)


def test_bema_sigma2_batch_is_bema():
    rng = np.random.default_rng(0)
    for p, n in ((40, 100), (64, 64)):
        lam = np.sort(np.linalg.eigvalsh((lambda A: A @ A.transpose(0, 2, 1) / n)(rng.standard_normal((4, p, n)))))
        got = bema_sigma2_batch(lam, p, n)
        ref = np.array([bema(v, p, n).sigma2 for v in lam])
        assert np.max(np.abs(got / ref - 1)) < 1e-13


def test_split_is_exact():
    rng = np.random.default_rng(1)
    W = planted(rng)
    sp = split_at_edge(W)
    assert sp.k == 2
    assert np.allclose(sp.S + sp.R, W, atol=1e-13)
    assert np.linalg.matrix_rank(sp.S) == 2
    assert abs(np.sum(sp.S * sp.R)) < 1e-10          # S and R orthogonal (SVD split)


@pytest.fixture(scope="module")
def null_pvalues():
    """p-values of every statistic over 80 planted S + Gaussian R matrices (half of them transposed)."""
    rng = np.random.default_rng(2)
    out = {s: [] for s in (*STATISTICS, "datapath")}
    with threadpool_limits(1):
        for t in range(80):
            W = planted(rng)
            W = W.T if t % 2 else W
            r = check_hypotheses(W, draws=DRAWS, seed=t)
            for s in STATISTICS:
                out[s].append(r.pvalues[s])
            sp = split_at_edge(W)
            G = rng.standard_normal(W.shape) / math.sqrt(max(W.shape))      # independent of the inputs
            nu = rng.standard_normal((64, W.shape[1])) + 2.0                 # correlated inputs
            out["datapath"].append(datapath_test(G, nu, 1.0 / max(W.shape), draws=DRAWS, seed=t).pvalue)
            del sp
    return {s: np.array(v) for s, v in out.items()}


@pytest.mark.parametrize("stat", [*STATISTICS, "datapath"])
def test_planted_gaussian_passes_at_nominal_rate(null_pvalues, stat):
    p = null_pvalues[stat]
    level, n = 0.05, p.size
    assert np.mean(p < level) <= level + 4 * math.sqrt(level * (1 - level) / n)


@pytest.mark.parametrize("stat", [*STATISTICS, "datapath"])
def test_pvalues_uniform_under_null(null_pvalues, stat):
    u = np.sort(null_pvalues[stat])
    n = u.size
    k = np.arange(1, n + 1)
    ks = max(np.max(k / n - u), np.max(u - (k - 1) / n))
    dkw = math.sqrt(math.log(2 / 1e-3) / (2 * n)) + 1.0 / (DRAWS + 1)     # + the Monte-Carlo p-value's grid
    assert ks <= dkw, f"{stat}: KS distance {ks:.3f} to U(0,1) > {dkw:.3f}"


def _pv(W, seed=0):
    return check_hypotheses(W, draws=DRAWS, seed=seed).pvalues


def test_heavy_tailed_R_fails_kurtosis():
    rng = np.random.default_rng(3)
    W = planted(rng)
    W += rng.standard_t(2.5, size=W.shape) / math.sqrt(N_)
    assert _pv(W)["kurtosis"] < 0.02


def test_row_heteroscedastic_R_fails_row_homogeneity():
    rng = np.random.default_rng(4)
    scale = np.exp(rng.uniform(-1.0, 1.0, size=(P, 1)))
    W = planted(rng, strength=(0.0, 0.0)) * 0 + scale * rng.standard_normal((P, N_)) / math.sqrt(N_)
    pv = _pv(W)
    assert pv["row_var"] < 0.02
    assert pv["col_var"] > 0.02 or pv["mp_ks"] < 0.02      # columns are homogeneous; the spectrum is not MP
    assert _pv(W.T)["col_var"] < 0.02                      # the same matrix transposed: now its columns


def test_localized_vectors_fail_delocalisation():
    rng = np.random.default_rng(5)
    W = planted(rng)
    W[0, 0] += 1.0          # one sub-edge entry: a localized bulk direction (singular value < the BEMA edge)
    assert split_at_edge(W).k == 2
    pv = _pv(W)
    assert min(pv["deloc_out"], pv["deloc_in"]) < 0.02


def test_low_rank_leakage_fails_spectrum():
    """A quarter of the dimensions carry signal at the BBP threshold: BEMA leaves it in R, the bulk is not MP."""
    rng = np.random.default_rng(0)
    p, n = 100, 250
    U = np.linalg.qr(rng.standard_normal((p, 2)))[0]
    V = np.linalg.qr(rng.standard_normal((n, 2)))[0]
    W = (U * [6.0, 4.0]) @ V.T + rng.standard_normal((p, n)) / math.sqrt(n)
    r = p // 4
    U = np.linalg.qr(rng.standard_normal((p, r)))[0]
    V = np.linalg.qr(rng.standard_normal((n, r)))[0]
    W += (p / n) ** 0.25 * U @ V.T
    assert split_at_edge(W).k <= 3                    # the leaked directions are (almost all) left in R
    assert _pv(W)["mp_ks"] < 0.03


def test_data_aligned_R_fails_datapath():
    rng = np.random.default_rng(7)
    M, N = 100, 40
    nu = rng.standard_normal((64, M)) + 1.0
    direction = nu.mean(axis=0) / np.linalg.norm(nu.mean(axis=0))
    R = rng.standard_normal((N, M)) / math.sqrt(M) + 0.5 * np.outer(rng.choice([-1.0, 1.0], N), direction)
    assert datapath_test(R, nu, 1.0 / M, draws=DRAWS).pvalue < 0.02
    G = rng.standard_normal((N, M)) / math.sqrt(M)
    assert datapath_test(G, nu, 1.0 / M, draws=DRAWS).pvalue > 0.001


def test_bad_input():
    with pytest.raises(ValueError, match="W must be a 2-dimensional"):
        check_hypotheses(np.zeros(10))
    with pytest.raises(ValueError, match="draws"):
        check_hypotheses(np.random.default_rng(0).standard_normal((10, 20)), draws=3)
    with pytest.raises(ValueError, match="nu must have shape"):
        datapath_test(np.zeros((4, 5)), np.ones((3, 6)), 1.0)


# --------------------------------------------------------------------------- conclusions on small networks
def test_data_path_bound_holds_on_random_cnn():
    """The deterministic Lipschitz-product bound is a theorem: it must hold for any weights and inputs."""
    from simulations.real_checks import lipschitz_after, run_model

    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 7 * 7, 32),
                          nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        model[1].running_var.uniform_(0.5, 2.0)
        model[1].weight.uniform_(-2, 2)
    model.eval()
    lips, why = lipschitz_after(model)
    assert why == "" and len(lips) == 4
    assert lips[id(model[9])] == 1.0
    assert math.isclose(lips[id(model[7])], float(model[9].weight.detach().abs().sum(1).max()), rel_tol=1e-6)
    x, y = torch.randn(64, 1, 14, 14), torch.randint(0, 10, (64,))
    rep = run_model(model, x, y, name="toy", draws=20, path_inputs=32)
    for info in rep.layers:
        if info.pvalues:
            assert info.conclusions["ratio_det"] <= 1 + 1e-4, info.name
    assert rep.summary["ratio_det_all"] <= 1 + 1e-4
    names = {r.name for r in rep.records}
    assert "toy:all:logit_det" in names and all(r.regime == "real" for r in rep.records)


def test_model_is_not_changed():
    from simulations.real_checks import run_model

    torch.manual_seed(1)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 48), nn.ReLU(), nn.Linear(48, 10))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    model.train()
    run_model(model, torch.randn(40, 1, 8, 8), torch.randint(0, 10, (40,)), draws=20, path_inputs=16)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_attention_has_no_bound():
    from prune.models.vit import ViT
    from simulations.real_checks import lipschitz_after

    lips, why = lipschitz_after(ViT(dim=16, depth=1, heads=2))
    assert lips == {} and "no bound defined" in why and "LayerNorm" in why


# --------------------------------------------------------------------------- end to end
DATA = Path(os.environ.get("RMT_DATA_DIR", "/work/shared/data"))


@pytest.mark.skipif(not (DATA / "mnist").exists() and not any(DATA.glob("*mnist*")), reason="no MNIST data")
def test_rmt_verify_model_mnist_cnn(tmp_path):
    env = dict(os.environ, RMT_DATA_DIR=str(DATA), OMP_NUM_THREADS="1",
               RMT_MODELS_DIR=os.environ.get("RMT_MODELS_DIR", str(DATA.parent / "models")))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "rmt", "verify", "--model", "mnist-cnn", "--limit", "300",
                           "--draws", "50", "--out", str(out), "--no-progress"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout
    for layer in ("features.0", "features.3", "classifier.0", "classifier.2"):
        for stat in (*STATISTICS, "datapath"):
            assert f"mnist-cnn:{layer}:hyp:{stat}" in text
        for conc in ("logit_tau", "logit_det", "accuracy"):
            assert f"mnist-cnn:{layer}:{conc}" in text
    assert "mnist-cnn:all:logit_tau" in text
    assert (out / "mnist-cnn.json").is_file() and (out / "mnist-cnn_records.csv").is_file()
    assert (out / "mnist-cnn.png").stat().st_size > 10_000
