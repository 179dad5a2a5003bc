"""Benchmark 6: how ``theory.fit_spectrum`` and one pruning step scale with the matrix size.

For W of shape (N, N/2) (float32, Gaussian entries with a rank-8 planted signal), N = 256 .. 8192:

* ``fit_spectrum(W)`` (ESD + BEMA + MP-fit error) and, as its limit, the bare float64 Gram + eigvalsh;
* one pruning step, ``prune.methods.svd.mp_truncate`` of a one-layer model ``nn.Linear(N/2, N)`` (deep copy, float64
  thin SVD, BEMA, factorised layer), and, as its limit, the bare float64 thin SVD ``torch.linalg.svd``.

Median of the repeats (3 up to N = 1024, then 1); the fitted exponent b of time ~ a N^b is the least-squares
slope of log time on log N over N >= 1024 (the cubic regime; smaller sizes are dominated by fixed costs).

    python benchmarks/scaling.py               # N = 256 .. 8192
    python benchmarks/scaling.py --quick       # N = 256 .. 2048
    python benchmarks/scaling.py --max-n 4096
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy / torch load

import argparse

import numpy as np
import torch
from torch import nn

from prune.methods.svd import mp_truncate
from theory import fit_spectrum


def planted(N: int, M: int, gen: torch.Generator) -> torch.Tensor:
    """Noise of variance 1/M plus a rank-8 signal of singular values 3 x the noise edge (float32)."""
    R = torch.randn(N, M, generator=gen) / M**0.5
    U, _ = torch.linalg.qr(torch.randn(N, 8, generator=gen))
    V, _ = torch.linalg.qr(torch.randn(M, 8, generator=gen))
    edge = 1.0 + (N / M) ** 0.5
    return R + (U * 3.0 * edge) @ V.T


def bare_eig(W: torch.Tensor) -> None:
    X = W.double()
    torch.linalg.eigvalsh(X @ X.T if X.shape[0] <= X.shape[1] else X.T @ X)


def slope(ns, ts) -> float:
    ns, ts = np.asarray(ns, float), np.asarray(ts, float)
    keep = ns >= 1024
    if keep.sum() < 2:
        return float("nan")
    return float(np.polyfit(np.log(ns[keep]), np.log(ts[keep]), 1)[0])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--max-n", type=int, default=None, help="largest N (default 8192; quick 2048)")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/scaling.py")
    _common.print_header(meta)
    max_n = args.max_n or (2048 if args.quick else 8192)
    sizes = [n for n in (256, 512, 1024, 2048, 4096, 8192) if n <= max_n]
    gen = torch.Generator().manual_seed(0)
    rows = []
    for N in sizes:
        M = N // 2
        W = planted(N, M, gen)
        layer = nn.Linear(M, N)
        with torch.no_grad():
            layer.weight.copy_(W)
        model = nn.Sequential(layer)
        reps = 3 if N <= 1024 else 1
        med = _common.interleaved({
            "fit": lambda: fit_spectrum(W),
            "eig": lambda: bare_eig(W),
            "prune": lambda: mp_truncate(model),
            "svd": lambda: torch.linalg.svd(W.double(), full_matrices=False),
        }, repeats=reps, warmup=1 if N <= 2048 else 0)
        rep = fit_spectrum(W)
        _, cuts = mp_truncate(model)
        rows.append(dict(N=N, M=M, fit_spectrum_s=med["fit"], eig_limit_s=med["eig"],
                         fit_over_limit=med["fit"] / med["eig"], prune_step_s=med["prune"], svd_limit_s=med["svd"],
                         prune_over_svd=med["prune"] / med["svd"], n_spikes=rep.n_spikes,
                         rank_after=cuts[0].rank_after, repeats=reps))
        print(f"# done N={N}", flush=True)
        _common.write_csv(rows, "scaling", dict(meta), _common.out_dir(args))  # partial results survive a stop
    exps = dict(N="exponent b (N>=1024)", fit_spectrum_s=slope(sizes, [r["fit_spectrum_s"] for r in rows]),
                eig_limit_s=slope(sizes, [r["eig_limit_s"] for r in rows]),
                prune_step_s=slope(sizes, [r["prune_step_s"] for r in rows]),
                svd_limit_s=slope(sizes, [r["svd_limit_s"] for r in rows]))
    cols = ["N", "M", "fit_spectrum_s", "eig_limit_s", "fit_over_limit", "prune_step_s", "svd_limit_s",
            "prune_over_svd", "n_spikes", "rank_after"]
    print("\nScaling with N (W of shape N x N/2, seconds)")
    print(_common.table(rows + [exps], cols))
    _common.write_csv(rows + [exps], "scaling", meta, _common.out_dir(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
