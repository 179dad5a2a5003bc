r"""Experiment 1: accuracy of rank-k truncation of the first layer of an MNIST [784, 1000, 10] net (papers.md 1.4).

Train FCNet([784, 1000, 10]) on MNIST (the precursor notebook's setting: 10 epochs, lr 0.08; momentum is not
recorded there, we use plain SGD, batch 128, no penalty, no pruning), then replace layer 1's matrix
W = U S V^T by :math:`W_k = U_k S_k V_k^T` for k = 0, 5, ..., 100 and 150, 200, 300, 400, 500, 784 (k = 0: only the bias is left) and measure
test accuracy. The BEMA-predicted rank is the number of singular values above the edge
:math:`s_+ = \sqrt{n \lambda_+}` (BEMA with alpha 0.25, beta 0.1, papers.md 0.2), exact spike count (no
off-by-one). The precursor's table (papers.md 1.4: dense 98.29 %, predicted rank 56, MP-fit error 0.0102)
is written beside.

``--paper`` trains 10 epochs as the default does (the precursor's scale is already CPU-sized) but with 5 seeds
by default; ``--quick`` trains 1 epoch on 2000 images.
"""
from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from . import _common as C

NAME = "rank_truncation"
DEFAULT_SEEDS = 3
#: papers.md 1.4 (precursor 2303.08986 notebook): k -> test accuracy %
PAPER = {0: 8.92, 5: 54.59, 10: 75.75, 15: 84.64, 20: 90.71, 25: 95.45, 30: 97.29, 35: 97.73, 40: 98.02,
         45: 98.26, 50: 98.21, 55: 98.22, 60: 98.23, 95: 98.32}
PAPER_DENSE, PAPER_RANK, PAPER_FIT = 98.29, 56, 0.0102
SCALES = {
    "default": dict(sizes=[784, 1000, 10], epochs=10, lr=0.08, momentum=0.0, n_train=None, n_test=None),
    "paper": dict(sizes=[784, 1000, 10], epochs=10, lr=0.08, momentum=0.0, n_train=None, n_test=None),
    "quick": dict(sizes=[784, 1000, 10], epochs=1, lr=0.08, momentum=0.0, n_train=2000, n_test=1000),
}
KS = list(range(0, 101, 5)) + [150, 200, 300, 400, 500, 784]
ALPHA, BETA = 0.25, 0.1


def truncation_curve(model, test_data, ks, layer: str = "layers.0") -> dict:
    """{k: test accuracy} with ``layer``'s matrix replaced by its rank-k truncation (one SVD)."""
    from prune.layers import set_submodule, with_matrix
    from prune.svd import layer_svd
    from prune.training import evaluate

    mod = model.get_submodule(layer)
    svd = layer_svd(mod)
    out = {}
    for k in ks:
        k = min(int(k), svd.rank)
        W = (svd.U[:, :k] * svd.s[:k]) @ svd.Vh[:k]
        m = copy.deepcopy(model)
        set_submodule(m, layer, with_matrix(mod, W.to(mod.weight.dtype)))
        out[k] = evaluate(m, *test_data)[1]
    return out


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    from tqdm.auto import tqdm

    from prune.models.fc import FCNet
    from prune.svd import mp_truncate
    from prune.training import TrainConfig, evaluate, train

    C.check_args(args, DEFAULT_SEEDS)
    torch.set_num_threads(args.threads)
    which = "quick" if args.quick else "paper" if args.paper else "default"
    scale = dict(SCALES[which], name=which, alpha=ALPHA, beta=BETA, batch_size=128, ks=KS)
    dev = C.device(args.device)
    scale["device"] = str(dev)
    out = C.out_dir(args, NAME)
    t0 = time.perf_counter()
    train_data, test_data = C.load("mnist", flatten=True, dev=dev, n_train=scale["n_train"], n_test=scale["n_test"])
    seeds = list(range(args.seeds))
    rows, fits = [], []
    for seed in tqdm(seeds, desc=NAME, unit="seed", disable=args.no_progress):
        cfg = TrainConfig(epochs=scale["epochs"], lr=scale["lr"], momentum=scale["momentum"], lr_decay=1.0,
                          batch_size=128, seed=seed)
        res = train(FCNet(scale["sizes"], seed=seed).to(dev), train_data, test_data, cfg,
                    checkpoint=out / "checkpoints" / f"mnist_784_1000_10_s{seed}.pt", resume=args.resume,
                    progress=not args.no_progress, desc=f"train s{seed}", inplace=True)
        model = res.model
        dense = evaluate(model, *test_data)[1]
        _, cuts = mp_truncate(model, bulk_keep=0.0, alpha=ALPHA, beta=BETA, layers=["layers.0"])
        k_bema = cuts[0].n_spikes
        curve = truncation_curve(model, test_data, sorted(set(KS) | {k_bema}))
        fits.append(dict(seed=seed, dense_test_acc=dense, bema_rank=k_bema, sv_edge=cuts[0].sv_edge,
                         mp_fit_error=cuts[0].mp_fit_error, acc_at_bema_rank=curve[k_bema], train_wall_s=res.wall_s))
        for k, acc in curve.items():
            rows.append(dict(seed=seed, k=k, test_acc=acc, is_bema_rank=k == k_bema))
    table = []
    for k in sorted({r["k"] for r in rows if r["k"] in KS}):
        accs = [r["test_acc"] for r in rows if r["k"] == k]
        m, s = C.mean_std(accs)
        table.append(dict(k=k, test_acc_mean=m, test_acc_std=s, seeds=len(accs), paper_test_pct=PAPER.get(k, "")))
    dm, ds = C.mean_std([f["dense_test_acc"] for f in fits])
    table.append(dict(k="dense", test_acc_mean=dm, test_acc_std=ds, seeds=len(fits), paper_test_pct=PAPER_DENSE))
    C.write_csv(out / "curve.csv", rows)
    C.write_csv(out / "table.csv", table)
    C.write_csv(out / "bema.csv", fits)
    plot(table, fits, out / f"{NAME}.png")
    wall = time.perf_counter() - t0
    C.write_sidecar(out / f"{NAME}.json", cmd=C.command(NAME, argv), seeds=seeds, scale=scale, wall_s=wall,
                    extra=dict(paper_reference="papers.md 1.4", paper_bema_rank=PAPER_RANK,
                               paper_mp_fit_error=PAPER_FIT, paper_dense_pct=PAPER_DENSE))
    print(format_table(table, fits))
    return dict(rows=rows, table=table, fits=fits, out=str(out))


