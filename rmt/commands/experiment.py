"""``rmt experiment NAME``: run one of the seed papers' training experiments (``simulations.experiments``)."""
from __future__ import annotations

import argparse
import importlib
import sys


def cmd_experiment(args: argparse.Namespace) -> int:
    from simulations.experiments._common import parallel_backend

    module = importlib.import_module(f"simulations.experiments.{args.name}")
    parallel_backend(args, module)  # --scheduler/--workers: checked before any training
    argv = sys.argv[sys.argv.index(args.name) + 1:] if args.name in sys.argv else []
    module.run(args, argv)
    return 0


def register(sub) -> None:
    from simulations.experiments import EXPERIMENTS
    from simulations.experiments._common import add_arguments

    e = sub.add_parser("experiment", help="run a training experiment (rank_truncation, fc_table, fashion_cnn, "
                                          "magnitude_after_mp); results in results/NAME/")
    e.add_argument("name", choices=EXPERIMENTS, help="the experiment")
    add_arguments(e, default_seeds=None)
    e.add_argument("--source", default=None, help="magnitude_after_mp only: folder of fc_table's results")
    e.set_defaults(func=cmd_experiment)
