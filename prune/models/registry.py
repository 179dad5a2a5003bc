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

The table of names itself (:data:`MODEL_SPECS`, :func:`build_model`, :func:`eval_spec`, :func:`base_spec`) is in
:mod:`prune.models.specs`, which :mod:`prune.io` uses; this module adds :func:`load_model`, which reads pruned files
through :mod:`prune.io`, so the dependency runs one way (registry -> io -> specs).
"""
from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from ..hf import load_hf_vit
from ..io import load_pruned
from .specs import MODEL_SPECS, ModelSpec, base_spec, build_model, eval_spec

__all__ = ["ModelSpec", "MODEL_SPECS", "build_model", "load_model", "eval_spec", "base_spec"]


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
        return load_hf_vit(path)
    if path.is_file():
        return load_pruned(path)
    raise ValueError(f"model {key!r} is neither a known name ({', '.join(sorted(MODEL_SPECS))}) nor an existing "
                     f"pruned-model file or Hugging Face directory")
