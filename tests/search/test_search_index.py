"""VideoIndex: fused ranking against a numpy reference, IVF, atomic save/load, validation."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from search_helpers import BACKENDS, NEEDS_QDRANT

from mcsan import LEVELS
from mcsan.core.errors import CheckpointError, OutputError, SearchError
from mcsan.search import VideoIndex
from mcsan.search.index import default_nlist, default_nprobe
from mcsan.search.query import MAX_K, MAX_QUERY_CHARS, validate_k, validate_query

SHA = "a" * 64


def unit_rows(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    """Random L2-normalised float32 rows."""
    array = rng.standard_normal((rows, dim)).astype(np.float32)
    return array / np.linalg.norm(array, axis=1, keepdims=True)


def level_embeddings(rng: np.random.Generator, rows: int, dim: int) -> dict[str, np.ndarray]:
    """One (rows, dim) unit-row array per level."""
    return {level: unit_rows(rng, rows, dim) for level in LEVELS}


def reference_scores(queries, videos, weights) -> np.ndarray:
    """The model's fused score sum_l w_l <q_l, v_l> computed directly in float64."""
    return sum(
        weights[lv] * queries[lv].astype(np.float64) @ videos[lv].astype(np.float64).T
        for lv in LEVELS
    )


WEIGHTS = {"global": 0.4, "entity": 0.25, "action": 0.2, "relation": 0.15}


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 60),
    dim=st.integers(1, 12),
    k=st.integers(1, 70),
    seed=st.integers(0, 2**16),
    weights=st.lists(
        st.floats(-2, 2, allow_nan=False).filter(lambda w: abs(w) > 1e-3), min_size=4, max_size=4
    ),
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_exact_index_ranks_by_the_fused_score(rows, dim, k, seed, weights, backend):
    rng = np.random.default_rng(seed)
    videos = level_embeddings(rng, rows, dim)
    queries = level_embeddings(rng, 3, dim)
    level_weights = dict(zip(LEVELS, weights, strict=True))
    index = VideoIndex.build(videos, [f"v{i}" for i in range(rows)], None, level_weights, SHA,
                             index_type=backend)  # fmt: skip
    reference = reference_scores(queries, videos, level_weights)
    for qi, result in enumerate(index.search_vectors(queries, k)):
        assert len(result.rows) == min(k, rows)
        assert len(set(result.rows.tolist())) == len(result.rows)
        # scores are the fused scores of those rows, non-increasing
        np.testing.assert_allclose(result.scores, reference[qi, result.rows], atol=1e-4)
        assert np.all(np.diff(result.scores) <= 1e-6)
        # no video outside the hits scores better than the last hit
        outside = np.setdiff1d(np.arange(rows), result.rows)
        if outside.size:
            assert reference[qi, outside].max() <= result.scores[-1] + 1e-4
        # the level contributions add up to the fused score
        total = sum(result.level_scores[lv] for lv in LEVELS)
        np.testing.assert_allclose(total, result.scores, atol=1e-5)


def clustered(rng: np.random.Generator, rows: int, dim: int, centres: int) -> dict:
    """Unit rows around a few centres per level (how real embeddings group)."""
    out = {}
    for level in LEVELS:
        middle = unit_rows(rng, centres, dim)
        noisy = middle[rng.integers(0, centres, rows)] + 0.35 * unit_rows(rng, rows, dim)
        out[level] = (noisy / np.linalg.norm(noisy, axis=1, keepdims=True)).astype(np.float32)
    return out


def test_approximate_index_finds_the_exact_neighbours():
    rng = np.random.default_rng(1)
    videos = clustered(rng, 3000, 16, 40)
    ids = [f"v{i}" for i in range(3000)]
    exact = VideoIndex.build(videos, ids, None, WEIGHTS, SHA)
    approx = VideoIndex.build(videos, ids, None, WEIGHTS, SHA, approx=True)
    assert approx.approx and approx.faiss_index.nlist == default_nlist(3000)
    assert approx.nprobe == default_nprobe(approx.faiss_index.nlist)
    queries = {lv: v[rng.choice(3000, 50, replace=False)] for lv, v in clustered(
        rng, 3000, 16, 40).items()}
    found = [set(r.rows.tolist()) for r in approx.search_vectors(queries, 10)]
    truth = [set(r.rows.tolist()) for r in exact.search_vectors(queries, 10)]
    recall = np.mean([len(f & t) / 10 for f, t in zip(found, truth, strict=True)])
    assert recall >= 0.9


