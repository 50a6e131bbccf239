"""Small file helpers shared by every stage: atomic writes, JSON lines, safe array loads.

Every output goes through :func:`atomic_path` / :func:`atomic_directory` / :func:`make_dir`, which
turn an ``OSError`` on the output (missing or read-only folder, ``/proc``, a full disk) into
one :class:`~mcsan.core.errors.OutputError` naming the path, what failed and the fix
(:func:`describe_os_error`), and leave any earlier output intact. Files are created with the
user's umask (``mkstemp`` alone would make them 0600). Inputs are read by :func:`read_jsonl`
(names file and line of a bad byte or record); arrays and checkpoints by
:mod:`mcsan.core.safe_load` (never unpickles).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mcsan.core.errors import DataError, OutputError

_FIXES: dict[int, str] = {
    errno.ENOSPC: "the disk is full; free space or write somewhere else",
    errno.EDQUOT: "the disk quota is exhausted; free space or write somewhere else",
    errno.EROFS: "the file system is read-only; choose a writable folder",
    errno.EACCES: "permission denied; choose a folder you can write to",
    errno.EPERM: "operation not permitted; choose a folder you can write to",
    errno.ENOENT: "a folder on the way does not exist and cannot be created; check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder; check the path",
    errno.EISDIR: "the path is a folder; give a file name",
    errno.ELOOP: "the path is a symlink loop; fix or remove the link",
    errno.ENAMETOOLONG: "the name is too long; choose a shorter path",
    errno.EFBIG: "the file is too large for this file system; write somewhere else",
}
_OUTPUT_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)


def _read_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


_UMASK = _read_umask()


def describe_os_error(exc: OSError, path: str | os.PathLike[str] | None = None,
                      action: str = "write") -> str:
    """``"<path>: cannot <action> (<strerror>); <fix>"`` for an OSError.

    ``path`` (the output the user named) wins over the file the OS reports (a temp file).
    """
    where = path if path is not None else exc.filename
    reason = _first_line(exc.strerror or str(exc)) or type(exc).__name__
    fix = _FIXES.get(exc.errno or 0, "check the path and its permissions")
    if where is None:  # the OS did not say which file
        return f"cannot {action} a file ({reason}); {fix}"
    return f"{where}: cannot {action} ({reason}); {fix}"


@contextlib.contextmanager
def output_errors(path: str | os.PathLike[str], action: str = "write") -> Iterator[None]:
    """Turn an OSError raised while writing ``path`` into an OutputError naming it."""
    try:
        yield
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(describe_os_error(exc, path, action)) from exc


def make_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output folder ``path`` (and parents); OutputError if that is impossible."""
    target = Path(path)
    with output_errors(target, "create the folder"):
        target.mkdir(parents=True, exist_ok=True)
    return target


def _is_output_failure(exc: OSError, *ours: Path) -> bool:
    """Whether ``exc`` (raised inside a write block) concerns the output, not some input."""
    if exc.errno in _OUTPUT_ERRNOS or exc.filename is None:
        return True
    name = str(exc.filename)
    return any(name == str(p) or name.startswith(f"{p}{os.sep}") for p in ours)


_NATIVE_WRITE_FAILURE = re.compile(
    r"write|no space|too large|quota|read-only|errno|unexpected pos", re.IGNORECASE
)
"""How torch.save, faiss and HDF5 word a failed write (they raise RuntimeError)."""


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0][:200] if text.strip() else ""


