"""CLI subcommands: one module each, discovered by :mod:`mcsan.cli`.

A module defines ``register(subparsers)`` that adds its parser and sets
``func=run`` with ``run(args: argparse.Namespace) -> int``.

May import: everything (the CLI layer); heavy imports stay inside ``run``.
"""
