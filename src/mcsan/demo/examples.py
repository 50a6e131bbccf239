"""Example text queries against the test clips, with thumbnails of the top five."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from mcsan.ablation import VariantResult
from mcsan.demo.settings import FEATURE_SET

N_QUERIES = 3
TOP_K = 5


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
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mcsan.data.native import feature_path, read_captions, videos_dir
    from mcsan.data.video.decode import read_frames
    from mcsan.data.video.store import FeatureStore
    from mcsan.inference import Retriever

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
    examples = []
    for number, ((query, truth), scores) in enumerate(zip(queries, fused, strict=True), start=1):
        order = np.argsort(-scores, kind="stable")[:TOP_K]
        top = [(test_ids[j], float(scores[j]), test_ids[j] == truth) for j in order]
        figure, axes = plt.subplots(1, len(top), figsize=(2.2 * len(top), 2.6))
        for axis, (vid, score, correct) in zip(np.atleast_1d(axes), top, strict=True):
            clip = read_frames(videos_dir(root) / f"{vid}.mp4", 3, 96)
            axis.imshow(clip[1])
            axis.set_title(f"{'✓ ' if correct else ''}{vid}\n{score:.3f}", fontsize=8,
                           color="green" if correct else "black")  # fmt: skip
            axis.axis("off")
        figure.suptitle(query, fontsize=9)
        figure.tight_layout()
        image = plots_dir / f"query{number}.png"
        figure.savefig(image, dpi=80)
        plt.close(figure)
        examples.append(
            {"query": query, "truth": truth, "top": top,
             "image": str(image.relative_to(plots_dir.parent))}
        )  # fmt: skip
    return examples
