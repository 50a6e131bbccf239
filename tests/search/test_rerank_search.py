"""Search with a checkpoint that has a binding matcher: the shortlist is re-ranked."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from search_helpers import MATCHER_TOP_K as TOP_K
from search_helpers import strip_matcher_store

from mcsan.cli import main as cli_main
from mcsan.inference.retriever import Retriever
from mcsan.search import VideoIndex
from mcsan.search.searcher import Searcher
from mcsan.search.server import create_app

QUERY = "a red ball is jumping"


def expected_order(retriever: Retriever, index: VideoIndex, root: Path, query: str, k: int):
    """Reference: fused top ``TOP_K`` re-ordered by fused + 2 * match, then the fused rest."""
    from mcsan.data.video.store import FeatureStore

    with FeatureStore.open(root / "features" / f"{retriever.feature_set}.h5") as store:
        clips = [store.read(video_id) for video_id in index.ids]
    fused = retriever.score(retriever.encode_captions([query]),
                            retriever.encode_features(clips))["fused"][0]  # fmt: skip
    by_fused = sorted(range(len(fused)), key=lambda row: (-fused[row], row))
    short = by_fused[:TOP_K]
    match = retriever.match_pairs([query], [clips[r] for r in short], np.zeros(TOP_K, int),
                                  np.arange(TOP_K))  # fmt: skip
    final = {row: fused[row] + 2.0 * m for row, m in zip(short, match, strict=True)}
    order = sorted(short, key=lambda row: (-final[row], row)) + by_fused[TOP_K:]
    return [index.ids[row] for row in order[:k]], dict(zip(short, match, strict=True))


def test_model_search_reranks_the_shortlist_with_the_matcher(matcher_index):
    retriever, root = matcher_index["retriever"], matcher_index["root"]
    index = VideoIndex.load(matcher_index["index"])
    searcher = Searcher(index, retriever)
    assert searcher.reranker is not None and searcher.reranker.top_k == TOP_K
    answer = searcher.answer(QUERY, k=6, mode="model")
    ids, match = expected_order(retriever, index, root, QUERY, 6)
    assert [h.video_id for h in answer.hits] == ids
    assert answer.reranked == TOP_K and not answer.warnings
    for hit in answer.hits:
        row = index.row_of(hit.video_id)
        if row in match:
            # the index's matcher store is float16 (mcsan.search.matcher_store)
            assert hit.match_score == pytest.approx(float(match[row]), abs=2e-3)
        else:
            assert hit.match_score is None
    scores = [h.score for h in answer.hits]
    assert scores == sorted(scores, reverse=True) and answer.ranked_by == "fused + 2 x match"
    floor = min(h.match_score for h in answer.hits if h.match_score is not None)
    for hit in answer.hits:  # ordered by fused + 2 x match (the shortlist's lowest outside)
        bonus = floor if hit.match_score is None else hit.match_score
        assert hit.score == pytest.approx(hit.fused_score + 2.0 * bonus, abs=1e-5)
    plain = searcher.answer(QUERY, k=6, mode="model", rerank=False)
    assert plain.reranked == 0 and all(h.match_score is None for h in plain.hits)
    fused = index.search_vectors({lv: v for lv, v in retriever.encode_captions([QUERY]).items()
                                  if lv in index.levels}, 6)[0]  # fmt: skip
    assert [h.video_id for h in plain.hits] == [index.ids[r] for r in fused.rows]
    assert [h.video_id for h in plain.hits] != ids  # the matcher moved something (seeded run)


def test_a_missing_feature_file_falls_back_to_fused_with_a_warning(matcher_index, tmp_path):
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    strip_matcher_store(index_dir)  # the fallback: re-rank from the feature file
    index = VideoIndex.load(index_dir)
    index.extra["feature_file"] = str(tmp_path / "gone.h5")
    searcher = Searcher(index, matcher_index["retriever"])
    answer = searcher.answer(QUERY, k=3, mode="model")
    assert answer.reranked == 0 and all(h.match_score is None for h in answer.hits)
    assert any("gone.h5" in w and "fused score alone" in w for w in answer.warnings)


def test_the_recorded_feature_file_wins_and_must_hold_every_clip(matcher_index, tmp_path):
    from mcsan.data.video.store import FeatureStore

    retriever = matcher_index["retriever"]
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    strip_matcher_store(index_dir)  # the fallback: re-rank from the feature file
    (index_dir / "features.h5").write_bytes(b"a stale cache from an earlier build")
    assert Searcher(VideoIndex.load(index_dir), retriever).reranker is not None
    # a recorded store that lacks clips: fused alone, the warning names one
    partial = tmp_path / "partial.h5"
    recorded = VideoIndex.load(index_dir).extra["feature_file"]
    with FeatureStore.open(recorded) as full, FeatureStore.create(partial, full.spec) as store:
        first = full.ids()[0]
        store.write(first, full.read(first))
    index = VideoIndex.load(index_dir)
    index.extra["feature_file"] = str(partial)
    searcher = Searcher(index, retriever)
    answer = searcher.answer(QUERY, k=3, mode="model")
    assert answer.reranked == 0 and any("lacks" in w and "clips" in w for w in answer.warnings)


def test_features_gone_after_startup_fall_back_per_query(matcher_index, tmp_path):
    root = tmp_path / "copy"
    shutil.copytree(matcher_index["root"], root)
    index_dir = tmp_path / "index"
    shutil.copytree(matcher_index["index"], index_dir)
    strip_matcher_store(index_dir)  # the fallback: re-rank from the feature file
    index = VideoIndex.load(index_dir)
    store = root / "features" / f"{matcher_index['retriever'].feature_set}.h5"
    index.extra["feature_file"] = str(store)
    searcher = Searcher(index, matcher_index["retriever"])
    assert searcher.reranker is not None
    store.unlink()
    answer = searcher.answer(QUERY, k=3, mode="model")
    assert len(answer.hits) == 3 and answer.reranked == 0
    assert any("could not read" in w for w in answer.warnings)


def test_api_and_cli_report_the_reranking(matcher_index, capsys):
    app = create_app(matcher_index["index"], retriever=matcher_index["retriever"])
    with TestClient(app) as client:
        body = client.get("/api/search", params={"q": QUERY, "k": 5, "mode": "model"}).json()
        settings = {"top_k": TOP_K, "weight": 2.0, "shortlist": TOP_K}
        assert body["reranked"] == TOP_K and body["rerank"] == settings
        assert sum(h["match_score"] is not None for h in body["hits"]) == TOP_K
        off = client.get("/api/search", params={"q": QUERY, "k": 5, "rerank": "0"}).json()
        assert off["reranked"] == 0
        bad = client.get("/api/search", params={"q": QUERY, "rerank": "maybe"})
        assert bad.status_code == 400 and "rerank must be" in bad.json()["error"]
        assert client.get("/api/health").json()["rerank"] == settings
    code = cli_main(["search", "--index", str(matcher_index["index"]), QUERY, "-k", "5",
                     "--mode", "model"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0 and f"the top {TOP_K} by fused score re-scored as fused + 2 x match" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("rank"))
    assert header.split()[-2:] == ["video", "[concepts]"] and "match" in header.split()


def test_auto_mode_mixes_concepts_with_the_reranked_model_score(matcher_index):
    """Concepts join the re-ranked model score only for the words the model does not know,
    and only with evidence; every hit's score is the mix it is ordered by."""
    from mcsan.search.concept_index import ConceptScores
    from mcsan.search.concepts import default_bank, load_classes

    retriever, root = matcher_index["retriever"], matcher_index["root"]
    index = VideoIndex.load(matcher_index["index"])
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(len(load_classes())), size=len(index)).T.astype(np.float32)
    index.concepts = ConceptScores(probs)
    searcher = Searcher(index, retriever, default_bank())
    known = searcher.answer(QUERY, k=5, mode="auto")  # every word known: the model alone
    assert known.mode == "model" and "knows every word" in known.mode_reason
    assert [h.video_id for h in known.hits] == [
        h.video_id for h in searcher.answer(QUERY, k=5, mode="model").hits]
    weak = searcher.answer(QUERY + " near a cat", k=5, mode="auto")  # cat: no evidence
    assert weak.mode == "model" and "no evidence" in weak.mode_reason
    probs[281, 3] = 0.9  # one clip shows a tabby cat
    query = QUERY + " near a cat"
    answer = searcher.answer(query, k=len(index), mode="auto")
    assert answer.mode == "auto" and answer.model_weight == 0.75  # red, ball, jumping; cat
    assert answer.reranked == TOP_K  # the fused top 4 of the candidates (here: every clip)
    assert answer.ranked_by.startswith("0.75 x model (fused + 2 x match)")
    from mcsan.data.video.store import FeatureStore

    with FeatureStore.open(root / "features" / f"{retriever.feature_set}.h5") as store:
        clips = [store.read(video_id) for video_id in index.ids]
    rows = np.arange(len(index))
    fused = retriever.score(retriever.encode_captions([query]),
                            retriever.encode_features(clips))["fused"][0]  # fmt: skip
    match = retriever.match_pairs([query], clips, np.zeros_like(rows), rows)
    short = sorted(rows, key=lambda row: (-fused[row], row))[:TOP_K]
    floor = match[short].min()  # the unmeasured clips get the shortlist's lowest match
    model = fused + 2.0 * np.where(np.isin(rows, short), match, floor)
    concept = index.concepts.scores(searcher.bank.match("cat"), rows)

    def scaled(values):
        return (values - values.min()) / (values.max() - values.min())

    mixed = answer.model_weight * scaled(model) + (1 - answer.model_weight) * scaled(concept)
    for hit in answer.hits:  # match from the float16 store: within its stated error
        row = index.row_of(hit.video_id)
        assert hit.score == pytest.approx(mixed[row], abs=2e-3)
        assert hit.fused_score == pytest.approx(fused[row], abs=1e-4)
    assert [h.score for h in answer.hits] == sorted((h.score for h in answer.hits), reverse=True)


