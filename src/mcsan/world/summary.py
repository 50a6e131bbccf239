"""WorldSummary: what generating a world wrote (counts per split and per twin level)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mcsan.world.describe import CaptionTruth
from mcsan.world.scene import Scene


@dataclass
class WorldSummary:
    """What `generate_world` wrote."""

    out_dir: str
    videos: int
    captions: int
    splits: dict[str, int]  # clips per split
    captions_per_split: dict[str, int]
    twins: int
    twins_per_level: dict[str, int]
    rendered: int  # clips encoded by this run (the rest already existed)
    seconds: float
    holdout: dict[str, Any] = field(default_factory=dict)

    def line(self) -> str:
        """One-line human summary."""
        splits = " ".join(f"{k}={v}" for k, v in self.splits.items())
        return (f"wrote {self.videos} clips ({splits}), {self.captions} captions, "
                f"{self.twins} twins to {self.out_dir} in {self.seconds:.1f} s")


def summarise_world(root: Path, scenes: list[Scene], captions: dict[str, list[CaptionTruth]],
             twins: list[Scene], rendered: int, seconds: float) -> WorldSummary:
    """Counts per split and per twin level of a world just written to ``root``."""
    splits: dict[str, int] = {}
    per_split: dict[str, int] = {}
    for s in scenes:
        splits[s.split] = splits.get(s.split, 0) + 1
        per_split[s.split] = per_split.get(s.split, 0) + len(captions[s.video_id])
    levels: dict[str, int] = {}
    for t in twins:
        levels[t.meta["twin_level"]] = levels.get(t.meta["twin_level"], 0) + 1
    order = ("train", "val", "test", "comp")
    return WorldSummary(
        str(root), len(scenes), sum(per_split.values()),
        {k: splits[k] for k in order if k in splits},
        {k: per_split[k] for k in order if k in per_split}, len(twins), levels, rendered,
        round(seconds, 2))
