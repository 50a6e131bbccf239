"""Serving many users: concurrent requests are answered as one at a time would be (their
model work batched), every answer reports per-stage times, and a changed index is picked up
without a restart."""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from search_helpers import running_server

from mcsan.search import VideoIndex, matcher_store
from mcsan.search.batching import MicroBatcher
from mcsan.search.grow import add_to_index, remove_from_index
from mcsan.search.matcher_store import match_rows, to_video
from mcsan.search.server import create_app

QUERIES = ["a red ball is jumping", "a blue cube left of a green ball", "a yellow ball",
           "a purple cube is above a red cube", "a green ball moves right", "a red cube"]


def ranked(body: dict) -> list[tuple]:
    return [(h["video_id"], round(h["score"], 4)) for h in body["hits"]]


def test_concurrent_reranked_queries_answer_as_sequential_ones(matcher_index):
    app = create_app(matcher_index["index"], retriever=matcher_index["retriever"])
    with running_server(app) as base:
        alone = {q: httpx.get(f"{base}/api/search", params={"q": q, "k": 6, "mode": "model"},
                              timeout=60).json() for q in QUERIES}  # fmt: skip
        before = app.state.searcher.retriever.batcher.batches
        many = QUERIES * 5

        def ask(query: str) -> tuple[str, int, dict]:
            reply = httpx.get(f"{base}/api/search", params={"q": query, "k": 6, "mode": "model"},
                              timeout=120)  # fmt: skip
            return query, reply.status_code, reply.json()

        with ThreadPoolExecutor(len(many)) as pool:
            replies = list(pool.map(ask, many))
        batches = app.state.searcher.retriever.batcher.batches - before
    assert all(status == 200 for _, status, _ in replies)
    for query, _, body in replies:
        assert ranked(body) == ranked(alone[query]) and body["reranked"] == 4
        timings = body["timings"]
        assert {"encode", "first_stage", "second_stage", "total"} <= set(timings)
        assert timings["total"] >= timings["second_stage"] > 0
    assert batches < 2 * len(many)  # some requests shared a model call


def test_batched_store_matching_equals_one_query_at_a_time(matcher_index, monkeypatch):
    # the server's batch: every query's shortlist of store rows (overlapping, of several
    # sizes, a few per matcher call) against the plain path, one query and its clips alone
    index = VideoIndex.load(matcher_index["index"])
    retriever, key_dim = matcher_index["retriever"], index.matcher_info["key_dim"]
    rng = np.random.default_rng(0)
    requests = [(query, rng.choice(len(index.ids), size=int(rng.integers(3, 12)), replace=False))
                for query in QUERIES * 2]  # fmt: skip
    alone = [retriever.match_encoded([query], to_video(index.matcher[rows], key_dim),
                                     np.zeros(len(rows), np.int64), np.arange(len(rows)))
             for query, rows in requests]  # fmt: skip
    monkeypatch.setattr(matcher_store, "PAIRS_PER_CALL", 25)
    together = match_rows(retriever, index.matcher, key_dim, requests)
    assert [len(scores) for scores in together] == [len(rows) for _, rows in requests]
    for batched, single in zip(together, alone, strict=True):
        np.testing.assert_allclose(batched, single, atol=1e-5)


def test_the_server_picks_up_an_add_and_a_remove(matcher_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    ids = VideoIndex.load(index_dir).live_ids()
    remove_from_index(index_dir, ids[:5])
    app = create_app(index_dir, retriever=matcher_index["retriever"])
    with running_server(app) as base:
        health = httpx.get(f"{base}/api/health").json()
        assert health["videos"] == len(ids) - 5 and health["version"] == 1
        add_to_index(index_dir, ids[:5], matcher_index["retriever"])
        health = httpx.get(f"{base}/api/health").json()
        assert health["videos"] == len(ids) and health["version"] == 2
        remove_from_index(index_dir, [ids[10]])
        body = httpx.get(f"{base}/api/search", params={"q": QUERIES[0], "k": 50}).json()
        assert body["version"] == 3 and ids[10] not in [h["video_id"] for h in body["hits"]]
        assert len(body["hits"]) == len(ids) - 1


def test_a_failing_batch_fails_each_of_its_requests():
    def handler(items: list[int]) -> list[int]:
        if 3 in items:
            raise ValueError("bad item")
        return [2 * item for item in items]

    batcher = MicroBatcher({"double": handler})
    assert batcher.submit("double", 4) == 8
    with pytest.raises(ValueError, match="bad item"):
        batcher.submit("double", 3)
    with ThreadPoolExecutor(8) as pool:
        assert list(pool.map(lambda i: batcher.submit("double", i), range(4, 12))) == [
            2 * i for i in range(4, 12)]
    assert batcher.batches >= 3


def test_a_server_keeps_numpy_blas_on_one_thread(matcher_index):
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads() -> list[int]:
        return [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    assert before  # numpy's OpenBLAS at least
    try:
        create_app(matcher_index["index"], retriever=matcher_index["retriever"])
        assert blas_threads() == [1] * len(before)  # request threads' products do not spin
    finally:
        threadpool_limits(limits=max(before), user_api="blas")
    assert blas_threads() == before
