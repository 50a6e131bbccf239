"""The EfficientNet-Lite0 frame encoder: real weights on real photos, and its streams."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from mcsan.core.errors import ConfigError
from mcsan.data.video.backbone import (
    WORLD_STREAMS,
    available_backbones,
    get_backbone,
    register_backbone,
    resolve_streams,
    rgb_histogram,
)
from mcsan.data.video.decode import fit_square

ALL_STREAMS = "head,head_grid1,head_grid2,block10,block10_grid2,rgbhist"


@pytest.fixture(scope="module")
def encoder():
    return get_backbone("efficientnet_lite0", ALL_STREAMS, batch_size=8)


PHOTO_CLASSES = {
    "chelsea": range(281, 286),  # tabby / tiger cat / Persian / Siamese / Egyptian cat
    "coffee": (967, 968, 504),  # espresso / cup / coffee mug
    "rocket": (657, 744),  # missile / projectile
}


def test_pretrained_weights_classify_real_photos(encoder):
    photos = np.stack([fit_square(getattr(skimage.data, p)(), 224) for p in PHOTO_CLASSES])
    probabilities = encoder.classify(photos)
    for (photo, classes), row in zip(PHOTO_CLASSES.items(), probabilities, strict=True):
        assert int(row.argmax()) in classes, photo
        assert row.max() > 0.25, photo


def test_stream_shapes_and_pooling_relations(encoder):
    shapes = encoder.stream_shapes()
    assert shapes == {
        "head": (1280,),
        "head_grid1": (1, 1280),
        "head_grid2": (4, 1280),
        "block10": (112,),
        "block10_grid2": (4, 112),
        "rgbhist": (256,),
    }
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    out = encoder.encode(frames)
    for name, shape in shapes.items():
        assert out[name].shape == (3, *shape) and out[name].dtype == np.float32
        assert np.isfinite(out[name]).all()
    # at 64 px the head map is 2x2 and block 10's is 4x4: the grids split them evenly
    np.testing.assert_allclose(out["head_grid1"][:, 0], out["head"], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(out["head_grid2"].mean(1), out["head"], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(out["block10_grid2"].mean(1), out["block10"], rtol=1e-4, atol=1e-5)


def test_batching_does_not_change_features(encoder):
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 256, (10, 64, 64, 3), dtype=np.uint8)
    whole = encoder.encode(frames)
    encoder.batch_size = 3
    try:
        small = encoder.encode(frames)
    finally:
        encoder.batch_size = 8
    for name in ("head", "block10", "head_grid2"):
        np.testing.assert_allclose(small[name], whole[name], rtol=1e-3, atol=1e-4)


def naive_histogram(frame: np.ndarray) -> np.ndarray:
    height, width, _ = frame.shape
    out = np.zeros((4, 64))
    for y in range(height):
        for x in range(width):
            cell = (y * 2 // height) * 2 + (x * 2 // width)
            r, g, b = (int(v) // 64 for v in frame[y, x])
            out[cell, r * 16 + g * 4 + b] += 1
    return (out / out.sum(1, keepdims=True)).ravel()


@settings(max_examples=25, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(2, 9), st.integers(2, 9), st.just(3))))
def test_rgb_histogram_matches_a_direct_count(frame):
    got = rgb_histogram(frame[None])[0]
    np.testing.assert_allclose(got, naive_histogram(frame), atol=1e-6)
    np.testing.assert_allclose(got.reshape(4, 64).sum(1), 1.0, atol=1e-6)


def test_stream_names_resolve():
    assert resolve_streams("world") == WORLD_STREAMS
    assert resolve_streams("head,head_grid,block10_grid", grid=3) == (
        "head",
        "head_grid3",
        "block10_grid3",
    )
    with pytest.raises(ConfigError):
        resolve_streams(" , ")


def test_unknown_names_are_config_errors():
    with pytest.raises(ConfigError, match="resnet"):
        get_backbone("resnet", "head")
    with pytest.raises(ConfigError, match="bogus"):
        get_backbone("efficientnet_lite0", "bogus")
    with pytest.raises(ConfigError, match="block99"):
        get_backbone("efficientnet_lite0", "block99")


class ColourMeans:
    """A user's own encoder: the mean RGB of each frame."""

    name = "colour_means"

    def __init__(self, streams, grid=2, batch_size=64):
        self.streams = tuple(streams)

    def stream_shapes(self):
        return {"rgb": (3,)}

    def encode(self, frames):
        return {"rgb": frames.reshape(len(frames), -1, 3).mean(1).astype(np.float32)}


def test_registry_accepts_another_backbone():
    register_backbone("colour_means", ColourMeans)
    assert "colour_means" in available_backbones()
    encoder = get_backbone("colour_means", ["rgb"])
    out = encoder.encode(np.full((2, 4, 4, 3), 7, np.uint8))
    np.testing.assert_allclose(out["rgb"], 7.0)


def test_histogram_only_encoder_skips_the_network():
    encoder = get_backbone("efficientnet_lite0", "rgbhist")
    out = encoder.encode(np.zeros((2, 8, 8, 3), np.uint8))
    assert out["rgbhist"].shape == (2, 256)
    assert encoder._model is None
