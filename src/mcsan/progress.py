"""Progress bars that the CLI switches on; the library itself stays silent.

Library code wraps long loops in :func:`track`. Unless :func:`set_enabled` was called
(the CLI does), ``track`` returns the iterable unchanged and nothing is printed.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

T = TypeVar("T")

_enabled = False


def set_enabled(enabled: bool) -> None:
    """Turn progress bars on (CLI) or off (library use, tests)."""
    global _enabled
    _enabled = enabled


def is_enabled() -> bool:
    """Whether progress bars are shown."""
    return _enabled


def track(
    iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it"
) -> Iterator[T]:
    """Iterate ``iterable``, with a tqdm bar on stderr when bars are enabled."""
    if not _enabled:
        yield from iterable
        return
    from tqdm import tqdm

    yield from tqdm(iterable, total=total, desc=desc, unit=unit, file=sys.stderr, leave=False)
