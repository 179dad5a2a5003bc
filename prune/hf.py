r"""Adapter for Hugging Face ``transformers`` ViTForImageClassification (offline), and timm where it imports.

Every weight matrix of a HF ViT is an ``nn.Linear`` (``q_proj``, ``k_proj``, ``v_proj``, ``o_proj``, ``fc1``,
``fc2``, ``classifier``; older releases name them ``query`` / ``key`` / ``value`` / ``dense``) or the
patch ``Conv2d``, so :func:`prune.analysis.analyze` and the pruning methods of :mod:`prune` apply
directly. This module adds what they cannot know:

* building a model from a config **offline** (``HF_HUB_OFFLINE=1``; no download), seeded:
  :func:`hf_vit_from_config`; loading a local ``save_pretrained`` directory: :func:`load_hf_vit`;
* the ``rmt_base`` record (``{"kind": "hf-vit", "config": config.to_dict(), ...}``) through which
  :func:`prune.io.save_pruned` / :func:`prune.io.load_pruned` save and rebuild a pruned HF model;
* :func:`prunable_layer_names`: the layers that may be replaced. The patch projection is left out,
  because ``ViTModel.forward`` reads ``patch_embeddings.projection.weight.dtype``, which a factorised
  layer does not have (pruning it anyway gives an AttributeError in the forward pass);
* the input normalisation: ``preprocessor_config.json``'s image_mean / image_std when the directory has
  one, else ViTImageProcessor's default 0.5 / 0.5.

timm: ``timm`` is not installed here (it cannot be imported), so the timm VisionTransformer path is
guarded: :func:`timm_vit` raises an ImportError saying so. Where timm imports, its VisionTransformer
also uses ``nn.Linear`` (fused ``qkv`` of out = 3 dim, which :func:`prune.analysis.analyze` splits into
q, k, v), so analysis and pruning apply to it unchanged; saving uses ``{"kind": "timm", ...}`` only where
timm is present. This path is untested in this repository.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

__all__ = ["hf_vit_from_config", "load_hf_vit", "hf_base", "prunable_layer_names", "is_hf_vit", "timm_available",
           "timm_vit", "HF_DEFAULT_NORMALIZATION"]

HF_DEFAULT_NORMALIZATION = ((0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
#: module-name suffixes the adapter never replaces (transformers reads their ``.weight`` directly)
HF_KEEP_DENSE = ("patch_embeddings.projection",)


def _transformers():
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        import transformers
    except ImportError as err:  # pragma: no cover - transformers is installed in this project
        raise ImportError("the Hugging Face adapter needs the transformers package (pip install transformers)") from err
    return transformers


def hf_base(config, normalization=None, dataset: str | None = None) -> dict:
    """The ``rmt_base`` record of a HF ViT with ``config``.

    Nothing is guessed: the data set and the normalisation are recorded only when given (a directory's
    ``preprocessor_config.json`` gives the normalisation); otherwise the commands ask for ``--dataset`` and
    ``--mean``/``--std`` (or ``--no-normalize``).
    """
    cfg = config.to_dict()
    cfg.pop("_name_or_path", None)
    return dict(kind="hf-vit", config=json.loads(json.dumps(cfg, default=str)), dataset=dataset,
                normalization=[list(v) for v in normalization] if normalization is not None else None)


def hf_vit_from_config(config: Mapping | object | None = None, seed: int = 0, **overrides) -> nn.Module:
    """A ``ViTForImageClassification`` built from a config (a ViTConfig, or its dict), offline, initialised with ``seed``.

    ``overrides`` set config fields (``hidden_size=64``, ``num_hidden_layers=2``, ``image_size=28``, ...).
    The model is in eval mode and carries ``rmt_base``.
    """
    tf = _transformers()
    if config is None:
        config = tf.ViTConfig()
    elif isinstance(config, Mapping):
        config = tf.ViTConfig.from_dict(dict(config))
    elif not isinstance(config, tf.ViTConfig):
        raise TypeError(f"config must be a transformers.ViTConfig or a dict, got {type(config).__name__}")
    for key, val in overrides.items():
        if not hasattr(config, key):
            raise ValueError(f"ViTConfig has no field {key!r}")
        setattr(config, key, val)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # transformers initialises from the global generator: isolate and seed it
        model = tf.ViTForImageClassification(config)
    model.eval()
    model.rmt_base = hf_base(config)
    return model


def load_hf_vit(directory: str | os.PathLike) -> nn.Module:
    """A ``ViTForImageClassification`` from a local ``save_pretrained`` directory (no network), in eval mode."""
    tf = _transformers()
    directory = Path(directory)
    if not (directory / "config.json").is_file():
        raise ValueError(f"directory {str(directory)!r} holds no config.json (not a save_pretrained directory)")
    config = tf.AutoConfig.from_pretrained(directory, local_files_only=True)
    if config.model_type != "vit":
        raise ValueError(f"{directory} holds a {config.model_type!r} model; the adapter reads ViT ('vit') models")
    model = tf.ViTForImageClassification.from_pretrained(directory, local_files_only=True).eval()
    norm = None
    pre = directory / "preprocessor_config.json"
    if pre.is_file():
        p = json.loads(pre.read_text())
        if "image_mean" in p and "image_std" in p:
            norm = (tuple(p["image_mean"]), tuple(p["image_std"]))
    model.rmt_base = hf_base(model.config, norm)
    return model


def is_hf_vit(model: nn.Module) -> bool:
    """True for a transformers ViTForImageClassification (without importing transformers if it is not loaded)."""
    return type(model).__name__ == "ViTForImageClassification" and type(model).__module__.startswith("transformers")


def prunable_layer_names(model: nn.Module) -> list[str]:
    """Names of the layers that pruning may replace: all prunable layers except those transformers reads directly."""
    from .layers import prunable_layers

    names = [n for n, _ in prunable_layers(model)]
    if is_hf_vit(model):
        names = [n for n in names if not n.endswith(HF_KEEP_DENSE)]
    return names


def timm_available() -> bool:
    """Whether ``import timm`` works here (it does not in this repository's environment)."""
    try:
        import timm  # noqa: F401
    except ImportError:
        return False
    return True


def timm_vit(model_name: str = "vit_tiny_patch16_224", **kwargs) -> nn.Module:  # pragma: no cover - no timm here
    """A timm VisionTransformer built without pretrained weights (``pretrained=False``; offline).

    Raises
    ------
    ImportError
        timm cannot be imported (the case in this repository: timm is not a dependency).
    """
    if not timm_available():
        raise ImportError("timm cannot be imported here; the timm VisionTransformer path needs `pip install timm` "
                          "(analysis and pruning then apply to its nn.Linear layers as to any model)")
    import timm

    model = timm.create_model(model_name, pretrained=False, **kwargs).eval()
    model.rmt_base = dict(kind="timm", name=model_name, kwargs=kwargs, dataset=None, normalization=None)
    return model
