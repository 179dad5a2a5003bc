"""Benchmark 1: whole-model spectral analysis, ours against WeightWatcher 0.7.7 and against the hardware limit.

For each model: wall time of

* ``prune.analyze(model)`` (ours: ESD + BEMA + MP-fit error of every weight matrix),
* the *limit*: the bare eigenvalue computation of the same matrices, i.e. for each matrix W the float64
  Gram matrix of the smaller side and ``torch.linalg.eigvalsh`` of it, nothing else (no validation, no fit),
* WeightWatcher 0.7.7 ``analyze(mp_fit=True)`` and plain ``analyze()`` (its default power-law analysis),

with the ratios ours / limit and WeightWatcher / ours. A second table times one matrix of each
ViT-Base shape (``theory.fit_spectrum`` on the tensor against Gram + eigvalsh), the per-layer view of the
1.3x goal. Ours and the limit run interleaved (median of the repeats); WeightWatcher, far slower, once.

Models: the pretrained CIFAR ResNet-56 (``prune.models.cifar_resnet``, shared checkpoint), a ViT-Base-sized
Hugging Face ``ViTForImageClassification`` (ViTConfig defaults: 12 layers, width 768, MLP 3072, 1000 classes)
with random weights, and the project's trained ViT (``prune.models.vit.load_pretrained``) when present.

    python benchmarks/analyze_models.py            # full (WeightWatcher on ViT-Base takes minutes)
    python benchmarks/analyze_models.py --quick    # ResNet-20 and a 2-layer ViT-Base-width model
"""
from __future__ import annotations

import _common  # noqa: I001 - pins threads before numpy / torch load

import argparse
import logging
import time
import warnings

import torch

from prune.analysis import analyze, layer_matrices
from theory import fit_spectrum


def bare_eigenvalues(mats) -> None:
    """The limit: float64 Gram of the smaller side + symmetric eigensolve, per matrix."""
    for W in mats:
        X = W.double()
        G = X @ X.T if X.shape[0] <= X.shape[1] else X.T @ X
        torch.linalg.eigvalsh(G)


MODEL_KEYS = ("resnet", "hf-vit", "vit-mnist")


def load_models(quick: bool, which=MODEL_KEYS) -> list[tuple[str, torch.nn.Module, str]]:
    models = []
    try:
        if "resnet" not in which:
            raise ImportError("not selected")
        from prune.models.cifar_resnet import load_pretrained, resnet

        name = "resnet20" if quick else "resnet56"
        try:
            models.append((f"CIFAR {name} (pretrained)", load_pretrained(name), ""))
        except FileNotFoundError as exc:  # checkpoint absent: same architecture, random weights
            torch.manual_seed(0)
            models.append((f"CIFAR {name} (random init)", resnet(name).eval(), f"checkpoint missing: {exc}"))
    except ImportError as exc:
        print(f"# skipped CIFAR ResNet: {exc}")
    try:
        if "hf-vit" not in which:
            raise ImportError("not selected")
        from transformers import ViTConfig, ViTForImageClassification

        cfg = ViTConfig(num_labels=1000, num_hidden_layers=2 if quick else 12)
        torch.manual_seed(0)
        label = f"HF ViT-Base{' (2 layers)' if quick else ''}, random weights"
        models.append((label, ViTForImageClassification(cfg).eval(), "ViTConfig() defaults, 1000 classes"))
    except ImportError as exc:
        print(f"# skipped HF ViT: {exc}")
    try:
        if "vit-mnist" not in which:
            raise ImportError("not selected")
        from prune.models.vit import load_pretrained as load_vit

        models.append(("project ViT (trained, vit-mnist)", load_vit("vit-mnist"), "prune/models/weights/vit-mnist.pt"))
    except (ImportError, FileNotFoundError) as exc:
        print(f"# skipped trained ViT: {exc}")
    return models


