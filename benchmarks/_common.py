"""Shared plumbing of the benchmark scripts: thread pinning, the machine / versions / command header,
repeated timings (median), a plain-text table and CSV output with a JSON sidecar.

Import this module *before* numpy / torch in a benchmark script: it pins the BLAS / OpenMP thread
count (``RMT_BENCH_THREADS``, default 1) through the environment, which only takes effect when set
before those libraries load.
"""
from __future__ import annotations

import os

THREADS = int(os.environ.get("RMT_BENCH_THREADS", "1"))
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = str(THREADS)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import csv  # noqa: E402
import datetime as _dt  # noqa: E402
import importlib.metadata as _md  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Callable, Iterable, Sequence  # noqa: E402

import torch  # noqa: E402

torch.set_num_threads(THREADS)

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / "results"
REPO = ROOT.parent

_PACKAGES = ("rmt-pruning", "numpy", "scipy", "torch", "mpmath", "weightwatcher", "tracywidom", "transformers",
             "pandas", "hypothesis")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_gib() -> float:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return math.nan


def _git_commit() -> str:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def header(script: str) -> dict:
    """Machine, load, versions, thread count, time and the exact command of this run."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    return {
        "script": script,
        "command": " ".join(shlex.quote(a) for a in ["python", *sys.argv]),
        "env": f"RMT_BENCH_THREADS={THREADS}",
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M:%S"),
        "machine": f"{_cpu_model()}, {os.cpu_count()} logical cores, {_mem_gib()} GiB RAM, {platform.system()} "
                   f"{platform.release()}",
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu only",
        "threads": THREADS,
        "load_avg_1_5_15_at_start": [round(x, 2) for x in load],
        "git": _git_commit(),
        "versions": versions(),
    }


def print_header(meta: dict) -> None:
    print(f"# {meta['script']}  ({meta['date_utc']} UTC, git {meta['git']})")
    print(f"# command: {meta['env']} {meta['command']}")
    print(f"# machine: {meta['machine']}; device: {meta['device']}; threads: {meta['threads']}; "
          f"load avg at start: {meta['load_avg_1_5_15_at_start']}")
    print("# versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items()))


def finish(meta: dict) -> dict:
    """Record the load at the end (the CPU is shared: timings are only comparable at similar load)."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (math.nan,) * 3
    meta["load_avg_1_5_15_at_end"] = [round(x, 2) for x in load]
    return meta


def timed(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> tuple[float, list[float]]:
    """Median wall time of ``fn()`` over ``repeats`` runs (after ``warmup`` untimed runs), and all times."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), times


def interleaved(fns: dict[str, Callable[[], object]], repeats: int = 5, warmup: int = 1) -> dict[str, float]:
    """Median times of several functions run round-robin, so that a change of machine load hits all alike."""
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if v == 0.0:
            return "0"
        a = abs(v)
        return f"{v:.3g}" if 1e-3 <= a < 1e5 else f"{v:.2e}"
    return str(v)


def table(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """A fixed-width plain-text table of ``rows`` (dicts)."""
    if not rows:
        return "(no rows)"
    columns = list(columns or rows[0].keys())
    cells = [[_fmt(r.get(c, "")) for c in columns] for r in rows]
    width = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    lines = ["  ".join(c.rjust(w) for c, w in zip(columns, width)),
             "  ".join("-" * w for w in width)]
    lines += ["  ".join(x.rjust(w) for x, w in zip(row, width)) for row in cells]
    return "\n".join(lines)


def markdown(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """The same table in Markdown (for benchmarks/README.md)."""
    columns = list(columns or rows[0].keys())
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(r.get(c, "")) for c in columns) + " |" for r in rows]
    return "\n".join(lines)


def write_csv(rows: Iterable[dict], name: str, meta: dict, out_dir: Path | None = None) -> Path:
    """Write ``rows`` to ``results/<name>.csv`` and the run header to ``results/<name>.meta.json``."""
    rows = list(rows)
    out_dir = Path(out_dir) if out_dir is not None else RESULTS
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / f"{name}.csv"
    columns: list[str] = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    with path.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    (out_dir / f"{name}.meta.json").write_text(json.dumps(finish(meta), indent=1) + "\n")
    print(f"# wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path} (+ .meta.json)")
    return path


def have(module: str) -> bool:
    """Whether an optional peer package imports here."""
    import importlib

    try:
        importlib.import_module(module)
        return True
    except Exception:  # noqa: BLE001 - a peer that fails to import for any reason is "not available"
        return False


def add_common_args(parser) -> None:
    parser.add_argument("--quick", action="store_true", help="a small, fast version of the benchmark (smoke run)")
    parser.add_argument("--out", default=None, help="directory for the CSV (default benchmarks/results; "
                                                     "--quick writes to benchmarks/results/quick)")


def out_dir(args) -> Path:
    if args.out:
        return Path(args.out)
    return RESULTS / "quick" if args.quick else RESULTS
