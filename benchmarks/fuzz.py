"""Reliability benchmark: crash count per public function, per command-line grammar and per corrupted file kind
under a hypothesis-driven fuzz.

Runs the targets of ``tests/test_fuzz_api.py`` (``TARGETS``: MarchenkoPastur, TracyWidom, bema, mp_fit_error,
esd, fit_spectrum, analyze, mp_truncate, rank_truncate, energy_truncate, count_parameters; random shapes,
dtypes, NaN/Inf, zero and rank-one matrices, huge aspect ratios, empty and NaN models, out-of-range options)
with many more examples than the test, derandomized (the same examples every run), and counts per function:
calls that succeeded, clean ``ValueError``/``TypeError`` refusals, and crashes (any other exception), with the
distinct crash messages. Goal: zero crashes.

The command line and its files (``tests/test_fuzz_cli.py``, ``CLI_TARGETS``): ``rmt`` called in-process with
argv drawn from the options' grammar, and with real files corrupted (a saved pruned model, the MNIST CNN
checkpoint, the MNIST test files), and the data loaders alone on corrupted MNIST / CIFAR files
(``tests/test_data_hostile.py``, ``FILE_TARGETS``); "clean" is exit status 2 (DataFileError for the loaders) with one line on stderr, "ok" exit 0, a crash
anything else (an exception escaping ``main``, a traceback on stderr, another exit status). Needs
``RMT_DATA_DIR`` / ``RMT_MODELS_DIR`` (the shared data and models).

    python benchmarks/fuzz.py                 # 300 examples per API function, 300 per CLI/file target
    python benchmarks/fuzz.py --quick         # 30 examples each
    python benchmarks/fuzz.py --examples 2000 --cli-examples 1000
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
from test_fuzz_cli import CLI_TARGETS, cli_outcome  # noqa: E402
from test_data_hostile import FILE_TARGETS  # noqa: E402


def file_outcome(call, example) -> str:
    """The data loaders on a corrupted real file: "ok", "clean" (DataFileError) or "crash: ..."."""
    try:
        res = call(example)
    except Exception as exc:  # noqa: BLE001 - anything but DataFileError is a crash
        return f"crash: {type(exc).__name__}: {exc}"[:300]
    return "clean" if res == "DataFileError" else "ok"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--examples", type=int, default=None, help="examples per function (default 300; quick 30)")
    ap.add_argument("--cli-examples", type=int, default=None,
                    help="examples per command-line / file target (default: --examples)")
    ap.add_argument("--only", choices=("api", "cli"), default=None, help="run only the API or only the CLI/file fuzz")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/fuzz.py")
    _common.print_header(meta)
    n = args.examples or (30 if args.quick else 300)
    n_cli = args.cli_examples or n
    rows, crashes = [], []
    targets = [] if args.only == "cli" else [("api", name, s, c, outcome, n) for name, (s, c) in TARGETS.items()]
    if args.only != "api":
        targets += [("cli" if name.startswith("cli") else "file", name, s, c, cli_outcome, n_cli)
                    for name, (s, c) in CLI_TARGETS.items()]
        targets += [("file", f"loader {name}", s, c, file_outcome, n_cli) for name, (s, c) in FILE_TARGETS.items()]
    for category, name, strategy, call, judge, n in targets:
        counts: Counter = Counter()

        def make_run(name=name, call=call, counts=counts, judge=judge):
            def run(example):
                res = judge(call, example)
                counts[res.split(":")[0]] += 1
                if res.startswith("crash"):
                    crashes.append((name, res, repr(example)[:200]))
            return run

        run = make_run()

        t0 = time.perf_counter()
        settings(max_examples=n, deadline=None, derandomize=True, database=None,
                 suppress_health_check=list(HealthCheck))(given(strategy)(run))()
        rows.append(dict(category=category, target=name, examples=sum(counts.values()), ok=counts["ok"], clean_error=counts["clean"],
                         crashes=counts["crash"], seconds=time.perf_counter() - t0))
        print(f"# {name}: {dict(counts)}", flush=True)
    print("\nFuzz of the public API, the command line and its files (derandomized): crashes = exceptions other "
          "than ValueError/TypeError (API), anything but exit 0 or a one-line exit 2 (CLI, files)")
    for cat in ("api", "cli", "file"):
        sub = [r for r in rows if r["category"] == cat]
        if sub:
            rows.append(dict(category=cat, target="(total)", examples=sum(r["examples"] for r in sub),
                             ok=sum(r["ok"] for r in sub), clean_error=sum(r["clean_error"] for r in sub),
                             crashes=sum(r["crashes"] for r in sub), seconds=sum(r["seconds"] for r in sub)))
    print(_common.table(rows))
    for name, res, ex in sorted(set(crashes))[:40]:
        print(f"CRASH {name}: {res}\n    on {ex}")
    _common.write_csv(rows, "fuzz", meta, _common.out_dir(args))
    return 1 if crashes else 0


if __name__ == "__main__":
    raise SystemExit(main())
