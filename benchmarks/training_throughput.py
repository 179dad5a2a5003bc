"""Benchmark 5: training throughput of the FC experiments (samples per second) with and without the RMT steps.

Fashion-MNIST, the FC net of ``simulations.experiments.fc_table`` (default scale: [784, 160, 160, 160, 10],
batch 128, SGD momentum 0.9, lr 0.01 decayed 0.84 per epoch), the same mini-batches for every run:

* ``plain PyTorch loop`` - a bare loop (shuffle with a seeded generator, forward, NLL, backward, SGD step) plus
  the same per-epoch test evaluation, no pruning machinery at all;
* ``prune.training.train, prune="none"`` - the project's loop without pruning (its bookkeeping cost);
* ``prune.training.train, prune="mp"`` - MP-SVD pruning after every epoch but the last (``prune_every=1``,
  bulk schedule f = max(0, 1 - e/T), T = 12: the fc_table experiment's setting);
* ``prune.training.train, prune="mp", l1/l2`` - the same with the explicit L1 + L2 penalties (1e-6 each).

samples/s = epochs * n_train / wall time (training, pruning and evaluation included). The cost of one RMT step
(``prune.methods.svd.mp_truncate`` of the freshly initialised net) is timed on its own, and as a share of an epoch.
Median of ``--repeats`` runs per variant, run round-robin.

    RMT_DATA_DIR=/work/shared/data python benchmarks/training_throughput.py          # 60k samples, 3 epochs
    RMT_DATA_DIR=/work/shared/data python benchmarks/training_throughput.py --quick  # 5k samples, 2 epochs
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy / torch load

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from prune.data import load_idx_dataset
from prune.methods.svd import mp_truncate
from prune.models.fc import FCNet
from prune.training import TrainConfig, image_tensors, train
from simulations.experiments.fc_table import SCALES

SIZES = SCALES["default"]["sizes"]


def plain_loop(model, train_data, test_data, cfg: TrainConfig) -> None:
    x, y = train_data
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum)
    gen = torch.Generator().manual_seed(cfg.seed)
    for epoch in range(1, cfg.epochs + 1):
        for group in opt.param_groups:
            group["lr"] = cfg.lr * cfg.lr_decay ** ((epoch - 1) // cfg.lr_decay_every)
        model.train()
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), cfg.batch_size):
            idx = order[i : i + cfg.batch_size]
            loss = F.nll_loss(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        model.eval()
        with torch.no_grad():
            xt, yt = test_data
            for i in range(0, len(xt), cfg.eval_batch_size):
                F.nll_loss(model(xt[i : i + cfg.eval_batch_size]), yt[i : i + cfg.eval_batch_size])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--repeats", type=int, default=None, help="runs per variant (default 3; quick 2)")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/training_throughput.py")
    _common.print_header(meta)
    n_train, n_test, epochs = (5000, 1000, 2) if args.quick else (60000, 10000, 3)
    repeats = args.repeats or (2 if args.quick else 3)
    train_data = tuple(t[:n_train] for t in image_tensors(*load_idx_dataset("fashion-mnist", "train")))
    test_data = tuple(t[:n_test] for t in image_tensors(*load_idx_dataset("fashion-mnist", "test")))
    sc = SCALES["default"]
    base = dict(epochs=epochs, batch_size=128, lr=sc["lr"], momentum=0.9, lr_decay=sc["lr_decay"],
                lr_decay_every=1, prune_every=1, schedule_T=sc["schedule_T"], alpha=0.25, beta=0.1, min_rank=10)
    variants = {
        "plain PyTorch loop": None,
        'train, prune="none"': TrainConfig(**base, prune="none"),
        'train, prune="mp"': TrainConfig(**base, prune="mp"),
        'train, prune="mp", l1+l2': TrainConfig(**base, prune="mp", l1=1e-6, l2=1e-6),
    }
    times: dict[str, list[float]] = {k: [] for k in variants}
    final_params: dict[str, int] = {}
    for r in range(repeats):
        for name, cfg in variants.items():
            model = FCNet(SIZES, seed=0)
            t0 = time.perf_counter()
            if cfg is None:
                plain_loop(model, train_data, test_data, TrainConfig(**base))
                final_params[name] = sum(p.numel() for p in model.parameters())
            else:
                res = train(model, train_data, test_data, cfg, progress=False, inplace=True)
                final_params[name] = sum(p.numel() for p in res.model.parameters())
            times[name].append(time.perf_counter() - t0)
            print(f"# repeat {r + 1}/{repeats}: {name} {times[name][-1]:.2f} s", flush=True)
    step_s, _ = _common.timed(lambda: mp_truncate(FCNet(SIZES, seed=0), bulk_keep=1 - 1 / sc["schedule_T"]),
                              repeats=5)
    plain = statistics.median(times["plain PyTorch loop"])
    rows = []
    for name in variants:
        t = statistics.median(times[name])
        rows.append(dict(variant=name, sizes="-".join(map(str, SIZES)), n_train=n_train, epochs=epochs,
                         wall_s=t, samples_per_s=epochs * n_train / t, relative_to_plain=plain / t,
                         params_at_end=final_params[name], repeats=repeats))
    epoch_s = plain / epochs
    rows.append(dict(variant="one RMT step (mp_truncate of the initial net)", sizes="-".join(map(str, SIZES)),
                     n_train=n_train, epochs=1, wall_s=step_s, samples_per_s=float("nan"),
                     relative_to_plain=step_s / epoch_s, params_at_end=-1, repeats=5))
    print(f"\nFC training throughput, Fashion-MNIST {n_train} samples x {epochs} epochs (relative_to_plain: "
          "throughput / plain loop's; last row: one RMT step as a fraction of a plain epoch)")
    print(_common.table(rows))
    _common.write_csv(rows, "training_throughput", meta, _common.out_dir(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
