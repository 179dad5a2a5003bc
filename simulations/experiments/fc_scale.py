r"""Scale study of paper 2's FC table (papers.md 2.4a): the fc_table rules at growing hidden width.

Each width W is one :mod:`.fc_table` run with every other setting equal (``--width W``, 6 epochs, the CPU
default scale's schedule), written to ``results/fc_scale/w<W>/``; W = 160 is ``results/fc_table/`` itself.
This module only gathers them: ``summary.csv`` (one row per width and rule: test % mean and std over the
seeds, stored parameters) and ``fc_scale.png`` (test % against width, and the MP + L1+L2 minus no-pruning
gap, the quantity that is +18.9 points in the paper's table at widths 3000 and 100 epochs).

The runs, resumable (``--resume`` reuses finished checkpoints)::

    python -m simulations.experiments.fc_table --seeds 3 --width 320 --rules none,mp_l1l2 \
        --out results/fc_scale/w320 --resume
    python -m simulations.experiments.fc_table --seeds 3 --width 640 --rules none,mp_l1l2 \
        --out results/fc_scale/w640 --resume
    python -m simulations.experiments.fc_table --seeds 3 --width 1000 --rules none,mp_l1l2 \
        --out results/fc_scale/w1000 --resume
    python -m simulations.experiments.fc_scale
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from . import _common as C

NAME = "fc_scale"
#: papers.md 2.4a test % at widths 3000, 100 epochs
PAPER_TEST = {"none": 71.64, "l1l2": 81.70, "mp": 81.22, "mp_l1l2": 90.53}


def gather(root: Path) -> list[dict]:
    """One row per (width, rule) from ``root/fc_table`` (width 160) and ``root/fc_scale/w*``."""
    import csv

    dirs = [root / "fc_table"] + sorted((root / NAME).glob("w*"), key=lambda p: int(p.name[1:]))
    rows = []
    for d in dirs:
        meta_path, table_path = d / "fc_table.json", d / "table.csv"
        if not (meta_path.is_file() and table_path.is_file()):
            continue
        meta = json.loads(meta_path.read_text())
        width = meta["scale"]["sizes"][1]
        for r in csv.DictReader(open(table_path)):
            if r["rule"] not in PAPER_TEST:
                continue
            rows.append(dict(width=width, rule=r["rule"], seeds=int(r["seeds"]),
                             test_pct=100 * float(r["test_acc_mean"]), test_std_pct=100 * float(r["test_acc_std"]),
                             params=float(r["params_mean"]), epochs=meta["scale"]["epochs"],
                             paper_test_pct=PAPER_TEST[r["rule"]], source=str(d.relative_to(root.parent))))
    return rows


def run(args: argparse.Namespace, argv: list[str] | None = None) -> dict:
    t0 = time.perf_counter()
    out = Path(args.out) if args.out else C.RESULTS / NAME
    out.mkdir(parents=True, exist_ok=True)
    rows = gather(C.RESULTS)
    if not rows:
        raise FileNotFoundError(f"no fc_table results under {C.RESULTS}: run fc_table first")
    C.write_csv(out / "summary.csv", rows)
    plot(rows, out / f"{NAME}.png")
    C.write_sidecar(out / f"{NAME}.json", cmd=C.command(NAME, argv), seeds=[], scale=dict(name="gather"),
                    wall_s=time.perf_counter() - t0, extra=dict(widths=sorted({r["width"] for r in rows}),
                                                                paper_reference="papers.md 2.4a"))
    for r in rows:
        print(f"W={r['width']:5d} {r['rule']:8s} {r['test_pct']:6.2f} +- {r['test_std_pct']:4.2f} "
              f"({r['seeds']} seeds, {r['params']:.0f} params; paper {r['paper_test_pct']})")
    return dict(rows=rows, out=str(out))


def plot(rows: list, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for j, rule in enumerate(PAPER_TEST):
        rs = sorted((r for r in rows if r["rule"] == rule), key=lambda r: r["width"])
        if rs:
            axes[0].errorbar([r["width"] for r in rs], [r["test_pct"] for r in rs],
                             yerr=[r["test_std_pct"] for r in rs], marker="o", capsize=3, label=rule, color=f"C{j}")
        axes[0].scatter([3000], [PAPER_TEST[rule]], marker="s", color=f"C{j}", edgecolor="k")
    widths = sorted({r["width"] for r in rows})
    gap, err = [], []
    for w in widths:
        by = {r["rule"]: r for r in rows if r["width"] == w}
        if "mp_l1l2" in by and "none" in by:
            gap.append((w, by["mp_l1l2"]["test_pct"] - by["none"]["test_pct"]))
            err.append(np.hypot(by["mp_l1l2"]["test_std_pct"], by["none"]["test_std_pct"]))
    if gap:
        axes[1].errorbar([g[0] for g in gap], [g[1] for g in gap], yerr=err, marker="o", capsize=3, label="ours (6 epochs)")
    axes[1].scatter([3000], [PAPER_TEST["mp_l1l2"] - PAPER_TEST["none"]], marker="s", color="k",
                    label="paper (100 epochs)")
    axes[1].axhline(0, color="gray", lw=0.8)
    for ax in axes:
        ax.set_xscale("log")
        ax.set_xticks([160, 320, 640, 1000, 3000], ["160", "320", "640", "1000", "3000"])
        ax.minorticks_off()
        ax.set_xlabel("hidden width W of [784, W, W, W, 10] (paper: [784, 3000 x4, 500, 10], squares)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    axes[0].set(ylabel="Fashion-MNIST test accuracy (%)", title="test % per rule (mean +- std over seeds)")
    axes[1].set(ylabel="MP + L1+L2 minus no pruning (test points)", title="the gap the paper reports")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m simulations.experiments.{NAME}", description=__doc__.splitlines()[0])
    p.add_argument("--out", default=None, help="output folder (default results/fc_scale/)")
    run(p.parse_args(argv), argv)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
