"""The binding matcher's stored inputs: re-ranking from the index's store ranks as from the
clips' features; an index without a store still re-ranks from the feature file."""

from __future__ import annotations

import logging
import shutil

import numpy as np
import pytest
from search_helpers import strip_matcher_store

from mcsan.search import VideoIndex
from mcsan.search.rerank import ShortlistReranker, index_feature_file
from mcsan.search.searcher import Searcher
from mcsan.search.segments import RowBlocks

QUERIES = ("a red ball is jumping", "a blue cube left of a green ball", "a yellow cone",
           "a green ball moves right", "a purple cube is above a red cube")
STORE_ERROR = 2e-3
"""Largest |match(store) - match(features)| allowed: the keys and changes are float16."""


def test_the_index_stores_what_the_matcher_reads(matcher_index):
    index = VideoIndex.load(matcher_index["index"])
    retriever = matcher_index["retriever"]
    matcher = retriever.model.matcher
    assert index.matcher is not None and index.matcher.dtype == np.float16
    rows, frames, cells, width = index.matcher.shape
    assert rows == len(index.ids) and cells == 4
    assert width == matcher.key.out_features + matcher.change.out_features
    assert index.matcher_info["key_dim"] == matcher.key.out_features
    reranker = Searcher(index, retriever).reranker
    assert reranker is not None and reranker.source == "store"


def test_store_and_features_give_the_same_order(matcher_index):
    index = VideoIndex.load(matcher_index["index"])
    retriever = matcher_index["retriever"]
    from_store = ShortlistReranker.for_index(index, retriever)[0]
    from_features = ShortlistReranker(retriever, index_feature_file(index))
    assert from_store.source == "store" and from_features.source == "features"
    worst = 0.0
    for query in QUERIES:
        ids = index.live_ids()
        store, features = from_store.match(query, ids), from_features.match(query, ids)
        worst = max(worst, float(np.abs(store - features).max()))
        # every pair of clips further apart than twice the error is ordered the same
        apart = np.abs(features[:, None] - features[None, :]) > 2 * STORE_ERROR
        same = np.sign(store[:, None] - store[None, :]) == np.sign(
            features[:, None] - features[None, :])
        assert same[apart].all(), query
    assert 0.0 < worst < STORE_ERROR
    # the searcher's answers are the same with either source
    with_store = Searcher(index, retriever)
    with_features = Searcher(index, retriever)
    with_features.reranker = from_features
    for query in QUERIES:
        a = with_store.answer(query, k=8, mode="model")
        b = with_features.answer(query, k=8, mode="model")
        assert [h.video_id for h in a.hits] == [h.video_id for h in b.hits]
        assert a.timings["second_stage"] > 0 and a.timings["encode"] > 0


def test_an_index_without_a_store_reads_the_features(matcher_index, tmp_path, caplog):
    index_dir = tmp_path / "old"
    shutil.copytree(matcher_index["index"], index_dir)
    strip_matcher_store(index_dir)
    retriever = matcher_index["retriever"]
    with caplog.at_level(logging.INFO, logger="mcsan.search.rerank"):
        old = Searcher(VideoIndex.load(index_dir), retriever)
    assert old.reranker is not None and old.reranker.source == "features"
    assert any("no matcher store" in r.getMessage() for r in caplog.records)
    new = Searcher(VideoIndex.load(matcher_index["index"]), retriever)
    for query in QUERIES[:3]:
        assert ([h.video_id for h in old.answer(query, k=6, mode="model").hits]
                == [h.video_id for h in new.answer(query, k=6, mode="model").hits])


def test_row_blocks_read_rows_across_segments_and_pad():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 3, 2)).astype(np.float16)
    b = rng.standard_normal((4, 2, 2)).astype(np.float16)  # a shorter segment
    blocks = RowBlocks([a, b])
    assert blocks.shape == (9, 3, 2) and len(blocks) == 9
    whole = np.zeros((9, 3, 2), np.float16)
    whole[:5], whole[5:, :2] = a, b
    rows = np.array([7, 0, 5, 5, 4, 8])
    assert np.array_equal(blocks[rows], whole[rows])
    assert np.array_equal(blocks[2:7], whole[2:7])
    assert np.array_equal(np.asarray(blocks), whole)
    with pytest.raises(IndexError):
        blocks[np.array([9])]


def test_the_store_needs_no_feature_file(matcher_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    index = VideoIndex.load(index_dir)
    index.extra["feature_file"] = str(tmp_path / "gone.h5")
    answer = Searcher(index, matcher_index["retriever"]).answer(QUERIES[0], k=4, mode="model")
    assert answer.reranked == 4 and not answer.warnings
