"""One module per ``rmt`` subcommand; each defines ``register(subparsers)`` and is found automatically."""
