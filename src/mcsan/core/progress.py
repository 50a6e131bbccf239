"""Progress of long loops: a bar on a terminal, periodic plain log lines otherwise.

Library code wraps long loops in :func:`track` and never prints. What ``track`` shows is
decided by whoever runs the library:

- :func:`set_enabled` (the CLI, when stderr is a terminal): a tqdm bar on stderr;
- otherwise, when the ``mcsan`` logger is enabled for INFO (the CLI sets that up with
  :func:`setup_logging`; a script can call ``logging.basicConfig(level=logging.INFO)``):
  a plain line every :data:`LOG_INTERVAL_S` seconds with the count, the rate and the ETA,
  e.g. ``extract: 120/1000 clips (12%), 3.4 clips/s, ETA 4m18s``;
- otherwise nothing (the default for library use and tests).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

log = logging.getLogger("mcsan.progress")

LOG_INTERVAL_S = 20.0
"""Seconds between two progress lines of one loop (the first comes after this long)."""

_enabled = False
_interval = LOG_INTERVAL_S
_handler: logging.Handler | None = None


def set_enabled(enabled: bool) -> None:
    """Turn progress bars on (CLI on a terminal) or off (library use, logs, tests)."""
    global _enabled
    _enabled = enabled


def is_enabled() -> bool:
    """Whether progress bars are shown."""
    return _enabled


def set_log_interval(seconds: float) -> None:
    """Seconds between progress lines (default :data:`LOG_INTERVAL_S`)."""
    global _interval
    _interval = float(seconds)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record comes (tests swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup_logging(quiet: bool = False) -> None:
    """Send the ``mcsan`` loggers to stderr as plain timestamped lines (the CLI calls this).

    INFO and above (progress, one line per epoch, demo stages); WARNING and above when
    ``quiet`` or on a data-parallel rank other than 0. :func:`stop_logging` undoes it.
    """
    global _handler
    stop_logging()
    _handler = _StderrHandler()
    _handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", datefmt="%H:%M:%S"))
    logger = logging.getLogger("mcsan")
    logger.addHandler(_handler)
    other_rank = os.environ.get("RANK", "0") != "0"
    logger.setLevel(logging.WARNING if quiet or other_rank else logging.INFO)


def stop_logging() -> None:
    """Remove the handler of :func:`setup_logging` and reset the ``mcsan`` logger's level."""
    global _handler
    logger = logging.getLogger("mcsan")
    if _handler is not None:
        logger.removeHandler(_handler)
        _handler = None
        logger.setLevel(logging.NOTSET)


def duration(seconds: float) -> str:
    """``42s``, ``4m18s``, ``1h05m``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def progress_line(desc: str, done: int, total: int | None, elapsed: float, unit: str) -> str:
    """One progress line: count (and share), rate, ETA when the total is known."""
    rate = done / elapsed if elapsed > 0 else 0.0
    count = f"{done}/{total} {unit}" if total else f"{done} {unit}"
    if total:
        count += f" ({100 * done / total:.0f}%)"
    speed = f"{rate:.1f} {unit}/s" if rate >= 1 or rate == 0 else f"{1 / rate:.1f} s/{unit}"
    line = f"{desc}: {count}, {speed}"
    if total and rate > 0:
        line += f", ETA {duration((total - done) / rate)}"
    return line


def track(
    iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterator[T]:
    """Iterate ``iterable`` with a bar (enabled) or periodic log lines (INFO logging on)."""
    if _enabled:
        from tqdm import tqdm

        yield from tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)
        return
    if not log.isEnabledFor(logging.INFO):
        yield from iterable
        return
    started = last = time.perf_counter()
    done = 0
    for item in iterable:
        yield item
        done += 1
        now = time.perf_counter()
        if now - last >= _interval:
            last = now
            log.info(progress_line(desc, done, total, now - started, unit))
    if last > started:  # a loop long enough to have reported gets a closing line
        elapsed = time.perf_counter() - started
        log.info(f"{desc}: done, {done} {unit} in {duration(elapsed)}")
