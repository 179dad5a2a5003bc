"""Accuracy against remaining parameters for every pruning method on the real models, with and without a short fine-tune.

Models (each scored on its own real test data):

* ``mnist-cnn``: the shared MNIST CNN on the full MNIST test set (10 000 images);
* ``resnet20``, ``resnet56``: the shared CIFAR ResNets on a seeded subset of the shared JPEG CIFAR-10 test batch
  (``--cifar-limit`` images; the dense accuracy is about 81-83 % there, not the 91-94 % of exact CIFAR-10);
* ``vit-mnist``: our ViT, when its weights are committed (skipped with a note otherwise).

Methods (``prune``):

* ``mp-svd``: MP-SVD truncation at the BEMA edge, keeping a fraction f of the bulk (``mp_truncate(bulk_keep=f)``);
* ``mp-svd-fit``: the same, leaving alone layers whose MP-fit error is >= ``--fit-cutoff``;
* ``rank`` / ``energy``: fixed-rank and energy SVD truncation (baselines);
* ``magnitude``: global magnitude pruning (baseline);
* ``rmt-cycles``: seed paper 2's Algorithm 3 (Algorithm C on even cycles, Algorithm D with the MP-weighted budget,
  the data-free regularisation phase with ``--reg-steps`` steps per cycle), swept over increasing targets;
* ``spectral``: the spectrum-preserving sampler (p ~ w^2, rescaled by 1/p), pooled over layers.

Remaining parameters: ``count_parameters`` for factorised (SVD) models, ``count_nonzero`` for sparse ones, over the
whole model (biases and BatchNorm included); reduction = 1 - remaining / dense ``count_parameters``.
The sweep grids, fine-tune subsets and goals per model are in ``CONFIG``.
Fine-tune (``prune.finetune``, masks frozen, SGD momentum 0.9, cosine, clipping 1.0): MNIST CNN on a seeded subset
of the MNIST train split, ResNets on the shared CIFAR train batch ``data_batch_1``; only the points of each method
nearest the model's target reductions are fine-tuned, to keep the run affordable on 2 CPU cores.

Writes ``benchmarks/results/prune_models.csv`` (one row per model, method, setting, fine-tuned or not),
``prune_models_<model>.png`` and ``prune_models.json`` (command, versions, machine, settings, goals reached).

Run: ``RMT_DATA_DIR=/work/shared/data python benchmarks/prune_models.py`` (see ``--help``).
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from prune.evaluate import evaluate, load_inputs
from prune.finetune import finetune
from prune.methods.magnitude import magnitude_prune
from prune.methods.mp_cycles import rmt_cycle_prune
from prune.methods.spectral_sparsify import spectral_sparsify
from prune.methods.svd import energy_truncate, mp_truncate, rank_truncate
from prune.models.registry import load_model
from prune.models.specs import eval_spec
from prune.params import count_nonzero, count_parameters

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = ["model", "method", "setting", "finetuned", "params_dense", "params_remaining", "reduction", "accuracy",
          "accuracy_dense", "drop_points", "n_test", "seconds"]

# per model: sweep grids, the reductions whose nearest points get fine-tuned, the goal (reduction, max drop)
CONFIG = {
    "mnist-cnn": dict(ranks=[48, 32, 24, 16, 8], bulk_keep=[0.0, 0.1, 0.25, 0.5], energies=[0.99, 0.95, 0.9, 0.8],
                      sparsities=[0.5, 0.7, 0.8, 0.9, 0.95], ft_targets=[0.8, 0.9], ft_methods=None, ft_train=10000,
                      goal=(0.80, 0.2)),
    "resnet20": dict(ranks=[12, 8], bulk_keep=[0.0, 0.5], energies=[0.99, 0.95, 0.9], sparsities=[0.3, 0.5, 0.7],
                     ft_targets=[0.3, 0.5], ft_methods=["magnitude", "rmt-cycles", "mp-svd-fit"], ft_train=3000,
                     goal=(0.30, 1.0)),
    "resnet56": dict(ranks=[12, 8], bulk_keep=[0.0, 0.5], energies=[0.99, 0.95, 0.9], sparsities=[0.3, 0.5, 0.7],
                     ft_targets=[0.3, 0.5], ft_methods=["magnitude", "rmt-cycles", "mp-svd-fit"], ft_train=3000,
                     goal=(0.30, 1.0)),
    "vit-mnist": dict(ranks=[32, 24, 16, 8], bulk_keep=[0.0, 0.1, 0.25, 0.5], energies=[0.99, 0.95, 0.9, 0.8],
                      sparsities=[0.3, 0.5, 0.7, 0.8, 0.9], ft_targets=[0.4, 0.6], ft_methods=None, ft_train=10000,
                      goal=(0.40, 1.0)),
}


def sweep(name: str, cfg: dict, args) -> list[tuple[str, str, object]]:
    """(method, setting, thunk(model) -> pruned model) for every point of the sweep."""
    svd_kw = dict(min_rank=10)  # never below the number of classes (seed paper 1)
    pts = []
    for f in cfg["bulk_keep"]:
        pts.append(("mp-svd", f"bulk_keep={f}", lambda m, f=f: mp_truncate(m, bulk_keep=f, **svd_kw)[0]))
    for f in cfg["bulk_keep"]:
        pts.append(("mp-svd-fit", f"bulk_keep={f},fit_cutoff={args.fit_cutoff}",
                    lambda m, f=f: mp_truncate(m, bulk_keep=f, fit_cutoff=args.fit_cutoff, **svd_kw)[0]))
    for k in cfg["ranks"]:
        pts.append(("rank", f"rank={k}", lambda m, k=k: rank_truncate(m, k, **svd_kw)[0]))
    for e in cfg["energies"]:
        pts.append(("energy", f"energy={e}", lambda m, e=e: energy_truncate(m, e, **svd_kw)[0]))
    for a in cfg["sparsities"]:
        pts.append(("magnitude", f"sparsity={a}", lambda m, a=a: magnitude_prune(m, amount=a)[0]))
    for a in cfg["sparsities"]:
        pts.append(("spectral", f"sparsity={a}", lambda m, a=a: spectral_sparsify(m, amount=a, scope="global",
                                                                               seed=0)[0]))
    return pts


def rmt_cycles_sweep(model, targets, reg_steps: int):
    """Algorithm 3 run once through increasing targets; yields (target, model snapshot, last cycle)."""
    cur, cycle = model, 1
    for a in targets:
        cur, _, hist = rmt_cycle_prune(cur, a, reg_steps=reg_steps, start_cycle=cycle, max_cycles=60, progress=False)
        if hist:
            cycle = hist[-1].cycle + 1
        yield a, cur, cycle - 1


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["mnist-cnn", "resnet20", "resnet56", "vit-mnist"])
    ap.add_argument("--cifar-limit", type=int, default=2000, help="CIFAR test images scored (seeded subset)")
    ap.add_argument("--fit-cutoff", type=float, default=0.1)
    ap.add_argument("--reg-steps", type=int, default=100, help="regularisation steps per Algorithm-3 cycle")
    ap.add_argument("--ft-epochs", type=int, default=1)
    ap.add_argument("--ft-train", type=int, default=None,
                    help="training images used by the fine-tune (default: per model, see CONFIG)")
    ap.add_argument("--ft-lr", type=float, default=0.01)
    ap.add_argument("--ft-optimizer", choices=["sgd", "adamw"], default="sgd")
    ap.add_argument("--ft-targets", type=float, nargs="+", default=None, help="override CONFIG's ft_targets")
    ap.add_argument("--ft-methods", nargs="+", default=None, help="override CONFIG's ft_methods")
    ap.add_argument("--no-finetune", action="store_true")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--append", action="store_true", help="keep the rows of other models already in the CSV")
    ap.add_argument("--plot-only", action="store_true", help="only redraw the PNGs from the CSV/JSON in --out")
    args = ap.parse_args(argv)
    if args.plot_only:
        replot(args.out)
        return 0
    torch.set_num_threads(1)
    args.out.mkdir(parents=True, exist_ok=True)
    csv_path, json_path = args.out / "prune_models.csv", args.out / "prune_models.json"
    rows: list[dict] = []
    if args.append and csv_path.exists():
        with open(csv_path) as f:
            rows = [r for r in csv.DictReader(f) if r["model"] not in args.models]
    meta = dict(command=" ".join([Path(sys.executable).name] + sys.argv), started=datetime.now(timezone.utc).isoformat(),
                versions=dict(python=platform.python_version(), torch=torch.__version__, numpy=np.__version__),
                machine=dict(platform=platform.platform(), processor=platform.processor(), cpus=os.cpu_count(),
                             torch_threads=torch.get_num_threads()),
                settings={k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                models={})
    if args.append and json_path.exists():
        old = json.loads(json_path.read_text())
        meta["models"] = {k: v for k, v in old.get("models", {}).items() if k not in args.models}
    t_all = time.perf_counter()
    from tqdm.auto import tqdm

    for name in args.models:
        cfg = dict(CONFIG[name])
        if args.ft_targets:
            cfg["ft_targets"] = args.ft_targets
        if args.ft_methods:
            cfg["ft_methods"] = args.ft_methods
        try:
            base = load_model(name)
        except (FileNotFoundError, ValueError, OSError) as e:
            meta["models"][name] = dict(skipped=f"{type(e).__name__}: {e}")
            print(f"[{name}] skipped: {e}")
            continue
        dataset, norm = eval_spec(base)
        limit = args.cifar_limit if dataset == "cifar10" else None
        test = load_inputs(dataset, "test", norm, limit=limit, seed=0)
        if dataset == "cifar10":
            train = load_inputs(dataset, "data_batch_1", norm, limit=args.ft_train or cfg["ft_train"], seed=1)
        else:
            train = load_inputs(dataset, "train", norm, limit=args.ft_train or cfg["ft_train"], seed=1)
        acc = lambda m: evaluate(m, dataset, inputs=test).accuracy  # noqa: E731
        dense_params = count_parameters(base)
        acc0 = acc(base)
        print(f"[{name}] dense: {dense_params} params, accuracy {acc0:.4f} on {len(test[1])} {dataset} test images")
        points = []  # (method, setting, model, seconds)
        for method, setting, fn in tqdm(sweep(name, cfg, args), desc=f"{name} sweep", unit="point"):
            t0 = time.perf_counter()
            points.append((method, setting, fn(base), time.perf_counter() - t0))
        t0 = time.perf_counter()
        for a, m, last in rmt_cycles_sweep(base, cfg["sparsities"], args.reg_steps):
            points.append(("rmt-cycles", f"sparsity={a},cycles={last},reg_steps={args.reg_steps}", m,
                           time.perf_counter() - t0))
        model_rows = []
        for method, setting, m, sec in tqdm(points, desc=f"{name} eval", unit="model"):
            sparse = method in ("magnitude", "spectral", "rmt-cycles")
            remaining = count_nonzero(m) if sparse else count_parameters(m)
            a = acc(m)
            r = dict(model=name, method=method, setting=setting, finetuned=False, params_dense=dense_params,
                     params_remaining=remaining, reduction=1 - remaining / dense_params, accuracy=a,
                     accuracy_dense=acc0, drop_points=100 * (acc0 - a), n_test=len(test[1]), seconds=sec)
            model_rows.append((r, m))
        if not args.no_finetune:
            chosen = set()
            for method in cfg["ft_methods"] or dict.fromkeys(r["method"] for r, _ in model_rows):
                cand = [(i, r) for i, (r, _) in enumerate(model_rows) if r["method"] == method]
                for t in cfg["ft_targets"]:
                    chosen.add(min(cand, key=lambda ir: abs(ir[1]["reduction"] - t))[0])
            for i in tqdm(sorted(chosen), desc=f"{name} fine-tune", unit="model"):
                r, m = model_rows[i]
                t0 = time.perf_counter()
                tuned, _ = finetune(m, train, epochs=args.ft_epochs, lr=args.ft_lr, optimizer=args.ft_optimizer,
                                    batch_size=128, clip=1.0,
                                    seed=0, progress=False)
                sparse = r["method"] in ("magnitude", "spectral", "rmt-cycles")
                remaining = count_nonzero(tuned) if sparse else count_parameters(tuned)
                a = acc(tuned)
                model_rows.append((dict(r, finetuned=True, params_remaining=remaining,
                                        reduction=1 - remaining / dense_params, accuracy=a,
                                        drop_points=100 * (acc0 - a), seconds=time.perf_counter() - t0), None))
        new = [r for r, _ in model_rows]
        rows.extend(new)
        goal_red, goal_drop = cfg["goal"]

        def best(ft):
            ok = [r for r in new if r["finetuned"] == ft and r["drop_points"] <= goal_drop]
            return max(ok, key=lambda r: r["reduction"]) if ok else None

        meta["models"][name] = dict(
            command=meta["command"], versions=meta["versions"], machine=meta["machine"],
            config=cfg, n_train_finetune=len(train[1]), dataset=dataset, n_test=len(test[1]), params_dense=dense_params, accuracy_dense=acc0,
            goal=dict(reduction=goal_red, max_drop_points=goal_drop),
            best_within_goal_drop={"no_finetune": best(False), "finetuned": best(True)},
            goal_reached=any((b := best(ft)) is not None and b["reduction"] >= goal_red for ft in (False, True)))
        write_csv(csv_path, rows)
        plot(name, new, acc0, args.out / f"prune_models_{name}.png", goal_red, goal_drop)
        meta["wall_seconds"] = time.perf_counter() - t_all
        json_path.write_text(json.dumps(meta, indent=2, default=float))
    print(f"wrote {csv_path}, {json_path}")
    return 0


def write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=FIELDS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})


def plot(name: str, rows: list[dict], acc0: float, path: Path, goal_red: float, goal_drop: float) -> None:
    """Two panels: the whole accuracy range, and a zoom on the band within a few goal-drops of dense."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    methods = list(dict.fromkeys(r["method"] for r in rows))
    colors = dict(zip(methods, plt.cm.tab10.colors))
    band = max(5 * goal_drop, 2.0)
    for ax, zoom in zip(axes, (False, True)):
        for mth in methods:
            for ft, style in ((False, "-o"), (True, "--s")):
                pts = sorted((r for r in rows if r["method"] == mth and r["finetuned"] == ft),
                             key=lambda r: r["reduction"])
                if pts:
                    ax.plot([100 * r["reduction"] for r in pts], [100 * r["accuracy"] for r in pts], style,
                            color=colors[mth], ms=4, lw=1.2, label=f"{mth}" + (" + fine-tune" if ft else ""))
        ax.axhline(100 * acc0, color="k", lw=0.8, label=f"dense {100 * acc0:.2f}%")
        ax.axhline(100 * acc0 - goal_drop, color="k", lw=0.8, ls=":", label=f"dense - {goal_drop:g} points")
        ax.axvline(100 * goal_red, color="gray", lw=0.8, ls=":", label=f"goal: {100 * goal_red:.0f}% fewer")
        if zoom:
            ax.set_ylim(100 * acc0 - band, 100 * acc0 + 0.3 * band)
            ax.set_title(f"zoom: within {band:g} points of dense")
        else:
            lo = min(100 * r["accuracy"] for r in rows)
            ax.set_ylim(max(lo - 2, 0), 100 * acc0 + 2)
            ax.set_title(f"{name}: accuracy against remaining parameters")
            ax.legend(fontsize=7, ncol=2, loc="lower left")
        ax.set_xlim(-2, 100)
        ax.set_xlabel("parameter reduction (%)  [count_parameters: SVD; count_nonzero: sparse]")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def replot(out: Path) -> None:
    """Redraw every model's PNG from the CSV and JSON in ``out``."""
    meta = json.loads((out / "prune_models.json").read_text())
    with open(out / "prune_models.csv") as f:
        rows = list(csv.DictReader(f))
    for r in rows:
        r["finetuned"] = r["finetuned"] == "True"
        for k in ("reduction", "accuracy"):
            r[k] = float(r[k])
    for name, info in meta["models"].items():
        if "goal" not in info:
            continue
        plot(name, [r for r in rows if r["model"] == name], info["accuracy_dense"], out / f"prune_models_{name}.png",
             info["goal"]["reduction"], info["goal"]["max_drop_points"])


if __name__ == "__main__":
    raise SystemExit(main())
