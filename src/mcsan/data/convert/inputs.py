"""Annotation inputs as a user hands them over: checked, de-duplicated, archives opened.

* a path that does not exist is refused by name;
* the same file given twice (by another name, or the same content) is refused: it would
  silently double every caption;
* a ``.zip`` (MSR-VTT's annotations are distributed zipped) is opened: the members the
  format reads (MSR-VTT: ``.json``, ``.csv``) are extracted into a temporary folder and
  used in its place, the others (``readme.txt``, ``category.txt``) are named in the notes;
  a damaged archive is refused by name with the fix.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path, PurePosixPath

from mcsan.core.errors import DataError, OutputError
from mcsan.core.io import describe_os_error, file_sha256

ANNOTATION_SUFFIXES = (".json", ".csv", ".txt")
MAX_MEMBER_BYTES = 4 << 30


def check_distinct(paths: Sequence[Path]) -> None:
    """Refuse missing paths and a file given twice (same path or same content)."""
    seen: dict[str, Path] = {}
    for path in paths:
        if not path.exists():
            raise DataError(f"{path}: annotation file not found; check --annotations")
        if not path.is_file():
            continue
        key = file_sha256(path)
        if key in seen:
            raise DataError(
                f"{path}: the same annotation file as {seen[key]} (identical content); "
                "give each file once in --annotations, or every caption would be doubled"
            )
        seen[key] = path


def _members(
    archive: Path, handle: zipfile.ZipFile, suffixes: Sequence[str], notes: list[str]
) -> list[zipfile.ZipInfo]:
    members = []
    ignored = []
    for info in handle.infolist():
        name = PurePosixPath(info.filename)
        if info.is_dir() or name.name.startswith(".") or "__MACOSX" in name.parts:
            continue
        if name.suffix.lower() not in suffixes:
            ignored.append(info.filename)
            continue
        if info.file_size > MAX_MEMBER_BYTES:
            raise DataError(
                f"{archive}: member {info.filename} is {info.file_size} bytes, beyond the "
                f"{MAX_MEMBER_BYTES} an annotation file can be; unzip it yourself"
            )
        members.append(info)
    if ignored:
        notes.append(
            f"{archive}: read {', '.join(m.filename for m in members) or 'nothing'}; "
            f"ignored {len(ignored)} other member(s): {', '.join(ignored[:10])}"
        )
    return members


def _extract(handle: zipfile.ZipFile, info: zipfile.ZipInfo, target: Path, archive: Path) -> None:
    """Copy one member out; a failed write names the scratch folder, not the archive."""
    with handle.open(info) as source:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
        except OSError as exc:
            raise OutputError(
                describe_os_error(exc, target.parent, f"extract {info.filename} of {archive} into")
                + " (or unzip it yourself and pass the files)"
            ) from exc


@contextlib.contextmanager
def opened_archives(
    paths: Sequence[Path],
    suffixes: Sequence[str] = ANNOTATION_SUFFIXES,
    notes: list[str] | None = None,
) -> Iterator[list[Path]]:
    """``paths`` with every zip archive replaced by its extracted annotation files.

    Only members with one of ``suffixes`` are read; the others are named in ``notes``.
    """
    notes = [] if notes is None else notes
    with tempfile.TemporaryDirectory(prefix="mcsan-annotations-") as scratch:
        result: list[Path] = []
        for number, path in enumerate(paths):
            if not path.is_file() or not (
                path.suffix.lower() == ".zip" or zipfile.is_zipfile(path)
            ):
                result.append(path)
                continue
            folder = Path(scratch) / str(number)
            try:
                with zipfile.ZipFile(path) as handle:
                    members = _members(path, handle, suffixes, notes)
                    for info in members:
                        target = folder / PurePosixPath(info.filename).name
                        if target.exists():
                            raise DataError(
                                f"{path}: two members named {target.name}; unzip it and pass "
                                "the files you mean"
                            )
                        _extract(handle, info, target, path)
                        result.append(target)
            except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
                raise DataError(
                    f"{path}: cannot read the zip archive ({exc}); unzip it and pass the "
                    ".json/.csv files to --annotations"
                ) from exc
            if not members:
                raise DataError(
                    f"{path}: the zip holds no annotation file ({', '.join(suffixes)}); "
                    "unzip it and pass the annotation files to --annotations"
                )
        check_distinct(result)
        yield result
