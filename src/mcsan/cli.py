"""The one `mcsan` entry point.

Each subcommand lives in its own module under :mod:`mcsan.commands` and exposes
``register(subparsers)``, which adds its parser and sets ``func`` to a function
``run(args) -> int``. Commands import heavy libraries inside ``run`` so that
``mcsan --help`` stays fast. This module only discovers, dispatches and reports errors.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import threading

from mcsan import __version__
from mcsan.core import progress
from mcsan.core.errors import MCSANError
from mcsan.core.extras import missing_extra_message
from mcsan.core.lock import output_lock


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand found in :mod:`mcsan.commands`."""
    import mcsan.commands as commands_pkg

    parser = argparse.ArgumentParser(
        prog="mcsan",
        description="Text-video retrieval with the Multi-Level Cross-Modal Semantic Alignment Network.",
    )
    parser.add_argument("--version", action="version", version=f"mcsan {__version__}")
    parser.add_argument(
        "--quiet", action="store_true", help="no progress bars or progress lines, only results"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands_pkg.__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"mcsan.commands.{info.name}")
        module.register(subparsers)
    for sub in subparsers.choices.values():  # `mcsan COMMAND ... --quiet` works too
        sub.add_argument("--quiet", action="store_true", default=argparse.SUPPRESS,
                         help="no progress bars or progress lines, only results")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    progress.set_enabled(not args.quiet and sys.stderr.isatty())
    progress.setup_logging(quiet=args.quiet)
    threading.excepthook = _thread_error
    try:
        with output_lock(_locked_output(args), args.command):
            return int(args.func(args) or 0)
    except MCSANError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional extra that is not installed
        message = missing_extra_message(exc.name or "", f"mcsan {args.command}")
        if message is None:
            raise
        print(f"error: {message}", file=sys.stderr)
        return 2
    except (OSError, UnicodeDecodeError, MemoryError) as exc:
        # The last line: readers and writers name their file themselves (mcsan.core.io); what
        # slips past them still gets a named error, never a traceback.
        print(f"error: {describe_unexpected(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        progress.stop_logging()


WRITERS = frozenset({"ablate", "convert", "demo", "extract", "index", "parse", "synth", "train"})


def _locked_output(args: argparse.Namespace) -> str | None:
    """The ``--out`` a command writes and must hold alone; None for readers, a DDP rank
    other than 0 and an extraction shard (each writes its own file)."""
    import os

    if args.command not in WRITERS or os.environ.get("RANK", "0") != "0":
        return None
    if args.command == "extract" and (getattr(args, "shard", None) or "WORLD_SIZE" in os.environ):
        return None
    return getattr(args, "out", None)


def _thread_error(hook: threading.ExceptHookArgs) -> None:
    """A background thread (e.g. TensorBoard's writer) that fails on a file: one line."""
    if isinstance(hook.exc_value, MCSANError | OSError | UnicodeDecodeError | MemoryError):
        text = hook.exc_value if isinstance(hook.exc_value, MCSANError) else describe_unexpected(
            hook.exc_value
        )
        print(f"error: in a background writer: {text}", file=sys.stderr)
    else:
        threading.__excepthook__(hook)


def describe_unexpected(exc: BaseException) -> str:
    """One line naming what failed for an OSError, UnicodeDecodeError or MemoryError."""
    from mcsan.core.io import describe_os_error

    if isinstance(exc, OSError):
        return describe_os_error(exc, action="access")
    if isinstance(exc, UnicodeDecodeError):
        return (
            f"an input file is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset "
            f"{exc.start}: {exc.reason}); re-save it as UTF-8"
        )
    return "out of memory; lower the sizes (frames, frame size, batch size) or free memory"


if __name__ == "__main__":
    sys.exit(main())
