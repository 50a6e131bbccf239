"""A real tiny search setup for the search tests: clips -> features -> 1-epoch run -> index.

Built once per test session into pytest's base temp folder (every module that needs it
calls :func:`tiny_search_setup`; later calls find it on disk). Also a real uvicorn server
on a free loopback port.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

NEEDS_QDRANT = pytest.mark.skipif(__import__("importlib").util.find_spec("qdrant_client") is None,
                                  reason="the [qdrant] extra is not installed (it is in [dev])")
BACKENDS = ["flat", pytest.param("qdrant", marks=NEEDS_QDRANT)]
"""First-stage backends the search tests run on: FAISS (flat) and embedded Qdrant."""

COLOURS = {
    "red": (220, 30, 30), "green": (30, 200, 60), "blue": (40, 60, 220),
    "yellow": (230, 220, 40), "purple": (150, 40, 180), "orange": (240, 140, 20),
    "white": (240, 240, 240), "grey": (120, 120, 120),
}
MOTIONS = ("left", "right")
SIZE = 32
FRAMES = 4


def write_clip(path: Path, colour: tuple[int, int, int], moves_right: bool) -> None:
    """A tiny real H.264 mp4: a coloured square sliding across a dark background."""
    from mcsan.data.video.clip_writer import write_video

    frames = np.full((8, SIZE, SIZE, 3), 20, np.uint8)
    for step, frame in enumerate(frames):
        x = 2 + 2 * step if moves_right else SIZE - 14 - 2 * step
        frame[10:22, x : x + 12] = colour
    write_video(path, frames, fps=8)


def make_clips(folder: Path) -> dict[str, str]:
    """Write one clip per (colour, motion); return {video_id: caption}."""
    folder.mkdir(parents=True, exist_ok=True)
    captions = {}
    for number, (name, rgb) in enumerate(COLOURS.items()):
        for motion in MOTIONS:
            video_id = f"{name}_{motion}"
            write_clip(folder / f"{video_id}.mp4", rgb, motion == "right")
            captions[video_id] = f"a {name} square moves {motion}"
        del number
    return captions


def make_dataset(root: Path, clips: Path, captions: dict[str, str]) -> None:
    """A native dataset whose features are extracted from ``clips`` (rgbhist stream)."""
    from mcsan.data.native import CaptionRecord, feature_path, update_card, write_captions
    from mcsan.data.video.extract import extract_features
    from mcsan.data.video.store import FeatureStore

    out = feature_path(root, "tiny")
    extract_features(
        {vid: clips / f"{vid}.mp4" for vid in captions}, out, frames=FRAMES, size=SIZE,
        streams="rgbhist", workers=1,
    )
    with FeatureStore.open(out) as store:
        spec = store.spec
    records = []
    for number, (video_id, caption) in enumerate(sorted(captions.items())):
        split = "val" if number % 4 == 3 else "train"
        records += [CaptionRecord(video_id, caption, split),
                    CaptionRecord(video_id, f"the {caption.split()[1]} box", split)]
    write_captions(root, records)
    update_card(root, name="tiny", splits=["train", "val"],
                feature_sets={"tiny": {"path": "features/tiny.h5", **spec.to_json()}})


def train_tiny(root: Path, run: Path) -> Path:
    """Train one epoch of a very small model on ``root``; return best.pt."""
    from mcsan.config.run import config_from_dict
    from mcsan.train.trainer import train

    cfg = config_from_dict({
        "data": {"root": str(root), "feature_set": "tiny", "word_vectors": "none",
                 "attribute_sizes": {"entity": 8, "action": 4, "relation": 4}},
        "model": {"embed_dim": 16, "word_dim": 16, "text_hidden": 16, "video_hidden": 16,
                  "attention_hidden": 8, "action_channels": 8, "entity_slots": 2,
                  "attention_heads": 2},
        "train": {"epochs": 1, "batch_size": 8, "device": "cpu", "log_every": 1},
    })
    train(cfg, run)
    return run / "best.pt"


def tiny_search_setup(base: Path) -> dict[str, Path]:
    """Clips, a trained checkpoint and an index of the clips under ``base`` (built once)."""
    done = base / "search_setup.json"
    if done.is_file():
        return {k: Path(v) for k, v in json.loads(done.read_text()).items()}
    from mcsan.inference.retriever import Retriever
    from mcsan.search.build import index_videos

    clips, dataset = base / "clips", base / "dataset"
    captions = make_clips(clips)
    make_dataset(dataset, clips, captions)
    checkpoint = train_tiny(dataset, base / "run")
    index_dir = base / "index"
    index_videos(Retriever.from_checkpoint(checkpoint), clips, index_dir, checkpoint=checkpoint,
                 concepts=False)
    paths = {"clips": clips, "dataset": dataset, "checkpoint": checkpoint, "index": index_dir}
    done.write_text(json.dumps({k: str(v) for k, v in paths.items()}))
    return paths


MATCHER_TOP_K = 4


def matcher_search_setup(base: Path, parser: object = None) -> dict[str, Path]:
    """A tiny dataset, a 2-epoch run with the binding matcher (re-ranks the top 4 with
    weight 2) and an index of the dataset's features, under ``base`` (built once)."""
    done = base / "matcher_setup.json"
    if done.is_file():
        return {k: Path(v) for k, v in json.loads(done.read_text()).items()}
    from tiny_world import make_tiny_dataset, tiny_config_yaml

    from mcsan.config.run import load_config
    from mcsan.inference.retriever import Retriever
    from mcsan.search.build import index_dataset
    from mcsan.train.trainer import Trainer

    root = make_tiny_dataset(base / "data", videos={"train": 24, "val": 8, "test": 12}, seed=5)
    cfg = load_config(tiny_config_yaml(root, base / "tiny.yaml", epochs=2),
                      ["model.rerank=true", "model.rerank_dim=8",
                       f"rerank.top_k={MATCHER_TOP_K}", "rerank.weight=2.0"])  # fmt: skip
    Trainer(cfg, base / "run", parser=parser).fit()
    checkpoint = base / "run" / "best.pt"
    index_dataset(Retriever.from_checkpoint(checkpoint), root, base / "index",
                  checkpoint=checkpoint)  # fmt: skip
    paths = {"root": root, "checkpoint": checkpoint, "index": base / "index"}
    done.write_text(json.dumps({k: str(v) for k, v in paths.items()}))
    return paths


