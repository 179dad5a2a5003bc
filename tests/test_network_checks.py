"""simulations.network_checks: the key lemma / accuracy corollary (check 4), the loss theorem (check 5) and
randomness decay during training (check 6).

Property tests at small sizes (records well-formed, reproducible from the seed, within-regime statements
hold), each check shown to report held=False on an input built to violate it, and one quick run of every
check in NETWORK_CHECKS.
"""
import math
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations import network_checks as nc
from theory.selfcheck import CheckRecord

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
if "RMT_DATA_DIR" not in os.environ and SHARED.is_dir():
    os.environ["RMT_DATA_DIR"] = str(SHARED)   # read-only copy of MNIST for check 6
os.environ.setdefault("RMT_REQUIRE_DATA", "1")  # never download in tests

CPU = "cpu"


def _well_formed(rec: CheckRecord, seed) -> None:
    assert isinstance(rec, CheckRecord)
    assert rec.name and rec.statement
    assert math.isfinite(rec.bound) and math.isfinite(rec.measured)
    assert rec.held == (rec.measured <= rec.bound)
    assert rec.trials >= 1 and rec.seed == seed
    assert rec.regime in ("within", "outside")
    d = rec.as_dict()
    assert {"name", "statement", "bound", "measured", "held", "trials", "seed"} <= set(d)


def _small_net(model, N, act, seed):
    make = nc.planted_net if model == "planted" else nc.random_net
    return make(N, d=16, n_classes=4, n_inputs=12, activation=act, seed=seed, device=CPU)


# --------------------------------------------------------------------------- model pieces
def test_tau_and_margin_by_hand():
    rng = np.random.default_rng(1)
    W1, W3, s = rng.standard_normal((6, 3)), rng.standard_normal((4, 6)), rng.standard_normal((5, 3))
    tau = nc.tau_n(*(torch.from_numpy(a) for a in (W1, W3, s))).numpy()
    w3_inf = np.abs(W3).sum(axis=1).max()
    expect = 2 * np.sqrt(2) * w3_inf * np.linalg.norm(s @ W1.T, axis=1) * np.sqrt(np.log(12) / 6)
    np.testing.assert_allclose(tau, expect, rtol=1e-14)
    X = torch.tensor([[3.0, 1.0, 2.5], [0.0, 0.0, -1.0]])
    np.testing.assert_allclose(nc.top2_margin(X).numpy(), [0.5, 0.0])
    labels = torch.tensor([0, 2])
    ref = torch.nn.functional.cross_entropy(X, labels)
    assert torch.allclose(nc.cross_entropy(X, labels), ref)
    assert torch.allclose(nc.cross_entropy(torch.stack([X, X]), labels), ref.expand(2))


@pytest.mark.parametrize("act", ["relu", "abs"])
def test_forward_batched_and_lipschitz(act):
    net = _small_net("planted", 24, act, 0)
    R = nc.noise((24, 24), "gaussian", 1.0, batch=(3,), seed=1, device=CPU)
    Xb = nc.forward(net.W1, net.S2 + R, net.W3, net.inputs, act)
    assert Xb.shape == (3, 12, 4)
    X1 = nc.forward(net.W1, net.S2 + R[1], net.W3, net.inputs, act)
    assert torch.allclose(Xb[1], X1)
    # the proof's deterministic step: change <= ||W3||_inf ||R2 f(W1 s)||_inf
    XS = nc.forward(net.W1, net.S2, net.W3, net.inputs, act)
    nu = nc.ACTIVATIONS[act](net.inputs @ net.W1.T)
    rhs = net.W3.abs().sum(1).max() * (nu @ R.transpose(-2, -1)).abs().amax(-1)
    assert torch.all((Xb - XS).abs().amax(-1) <= rhs + 1e-12)


def test_planted_net_structure():
    net = nc.planted_net(40, d=16, n_classes=4, n_inputs=8, seed=0, device=CPU)
    assert net.W3.abs().sum(1).max().item() == pytest.approx(1.0)
    assert torch.linalg.matrix_rank(net.S2).item() == 4
    assert net.S2.dtype == torch.float64
    with pytest.raises(ValueError, match="activation"):
        nc.planted_net(40, d=16, n_classes=4, activation="tanh", device=CPU)