def test_default_mode_answers_at_least_as_well_as_the_model(matcher_index):
    """On the model's own captions, with concept scores that light up the words' ImageNet
    namesakes (soccer ball, red wine) in some clips, `auto` (the default) is never worse."""
    from mcsan.data.native import read_captions
    from mcsan.search.concept_index import ConceptScores
    from mcsan.search.concepts import default_bank, load_classes

    index = VideoIndex.load(matcher_index["index"])
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.ones(len(load_classes())), size=len(index)).T.astype(np.float32)
    bank = default_bank()
    for word in ("ball", "red", "cube"):  # clear "evidence" for the words' namesakes
        for concept in bank.match(word).concepts[:3]:
            probs[concept, rng.choice(len(index), 3, replace=False)] = 0.9
    index.concepts = ConceptScores(probs)
    searcher = Searcher(index, matcher_index["retriever"], bank)
    records = [r for r in read_captions(matcher_index["root"]) if r.video_id in index.ids][:24]
    hits = {"auto": 0, "model": 0}
    for record in records:
        for mode in hits:
            answer = searcher.answer(record.caption, 1, mode)
            hits[mode] += answer.hits[0].video_id == record.video_id
            if mode == "auto":
                assert answer.mode == "model" and answer.mode_reason.startswith("ranked by the model")
    assert hits["auto"] >= hits["model"]
