"""Hard negative clips for training: clips that differ from a caption's own clip in what
the caption says (``<root>/hard_negatives.jsonl``, ``data.hard_negatives``).

Each record ``{"video_id", "caption", "negative_id"}`` says: this caption of this clip is
false of that other clip. The embedded world writes one per training twin and caption that
mentions the twin's change (:mod:`mcsan.world.twin_truth`); any dataset may provide the
file. A batch takes at most ``data.hard_negatives`` of them, one per caption that has any,
drawn from a generator seeded by the batch's rows (the same batch gets the same clips).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from mcsan.core.errors import DataError
from mcsan.core.io import numbered_jsonl
from mcsan.data.native import CaptionRecord

HARD_NEGATIVES_FILE = "hard_negatives.jsonl"
_NONE = np.zeros(0, dtype=np.int64)


def read_hard_negatives(root: Path) -> list[tuple[str, str, str]]:
    """(video id, caption, negative clip id) of every record of
    ``<root>/hard_negatives.jsonl``."""
    path = root / HARD_NEGATIVES_FILE
    if not path.is_file():
        raise DataError(f"{path}: not found; data.hard_negatives needs it (generate the world "
                        "with `mcsan synth --train-twins N`) or set data.hard_negatives=0")
    items = []
    for number, item in numbered_jsonl(path):
        try:
            items.append((str(item["video_id"]), str(item["caption"]), str(item["negative_id"])))
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path}: line {number} lacks video_id, caption or negative_id; "
                            "fix or regenerate the file") from exc
    return items


def negative_table(items: Sequence[tuple[str, str, str]], records: Sequence[CaptionRecord],
                   index: dict[str, int]) -> dict[int, np.ndarray]:  # fmt: skip
    """Training caption row -> video indices (``index``: clip id -> index) of its negatives;
    items of other captions, or of clips without features, are left out."""
    rows: dict[tuple[str, str], list[int]] = {}
    for row, record in enumerate(records):
        if record.split == "train":
            rows.setdefault((record.video_id, record.caption), []).append(row)
    table: dict[int, list[int]] = {}
    for video_id, caption, negative in items:
        if negative in index:
            for row in rows.get((video_id, caption), ()):
                table.setdefault(row, []).append(index[negative])
    return {row: np.array(videos, dtype=np.int64) for row, videos in table.items()}


def pick_negatives(rows: np.ndarray, table: dict[int, np.ndarray], limit: int
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """(video indices, positions in ``rows`` of their captions): one negative per caption
    that has any, at most ``limit``, drawn by a generator seeded by ``rows``."""
    have = [i for i, row in enumerate(rows.tolist()) if row in table]
    rng = np.random.default_rng(np.asarray(rows, dtype=np.int64) % (1 << 62))
    if len(have) > limit:
        have = sorted(rng.choice(have, limit, replace=False).tolist())
    videos = [int(rng.choice(table[int(rows[i])])) for i in have]
    return np.array(videos, dtype=np.int64), np.array(have, dtype=np.int64)


# Feature edits that make a caption false (``data.edit_negatives``), for any dataset: a
# caption with a direction in time is false of its clip played backwards (approach / move
# away, rise / fall, grow / shrink, enter / leave, left / right), one that says left or
# right is false of its clip mirrored (every square grid stream flipped left-right; pooled
# streams are unchanged by a mirror).
REVERSIBLE = frozenset({
    "approach", "toward", "towards", "away", "retreat", "rise", "fall", "sink", "drop",
    "lift", "grow", "expand", "shrink", "enter", "leave", "exit", "arrive", "depart",
    "open", "close", "left", "right", "up", "down", "ascend", "descend",
})  # fmt: skip
MIRRORED = frozenset({"left", "right"})
EDITS = ("reversed", "mirrored")


def caption_edits(lemmas: Sequence[str]) -> tuple[str, ...]:
    """The edits of its own clip that make a caption with these lemmas false."""
    words = set(lemmas)
    return tuple(e for e, hit in zip(EDITS, (words & REVERSIBLE, words & MIRRORED),
                                     strict=True) if hit)  # fmt: skip


def edited_clip(streams: dict[str, np.ndarray], edit: str) -> dict[str, np.ndarray]:
    """A clip's streams ``{name: (T, ...)}`` played backwards or mirrored left-right."""
    if edit == "reversed":
        return {name: array[::-1] for name, array in streams.items()}
    out = {}
    for name, array in streams.items():
        side = int(round(array.shape[1] ** 0.5)) if array.ndim == 3 else 0
        if side > 1 and side * side == array.shape[1]:  # a row-major side x side grid
            grid = array.reshape(array.shape[0], side, side, *array.shape[2:])[:, :, ::-1]
            array = grid.reshape(array.shape)
        out[name] = array
    return out


def batch_negatives(rows: np.ndarray, keys: np.ndarray, table: dict[int, np.ndarray],
                    edits: dict[int, tuple[str, ...]], limits: tuple[int, int],
                    read: Callable[[np.ndarray], Sequence[dict[str, np.ndarray]]],
                    ) -> tuple[list[dict[str, np.ndarray]], np.ndarray]:  # fmt: skip
    """A batch's negative clips and the positions in ``rows`` of the captions they are
    false for: hard negatives (``table``, at most ``limits[0]``) and edits of the captions'
    own clips (``edits``, at most ``limits[1]``); ``keys`` are the rows' clip indices and
    ``read`` reads clips by index."""
    videos, owners = pick_negatives(rows, table, limits[0]) if table else (_NONE, _NONE)
    clips = list(read(videos)) if len(videos) else []
    wanted = [(i, edit) for i, row in enumerate(rows.tolist()) for edit in edits.get(row, ())]
    if wanted and limits[1]:
        rng = np.random.default_rng(np.asarray(rows, dtype=np.int64) % (1 << 62))
        if len(wanted) > limits[1]:
            wanted = [wanted[k] for k in sorted(rng.choice(len(wanted), limits[1], replace=False))]
        own = read(keys[[i for i, _ in wanted]])
        clips += [edited_clip(dict(own[k]), edit) for k, (_, edit) in enumerate(wanted)]
        owners = np.concatenate([owners, np.array([i for i, _ in wanted], dtype=np.int64)])
    return clips, owners
