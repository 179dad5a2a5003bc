"""Benchmark 3: Tracy-Widom cdf / sf / ppf accuracy against an mpmath reference and time per point on 10^6
points: ours (``theory.TracyWidom``: the default piecewise interpolant with asymptotic tails, and the Fredholm
determinant path ``method="fredholm"``) against the PyPI ``tracywidom`` package (``TracyWidom`` module: an
interpolated table plus asymptotic tails).

Reference: ``theory.TracyWidom(beta).cdf(s, dps=20)`` and ``.sf(s, dps=20)`` (``theory._tw_mpmath``: an
independent mpmath evaluation at 20 digits; seconds per point, so the values are cached in
``results/tracy_widom_reference.csv`` and reused unless ``--recompute``).

Errors (max over the reference points, per beta):

* cdf: absolute error |F - F_ref|;
* sf: relative error |S - S_ref| / S_ref on s >= 0 (the upper tail that spike p-values use); the peer
  has no sf, so its sf is 1 - cdf;
* ppf: |ppf(F_ref(s)) - s|, the round trip through the reference CDF (the peer's ``cdfinv``), on the
  points where F_ref(s) lies in [1e-6, 1 - 1e-6].

Timing: nanoseconds per point of cdf and sf on 10^6 points s uniform on [-6, 6] and of ppf on 10^6 levels
uniform on [0.001, 0.999]; the interpolant and the peer run interleaved (round robin, median of 5 after a
warm-up), so that a change of machine load hits both alike; ``ours_over_peer`` is the ratio of the two
medians (below 1: ours is faster). The Fredholm path is timed once on 1000 points (milliseconds per point).

    python benchmarks/tracy_widom.py           # 10 reference points per beta (cached after the first run)
    python benchmarks/tracy_widom.py --quick   # 4 points per beta, 10^5 timing points, 3 repeats
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
    n_time = 100_000 if args.quick else 1_000_000
    repeats = 3 if args.quick else 5
    n_fred = 200 if args.quick else 1_000
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
        fred = {k: (lambda x, k=k: getattr(ours, k)(x, method="fredholm")) for k in ("cdf", "sf", "ppf")}
        impls = {"ours (interpolant, default)": (ours.cdf, ours.sf, ours.ppf),
                 "ours (method='fredholm')": (fred["cdf"], fred["sf"], fred["ppf"])}
        pt = peer(beta)
        if pt is not None:
            impls["tracywidom 0.4.0 (PyPI)"] = (pt.cdf, lambda x, pt=pt: 1.0 - pt.cdf(x), pt.cdfinv)
        # interleaved timing of the interpolant and the peer on n_time points
        fast = {"ours": impls["ours (interpolant, default)"]}
        if pt is not None:
            fast["peer"] = impls["tracywidom 0.4.0 (PyPI)"]
        fns = {}
        for who, (cdf, sf, ppf) in fast.items():
            fns[(who, "cdf")] = lambda cdf=cdf: cdf(s_time)
            fns[(who, "sf")] = lambda sf=sf: sf(s_time)
            fns[(who, "ppf")] = lambda ppf=ppf: ppf(q_time)
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            med = _common.interleaved(fns, repeats=repeats, warmup=1)
            med_fred = {k: _common.timed(lambda k=k: fred[k](s_time[:n_fred] if k != "ppf" else q_time[:n_fred]),
                                         repeats=1, warmup=0)[0] for k in ("cdf", "sf", "ppf")}
        for name, (cdf, sf, ppf) in impls.items():
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                c, f, x = np.asarray(cdf(s), float), np.asarray(sf(s), float), np.asarray(ppf(F[inner]), float)
            sf_rel = np.abs(f[upper] - S[upper]) / S[upper]
            row = dict(beta=beta, implementation=name,
                       cdf_max_abs_err=float(np.max(np.abs(c - F))),
                       sf_max_rel_err_s_ge_0=float(np.max(sf_rel)),
                       ppf_max_abs_err=float(np.max(np.abs(x - s[inner]))))
            if name.startswith("ours (interpolant"):
                t, n = {k: med[("ours", k)] for k in ("cdf", "sf", "ppf")}, n_time
            elif name.startswith("tracywidom"):
                t, n = {k: med[("peer", k)] for k in ("cdf", "sf", "ppf")}, n_time
            else:
                t, n = med_fred, n_fred
            for k in ("cdf", "sf", "ppf"):
                row[f"{k}_ns_per_point"] = 1e9 * t[k] / n
            if pt is not None and not name.startswith("ours (method"):
                for k in ("cdf", "sf", "ppf"):
                    row[f"{k}_over_peer"] = med[("ours" if name.startswith("ours") else "peer", k)] / med[("peer", k)]
            row.update(points_timed=n, timing_repeats=repeats if n == n_time else 1)
            rows.append(row)
            for xi, ci, fi, Fi, Si in zip(s, c, f, F, S):
                detail.append(dict(beta=beta, implementation=name, s=xi, cdf=ci, cdf_ref=Fi, sf=fi, sf_ref=Si,
                                   cdf_abs_err=abs(ci - Fi), sf_rel_err=abs(fi - Si) / Si))
    print(f"\nTracy-Widom accuracy against mpmath ({DPS} digits, {len(points)} points per beta) and time per point")
    print(_common.table(rows))
    out = _common.out_dir(args)
    _common.write_csv(rows, "tracy_widom", meta, out)
    _common.write_csv(detail, "tracy_widom_points", _common.header("benchmarks/tracy_widom.py"), out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
