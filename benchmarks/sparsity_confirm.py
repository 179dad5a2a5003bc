"""Confirm sparsity.py's narrow margins on the full test set: the deterministic methods (global and per-layer
magnitude, SEB) on every test image, no fine-tune (issue 14).

    RMT_DATA_DIR=... RMT_MODELS_DIR=... python benchmarks/sparsity_confirm.py --model resnet56 --sparsities 0.5,0.6,0.7

Writes ``results/sparsity_confirm_<model>.csv`` (+ .meta.json).
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy / torch load

import argparse

from prune.evaluate import evaluate, load_inputs
from prune.models.registry import load_model
from prune.models.specs import eval_spec
from sparsity import prune_with

METHODS = ("magnitude-global", "magnitude-layer", "seb")  # no seed enters these


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--model", default="resnet56")
    ap.add_argument("--sparsities", default="0.5,0.6,0.7")
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/sparsity_confirm.py")
    _common.print_header(meta)
    model = load_model(args.model).eval()
    ds, norm = eval_spec(model)
    inputs = load_inputs(ds, "test", norm, limit=None, seed=0)
    dense = evaluate(model, ds, inputs=inputs).accuracy
    rows = []
    for s in (float(x) for x in args.sparsities.split(",")):
        acc = {m: evaluate(prune_with(m, model, s, None, 0, 0)[0].eval(), ds, inputs=inputs).accuracy for m in METHODS}
        best_mag = max(acc["magnitude-global"], acc["magnitude-layer"])
        rows.append(dict(model=args.model, sparsity=s, n_test=int(inputs[1].numel()), dense=dense, **acc,
                         seb_margin_points=100 * (acc["seb"] - best_mag)))
        print(_common.table(rows[-1:]), flush=True)
    _common.write_csv(rows, f"sparsity_confirm_{args.model}", meta, _common.out_dir(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

