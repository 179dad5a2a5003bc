r"""Convergence in N of the theorem checks' quantities (``rmt verify --scaling``).

For each N of a grid the Monte-Carlo draws are split into independent seeded tasks
(:mod:`simulations.parallel`; task i seeded from ``SeedSequence(seed).spawn``), and each quantity is reported
as a measured error against the bound that ``rmt verify`` uses for it, with the least-squares exponent of
log(measured) on log(N):

* ``key_lemma``: planted three-layer net (``network_checks.planted_net``, |T| = 64, ReLU, g = 1); measured
  = mean over draws and inputs of ||X(s; S2) - X(s; W2)||_inf; bound = mean over inputs of
  tau_N(s) = 2 sqrt2 ||W3||_inf ||W1 s||_2 sqrt(log(2N)/N) (rate N^-1/2 up to the log);
* ``bema_sigma2``: pure noise N x 2N (p = N, n = 2N), variance 1/N; measured = root mean square of
  sigma2_hat / sigma2 - 1; bound = ``spectral_checks.sigma2_tolerance(p, n)`` = 5 x 1.75 / sqrt(p n)
  (5 measured standard deviations; rate 1/N);
* ``bbp_location``, ``bbp_overlap_p``, ``bbp_overlap_n``: the same noise plus a rank-one signal at
  2 theta_c (Haar vectors); the top singular value (units sigma sqrt n) and the squared overlaps of its
  singular vectors against the limits of ``theory.spiked``. Measured = the root mean square error
  (outliers and overlaps fluctuate at O(n^-1/2)); the bias |mean - limit| and its standard error are in the
  CSV, and the bound is the O(1/n) bias allowance A/n (A = ``BBP_ALLOW_ABOVE``) of the BBP check;
* ``entrywise_threshold``: N x N noise of variance 1/N, delta = 0.05; measured = mean max_ij |R_ij|;
  bound = t = sqrt(2 g log(2 N^2 / delta) / N) (both ~ sqrt(log N / N)); the failure frequency
  P(max |R_ij| > t) is in the CSV.

Every task runs with one torch/BLAS thread on every backend, so the CSV does not depend on the backend.
"""
from __future__ import annotations

import json
import math
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["scaling_tasks", "run_scaling", "summarise", "fit_exponent", "DEFAULT_GRID", "QUICK_GRID",
           "QUANTITIES", "cmd_scaling"]

DEFAULT_GRID = (100, 200, 400, 800, 1600, 2400, 4096)
QUICK_GRID = (100, 200, 400)
QUANTITIES = ("key_lemma", "bema_sigma2", "bbp_location", "bbp_overlap_p", "bbp_overlap_n", "entrywise_threshold")
#: the BBP signal strength in units of theta_c (well above the transition)
BBP_THETA = 2.0
ENTRY_DELTA = 0.05
N_INPUTS = 64


def _draws(N: int, base: int, floor: int) -> int:
    """Draws at N: ``base`` at N <= 400, then fewer as the cost grows (at least ``floor``)."""
    return max(floor, int(round(base * (400 / max(N, 400)) ** 1.5)))


