"""``rmt verify``: the core self-checks and the theorem checks, as a table."""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from .. import options as opt


def _format_table(records) -> str:
    rows = [("check", "regime", "bound", "measured", "held", "trials", "details")]
    for r in records:
        held = "yes" if r.held else ("NO" if r.regime == "within" else "no")
        rows.append((r.name, r.regime, f"{r.bound:.3g}", f"{r.measured:.3g}", held, str(r.trials), r.details))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for k, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(row[:-1], widths)) + "  " + row[-1])
        if k == 0:
            lines.append("-" * (sum(widths) + 2 * len(widths) + len("details")))
    return "\n".join(lines)


def add_parallel_arguments(p: argparse.ArgumentParser) -> None:
    """``--scheduler`` and ``--workers`` (``simulations.parallel``), shared by verify, experiment and figures."""
    p.add_argument("--scheduler", default=None, metavar="local|ADDRESS|FILE",
                   help="run the independent tasks on 'local' worker processes, on the Dask cluster at ADDRESS "
                        "(tcp://HOST:PORT) or named by a scheduler FILE (default: serially in this process); "
                        "needs the 'distributed' extra")
    p.add_argument("--workers", type=opt.positive_int, default=None, metavar="K",
                   help="worker processes of --scheduler local (alone: implies local; default 2)")


def cmd_verify(args: argparse.Namespace) -> int:
    from simulations import run_checks
    from simulations.parallel import resolve_scheduler

    if args.scaling:
        from simulations.scaling import cmd_scaling

        return cmd_scaling(args)
    resolve_scheduler(args.scheduler, args.workers)  # a bad --scheduler fails before any work
    if args.json:
        from rmt.paths import check_outputs

        if not Path(args.json).expanduser().parent.is_dir():
            raise ValueError(f"--json {args.json!r}: directory {Path(args.json).parent} does not exist")
        check_outputs({"--json": args.json})
    if args.device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"--device must be auto, cpu or cuda, got {args.device!r}")
    t0 = time.perf_counter()
    if args.model is not None:
        return _verify_model(args, t0)
    quick, progress = not args.full, not args.no_progress
    records = run_checks(quick=quick, seed=args.seed, device=args.device, progress=progress, core=True,
                         theorems=not args.core_only, scheduler=args.scheduler, workers=args.workers,
                         cache=args.cache)
    print(_format_table(records))
    failed = [r.name for r in records if r.regime == "within" and not r.held]
    outside = [r for r in records if r.regime == "outside"]
    print(f"\n{len(records) - len(failed) - len(outside)} held, {len(failed)} failed, {len(outside)} run outside "
          f"their hypotheses (reported, not required) in {time.perf_counter() - t0:.1f} s"
          f" ({'full' if args.full else 'quick'} sizes, seed {args.seed}, {_backend(args)})")
    for r in records:
        print(f"  {r.name}: {r.statement}")
    if args.json:
        from prune.io import atomic_write_text

        atomic_write_text(json.dumps([r.as_dict() for r in records], indent=2), args.json)
        args.written = [*getattr(args, "written", []), args.json]
        print(f"records written to {args.json}")
    return 1 if failed else 0


def _verify_model(args: argparse.Namespace, t0: float) -> int:
    """``--model``: the theorems' hypotheses and conclusions on a trained model (simulations.real_checks)."""
    from simulations.real_checks import records_table, verify_model

    if args.out and Path(args.out).exists() and not Path(args.out).is_dir():
        raise ValueError(f"--out {args.out!r} is an existing file; name a directory")
    rep = verify_model(args.model, limit=args.limit, draws=args.draws, seed=args.seed, out=args.out,
                       progress=not args.no_progress)
    print(records_table(rep.records))
    held = sum(r.held for r in rep.records)
    print(f"\n{args.model}: {held} of {len(rep.records)} records held (regime real: reported, not required) in "
          f"{time.perf_counter() - t0:.1f} s ({rep.summary['inputs']} {rep.dataset} test inputs, seed {args.seed})")
    if args.json:
        from prune.io import atomic_write_text

        atomic_write_text(json.dumps([r.as_dict() for r in rep.records], indent=2), args.json)
        args.written = [*getattr(args, "written", []), args.json]
        print(f"records written to {args.json}")
    if args.out:
        print(f"report, records CSV and figure written to {args.out}")
    return 0


def _backend(args) -> str:
    from simulations.parallel import resolve_scheduler

    kind, target = resolve_scheduler(args.scheduler, args.workers)
    return {"serial": "serial", "local": f"{target} local worker processes"}.get(kind, f"Dask cluster {target}")


def register(sub) -> None:
    v = sub.add_parser("verify", help="run the core self-checks and the theorem checks; print a table")
    size = v.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes (the default)")
    size.add_argument("--full", action="store_true", help="paper-scale sizes")
    v.add_argument("--seed", type=opt.seed, default=0, help="seed of every Monte-Carlo check (default 0)")
    v.add_argument("--json", metavar="PATH", type=opt.path, help="also write the records as a JSON list")
    v.add_argument("--no-progress", action="store_true", help="no progress bar")
    v.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help='"auto" (CUDA when present), "cpu" or "cuda"')
    v.add_argument("--core-only", action="store_true", help="only the self-checks of the theory core")
    v.add_argument("--model", metavar="MODEL", help="check the theorems' hypotheses and conclusions on this trained "
                   "model (any MODEL form: registry name, file.py:Name, pruned file, ...) and its real test data")
    v.add_argument("--limit", type=opt.positive_int, default=1000, help="--model: test inputs used (default 1000)")
    v.add_argument("--draws", type=opt.positive_int, default=200, help="--model: null draws per test (default 200)")
    v.add_argument("--scaling", action="store_true",
                   help="instead of the checks: convergence in N of the key lemma, BEMA's sigma2, the BBP "
                        "predictions and the entry-wise threshold; CSV, JSON and PNG in --out")
    v.add_argument("--out", default=None, type=opt.path, metavar="DIR",
                   help="--model: write JSON, records CSV and figure here; --scaling: output folder (default "
                        "results/scaling/)")
    v.add_argument("--cache", default=None, type=opt.path, metavar="DIR",
                   help="keep each finished task's result in DIR; a rerun with the same DIR resumes")
    add_parallel_arguments(v)
    v.set_defaults(func=cmd_verify)
