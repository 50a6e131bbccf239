"""Example text queries against the test clips, with thumbnails of the top five."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcsan.apps.ablation import VariantResult
from mcsan.apps.demo.settings import FEATURE_SET

N_QUERIES = 3
TOP_K = 5
STRIP_FRAMES = 4
"""Frames shown per clip, spread over the clip, so that its action can be checked."""


def _pick_queries(root: Path) -> list[tuple[str, str]]:
    """(caption, video_id) of a few test captions: the longest caption of spread-out clips."""
    from mcsan.data.native import read_captions

    by_video: dict[str, list[str]] = {}
    for record in read_captions(root):
        if record.split == "test":
            by_video.setdefault(record.video_id, []).append(record.caption)
    videos = sorted(by_video)
    step = max(1, len(videos) // N_QUERIES)
    return [(max(by_video[v], key=len), v) for v in videos[::step][:N_QUERIES]]


def example_queries(variant: VariantResult, root: Path, plots_dir: Path) -> list[dict[str, Any]]:
    """Rank the test clips for a few test captions with ``variant``; save thumbnail strips.

    Returns one dict per query: ``query``, ``truth``, ``top`` (id, fused score, correct) and
    ``image`` (the PNG path relative to the report folder).
    """
    from mcsan.apps.demo.plots import pyplot
    from mcsan.data.native import feature_path, read_captions, videos_dir
    from mcsan.data.video.store import FeatureStore
    from mcsan.inference.retriever import Retriever

    queries = _pick_queries(root)
    if not queries:
        return []
    test_ids = sorted({r.video_id for r in read_captions(root) if r.split == "test"})
    retriever = Retriever.from_checkpoint(variant.run_dir / "best.pt")
    with FeatureStore.open(feature_path(root, FEATURE_SET)) as store:
        features = store.read_all(test_ids)
    video_emb = retriever.encode_features([features[v] for v in test_ids])
    text_emb = retriever.encode_captions([q for q, _ in queries])
    fused = retriever.score(text_emb, video_emb)["fused"]
    plots_dir.mkdir(parents=True, exist_ok=True)
    plt = pyplot()
    examples = []
    for number, ((query, truth), scores) in enumerate(zip(queries, fused, strict=True), start=1):
        order = np.argsort(-scores, kind="stable")[:TOP_K]
        top = [(test_ids[j], float(scores[j]), test_ids[j] == truth) for j in order]
        image = plots_dir / f"query{number}.png"
        _frame_strips(plt, query, top, videos_dir(root), image)
        examples.append(
            {"query": query, "truth": truth, "top": top,
             "image": str(image.relative_to(plots_dir.parent))}
        )  # fmt: skip
    return examples


def _frame_strips(
    plt: Any, query: str, top: list[tuple[str, float, bool]], videos: Path, image: Path
) -> None:
    """One row per ranked clip: rank, id, score, then STRIP_FRAMES frames from start to end."""
    from mcsan.data.video.decode import read_frames

    figure, axes = plt.subplots(len(top), STRIP_FRAMES, figsize=(1.6 * STRIP_FRAMES + 1.6,
                                1.6 * len(top) + 0.6), squeeze=False, constrained_layout=True)  # fmt: skip
    for rank, (row, (vid, score, correct)) in enumerate(zip(axes, top, strict=True), start=1):
        clip = read_frames(videos / f"{vid}.mp4", STRIP_FRAMES, 96)
        for t, axis in enumerate(row):
            axis.imshow(clip[t])
            axis.set_xticks([])
            axis.set_yticks([])
        row[0].set_ylabel(f"{rank}. {vid}\n{score:.3f}{' ✓' if correct else ''}", fontsize=8,
                          color="green" if correct else "black", rotation=0, ha="right",
                          va="center")  # fmt: skip
    for t, axis in enumerate(axes[0]):
        axis.set_title(f"frame {t + 1}/{STRIP_FRAMES}", fontsize=8)
    figure.suptitle(f"“{query}”", fontsize=9)
    figure.savefig(image, dpi=90)
    plt.close(figure)
