"""An index knows what it was built from: a faiss.index copied in from another index of
the same shape is refused, a swapped feature file is not used by the re-ranker, and a
server whose index files change answers 503 naming them, never wrong hits or a 500."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from fastapi.testclient import TestClient
from search_helpers import strip_matcher_store
from tiny_world import make_tiny_dataset

from mcsan.core.errors import CheckpointError
from mcsan.search import VideoIndex
from mcsan.search.searcher import Searcher
from mcsan.search.server import create_app

LEVELS = {"global": 8, "action": 8}


def _index(seed: int) -> VideoIndex:
    rng = np.random.default_rng(seed)
    embeddings = {}
    for level, dim in LEVELS.items():
        rows = rng.standard_normal((5, dim)).astype(np.float32)
        embeddings[level] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return VideoIndex.build(embeddings, [f"v{i}" for i in range(5)], None,
                            dict.fromkeys(LEVELS, 1.0), "a" * 64)  # fmt: skip


def test_a_faiss_index_from_another_index_of_the_same_shape_is_refused(tmp_path):
    one = _index(0).save(tmp_path / "one")
    two = _index(1).save(tmp_path / "two")
    assert VideoIndex.load(one).meta()["ids"] == VideoIndex.load(two).meta()["ids"]
    shutil.copy(two / "faiss.index", one / "faiss.index")
    with pytest.raises(CheckpointError, match=r"faiss\.index: not the file this index was built"):
        VideoIndex.load(one)


def test_a_swapped_feature_file_is_not_used_to_rerank(matcher_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    strip_matcher_store(index_dir)  # an index that re-ranks from its feature file
    index = VideoIndex.load(index_dir)
    assert index.extra["feature_identity"]
    # the same ids and spec, other features (another tiny world of the same shape)
    other = make_tiny_dataset(tmp_path / "other", {"train": 24, "val": 8, "test": 12}, seed=9)
    swapped = tmp_path / "swapped.h5"
    shutil.copy(other / "features" / "tiny.h5", swapped)
    index.extra["feature_file"] = str(swapped)
    searcher = Searcher(index, matcher_index["retriever"])
    answer = searcher.answer("a red ball is jumping", k=3, mode="model")
    assert answer.reranked == 0 and searcher.reranker is None
    assert any("not the features the index records" in w for w in answer.warnings)


def test_index_files_changed_under_the_server_answer_503(matcher_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    app = create_app(index_dir, retriever=matcher_index["retriever"])
    with TestClient(app) as client:
        assert client.get("/api/search", params={"q": "a red ball"}).status_code == 200
        emb = next(index_dir.glob("emb_*.npy"))
        np.save(emb, np.zeros_like(np.load(emb)))  # rewritten in place
        answer = client.get("/api/search", params={"q": "a red ball"})
    assert answer.status_code == 503
    assert f"{emb.name} changed on disk" in answer.json()["error"]
