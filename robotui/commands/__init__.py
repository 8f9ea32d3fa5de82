"""Headless subcommands. Each module exposes `register(subparsers)`; cli.py lists them in order."""