def weightwatcher_times(model, mp_fit_repeats: int) -> dict:
    import weightwatcher as ww

    logging.getLogger("weightwatcher").setLevel(logging.ERROR)
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        watcher = ww.WeightWatcher(model=model, log_level=logging.ERROR)
        t0 = time.perf_counter()
        df = watcher.analyze()
        out["ww_analyze_s"] = time.perf_counter() - t0
        times = []
        for _ in range(mp_fit_repeats):
            watcher = ww.WeightWatcher(model=model, log_level=logging.ERROR)
            t0 = time.perf_counter()
            df = watcher.analyze(mp_fit=True)
            times.append(time.perf_counter() - t0)
        out["ww_mpfit_s"] = sorted(times)[len(times) // 2]
    out["ww_layers"] = int(len(df))
    out["ww_spikes_total"] = int(df["num_spikes"].clip(lower=0).sum()) if "num_spikes" in df else -1
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _common.add_common_args(ap)
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats of ours and the limit (default 5, quick 3)")
    ap.add_argument("--no-ww", action="store_true", help="skip WeightWatcher")
    ap.add_argument("--models", nargs="+", choices=MODEL_KEYS, default=list(MODEL_KEYS), help="models to run")
    ap.add_argument("--tag", default="", help="suffix of the CSV names (e.g. a run on a subset of --models)")
    ap.add_argument("--no-layers", action="store_true", help="skip the per-shape ViT-Base table")
    args = ap.parse_args(argv)
    repeats = args.repeats or (3 if args.quick else 5)
    meta = _common.header("benchmarks/analyze_models.py")
    _common.print_header(meta)
    have_ww = not args.no_ww and _common.have("weightwatcher")
    if not have_ww:
        print("# WeightWatcher not run (" + ("--no-ww" if args.no_ww else "weightwatcher does not import") + ")")

    rows = []
    for label, model, note in load_models(args.quick, args.models):
        mats = [W.detach() for _, _, _, W, _ in layer_matrices(model)]
        med = _common.interleaved({"ours": lambda: analyze(model), "limit": lambda: bare_eigenvalues(mats)},
                                  repeats=repeats)
        table = analyze(model)
        row = dict(model=label, params=sum(p.numel() for p in model.parameters()), matrices=len(mats),
                   ours_s=med["ours"], limit_s=med["limit"], ours_per_matrix_ms=1e3 * med["ours"] / len(mats),
                   ours_over_limit=med["ours"] / med["limit"],
                   ours_spikes_total=int(sum(max(r.n_spikes, 0) for r in table)))
        if have_ww:
            row.update(weightwatcher_times(model, mp_fit_repeats=1))
            row["ww_mpfit_per_layer_s"] = row["ww_mpfit_s"] / max(row["ww_layers"], 1)
            row["ww_mpfit_over_ours"] = row["ww_mpfit_s"] / med["ours"]
            row["ww_analyze_over_ours"] = row["ww_analyze_s"] / med["ours"]
        row["note"] = note
        rows.append(row)
        print(f"# done: {label}", flush=True)

    cols = ["model", "matrices", "ours_s", "limit_s", "ours_over_limit", "ours_per_matrix_ms"]
    if have_ww:
        cols += ["ww_layers", "ww_analyze_s", "ww_mpfit_s", "ww_mpfit_per_layer_s", "ww_mpfit_over_ours"]
    print("\nWhole-model analysis (seconds; ours/limit and WeightWatcher/ours are ratios)")
    print(_common.table(rows, cols))
    _common.write_csv(rows, "analyze_models" + args.tag, meta, _common.out_dir(args))
    if args.no_layers:
        return 0

    # per-layer view on ViT-Base shapes: one matrix of each shape, many repeats
    gen = torch.Generator().manual_seed(0)
    shapes = [(768, 768), (3072, 768), (768, 3072)]
    layer_rows = []
    for N, M in shapes:
        W = torch.randn(N, M, generator=gen) * 0.02
        med = _common.interleaved({"ours": lambda: fit_spectrum(W), "limit": lambda: bare_eigenvalues([W])},
                                  repeats=3 * repeats)
        layer_rows.append(dict(shape=f"{N}x{M}", dtype="float32", ours_ms=1e3 * med["ours"],
                               limit_ms=1e3 * med["limit"], ours_over_limit=med["ours"] / med["limit"]))
    print("\nOne ViT-Base-shaped matrix: theory.fit_spectrum vs Gram + eigvalsh (milliseconds)")
    print(_common.table(layer_rows))
    _common.write_csv(layer_rows, "analyze_layers", _common.header("benchmarks/analyze_models.py"),
                      _common.out_dir(args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
