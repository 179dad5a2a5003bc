"""paper_figures package (filled in by later issues)."""
