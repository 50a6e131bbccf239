"""Shards of an extraction: ``--shard i/N`` file names, selection, and the checked merge.

``FEATURES.h5`` sharded into N parts is written as ``FEATURES.shard{i}of{N}.h5``. A merge
checks the set is complete and names any missing shard (refused unless allowed).
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from mcsan.core.errors import ConfigError, FeatureError
from mcsan.data.video.store import FeatureSpec, FeatureStore

log = logging.getLogger(__name__)


def shard_path(out_path: str | os.PathLike[str], index: int, count: int) -> Path:
    """``FEATURES.h5`` -> ``FEATURES.shard{index}of{count}.h5``."""
    out = Path(out_path)
    return out.with_name(f"{out.stem}.shard{index}of{count}{out.suffix}")


_SHARD_NAME = re.compile(r"^(?P<stem>.+)\.shard(?P<index>\d+)of(?P<count>\d+)(?P<ext>\.[^.]+)$")


def find_shards(out_path: str | os.PathLike[str]) -> list[Path]:
    """Shard files written next to ``out_path`` by ``--shard i/N`` runs, in order."""
    out = Path(out_path)
    return sorted(out.parent.glob(f"{out.stem}.shard*of*{out.suffix}"))


def parse_shard(text: str) -> tuple[int, int]:
    """``"i/N"`` -> (i, N) with 0 <= i < N."""
    try:
        index_text, count_text = text.split("/")
        index, count = int(index_text), int(count_text)
    except ValueError:
        raise ConfigError(f"--shard {text!r}: expected i/N, e.g. 0/4") from None
    if count < 1 or not 0 <= index < count:
        raise ConfigError(f"--shard {text!r}: need 0 <= i < N")
    return index, count


def shard_from_env(env: Mapping[str, str] | None = None) -> tuple[int, int] | None:
    """(RANK, WORLD_SIZE) as set by torchrun, or None when not distributed."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env or int(env["WORLD_SIZE"]) <= 1:
        return None
    return parse_shard(f"{env.get('RANK', '0')}/{env['WORLD_SIZE']}")


def select_shard(video_ids: Sequence[str], shard: tuple[int, int] | None) -> list[str]:
    """The ids of shard (i, N): every N-th of the sorted ids, starting at i."""
    ordered = sorted(video_ids)
    if shard is None:
        return ordered
    index, count = shard
    return ordered[index::count]


def missing_shards(shard_paths: Sequence[str | os.PathLike[str]]) -> list[str]:
    """Shards ``i/N`` absent from ``shard_paths`` (named ``*.shard{i}of{N}.*``), as names.

    Files named otherwise are not judged. Shard sets of different N are all reported.
    """
    groups: dict[tuple[str, int, str], set[int]] = {}
    for path in map(Path, shard_paths):
        match = _SHARD_NAME.match(path.name)
        if match:
            key = (str(path.with_name(match["stem"])), int(match["count"]), match["ext"])
            groups.setdefault(key, set()).add(int(match["index"]))
    return [
        f"{stem}.shard{index}of{count}{ext}"
        for (stem, count, ext), present in sorted(groups.items())
        for index in range(count)
        if index not in present
    ]


def merge_shards(
    shard_paths: Sequence[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    allow_missing: bool = False,
) -> int:
    """Join shard stores (equal specs) into ``out_path`` atomically; return the entry count.

    A shard missing from a set ``*.shard{i}of{N}.*`` is refused by name unless
    ``allow_missing`` (then it is only logged).
    """
    missing = missing_shards(shard_paths)
    if missing and not allow_missing:
        raise ConfigError(
            f"{out_path}: {len(missing)} shard(s) missing: {', '.join(missing)}; run "
            "`mcsan extract --shard i/N` for them, or pass --allow-missing-shards to merge "
            "the others"
        )
    for name in missing:
        log.warning("merging without missing shard %s", name)
    return merge_stores(shard_paths, out_path)


def merge_stores(
    sources: Iterable[str | os.PathLike[str]],
    out_path: str | os.PathLike[str],
    expect: FeatureSpec | None = None,
    skip: Iterable[str] = (),
) -> int:
    """Join stores with one spec into ``out_path`` (written atomically); return the entry count.

    An id present in several sources is taken from the first; ids in ``skip`` are left
    out. ``out_path`` may be one of the sources (it is then rewritten with the others added).
    """
    from mcsan.core.io import atomic_path

    paths = [Path(p) for p in sources]
    if not paths:
        raise FeatureError(f"{out_path}: nothing to merge; give at least one feature file")
    spec = expect
    with atomic_path(out_path) as tmp:
        merged: FeatureStore | None = None
        try:
            for path in paths:
                with FeatureStore.open(path, "r", expect=spec) as source:
                    spec = source.spec
                    if merged is None:
                        merged = FeatureStore.create(tmp, spec, overwrite=True)
                    have = set(merged.ids()) | set(skip)
                    for video_id in source.ids():
                        if video_id not in have:
                            merged.copy_entry(source, video_id)
            assert merged is not None
            count = len(merged.ids())
        finally:
            if merged is not None:
                merged.close()
    return count
