"""Benchmark 3: Tracy-Widom cdf / sf / ppf accuracy against an mpmath reference, and time per 10^4 points,
ours (``theory.TracyWidom``, Fredholm determinants) against the PyPI ``tracywidom`` package (``TracyWidom``
module: an interpolated table plus asymptotic tails).

Reference: ``theory.TracyWidom(beta).cdf(s, dps=20)`` and ``.sf(s, dps=20)`` (``theory._tw_mpmath``: an
independent mpmath evaluation at 20 digits; seconds per point, so the values are cached in
``results/tracy_widom_reference.csv`` and reused unless ``--recompute``).

Errors (max over the reference points, per beta):

* cdf: absolute error |F - F_ref|;
* sf: relative error |S - S_ref| / S_ref on s >= 0 (the upper tail that spike p-values use); the peer
  has no sf, so its sf is 1 - cdf;
* ppf: |ppf(F_ref(s)) - s|, the round trip through the reference CDF (the peer's ``cdfinv``), on the
  points where F_ref(s) lies in [1e-6, 1 - 1e-6].

Timing: wall time of cdf, sf and ppf on 1000 points (s uniform on [-6, 6], levels uniform on [0.001, 0.999]),
reported per 10^4 points (the points are evaluated independently in batches, so the cost is linear in their
number); median of 5 runs for the peer, one run for ours (milliseconds per point: every point is a batched
Fredholm-determinant eigendecomposition, and ppf takes 4 to 6 of them).

    python benchmarks/tracy_widom.py           # 10 reference points per beta (cached after the first run)
    python benchmarks/tracy_widom.py --quick   # 4 points per beta, 200 timing points
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy loads

import argparse
import csv
import warnings

import numpy as np

from theory import TracyWidom

DPS = 20
POINTS_FULL = [-5.0, -3.0, -2.0, -1.0, 0.0, 1.0, 2.0, 3.0, 4.0, 6.0]
POINTS_QUICK = [-3.0, 0.0, 2.0, 4.0]
REF_PATH = _common.RESULTS / "tracy_widom_reference.csv"


def reference(points: list[float], recompute: bool) -> dict[tuple[int, float], tuple[float, float]]:
    """(beta, s) -> (cdf, sf) at DPS digits, cached in REF_PATH."""
    cache: dict[tuple[int, float], tuple[float, float]] = {}
    if REF_PATH.is_file() and not recompute:
        with REF_PATH.open() as fh:
            for r in csv.DictReader(fh):
                if int(r["dps"]) >= DPS:
                    cache[(int(r["beta"]), float(r["s"]))] = (float(r["cdf"]), float(r["sf"]))
    missing = [(b, s) for b in (1, 2, 4) for s in points if (b, s) not in cache]
    if missing:
        from tqdm.auto import tqdm

        REF_PATH.parent.mkdir(parents=True, exist_ok=True)
        for b, s in tqdm(missing, desc=f"mpmath reference ({DPS} digits)", unit="point"):
            tw = TracyWidom(b)
            cache[(b, s)] = (float(tw.cdf(s, dps=DPS)), float(tw.sf(s, dps=DPS)))
            with REF_PATH.open("w", newline="") as fh:  # after every point: a stopped run keeps its work
                w = csv.writer(fh)
                w.writerow(["beta", "s", "dps", "cdf", "sf"])
                for (bb, ss), (c, f) in sorted(cache.items()):
                    w.writerow([bb, repr(ss), DPS, repr(c), repr(f)])
    return cache


def peer(beta: int):
    """The PyPI tracywidom class for this beta, or None when the package does not import."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from TracyWidom import TracyWidom as PeerTW

            return PeerTW(beta=beta)
    except Exception as exc:  # noqa: BLE001 - a peer failing to import/construct is reported, not fatal
        print(f"# tracywidom (PyPI) unavailable for beta={beta}: {exc!r}")
        return None


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--recompute", action="store_true", help="recompute the mpmath reference instead of the cache")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/tracy_widom.py")
    _common.print_header(meta)
    points = POINTS_QUICK if args.quick else POINTS_FULL
    n_time = 200 if args.quick else 1_000
    ref = reference(points, args.recompute)
    rng = np.random.default_rng(0)
    s_time = rng.uniform(-6.0, 6.0, n_time)
    q_time = rng.uniform(0.001, 0.999, n_time)

    rows, detail = [], []
    for beta in (1, 2, 4):
        s = np.array(points)
        F = np.array([ref[(beta, x)][0] for x in points])
        S = np.array([ref[(beta, x)][1] for x in points])
        upper = s >= 0.0
        inner = (F >= 1e-6) & (F <= 1 - 1e-6)
        ours = TracyWidom(beta)
        impls = {"ours (theory.TracyWidom)": (ours.cdf, ours.sf, ours.ppf)}
        pt = peer(beta)
        if pt is not None:
            impls["tracywidom 0.4.0 (PyPI)"] = (pt.cdf, lambda x, pt=pt: 1.0 - pt.cdf(x), pt.cdfinv)
        for name, (cdf, sf, ppf) in impls.items():
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                c, f, x = np.asarray(cdf(s), float), np.asarray(sf(s), float), np.asarray(ppf(F[inner]), float)
                reps = 1 if name.startswith("ours") else 5  # ours costs milliseconds per point: one run
                med = {k: _common.timed(fn, repeats=reps, warmup=0 if reps == 1 else 1)[0]
                       for k, fn in (("cdf", lambda: cdf(s_time)), ("sf", lambda: sf(s_time)),
                                     ("ppf", lambda: ppf(q_time)))}
            sf_rel = np.abs(f[upper] - S[upper]) / S[upper]
            rows.append(dict(beta=beta, implementation=name,
                             cdf_max_abs_err=float(np.max(np.abs(c - F))),
                             sf_max_rel_err_s_ge_0=float(np.max(sf_rel)),
                             sf_rel_err_at_s4=float(sf_rel[list(s[upper]).index(4.0)]) if 4.0 in s else np.nan,
                             ppf_max_abs_err=float(np.max(np.abs(x - s[inner]))),
                             cdf_ms_per_1e4=1e3 * med["cdf"] * 1e4 / n_time,
                             sf_ms_per_1e4=1e3 * med["sf"] * 1e4 / n_time,
                             ppf_ms_per_1e4=1e3 * med["ppf"] * 1e4 / n_time, points_timed=n_time,
                             timing_repeats=reps))
            for xi, ci, fi, Fi, Si in zip(s, c, f, F, S):
                detail.append(dict(beta=beta, implementation=name, s=xi, cdf=ci, cdf_ref=Fi, sf=fi, sf_ref=Si,
                                   cdf_abs_err=abs(ci - Fi), sf_rel_err=abs(fi - Si) / Si))
    print(f"\nTracy-Widom accuracy against mpmath ({DPS} digits, {len(points)} points per beta) and time per 10^4 points")
    print(_common.table(rows))
    out = _common.out_dir(args)
    _common.write_csv(rows, "tracy_widom", meta, out)
    _common.write_csv(detail, "tracy_widom_points", _common.header("benchmarks/tracy_widom.py"), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
