"""Shared plumbing of the experiments: arguments, data, device, result files and the JSON sidecar."""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

RESULTS = Path(__file__).resolve().parents[2] / "results"


def add_arguments(p: argparse.ArgumentParser, default_seeds: int | None) -> argparse.ArgumentParser:
    """The options every experiment takes; ``default_seeds=None`` leaves the default to the experiment."""
    size = p.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="tiny run on a data subset (tests, smoke checks)")
    size.add_argument("--paper", action="store_true", help="the seed paper's scale (use a GPU)")
    p.add_argument("--seeds", type=int, default=default_seeds, help="number of seeds 0..K-1 (default: " + (str(default_seeds) if default_seeds else "the experiment's") + ")")
    p.add_argument("--out", default=None, help="output folder (default results/<experiment>/)")
    p.add_argument("--resume", action="store_true", help="continue from the checkpoints in <out>/checkpoints/")
    p.add_argument("--device", default="auto", help='"auto" (CUDA when present), "cpu" or "cuda"')
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the CPU is shared)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--scheduler", default=None, metavar="local|ADDRESS|FILE",
                   help="run independent seeded runs through simulations.parallel (local processes or a Dask "
                        "cluster); only experiments that declare PARALLEL = True accept it")
    p.add_argument("--workers", type=_positive_int, default=None, metavar="K",
                   help="worker processes of --scheduler local (alone: implies local)")
    return p


def _positive_int(text: str) -> int:
    from rmt.options import positive_int

    return positive_int(text)


def parallel_backend(args, module) -> tuple[str | None, int | None]:
    """(scheduler, workers) for ``simulations.parallel.run_tasks``; refused for an experiment whose module does not
    declare ``PARALLEL = True`` (its runs are not independent seeded tasks yet)."""
    from simulations.parallel import resolve_scheduler

    scheduler, workers = getattr(args, "scheduler", None), getattr(args, "workers", None)
    if (scheduler is not None or workers is not None) and not getattr(module, "PARALLEL", False):
        raise ValueError(f"--scheduler/--workers: {module.__name__.rsplit('.', 1)[-1]} does not run its seeds as "
                         "independent tasks yet; run it without them")
    resolve_scheduler(scheduler, workers)
    return scheduler, workers


def run_main(name: str, doc: str, default_seeds: int | None, run, argv: list[str] | None, extra=None) -> int:
    """The command line of one experiment module: parse ``argv`` (``extra(parser)`` adds options) and ``run``."""
    p = add_arguments(argparse.ArgumentParser(prog=f"python -m simulations.experiments.{name}",
                                              description=doc.splitlines()[0]), default_seeds=default_seeds)
    if extra is not None:
        extra(p)
    run(p.parse_args(argv), argv)
    return 0


def check_args(args, default_seeds: int) -> None:
    if args.seeds is None:
        args.seeds = default_seeds
    if args.seeds < 1:
        raise ValueError(f"--seeds must be >= 1, got {args.seeds}")
    if args.threads < 1:
        raise ValueError(f"--threads must be >= 1, got {args.threads}")


def out_dir(args, name: str) -> Path:
    out = Path(args.out) if args.out else RESULTS / name
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    return out


def device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name not in ("cpu", "cuda"):
        raise ValueError(f'device must be "auto", "cpu" or "cuda", got {name!r}')
    return torch.device(name)


def load(name: str, *, flatten: bool, dev: torch.device, n_train: int | None = None, n_test: int | None = None,
         normalize: bool = True):
    """(train, test) tensors of MNIST / Fashion-MNIST, normalised (mean 0.5, std 0.5) unless ``normalize`` is
    False (pixels / 255 only), the first n images."""
    from prune.data import load_idx_dataset
    from prune.training import image_tensors

    out = []
    for split, k in (("train", n_train), ("test", n_test)):
        x, y = image_tensors(*load_idx_dataset(name, split), flatten=flatten, normalize=normalize)
        if k is not None:
            x, y = x[:k], y[:k]
        out.append((x.to(dev), y.to(dev)))
    return tuple(out)


def command(name: str, argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "python -m simulations.experiments." + name + ("" if not args else " " + " ".join(args))


def write_csv(path: Path, rows: list[dict]) -> None:
    keys: list[str] = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def write_sidecar(path: Path, *, cmd: str, seeds: list[int], scale: dict, wall_s: float, extra: dict | None = None):
    meta = dict(command=cmd, seeds=seeds, scale=scale, wall_s=round(wall_s, 1),
                finished_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                versions=dict(python=platform.python_version(), torch=torch.__version__, numpy=np.__version__),
                torch_threads=torch.get_num_threads(), device=str(scale.get("device", "cpu")),
                data_dir=os.environ.get("RMT_DATA_DIR", ""), platform=platform.platform())
    if extra:
        meta.update(extra)
    path.write_text(json.dumps(meta, indent=2, default=str))


def mean_std(values) -> tuple[float, float]:
    v = np.asarray(values, dtype=float)
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else 0.0