def test_ivf_list_count_suits_tiny_and_large_collections():
    assert default_nlist(1) == 1
    assert default_nlist(100) == 2
    assert default_nlist(1_000_000) == 1000
    assert 1 <= default_nprobe(1) <= 1
    tiny = VideoIndex.build(
        level_embeddings(np.random.default_rng(0), 5, 4), list("abcde"), None, WEIGHTS, SHA,
        approx=True,
    )
    assert [len(r.rows) for r in tiny.search_vectors(level_embeddings(
        np.random.default_rng(1), 2, 4), 10)] == [5, 5]


def small_index(tmp_path=None, approx=False, backend=None) -> VideoIndex:
    rng = np.random.default_rng(7)
    return VideoIndex.build(
        level_embeddings(rng, 20, 8), [f"clip{i}" for i in range(20)],
        [f"clip{i}.mp4" for i in range(20)], WEIGHTS, SHA, media_root=tmp_path, approx=approx,
        extra={"checkpoint": "run/best.pt"}, index_type=backend,
    )


@pytest.mark.parametrize(("approx", "backend"), [
    (False, None), (True, None), pytest.param(False, "qdrant", marks=NEEDS_QDRANT)])
def test_save_load_round_trip(tmp_path, approx, backend):
    index = small_index(tmp_path, approx, backend)
    out = index.save(tmp_path / "index")
    loaded = VideoIndex.load(out)
    assert loaded.ids == index.ids and loaded.paths == index.paths
    assert loaded.weights == index.weights and loaded.levels == tuple(LEVELS)
    assert loaded.checkpoint_sha256 == SHA and loaded.approx == (approx or backend is not None)
    assert loaded.media_root == str(tmp_path.resolve())
    assert loaded.extra == {"checkpoint": "run/best.pt"}
    queries = level_embeddings(np.random.default_rng(3), 4, 8)
    for a, b in zip(index.search_vectors(queries, 5), loaded.search_vectors(queries, 5),
                    strict=True):
        assert a.rows.tolist() == b.rows.tolist()
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-6)


def test_save_replaces_atomically_and_keeps_foreign_files(tmp_path, monkeypatch):
    target = tmp_path / "index"
    small_index(tmp_path).save(target)
    (target / "features.h5").write_bytes(b"extraction cache")
    small_index(tmp_path, approx=True).save(target)
    assert (target / "features.h5").read_bytes() == b"extraction cache"
    assert VideoIndex.load(target).approx
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]  # no temp dirs left

    import faiss

    def broken_write(*_args, **_kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(faiss, "write_index", broken_write)
    with pytest.raises(OutputError, match=rf"{target}: cannot write \(disk full\)"):
        small_index(tmp_path).save(target)  # named by mcsan.core.io, not a bare OSError
    assert VideoIndex.load(target).approx  # the old index is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index"]


def test_damaged_index_is_refused_with_the_fix(tmp_path):
    with pytest.raises(CheckpointError, match="mcsan index"):
        VideoIndex.load(tmp_path / "nothing")
    target = small_index(tmp_path).save(tmp_path / "index")
    (target / "faiss.index").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="damaged"):
        VideoIndex.load(target)
    small_index(tmp_path).save(target)
    np.save(target / "emb_action.npy", np.zeros((3, 8), np.float32))
    with pytest.raises(CheckpointError, match="disagree"):
        VideoIndex.load(target)


