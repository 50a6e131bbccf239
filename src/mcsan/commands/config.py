"""`mcsan config --show [--config NAME] [--markdown]`: the config reference."""

from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``config`` subcommand."""
    parser = subparsers.add_parser(
        "config",
        help="list every config key with its type, default, valid values and doc",
        description="The run config reference, generated from the code: every key of the "
        "data, model, loss and train sections with its type, default (or the value a config "
        "gives, with --config), valid range or choices and one line of doc.",
    )
    parser.add_argument("--show", action="store_true",
                        help="print the reference (the default action)")
    parser.add_argument("--config", metavar="NAME_OR_PATH", default=None,
                        help="show this config's values instead of the defaults "
                        "(a shipped name: world, msrvtt, vatex; or a YAML path)")
    parser.add_argument("--markdown", action="store_true",
                        help="print docs/CONFIG.md (defaults and what each shipped config "
                        "changes) instead of the plain table")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Print the reference."""
    from mcsan.config.reference import reference_markdown, reference_text
    from mcsan.core.errors import ConfigError

    if args.markdown:
        if args.config:
            raise ConfigError("--markdown documents the defaults and every shipped config; "
                              "leave out --config")
        print(reference_markdown(), end="")
    else:
        print(reference_text(args.config))
    return 0
