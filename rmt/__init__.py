"""rmt package (filled in by later issues)."""