def test_query_from_another_checkpoint_is_refused_naming_both():
    index = small_index()
    with pytest.raises(SearchError) as info:
        index.check_checkpoint("b" * 64)
    assert "aaaaaaaa" in str(info.value) and "bbbbbbbb" in str(info.value)
    index.check_checkpoint(SHA)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda e, ids: (e, ids + ["x"]), "expected"),
        (lambda e, ids: (e, ids[:-1] + ids[:1]), "twice"),
        (lambda e, ids: ({**e, "global": e["global"] * np.nan}, ids), "NaN"),
        (lambda e, ids: ({lv: v[:0] for lv, v in e.items()}, []), "zero videos"),
        (lambda e, ids: ({}, ids), "no levels"),
    ],
)
def test_build_rejects_bad_input(change, message):
    embeddings, ids = change(level_embeddings(np.random.default_rng(0), 4, 3), list("abcd"))
    with pytest.raises(SearchError, match=message):
        VideoIndex.build(embeddings, ids, None, WEIGHTS, SHA)


@pytest.mark.parametrize("bad", ["", "   \n\t", "x" * (MAX_QUERY_CHARS + 1), "a\x00b", "a\x1bb", 5])
def test_bad_queries_are_refused(bad):
    with pytest.raises(SearchError):
        validate_query(bad)


def test_good_queries_are_trimmed():
    assert validate_query("  a red ball\n") == "a red ball"
    assert validate_query("ünïcode ✓ query") == "ünïcode ✓ query"


@pytest.mark.parametrize(
    "bad", [0, -1, MAX_K + 1, 10**9, "10**9", "1.5", 2.0, "abc", "", True, None, "9" * 5000]
)
def test_bad_k_is_refused(bad):
    with pytest.raises(SearchError, match="k must"):
        validate_k(bad)


def test_good_k_is_accepted():
    assert validate_k(5) == 5 and validate_k("12") == 12 and validate_k(np.int64(3)) == 3
    assert validate_k(MAX_K) == MAX_K



def test_index_type_follows_the_collection_size_and_is_logged(caplog):
    import logging

    from mcsan.search.faiss_kinds import FLAT_BELOW, choose_kind, memory_bytes

    with caplog.at_level(logging.INFO, logger="mcsan.search.faiss_kinds"):
        assert choose_kind(FLAT_BELOW - 1, 1024) == "flat"
        assert choose_kind(FLAT_BELOW, 1024) == "ivf"
        assert choose_kind(memory_bytes() // 1024, 1024) == "ivfpq"  # vectors > half the RAM
        assert choose_kind(10, 1024, "ivfpq") == "ivfpq"
    assert sum("override with --index-type" in r.getMessage() for r in caplog.records) == 3
    with pytest.raises(SearchError, match="index type"):
        choose_kind(10, 8, "hnsw")


def test_ivfpq_index_refines_its_candidates_exactly(tmp_path):
    rng = np.random.default_rng(2)
    videos = clustered(rng, 12000, 64, 60)
    ids = [f"v{i}" for i in range(12000)]
    exact = VideoIndex.build(videos, ids, None, WEIGHTS, SHA)
    compressed = VideoIndex.build(videos, ids, None, WEIGHTS, SHA, index_type="ivfpq")
    assert compressed.kind == "ivf_pq"
    picked = rng.choice(12000, 40, replace=False)  # queries near the clips, as real ones are
    queries = {lv: v[picked] for lv, v in videos.items()}
    found = compressed.search_vectors(queries, 10)
    truth = exact.search_vectors(queries, 10)
    recall = np.mean([len(set(f.rows.tolist()) & set(t.rows.tolist())) / 10
                      for f, t in zip(found, truth, strict=True)])  # fmt: skip
    assert recall >= 0.9
    for f in found:  # the scores are the exact fused scores of the rows returned
        np.testing.assert_allclose(f.scores, sum(f.level_scores.values()), atol=1e-5)
    loaded = VideoIndex.load(compressed.save(tmp_path / "pq"))
    assert loaded.kind == "ivf_pq" and [r.rows.tolist() for r in loaded.search_vectors(
        queries, 10)] == [r.rows.tolist() for r in found]
