r"""Experiment 2: Fashion-MNIST fully connected nets trained with and without MP pruning and L1+L2 (papers.md 2.4a).

Six training rules per seed, all with the same data, initialisation (seeded), batch order and schedule:

* ``none``: SGD only; ``l1l2``: explicit L1 + L2 penalties; ``mp``: MP pruning during training (seed paper 1,
  Algorithm 1: every l epochs keep the singular values above the BEMA edge plus f(epoch) of the bulk,
  f = max(0, 1 - epoch/T)); ``mp_l1l2``: both (papers.md 2.4a's best row);
* baselines at MP's parameter budget, on the same footing as ``mp_l1l2`` (same penalties, pruning epochs
  and, at every pruning epoch, the same number of stored weights as that seed's ``mp_l1l2`` run):
  ``magnitude_l1l2`` (global magnitude pruning, masks frozen between steps) and ``rank_l1l2`` (every layer
  truncated to one common rank, the largest that fits the budget).

Scales: the CPU default [784, 160, 160, 160, 10], 6 epochs, prune every epoch, T = 12 (T = 2E, the
paper's ratio 200/100), lr 0.01 x 0.84 per epoch (total decay 0.35, the paper's 0.96^25 = 0.36), L1 = L2 =
1e-6, BEMA alpha 0.25, beta 0.1, every layer accepted (the seed code's GoF cutoff 1), no rank floor, the
optimiser re-created with zero momentum after each pruning step (the seed's ``optim.SGD(...)`` per split).
Every setting and its source: ``PROVENANCE.md``.
(The default is sized to the shared 2-core CPU it ran on: 30 runs in about an hour with other jobs running.)
``--paper``: [784, 3000 x 4, 500, 10], 100 epochs, lr 0.01 x 0.96 every 4 epochs, prune every 4, T = 200.
``--quick``: a 2000-image subset and a tiny net (tests).
``--scheduler local|ADDRESS|FILE`` / ``--workers K``: one task per seed through :mod:`simulations.parallel` (every
rule of a seed in order, since the baselines take its MP budget); the runs are the same numbers as serially.

Writes ``runs.csv`` (one row per run), ``table.csv`` (mean and std per rule, with papers.md 2.4a's numbers
beside), ``history.csv`` (per epoch), ``fc_table.json`` and ``fc_table.png``; checkpoints per run in
``checkpoints/<rule>_s<seed>.pt`` (exp 4 reads the final models from there).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from . import _common as C

NAME = "fc_table"
PARALLEL = True  # --scheduler/--workers: one task per seed (simulations.parallel)
DEFAULT_SEEDS = 5
RULES = ("none", "l1l2", "mp", "mp_l1l2", "magnitude_l1l2", "rank_l1l2")
#: papers.md 2.4a (paper 2 / successor, [784, 3000 x 4, 500, 10], 100 epochs): (train %, test %)
PAPER = {"none": (78.03, 71.64), "mp": (88.12, 81.22), "l1l2": (87.57, 81.70), "mp_l1l2": (99.82, 90.53)}

SCALES = {
    "default": dict(sizes=[784, 160, 160, 160, 10], epochs=6, lr=0.01, lr_decay=0.84, lr_decay_every=1,
                    prune_every=1, schedule_T=12.0, n_train=None, n_test=None),
    "paper": dict(sizes=[784, 3000, 3000, 3000, 3000, 500, 10], epochs=100, lr=0.01, lr_decay=0.96,
                  lr_decay_every=4, prune_every=4, schedule_T=200.0, n_train=None, n_test=None),
    "quick": dict(sizes=[784, 64, 64, 10], epochs=3, lr=0.01, lr_decay=0.92, lr_decay_every=1,
                  prune_every=1, schedule_T=6.0, n_train=2000, n_test=1000),
}
#: the seed's mechanics (RMT_pruning_2 notebook cells 4, 11, 18; PROVENANCE.md): SGD momentum 0.9 re-created
#: with zero momentum after every pruning step, every layer (the output layer too) pruned with no rank floor
#: (its ``Splittable.split`` has none; the floor at 10 is only in the older ``computeEigsToKeep`` path)
COMMON = dict(batch_size=128, momentum=0.9, alpha=0.25, beta=0.1, fit_cutoff=None, min_rank=1,
              carry_momentum=False)
L1 = L2 = 1e-6


def config(rule: str, scale: dict, seed: int, budget: dict | None = None):
    from prune.training import TrainConfig

    reg = rule in ("l1l2", "mp_l1l2", "magnitude_l1l2", "rank_l1l2")
    prune = {"none": "none", "l1l2": "none", "mp": "mp", "mp_l1l2": "mp", "magnitude_l1l2": "magnitude",
             "rank_l1l2": "rank"}[rule]
    keys = ("epochs", "lr", "lr_decay", "lr_decay_every", "prune_every", "schedule_T")
    return TrainConfig(**{k: scale[k] for k in keys}, **COMMON, l1=L1 if reg else 0.0, l2=L2 if reg else 0.0,
                       prune=prune, budget=budget, seed=seed)


def budget_of(history: list) -> dict:
    """{pruning epoch: stored weights} of an MP run, the budget of the baselines."""
    return {h["epoch"]: h["weights_stored"] for h in history if h["pruned"]}


def seed_runs(seed: int, scale: dict, rules: tuple, checkpoints: str, resume: bool, device: str, threads: int,
              progress: bool, data=None) -> tuple[list[dict], list[dict]]:
    """Every rule of one seed, in order (the baselines take that seed's ``mp_l1l2`` budget): (runs, history rows).

    A module-level function so that :mod:`simulations.parallel` can ship it to a worker; ``data`` (train, test)
    is loaded here when not given. The result depends only on ``seed`` and the settings, never on the backend.
    """
    from prune.models.fc import FCNet
    from prune.training import evaluate, train

    torch.set_num_threads(threads)
    dev = torch.device(device)
    if data is None:
        data = C.load("fashion-mnist", flatten=True, dev=dev, n_train=scale["n_train"], n_test=scale["n_test"])
    train_data, test_data = data
    runs, hist_rows = [], []
    budget = None
    for rule in rules:
        cfg = config(rule, scale, seed, budget=budget if rule in ("magnitude_l1l2", "rank_l1l2") else None)
        model = FCNet(scale["sizes"], seed=seed).to(dev)
        res = train(model, train_data, test_data, cfg, checkpoint=Path(checkpoints) / f"{rule}_s{seed}.pt",
                    resume=resume, progress=progress, desc=f"{rule} s{seed}", inplace=True)
        if rule == "mp_l1l2":
            budget = budget_of(res.history)
        last = res.history[-1]
        _, train_acc_eval = evaluate(res.model, *train_data)
        runs.append(dict(rule=rule, seed=seed, test_acc=last["test_acc"], train_acc=last["train_acc"],
                         train_acc_eval=train_acc_eval, params=last["params"], nonzero=last["nonzero"],
                         weights_stored=last["weights_stored"], weights_nonzero=last["weights_nonzero"],
                         best_test_acc=max(h["test_acc"] for h in res.history), wall_s=res.wall_s))
        for h in res.history:
            hist_rows.append(dict(rule=rule, seed=seed, **{k: v for k, v in h.items() if k != "ranks"},
                                  ranks=" ".join(f"{k}:{v}" for k, v in h["ranks"].items())))
    return runs, hist_rows


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    from tqdm.auto import tqdm

    C.check_args(args, DEFAULT_SEEDS)
    torch.set_num_threads(args.threads)
    which = "quick" if args.quick else "paper" if args.paper else "default"
    scale = dict(SCALES[which], name=which, **COMMON, l1=L1, l2=L2)
    width, rule_arg = getattr(args, "width", None), getattr(args, "rules", None)   # absent under `rmt experiment`
    if width is not None:          # the scale study: same depth, another width, everything else equal
        if width < 1:
            raise ValueError(f"--width must be >= 1, got {width}")
        scale["sizes"] = [scale["sizes"][0]] + [width] * (len(scale["sizes"]) - 2) + [scale["sizes"][-1]]
    rules = RULES if rule_arg is None else tuple(rule_arg.split(","))
    bad = [r for r in rules if r not in RULES]
    if bad or not rules:
        raise ValueError(f"--rules must be a comma list of {RULES}, got {rule_arg!r}")
    if any(r in ("magnitude_l1l2", "rank_l1l2") for r in rules) and "mp_l1l2" not in rules:
        raise ValueError("--rules: magnitude_l1l2 and rank_l1l2 need mp_l1l2 (its budget)")
    rules = tuple(r for r in RULES if r in rules)
    dev = C.device(args.device)
    scale["device"] = str(dev)
    out = C.out_dir(args, NAME)
    t0 = time.perf_counter()
    seeds = list(range(args.seeds))
    common = dict(scale=scale, rules=rules, checkpoints=str(out / "checkpoints"), resume=args.resume,
                  device=str(dev), threads=args.threads)
    scheduler, workers = C.parallel_backend(args, sys.modules[__name__])
    if scheduler is None and workers is None:  # today's behaviour: one process, data loaded once
        data = C.load("fashion-mnist", flatten=True, dev=dev, n_train=scale["n_train"], n_test=scale["n_test"])
        runs, hist_rows = [], []
        bar = tqdm(total=len(seeds) * len(rules), desc=NAME, unit="run", disable=args.no_progress)
        for seed in seeds:
            r, h = seed_runs(seed=seed, **common, data=data, progress=not args.no_progress)
            runs += r
            hist_rows += h
            bar.update(len(rules))
        bar.close()
    else:  # one task per seed (its rules share the MP budget), any backend; the seeds are the runs' own
        from simulations.parallel import Task, run_tasks

        tasks = [Task(f"{NAME} seed {seed}", seed_runs, dict(common, progress=False), seed) for seed in seeds]
        results = run_tasks(tasks, scheduler=scheduler, workers=workers, threads=args.threads,
                            progress=not args.no_progress, desc=NAME)
        runs = [row for r, _ in results for row in r]
        hist_rows = [row for _, h in results for row in h]
    table = []
    for rule in rules:
        rs = [r for r in runs if r["rule"] == rule]
        row = dict(rule=rule, seeds=len(rs))
        for key in ("test_acc", "train_acc", "train_acc_eval", "params", "nonzero"):
            row[f"{key}_mean"], row[f"{key}_std"] = C.mean_std([r[key] for r in rs])
        row["paper_train_pct"], row["paper_test_pct"] = PAPER.get(rule, ("", ""))
        table.append(row)
    C.write_csv(out / "runs.csv", runs)
    C.write_csv(out / "table.csv", table)
    C.write_csv(out / "history.csv", hist_rows)
    plot(hist_rows, table, out / f"{NAME}.png", scale)
    wall = time.perf_counter() - t0
    C.write_sidecar(out / f"{NAME}.json", cmd=C.command(NAME, argv), seeds=seeds, scale=scale, wall_s=wall,
                    extra=dict(rules=list(rules), paper_reference="papers.md 2.4a",
                               train_wall_s=sum(r["wall_s"] for r in runs)))
    print(format_table(table, scale))
    return dict(runs=runs, table=table, out=str(out))


def format_table(table: list, scale: dict) -> str:
    lines = [f"Fashion-MNIST FC {scale['sizes']}, {scale['epochs']} epochs ({scale['name']} scale); paper: "
             f"[784,3000x4,500,10], 100 epochs (papers.md 2.4a)",
             f"{'rule':16s} {'test % (mean+-std)':>20s} {'train %':>8s} {'params':>10s} {'nonzero':>10s} "
             f"{'paper test %':>12s}"]
    for r in table:
        lines.append(f"{r['rule']:16s} {100 * r['test_acc_mean']:12.2f} +- {100 * r['test_acc_std']:4.2f} "
                     f"{100 * r['train_acc_eval_mean']:8.2f} {r['params_mean']:10.0f} {r['nonzero_mean']:10.0f} "
                     f"{r['paper_test_pct']!s:>12s}")
    return "\n".join(lines)


def plot(hist_rows: list, table: list, path, scale: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    styles = dict(none=("o", "-"), l1l2=("s", "-"), mp=("^", "--"), mp_l1l2=("v", "--"),
                  magnitude_l1l2=("D", ":"), rank_l1l2=("P", "-."))
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    rules = [r["rule"] for r in table]
    n_rules = len(rules)
    for j, rule in enumerate(rules):
        rows = [h for h in hist_rows if h["rule"] == rule]
        epochs = np.array(sorted({h["epoch"] for h in rows}))
        acc = np.array([[h["test_acc"] for h in rows if h["epoch"] == e] for e in epochs]) * 100
        nz = np.array([[h["nonzero"] for h in rows if h["epoch"] == e] for e in epochs])
        mk, ls = styles[rule]
        dx = (j - (n_rules - 1) / 2) * 0.06
        axes[0].errorbar(epochs + dx, acc.mean(1), yerr=acc.std(1, ddof=1) if acc.shape[1] > 1 else None,
                         marker=mk, ls=ls, ms=4, capsize=2, label=rule, color=f"C{j}")
        axes[1].plot(epochs + dx, nz.mean(1), marker=mk, ls=ls, ms=4, label=rule, color=f"C{j}")
        final = acc[-1]
        axes[2].scatter(np.full(final.size, j) + np.linspace(-0.12, 0.12, final.size), final, s=14, color=f"C{j}",
                        alpha=0.7)
        axes[2].errorbar(j + 0.3, final.mean(), yerr=final.std(ddof=1) if final.size > 1 else None, marker=mk,
                         capsize=3, color=f"C{j}")
    n_seeds = table[0]["seeds"]
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%)", title=f"test accuracy, mean +- std over {n_seeds} seeds")
    axes[1].set(xlabel="epoch", ylabel="non-zero parameters (count_nonzero)",
                title="non-zero parameters (factorised layers: stored = non-zero)")
    axes[2].set_xticks(range(n_rules), rules, rotation=25, fontsize=8)
    axes[2].set(ylabel="final test accuracy (%)", title="final test accuracy: seeds (dots), mean +- std (bar)")
    for ax in axes[:2]:
        ax.set_xticks(sorted({h["epoch"] for h in hist_rows}))
        ax.legend(fontsize=8)
    for ax in axes:
        ax.grid(alpha=0.3)
    fig.suptitle(f"Fashion-MNIST FC {scale['sizes']}, {scale['epochs']} epochs, {scale['name']} scale "
                 f"(paper 2.4a: [784,3000x4,500,10], 100 epochs)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _extra(p: argparse.ArgumentParser) -> None:
    p.add_argument("--width", type=int, default=None,
                   help="hidden width W of the scale's net (same depth; the scale study), default the scale's")
    p.add_argument("--rules", default=None, help=f"comma list of rules to run (default all: {','.join(RULES)})")


def main(argv: list[str] | None = None) -> int:
    return C.run_main(NAME, __doc__, DEFAULT_SEEDS, run, argv, extra=_extra)


if __name__ == "__main__":
    raise SystemExit(main())
