"""Tests of simulations.spectral_checks: record schema, reproducibility, within-regime records hold
over shapes, ratios, noise laws and seeds, and every check fails on an input built to violate it."""
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from simulations import spectral_checks as sc
from theory.selfcheck import CheckRecord

REQUIRED = {"name": str, "statement": str, "bound": float, "measured": float, "held": bool, "trials": int,
            "seed": int, "details": str, "regime": str}

seeds = st.integers(0, 2**31 - 1)
laws = st.sampled_from(["gaussian", "rademacher"])
ratios = st.sampled_from([0.25, 0.5, 0.8, 1.0])


def _shape(p: int, c: float, tall: bool) -> tuple[int, int]:
    n = max(p, int(round(p / c)))
    return (n, p) if tall else (p, n)


def _assert_schema(r: CheckRecord, seed: int) -> None:
    assert isinstance(r, CheckRecord)
    d = r.as_dict()
    for key, typ in REQUIRED.items():
        assert key in d, key
        assert isinstance(d[key], typ), (key, type(d[key]))
    assert r.name and r.statement
    assert r.seed == seed
    assert r.trials >= 1
    assert r.regime in ("within", "outside")
    assert math.isfinite(r.bound) and math.isfinite(r.measured)
    assert r.held == (r.measured <= r.bound)


def _assert_within_hold(recs: list[CheckRecord]) -> None:
    bad = [(r.name, r.measured, r.bound, r.details) for r in recs if r.regime == "within" and not r.held]
    assert not bad, bad


# ----------------------------------------------------------------------------- the four checks, quick size
@pytest.fixture(scope="module")
def quick_runs():
    return {f.__name__: f(quick=True, seed=3, device="cpu") for f in sc.SPECTRAL_CHECKS}


def test_spectral_checks_tuple():
    assert [f.__name__ for f in sc.SPECTRAL_CHECKS] == [
        "check_esd_mp", "check_bbp", "check_approximation_lemma", "check_entrywise_threshold"]


@pytest.mark.parametrize("check", sc.SPECTRAL_CHECKS, ids=lambda f: f.__name__)
def test_quick_check_records(check, quick_runs):
    recs = quick_runs[check.__name__]
    assert recs and all(isinstance(r, CheckRecord) for r in recs)
    for r in recs:
        _assert_schema(r, 3)
    assert len({r.name for r in recs}) == len(recs), "record names must be unique within a check"
    _assert_within_hold(recs)
    outside = [r for r in recs if r.regime == "outside"]
    assert outside, "every check reports at least one run outside its hypotheses"
    assert all("outside" in r.details for r in outside)


@pytest.mark.parametrize("check", sc.SPECTRAL_CHECKS, ids=lambda f: f.__name__)
def test_quick_check_reproducible(check, quick_runs):
    assert check(quick=True, seed=3, device="cpu") == quick_runs[check.__name__]


def test_outside_regimes_break_the_statements(quick_runs):
    """Heavy tails break MP/BEMA, BBP and the entry-wise threshold; a full-rank S breaks the lemma."""
    out = {r.name: r for recs in quick_runs.values() for r in recs if r.regime == "outside"}
    assert not out["esd_mp_ks[student_t(df=2.5)]"].held
    assert not out["bema_sigma2[student_t(df=2.5)]"].held
    assert not any(r.held for k, r in out.items() if k.startswith("bbp["))
    assert not out["entrywise_threshold[student_t(df=2.5),delta=0.05]"].held
    assert not out["approx_lemma_frobenius[full_rank,theta<=4theta_c,gaussian]"].held