# --------------------------------------------------------------------------- the tasks
def spectral_task(seed: int, N: int, draws: int) -> dict:
    """``draws`` matrices R (N x 2N, variance 1/N): BEMA's sigma2 error on R, and the top singular triplet of
    R + 2 theta_c sigma sqrt(n) a b^T (Haar a, b) against the BBP limits. numpy stream ``default_rng(seed)``."""
    from scipy.sparse.linalg import eigsh

    from theory.bema import bema
    from theory.spiked import bbp_threshold

    rng = np.random.default_rng(seed)
    p, n = N, 2 * N
    s2 = 1.0 / N
    unit = math.sqrt(s2 * n)
    theta = BBP_THETA * bbp_threshold(p / n) * unit
    err, s1, op, on = [], [], [], []
    for _ in range(draws):
        R = rng.standard_normal((p, n)) * math.sqrt(s2)
        G = R @ R.T
        lam = np.linalg.eigvalsh(G) / n
        err.append(bema(lam, p=p, n=n, beta=0.1).sigma2 / s2 - 1.0)
        a = rng.standard_normal(p)
        a /= np.linalg.norm(a)
        b = rng.standard_normal(n)
        b /= np.linalg.norm(b)
        Rb = R @ b
        # X X^T for X = R + theta a b^T, without forming X X^T from scratch
        GX = G + theta * (np.outer(Rb, a) + np.outer(a, Rb)) + theta**2 * np.outer(a, a)
        v0 = rng.standard_normal(p)
        e, U = eigsh(GX, k=1, which="LA", v0=v0, tol=1e-13)
        u = U[:, 0]
        s = math.sqrt(max(float(e[0]), 0.0))
        v = (R.T @ u + theta * b * float(a @ u)) / s
        s1.append(s / unit)
        op.append(float(a @ u) ** 2)
        on.append(float(b @ v) ** 2)
    return {"sigma2_err": err, "s1": s1, "overlap_p": op, "overlap_n": on}


