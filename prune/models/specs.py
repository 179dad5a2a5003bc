"""The named architectures: how to build each, load its weights, and the data set and normalisation it is scored on.

:data:`MODEL_SPECS` maps a registry name (the table in :mod:`prune.models.registry`) to a :class:`ModelSpec`;
:func:`build_model` gives the untrained architecture with its ``rmt_base`` record (:func:`base_spec`), and
:func:`eval_spec` the inputs a model is scored on. This module imports nothing from :mod:`prune.io`, so
:mod:`prune.io` can rebuild a saved model's registry base from it; loading trained weights or a saved file is
:func:`prune.models.registry.load_model`.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Callable

from torch import nn

from . import cifar_resnet, mnist_cnn, vit

__all__ = ["ModelSpec", "MODEL_SPECS", "build_model", "eval_spec", "base_spec"]


@dataclass(frozen=True)
class ModelSpec:
    """How to build a named architecture, load its weights, and score it."""

    build: Callable[..., nn.Module]
    load: Callable[[str | os.PathLike | None], nn.Module] | None
    dataset: str | None
    normalization: tuple | None
    description: str


def _vit_meta(name: str) -> dict:
    path = vit.WEIGHTS_DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _build_vit_mnist(**kwargs) -> nn.Module:
    config = dict(_vit_meta("vit-mnist").get("config", vit.VIT_MNIST_CONFIG))
    config.update(kwargs)
    return vit.ViT(**config)


MODEL_SPECS: dict[str, ModelSpec] = {
    "mnist-cnn": ModelSpec(lambda **kw: mnist_cnn.MnistCNN(**kw), lambda root=None: mnist_cnn.load_pretrained(
        "mnist-cnn", root), "mnist", mnist_cnn.NORMALIZATION, "MNIST CNN (shared/models/mnist-cnn), 99.05% on MNIST"),
    **{name: ModelSpec((lambda n: lambda **kw: cifar_resnet.resnet(n, **kw))(name),
                       (lambda n: lambda root=None: cifar_resnet.load_pretrained(n, root))(name), "cifar10",
                       cifar_resnet.NORMALIZATION, f"CIFAR-10 {name} (shared/models/cifar10-resnet)")
       for name in cifar_resnet.DEPTHS},
    "vit-mnist": ModelSpec(_build_vit_mnist, lambda root=None: vit.load_pretrained("vit-mnist", root), "mnist",
                           ((0.1307,), (0.3081,)), "our small ViT trained on MNIST (prune/models/train_vit.py)"),
    "vit": ModelSpec(lambda **kw: vit.ViT(**kw), None, None, None, "untrained ViT of any config (build_model only)"),
}


def base_spec(name: str, kwargs: dict | None = None) -> dict:
    """The ``rmt_base`` record of registry model ``name`` built with ``kwargs``."""
    spec = MODEL_SPECS[name]
    norm = [list(v) for v in spec.normalization] if spec.normalization is not None else None
    return dict(kind="registry", name=name, kwargs=dict(kwargs or {}), dataset=spec.dataset, normalization=norm)


def _check_name(name) -> str:
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    if name not in MODEL_SPECS:
        raise ValueError(f"unknown model name {name!r}; known: {sorted(MODEL_SPECS)}")
    return name


def build_model(name: str, **kwargs) -> nn.Module:
    """The untrained architecture ``name`` (see the module table), with ``model.rmt_base`` set."""
    model = MODEL_SPECS[_check_name(name)].build(**kwargs)
    model.rmt_base = base_spec(name, kwargs)
    return model


def eval_spec(model: nn.Module | str) -> tuple[str | None, tuple | None]:
    """(data set, (mean, std)) a model (or registry name) is scored on; None where unknown.

    The normalisation is ``"none"`` where pixels / 255 only was chosen explicitly (``--no-normalize``).
    """
    if isinstance(model, str):
        spec = MODEL_SPECS[_check_name(model)]
        return spec.dataset, spec.normalization
    base = getattr(model, "rmt_base", None) or {}
    norm = base.get("normalization")
    return base.get("dataset"), (tuple(tuple(v) for v in norm) if isinstance(norm, (list, tuple)) else norm)
