"""Reliability benchmark: crash count per public function under a hypothesis-driven fuzz.

Runs the targets of ``tests/test_fuzz_api.py`` (``TARGETS``: MarchenkoPastur, TracyWidom, bema, mp_fit_error,
esd, fit_spectrum, analyze, mp_truncate, rank_truncate, energy_truncate, count_parameters; random shapes,
dtypes, NaN/Inf, zero and rank-one matrices, huge aspect ratios, empty and NaN models, out-of-range options)
with many more examples than the test, derandomized (the same examples every run), and counts per function:
calls that succeeded, clean ``ValueError``/``TypeError`` refusals, and crashes (any other exception), with the
distinct crash messages. Goal: zero crashes.

    python benchmarks/fuzz.py                 # 300 examples per function
    python benchmarks/fuzz.py --quick         # 30 examples per function
    python benchmarks/fuzz.py --examples 2000
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy / torch load

import argparse
import sys
import time
from collections import Counter

from hypothesis import HealthCheck, given, settings

sys.path.insert(0, str(_common.REPO / "tests"))
from test_fuzz_api import TARGETS, outcome  # noqa: E402


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--examples", type=int, default=None, help="examples per function (default 300; quick 30)")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/fuzz.py")
    _common.print_header(meta)
    n = args.examples or (30 if args.quick else 300)
    rows, crashes = [], []
    for name, (strategy, call) in TARGETS.items():
        counts: Counter = Counter()

        def make_run(name=name, call=call, counts=counts):
            def run(example):
                res = outcome(call, example)
                counts[res.split(":")[0]] += 1
                if res.startswith("crash"):
                    crashes.append((name, res, repr(example)[:200]))
            return run

        run = make_run()

        t0 = time.perf_counter()
        settings(max_examples=n, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))(given(strategy)(run))()
        rows.append(dict(function=name, examples=sum(counts.values()), ok=counts["ok"], clean_error=counts["clean"],
                         crashes=counts["crash"], seconds=time.perf_counter() - t0))
        print(f"# {name}: {dict(counts)}", flush=True)
    print(f"\nFuzz of the public API ({n} examples per function, derandomized): crashes = exceptions other than "
          "ValueError/TypeError")
    print(_common.table(rows))
    for name, res, ex in sorted(set(crashes))[:40]:
        print(f"CRASH {name}: {res}\n    on {ex}")
    _common.write_csv(rows, "fuzz", meta, _common.out_dir(args))
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