def format_table(table: list, fits: list) -> str:
    lines = ["k      test % (mean+-std)   paper %"]
    for r in table:
        lines.append(f"{r['k']!s:6s} {100 * r['test_acc_mean']:8.2f} +- {100 * r['test_acc_std']:5.2f}   "
                     f"{r['paper_test_pct']!s}")
    for f in fits:
        lines.append(f"seed {f['seed']}: BEMA rank {f['bema_rank']} (paper {PAPER_RANK}), MP-fit error "
                     f"{f['mp_fit_error']:.4f} (paper {PAPER_FIT}), acc at BEMA rank {100 * f['acc_at_bema_rank']:.2f} %, "
                     f"dense {100 * f['dense_test_acc']:.2f} %")
    return "\n".join(lines)


def plot(table: list, fits: list, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in table if r["k"] != "dense"]
    k = np.array([r["k"] for r in rows])
    m = np.array([r["test_acc_mean"] for r in rows]) * 100
    s = np.array([r["test_acc_std"] for r in rows]) * 100
    fig, ax = plt.subplots(figsize=(10, 5))
    ax.errorbar(k, m, yerr=s, marker="o", ms=4, capsize=3, label=f"this run (mean +- std, {len(fits)} seeds)")
    pk = sorted(PAPER)
    ax.plot(pk, [PAPER[x] for x in pk], "s--", ms=4, color="gray", label="precursor notebook (papers.md 1.4)")
    for i, f in enumerate(fits):
        ax.axvline(f["bema_rank"], color="C3", alpha=0.6, lw=1, label="BEMA rank (each seed)" if i == 0 else None)
    ax.axvline(PAPER_RANK, color="gray", ls=":", label=f"paper's BEMA rank {PAPER_RANK}")
    dense = table[-1]["test_acc_mean"] * 100
    ax.axhline(dense, color="C0", ls=":", lw=1, label=f"dense (rank 784): {dense:.2f} %")
    ax.set_xscale("symlog", linthresh=20, linscale=1.5)
    ax.set_xlim(0, 800)
    ax.set_xticks([0, 5, 10, 15, 20, 40, 60, 100, 200, 400, 784], ["0", "5", "10", "15", "20", "40", "60", "100",
                                                                   "200", "400", "784"])
    ax.set(xlabel="rank k kept in layer 1 (784 -> 1000; linear below 20, log above)", ylabel="MNIST test accuracy (%)",
           title="Rank-k truncation of layer 1 of an MNIST [784, 1000, 10] net", ylim=(0, 100))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    ins = ax.inset_axes([0.45, 0.08, 0.52, 0.45])
    sel = (k >= 15) & (k <= 100)
    ins.errorbar(k[sel], m[sel], yerr=s[sel], marker="o", ms=3, capsize=2)
    ins.plot([x for x in pk if x >= 15], [PAPER[x] for x in pk if x >= 15], "s--", ms=3, color="gray")
    for f in fits:
        ins.axvline(f["bema_rank"], color="C3", alpha=0.6, lw=1)
    ins.set_xlim(10, 102)
    ins.set_title("10 <= k <= 100 (linear zoom)", fontsize=8)
    ins.tick_params(labelsize=7)
    ins.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    return C.run_main(NAME, __doc__, DEFAULT_SEEDS, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
