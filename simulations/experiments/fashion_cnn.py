r"""Experiment 3: the Fashion-MNIST CNN with MP pruning of its conv and FC layers (papers.md 1.3, cell 23).

:class:`prune.models.fashion_cnn.FashionCNN` with the notebook's layout (``layout="notebook"``: no padding,
pooling after convs 3 and 5, dropout after every conv, FC init N(0, 1/in)), trained with SGD (momentum 0.9
dropped at every pruning step, batch 128, lr 0.02 constant as the notebook's optimiser sees it, L1 = L2 = 5e-6
on all parameters) without pruning, with MP pruning, and with MP pruning plus the three bugs papers.md 1.3
names (``seed_bugs=True``; both the bug and the fix are run). Every setting and its source: PROVENANCE.md. MP pruning as in the notebook's CNN cell: BEMA
alpha 0.2, beta 0.9, MP-fit cutoff 0.6 for the convolutions (their C_out x C_in k k im2col matrices) and 0.05
for the FC layers, no rank floor; the schedule f(epoch) = max(0, 1 - epoch/T).

Scales (the full CNN is about 145 M multiply-adds per image, hours per epoch on one shared CPU core):

* default (CPU): channels [1, 16, 32, 32, 64, 64], FC [576, 256, 10], the first 6000 training images
  (all 10000 test images), 4 epochs, prune after epochs 1, 2 and 3, T = 8 (= 2E), 2 seeds;
* ``--paper``: channels [1, 32, 64, 128, 256, 512], FC [4608, 1000, 10], all 60000 images, 30 epochs,
  prune every 11 epochs, T = 300 (the notebook's values; needs a GPU);
* ``--quick``: channels [1, 8, 8, 16, 16, 16], hidden 64, 600 images, 2 epochs (tests).

Writes ``runs.csv``, ``table.csv``, ``layers.csv`` (every pruning step of every layer: rank, edge, MP-fit
error, action), ``history.csv``, ``fashion_cnn.json`` and ``fashion_cnn.png``.
"""
from __future__ import annotations

import argparse
import time

import torch

from . import _common as C

NAME = "fashion_cnn"
DEFAULT_SEEDS = 2
#: l1l2: control without pruning; mp_l1l2: MP pruning, the seed's layout with its named bugs fixed;
#: mp_l1l2_seedbugs: the same with the bugs (Conv -> ReLU -> BN, test-time dropout, log_softmax over the batch)
RULES = ("l1l2", "mp_l1l2", "mp_l1l2_seedbugs")
SCALES = {
    "default": dict(channels=[1, 16, 32, 32, 64, 64], hidden=256, epochs=4, prune_every=1, schedule_T=8.0,
                    n_train=6000, n_test=None),
    "paper": dict(channels=[1, 32, 64, 128, 256, 512], hidden=1000, epochs=30, prune_every=11, schedule_T=300.0,
                  n_train=None, n_test=None),
    "quick": dict(channels=[1, 8, 8, 16, 16, 16], hidden=64, epochs=2, prune_every=1, schedule_T=4.0,
                  n_train=600, n_test=500),
}
#: the seed's cell 23 (PROVENANCE.md): lr 0.02 effectively constant (its ``lr = 0.96*lr`` is never passed to the
#: re-created optimiser), momentum dropped at every split, no rank floor, test batches of 128 (which matter
#: under the dim-0 softmax bug)
COMMON = dict(batch_size=128, lr=0.02, momentum=0.9, lr_decay=1.0, lr_decay_every=1, l1=5e-6, l2=5e-6,
              alpha=0.2, beta=0.9, fit_cutoff={"conv": 0.6, "linear": 0.05}, min_rank=1, carry_momentum=False,
              eval_batch_size=128)


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    from tqdm.auto import tqdm

    from prune.models.fashion_cnn import FashionCNN
    from prune.training import TrainConfig, train

    C.check_args(args, DEFAULT_SEEDS)
    torch.set_num_threads(args.threads)
    which = "quick" if args.quick else "paper" if args.paper else "default"
    scale = dict(SCALES[which], name=which, **COMMON)
    dev = C.device(args.device)
    scale["device"] = str(dev)
    out = C.out_dir(args, NAME)
    t0 = time.perf_counter()
    train_data, test_data = C.load("fashion-mnist", flatten=False, dev=dev, n_train=scale["n_train"],
                                   n_test=scale["n_test"])
    seeds = list(range(args.seeds))
    runs, hist_rows, layer_rows = [], [], []
    bar = tqdm(total=len(seeds) * len(RULES), desc=NAME, unit="run", disable=args.no_progress)
    for seed in seeds:
        for rule in RULES:
            cfg = TrainConfig(epochs=scale["epochs"], prune="mp" if rule.startswith("mp_") else "none",
                              prune_every=scale["prune_every"], schedule_T=scale["schedule_T"], seed=seed, **COMMON)
            model = FashionCNN(scale["channels"], hidden=scale["hidden"], seed=seed, layout="notebook",
                               seed_bugs=rule.endswith("seedbugs")).to(dev)
            res = train(model, train_data, test_data, cfg, checkpoint=out / "checkpoints" / f"{rule}_s{seed}.pt",
                        resume=args.resume, progress=not args.no_progress, desc=f"{rule} s{seed}", inplace=True)
            last = res.history[-1]
            runs.append(dict(rule=rule, seed=seed, test_acc=last["test_acc"], train_acc=last["train_acc"],
                             params=last["params"], nonzero=last["nonzero"], weights_stored=last["weights_stored"],
                             wall_s=res.wall_s))
            for h in res.history:
                hist_rows.append(dict(rule=rule, seed=seed, **{k: v for k, v in h.items() if k != "ranks"}))
            layer_rows += [dict(rule=rule, seed=seed, **c) for c in res.cuts]
            bar.update(1)
    bar.close()
    table = []
    for rule in RULES:
        rs = [r for r in runs if r["rule"] == rule]
        row = dict(rule=rule, seeds=len(rs))
        for key in ("test_acc", "train_acc", "params", "weights_stored"):
            row[f"{key}_mean"], row[f"{key}_std"] = C.mean_std([r[key] for r in rs])
        table.append(row)
    C.write_csv(out / "runs.csv", runs)
    C.write_csv(out / "table.csv", table)
    C.write_csv(out / "history.csv", hist_rows)
    if layer_rows:
        C.write_csv(out / "layers.csv", layer_rows)
    plot(hist_rows, layer_rows, out / f"{NAME}.png", scale)
    wall = time.perf_counter() - t0
    C.write_sidecar(out / f"{NAME}.json", cmd=C.command(NAME, argv), seeds=seeds, scale=scale, wall_s=wall,
                    extra=dict(rules=list(RULES), paper_reference="papers.md 1.3 (cell 23); no paper table exists "
                               "for this CNN (papers.md 1.6)"))
    print(format_table(table, scale))
    return dict(runs=runs, table=table, layers=layer_rows, out=str(out))