def entrywise_task(seed: int, N: int, draws: int) -> dict:
    """max_ij |R_ij| of ``draws`` N x N matrices of variance 1/N (numpy stream ``default_rng(seed)``)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(draws):
        out.append(float(np.abs(rng.standard_normal((N, N))).max()) / math.sqrt(N))
    return {"max_abs": out}


def key_lemma_task(seed: int, N: int, draws: int, net_seed: int) -> dict:
    """Mean over inputs of ||X(s;S2) - X(s;S2+R2)||_inf for ``draws`` draws of R2 (torch generator seeded with
    ``seed``) on the planted net seeded with ``net_seed``; also tau_N and the largest change / tau."""
    import torch

    from .generators import noise
    from .network_checks import forward, planted_net, tau_n
    from .parallel import torch_generator

    net = planted_net(N, n_inputs=N_INPUTS, activation="relu", seed=net_seed, device="cpu")
    tau = tau_n(net.W1, net.W3, net.inputs)
    X_S = forward(net.W1, net.S2, net.W3, net.inputs, net.activation)
    gen = torch_generator(seed)
    change, worst, fails = [], 0.0, 0
    for _ in range(draws):
        R = noise((N, N), "gaussian", 1.0, seed=gen, device="cpu", dtype=torch.float64)
        d = (forward(net.W1, net.S2 + R, net.W3, net.inputs, net.activation) - X_S).abs().amax(dim=-1)
        change.append(float(d.mean()))
        worst = max(worst, float((d / tau).max()))
        fails += int((d > tau).sum())
    return {"change": change, "tau": float(tau.mean()), "worst_ratio": worst, "fails": fails,
            "pairs": draws * N_INPUTS}


def scaling_tasks(seed: int = 0, grid: Sequence[int] = DEFAULT_GRID, quick: bool = False) -> list:
    """The tasks of the study: per N, the spectral draws (one task per chunk of ~equal cost), the entry-wise
    draws and the key-lemma draws; seeds from ``SeedSequence(seed).spawn`` in list order."""
    from .parallel import seeded_tasks

    specs = []
    for N in grid:
        N = int(N)
        if N < 20:
            raise ValueError(f"grid sizes must be >= 20, got {N}")
        spec_draws = _draws(N, 8 if quick else 64, 2 if quick else 6)
        per = max(1, int(64 * (200 / N) ** 3))  # draws per task: about equal cost, one draw from N = 800 up
        chunks = [min(per, spec_draws - i) for i in range(0, spec_draws, per)]
        for j, k in enumerate(chunks):
            specs.append((f"spectral[N={N}]#{j}", spectral_task, dict(N=N, draws=k)))
        specs.append((f"entrywise[N={N}]", entrywise_task, dict(N=N, draws=_draws(N, 20 if quick else 200, 10))))
        specs.append((f"key_lemma[N={N}]", key_lemma_task,
                      dict(N=N, draws=8 if quick else _draws(N, 24, 8),
                           net_seed=int(np.random.SeedSequence([int(seed), N]).generate_state(1)[0]))))
    return seeded_tasks(seed, specs)


def _mean_se(x) -> tuple[float, float]:
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size)) if x.size > 1 else float("nan")


def _rms_se(e) -> tuple[float, float]:
    e2 = np.asarray(e, dtype=float) ** 2
    m, se = _mean_se(e2)
    rms = math.sqrt(m)
    return rms, se / (2 * rms) if rms > 0 else float("nan")


def fit_exponent(N, y) -> float:
    """Least-squares slope of log y on log N."""
    N, y = np.asarray(N, dtype=float), np.asarray(y, dtype=float)
    ok = np.isfinite(y) & (y > 0)
    return float(np.polyfit(np.log(N[ok]), np.log(y[ok]), 1)[0]) if ok.sum() >= 2 else float("nan")


def summarise(tasks, results) -> list[dict]:
    """One CSV row per (quantity, N): measured, its standard error, bound, the fitted exponents and extras."""
    from theory.spiked import bbp_threshold, outlier_singular_value, singular_vector_overlaps

    from .spectral_checks import BBP_ALLOW_ABOVE, sigma2_tolerance

    by_n: dict[int, dict] = {}
    for t, r in zip(tasks, results):
        d = by_n.setdefault(int(t.kwargs["N"]), {"spectral": {}, "entry": None, "key": None})
        if t.fn.__name__ == "spectral_task":
            for k, v in r.items():
                d["spectral"].setdefault(k, []).extend(v)
        elif t.fn.__name__ == "entrywise_task":
            d["entry"] = r
        else:
            d["key"] = r
    rows = []
    for N in sorted(by_n):
        d = by_n[N]
        p, n = N, 2 * N
        c = p / n
        th = BBP_THETA * bbp_threshold(c)
        preds = {"s1": outlier_singular_value(th, c)}
        preds["overlap_p"], preds["overlap_n"] = singular_vector_overlaps(th, c)
        sp = d["spectral"]
        err = np.asarray(sp["sigma2_err"])
        rms, se = _rms_se(err)
        rows.append(dict(quantity="bema_sigma2", N=N, p=p, n=n, draws=err.size, measured=rms, measured_se=se,
                         bound=sigma2_tolerance(p, n), bias=float(err.mean()), bias_se=_mean_se(err)[1],
                         note="rms of sigma2_hat/sigma2 - 1; bound 5 x 1.75/sqrt(pn)"))
        for q, key in (("bbp_location", "s1"), ("bbp_overlap_p", "overlap_p"), ("bbp_overlap_n", "overlap_n")):
            x = np.asarray(sp[key])
            rms, se = _rms_se(x - preds[key])
            m, mse = _mean_se(x)
            rows.append(dict(quantity=q, N=N, p=p, n=n, draws=x.size, measured=rms, measured_se=se,
                             bound=BBP_ALLOW_ABOVE / n, bias=m - float(preds[key]), bias_se=mse,
                             note=f"rms error vs the limit {float(preds[key]):.6g} (theta = {BBP_THETA:g} theta_c, "
                                  f"c = {c:g}); bound: the check's bias allowance {BBP_ALLOW_ABOVE:g}/n"))
        e = d["entry"]
        mx = np.asarray(e["max_abs"])
        t = math.sqrt(2.0 * math.log(2.0 * N * N / ENTRY_DELTA) / N)
        m, se = _mean_se(mx)
        rows.append(dict(quantity="entrywise_threshold", N=N, p=N, n=N, draws=mx.size, measured=m, measured_se=se,
                         bound=t, bias=float(np.mean(mx > t)), bias_se=float("nan"),
                         note=f"mean max|R_ij| vs t(delta={ENTRY_DELTA:g}); bias column = failure frequency"))
        k = d["key"]
        ch = np.asarray(k["change"])
        m, se = _mean_se(ch)
        rows.append(dict(quantity="key_lemma", N=N, p=N, n=N, draws=ch.size, measured=m, measured_se=se,
                         bound=k["tau"], bias=k["fails"] / k["pairs"], bias_se=float("nan"),
                         note=f"mean ||dX(s)||_inf vs mean tau_N(s); bias column = failure frequency; "
                              f"max change/tau {k['worst_ratio']:.3g}"))
    for q in QUANTITIES:
        sel = [r for r in rows if r["quantity"] == q]
        a_m = fit_exponent([r["N"] for r in sel], [r["measured"] for r in sel])
        a_b = fit_exponent([r["N"] for r in sel], [r["bound"] for r in sel])
        for r in sel:
            r["exponent_measured"], r["exponent_bound"] = a_m, a_b
    order = {q: i for i, q in enumerate(QUANTITIES)}
    return sorted(rows, key=lambda r: (order[r["quantity"]], r["N"]))


def run_scaling(seed: int = 0, grid: Sequence[int] = DEFAULT_GRID, quick: bool = False, *, scheduler=None,
                workers=None, cache=None, progress: bool = True) -> list[dict]:
    """Run :func:`scaling_tasks` through ``simulations.parallel.run_tasks`` and return :func:`summarise`'s rows."""
    from .parallel import run_tasks

    tasks = scaling_tasks(seed, grid, quick)
    results = run_tasks(tasks, scheduler=scheduler, workers=workers, cache=cache, progress=progress,
                        desc="scaling")
    return summarise(tasks, results)


