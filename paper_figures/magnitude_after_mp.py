r"""Accuracy against non-zero parameters when the FC nets trained with and without MP pruning are magnitude-thresholded.

For each final model of the FC experiment, the a-fraction of smallest |w| is zeroed (global magnitude pruning)
and the test accuracy is measured at the model's non-zero count. papers.md 2.4a ([FIG]): after MP training,
magnitude thresholding keeps about 90 % test accuracy down to about 55 % of the parameters and >= 88 % at about
33 %. The data are ``simulations.experiments.magnitude_after_mp``'s results (``results/magnitude_after_mp/``;
in quick mode without them, a quick FC run and a quick thresholding run).
"""
from __future__ import annotations

import numpy as np

from . import style
from .registry import (Comparison, FigureContext, FigureResult, experiment_results, read_csv, ref_source,
                       reference)

NAME = "magnitude_after_mp"
TITLE = "Magnitude thresholding after MP training: accuracy against parameters"
CAPTION = ("Test accuracy against the non-zero parameter count when the smallest weights of the FC nets trained "
           "with and without MP pruning are zeroed, next to the paper's reading that MP-trained nets keep about "
           "90 % down to about 55 % of the parameters.")
SOURCE = "papers.md 2.4a (figure after MP training); simulations.experiments.magnitude_after_mp"
COLUMNS = ("rule", "amount", "test_acc_pct", "test_acc_std_pct", "nonzero", "nonzero_frac_of_dense", "seeds")
EXPERIMENT = "magnitude_after_mp"
LABELS = {"none": "no pruning, no reg.", "l1l2": "L1+L2 only", "mp": "MP pruning only", "mp_l1l2": "MP pruning + L1+L2"}


def _interp(frac: float, rs: list[dict]) -> float:
    """Test accuracy (%) at non-zero fraction ``frac`` by linear interpolation along the thresholding curve
    (NaN outside the measured range)."""
    xs = np.array([r["nonzero_frac_of_dense"] for r in rs])
    ys = np.array([r["test_acc_pct"] for r in rs])
    order = np.argsort(xs)
    xs, ys = xs[order], ys[order]
    if not xs[0] <= frac <= xs[-1]:
        return float("nan")
    return float(np.interp(frac, xs, ys))


def make(ctx: FigureContext) -> FigureResult:
    ref = reference("fc_pruning_fashion")["magnitude_after_mp"]
    src_ref = reference("fc_pruning_fashion")
    def source() -> tuple[str, ...]:
        # the thresholding run needs the FC experiment's final models (checkpoints are not kept in git)
        fc_dir, _, _ = experiment_results(ctx, "fc_table", ("table.csv", "checkpoints/mp_l1l2_s0.pt"))
        return ("--source", str(fc_dir))

    folder, where, meta = experiment_results(ctx, EXPERIMENT, ("table.csv",), source)
    table = read_csv(folder / "table.csv")
    rows = [dict(rule=r["rule"], amount=r["amount"], test_acc_pct=100 * r["test_acc_mean"],
                 test_acc_std_pct=100 * r["test_acc_std"], nonzero=r["nonzero_mean"],
                 nonzero_frac_of_dense=r["nonzero_frac_of_dense"], seeds=int(r["seeds"])) for r in table]
    fig, axes = style.figure(ncols=1, width=6.0, height=4.0)
    ax = axes[0]
    for k, rule in enumerate(LABELS):
        rs = sorted([r for r in rows if r["rule"] == rule], key=lambda r: -r["nonzero_frac_of_dense"])
        if not rs:
            continue
        ax.errorbar([100 * r["nonzero_frac_of_dense"] for r in rs], [r["test_acc_pct"] for r in rs],
                    yerr=[r["test_acc_std_pct"] for r in rs], marker="o", ms=4, capsize=2,
                    linestyle="-" if rule.startswith("mp") else "--", label=LABELS[rule])
    ax.plot([100 * ref["at_params_fraction"], 100 * ref["at_params_fraction_2"]],
            [ref["test_acc_about"], ref["test_acc_at_least"]], linestyle="none", marker="D", color="k", mfc="white",
            ms=8, label="paper: ~90 % at ~55 %, >= 88 % at ~33 %")
    ax.invert_xaxis()
    ax.set_xlabel("non-zero parameters (% of the dense net)")
    ax.set_ylabel("Fashion-MNIST test accuracy (%)")
    scale = meta.get("scale", {})
    fc_scale = scale.get("source_scale", {})
    ax.set_title(f"Fashion-MNIST FC {fc_scale.get('sizes', '')}: global magnitude thresholding of the trained nets",
                 fontsize=9)
    ax.legend(fontsize=8, loc="lower left")
    src = ref_source({"source": src_ref["source"], "provenance": ref["provenance"]})
    note = (f"ours: mp_l1l2 curve, interpolated; FC {fc_scale.get('sizes', '?')} {fc_scale.get('epochs', '?')} "
            f"epochs ({fc_scale.get('name', '?')} scale); paper: widths 3000, 100 epochs; papers.md's reading "
            "(x positions +-0.5 %, also quoted as 1.6e7 of 2.2e7 kept)")
    mp = [r for r in rows if r["rule"] == "mp_l1l2"]
    comps = []
    if mp:
        trend = ("the shape holds (MP-trained nets lose less under thresholding than dense-trained ones); the level "
                 "is that of the small CPU-scale net")
        comps = [Comparison(NAME, f"test % at {100 * ref['at_params_fraction']:.0f} % non-zero (MP + L1+L2)",
                            ref["test_acc_about"], _interp(ref["at_params_fraction"], mp), src, note,
                            tolerance=1.0, trend=trend),   # 1 point: the paper's figure read to +-0.5
                 Comparison(NAME, f"test % at {100 * ref['at_params_fraction_2']:.0f} % non-zero (MP + L1+L2)",
                            ref["test_acc_at_least"], _interp(ref["at_params_fraction_2"], mp), src,
                            note + "; paper states a lower bound", tolerance=1.0, trend=trend)]
    return FigureResult(rows, fig, comps, [f"data: {where}"], data_source=where)