# --------------------------------------------------------------------------- check 4: properties
@settings(max_examples=15)
@given(N=st.integers(8, 64), act=st.sampled_from(["relu", "abs"]), model=st.sampled_from(["planted", "random"]),
       law=st.sampled_from(["gaussian", "rademacher", "sparse"]), seed=st.integers(0, 2**31 - 1))
def test_key_lemma_small(N, act, model, law, seed):
    net = _small_net(model, N, act, seed)
    stats = nc.key_lemma_stats(net, law=law, draws=20, seed=seed)
    again = nc.key_lemma_stats(_small_net(model, N, act, seed), law=law, draws=20, seed=seed)
    assert stats["fail"] == again["fail"] and stats["ratio_median"] == again["ratio_median"]
    np.testing.assert_array_equal(stats["acc_W"], again["acc_W"])
    assert stats["pairs"] == 20 * 12 and stats["draws"] == 20
    lem = nc.lemma_record("key_lemma", net, stats, seed, "test")
    cor = nc.corollary_record("accuracy_corollary", net, stats, seed, "test")
    for rec in (lem, cor):
        _well_formed(rec, seed)
        assert rec.held, rec
    assert lem == nc.lemma_record("key_lemma", net, again, seed, "test")


def test_key_lemma_violated_by_small_tau():
    """tau_N / 100 is not a valid bound: the measured slack of tau_N is ~20 at these sizes, so /10 is not
    enough to break it reliably, /100 is."""
    net = _small_net("planted", 48, "relu", 3)
    assert nc.lemma_record("k", net, nc.key_lemma_stats(net, draws=20, seed=3), 3, "x").held
    rec = nc.lemma_record("k", net, nc.key_lemma_stats(net, draws=20, seed=3, tau_scale=0.01), 3, "x")
    assert not rec.held and rec.measured > 0.5


def test_accuracy_corollary_violated_by_adversarial_r2():
    """R2 = -S2 (not random) kills the signal: the accuracy drops far more than the corollary allows."""
    net = _small_net("planted", 48, "relu", 3)
    stats = nc.key_lemma_stats(net, R2=-net.S2)
    rec = nc.corollary_record("c", net, stats, 3, "x")
    assert not rec.held and rec.measured > rec.bound
    assert not nc.lemma_record("k", net, stats, 3, "x").held


def test_aligned_noise_breaks_lemma():
    net = nc.planted_net(200, n_inputs=32, seed=0, device=CPU)
    R = nc.aligned_noise(net)
    assert torch.linalg.matrix_norm(R).item() == pytest.approx(math.sqrt(200))
    assert not nc.lemma_record("k", net, nc.key_lemma_stats(net, R2=R), 0, "x").held


# --------------------------------------------------------------------------- check 5: properties
@settings(max_examples=12)
@given(N=st.integers(8, 64), act=st.sampled_from(["relu", "abs"]), model=st.sampled_from(["planted", "random"]),
       law=st.sampled_from(["gaussian", "rademacher", "sparse"]), lam=st.sampled_from([1e-3, 1e-2, 0.1]),
       seed=st.integers(0, 2**31 - 1))
def test_loss_theorem_small(N, act, model, law, lam, seed):
    net = _small_net(model, N, act, seed)
    kw = dict(lam=lam, law=law, draws=8, seed=seed, thetas=(0.0, 0.5, 1.0))
    stats = nc.loss_theorem_stats(net, **kw)
    again = nc.loss_theorem_stats(_small_net(model, N, act, seed), **kw)
    np.testing.assert_array_equal(stats["lhs"], again["lhs"])
    np.testing.assert_array_equal(stats["theta_excess"], again["theta_excess"])
    recs = nc.loss_records("t", net, stats, lam, seed, "test")
    assert len(recs) == 2
    for rec in recs:
        _well_formed(rec, seed)
        assert rec.held, rec
    # the regularisation gain is lam ||R2||_F^2 ~ lam g N
    assert np.median(stats["reg_gain"]) == pytest.approx(lam * N, rel=0.5)


