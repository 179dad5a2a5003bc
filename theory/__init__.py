"""theory: the random-matrix mathematics on spectra (numpy, scipy, mpmath; no torch at import)."""
from .marchenko_pastur import MarchenkoPastur
from .tracy_widom import TracyWidom

__all__ = ["MarchenkoPastur", "TracyWidom"]
