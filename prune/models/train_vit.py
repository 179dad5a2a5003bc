r"""Train the project's small ViT (:mod:`prune.models.vit`) on MNIST or Fashion-MNIST, on the CPU.

Reproducible: one thread (``torch.set_num_threads(1)``), one seed for the initialisation, the
train/validation split, the batch order and the augmentation (random shifts of up to ``--shift``
pixels, zero-filled). AdamW with linear warm-up then cosine decay, gradient clipping, a tqdm bar,
a checkpoint after every epoch (``--resume`` continues from it). The last 5,000 training images are
held out for validation; the test set is scored once, at the end. Writes ``<out>/<name>.pt`` (the
state_dict, loadable with ``torch.load(weights_only=True)``) and ``<out>/<name>.json`` (config,
exact command, accuracies, versions, wall time).

Example (the committed weights)::

    RMT_DATA_DIR=/work/shared/data python -m prune.models.train_vit --dataset mnist --epochs 9
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prune.data import load_idx_dataset
from prune.models.vit import VIT_MNIST_CONFIG, WEIGHTS_DIR, ViT

#: per-data-set input normalisation (mean, std) applied to pixels / 255
NORMALIZATION = {"mnist": (0.1307, 0.3081), "fashion-mnist": (0.2860, 0.3530)}


def to_tensor(images: np.ndarray, dataset: str) -> torch.Tensor:
    """uint8 (n, 28, 28) -> normalised float32 (n, 1, 28, 28)."""
    mean, std = NORMALIZATION[dataset]
    return ((torch.from_numpy(images).float() / 255.0 - mean) / std).unsqueeze(1)


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by an integer offset in [-max_shift, max_shift]^2, filling with the background value."""
    if max_shift == 0:
        return x
    B, C, H, W = x.shape
    bg = x.amin()
    pad = F.pad(x, (max_shift,) * 4, value=float(bg))
    dx = torch.randint(0, 2 * max_shift + 1, (B,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (B,), generator=gen)
    rows = (dy[:, None] + torch.arange(H)[None, :])  # (B, H)
    cols = (dx[:, None] + torch.arange(W)[None, :])  # (B, W)
    idx_b = torch.arange(B)[:, None, None]
    return pad[idx_b, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 1000) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="mnist", choices=sorted(NORMALIZATION))
    ap.add_argument("--epochs", type=int, default=9)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weight-decay", type=float, default=0.05)
    ap.add_argument("--warmup-epochs", type=float, default=1.0)
    ap.add_argument("--shift", type=int, default=2, help="max random shift in pixels (0: no augmentation)")
    ap.add_argument("--clip", type=float, default=1.0, help="gradient-norm clip")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dim", type=int, default=VIT_MNIST_CONFIG["dim"])
    ap.add_argument("--depth", type=int, default=VIT_MNIST_CONFIG["depth"])
    ap.add_argument("--heads", type=int, default=VIT_MNIST_CONFIG["heads"])
    ap.add_argument("--patch-size", type=int, default=VIT_MNIST_CONFIG["patch_size"])
    ap.add_argument("--mlp-ratio", type=float, default=VIT_MNIST_CONFIG["mlp_ratio"])
    ap.add_argument("--data-dir", default=None, help="data root (default $RMT_DATA_DIR)")
    ap.add_argument("--out", default=str(WEIGHTS_DIR), help="folder for <name>.pt and <name>.json")
    ap.add_argument("--name", default=None, help="file stem (default vit-<dataset>)")
    ap.add_argument("--checkpoint", default=None, help="per-epoch checkpoint (default /tmp/<name>-ckpt.pt)")
    ap.add_argument("--resume", action="store_true", help="continue from the checkpoint")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--limit", type=int, default=None, help="use only the first LIMIT training images (smoke runs)")
    args = ap.parse_args(argv)
    for arg in ("epochs", "batch_size", "threads"):
        if getattr(args, arg) < 1:
            raise ValueError(f"--{arg.replace('_', '-')} must be >= 1, got {getattr(args, arg)}")

    torch.set_num_threads(args.threads)
    name = args.name or f"vit-{args.dataset}"
    ckpt_path = Path(args.checkpoint or f"/tmp/{name}-ckpt.pt")
    t_start = time.time()

    xtr, ytr = load_idx_dataset(args.dataset, "train", root=args.data_dir)
    xte, yte = load_idx_dataset(args.dataset, "test", root=args.data_dir)
    gen = torch.Generator().manual_seed(args.seed)
    perm = torch.randperm(len(xtr), generator=gen)
    val_idx, tr_idx = perm[-5000:], perm[:-5000]
    if args.limit:
        tr_idx = tr_idx[: args.limit]
    x_all, y_all = to_tensor(xtr, args.dataset), torch.from_numpy(ytr)
    x_train, y_train = x_all[tr_idx], y_all[tr_idx]
    x_val, y_val = x_all[val_idx], y_all[val_idx]
    x_test, y_test = to_tensor(xte, args.dataset), torch.from_numpy(yte)

    config = dict(VIT_MNIST_CONFIG, dim=args.dim, depth=args.depth, heads=args.heads, patch_size=args.patch_size,
                  mlp_ratio=args.mlp_ratio)
    torch.manual_seed(args.seed)  # nn.init reads the global generator: seed it for the initialisation only
    model = ViT(**config)
    decay = [p for n, p in model.named_parameters() if p.dim() >= 2 and "embed" not in n and "token" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.dim() >= 2 and "embed" not in n and "token" not in n)]
    decay += [model.patch_embed.weight]
    no_decay = [p for p in no_decay if p is not model.patch_embed.weight]
    opt = torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                             {"params": no_decay, "weight_decay": 0.0}], lr=args.lr)
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    total, warm = args.epochs * steps_per_epoch, int(args.warmup_epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / max(warm, 1) if s < warm else 0.5 * (1 + math.cos(math.pi * (s - warm) / max(total - warm, 1))))
    start_epoch, history = 0, []
    if args.resume and ckpt_path.is_file():
        ck = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # our own checkpoint (generator state)
        model.load_state_dict(ck["model"]); opt.load_state_dict(ck["opt"]); sched.load_state_dict(ck["sched"])
        gen.set_state(ck["gen"]); start_epoch, history = ck["epoch"], ck["history"]
        print(f"resumed from {ckpt_path} at epoch {start_epoch}")

    from tqdm.auto import tqdm

    for epoch in range(start_epoch, args.epochs):
        model.train()
        order = torch.randperm(len(x_train), generator=gen)
        bar = tqdm(range(steps_per_epoch), desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", mininterval=10)
        run_loss = 0.0
        for s in bar:
            idx = order[s * args.batch_size:(s + 1) * args.batch_size]
            xb = random_shift(x_train[idx], args.shift, gen)
            loss = F.cross_entropy(model(xb), y_train[idx])
            loss_value = float(loss.detach())
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
            opt.step()
            sched.step()
            run_loss = 0.98 * run_loss + 0.02 * loss_value if s else loss_value
            if s % 50 == 0:
                bar.set_postfix(loss=f"{run_loss:.4f}", lr=f"{sched.get_last_lr()[0]:.2e}")
        val = accuracy(model, x_val, y_val)
        history.append(dict(epoch=epoch + 1, train_loss=run_loss, val_accuracy=val, elapsed_s=time.time() - t_start))
        print(f"epoch {epoch + 1}: loss {run_loss:.4f}, validation accuracy {val:.4f}, {time.time() - t_start:.0f} s",
              flush=True)
        tmp = ckpt_path.with_suffix(".tmp")
        torch.save(dict(model=model.state_dict(), opt=opt.state_dict(), sched=sched.state_dict(), gen=gen.get_state(),
                        epoch=epoch + 1, history=history), tmp)
        os.replace(tmp, ckpt_path)

    test_acc = accuracy(model, x_test, y_test)
    print(f"test accuracy {test_acc:.4f} ({args.dataset}, {len(x_test)} images)")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().clone().contiguous() for k, v in model.state_dict().items()}
    tmp = out / f".{name}.pt.tmp"
    torch.save(state, tmp)
    os.replace(tmp, out / f"{name}.pt")
    meta = dict(
        name=name, dataset=args.dataset, config=config, normalization=NORMALIZATION[args.dataset],
        command="RMT_DATA_DIR=<data> python -m prune.models.train_vit " + " ".join(sys.argv[1:] if argv is None else argv),
        args=vars(args), test_accuracy=test_acc, test_images=len(x_test), history=history,
        parameters=sum(p.numel() for p in model.parameters()), wall_time_s=time.time() - t_start,
        versions=dict(python=platform.python_version(), torch=torch.__version__, numpy=np.__version__),
        machine=dict(processor=platform.machine(), threads=args.threads, cpus=os.cpu_count()),
    )
    (out / f"{name}.json").write_text(json.dumps(meta, indent=2))
    print(f"wrote {out / (name + '.pt')} and {name}.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
