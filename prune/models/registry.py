"""Model registry: a name -> (architecture, pretrained weights, the data set and input normalisation it is scored on).

``build_model(name, **kwargs)`` gives the untrained architecture, ``load_model(name_or_path)`` a trained model:

=================  ==========================================================  =========  ==================
name               model                                                       data set   normalisation
=================  ==========================================================  =========  ==================
``mnist-cnn``      :class:`~prune.models.mnist_cnn.MnistCNN`, shared/models     mnist      0.1307 / 0.3081
``resnet20..56``   :class:`~prune.models.cifar_resnet.CifarResNet`, shared      cifar10    ImageNet mean/std
``vit-mnist``      our :class:`~prune.models.vit.ViT`, ``weights/vit-mnist.pt``  mnist      0.1307 / 0.3081
``vit``            an untrained ViT of any config (``build_model`` only)        --         --
a file path        a pruned model saved by :func:`prune.io.save_pruned`         recorded   recorded
a directory        a Hugging Face ``save_pretrained`` ViT (:mod:`prune.hf`)      by shape   preprocessor config
=================  ==========================================================  =========  ==================

Every model returned carries ``model.rmt_base``: a JSON-able dict (``kind``, ``name``, ``kwargs``, ``dataset``,
``normalization``) from which :mod:`prune.io` rebuilds the architecture when a pruned copy is reloaded.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from torch import nn

from . import cifar_resnet, mnist_cnn, vit

__all__ = ["ModelSpec", "MODEL_SPECS", "build_model", "load_model", "eval_spec", "base_spec"]


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


def load_model(name_or_path: str | os.PathLike, root: str | os.PathLike | None = None) -> nn.Module:
    """A trained model in eval mode: a registry name, a pruned-model file, or a Hugging Face ViT directory.

    Parameters
    ----------
    name_or_path : str or path
        ``mnist-cnn``, ``resnet20`` / ``32`` / ``44`` / ``56``, ``vit-mnist``; a file written by
        :func:`prune.io.save_pruned`; or a directory written by ``ViTForImageClassification.save_pretrained``.
    root : folder of the pretrained checkpoints (default ``$RMT_MODELS_DIR``, else ``$RMT_DATA_DIR/../models``)

    Raises
    ------
    ValueError
        Neither a known name nor an existing file or directory.
    """
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise TypeError(f"name_or_path must be a str or path, got {type(name_or_path).__name__}")
    key = os.fspath(name_or_path)
    if key in MODEL_SPECS:
        spec = MODEL_SPECS[key]
        if spec.load is None:
            raise ValueError(f"{key!r} has no trained weights; use build_model({key!r}, ...)")
        model = spec.load(root)
        kwargs = dict(model.config) if key == "vit-mnist" else {}
        model.rmt_base = base_spec("vit" if key == "vit-mnist" else key, kwargs)
        if key == "vit-mnist":
            model.rmt_base.update(dataset=spec.dataset, normalization=[list(v) for v in spec.normalization])
        return model
    path = Path(key).expanduser()
    if path.is_dir():
        from ..hf import load_hf_vit

        return load_hf_vit(path)
    if path.is_file():
        from ..io import load_pruned

        return load_pruned(path)
    raise ValueError(f"model {key!r} is neither a known name ({', '.join(sorted(MODEL_SPECS))}) nor an existing "
                     f"pruned-model file or Hugging Face directory")


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
