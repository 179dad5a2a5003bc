"""``rmt prune MODEL --method ... --out FILE``: prune a model, score it before and after on its real test set,
save it (reloadable to identical outputs) and write a JSON report.

Methods (each a public function of :mod:`prune`):

* ``mp``: MP-SVD truncation at the BEMA edge (prune.methods.svd.mp_truncate), ``--bulk-keep``, ``--fit-cutoff``;
* ``rank`` / ``energy``: fixed-rank / energy SVD truncation baselines (``--rank``, ``--energy``);
* ``magnitude``: global (or ``--scope layer``) magnitude pruning to sparsity ``--amount``
  (prune.methods.magnitude);
* ``mp-magnitude``: seed paper 2's Algorithm D with the MP-weighted budget, fraction ``--amount`` (one cycle;
  prune.methods.mp_cycles);
* ``sv-sparsify``: seed paper 2's Algorithm C, theta = paper_theta(``--theta-reduction``, N, M)
  (prune.methods.singular_vectors);
* ``spectral``: spectrum-preserving element-wise sparsification to sparsity ``--amount``
  (prune.methods.spectral_sparsify);
* ``rmt-cycle``: seed paper 2's Algorithm 3 (C + D + regularisation cycles) to sparsity ``--amount``
  (prune.methods.mp_cycles);
* ``seb``: Spectral Edge Budgeting (the successor paper; prune.methods.seb) to sparsity ``--amount``, data-free;
* ``ser`` / ``hybrid``: Spectral Edge Reallocation / Hybrid Magnitude-SER (prune.methods.ser) to ``--amount``;
  their selection phase uses ``--select-steps`` mini-batches of the model's training data.

``--finetune-epochs`` adds a short fine-tune (prune.finetune: frozen masks, cosine schedule, clipping) on the
model's training data. Bad input (unknown model, method option out of range, a ``--layers`` name that is not a
Linear/Conv2d) is an error message and exit status 2.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from .. import options as opt

METHODS = ("mp", "rank", "energy", "magnitude", "mp-magnitude", "sv-sparsify", "spectral", "rmt-cycle", "seb", "ser",
           "hybrid")
SVD_METHODS = ("mp", "rank", "energy")


def check_layers(model, names: list[str]) -> list[str]:
    """Validate user-named layers: each must exist and be a Linear / Conv2d / factorised layer.

    Raises
    ------
    ValueError
        A name that is not a submodule of the model.
    TypeError
        A submodule of a type pruning cannot handle (e.g. ``nn.LSTM``).
    """
    from prune.layers import PRUNABLE_TYPES

    modules = dict(model.named_modules())
    for n in names:
        if n not in modules:
            raise ValueError(f"--layers names {n!r}, which is not a submodule of the model")
        if not isinstance(modules[n], PRUNABLE_TYPES):
            raise TypeError(f"--layers names {n!r} of type {type(modules[n]).__name__}; pruning handles only "
                            f"{', '.join(t.__name__ for t in PRUNABLE_TYPES)}")
    return names


def check_dtype(model, name: str) -> None:
    """Pruning needs float32 or float64 weights: refuse half precision and integer (quantised) parameters."""
    import torch

    bad = sorted({str(p.dtype) for p in model.parameters() if p.dtype not in (torch.float32, torch.float64)})
    if bad:
        raise ValueError(f"model {name!r} has parameters of dtype {', '.join(bad)}; pruning needs float32 or "
                         "float64 (convert with model.float() and save it again)")


def check_accepts(model, x, dataset: str, name: str) -> None:
    """Run two inputs of ``dataset`` through the model; a shape mismatch is a clear error, not a traceback."""
    import torch

    try:
        with torch.no_grad():
            model.eval()(x)
    except (RuntimeError, ValueError, IndexError) as err:
        raise ValueError(f"model {name!r} does not accept {dataset} inputs of shape {tuple(x.shape[1:])} "
                         f"({' '.join(str(err).split())[:160]}); pass the --dataset it was trained on") from None


def _rows(rows) -> list[dict]:
    return [r.as_dict() if hasattr(r, "as_dict") else dict(r) for r in rows]


def run_method(model, args, layers):
    """(pruned model, masks or None, per-layer rows, extra report fields) of ``args.method``."""
    from prune import masks as pmasks
    from prune.methods import magnitude, mp_cycles, singular_vectors, svd

    common = dict(layers=layers, progress=not args.no_progress)
    bema = {k: v for k, v in (("alpha", args.alpha), ("beta", args.beta)) if v is not None}
    m = args.method
    if m in SVD_METHODS:
        # min_rank None: the output dimension (prune.methods.svd.default_min_rank; the seed code's floor,
        # papers.md 1.2)
        kw = dict(common, factorize=args.factorize, min_rank=args.min_rank)
        if m == "mp":
            out, cuts = svd.mp_truncate(model, bulk_keep=args.bulk_keep, fit_cutoff=args.fit_cutoff, **bema, **kw)
        elif m == "rank":
            if args.rank is None:
                raise ValueError("--method rank needs --rank K")
            out, cuts = svd.rank_truncate(model, args.rank, **kw)
        else:
            out, cuts = svd.energy_truncate(model, args.energy, **kw)
        return out, None, _rows(cuts), {}
    if m == "sv-sparsify":
        r = args.theta_reduction
        theta = lambda N, M: singular_vectors.paper_theta(r, N, M)  # noqa: E731
        out, rows = singular_vectors.sparsify_singular_vectors(model, theta, **bema, **common)
        return out, pmasks.masks_from_model(out, layers), _rows(rows), {}
    if args.amount is None:
        raise ValueError(f"--method {m} needs --amount (a fraction in [0, 1])")
    if m == "magnitude":
        out, masks = magnitude.magnitude_prune(model, amount=args.amount, scope=args.scope, layers=layers)
        return out, masks, _rows(pmasks.sparsity_report(out, layers).rows), {}
    if m == "mp-magnitude":
        out, masks, rows = mp_cycles.mp_magnitude_prune(model, args.amount, **bema, **common)
        return out, masks, _rows(rows), {}
    if m == "spectral":
        from prune.methods.spectral_sparsify import spectral_sparsify

        out, masks = spectral_sparsify(model, amount=args.amount, scope=args.scope, layers=layers, seed=args.seed)
        return out, masks, _rows(pmasks.sparsity_report(out, layers).rows), {}
    if m == "rmt-cycle":
        steps = args.reg_steps
        out, masks, cycles = mp_cycles.rmt_cycle_prune(model, args.amount, max_cycles=args.max_cycles,
                                                       reg_steps=lambda i: steps, **bema, **common)
        return out, masks, _rows(pmasks.sparsity_report(out, layers).rows), dict(cycles=_rows(cycles))
    if m == "seb":
        from prune.methods import seb_prune

        out, masks, rows = seb_prune(model, args.amount, layers=layers)
        return out, masks, _rows(rows), {}
    if m in ("ser", "hybrid"):
        from prune.evaluate import load_inputs
        from prune.methods import hybrid_prune, ser_prune
        from prune.models import eval_spec

        dataset, norm = eval_spec(model)
        dataset = args.dataset or dataset
        if dataset is None:
            raise ValueError(f"--method {m} needs training data for its selection phase: pass --dataset")
        train = load_inputs(dataset, _train_split(dataset), norm, root=args.data_dir,
                            limit=args.finetune_samples or 2000, seed=args.seed)
        fn = ser_prune if m == "ser" else hybrid_prune
        out, masks, rows = fn(model, args.amount, train, select_steps=getattr(args, "select_steps", 128),
                              seed=args.seed, layers=layers)
        return out, masks, _rows(rows), {}
    raise ValueError(f"--method must be one of {METHODS}, got {m!r}")  # argparse's choices prevent this


def _train_split(dataset: str) -> str:
    return "data_batch_1" if dataset == "cifar10" else "train"  # the shared CIFAR copy holds one train batch


def cmd_prune(args: argparse.Namespace) -> int:
    try:
        return _cmd_prune(args)
    except (ValueError, TypeError, OSError) as err:  # OSError: missing file, failed download
        from rmt.cli import one_line

        print(f"rmt prune: error: {one_line(err)}", file=sys.stderr)
        return 2


def _cmd_prune(args: argparse.Namespace) -> int:
    import torch

    from prune.evaluate import evaluate, inference_time, load_inputs, predict
    from prune.hf import is_hf_vit, prunable_layer_names
    from prune.io import load_pruned, save_pruned
    from prune.params import count_nonzero, count_parameters

    from rmt.paths import check_outputs

    t0 = time.perf_counter()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    out_path = Path(args.out)
    if args.time and args.no_eval:  # checked before any work, so nothing is pruned or written for nothing
        raise ValueError("--time needs evaluation inputs (drop --no-eval)")
    for option, value in (("--out", args.out), ("--report", args.report)):
        if value is not None and not Path(value).expanduser().parent.is_dir():
            raise ValueError(f"{option} {value!r}: directory {Path(value).parent} does not exist")
    from . import model_inputs

    check_outputs({"--out": args.out, "--report": args.report}, model_inputs(args), data_dir=args.data_dir)
    for name, val, lo, hi in (("amount", args.amount, 0.0, 1.0), ("bulk-keep", args.bulk_keep, 0.0, 1.0),
                              ("energy", args.energy, 0.0, 1.0)):
        if val is not None and not lo <= val <= hi:
            raise ValueError(f"--{name} must lie in [{lo}, {hi}], got {val}")
    if args.eval_samples is not None and args.eval_samples < 1:
        raise ValueError(f"--eval-samples must be >= 1, got {args.eval_samples}")

    from . import resolve_from_args

    model, spec = resolve_from_args(args)
    check_dtype(model, args.model)
    layers = None
    if args.layers:
        layers = check_layers(model, args.layers)
    elif is_hf_vit(model):
        layers = prunable_layer_names(model)  # transformers reads the patch projection's .weight directly

    dataset, norm = spec.dataset, spec.normalization
    evaluate_it = not args.no_eval
    if evaluate_it or args.finetune_epochs:  # never guessed: a one-line error says what is missing
        dataset, norm = spec.require(f"model {args.model!r}", "or --no-eval to prune without scoring"
                                     if evaluate_it and not args.finetune_epochs else "")
    inputs = None
    report: dict = dict(model=args.model, method=args.method,
                        options={k: v for k, v in vars(args).items() if k not in ("func",)})
    report["params_before"] = count_parameters(model)
    report["nonzero_before"] = count_nonzero(model)
    if evaluate_it:
        inputs = load_inputs(dataset, "test", norm, root=args.data_dir, limit=args.eval_samples, seed=args.seed)
        check_accepts(model, inputs[0][:2], dataset, args.model)
        before = evaluate(model, dataset, inputs=inputs, batch_size=args.batch_size)
        report.update(dataset=dataset, split="test", eval_images=before.n, accuracy_before=before.accuracy,
                      normalization=norm)
        shown = "pixels / 255" if norm == "none" else (f"mean {','.join(f'{v:g}' for v in norm[0])}, "
                                                      f"std {','.join(f'{v:g}' for v in norm[1])}")
        print(f"{args.model}: {report['params_before']:,} parameters, accuracy {before.accuracy:.4f} on {before.n} "
              f"{dataset} test images (inputs normalised: {shown})")

    pruned, masks, rows, extra = run_method(model, args, layers)
    report.update(extra)
    if args.finetune_epochs:
        from prune.finetune import finetune

        if evaluate_it:  # the pruned model's accuracy before its fine-tune
            report["accuracy_pruned"] = evaluate(pruned, dataset, inputs=inputs, batch_size=args.batch_size).accuracy
        train = load_inputs(dataset, _train_split(dataset), norm, root=args.data_dir, limit=args.finetune_samples,
                            seed=args.seed)
        pruned, history = finetune(pruned, train, epochs=args.finetune_epochs, lr=args.finetune_lr,
                                   optimizer=args.finetune_optimizer, masks=masks if masks is not None else False,
                                   seed=args.seed, inplace=True, progress=not args.no_progress)
        report["finetune"] = dict(split=_train_split(dataset), images=len(train[1]), epochs=args.finetune_epochs,
                                  lr=args.finetune_lr, optimizer=args.finetune_optimizer, history=history)
    pruned.eval()
    report["params_after"] = count_parameters(pruned)
    report["nonzero_after"] = count_nonzero(pruned)
    report["params_reduction"] = 1 - report["params_after"] / report["params_before"]
    report["nonzero_reduction"] = 1 - report["nonzero_after"] / report["nonzero_before"]
    if evaluate_it:
        after = evaluate(pruned, dataset, inputs=inputs, batch_size=args.batch_size)
        report["accuracy_after"] = after.accuracy
    save_pruned(pruned, out_path, masks=masks, extra=dict(method=args.method, source=args.model))
    args.written = [*getattr(args, "written", []), str(args.out)]
    reloaded = load_pruned(out_path)
    probe = inputs[0][: args.batch_size] if inputs is not None else None
    if probe is not None:
        report["reload_identical"] = bool(torch.equal(predict(pruned, probe), predict(reloaded, probe)))
    if args.time:
        x = inputs[0][: args.time_batch] if inputs is not None else None
        if x is None:
            raise ValueError("--time needs evaluation inputs (drop --no-eval)")
        report["time_before"], report["time_after"] = inference_time([model, pruned], x, repeats=args.time_repeats)
    report["layers"] = rows
    report["out"] = str(out_path)
    report["wall_time_s"] = time.perf_counter() - t0

    line = (f"{args.method}: {report['params_before']:,} -> {report['params_after']:,} parameters "
            f"({100 * report['params_reduction']:.1f}% fewer), nonzero {report['nonzero_before']:,} -> "
            f"{report['nonzero_after']:,} ({100 * report['nonzero_reduction']:.1f}% fewer)")
    if evaluate_it:
        line += f"; accuracy {report['accuracy_before']:.4f} -> " + (
            f"{report['accuracy_pruned']:.4f} pruned -> " if "accuracy_pruned" in report else "") + (
            f"{report['accuracy_after']:.4f}" + (" fine-tuned" if "accuracy_pruned" in report else ""))
    print(line)
    if args.time:
        print(f"CPU inference (batch {args.time_batch}, {args.threads} thread(s), median of {args.time_repeats} interleaved): "
              f"{report['time_before']['median_ms']:.2f} ms -> {report['time_after']['median_ms']:.2f} ms")
    print(f"pruned model written to {out_path}" + (" (reloads to identical outputs)"
                                                   if report.get("reload_identical") else ""))
    if args.report:
        from prune.io import atomic_write_text

        atomic_write_text(json.dumps(report, indent=2, default=str), args.report)
        args.written = [*getattr(args, "written", []), str(args.report)]
        print(f"report written to {args.report}")
    if report.get("reload_identical") is False:
        print("rmt prune: error: the reloaded model's outputs differ from the pruned model's", file=sys.stderr)
        return 1
    return 0


def register(sub) -> None:
    p = sub.add_parser("prune", help="prune a model and write the pruned model plus a JSON report",
                       description=__doc__.split("\n\n")[0])
    from . import MODEL_HELP, add_model_arguments

    p.add_argument("model", help=MODEL_HELP)
    p.add_argument("--method", required=True, choices=METHODS)
    p.add_argument("--out", required=True, metavar="FILE", type=opt.path, help="the pruned model (load with prune.io.load_pruned)")
    p.add_argument("--report", metavar="JSON", type=opt.path, help="write the report here")
    p.add_argument("--layers", type=opt.name_list, help="comma-separated layer names to prune (default: every Linear/Conv2d)")
    g = p.add_argument_group("method options")
    g.add_argument("--bulk-keep", type=opt.fraction, default=0.0, help="mp: fraction of the bulk singular values kept")
    g.add_argument("--fit-cutoff", type=opt.positive_float, default=None, help="mp: leave layers with MP-fit error >= this")
    g.add_argument("--rank", type=opt.positive_int, help="rank: the kept rank")
    g.add_argument("--energy", type=opt.fraction, default=0.9, help="energy: kept fraction of sum s^2 (default 0.9)")
    g.add_argument("--min-rank", type=opt.positive_int, default=None,
                   help="SVD methods: never keep fewer values (default: the model's output dimension, as the "
                        "seed code; 1 allows rank-1 layers, which collapse a classifier)")
    g.add_argument("--factorize", default="auto", choices=("auto", "always", "never"))
    g.add_argument("--amount", type=opt.fraction, help="sparsity methods: target fraction of zeros / reduction")
    g.add_argument("--scope", default="global", choices=("global", "layer"), help="magnitude/spectral scope")
    g.add_argument("--theta-reduction", type=opt.open_fraction, default=0.06, help="sv-sparsify: r in paper_theta(r, N, M)")
    g.add_argument("--reg-steps", type=opt.nonnegative_int, default=0, help="rmt-cycle: regularisation steps per cycle")
    g.add_argument("--max-cycles", type=opt.positive_int, default=34, help="rmt-cycle: maximum number of cycles")
    g.add_argument("--select-steps", type=opt.nonnegative_int, default=128,
                   help="ser/hybrid: selection-phase mini-batches (default 128)")
    g.add_argument("--alpha", type=opt.open_fraction, default=None, help="BEMA trimming (method default when omitted)")
    g.add_argument("--beta", type=opt.open_fraction, default=None, help="Tracy-Widom level (method default when omitted)")
    g.add_argument("--seed", type=opt.seed, default=0, help="seed of random methods, subsets and fine-tuning")
    e = p.add_argument_group("evaluation and fine-tuning")
    e.add_argument("--data-dir", type=opt.path, help="data root (default $RMT_DATA_DIR)")
    e.add_argument("--eval-samples", type=opt.positive_int, metavar="K", help="score a seeded random subset of K test images")
    e.add_argument("--no-eval", action="store_true", help="do not score the model")
    e.add_argument("--batch-size", type=opt.positive_int, default=500)
    e.add_argument("--finetune-epochs", type=opt.nonnegative_int, default=0)
    e.add_argument("--finetune-lr", type=opt.positive_float, default=1e-3)
    e.add_argument("--finetune-optimizer", default="adamw", choices=("sgd", "adamw"))
    e.add_argument("--finetune-samples", type=opt.positive_int, help="fine-tune on a seeded subset of the training images")
    e.add_argument("--time", action="store_true", help="measure CPU inference time before and after")
    e.add_argument("--time-batch", type=opt.positive_int, default=256)
    e.add_argument("--time-repeats", type=opt.positive_int, default=9)
    e.add_argument("--threads", type=opt.positive_int, default=1, help="torch threads (default 1)")
    e.add_argument("--no-progress", action="store_true")
    add_model_arguments(p)
    p.set_defaults(func=cmd_prune)
