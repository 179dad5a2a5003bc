r"""Experiment 4: accuracy against parameter count after magnitude-thresholding the nets trained in exp 2.

For every seed's final model of :mod:`.fc_table` (read from its checkpoints; nothing is retrained) and each
sparsity a on a grid, global magnitude pruning (:func:`prune.methods.magnitude.magnitude_prune`, the a-fraction of
smallest |w| over all layer weights, factorised layers' two factors included) is applied and the test
accuracy and the model's non-zero parameter count (:func:`prune.params.count_nonzero`) are measured. The
MP-trained nets (``mp``, ``mp_l1l2``) are compared with the ones trained without pruning (``none``,
``l1l2``) at equal non-zero counts. papers.md 2.4a (successor figure): after MP training, magnitude
thresholding keeps about 90 % test accuracy down to about 55 % of the parameters and >= 88 % at about 33 %.

Options: ``--source DIR`` (default ``results/fc_table``) holds exp 2's ``fc_table.json`` and checkpoints;
``--seeds K`` uses seeds 0..K-1 of it; ``--quick`` a coarse grid. ``--paper`` has no separate meaning here
(the scale is whatever exp 2 ran).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from . import _common as C

NAME = "magnitude_after_mp"
DEFAULT_SEEDS = 5
RULES = ("none", "l1l2", "mp", "mp_l1l2")
GRID = [0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.97, 0.98, 0.99]
QUICK_GRID = [0.0, 0.5, 0.9]


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    from tqdm.auto import tqdm

    from prune.methods.magnitude import magnitude_prune
    from prune.models.fc import FCNet
    from prune.params import count_nonzero, count_parameters
    from prune.training import evaluate, load_trained

    C.check_args(args, DEFAULT_SEEDS)
    torch.set_num_threads(args.threads)
    source = Path(args.source) if args.source else C.RESULTS / "fc_table"
    meta_path = source / "fc_table.json"
    if not meta_path.is_file():
        raise FileNotFoundError(f"{meta_path} not found: run experiment fc_table first (or pass --source)")
    src = json.loads(meta_path.read_text())
    sizes = src["scale"]["sizes"]
    dev = C.device(args.device)
    out = C.out_dir(args, NAME)
    t0 = time.perf_counter()
    _, test_data = C.load("fashion-mnist", flatten=True, dev=dev, n_test=src["scale"].get("n_test"))
    grid = QUICK_GRID if args.quick else GRID
    seeds = [s for s in range(args.seeds) if s in src["seeds"]]
    if not seeds:
        raise ValueError(f"--seeds {args.seeds} selects none of the source's seeds {src['seeds']}")
    rows = []
    dense_params = None
    for rule in tqdm(RULES, desc=NAME, unit="rule", disable=args.no_progress):
        for seed in seeds:
            ckpt = source / "checkpoints" / f"{rule}_s{seed}.pt"
            if not ckpt.is_file():
                raise FileNotFoundError(f"{ckpt} not found: exp 2 did not finish this run")
            model, hist = load_trained(FCNet(sizes, seed=seed), ckpt, map_location=dev)
            dense_params = dense_params or count_parameters(FCNet(sizes, seed=seed))
            for a in grid:
                pruned, _ = magnitude_prune(model, amount=a)
                rows.append(dict(rule=rule, seed=seed, amount=a, test_acc=evaluate(pruned, *test_data)[1],
                                 nonzero=count_nonzero(pruned), stored=count_parameters(pruned),
                                 nonzero_frac_of_dense=count_nonzero(pruned) / dense_params))
    table = []
    for rule in RULES:
        for a in grid:
            rs = [r for r in rows if r["rule"] == rule and r["amount"] == a]
            m, s = C.mean_std([r["test_acc"] for r in rs])
            nz = float(np.mean([r["nonzero"] for r in rs]))
            table.append(dict(rule=rule, amount=a, test_acc_mean=m, test_acc_std=s, nonzero_mean=nz,
                              nonzero_frac_of_dense=nz / dense_params, seeds=len(rs)))
    summary = summarize(table)
    C.write_csv(out / "runs.csv", rows)
    C.write_csv(out / "table.csv", table)
    C.write_csv(out / "summary.csv", summary)
    plot(table, out / f"{NAME}.png", sizes, dense_params, len(seeds))
    wall = time.perf_counter() - t0
    C.write_sidecar(out / f"{NAME}.json", cmd=C.command(NAME, argv), seeds=seeds,
                    scale=dict(source=str(source), sizes=sizes, grid=grid, dense_params=dense_params,
                               source_scale=src["scale"], device=str(dev)), wall_s=wall,
                    extra=dict(paper_reference="papers.md 2.4a: ~90 % test accuracy down to ~55 % of the "
                               "parameters, >= 88 % at ~33 % (successor figure)"))
    print(format_table(summary))
    return dict(rows=rows, table=table, summary=summary, out=str(out))


def summarize(table: list) -> list:
    """Per rule: unpruned accuracy, and the smallest non-zero fraction of the dense count whose mean
    accuracy stays within 1 and 2 points of it."""
    out = []
    for rule in RULES:
        rs = sorted([r for r in table if r["rule"] == rule], key=lambda r: r["amount"])
        base = rs[0]["test_acc_mean"]
        row = dict(rule=rule, test_acc_unthresholded=base, nonzero_frac_unthresholded=rs[0]["nonzero_frac_of_dense"])
        for drop in (0.01, 0.02):
            ok = [r for r in rs if r["test_acc_mean"] >= base - drop]
            best = min(ok, key=lambda r: r["nonzero_frac_of_dense"])
            row[f"min_frac_within_{int(drop * 100)}pt"] = best["nonzero_frac_of_dense"]
            row[f"acc_there_{int(drop * 100)}pt"] = best["test_acc_mean"]
        out.append(row)
    return out


def format_table(summary: list) -> str:
    lines = [f"{'rule':10s} {'test % (no threshold)':>22s} {'nonzero/dense':>14s} {'min frac within 1 pt':>21s} "
             f"{'within 2 pt':>12s}"]
    for r in summary:
        lines.append(f"{r['rule']:10s} {100 * r['test_acc_unthresholded']:22.2f} {r['nonzero_frac_unthresholded']:14.3f} "
                     f"{r['min_frac_within_1pt']:21.3f} {r['min_frac_within_2pt']:12.3f}")
    return "\n".join(lines)


def plot(table: list, path, sizes, dense_params: int, n_seeds: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 5))
    for rule in RULES:
        rs = sorted([r for r in table if r["rule"] == rule], key=lambda r: r["amount"])
        x = [r["nonzero_frac_of_dense"] * 100 for r in rs]
        m = np.array([r["test_acc_mean"] for r in rs]) * 100
        s = np.array([r["test_acc_std"] for r in rs]) * 100
        ax.errorbar(x, m, yerr=s, marker="o", ms=3, capsize=2, label=rule)
    ax.set_xscale("log")
    ax.set(xlabel=f"non-zero parameters, % of the dense net's {dense_params}",
           ylabel="Fashion-MNIST test accuracy (%)",
           title=f"Magnitude thresholding after training, FC {sizes} (mean +- std, {n_seeds} seeds)")
    ax.grid(alpha=0.3, which="both")
    ax.legend(title="trained with")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    def source(p):
        p.add_argument("--source", default=None, help="folder of exp 2's results (default results/fc_table)")

    return C.run_main(NAME, __doc__, DEFAULT_SEEDS, run, argv, extra=source)


if __name__ == "__main__":
    raise SystemExit(main())
