"""Decoding clips into a fixed number of square RGB frames (PyAV).

Sampling: the clip's duration is cut into ``frames`` equal segments and the frame shown
at the centre of each segment is taken (by timestamp, so variable frame rates are
handled). With ``fps`` the timestamps are every ``1/fps`` seconds instead, and
``frames`` (when > 0) caps their number by uniform subsampling.

Short clips: when the clip has fewer frames than requested, frames are **repeated**
(each sample takes the frame shown at its timestamp), so a one-frame clip gives T
copies of that frame. Output is always exactly T frames (or the fps count).

Long clips (samples more than :data:`SEEK_GAP_S` seconds apart) are read by seeking to
each sample instead of decoding everything. Each frame is resized so its short side is
``size`` and centre-cropped to ``size`` x ``size``; a rotation in the display matrix
(phone videos) is applied first. A folder of images (sorted by name) is one clip.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import DataError, VideoError

logger = logging.getLogger(__name__)

VIDEO_EXTENSIONS = frozenset({
    ".mp4", ".webm", ".avi", ".mkv", ".mov", ".m4v", ".mpg", ".mpeg", ".gif", ".3gp", ".3g2",
    ".mts", ".m2ts", ".ts", ".wmv", ".asf", ".flv", ".f4v", ".ogv", ".vob", ".mxf", ".dv",
    ".divx", ".rm", ".rmvb", ".nut", ".y4m", ".mjpeg", ".mjpg", ".h264", ".hevc",
})  # fmt: skip
"""Containers PyAV opens, taken as clips by extension; any other file in a clip folder is
named in a warning (``list_videos``), never left out unseen."""
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"})
SEEK_GAP_S = 4.0
"""Seek per sample when samples are further apart than this (seconds); else decode all."""


def list_videos(directory: str | os.PathLike[str]) -> dict[str, Path]:
    """Clips in ``directory`` by id (the file stem; a folder of images counts as one clip).

    Sorted by id. Two files with the same stem are an error naming both. A symlink named
    like a clip that leads nowhere (dangling, or a loop) is listed too, so that reading it
    fails by name and is counted with the other failed clips, never dropped unseen. Files
    that are not clips by their extension are counted and named in a warning.
    """
    root = Path(directory)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder of videos; check --videos")
    found: dict[str, Path] = {}
    other: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith("."):
            continue
        if entry.suffix.lower() in VIDEO_EXTENSIONS and (entry.is_file() or is_broken_link(entry)):
            video_id = entry.stem  # a broken link stays: it fails by name and is counted
        elif entry.is_dir() and _image_files(entry):
            video_id = entry.name
        else:
            other.append(entry.name + ("/" if entry.is_dir() else ""))
            continue
        if video_id in found:
            raise DataError(
                f"{root}: {found[video_id].name} and {entry.name} both give video id "
                f"{video_id!r}; rename or remove one"
            )
        found[video_id] = entry
    if other:
        shown = ", ".join(other[:8]) + (f" and {len(other) - 8} more" if len(other) > 8 else "")
        logger.warning("%s: %d file(s) are not clips by their extension and were left out: %s "
                       "(a clip in another container needs one of the extensions %s)", root,
                       len(other), shown, " ".join(sorted(VIDEO_EXTENSIONS)))  # fmt: skip
    return dict(sorted(found.items()))


def is_broken_link(path: Path) -> bool:
    """A symlink whose target is missing or loops back on itself."""
    try:
        path.stat()
    except OSError:
        return path.is_symlink()
    return False


def read_frames(
    path: str | os.PathLike[str], frames: int, size: int, fps: float | None = None
) -> np.ndarray:
    """``frames`` uniformly sampled frames of a clip as uint8 (T, size, size, 3).

    ``path`` is a video file or a folder of images. A clip without a decodable frame
    raises :class:`VideoError` naming the file.
    """
    source = Path(path)
    if is_broken_link(source):
        raise VideoError(f"{source}: broken symlink (dangling, or a loop); fix or remove the link")
    if frames < 0 or (frames == 0 and fps is None):
        raise VideoError(f"{source}: frames must be > 0 (or 0 with an fps)")
    if size < 1:
        raise VideoError(f"{source}: size must be a positive number of pixels")
    if source.is_dir():
        return _read_image_folder(source, frames, size, fps)
    if not source.is_file():
        raise VideoError(f"{source}: file not found")
    if source.stat().st_size == 0:
        raise VideoError(f"{source}: empty file (0 bytes); re-download or remove it")
    try:
        return _read_video_file(source, frames, size, fps)
    except VideoError:
        raise
    except Exception as exc:  # PyAV raises many error types for damaged input
        raise VideoError(f"{source}: cannot decode ({type(exc).__name__}: {exc})") from exc


def sample_times(duration: float, frames: int, fps: float | None) -> np.ndarray:
    """Sample timestamps (seconds from the clip start): segment centres, or every 1/fps."""
    if fps:
        times = np.arange(0.5 / fps, max(duration, 1e-9), 1.0 / fps)
        if len(times) == 0:
            times = np.array([0.0])
        if frames and len(times) > frames:
            times = times[sample_indices(len(times), frames)]
        return times
    return (np.arange(frames) + 0.5) * duration / frames


def sample_indices(count: int, frames: int) -> np.ndarray:
    """``frames`` indices spread uniformly over ``count`` items (repeats when count < frames)."""
    return np.minimum(((np.arange(frames) + 0.5) * count / frames).astype(np.int64), count - 1)


def fit_square(image: np.ndarray, size: int) -> np.ndarray:
    """Resize (short side to ``size``, bilinear) and centre-crop an RGB uint8 array."""
    from PIL import Image

    height, width = image.shape[:2]
    if (height, width) != (size, size):
        new_w, new_h = _scaled(width, height, size)
        if (new_w, new_h) != (width, height):
            image = np.asarray(Image.fromarray(image).resize((new_w, new_h), Image.BILINEAR))
    return _centre_crop(image, size)


def _scaled(width: int, height: int, size: int) -> tuple[int, int]:
    scale = size / min(width, height)
    return max(size, round(width * scale)), max(size, round(height * scale))


def _centre_crop(image: np.ndarray, size: int) -> np.ndarray:
    height, width = image.shape[:2]
    top, left = (height - size) // 2, (width - size) // 2
    return np.ascontiguousarray(image[top : top + size, left : left + size])


def _image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS
    )


def _read_image_folder(folder: Path, frames: int, size: int, fps: float | None) -> np.ndarray:
    from PIL import Image

    files = _image_files(folder)
    if not files:
        raise VideoError(f"{folder}: folder has no images ({', '.join(sorted(IMAGE_EXTENSIONS))})")
    if fps:  # a folder has no clock: treat the images as frames at 25 per second
        picks = (sample_times(len(files) / 25.0, frames, fps) * 25.0).astype(np.int64)
        picks = np.minimum(picks, len(files) - 1)
    else:
        picks = sample_indices(len(files), frames)
    cache: dict[int, np.ndarray] = {}
    out = []
    for index in picks.tolist():
        if index not in cache:
            try:
                with Image.open(files[index]) as image:
                    cache[index] = fit_square(np.asarray(image.convert("RGB")), size)
            except Exception as exc:
                raise VideoError(f"{files[index]}: cannot read image ({exc})") from exc
        out.append(cache[index])
    return np.stack(out)


def _frame_to_array(frame: Any, size: int) -> np.ndarray:
    """An av.VideoFrame resized (swscale) and centre-cropped, with its rotation applied."""
    rotation = int(round((getattr(frame, "rotation", 0) or 0) / 90.0)) % 4
    new_w, new_h = _scaled(frame.width, frame.height, size)
    image = frame.to_ndarray(format="rgb24", width=new_w, height=new_h)
    if rotation:
        image = np.rot90(image, k=rotation)  # counter-clockwise, as the display matrix says
    return _centre_crop(image, size)


def _read_video_file(path: Path, frames: int, size: int, fps: float | None) -> np.ndarray:
    import av

    with av.open(str(path), metadata_errors="ignore") as container:
        if not container.streams.video:
            raise VideoError(f"{path}: no video stream (audio-only or not a video)")
        stream = container.streams.video[0]  # codec threads off: clips decode in parallel
        start = _seconds(stream.start_time, stream.time_base) or 0.0
        duration = _duration(container, stream)
        if duration is None:  # unknown length: count the frames in a first pass
            count = sum(1 for _ in _decode(container, stream))
            if count == 0:
                raise VideoError(f"{path}: no decodable frame; the file is empty or corrupt")
            duration = count / float(stream.average_rate or 25)
            container.seek(0)
        targets = start + sample_times(duration, frames, fps)
        gap = float(np.min(np.diff(targets))) if len(targets) > 1 else duration
        picked = None
        if gap > SEEK_GAP_S:
            picked = _pick_by_seeking(container, stream, targets, size)
            if picked is None:
                container.seek(0)
        if picked is None:
            picked = _pick_sequential(container, stream, targets, size)
    if picked is None:
        raise VideoError(f"{path}: no decodable frame; the file is empty or corrupt")
    return np.stack(picked)


def _seconds(value: Any, time_base: Any) -> float | None:
    if value is None or time_base is None:
        return None
    return float(value * time_base)


def _duration(container: Any, stream: Any) -> float | None:
    seconds = _seconds(stream.duration, stream.time_base)
    if not seconds and container.duration:
        seconds = container.duration / 1_000_000
    return seconds if seconds and seconds > 0 else None


def _decode(container: Any, stream: Any) -> Iterator[Any]:
    for packet in container.demux(stream):
        yield from packet.decode()


def _frame_time(frame: Any, index: int, stream: Any) -> float:
    if frame.time is not None:
        return float(frame.time)
    return index / float(stream.average_rate or 25)


def _pick_sequential(
    container: Any, stream: Any, targets: np.ndarray, size: int
) -> list[np.ndarray] | None:
    """One decoding pass; each target takes the frame shown at it (the last one starting at
    or before it; the first frame for targets before the first timestamp)."""
    picked: list[np.ndarray] = []
    previous: Any = None
    previous_array: np.ndarray | None = None
    for index, frame in enumerate(_decode(container, stream)):
        time = _frame_time(frame, index, stream)
        frame_array: np.ndarray | None = None
        while len(picked) < len(targets) and time > targets[len(picked)]:
            if previous is None:
                if frame_array is None:
                    frame_array = _frame_to_array(frame, size)
                picked.append(frame_array)
            else:
                if previous_array is None:
                    previous_array = _frame_to_array(previous, size)
                picked.append(previous_array)
        if len(picked) == len(targets):
            return picked
        previous, previous_array = frame, frame_array
    if previous is None:
        return None
    if previous_array is None:
        previous_array = _frame_to_array(previous, size)
    return picked + [previous_array] * (len(targets) - len(picked))


def _pick_by_seeking(
    container: Any, stream: Any, targets: np.ndarray, size: int
) -> list[np.ndarray] | None:
    """Seek to the keyframe before each target and decode up to it (long clips).

    None when the file cannot be seeked; the caller then decodes sequentially.
    """
    picked: list[np.ndarray] = []
    try:
        for target in targets:
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            previous = None
            for index, frame in enumerate(_decode(container, stream)):
                if previous is not None and _frame_time(frame, index, stream) > target:
                    break
                previous = frame
            if previous is None:
                return None
            picked.append(_frame_to_array(previous, size))
    except Exception:
        return None
    return picked
