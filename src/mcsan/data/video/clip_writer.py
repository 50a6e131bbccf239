"""The one clip writer: uint8 RGB frames to a video file, byte-identical for the same frames.

The synthetic world renders its clips with it, and the tests and benchmarks write their
clips with it. H.264 is encoded at a constant QP on one thread (x264's CRF rate control
gave different bytes run to run) and frames whose height is a multiple of 4 are converted
to YUV 4:2:0 here, not in swscale, so the bytes are the same in every process.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from mcsan.core.io import atomic_path

CONTAINERS: dict[str, str] = {
    ".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm",
    ".avi": "avi",
}  # fmt: skip
"""Container format by file suffix (anything else is written as mp4)."""
CODECS: dict[str, str] = {".webm": "libvpx", ".avi": "mpeg4"}
"""Codec by file suffix (anything else is H.264)."""
X264_OPTIONS: dict[str, str] = {"qp": "20", "preset": "veryfast", "threads": "1"}


def rgb_to_yuv420p(image: np.ndarray) -> np.ndarray:
    """BT.601 limited-range planar YUV 4:2:0 (shape (1.5 h, w)) of a uint8 RGB image.

    ``h`` must be a multiple of 4 and ``w`` even (the chroma planes are packed in rows of w).
    """
    rgb = image.astype(np.float32) / 255.0
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    y = 16.0 + 65.481 * r + 128.553 * g + 24.966 * b
    cb = 128.0 - 37.797 * r - 74.203 * g + 112.0 * b
    cr = 128.0 + 112.0 * r - 93.786 * g - 18.214 * b
    height, width = y.shape

    def half(plane: np.ndarray) -> np.ndarray:
        return plane.reshape(height // 2, 2, width // 2, 2).mean(axis=(1, 3)).reshape(
            height // 4, width)

    planes = np.concatenate([y, half(cb), half(cr)], axis=0)
    return np.clip(planes + 0.5, 0, 255).astype(np.uint8)


def write_video(
    path: str | os.PathLike[str],
    frames: np.ndarray,
    fps: float = 25,
    rotation: int | None = None,
    keyframe_every: int | None = None,
    times: Sequence[float] | None = None,
) -> Path:
    """Encode uint8 frames (T, H, W, 3) (even H and W) as a clip, atomically; return the path.

    The codec follows the suffix: VP8 for .webm, MPEG-4 part 2 for .avi, else H.264.
    ``rotation`` (degrees counter-clockwise) goes into the display matrix, as phones do;
    ``times`` (seconds, increasing) gives each frame its own timestamp (variable rate).
    """
    import av

    target = Path(path)
    suffix = target.suffix.lower()
    codec = CODECS.get(suffix, "libx264")
    height, width = frames.shape[1:3]
    exact = height % 4 == 0 and width % 2 == 0
    with atomic_path(target) as tmp:
        with av.open(str(tmp), mode="w", format=CONTAINERS.get(suffix, "mp4")) as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            if codec == "libx264":
                stream.options = dict(X264_OPTIONS)
            stream.thread_count = 1
            if keyframe_every:
                stream.codec_context.gop_size = keyframe_every
            if rotation is not None:
                stream.set_display_rotation(rotation)
            if times is not None:
                stream.codec_context.time_base = Fraction(1, 1000)
                stream.codec_context.max_b_frames = 0  # keeps the muxed duration exact
            for number, image in enumerate(frames):
                if exact:
                    frame = av.VideoFrame.from_ndarray(rgb_to_yuv420p(image), format="yuv420p")
                else:
                    frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                if times is not None:
                    frame.pts, frame.time_base = round(times[number] * 1000), Fraction(1, 1000)
                else:
                    frame.pts = number
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode(None):
                container.mux(packet)
    return target