def cmd_scaling(args) -> int:
    """``rmt verify --scaling [--quick|--full] [--out DIR] [--scheduler ...]``: CSV, JSON sidecar and PNG."""
    from paper_figures.convergence_in_n import draw
    from paper_figures.registry import results_root, write_csv
    from prune.io import atomic_write_text

    from .parallel import resolve_scheduler

    kind, target = resolve_scheduler(args.scheduler, args.workers)
    out = Path(args.out).expanduser() if args.out else results_root() / "scaling"
    out.mkdir(parents=True, exist_ok=True)
    quick = bool(args.quick)  # --scaling runs the full grid unless --quick is given
    grid = QUICK_GRID if quick else DEFAULT_GRID
    t0 = time.perf_counter()
    rows = run_scaling(args.seed, grid, quick, scheduler=args.scheduler, workers=args.workers, cache=args.cache,
                       progress=not args.no_progress)
    wall = time.perf_counter() - t0
    write_csv(out / "scaling.csv", rows)
    fig = draw(rows)
    fig.savefig(out / "scaling.png", dpi=130)
    import matplotlib.pyplot as plt

    plt.close(fig)
    import torch

    meta = dict(command="rmt " + " ".join(shlex.quote(a) for a in sys.argv[sys.argv.index("verify"):])
                if "verify" in sys.argv else "rmt verify --scaling", seed=args.seed, grid=list(grid),
                quick=quick, backend={"kind": kind, "target": target}, wall_s=round(wall, 1),
                tasks=len(scaling_tasks(args.seed, grid, quick)),
                exponents={q: {"measured": next(r["exponent_measured"] for r in rows if r["quantity"] == q),
                               "bound": next(r["exponent_bound"] for r in rows if r["quantity"] == q)}
                           for q in QUANTITIES},
                finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                versions=dict(python=platform.python_version(), numpy=np.__version__, torch=torch.__version__),
                platform=platform.platform())
    atomic_write_text(json.dumps(meta, indent=2), out / "scaling.json")
    args.written = [*getattr(args, "written", []), str(out / "scaling.csv")]
    print(f"{'quantity':22s} {'exponent measured':>18s} {'exponent bound':>15s}")
    for q, e in meta["exponents"].items():
        print(f"{q:22s} {e['measured']:18.3f} {e['bound']:15.3f}")
    print(f"\n{len(rows)} rows, {meta['tasks']} tasks in {wall:.1f} s; written to {out}/scaling.csv, scaling.json, "
          "scaling.png")
    return 0
