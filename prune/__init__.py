"""prune package (filled in by later issues)."""