def strip_matcher_store(index_dir: Path) -> None:
    """Make ``index_dir`` an index as written before matcher stores (re-ranks from features)."""
    meta = json.loads((index_dir / "meta.json").read_text())
    meta["matcher"] = None
    for segment in meta.get("segments", []):
        name = segment["files"].pop("matcher", None)
        if name:
            (index_dir / name).unlink()
            meta.get("files", {}).pop(name, None)  # its recorded hash (identity check)
    (index_dir / "meta.json").write_text(json.dumps(meta))


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def running_server(app: object, timeout: float = 20.0) -> Iterator[str]:
    """Serve ``app`` with a real uvicorn on 127.0.0.1 in a thread; yield its base URL."""
    import uvicorn

    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                            lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn-test", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start on 127.0.0.1")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)


PHOTOS = {
    # scikit-image photograph -> a short plain-English description of its content
    "chelsea": "a cat",
    "coffee": "a cup of coffee",
    "rocket": "a rocket",
    "camera": "a camera on a tripod",
    "stereo_motorcycle": "a motorcycle",
    "clock": "a clock on the wall",
    "astronaut": "an astronaut",
    "page": "a page of a book",
}
PHOTO_FRAMES = 8
PHOTO_SIZE = 160


def photo_frames(image: np.ndarray, frames: int = PHOTO_FRAMES, size: int = PHOTO_SIZE):
    """A slow zoom-in and pan over ``image``: (frames, size, size, 3) uint8."""
    from PIL import Image

    if image.ndim == 2:
        image = np.stack([image] * 3, axis=-1)
    image = np.ascontiguousarray(image[..., :3], dtype=np.uint8)
    height, width = image.shape[:2]
    out = []
    for step in range(frames):
        scale = 1.0 - 0.3 * step / max(1, frames - 1)  # zoom to 70 %
        side = int(min(height, width) * scale)
        x = int((width - side) * step / max(1, frames - 1))  # pan left to right
        y = (height - side) // 2
        crop = Image.fromarray(image[y : y + side, x : x + side])
        out.append(np.asarray(crop.resize((size, size), Image.BILINEAR)))
    return np.stack(out)


def make_photo_clips(folder: Path) -> dict[str, str]:
    """One H.264 clip per scikit-image photograph in PHOTOS; return {video_id: description}."""
    import skimage.data

    from mcsan.data.video.clip_writer import write_video

    folder.mkdir(parents=True, exist_ok=True)
    for name in PHOTOS:
        image = getattr(skimage.data, name)()
        if isinstance(image, tuple):  # stereo_motorcycle: (left, right, disparity)
            image = image[0]
        write_video(folder / f"{name}.mp4", photo_frames(image), fps=8)
    return dict(PHOTOS)


def photo_index_setup(base: Path) -> dict[str, Path]:
    """Photo clips and a concept-only index of them (no checkpoint), built once."""
    done = base / "photo_setup.json"
    if done.is_file():
        return {k: Path(v) for k, v in json.loads(done.read_text()).items()}
    from mcsan.search.build import index_videos

    clips, index_dir = base / "photo_clips", base / "photo_index"
    make_photo_clips(clips)
    index_videos(None, clips, index_dir)
    paths = {"clips": clips, "index": index_dir}
    done.write_text(json.dumps({k: str(v) for k, v in paths.items()}))
    return paths
