"""The retrieval protocol: dense and chunked paths against a plainly written reference."""

from __future__ import annotations

import math
import random
import statistics

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mcsan.core.errors import EvaluationError
from mcsan.evaluate.split import (
    METRIC_KEYS,
    evaluate_levels,
    format_metrics_table,
    retrieval_metrics,
    retrieval_metrics_from_embeddings,
)

LEVEL_NAMES = ("global", "entity", "action", "relation")


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """Tiny products: a second thread only waits on the shared 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# ---------------------------------------------------------------- brute-force reference
def reference_ranks(scores: list[list[float]], caption_video: list[int]) -> tuple[list, list]:
    """Ranks by explicit counting: ties count against the model."""
    n_videos = len(scores[0])
    t2v = []
    for i, row in enumerate(scores):
        correct = row[caption_video[i]]
        rank = 1
        for j in range(n_videos):
            if j != caption_video[i] and row[j] >= correct:
                rank += 1
        t2v.append(rank)
    v2t = []
    for j in range(n_videos):
        best = max(scores[i][j] for i in range(len(scores)) if caption_video[i] == j)
        rank = 1
        for i in range(len(scores)):
            if caption_video[i] != j and scores[i][j] >= best:
                rank += 1
        v2t.append(rank)
    return t2v, v2t


def reference_metrics(scores: list[list[float]], caption_video: list[int]) -> dict[str, float]:
    """The 11 metrics from the brute-force ranks."""
    t2v, v2t = reference_ranks(scores, caption_video)
    metrics = {}
    for prefix, ranks in (("t2v", t2v), ("v2t", v2t)):
        for k in (1, 5, 10):
            metrics[f"{prefix}_r{k}"] = 100.0 * sum(1 for r in ranks if r <= k) / len(ranks)
        metrics[f"{prefix}_medr"] = float(statistics.median(ranks))
        metrics[f"{prefix}_mnr"] = float(statistics.mean(ranks))
    metrics["rsum"] = sum(metrics[f"{p}_r{k}"] for p in ("t2v", "v2t") for k in (1, 5, 10))
    return metrics


def assert_metrics_equal(got: dict[str, float], expected: dict[str, float]) -> None:
    assert list(got) == list(METRIC_KEYS)
    for key in METRIC_KEYS:
        assert abs(got[key] - expected[key]) <= 1e-9, (key, got[key], expected[key])


# ---------------------------------------------------------------- strategies
# Hypothesis draws the sizes of a case and a seed; the values come from that seed, which
# keeps thousands of cases cheap to generate.
def caption_layout(rng: np.random.Generator, n_videos: int, max_per_video: int) -> list[int]:
    """caption_video with 1..max_per_video captions per video, in shuffled order."""
    per_video = rng.integers(1, max_per_video + 1, n_videos)
    layout = np.repeat(np.arange(n_videos), per_video)
    rng.shuffle(layout)
    return layout.tolist()


@st.composite
def dense_cases(draw) -> tuple[np.ndarray, list[int]]:
    """Integer or coarse-float scores: many exact ties."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    caption_video = caption_layout(rng, draw(st.integers(1, 8)), draw(st.integers(1, 4)))
    shape = (len(caption_video), max(caption_video) + 1)
    if draw(st.booleans()):
        scores = rng.integers(-2, 3, shape).astype(np.float64)
    else:
        scores = rng.choice([0.0, 0.25, 1.5], shape)
    return scores, caption_video


