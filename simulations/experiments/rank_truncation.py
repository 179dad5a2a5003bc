r"""Experiment 1: accuracy of rank-k truncation of the first layer of an MNIST [784, 1000, 10] net (papers.md 1.4).

The precursor notebook's set-up (``jtj5311/NN-RMT-SVD``, ``RMT-SVD-NN.ipynb`` cells 3, 5, 10, 12, 16; every
setting and its source in ``PROVENANCE.md``): MNIST pixels / 255 (``ToTensor()`` only, no mean/std),
``FCNet([784, 1000, 10], init="torch", output_relu=True)`` (PyTorch's default uniform init of weights and
biases drawn after ``torch.manual_seed(seed)``, ReLU after every layer including the output, then
log_softmax), SGD lr 0.08 momentum 0.9 no weight decay, constant lr, batch 128, 10 epochs, NLL loss, no
penalty, no pruning. Then layer 1's matrix W = U S V^T is replaced by :math:`W_k = U_k S_k V_k^T` for
k = 0, 5, ..., 100 and 150, 200, 300, 400, 500, 784 (k = 0: only the bias is left) and test accuracy measured.

The BEMA-predicted rank is the number of eigenvalues :math:`s_i^2/n` above BEMA's edge (``theory.bema``,
alpha 0.25, beta 0.1, the notebook's ``computePredictedRank``), with the correct Tracy-Widom exponent 4/3.
The notebook's edge has ``(1+sqrt(gamma))**4/3`` (operator precedence: the 4th power divided by 3; the
exponent papers.md 5b flags); its rank is reported too (``bema_rank_seed_formula``). The MP-fit error is the
one the notebook printed (BEMA with alpha 0.2, the central window). Seeds: the notebook's 43554454 first,
then 0, 1, ... (``--seeds K`` runs K seeds in all). The batch order comes from our seeded generator, not the
notebook's DataLoader, so even seed 43554454 reproduces the notebook's init but not its exact batches.

``--paper`` is the same scale (the precursor's scale is already CPU-sized) with 5 seeds by default;
``--quick`` trains 1 epoch on 2000 images.
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
NOTEBOOK_SEED = 43554454
#: papers.md 1.4 (precursor 2303.08986 notebook): k -> test accuracy %
#: (all twenty k of the notebook's cell 16 output, 9829/10000 dense)
PAPER = {0: 8.92, 5: 54.59, 10: 75.75, 15: 84.64, 20: 90.71, 25: 95.45, 30: 97.29, 35: 97.73, 40: 98.02,
         45: 98.26, 50: 98.21, 55: 98.22, 60: 98.23, 65: 98.26, 70: 98.27, 75: 98.28, 80: 98.29, 85: 98.32,
         90: 98.33, 95: 98.32}
PAPER_DENSE, PAPER_RANK, PAPER_FIT = 98.29, 56, 0.0102
SCALES = {
    "default": dict(sizes=[784, 1000, 10], epochs=10, lr=0.08, momentum=0.9, n_train=None, n_test=None),
    "paper": dict(sizes=[784, 1000, 10], epochs=10, lr=0.08, momentum=0.9, n_train=None, n_test=None),
    "quick": dict(sizes=[784, 1000, 10], epochs=1, lr=0.08, momentum=0.9, n_train=2000, n_test=1000),
}
KS = list(range(0, 101, 5)) + [150, 200, 300, 400, 500, 784]
ALPHA, BETA = 0.25, 0.1
FIT_ALPHA = 0.2     # the notebook's printed MP-fit error comes from its splitWrapper's BEMA (alpha 0.2, beta 0.1)


def bema_rank(W: torch.Tensor) -> dict:
    """BEMA rank of a weight matrix (ours, and with the seed's TW exponent), and the MP-fit error."""
    from theory.bema import bema
    from theory.goodness_of_fit import mp_fit_error

    s = torch.linalg.svdvals(W.detach().double().cpu()).numpy()
    p, n = min(W.shape), max(W.shape)
    lam = np.sort(s[:p] ** 2 / n)
    fit = bema(lam, p, n, alpha=ALPHA, beta=BETA)
    g = p / n
    # the notebook's bema_inside: ... * (1 + sqrt(g)) ** 4 / 3, i.e. the 4th power over 3, not ** (4/3)
    lp_seed = fit.sigma2 * ((1 + g ** 0.5) ** 2 + fit.tw_quantile * n ** (-2 / 3) * g ** (-1 / 6)
                            * (1 + g ** 0.5) ** 4 / 3)
    fit2 = bema(lam, p, n, alpha=FIT_ALPHA, beta=BETA)
    return dict(bema_rank=fit.n_spikes, bema_rank_seed_formula=int((lam > lp_seed).sum()),
                sv_edge=fit.sv_edge, sigma2=fit.sigma2,
                mp_fit_error=mp_fit_error(lam, p, n, fit2.sigma2, alpha=FIT_ALPHA))


def truncation_curve(model, test_data, ks, layer: str = "layers.0") -> dict:
    """{k: test accuracy} with ``layer``'s matrix replaced by its rank-k truncation (one SVD)."""
    from prune.layers import set_submodule, with_matrix
    from prune.methods.svd import layer_svd
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


def notebook_train(seed: int, train_data, test_data, scale: dict, dev) -> tuple:
    """Train as the notebook's cell 16: ``torch.manual_seed(seed)``, the model, ``torch.manual_seed(seed)``
    again (its ``neuralInit``), then shuffled DataLoaders (batch 128, train and test) drawing from the global
    RNG, an initial test pass, and per epoch one pass over the train loader and one over the test loader.

    The RNG calls are the notebook's, so the init is bit-identical and the batch order the same as its
    DataLoader's (CPU arithmetic instead of its GPU's). The caller's global RNG state is restored.
    Returns (model, test accuracy after each epoch, wall seconds).
    """
    from torch.utils.data import DataLoader, TensorDataset

    from prune.models.fc import FCNet
    from prune.training import evaluate

    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FCNet(scale["sizes"], seed=seed, init="torch", output_relu=True).to(dev)
        torch.manual_seed(seed)
        bs = scale["batch_size"]
        train_loader = DataLoader(TensorDataset(*train_data), batch_size=bs, shuffle=True)
        test_loader = DataLoader(TensorDataset(*test_data), batch_size=bs, shuffle=True)
        opt = torch.optim.SGD(model.parameters(), lr=scale["lr"], momentum=scale["momentum"])

        def test_pass() -> float:       # consumes the RNG as the notebook's test() does; accuracy as evaluate
            for _ in test_loader:
                pass
            return evaluate(model, *test_data)[1]

        test_pass()
        hist = []
        for _ in range(scale["epochs"]):
            model.train()
            for x, y in train_loader:
                opt.zero_grad()
                torch.nn.functional.nll_loss(model(x), y).backward()
                opt.step()
            hist.append(test_pass())
    return model, hist, time.perf_counter() - t0


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    from tqdm.auto import tqdm

    from prune.models.fc import FCNet
    from prune.training import evaluate

    C.check_args(args, DEFAULT_SEEDS)
    torch.set_num_threads(args.threads)
    which = "quick" if args.quick else "paper" if args.paper else "default"
    scale = dict(SCALES[which], name=which, alpha=ALPHA, beta=BETA, fit_alpha=FIT_ALPHA, batch_size=128, ks=KS,
                 preprocessing="pixels/255 (ToTensor only)", init="torch default (U(+-1/sqrt(in)) weights and biases)",
                 output_relu=True, weight_decay=0.0, lr_schedule="constant")
    dev = C.device(args.device)
    scale["device"] = str(dev)
    out = C.out_dir(args, NAME)
    t0 = time.perf_counter()
    train_data, test_data = C.load("mnist", flatten=True, dev=dev, n_train=scale["n_train"], n_test=scale["n_test"],
                                   normalize=False)
    seeds = [NOTEBOOK_SEED] + list(range(args.seeds - 1))
    rows, fits = [], []
    for seed in tqdm(seeds, desc=NAME, unit="seed", disable=args.no_progress):
        ckpt = out / "checkpoints" / f"mnist_784_1000_10_nb_s{seed}.pt"
        if args.resume and ckpt.is_file():
            model = FCNet(scale["sizes"], seed=seed, init="torch", output_relu=True)
            model.load_state_dict(torch.load(ckpt, map_location="cpu")["model"])
            model, hist, wall = model.to(dev), torch.load(ckpt, map_location="cpu")["history"], 0.0
        else:
            model, hist, wall = notebook_train(seed, train_data, test_data, scale, dev)
            torch.save(dict(model=model.state_dict(), history=hist), ckpt)
        dense = evaluate(model, *test_data)[1]
        br = bema_rank(model.layers[0].weight)
        k_bema = br["bema_rank"]
        curve = truncation_curve(model, test_data, sorted(set(KS) | {k_bema, br["bema_rank_seed_formula"]}))
        with torch.no_grad():
            pred = torch.cat([model(test_data[0][i:i + 1000]).argmax(1) for i in range(0, len(test_data[0]), 1000)])
        fits.append(dict(seed=seed, dense_test_acc=dense, **br, acc_at_bema_rank=curve[k_bema],
                         classes_never_predicted=int(10 - pred.unique().numel()),
                         test_acc_by_epoch=" ".join(f"{a:.4f}" for a in hist), train_wall_s=wall))
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
    plot(table, fits, out / f"{NAME}.png", rows)
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
        lines.append(f"seed {f['seed']}: BEMA rank {f['bema_rank']} (seed's TW formula {f['bema_rank_seed_formula']}; "
                     f"paper {PAPER_RANK}), MP-fit error "
                     f"{f['mp_fit_error']:.4f} (paper {PAPER_FIT}), acc at BEMA rank {100 * f['acc_at_bema_rank']:.2f} %, "
                     f"dense {100 * f['dense_test_acc']:.2f} %")
    return "\n".join(lines)


def plot(table: list, fits: list, path, rows: list | None = None) -> None:
    """Left: k <= 100 (the notebook's range), each seed's curve and the notebook's; right: all k (symlog)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    trows = [r for r in table if r["k"] != "dense"]
    k = np.array([r["k"] for r in trows])
    m = np.array([r["test_acc_mean"] for r in trows]) * 100
    s = np.array([r["test_acc_std"] for r in trows]) * 100
    pk = sorted(PAPER)
    fig, axes = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw=dict(width_ratios=[3, 2]))
    for j, ax in enumerate(axes):
        for i, f in enumerate(fits):
            if rows is not None:
                c = sorted((r["k"], 100 * r["test_acc"]) for r in rows if r["seed"] == f["seed"])
                ax.plot([x for x, _ in c], [y for _, y in c], "-", lw=1.2, color=f"C{i}", alpha=0.85,
                        label=(f"seed {f['seed']}: dense {100 * f['dense_test_acc']:.2f} %, BEMA rank "
                               f"{f['bema_rank']}, {f['classes_never_predicted']} dead class(es)") if j == 0 else None)
            ax.axvline(f["bema_rank"], color=f"C{i}", ls=":", lw=1)
        ax.errorbar(k, m, yerr=s, fmt="none", ecolor="gray", alpha=0.4, capsize=2,
                    label=f"mean +- std over {len(fits)} seeds" if j == 0 else None)
        ax.plot(pk, [PAPER[x] for x in pk], "ks--", ms=4, lw=1.5,
                label=f"notebook (seed {NOTEBOOK_SEED}): dense {PAPER_DENSE} %, BEMA rank {PAPER_RANK}" if j == 0 else None)
        ax.axvline(PAPER_RANK, color="k", ls="--", lw=0.8)
        ax.grid(alpha=0.3)
        ax.set_ylim(0, 100)
    axes[0].set_xlim(0, 100)
    axes[0].set(xlabel="rank k kept in layer 1 (dotted: each seed's BEMA rank; dashed: the notebook's 56)",
                ylabel="MNIST test accuracy (%)",
                title="Rank-k truncation of layer 1, MNIST [784, 1000, 10] (notebook settings)")
    axes[0].legend(fontsize=7, loc="lower right")
    axes[1].set_xscale("symlog", linthresh=20, linscale=1.0)
    axes[1].set_xlim(0, 800)
    axes[1].set_xticks([0, 10, 20, 50, 100, 200, 400, 784], ["0", "10", "20", "50", "100", "200", "400", "784"])
    axes[1].set(xlabel="rank k (all ranks; symlog)", title="full range")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    return C.run_main(NAME, __doc__, DEFAULT_SEEDS, run, argv)


if __name__ == "__main__":
    raise SystemExit(main())
