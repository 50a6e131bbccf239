"""One writer per output: ``output_lock(out)`` holds an exclusive ``flock`` on a hidden
``.<name>.lock`` beside ``out`` while a command writes into it.

A second run into the same ``--out`` is refused naming the holder (command, pid, host). The
kernel drops an ``flock`` when its process ends, however it ends (``kill -9`` included), so
a killed run never leaves a lock that blocks the next one; the lock file is removed on a
normal exit. Where no lock file can be made (a read-only or missing parent), no lock is
taken and the command's own write names the problem.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from mcsan.core.errors import OutputError


def lock_path(out: str | os.PathLike[str]) -> Path:
    """The lock file of output ``out``."""
    target = Path(out)
    return target.with_name(f".{target.name}.lock")


@contextmanager
def output_lock(out: str | os.PathLike[str] | None, command: str) -> Iterator[None]:
    """Hold the lock of ``out`` (None: no lock) for the duration of the block."""
    if out is None or not Path(out).name:
        yield
        return
    lock = lock_path(Path(out).absolute())
    try:
        handle = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 (held for the block)
    except OSError:
        yield
        return
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            same = os.fstat(handle.fileno()).st_ino == os.stat(lock).st_ino
        except (BlockingIOError, FileNotFoundError):
            same = False
        if not same:  # held, or removed by its holder between our open and flock
            handle.seek(0)
            holder = handle.read().strip() or "another mcsan process"
            raise OutputError(
                f"{out}: {holder} is writing into it now; wait for it to finish or choose "
                f"another --out (its lock {lock} goes away when that process ends, even if "
                "it is killed)"
            )
        handle.seek(0)
        handle.truncate()
        handle.write(f"mcsan {command} (pid {os.getpid()} on {socket.gethostname()})\n")
        handle.flush()
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)  # before the flock goes: no one waits on it