@st.composite
def embedding_cases(draw):
    """Small-integer embeddings and exactly representable weights: exact, tie-rich scores."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32)))
    caption_video = caption_layout(rng, draw(st.integers(1, 8)), draw(st.integers(1, 4)))
    n_videos, n_captions = max(caption_video) + 1, len(caption_video)
    levels = rng.permutation(LEVEL_NAMES)[: draw(st.integers(1, 3))].tolist()
    text, video, weights = {}, {}, {}
    for level in levels:
        width = int(rng.integers(1, 4))
        text[level] = rng.integers(-2, 3, (n_captions, width)).tolist()
        video[level] = rng.integers(-2, 3, (n_videos, width)).tolist()
        weights[level] = float(rng.choice([1.0, 2.0, 0.5, -1.0, 0.0]))
    chunk_size = draw(st.one_of(st.none(), st.integers(1, n_captions + 2)))
    return text, video, weights, caption_video, chunk_size


def fused_reference_scores(text, video, weights, n_captions, n_videos) -> list[list[float]]:
    """sum_l w_l <t_l[i], v_l[j]>, written out; math.fsum rounds once, so ties stay exact."""
    scores = []
    for i in range(n_captions):
        row = []
        for j in range(n_videos):
            terms = []
            for level, weight in weights.items():
                for a, b in zip(text[level][i], video[level][j], strict=True):
                    terms.append(weight * float(a) * float(b))
            row.append(math.fsum(terms))
        scores.append(row)
    return scores


# ---------------------------------------------------------------- property tests
@settings(max_examples=1000, deadline=None)
@given(dense_cases())
def test_dense_path_matches_reference(case):
    scores, caption_video = case
    expected = reference_metrics(scores.tolist(), caption_video)
    assert_metrics_equal(retrieval_metrics(scores, np.array(caption_video)), expected)


@settings(max_examples=200, deadline=None)
@given(dense_cases())
def test_dense_path_accepts_torch_float32(case):
    scores, caption_video = case
    got = retrieval_metrics(torch.tensor(scores, dtype=torch.float32), torch.tensor(caption_video))
    assert_metrics_equal(got, reference_metrics(scores.tolist(), caption_video))


@settings(max_examples=1000, deadline=None)
@given(embedding_cases(), st.sampled_from(["numpy", "torch"]), st.sampled_from([10**9, 0, 2]))
def test_chunked_path_matches_reference(case, kind, band_budget):
    """band_budget 0 / 2 force the two-pass fallback (at once / midway)."""
    text, video, weights, caption_video, chunk_size = case
    n_captions, n_videos = len(caption_video), max(caption_video) + 1
    convert = (
        np.array if kind == "numpy" else (lambda rows: torch.tensor(rows, dtype=torch.float32))
    )
    got = retrieval_metrics_from_embeddings(
        {level: convert(rows) for level, rows in text.items()},
        {level: convert(rows) for level, rows in video.items()},
        weights,
        caption_video,
        chunk_size=chunk_size,
        band_budget=band_budget,
    )
    scores = fused_reference_scores(text, video, weights, n_captions, n_videos)
    expected = reference_metrics(scores, caption_video)
    assert_metrics_equal(got, expected)
    assert_metrics_equal(retrieval_metrics(np.array(scores), caption_video), expected)


# ---------------------------------------------------------------- hand-computed cases
def test_perfect_scores():
    got = retrieval_metrics([[0.9, 0.1], [0.2, 0.8]], [0, 1])
    assert got["t2v_r1"] == got["v2t_r1"] == 100.0
    assert got["t2v_medr"] == got["v2t_mnr"] == 1.0
    assert got["rsum"] == 600.0


def test_uneven_captions_and_ties_by_hand():
    scores = [[0.5, 0.6], [0.9, 0.1], [0.3, 0.3], [0.95, 0.2]]
    got = retrieval_metrics(scores, [0, 0, 0, 1])
    # t2v ranks 2, 1, 2 (tie counts against), 2; v2t: video 0 best 0.9 beaten by 0.95 ->
    # rank 2; video 1 best 0.2 beaten by 0.6 and 0.3 -> rank 3.
    expected = {
        "t2v_r1": 25.0, "t2v_r5": 100.0, "t2v_r10": 100.0, "t2v_medr": 2.0, "t2v_mnr": 1.75,
        "v2t_r1": 0.0, "v2t_r5": 100.0, "v2t_r10": 100.0, "v2t_medr": 2.5, "v2t_mnr": 2.5,
        "rsum": 425.0,
    }  # fmt: skip
    assert_metrics_equal(got, expected)


def test_constant_scores_give_chance_not_perfect():
    n_videos, per_video = 30, 2
    caption_video = [v for v in range(n_videos) for _ in range(per_video)]
    got = retrieval_metrics(np.ones((n_videos * per_video, n_videos)), caption_video)
    assert got["t2v_r1"] == got["t2v_r10"] == 0.0
    assert got["t2v_medr"] == n_videos
    assert got["v2t_r1"] == 0.0
    assert got["v2t_medr"] == 1 + n_videos * per_video - per_video
    constant = retrieval_metrics_from_embeddings(
        {"global": np.ones((60, 4))}, {"global": np.ones((30, 4))}, {"global": 1.0}, caption_video
    )
    assert_metrics_equal(constant, got)


def test_all_zero_weights_are_a_constant_scorer():
    caption_video = [0, 1, 2, 2]
    got = retrieval_metrics_from_embeddings(
        {"global": np.eye(4)}, {"global": np.eye(4)[:3]}, {"global": 0.0}, caption_video
    )
    assert_metrics_equal(got, retrieval_metrics(np.zeros((4, 3)), caption_video))


# ---------------------------------------------------------------- float embeddings
def random_unit_rows(generator: torch.Generator, n: int, width: int) -> torch.Tensor:
    rows = torch.randn(n, width, generator=generator)
    return rows / rows.norm(dim=1, keepdim=True)


def test_chunked_path_on_float_embeddings_with_exact_duplicates():
    """Identical rows must tie exactly, in one chunk and across chunks."""
    generator = torch.Generator().manual_seed(0)
    n_videos, width = 40, 16
    caption_video = [v for v in range(n_videos) for _ in range(1 + v % 3)]
    random.Random(0).shuffle(caption_video)
    text = {lv: random_unit_rows(generator, len(caption_video), width) for lv in LEVEL_NAMES}
    video = {lv: random_unit_rows(generator, n_videos, width) for lv in LEVEL_NAMES}
    for level in LEVEL_NAMES:
        video[level][1] = video[level][0]  # identical videos: every t2v of them ties
        # a caption of video 3 repeated as a caption of video 4: v2t ties across chunks
        own_3 = [i for i, v in enumerate(caption_video) if v == 3]
        own_4 = [i for i, v in enumerate(caption_video) if v == 4]
        text[level][own_4[-1]] = text[level][own_3[0]]
    weights = {"global": 1.0, "entity": 0.7, "action": 0.2, "relation": 0.1}
    for level in LEVEL_NAMES:
        video[level][3] = 0.0  # video 3 scores 0 with every caption
    as_lists = {lv: t.tolist() for lv, t in text.items()}
    exact = fused_reference_scores(
        as_lists, {lv: v.tolist() for lv, v in video.items()}, weights, len(caption_video), n_videos
    )
    expected = reference_metrics(exact, caption_video)
    for chunk_size in (None, 1, 7, 23, 64):
        got = retrieval_metrics_from_embeddings(text, video, weights, caption_video, chunk_size)
        assert_metrics_equal(got, expected)
    ranks_t2v, ranks_v2t = reference_ranks(exact, caption_video)
    assert min(r for r, v in zip(ranks_t2v, caption_video, strict=True) if v in (0, 1)) >= 2
    assert ranks_v2t[3] == len(caption_video) - caption_video.count(3) + 1
    assert ranks_v2t[4] >= 2  # its best caption ties with a caption of video 3


def test_evaluate_levels_and_table():
    generator = torch.Generator().manual_seed(1)
    caption_video = [v for v in range(12) for _ in range(3)]
    text = {lv: random_unit_rows(generator, 36, 8) for lv in ("global", "entity")}
    video = {lv: random_unit_rows(generator, 12, 8) for lv in ("global", "entity")}
    weights = {"global": 0.6, "entity": 0.4}
    results = evaluate_levels(text, video, weights, caption_video)
    assert list(results) == ["fused", "global", "entity"]
    assert_metrics_equal(
        results["entity"], retrieval_metrics(text["entity"] @ video["entity"].T, caption_video)
    )
    assert_metrics_equal(
        results["fused"],
        retrieval_metrics_from_embeddings(text, video, weights, caption_video, chunk_size=5),
    )
    as_float64 = {lv: t.double() for lv, t in text.items()}
    dense64 = sum(w * (as_float64[lv] @ video[lv].double().T) for lv, w in weights.items())
    assert_metrics_equal(
        retrieval_metrics_from_embeddings(
            as_float64, video, weights, caption_video, np.int64(7), dtype=torch.float64
        ),
        retrieval_metrics(dense64, caption_video),
    )
    table = format_metrics_table(results)
    lines = table.splitlines()
    assert lines[0].split() == ["name", *METRIC_KEYS]
    assert [line.split()[0] for line in lines[2:]] == ["fused", "global", "entity"]
    assert float(lines[2].split()[-1]) == pytest.approx(results["fused"]["rsum"], abs=0.05)


# ---------------------------------------------------------------- errors
def test_nan_scores_raise_with_count_and_place():
    scores = np.zeros((3, 2))
    scores[1, 0] = np.nan
    scores[2, 1] = np.inf
    with pytest.raises(EvaluationError, match=r"2 NaN or inf.*caption row 1, video column 0"):
        retrieval_metrics(scores, [0, 1, 1])


def test_nan_embeddings_raise():
    text = {"global": np.ones((3, 2)), "entity": np.ones((3, 2))}
    text["entity"][2, 1] = np.nan
    video = {"global": np.ones((2, 2)), "entity": np.ones((2, 2))}
    weights = {"global": 1.0, "entity": 1.0}
    with pytest.raises(EvaluationError, match=r"text_emb\['entity'\].*1 NaN or inf.*row 2, dim 1"):
        retrieval_metrics_from_embeddings(text, video, weights, [0, 1, 1])
    video["global"][1, 0] = -np.inf
    with pytest.raises(EvaluationError, match=r"video_emb\['global'\].*row 1"):
        retrieval_metrics_from_embeddings(text, video, weights, [0, 1, 1])


def test_video_without_caption_is_named():
    with pytest.raises(EvaluationError, match="video column 2 has no caption"):
        retrieval_metrics(np.zeros((3, 4)), [0, 1, 3])
    with pytest.raises(EvaluationError, match="video column 2 has no caption"):
        retrieval_metrics_from_embeddings(
            {"global": np.ones((3, 2))}, {"global": np.ones((4, 2))}, {"global": 1.0}, [0, 1, 3]
        )


@pytest.mark.parametrize(
    ("caption_video", "message"),
    [([0, 1, 5], r"caption_video\[2\] = 5"), ([0, -1, 1], r"caption_video\[1\] = -1"),
     ([0, 1], "shape"), ([0.5, 1, 1], "integer")],
)  # fmt: skip
def test_bad_caption_video(caption_video, message):
    with pytest.raises(EvaluationError, match=message):
        retrieval_metrics(np.zeros((3, 2)), caption_video)


def test_bad_embedding_inputs():
    with pytest.raises(EvaluationError, match="no video_emb entry"):
        retrieval_metrics_from_embeddings({"global": np.ones((2, 2))}, {}, {"global": 1.0}, [0, 0])
    with pytest.raises(EvaluationError, match="same width"):
        retrieval_metrics_from_embeddings(
            {"global": np.ones((2, 2))}, {"global": np.ones((1, 3))}, {"global": 1.0}, [0, 0]
        )
    with pytest.raises(EvaluationError, match="chunk_size"):
        retrieval_metrics_from_embeddings(
            {"global": np.ones((2, 2))}, {"global": np.ones((1, 2))}, {"global": 1.0}, [0, 0], 0
        )
    assert math.isfinite(
        retrieval_metrics_from_embeddings(
            {"global": np.ones((2, 2))}, {"global": np.ones((1, 2))}, {"global": 1.0}, [0, 0]
        )["rsum"]
    )
