"""Architectures whose keys load real checkpoints, and the project's own small models.

One module per family; each helper adds its import line below.
"""

from .registry import MODEL_SPECS, ModelSpec, build_model, eval_spec, load_model  # noqa: E402,F401