def test_loss_theorem_violated_by_doubled_penalty():
    """Subtracting 2 lam ||R2||^2 instead of lam ||R2||^2 claims too much: lam ||R2||^2 ~ lam N = 4 exceeds
    the bound's other terms (~2.1) at N = 400, lam = 0.01."""
    net = nc.planted_net(400, n_inputs=64, seed=0, device=CPU)
    kw = dict(lam=0.01, draws=3, seed=0, thetas=(0.0, 0.5, 1.0))
    good = nc.loss_records("t", net, nc.loss_theorem_stats(net, **kw), 0.01, 0, "x")
    bad = nc.loss_records("t", net, nc.loss_theorem_stats(net, r2_coef=2.0, **kw), 0.01, 0, "x")
    assert all(r.held for r in good)
    assert not any(r.held for r in bad)


def test_loss_theorem_bad_thetas():
    net = _small_net("planted", 16, "relu", 0)
    for bad in [(1.0,), (0.5, 0.0), (0.0, 1.5)]:
        with pytest.raises(ValueError, match="thetas"):
            nc.loss_theorem_stats(net, thetas=bad, draws=1)


# --------------------------------------------------------------------------- check 6: violations
@pytest.fixture(scope="module")
def tiny_data():
    return nc.teacher_data(n_train=512, n_test=128, d=16, n_classes=4, width=32, seed=0)


def _decay(tiny_data, **kw):
    rows = nc.train_three_layer(*tiny_data, width=48, epochs=3, lr=0.05, seed=0, device=CPU, progress=False, **kw)
    return rows, nc.decay_record(rows, "tiny", 0)


def test_decay_table_rows(tiny_data):
    rows, rec = _decay(tiny_data, lam=0.02)
    assert len(rows) == 4 * 3 and {r["layer"] for r in rows} == {"W1", "W2", "W3"}
    assert [r["epoch"] for r in rows if r["layer"] == "W2"] == [0, 1, 2, 3]
    assert rows[1]["shape"] == (48, 48) and rows[1]["sigma2_ratio"] == 1.0
    for key in ("sigma2", "bulk_fraction", "n_spikes", "mp_fit_error", "frobenius", "test_acc", "steps", "lam"):
        assert key in rows[-1]
    _well_formed(rec, 0)
    assert rec.held and rec.measured < 1
    again, _ = _decay(tiny_data, lam=0.02)
    assert [r["sigma2"] for r in again] == [r["sigma2"] for r in rows]     # reproducible from the seed


def test_decay_violated_by_zero_steps(tiny_data):
    rows, rec = _decay(tiny_data, lam=0.02, max_steps=0)
    assert rows[-1]["steps"] == 0 and rec.measured == 1.0 and not rec.held


def test_decay_violated_by_negative_weight_decay(tiny_data):
    _, rec = _decay(tiny_data, lam=-0.02)
    assert rec.measured > 1 and not rec.held


# --------------------------------------------------------------------------- the checks at quick size
@pytest.fixture(scope="module")
def quick_records():
    return {f.__name__: f(quick=True, seed=0, device=CPU) for f in nc.NETWORK_CHECKS}


def test_network_checks_quick(quick_records):
    assert [f.__name__ for f in nc.NETWORK_CHECKS] == ["check_key_lemma", "check_loss_theorem",
                                                        "check_randomness_decay"]
    for name, recs in quick_records.items():
        assert recs, name
        names = [r.name for r in recs]
        assert len(set(names)) == len(names), names
        for rec in recs:
            _well_formed(rec, 0)
            if rec.regime == "within":
                assert rec.held, rec
            else:
                assert rec.details, rec
        assert any(r.regime == "outside" for r in recs), name
        assert any(r.regime == "within" for r in recs), name
    lemma = {r.name: r for r in quick_records["check_key_lemma"]}
    assert {"key_lemma[relu]", "key_lemma[abs]", "accuracy_corollary[relu]", "accuracy_corollary[abs]"} <= set(lemma)
    loss = {r.name for r in quick_records["check_loss_theorem"]}
    assert {"loss_theorem[relu]", "loss_monotone_theta[relu]", "loss_theorem[abs]"} <= loss
    if (Path(os.environ.get("RMT_DATA_DIR", "")) / "mnist").is_dir():
        assert "randomness_decay[mnist]" in {r.name for r in quick_records["check_randomness_decay"]}


def test_decay_check_reproducible(quick_records):
    assert nc.check_randomness_decay(quick=True, seed=0, device=CPU) == quick_records["check_randomness_decay"]
