"""``rmt figures``: regenerate the seed papers' figures and tables (``paper_figures``), a gallery, and the
comparison of the paper's numbers with ours."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

from .. import options as opt
from .verify import add_parallel_arguments


def cmd_figures(args: argparse.Namespace) -> int:
    from paper_figures.registry import FIGURES, FigureContext, comparison_table, figure_module, run_figures

    if args.list:
        for name in FIGURES:
            mod = figure_module(name)
            print(f"{name:34s} {mod.TITLE}  [{mod.SOURCE}]")
        return 0
    from simulations.parallel import defaults, resolve_scheduler

    resolve_scheduler(args.scheduler, args.workers)  # a bad --scheduler fails before any figure
    ctx = FigureContext(out=Path(args.out), quick=not args.full, pdf=args.pdf, recompute=args.recompute,
                        seed=args.seed, device=args.device, progress=not args.no_progress)
    t0 = time.perf_counter()
    with defaults(args.scheduler, args.workers):  # figures that map seeded tasks use this backend
        sides = run_figures(args.names or None, ctx, reuse_existing=args.compare)  # unknown name: ValueError, exit 2
    failed = [s["name"] for s in sides if "error" in s]
    print(f"\n{len(sides) - len(failed)} figure(s) written to {ctx.out}/ ({ctx.mode} sizes) in "
          f"{time.perf_counter() - t0:.1f} s; gallery: {Path(ctx.out) / 'gallery.md'}")
    if failed:
        print(f"FAILED: {', '.join(failed)}")
    if args.compare:
        print("\nThe paper's numbers against ours (difference = ours - paper):\n")
        print(comparison_table(sides))
    return 1 if failed else 0


def register(sub) -> None:
    f = sub.add_parser("figures", help="regenerate the seed papers' figures and tables, a gallery and a comparison",
                       description="Regenerate every figure (or the NAMEd ones): data CSV, PNG (PDF), a JSON "
                                   "sidecar, gallery.md and comparison.csv in --out.")
    f.add_argument("names", nargs="*", metavar="NAME", help="figures to make (default: all; see --list)")
    size = f.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="small sizes, a few minutes on 2 CPU cores (the default)")
    size.add_argument("--full", action="store_true", help="the paper's sizes (CUDA when present)")
    f.add_argument("--out", default="figures", type=opt.path, help="output folder (default ./figures)")
    f.add_argument("--pdf", action="store_true", help="also write each figure as PDF")
    f.add_argument("--recompute", action="store_true",
                   help="rerun the long experiments instead of reading their cached results")
    f.add_argument("--compare", action="store_true",
                   help="print the paper's numbers against ours; figures already in --out (same mode) are read, "
                        "not remade")
    f.add_argument("--list", action="store_true", help="list the figures and exit")
    f.add_argument("--seed", type=opt.seed, default=0, help="seed of every random draw (default 0)")
    f.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"), help='"auto" (CUDA when present), "cpu" or "cuda"')
    f.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_parallel_arguments(f)
    f.set_defaults(func=cmd_figures)