# ----------------------------------------------------------------------------- hypothesis: within regime holds
@settings(max_examples=12, deadline=None)
@given(p=st.integers(40, 120), c=ratios, tall=st.booleans(), law=laws, seed=seeds)
def test_esd_mp_within_holds(p, c, tall, law, seed):
    N, M = _shape(p, c, tall)
    small = _shape(max(20, p // 2), c, tall)
    recs = sc.esd_mp_experiment((small, (N, M)), law, 1.0, 2, seed, "cpu")
    assert [r.name for r in recs] == [f"esd_mp_ks[{law}]", f"bema_sigma2[{law}]", f"bema_lambda_plus[{law}]"]
    for r in recs:
        _assert_schema(r, seed)
    _assert_within_hold(recs)
    assert recs == sc.esd_mp_experiment((small, (N, M)), law, 1.0, 2, seed, "cpu")


@settings(max_examples=12, deadline=None)
@given(p=st.integers(30, 80), c=ratios, tall=st.booleans(), law=laws, seed=seeds,
       thetas=st.sampled_from([(0.5,), (2.0,), (4.0,), (4.0, 3.0, 2.0)]))
def test_bbp_within_holds(p, c, tall, law, seed, thetas):
    N, M = _shape(p, c, tall)
    r = sc.bbp_experiment(N, M, thetas, law, 1.0, 16, seed, "cpu")
    _assert_schema(r, seed)
    _assert_within_hold([r])
    assert r == sc.bbp_experiment(N, M, thetas, law, 1.0, 16, seed, "cpu")


@settings(max_examples=12, deadline=None)
@given(p=st.integers(30, 100), c=ratios, tall=st.booleans(), law=laws, seed=seeds,
       theta=st.sampled_from([0.5, 1.5, 3.0, 10.0]), rank=st.integers(1, 3))
def test_approximation_within_holds(p, c, tall, law, seed, theta, rank):
    N, M = _shape(p, c, tall)
    recs = sc.approximation_experiment(N, M, theta, rank, "low_rank", law, 1.0, 2, seed, "cpu")
    assert len(recs) == 2
    for r in recs:
        _assert_schema(r, seed)
        assert "closest to S:" in r.details
    _assert_within_hold(recs)
    assert recs == sc.approximation_experiment(N, M, theta, rank, "low_rank", law, 1.0, 2, seed, "cpu")


@settings(max_examples=12, deadline=None)
@given(N=st.integers(10, 80), M=st.integers(10, 80), delta=st.sampled_from([0.01, 0.1, 0.5, 0.9]), seed=seeds)
def test_entrywise_within_holds(N, M, delta, seed):
    r = sc.entrywise_threshold_experiment(N, M, "gaussian", 1.0, delta, 40, 0.05, seed, "cpu")
    _assert_schema(r, seed)
    _assert_within_hold([r])
    assert r == sc.entrywise_threshold_experiment(N, M, "gaussian", 1.0, delta, 40, 0.05, seed, "cpu")


# ----------------------------------------------------------------------------- inputs built to violate each check
def test_ks_rejects_wrong_sigma2():
    """The KS statistic with sigma2 off by 20 % exceeds the bound that the true sigma2 meets."""
    good = sc.esd_mp_experiment(((100, 200),), "gaussian", 1.0, 2, 0, "cpu")[0]
    bad = sc.esd_mp_experiment(((100, 200),), "gaussian", 1.0, 2, 0, "cpu", ks_sigma2_factor=1.2)[0]
    assert good.held and not bad.held


def test_bbp_rejects_wrong_ratio():
    """Predictions computed with ratio 1 for a c = 0.5 matrix are rejected; the right ones are not."""
    good = sc.bbp_experiment(100, 200, (2.0,), "gaussian", 1.0, 16, 0, "cpu")
    bad = sc.bbp_experiment(100, 200, (2.0,), "gaussian", 1.0, 16, 0, "cpu", prediction_ratio=1.0)
    assert good.held and not bad.held


def test_approximation_rejects_too_low_edge():
    """An edge at 0.3 x BEMA's lets the bulk into W': the rank-aware form of the lemma fails."""
    good = sc.approximation_experiment(60, 120, 4.0, 3, "low_rank", "gaussian", 1.0, 2, 0, "cpu")
    bad = sc.approximation_experiment(60, 120, 4.0, 3, "low_rank", "gaussian", 1.0, 2, 0, "cpu", edge_factor=0.3)
    assert all(r.held for r in good)
    assert not bad[1].held and bad[1].name.startswith("approx_lemma_rank")


def test_entrywise_rejects_threshold_over_3():
    good = sc.entrywise_threshold_experiment(30, 40, "gaussian", 1.0, 0.1, 20, 0.05, 0, "cpu")
    bad = sc.entrywise_threshold_experiment(30, 40, "gaussian", 1.0, 0.1, 20, 0.05, 0, "cpu", t_factor=1 / 3)
    assert good.held and not bad.held and bad.measured == 1.0


def test_different_seeds_differ():
    a = sc.bbp_experiment(40, 80, (2.0,), "gaussian", 1.0, 4, 0, "cpu")
    b = sc.bbp_experiment(40, 80, (2.0,), "gaussian", 1.0, 4, 1, "cpu")
    assert a.measured != b.measured


def test_bad_arguments():
    with pytest.raises(ValueError):
        sc.bbp_experiment(40, 80, (0.5, 2.0), trials=4, device="cpu")  # sub-threshold only for rank 1
    with pytest.raises(ValueError):
        sc.bbp_experiment(40, 80, (2.0,), trials=1, device="cpu")
    with pytest.raises(ValueError):
        sc.approximation_experiment(40, 80, 2.0, signal="nope", device="cpu")
    with pytest.raises(ValueError):
        sc.esd_mp_experiment((), device="cpu")
