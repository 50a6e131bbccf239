"""Writing a world: clips rendered in a process pool, captions, structure, twins, card."""

from __future__ import annotations

import logging
import multiprocessing
import os
import re
import time
from pathlib import Path
from typing import Any

from mcsan.core.errors import ConfigError, DataError
from mcsan.core.io import make_dir, write_jsonl
from mcsan.core.progress import track
from mcsan.data.native import CaptionRecord, clear_derived, read_card, update_card, videos_dir
from mcsan.data.native import write_captions as write_caption_records
from mcsan.world.binding import make_binding_twins
from mcsan.world.card import write_dataset_card
from mcsan.world.describe import write_captions
from mcsan.world.scene import Scene
from mcsan.world.splits import assign_splits, make_holdout, make_twins, sample_scene
from mcsan.world.summary import WorldSummary, summarise_world
from mcsan.world.twin_truth import HARD_NEGATIVES_NAME, TwinPair, hard_negative_records

WORLD_NAME = "mcsan-world"
WORLD_VERSION = 1
FPS = 8
STRUCTURE_NAME = "structure.jsonl"
TRUTH_NAME = "captions_truth.jsonl"
TWINS_NAME = "twins.jsonl"
logger = logging.getLogger(__name__)
_CLIP_NAME = re.compile(r"clip\d{5,}(_twin_(entity|action|relation)(_(binding|swap))?)?")


def _validate(n_videos: int, frames: int, size: int, workers: int) -> None:
    if n_videos < 1:
        raise ConfigError(f"--videos {n_videos}: need at least 1 clip")
    if frames < 2:
        raise ConfigError(f"--frames {frames}: need at least 2 frames per clip")
    if size < 32 or size % 2:
        raise ConfigError(f"--size {size}: use an even frame size of at least 32 (H.264 4:2:0)")
    if workers < 1:
        raise ConfigError(f"--workers {workers}: need at least 1 worker")


def _render_job(job: tuple[Scene, int, int, str]) -> str:
    from mcsan.data.video.clip_writer import write_video
    from mcsan.world.render import render_clip

    scene, frames, size, path = job
    write_video(path, render_clip(scene, frames, size), fps=FPS)
    return scene.video_id


def _render_all(jobs: list[tuple[Scene, int, int, str]], workers: int) -> None:
    if not jobs:
        return
    if workers == 1:
        for job in track(jobs, total=len(jobs), desc="rendering", unit="clip"):
            _render_job(job)
        return
    method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
    with multiprocessing.get_context(method).Pool(workers) as pool:
        done = pool.imap_unordered(_render_job, jobs, chunksize=4)
        for _ in track(done, total=len(jobs), desc="rendering", unit="clip"):
            pass


def _remove_stale_clips(video_root: Path, keep: set[str]) -> None:
    """Delete clips an earlier world run wrote here that this world does not have."""
    for path in video_root.glob("clip*.mp4"):
        if _CLIP_NAME.fullmatch(path.stem) and path.stem not in keep:
            path.unlink()


def _describe(params: dict[str, Any] | None) -> str:
    if not params:
        return "not a synthetic world"
    return ", ".join(f"{key} {params.get(key)}" for key in ("videos", "seed", "frames", "size"))


def _params(n_videos: int, seed: int, frames: int, size: int, twins: int,
            eval_from: int | None = None, train_twins: int = 0) -> dict[str, Any]:
    params = {"version": WORLD_VERSION, "videos": n_videos, "seed": seed, "frames": frames,
              "size": size, "twin_originals": twins, "fps": FPS}
    if train_twins:
        params["train_twin_originals"] = train_twins
    return params if eval_from is None else {**params, "eval_from": eval_from}


def eval_world_settings(base: str | os.PathLike[str]) -> dict[str, int]:
    """Seed, frames, size and first clip index of an evaluation-only world for the world at
    ``base``: its seed (so its held-out combinations), its clip format, and clip indices
    after its own (so no clip of ``base`` is drawn again)."""
    card = read_card(base)
    generator = card.get("generator")
    if card.get("name") != WORLD_NAME or not isinstance(generator, dict):
        raise ConfigError(f"{base}: not a world written by `mcsan synth` (its dataset.yaml "
                          "has no generator section); pass the folder of a generated world")
    if "eval_from" in generator:
        raise ConfigError(f"{base} is itself an evaluation-only world; pass the world it was "
                          "made for (the one the model trained on)")
    return {"seed": int(generator["seed"]), "frames": int(generator["frames"]),
            "size": int(generator["size"]), "eval_from": int(generator["videos"])}


def _all_twins(seed: int, originals: list[Scene], holdout: Any, frames: int) -> list[Scene]:
    return [t for s in track(originals, total=len(originals), desc="twins", unit="clip")
            for t in make_twins(seed, s, holdout, frames) + make_binding_twins(
                seed, s, holdout, frames)]


