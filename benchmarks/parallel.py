"""Wall time of ``rmt verify`` serially against local Dask workers (and a cluster by address), the records'
identity across the backends, and the overhead per task of the execution layer (``simulations.parallel``).

    python benchmarks/parallel.py [--mode quick|full] [--workers 2] [--address tcp://HOST:PORT] [--tasks 200]

Each backend runs ``python -m rmt verify --MODE --no-progress --json FILE [--scheduler ...]`` in a fresh process
(wall time includes the interpreter and, for local workers, starting the cluster). The records are compared
field by field, exactly (no record holds a wall time). The overhead per task is
the wall time of ``--tasks`` no-op tasks divided by their number, serially and on a local cluster (the cluster's
start measured apart). Results: ``benchmarks/results/parallel.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's packages, also in the workers


def noop(seed: int) -> int:
    """A task that does nothing (pickled by value: this file runs as __main__)."""
    return seed


def _masked(records: list[dict]) -> list[dict]:
    return [dict(r) for r in records]  # records hold no wall times: compared exactly


def run_verify(mode: str, extra: list[str], tmp: Path, tag: str) -> dict:
    out = tmp / f"{tag}.json"
    cmd = [sys.executable, "-m", "rmt", "verify", f"--{mode}", "--no-progress", "--json", str(out), *extra]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    summary = next((line for line in proc.stdout.splitlines() if " held, " in line), proc.stderr[-400:])
    print(f"{tag:10s} {wall:7.1f} s  rc={proc.returncode}  {summary.strip()}", flush=True)
    records = json.loads(out.read_text()) if out.is_file() else None
    return dict(backend=tag, command=" ".join(cmd[1:]).replace(str(out), "RECORDS.json"), wall_s=round(wall, 2),
                returncode=proc.returncode, records=records)


def task_overhead(n: int, workers: int) -> dict:
    from distributed import Client, LocalCluster

    from simulations.parallel import run_tasks, seeded_tasks

    tasks = seeded_tasks(0, [(f"noop#{i}", noop, {}) for i in range(n)])
    t0 = time.perf_counter()
    run_tasks(tasks, progress=False)
    serial = (time.perf_counter() - t0) / n
    t0 = time.perf_counter()
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                      silence_logs=50) as cluster, Client(cluster) as client:
        start = time.perf_counter() - t0
        run_tasks(tasks[:workers], client=client, progress=False)  # warm the workers (imports)
        t1 = time.perf_counter()
        run_tasks(tasks, client=client, progress=False)
        dask = (time.perf_counter() - t1) / n
    return dict(tasks=n, serial_ms_per_task=round(1e3 * serial, 3), local_ms_per_task=round(1e3 * dask, 3),
                local_cluster_start_s=round(start, 2), workers=workers)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mode", choices=("quick", "full"), default="quick")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--address", default=None, help="also run on this Dask cluster (tcp://HOST:PORT)")
    p.add_argument("--tasks", type=int, default=200, help="no-op tasks for the overhead per task")
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "parallel.json"))
    args = p.parse_args(argv)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        runs.append(run_verify(args.mode, [], tmp, "serial"))
        runs.append(run_verify(args.mode, ["--scheduler", "local", "--workers", str(args.workers)], tmp,
                               f"local-{args.workers}"))
        if args.address:
            runs.append(run_verify(args.mode, ["--scheduler", args.address], tmp, "address"))
    ref = _masked(runs[0]["records"]) if runs[0]["records"] else None
    for r in runs:
        r["identical_to_serial"] = bool(r["records"] is not None and _masked(r["records"]) == ref)
        r["differing_records"] = [] if r["identical_to_serial"] or r["records"] is None or ref is None else [
            a["name"] for a, b in zip(_masked(r["records"]), ref) if a != b]
        r["n_records"] = len(r["records"] or [])
        r["held"] = sum(1 for x in (r["records"] or []) if x["held"])
        del r["records"]
    overhead = task_overhead(args.tasks, args.workers)
    res = dict(mode=args.mode, runs=runs, speedup_local=round(runs[0]["wall_s"] / runs[1]["wall_s"], 3),
               overhead=overhead, cpu_count=os.cpu_count(), load_average_at_end=os.getloadavg(),
               platform=platform.platform(), python=platform.python_version(),
               finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               command="python benchmarks/parallel.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2))
    print(json.dumps({k: res[k] for k in ("speedup_local", "overhead", "load_average_at_end")}, indent=2))
    print(f"identical records: {[(r['backend'], r['identical_to_serial']) for r in runs]}; written to {args.out}")
    return 0 if all(r["identical_to_serial"] for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
