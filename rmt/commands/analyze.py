"""``rmt analyze MODEL``: per-layer spectral table (prune.analyze), printed and written as CSV/JSON, optional ESD plots."""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from .. import options as opt

COLUMNS = ("name", "type", "view", "N", "M", "sigma2", "sv_edge", "n_spikes", "bulk_fraction", "mp_fit_error", "params")


def _fmt(v) -> str:
    if isinstance(v, float):
        return "nan" if math.isnan(v) else f"{v:.4g}"
    return str(v)


def format_table(records: list[dict], columns=COLUMNS) -> str:
    cols = [c for c in columns if not records or c in records[0]]
    rows = [list(cols)] + [[_fmt(r.get(c, "")) for c in cols] for r in records]
    widths = [max(len(row[i]) for row in rows) for i in range(len(cols))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def cmd_analyze(args: argparse.Namespace) -> int:
    from prune.analysis import analyze

    from rmt.paths import check_outputs

    from . import model_inputs, resolve_from_args

    out = Path(args.out)
    try:
        if out.exists() and not out.is_dir():
            raise ValueError(f"--out {args.out!r} is a file; name a folder")
        check_outputs({"--out (layers.csv)": str(out / "layers.csv"), "--out (layers.json)": str(out / "layers.json")},
                      model_inputs(args))
        model, _ = resolve_from_args(args, allow_torchscript=True)
        table = analyze(model, alpha=args.alpha, beta=args.beta, conv_view=args.conv_view,
                        split_qkv=not args.no_split_qkv, keep_eigenvalues=args.plots, progress=not args.no_progress)
        if args.sort:
            table = table.sort_by(args.sort, descending=args.descending)
    except (ValueError, TypeError, OSError) as err:  # OSError: missing file, failed download
        from rmt.cli import one_line

        print(f"rmt analyze: error: {one_line(err)}", file=sys.stderr)
        return 2
    records = table.to_records()
    if args.json:
        print(json.dumps(records, indent=2, default=float))
    else:
        print(format_table(records))
    out.mkdir(parents=True, exist_ok=True)
    table.to_csv(out / "layers.csv")
    table.to_json(out / "layers.json")
    written = [out / "layers.csv", out / "layers.json"]
    if args.plots:
        try:
            from prune.plots import save_esd_plots
        except ImportError:
            print("rmt analyze: prune.plots is not available; no plots written", file=sys.stderr)
        else:
            written += save_esd_plots(table, out / "esd", grid=args.grid)
    print(f"\n{len(records)} matrices; wrote {len(written)} files under {out}", file=sys.stderr if args.json else sys.stdout)
    return 0


def register(sub) -> None:
    from prune.defaults import BEMA_ALPHA, BEMA_BETA

    from . import MODEL_HELP, add_model_arguments

    a = sub.add_parser("analyze", help="per-layer MP/BEMA analysis of a model's weight matrices",
                       description="Fit the Marchenko-Pastur bulk (BEMA) to every weight matrix of MODEL and print "
                       "one row per matrix. MODEL: mnist-cnn, resnet20/32/44/56, vit-mnist, path/to/file.py:Name or "
                       "package.module:Name with --weights, timm:NAME, a TorchScript file, a pruned-model file "
                       "(rmt prune --out) or a Hugging Face ViT save_pretrained directory.")
    a.add_argument("model", help=MODEL_HELP)
    add_model_arguments(a, eval_options=False)
    a.add_argument("--out", default="rmt-analysis", type=opt.path, help="folder for layers.csv, layers.json and plots")
    a.add_argument("--conv-view", default="im2col", choices=("im2col", "slices"),
                   help="conv weights as C_out x (C_in k k) (im2col) or one C_out x C_in matrix per kernel tap")
    a.add_argument("--alpha", type=opt.open_fraction, default=BEMA_ALPHA,
                   help=f"BEMA trimming (default {BEMA_ALPHA}, the same as rmt prune --method mp)")
    a.add_argument("--beta", type=opt.open_fraction, default=BEMA_BETA,
                   help=f"Tracy-Widom level of the edge (default {BEMA_BETA}, the same as rmt prune --method mp)")
    a.add_argument("--no-split-qkv", action="store_true", help="do not also analyse q, k, v of fused projections")
    a.add_argument("--sort", metavar="COL", help="sort rows by this column (e.g. mp_fit_error, n_spikes)")
    a.add_argument("--descending", action="store_true", help="sort descending")
    a.add_argument("--plots", action="store_true", help="write ESD histograms with the fitted MP density")
    a.add_argument("--grid", action="store_true", help="plots as grids instead of one PNG per matrix")
    a.add_argument("--json", action="store_true", help="print the table as JSON instead of text")
    a.add_argument("--no-progress", action="store_true")
    a.set_defaults(func=cmd_analyze)