def generate_world(
    out_dir: str | os.PathLike[str], n_videos: int, seed: int, frames: int = 16,
    size: int = 128, workers: int = 1, n_twin_originals: int | None = None,
    overwrite: bool = False,
    eval_from: int | None = None,
    n_train_twins: int = 0,
) -> WorldSummary:
    """Generate the synthetic world into ``out_dir`` in the native format.

    Writes videos/<id>.mp4 (H.264), captions.jsonl (train/val/test/comp),
    captions_truth.jsonl, structure.jsonl (clips and twins), twins.jsonl, dataset.yaml,
    DATASET.md and contact_sheet.png. The same arguments give the same files whatever
    ``workers`` is. Clips already written by a run with the same arguments are kept (and
    the features extracted from them stay valid). Another dataset in ``out_dir`` is refused
    unless ``overwrite``, which also removes what was derived from it (feature sets, the
    parse cache: :func:`mcsan.data.native.clear_derived`).

    ``eval_from``: an evaluation-only world: every clip is a test clip drawn like the test
    clips of the world of the same ``seed`` (the same held-out combinations, none of them in
    a clip), with clip indices ``eval_from, eval_from + 1, ...`` (pass the other world's clip
    count, :func:`eval_world_settings`, and no clip of it is drawn again).
    ``n_train_twins`` training clips get twins too (own random streams: every other clip
    stays the same); they are listed not in twins.jsonl but, per caption whose fact they
    change, in hard_negatives.jsonl (negative clips for training, ``data.hard_negatives``).
    """
    _validate(n_videos, frames, size, workers)
    if n_twin_originals is not None and n_twin_originals < 0:
        raise ConfigError(f"--twins {n_twin_originals}: must be 0 or more")
    if eval_from is not None and eval_from < 0:
        raise ConfigError(f"first clip index {eval_from}: must be 0 or more")
    start = time.perf_counter()
    root = Path(out_dir)
    holdout = make_holdout(seed)
    first = eval_from or 0
    splits = assign_splits(n_videos, seed) if eval_from is None else ["test"] * n_videos
    scenes = [sample_scene(seed, first + i, splits[i], holdout, frames)
              for i in track(range(n_videos), total=n_videos, desc="sampling", unit="clip")]
    captions = {s.video_id: write_captions(s, seed) for s in scenes}
    test = [s for s in scenes if s.split == "test"]
    k = min(len(test), max(1, round(0.2 * n_videos)) if n_twin_originals is None
            else n_twin_originals)
    twins = _all_twins(seed, test[:k], holdout, frames)
    train = [s for s in scenes if s.split == "train"][:max(0, n_train_twins)]
    train_twins = _all_twins(seed, train, holdout, frames)

    params = _params(n_videos, seed, frames, size, k, eval_from, len(train))
    previous = _previous_world(root, params, overwrite)
    video_root = videos_dir(root)
    make_dir(video_root)
    made = scenes + twins + train_twins
    jobs = [(s, frames, size, str(video_root / f"{s.video_id}.mp4")) for s in made]
    if previous == params:
        jobs = [job for job in jobs if not Path(job[3]).is_file()]
    if previous is not None:  # an earlier world lives here: drop its clips we do not make
        _remove_stale_clips(video_root, {s.video_id for s in made})
    _render_all(jobs, workers)

    records = [CaptionRecord(s.video_id, c.caption, s.split)
               for s in scenes for c in captions[s.video_id]]
    write_caption_records(root, records)
    write_jsonl(root / TRUTH_NAME, ({"video_id": s.video_id, "split": s.split, **c.to_json()}
                                    for s in scenes for c in captions[s.video_id]))
    write_jsonl(root / STRUCTURE_NAME, (s.to_json(frames) for s in made))
    _write_hard_negatives(root, train_twins, captions)
    write_jsonl(root / TWINS_NAME, ({"twin_id": t.video_id, "original_id": t.meta["twin_of"],
                                     "level": t.meta["twin_level"], "change": t.meta["change"]}
                                    for t in twins))
    summary = summarise_world(root, scenes, captions, twins, len(jobs), time.perf_counter() - start)
    summary.holdout = holdout.to_json()
    _update_world_card(root, params, summary)
    write_dataset_card(root, scenes, captions, twins, holdout, summary, seed, frames, size,
                       eval_from)
    summary.seconds = round(time.perf_counter() - start, 2)
    return summary


def _previous_world(root: Path, params: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """The generator settings of the dataset already in ``root`` (None: none there); another
    dataset is refused unless ``overwrite``, which removes what was derived from it."""
    previous = read_card(root).get("generator") if (root / "dataset.yaml").is_file() else None
    if (root / "dataset.yaml").is_file() and previous != params:
        if not overwrite:
            raise DataError(
                f"{root}: already holds another dataset ({_describe(previous)}); its clips "
                "would be replaced while its features stay. Choose another --out, or pass "
                "--overwrite to replace it (its features and parse cache are deleted)"
            )
        removed = clear_derived(root)
        logger.warning("%s: replacing the dataset there; removed %s", root,
                       ", ".join(removed) or "nothing derived")  # fmt: skip
    return previous


def _update_world_card(root: Path, params: dict[str, Any], summary: WorldSummary) -> None:
    """The world's entries in dataset.yaml: generator settings, counts, holdout, files."""
    update_card(root, name=WORLD_NAME, generator=params, seed=params["seed"],
                frames=params["frames"], size=params["size"], fps=FPS,
                splits=list(summary.splits), counts={
                    "videos": summary.videos, "captions": summary.captions,
                    "videos_per_split": summary.splits,
                    "captions_per_split": summary.captions_per_split,
                    "twins": summary.twins, "twins_per_level": summary.twins_per_level},
                holdout=summary.holdout, files={
                    "structure": STRUCTURE_NAME, "captions_truth": TRUTH_NAME,
                    "twins": TWINS_NAME, "card": "DATASET.md"})  # fmt: skip


def _write_hard_negatives(root: Path, twins: list[Scene], captions: dict[str, Any]) -> None:
    """hard_negatives.jsonl from the training twins (none: no file, an old one removed)."""
    path = root / HARD_NEGATIVES_NAME
    if not twins:
        path.unlink(missing_ok=True)
        return
    pairs = [TwinPair(t.meta["twin_of"], t.video_id, t.meta["twin_level"], t.meta["change"])
             for t in twins]
    truth = {vid: [c.to_json() for c in caps] for vid, caps in captions.items()}
    write_jsonl(path, hard_negative_records(pairs, truth))
