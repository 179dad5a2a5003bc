"""Architectures whose keys load real checkpoints, and the project's own small models.

One module per family; each helper adds its import line below.
"""

from .registry import load_model  # noqa: E402,F401
from .specs import MODEL_SPECS, ModelSpec, build_model, eval_spec  # noqa: E402,F401