def format_table(table: list, scale: dict) -> str:
    lines = [f"Fashion-MNIST CNN channels {scale['channels']}, FC hidden {scale['hidden']}, {scale['epochs']} epochs "
             f"({scale['name']} scale, {scale['n_train'] or 60000} training images)",
             f"{'rule':10s} {'test % (mean+-std)':>20s} {'train %':>8s} {'params':>10s} {'layer weights':>14s}"]
    for r in table:
        lines.append(f"{r['rule']:10s} {100 * r['test_acc_mean']:12.2f} +- {100 * r['test_acc_std']:4.2f} "
                     f"{100 * r['train_acc_mean']:8.2f} {r['params_mean']:10.0f} {r['weights_stored_mean']:14.0f}")
    return "\n".join(lines)


def plot(hist_rows: list, layer_rows: list, path, scale: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for rule in RULES:
        rows = [h for h in hist_rows if h["rule"] == rule]
        epochs = sorted({h["epoch"] for h in rows})
        acc = np.array([[h["test_acc"] for h in rows if h["epoch"] == e] for e in epochs]) * 100
        par = np.array([[h["weights_stored"] for h in rows if h["epoch"] == e] for e in epochs])
        (line,) = axes[0].plot(epochs, acc.mean(1), marker="o", ms=3, label=rule)
        axes[0].fill_between(epochs, acc.mean(1) - acc.std(1), acc.mean(1) + acc.std(1), color=line.get_color(),
                             alpha=0.2)
        axes[1].plot(epochs, par.mean(1), marker="o", ms=3, label=rule, color=line.get_color())
    axes[0].set(xlabel="epoch", ylabel="test accuracy (%) (band: std over seeds)")
    axes[1].set(xlabel="epoch", ylabel="stored weights of conv + FC layers", title="stored layer weights")
    seeds = sorted({r["seed"] for r in layer_rows if r["rule"] == "mp_l1l2"})
    if seeds:
        s0 = [r for r in layer_rows if r["rule"] == "mp_l1l2" and r["seed"] == seeds[0]]
        names = list(dict.fromkeys(r["name"] for r in s0))
        steps = sorted({r["epoch"] for r in s0})
        width = 0.8 / max(1, len(steps))
        x = np.arange(len(names))
        # a layer left alone ("misfit" / "unchanged") keeps the rank it was cut to before: a recomposed layer's
        # SVD reports full rank (its cut values are ~1e-7), so carry the last cut rank forward
        full = {r["name"]: min(int(r["N"]), int(r["M"])) for r in s0}
        rank = dict(full)
        for j, e in enumerate(steps):
            for r in s0:
                if r["epoch"] == e and r["action"] in ("factorized", "recomposed"):
                    rank[r["name"]] = int(r["rank_after"])
            frac = [rank[n] / full[n] for n in names]
            axes[2].bar(x + j * width, frac, width, label=f"after epoch {e}")
            for xi, n in zip(x, names):
                row = next(q for q in s0 if q["name"] == n and q["epoch"] == e)
                if row["action"] == "misfit":
                    axes[2].text(xi + j * width, 0.02, "misfit", rotation=90, fontsize=6, ha="center", va="bottom")
        axes[2].set_xticks(x + width * (len(steps) - 1) / 2, [n.replace("features.", "conv").replace(".0", "")
                                                               for n in names], rotation=30, fontsize=8)
        axes[2].set(ylabel="kept rank / min(N, M)", title=f"MP pruning per layer (seed {seeds[0]}; "
                    "misfit = MP-fit error above cutoff, left alone)", ylim=(0, 1.05))
        axes[2].title.set_fontsize(9)
    n_seeds = len({h["seed"] for h in hist_rows})
    axes[0].set_title(f"Fashion-MNIST CNN: test accuracy ({n_seeds} seed{'s' if n_seeds > 1 else ''})")
    for ax in axes[:2]:
        ax.set_xticks(sorted({int(h["epoch"]) for h in hist_rows}))
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.suptitle(f"channels {scale['channels']}, hidden {scale['hidden']}, {scale['n_train'] or 60000} training images",
                 fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    return C.run_main(NAME, __doc__, DEFAULT_SEEDS, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
