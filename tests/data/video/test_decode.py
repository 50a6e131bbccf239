"""Decoding and frame sampling on clips written by the tests themselves."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

import mcsan.data.video.decode as video
from mcsan.core.errors import DataError, VideoError
from mcsan.data.video.clip_writer import write_video
from mcsan.data.video.decode import list_videos, read_frames, sample_indices


def ramp(count: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames whose grey level rises 10 per frame, with a red top-left quarter marker."""
    frames = np.zeros((count, height, width, 3), np.uint8)
    frames[...] = (np.arange(count) * 10 % 250)[:, None, None, None]
    frames[:, : height // 2, : width // 2, :] = (255, 0, 0)
    return frames


def grey(frames: np.ndarray) -> np.ndarray:
    """The grey level of the bottom-right corner of each frame."""
    return frames[:, -1, -1, 1].astype(int)


def test_uniform_sampling_count_size_and_order(tmp_path):
    clip = write_video(tmp_path / "a.mp4", ramp(20))
    frames = read_frames(clip, 5, 32)
    assert frames.shape == (5, 32, 32, 3) and frames.dtype == np.uint8
    # segment centres of 20 frames in 5 segments: frames 2, 6, 10, 14, 18
    np.testing.assert_allclose(grey(frames), [20, 60, 100, 140, 180], atol=4)


@pytest.mark.parametrize("suffix", [".webm", ".avi", ".mkv"])
def test_other_containers(tmp_path, suffix):
    clip = write_video(tmp_path / f"c{suffix}", ramp(10))
    frames = read_frames(clip, 3, 32)
    assert frames.shape == (3, 32, 32, 3)
    assert np.all(np.diff(grey(frames)) > 0)


def test_short_clip_repeats_frames(tmp_path):
    clip = write_video(tmp_path / "short.mp4", ramp(3))
    levels = grey(read_frames(clip, 8, 32))
    assert len(levels) == 8
    assert np.all(np.diff(levels) >= 0)
    assert len(np.unique(levels)) == 3


def test_one_frame_clip_gives_t_copies(tmp_path):
    clip = write_video(tmp_path / "one.mp4", ramp(1))
    frames = read_frames(clip, 4, 32)
    assert frames.shape == (4, 32, 32, 3)
    assert all(np.array_equal(frames[0], f) for f in frames)


def test_resize_short_side_then_centre_crop(tmp_path):
    frames = np.zeros((2, 64, 96, 3), np.uint8)
    frames[:, :, :, 1] = 200
    frames[:, :, :12] = (255, 0, 0)  # side bands, cut away by the centre crop
    frames[:, :, -12:] = (255, 0, 0)
    clip = write_video(tmp_path / "wide.mp4", frames)
    out = read_frames(clip, 2, 32)
    assert out.shape == (2, 32, 32, 3)
    assert out[..., 0].max() < 60


def test_rotation_metadata_is_applied(tmp_path):
    clip = write_video(tmp_path / "rot.mp4", ramp(2, 64, 64), rotation=90)
    frame = read_frames(clip, 1, 32)[0].astype(int)
    # rotated 90 degrees counter-clockwise: the top-left marker ends bottom-left
    assert frame[-4, 4, 0] > 200 and frame[-4, 4, 1] < 60
    assert frame[4, 4, 0] < 60


def test_variable_frame_rate_is_sampled_by_time(tmp_path):
    times = [0.0, 0.04, 0.08, 0.12, 0.16, 1.0, 2.0, 3.0]  # five frames at once, then 1 per s
    clip = write_video(tmp_path / "vfr.mp4", ramp(8, 32, 32), times=times)
    # samples at 0.38, 1.14, 1.90, 2.66 s show the frames stamped 0.16, 1.0, 1.0, 2.0 s
    np.testing.assert_allclose(grey(read_frames(clip, 4, 16)), [40, 50, 50, 60], atol=4)


def test_image_folder_is_one_clip(tmp_path):
    folder = tmp_path / "clip"
    folder.mkdir()
    for index in range(5):
        Image.fromarray(np.full((40, 50, 3), index * 40, np.uint8)).save(
            folder / f"{index:03d}.png"
        )
    frames = read_frames(folder, 3, 16)
    assert frames.shape == (3, 16, 16, 3)
    assert grey(frames).tolist() == [0, 80, 160]


def test_fps_sampling_and_cap(tmp_path):
    clip = write_video(tmp_path / "two_seconds.mp4", ramp(50), fps=25)
    assert len(read_frames(clip, 0, 16, fps=2.0)) == 4
    assert len(read_frames(clip, 3, 16, fps=2.0)) == 3


def test_long_clip_is_read_by_seeking(tmp_path, monkeypatch):
    clip = write_video(tmp_path / "long.mp4", ramp(250, 32, 32), fps=25, keyframe_every=25)
    monkeypatch.setattr(video, "SEEK_GAP_S", 1e9)
    sequential = read_frames(clip, 2, 16)

    def refuse(*args, **kwargs):
        raise AssertionError("long clips must not be decoded sequentially")

    monkeypatch.setattr(video, "SEEK_GAP_S", 4.0)
    monkeypatch.setattr(video, "_pick_sequential", refuse)
    seeked = read_frames(clip, 2, 16)
    np.testing.assert_array_equal(seeked, sequential)


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 50])
def test_empty_or_corrupt_file_is_a_video_error_naming_it(tmp_path, content):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(content)
    with pytest.raises(VideoError, match="bad.mp4"):
        read_frames(bad, 4, 32)


def test_truncated_file_is_a_video_error(tmp_path):
    clip = write_video(tmp_path / "cut.mp4", ramp(10))
    clip.write_bytes(clip.read_bytes()[:200])
    with pytest.raises(VideoError, match="cut.mp4"):
        read_frames(clip, 4, 32)


def test_missing_file_and_empty_folder(tmp_path):
    with pytest.raises(VideoError, match="nope.mp4"):
        read_frames(tmp_path / "nope.mp4", 4, 32)
    (tmp_path / "blank").mkdir()
    with pytest.raises(VideoError, match="blank"):
        read_frames(tmp_path / "blank", 4, 32)


def test_list_videos(tmp_path):
    write_video(tmp_path / "b.mp4", ramp(1))
    (tmp_path / "a.webm").write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("hi")
    (tmp_path / "frames_c").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "frames_c" / "0.jpg")
    (tmp_path / "empty_dir").mkdir()
    found = list_videos(tmp_path)
    assert list(found) == ["a", "b", "frames_c"]
    assert found["frames_c"].is_dir()
    (tmp_path / "b.mkv").write_bytes(b"x")
    with pytest.raises(DataError, match="b.mkv"):
        list_videos(tmp_path)


@given(st.integers(1, 500), st.integers(1, 64))
def test_sample_indices_are_uniform(count, frames):
    picks = sample_indices(count, frames)
    assert len(picks) == frames
    assert picks.min() >= 0 and picks.max() < count
    assert np.all(np.diff(picks) >= 0)
    if count >= frames:
        assert len(np.unique(picks)) == frames