def _write_failure(exc: BaseException, target: Path, tmp: Path) -> OutputError | None:
    """The OutputError an exception raised while writing ``tmp`` for ``target`` amounts to.

    None when it is not about the output (an input that failed, a bug, an interrupt).
    """
    if isinstance(exc, OutputError):  # raised for the temporary name: name the output
        text = str(exc)
        return OutputError(text.replace(str(tmp), str(target))) if str(tmp) in text else None
    if isinstance(exc, OSError) and _is_output_failure(exc, tmp, target):
        return OutputError(describe_os_error(exc, target))
    if type(exc) is RuntimeError and _NATIVE_WRITE_FAILURE.search(str(exc)):
        reason = _first_line(str(exc)) or "RuntimeError"
        return OutputError(
            f"{target}: cannot write ({reason}); the disk may be full or the file too large "
            "for this file system: free space or write somewhere else"
        )
    return None


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    A crash or an exception leaves ``path`` untouched and removes the temporary file. The
    file gets the permissions of a plainly created one (0666 less the umask). An OSError
    on the output becomes an OutputError naming ``path``.
    """
    target = Path(path)
    make_dir(target.parent)
    with output_errors(target, "create"):
        fd, tmp_name = tempfile.mkstemp(
            prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
        )
        os.fchmod(fd, 0o666 & ~_UMASK)
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with output_errors(target, "replace"):
            os.replace(tmp, target)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        named = _write_failure(exc, target, tmp)
        if named is not None:
            raise named from exc
        raise


def _stale_siblings(target: Path) -> list[Path]:
    """Temp folders a killed :func:`atomic_directory` left beside ``target``."""
    if not target.parent.is_dir():
        return []
    prefix = f".{target.name}."
    return [
        p for p in target.parent.iterdir()
        if p.name.startswith(prefix) and p.name.endswith((".tmp", ".old")) and p.is_dir()
    ]


@contextlib.contextmanager
def atomic_directory(
    path: str | os.PathLike[str], carry: Callable[[str], bool] | None = None
) -> Iterator[Path]:
    """Yield a new temporary directory beside ``path``; on success it replaces ``path``.

    Before the swap, the entries of an existing ``path`` whose name ``carry`` accepts
    (hidden ones never) are hard-linked, or copied, into the new directory: files that live
    beside what is written, such as a cache. The swap moves the old directory aside, renames
    the new one into place and removes the old one. An exception leaves ``path`` untouched
    and removes the temporary directory; an OSError on the output is an OutputError.
    Leftovers of a killed earlier swap are cleaned up first (an ``.old`` directory is put
    back when ``path`` itself went missing).
    """
    target = Path(path)
    make_dir(target.parent)
    with output_errors(target, "prepare"):
        for stale in _stale_siblings(target):
            if stale.name.endswith(".old") and not target.exists():
                os.rename(stale, target)
            else:
                shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        os.chmod(tmp, 0o777 & ~_UMASK)
    try:
        yield tmp
        with output_errors(target, "replace"):
            if carry is not None and target.exists():
                _carry_entries(target, tmp, carry)
            _swap_directory(tmp, target)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        named = _write_failure(exc, target, tmp)
        if named is not None:
            raise named from exc
        raise


def _carry_entries(old: Path, new: Path, carry: Callable[[str], bool]) -> None:
    """Hard-link (or copy) the entries of ``old`` that ``carry`` accepts into ``new``."""
    for entry in old.iterdir():
        if entry.name.startswith(".") or not carry(entry.name):
            continue
        destination = new / entry.name
        if entry.is_dir() and not entry.is_symlink():
            shutil.copytree(entry, destination, symlinks=True, copy_function=_link_or_copy)
        else:
            _link_or_copy(entry, destination)


def _link_or_copy(source: str | os.PathLike[str], destination: str | os.PathLike[str]) -> None:
    try:
        os.link(source, destination, follow_symlinks=False)
    except OSError:
        shutil.copy2(source, destination, follow_symlinks=False)


def _swap_directory(new: Path, target: Path) -> None:
    """Rename ``new`` onto ``target``, moving an existing ``target`` aside first."""
    if not target.exists():
        os.rename(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".old", dir=target.parent))
    os.rmdir(old)
    os.rename(target, old)
    try:
        os.rename(new, target)
    except BaseException:
        os.rename(old, target)
        raise
    shutil.rmtree(old, ignore_errors=True)


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_json(path: str | os.PathLike[str], obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=indent, ensure_ascii=False) + "\n")


def read_json(
    path: str | os.PathLike[str], what: str = "JSON file", fix: str = "check the path"
) -> Any:
    """Parse a JSON file; a missing file or a syntax error is a DataError naming the file."""
    source = Path(path)
    try:
        return json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise DataError(f"{source}: {what} not found; {fix}") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        where = (
            f"line {exc.lineno}, column {exc.colno}: {exc.msg}"
            if isinstance(exc, json.JSONDecodeError)
            else str(exc)
        )
        raise DataError(f"{source}: {what} is not valid JSON ({where}); {fix}") from exc


def write_jsonl(path: str | os.PathLike[str], records: Iterable[dict[str, Any]]) -> int:
    """Write one JSON object a line, atomically; return the number of records."""
    count = 0
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False, sort_keys=False) + "\n")
            count += 1
    return count


def _decode_line(raw: bytes, source: Path, number: int) -> str:
    """One line of a text file as str; a non-UTF-8 byte raises naming file and line."""
    if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]  # a UTF-8 byte-order mark
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(
            f"{source}:{number}: not UTF-8 text (byte 0x{raw[exc.start]:02x} at column "
            f"{exc.start + 1}); re-save the file as UTF-8"
        ) from exc


def read_text_lines(path: str | os.PathLike[str], what: str = "file") -> Iterator[str]:
    """Yield the lines of a UTF-8 text file (no line ends); errors name file and line."""
    source = Path(path)
    if not source.is_file():
        raise DataError(f"{source}: {what} not found; check the path")
    with source.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            yield _decode_line(raw, source, number).rstrip("\r\n")


def read_jsonl(path: str | os.PathLike[str]) -> Iterator[dict[str, Any]]:
    """Yield the JSON objects of a JSON-lines file; a bad line raises naming file:line."""
    for _, record in numbered_jsonl(path):
        yield record


def numbered_jsonl(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield (line number, JSON object) of a JSON-lines file; blank lines are skipped."""
    source = Path(path)
    for number, line in enumerate(read_text_lines(source), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            hint = (
                "; this looks like one JSON document, not JSON lines (one object a line)"
                if number == 1 and line.lstrip().startswith("[") else ""
            )
            raise DataError(
                f"{source}:{number}: not valid JSON ({exc.msg}){hint}; fix or remove that line"
            ) from exc
        if not isinstance(record, dict):
            raise DataError(
                f"{source}:{number}: expected a JSON object per line, got "
                f"{type(record).__name__}; write one {{...}} record a line"
            )
        yield number, record


def append_jsonl(path: str | os.PathLike[str], record: dict[str, Any]) -> None:
    """Append one record to a JSON-lines file and flush it to disk (logs, failure lists)."""
    target = make_dir(Path(path).parent) / Path(path).name
    with output_errors(target, "append to"), target.open("a", encoding="utf-8") as handle:
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()
