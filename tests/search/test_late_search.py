"""The first stage with late interaction in search: it ranks as evaluation's first stage
does (fused + late_weight x the matcher's entity and action terms), its candidates from
the clips' slots find what exact scoring finds, removed clips stay out, slots are cached."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

import mcsan.search.late as late_module
import mcsan.search.searcher as searcher_module
from mcsan.evaluate.first_stage import late_scores
from mcsan.evaluate.reranked import encode_match_text
from mcsan.search import VideoIndex
from mcsan.search.grow import remove_from_index
from mcsan.search.late import SLOT_FILE, clip_slots
from mcsan.search.matcher_store import to_video
from mcsan.search.searcher import Searcher

QUERIES = ("a red ball is jumping", "a blue cube left of a green ball", "a green ball moves right")


def _late_retriever(matcher_index, weight: float = 0.0):
    retriever = matcher_index["retriever"]
    return retriever.with_shortlist(retriever.shortlist.replaced(weight=weight, late_weight=2.0))


def _expected_first(retriever, index: VideoIndex, query: str) -> tuple[np.ndarray, np.ndarray]:
    """(fused, late) of ``query`` against every row, computed as evaluation does."""
    from mcsan.data.loading.collate import encode_caption

    encoded = retriever.encode_captions([query])
    rows = np.arange(len(index.ids))
    levels = index.contributions({lv: encoded[lv][0] for lv in index.levels}, rows)
    fused = np.sum([levels[lv] for lv in index.levels], axis=0)
    caption = encode_caption(retriever._parse([query])[0], retriever.vocab,
                             retriever.config.data.max_words)  # fmt: skip
    text = encode_match_text(retriever.model, [caption])
    video = to_video(index.matcher[rows], index.matcher_info["key_dim"])
    return fused, late_scores(retriever.model, text, video)[0]


def test_search_ranks_by_the_first_stage_of_evaluation(matcher_index):
    index = VideoIndex.load(matcher_index["index"])
    retriever = _late_retriever(matcher_index)  # re-ranking weight 0: fused + 0 x match
    searcher = Searcher(index, retriever)
    assert searcher.late is not None and searcher.late.exact
    top = searcher.reranker.top_k
    for query in QUERIES:
        answer = searcher.answer(query, k=len(index), mode="model")
        fused, late = _expected_first(retriever, index, query)
        first = np.argsort(-(fused + 2.0 * late), kind="stable")
        # the first stage's top K re-ordered by fused (+ 0 x match), the rest in its order
        shortlist = first[:top][np.argsort(-fused[first[:top]], kind="stable")]
        assert [index.row_of(h.video_id) for h in answer.hits] == [*shortlist, *first[top:]]
        shown = [h.score for h in answer.hits]
        assert shown == sorted(shown, reverse=True)
        for hit in answer.hits:
            row = index.row_of(hit.video_id)
            assert hit.late_score == pytest.approx(late[row], abs=1e-5)
            assert hit.fused_score == pytest.approx(fused[row], abs=1e-5)
        assert "by fused + 2 x late" in answer.ranked_by and answer.timings["late"] > 0
    plain = Searcher(index, matcher_index["retriever"]).answer(QUERIES[0], k=5, mode="model")
    assert all(h.late_score is None for h in plain.hits) and "late" not in plain.ranked_by


def test_candidates_from_slots_find_what_exact_scoring_finds(matcher_index, tmp_path,
                                                             monkeypatch):  # fmt: skip
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    retriever = _late_retriever(matcher_index, weight=2.0)
    exact = Searcher(VideoIndex.load(index_dir), retriever)
    answers = {q: exact.answer(q, k=10, mode="model") for q in QUERIES}
    monkeypatch.setattr(late_module, "EXACT_CLIPS", 0)
    index = VideoIndex.load(index_dir)
    monkeypatch.setattr(searcher_module, "SLOT_CANDIDATES", len(index))
    every = Searcher(index, retriever)
    assert not every.late.exact
    for query, answer in answers.items():
        got = every.answer(query, k=10, mode="model")
        assert [h.video_id for h in got.hits] == [h.video_id for h in answer.hits]
    assert (index_dir / SLOT_FILE).is_file()  # cached beside the store, then reused
    monkeypatch.setattr(late_module, "clip_slots", _must_not_run)
    monkeypatch.setattr(searcher_module, "SLOT_CANDIDATES", 3)
    few = Searcher(VideoIndex.load(index_dir), retriever)
    for query, answer in answers.items():  # fewer candidates: each hit keeps its exact score
        scores = {h.video_id: h.late_score for h in answer.hits}
        for hit in few.answer(query, k=10, mode="model").hits:
            if hit.video_id in scores:
                assert hit.late_score == pytest.approx(scores[hit.video_id], abs=1e-6)


def _must_not_run(*args, **kwargs):
    raise AssertionError("the slots should come from the cache")


def test_removed_clips_are_never_candidates(matcher_index, tmp_path, monkeypatch):
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    retriever = _late_retriever(matcher_index)
    before = Searcher(VideoIndex.load(index_dir), retriever).answer(QUERIES[1], k=3, mode="model")
    gone = [before.hits[0].video_id]
    remove_from_index(index_dir, gone)
    monkeypatch.setattr(late_module, "EXACT_CLIPS", 0)
    index = VideoIndex.load(index_dir)
    searcher = Searcher(index, retriever)
    rows = searcher.late.candidates(np.ones((1, index.matcher_info["key_dim"]), np.float32),
                                    np.zeros(0, np.int64), len(index.ids))  # fmt: skip
    assert len(rows) == len(index) and np.all(index.live_mask()[rows])
    after = searcher.answer(QUERIES[1], k=len(index), mode="model")
    assert gone[0] not in {h.video_id for h in after.hits}


def test_slots_cover_each_distinct_cell_key():
    torch.manual_seed(0)
    keys = torch.nn.functional.normalize(torch.randn(3, 8), dim=-1)  # object, object, ground
    cells = keys[2].repeat(4, 4, 1)  # (T, G, d)
    for frame in range(4):
        cells[frame, frame] = keys[0]  # one object moving across the cells
        cells[frame, 3] = keys[1]
    rows = torch.cat([cells, torch.zeros(4, 4, 2)], -1).numpy().astype(np.float16)
    rows = np.concatenate([rows, np.zeros_like(rows[:2])])[None]  # two padding frames
    slots = clip_slots(rows, key_dim=8, slots=4)
    assert slots.shape == (1, 4, 8) and np.isfinite(slots).all()
    best = (slots[0] @ keys.numpy().T).max(0)
    assert np.allclose(best, 1.0, atol=2e-3)  # every distinct key has its own slot


def test_slots_after_an_add_are_computed_for_the_new_clips_only(matcher_index, tmp_path,
                                                                 monkeypatch):  # fmt: skip
    from test_grow import build

    from mcsan.search.grow import add_to_index

    retriever = _late_retriever(matcher_index)
    ids = VideoIndex.load(matcher_index["index"]).live_ids()
    grown = tmp_path / "grown"
    build(matcher_index, ids[:30], grown)
    first = Searcher(VideoIndex.load(grown), retriever).late.slots().copy()
    add_to_index(grown, ids[30:], retriever)
    computed = []
    real = late_module.clip_slots
    monkeypatch.setattr(late_module, "clip_slots",
                        lambda rows, *a, **k: computed.append(len(rows)) or real(rows, *a, **k))
    after = Searcher(VideoIndex.load(grown), retriever).late.slots()
    assert sum(computed) == len(ids) - 30  # the build's 30 clips came from the cache
    assert np.array_equal(after[: len(first)], first)
    fresh = tmp_path / "fresh"
    build(matcher_index, ids, fresh)  # the same clips built at once: the same slots
    assert np.allclose(Searcher(VideoIndex.load(fresh), retriever).late.slots(), after,
                       atol=1e-3)  # fmt: skip
    shutil.copy(grown / SLOT_FILE, fresh / SLOT_FILE)  # another index's cache is not used
    shutil.copy(grown / (SLOT_FILE + ".json"), fresh / (SLOT_FILE + ".json"))
    computed.clear()
    Searcher(VideoIndex.load(fresh), retriever).late.slots()
    assert sum(computed) == len(ids)


@pytest.mark.parametrize("exact", [True, False])
def test_a_serving_batch_ranks_as_one_query(matcher_index, monkeypatch, exact):
    from concurrent.futures import ThreadPoolExecutor

    from mcsan.search.batching import BatchedEncoder

    if not exact:  # slot candidates, batched phrase queries
        monkeypatch.setattr(late_module, "EXACT_CLIPS", 0)
    index = VideoIndex.load(matcher_index["index"])
    retriever = _late_retriever(matcher_index, weight=2.0)
    alone = Searcher(index, retriever)
    encoder = BatchedEncoder(retriever)
    served = Searcher(index, encoder)
    assert served.late is not None and served.late.exact == exact
    with ThreadPoolExecutor(len(QUERIES)) as pool:  # concurrent: one dense pass for several
        answers = list(pool.map(lambda q: served.answer(q, k=8, mode="model"), QUERIES))
    for query, b in zip(QUERIES, answers, strict=True):
        a = alone.answer(query, k=8, mode="model")
        assert [h.video_id for h in a.hits] == [h.video_id for h in b.hits]
        assert [h.late_score for h in a.hits] == pytest.approx([h.late_score for h in b.hits],
                                                               abs=1e-6)  # fmt: skip


def test_late_terms_that_are_the_whole_matcher_are_reused_by_the_second_stage(matcher_index):
    index = VideoIndex.load(matcher_index["index"])
    retriever = matcher_index["retriever"]
    terms = retriever.match_terms
    retriever = retriever.with_shortlist(retriever.shortlist.replaced(
        weight=1.5, late_weight=2.0, late_terms=terms))  # fmt: skip
    searcher = Searcher(index, retriever)
    assert searcher.late is not None and searcher.late.is_match
    reused = [searcher.answer(q, k=len(index), mode="model") for q in QUERIES]
    searcher.late.is_match = False  # the second stage scores its shortlist itself
    scored = [searcher.answer(q, k=len(index), mode="model") for q in QUERIES]
    for one, other in zip(reused, scored, strict=True):
        assert [h.video_id for h in one.hits] == [h.video_id for h in other.hits]
        matched = [h for h in one.hits if h.match_score is not None]
        assert matched and all(h.match_score == pytest.approx(h.late_score, abs=1e-6)
                               for h in matched)  # fmt: skip
        assert [h.match_score for h in matched] == pytest.approx(
            [h.match_score for h in other.hits if h.match_score is not None], abs=1e-5)


def test_waiting_late_passes_on_the_same_clips_run_as_one(matcher_index):
    from mcsan.search.batching import BatchedEncoder

    index = VideoIndex.load(matcher_index["index"])
    retriever = _late_retriever(matcher_index)
    clips = Searcher(index, retriever).late.every_clip()
    other = to_video(index.matcher[np.arange(3)], index.matcher_info["key_dim"])
    passes = []

    class Counted:  # the real retriever, its dense passes counted
        def __getattr__(self, name):
            return getattr(retriever, name)

        def late_every(self, captions, video):
            passes.append((len(captions), video is clips))
            return retriever.late_every(captions, video)

    encoder = BatchedEncoder(Counted())
    requests = [([QUERIES[0]], clips), ([QUERIES[1], QUERIES[2]], other), ([QUERIES[2]], clips)]
    served = encoder._every_many(requests)
    assert sorted(passes) == [(2, False), (2, True)]  # one pass per set of clips
    for (captions, video), got in zip(requests, served, strict=True):
        np.testing.assert_allclose(got, retriever.late_every(captions, video), atol=1e-6)
