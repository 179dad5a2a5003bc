"""One module per ``rmt`` subcommand; each defines ``register(subparsers)`` and is found automatically.

The MODEL argument's options, shared by every command that takes a model, live here.
"""
from __future__ import annotations

import argparse
from pathlib import Path

MODEL_HELP = ("registered name (mnist-cnn, resnet20/32/44/56, vit-mnist), path/to/file.py:Name or "
              "package.module:Name (a class or factory; with --weights), timm:NAME, a pruned-model file, or a "
              "Hugging Face ViT directory")


def add_model_arguments(p: argparse.ArgumentParser, eval_options: bool = True) -> None:
    """--weights, --model-kwargs and (with ``eval_options``) --dataset, --mean, --std, --no-normalize."""
    g = p.add_argument_group("model source and inputs (for a model that is not registered)")
    g.add_argument("--weights", metavar="FILE", help="state dict for file.py:Name / package.module:Name "
                   "(.pt/.pth/.bin read with weights_only=True, or .safetensors). Importing the file or module "
                   "runs its code, also when a file saved from it is loaded")
    g.add_argument("--model-kwargs", metavar="JSON", help="keyword arguments of Name, a JSON object, e.g. "
                   "'{\"hidden\": 128}'")
    if eval_options:
        g.add_argument("--dataset", choices=("mnist", "fashion-mnist", "cifar10"),
                       help="the data set the model is scored on (overrides its record)")
        g.add_argument("--mean", metavar="M[,M,M]", help="input normalisation mean per channel (pixels / 255 first)")
        g.add_argument("--std", metavar="S[,S,S]", help="input normalisation std per channel")
        g.add_argument("--no-normalize", action="store_true", help="score on pixels / 255 without normalisation")


def resolve_from_args(args: argparse.Namespace, allow_torchscript: bool = False):
    """(model, InputSpec) of the command's MODEL and its options (prune.models.resolve.resolve_model)."""
    from prune.models.resolve import resolve_model

    return resolve_model(args.model, weights=args.weights, model_kwargs=args.model_kwargs,
                         dataset=getattr(args, "dataset", None), mean=getattr(args, "mean", None),
                         std=getattr(args, "std", None), normalize=False if getattr(args, "no_normalize", False)
                         else None, allow_torchscript=allow_torchscript)


def model_inputs(args: argparse.Namespace) -> dict:
    """{description: path} of the files the MODEL argument reads (never to be overwritten by an output)."""
    model = str(args.model)
    where = model.rpartition(":")[0] if model.rpartition(":")[0].endswith(".py") else model
    found = {"model file": where if Path(where).expanduser().exists() else None}
    if getattr(args, "weights", None):
        found["--weights"] = args.weights
    return found
