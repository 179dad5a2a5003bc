"""rmt: the command-line entry point (``rmt verify``, ...); a thin layer over the packages."""
