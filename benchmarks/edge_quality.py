"""Benchmark 2: edge estimation on matrices with a known truth, ours against WeightWatcher's MP fit.

W = R + S of shape (p, n) (p <= n, ratio c = p/n): R i.i.d. noise of variance sigma^2 = 1 (Gaussian,
Rademacher or Student-t with 3 degrees of freedom rescaled to unit variance; ``simulations.generators.noise``),
S = sum_{i<=k} theta sqrt(n) u_i v_i^T with k = 3 Haar-random directions and theta = x * c^{1/4}, x the
multiple of the BBP threshold (``theory.bbp_threshold``; below it a spike is undetectable in the limit),
x in {1.0, 1.2, 1.5, 2, 3}, plus x = 0 (k = 0: pure noise) for the false-spike rate.

Per matrix, from the eigenvalues lambda_i = s_i^2 / n:

* ``ours: BEMA edge`` - ``theory.bema(alpha=0.2, beta=0.1).n_spikes`` (edge = MP edge + TW_1 0.9-quantile margin);
* ``ours: BEMA + TW test`` - the largest eigenvalues, in descending order, while
  ``theory.spike_pvalue(lambda, p, n, sigma2=BEMA's)`` < 0.05 (Johnstone's centring and scale);
* ``WeightWatcher 0.7.7`` - its ``mp_fit`` (the fit behind ``analyze(mp_fit=True)``: eigenvalues rescaled to
  mean 1, sigma by a 1%-grid KDE match, edge + sqrt(TW scale)) on the same eigenvalues; its sigma_mp is
  converted to our units (sigma2 = sigma_mp^2 * mean(lambda)).

Columns: detection rate (true spikes found / k, counting min(K_hat, k)), false spikes per matrix
(max(K_hat - k, 0)), exact-count rate, and the relative error |sigma2_hat - 1| (median over trials).

    python benchmarks/edge_quality.py          # 300 x 600, 8 trials per cell (WeightWatcher: ~1-2 s per fit)
    python benchmarks/edge_quality.py --quick  # 100 x 200, 2 trials, x in {0, 1.2, 2}
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy / torch load

import argparse
import logging
import warnings

import numpy as np
import torch

from simulations.generators import low_rank, noise
from theory import bbp_threshold, bema, spike_pvalue

K_SPIKES = 3
LAWS = ["gaussian", "rademacher", "student_t"]


def tw_test_count(lam: np.ndarray, p: int, n: int, sigma2: float, level: float = 0.05) -> int:
    """Number of leading eigenvalues (descending) whose TW spike p-value is below ``level``."""
    top = np.sort(lam)[::-1][: max(1, p // 4)]
    pv = np.asarray(spike_pvalue(top, p=p, n=n, sigma2=sigma2))
    nonsig = np.flatnonzero(pv >= level)
    return int(nonsig[0]) if nonsig.size else int(top.size)


def ww_fit(watcher, lam: np.ndarray, p: int, n: int) -> tuple[int, float]:
    """WeightWatcher's MP fit on eigenvalues lam (our units); returns (num_spikes, sigma2 in our units)."""
    evals = np.sort(lam * n)  # WeightWatcher's eigenvalues are s^2; its fit rescales them to mean 1 anyway
    num_spikes, sigma_mp, *_ = watcher.mp_fit(evals, n, p, 1, "bench", 0, 0, False, False, "", "blue", 0.25, True,
                                              evals)
    return int(num_spikes), float(sigma_mp) ** 2 * float(np.mean(lam))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--trials", type=int, default=None, help="matrices per cell (default 8; quick 2)")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/edge_quality.py")
    _common.print_header(meta)
    p, n = (100, 200) if args.quick else (300, 600)
    trials = args.trials or (2 if args.quick else 8)
    multiples = [0.0, 1.2, 2.0] if args.quick else [0.0, 1.0, 1.2, 1.5, 2.0, 3.0]
    c = p / n
    watcher = None
    if _common.have("weightwatcher"):
        import weightwatcher as ww

        logging.getLogger("weightwatcher").setLevel(logging.ERROR)
        watcher = ww.WeightWatcher(log_level=logging.ERROR)
    else:
        print("# WeightWatcher does not import here: its rows are left out")
    methods = ["ours: BEMA edge", "ours: BEMA + TW test"] + (["WeightWatcher 0.7.7"] if watcher else [])
    rows = []
    from tqdm.auto import tqdm

    cells = [(law, x) for law in LAWS for x in multiples]
    for law, x in tqdm(cells, desc="cells", unit="cell"):
        k = K_SPIKES if x > 0 else 0
        acc = {m: {"found": [], "false": [], "exact": [], "s2err": []} for m in methods}
        for t in range(trials):
            seed = 1000 * LAWS.index(law) + 10 * multiples.index(x) + t
            W = noise((p, n), law=law, g=float(p), seed=seed, device="cpu")  # variance g/N = 1
            if k:
                W = W + low_rank((p, n), [x * bbp_threshold(c) * n**0.5] * k, seed=seed + 7, device="cpu")
            lam = np.sort(torch.linalg.svdvals(W).numpy() ** 2 / n)
            fit = bema(lam, p=p, n=n, alpha=0.2, beta=0.1)
            est = {"ours: BEMA edge": (fit.n_spikes, fit.sigma2),
                   "ours: BEMA + TW test": (tw_test_count(lam, p, n, fit.sigma2), fit.sigma2)}
            if watcher is not None:
                with warnings.catch_warnings(), np.errstate(all="ignore"):
                    warnings.simplefilter("ignore")
                    est["WeightWatcher 0.7.7"] = ww_fit(watcher, lam, p, n)
            for m, (K, s2) in est.items():
                acc[m]["found"].append(min(K, k))
                acc[m]["false"].append(max(K - k, 0))
                acc[m]["exact"].append(K == k)
                acc[m]["s2err"].append(abs(s2 - 1.0))
        for m in methods:
            a = acc[m]
            rows.append(dict(noise=law, x_bbp=x, k=k, method=m, trials=trials,
                             detection_rate=(np.mean(a["found"]) / k) if k else float("nan"),
                             false_spikes_per_matrix=float(np.mean(a["false"])),
                             exact_count_rate=float(np.mean(a["exact"])),
                             sigma2_rel_err_median=float(np.median(a["s2err"]))))
    print(f"\nEdge estimation on {p} x {n} matrices, k = {K_SPIKES} planted spikes at x times the BBP threshold "
          f"(x = 0: pure noise), {trials} trials per cell")
    print(_common.table(rows))
    _common.write_csv(rows, "edge_quality", meta, _common.out_dir(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
