"""theory: the random-matrix mathematics on spectra (numpy, scipy, mpmath; no torch at import)."""
from .marchenko_pastur import MarchenkoPastur

__all__ = ["MarchenkoPastur"]
