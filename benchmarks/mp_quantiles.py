"""Benchmark 4: Marchenko-Pastur quantiles, ``MarchenkoPastur.ppf`` (vectorised safeguarded Newton on the
angle, all levels at once) against per-quantile root finding (``scipy.optimize.brentq`` on the CDF, one
call per level, as the seed papers' code does).

For each ratio y: K = 10^5 levels q_k = (k - 1/2) / K. Time of ``ppf`` on all K levels; time of brentq
(xtol 1e-15 on ``MarchenkoPastur.cdf``) on a subset of ``--brentq-levels`` levels, scaled to K (the levels
are solved independently, so the cost is linear; the column ``brentq_levels_timed`` says how many were
timed). Accuracy: max absolute error of both against an mpmath reference (``ppf(q, dps=30)``) on levels
spread over the range including both tails, and the round trip max |cdf(ppf(q)) - q| over all K levels.

    python benchmarks/mp_quantiles.py          # ratios 0.1, 0.5, 1.0; brentq timed on 10^4 levels
    python benchmarks/mp_quantiles.py --quick  # ratio 0.5; brentq timed on 500 levels
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy loads

import argparse
import time

import numpy as np
from scipy.optimize import brentq

from theory import MarchenkoPastur

K = 100_000


def brentq_ppf(law: MarchenkoPastur, q: np.ndarray) -> np.ndarray:
    """One bracketing root search per level on [lambda_-, lambda_+] (ratio <= 1)."""
    a, b = law.edges
    return np.array([brentq(lambda x, t=t: float(law.cdf(x)) - t, a, b, xtol=1e-15, maxiter=200) for t in q])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--brentq-levels", type=int, default=None, help="levels timed for brentq (default 10^4; quick 500)")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/mp_quantiles.py")
    _common.print_header(meta)
    ratios = [0.5] if args.quick else [0.1, 0.5, 1.0]
    n_brentq = args.brentq_levels or (500 if args.quick else 10_000)
    n_ref = 12 if args.quick else 40
    q = (np.arange(1, K + 1) - 0.5) / K
    rng = np.random.default_rng(0)
    sub = np.sort(rng.choice(K, size=n_brentq, replace=False))
    ref_idx = np.unique(np.concatenate([np.arange(3), np.linspace(0, K - 1, n_ref).astype(int), K - 1 - np.arange(3)]))
    rows = []
    for y in ratios:
        law = MarchenkoPastur(ratio=y, sigma2=1.0)
        t_ppf, _ = _common.timed(lambda: law.ppf(q), repeats=5)
        x_all = law.ppf(q)
        t0 = time.perf_counter()
        brentq_ppf(law, q[sub])
        t_brentq = time.perf_counter() - t0
        ref = np.array([float(v) for v in law.ppf(q[ref_idx], dps=30)])
        err_ours = np.max(np.abs(x_all[ref_idx] - ref))
        err_brentq = np.max(np.abs(brentq_ppf(law, q[ref_idx]) - ref))
        rows.append(dict(ratio=y, levels=K, ppf_s=t_ppf, brentq_s_for_1e5=t_brentq * K / n_brentq,
                         brentq_levels_timed=n_brentq, speedup=t_brentq * K / n_brentq / t_ppf,
                         ppf_max_abs_err=float(err_ours), brentq_max_abs_err=float(err_brentq),
                         ref_levels=int(ref_idx.size), ppf_roundtrip_max=float(np.max(np.abs(law.cdf(x_all) - q)))))
        print(f"# done ratio {y}", flush=True)
    print(f"\nMP quantiles: {K} levels (seconds; errors against mpmath at 30 digits)")
    print(_common.table(rows))
    _common.write_csv(rows, "mp_quantiles", meta, _common.out_dir(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
