"""Does the seed's regularisation schedule of ``rmt_cycle_prune`` change the result? (issue 14, item 4)

For each model and target sparsity, runs ``prune.methods.mp_cycles.rmt_cycle_prune`` twice from the same
pretrained weights: ``schedule="fast"`` (the default: no regularisation phase) and ``schedule="paper"`` (the seed's
5000 + 1000 (i - 1) AdamW steps per cycle at lr 5e-8, papers.md 2.2), and records per run the wall time, the cycles,
the sparsity reached, the test accuracy (the model's own test set and normalisation, ``--eval-limit`` seeded
images), the number of mask entries that differ between the two runs and the largest weight difference.

    RMT_DATA_DIR=... RMT_MODELS_DIR=... python benchmarks/cycle_schedule.py --models mnist-cnn --sparsities 0.5
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy / torch load

import argparse
import time

import torch

from prune.evaluate import evaluate, load_inputs
from prune.methods.mp_cycles import rmt_cycle_prune
from prune.models.registry import eval_spec, load_model


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--models", default="mnist-cnn")
    ap.add_argument("--sparsities", default="0.5")
    ap.add_argument("--eval-limit", type=int, default=10000)
    args = ap.parse_args(argv)
    meta = _common.header("benchmarks/cycle_schedule.py")
    _common.print_header(meta)
    rows = []
    for name in args.models.split(","):
        model = load_model(name).eval()
        ds, norm = eval_spec(model)
        inputs = load_inputs(ds, "test", norm, limit=args.eval_limit, seed=0)
        dense = evaluate(model, ds, inputs=inputs).accuracy
        for s in (float(x) for x in args.sparsities.split(",")):
            runs = {}
            for schedule in ("fast", "paper"):
                t0 = time.perf_counter()
                out, masks, hist = rmt_cycle_prune(model, s, schedule=schedule, progress=False)
                seconds = time.perf_counter() - t0
                acc = evaluate(out.eval(), ds, inputs=inputs).accuracy
                runs[schedule] = (out, masks)
                rows.append(dict(model=name, sparsity=s, schedule=schedule, seconds=seconds, cycles=len(hist),
                                 reg_steps=sum(h.reg_steps for h in hist), sparsity_reached=hist[-1].sparsity,
                                 accuracy=acc, accuracy_dense=dense, n_test=int(inputs[1].numel())))
                print(_common.table(rows[-1:]), flush=True)
            (fa, ma), (pa, mp) = runs["fast"], runs["paper"]
            differ = sum(int((ma[k] != mp[k]).sum()) for k in ma)
            wdiff = max(float((a - b).abs().max()) for a, b in zip(fa.state_dict().values(), pa.state_dict().values())
                        if torch.is_floating_point(a))
            for r in rows[-2:]:
                r.update(mask_entries_differing=differ, max_weight_difference=wdiff)
    print(_common.table(rows))
    _common.write_csv(rows, "cycle_schedule", meta, _common.out_dir(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
