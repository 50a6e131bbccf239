"""Honest search: the API names the checkpoint's dataset, the unknown words, the mode and the
matched concepts; auto mode leans on concepts for words the model never saw."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from search_helpers import photo_index_setup

from mcsan.inference.retriever import Retriever
from mcsan.search import VideoIndex
from mcsan.search.build import index_videos
from mcsan.search.concepts import default_bank
from mcsan.search.searcher import Searcher
from mcsan.search.server import create_app


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.getbasetemp() / "photo_setup"
    base.mkdir(exist_ok=True)
    return photo_index_setup(base)


@pytest.fixture(scope="module")
def model_client(setup):
    with TestClient(create_app(setup["index"])) as client:
        yield client


@pytest.fixture(scope="module")
def concept_client(photos):
    with TestClient(create_app(photos["index"], bank=default_bank())) as client:
        yield client


def test_api_names_the_dataset_and_the_unknown_words(model_client):
    health = model_client.get("/api/health").json()
    assert health["dataset"] == "tiny" and health["modes"] == ["auto", "model"]
    assert "'tiny'" in health["domain"] and health["concepts"] is None
    assert health["vocabulary_size"] > 0 and health["checkpoint"].endswith("best.pt")
    known = model_client.get("/api/search", params={"q": "a red square moves left"}).json()
    assert known["mode"] == "model" and known["unknown_words"] == [] and known["warnings"] == []
    assert known["dataset"] == "tiny" and len(known["hits"]) == 10
    unknown = model_client.get("/api/search", params={"q": "a dog on a beach"}).json()
    assert unknown["unknown_words"] == ["dog", "beach"] and unknown["dataset"] == "tiny"
    assert "knows none" in unknown["warnings"][0] and "'dog'" in unknown["warnings"][0]
    mostly = model_client.get("/api/search", params={"q": "a red dog on a beach"}).json()
    assert mostly["unknown_words"] == ["dog", "beach"] and "most" in mostly["warnings"][0]
    refused = model_client.get("/api/search", params={"q": "a cat", "mode": "concepts"})
    assert refused.status_code == 400 and "not available" in refused.json()["error"]


def test_api_of_a_concept_only_index(concept_client):
    health = concept_client.get("/api/health").json()
    assert health["modes"] == ["auto", "concepts"] and health["dataset"] is None
    assert "ImageNet" in health["domain"] and health["concepts"]["pooling"].startswith("top3")
    body = concept_client.get("/api/search", params={"q": "a cat", "k": "3"}).json()
    assert body["mode"] == "concepts" and body["levels"] == []
    assert body["hits"][0]["video_id"] == "chelsea" and body["hits"][0]["media_kind"] == "video"
    assert any("cat" in c["concept"] for c in body["hits"][0]["concepts"])
    assert {m["word"] for m in body["matched_concepts"]} == {"cat"}
    none = concept_client.get("/api/search", params={"q": "freedom and justice"}).json()
    assert none["hits"] == [] and "No concept matches" in none["warnings"][0]
    for params, status in (({"q": "a cat", "mode": "model"}, 400),
                           ({"q": "a cat", "mode": "fast"}, 400)):
        assert concept_client.get("/api/search", params=params).status_code == status


def test_auto_mode_leans_on_concepts_for_words_the_model_does_not_know(setup, photos, tmp_path):
    retriever = Retriever.from_checkpoint(setup["checkpoint"])
    (tmp_path / "both").mkdir()
    shutil.copy(photos["index"] / "concept_frames.h5", tmp_path / "both")  # reused, not re-extracted
    index_videos(retriever, photos["clips"], tmp_path / "both", checkpoint=setup["checkpoint"])
    searcher = Searcher(VideoIndex.load(tmp_path / "both"), retriever, default_bank())
    assert searcher.modes() == ["auto", "concepts", "model"]
    cat = searcher.answer("a cat", 3)
    assert cat.mode == "concepts" and cat.unknown_words == ["cat"]
    assert "ranked by concepts alone" in cat.warnings[0]
    assert cat.hits[0].video_id == "chelsea"
    mixed = searcher.answer("a red cat", 8)
    assert mixed.mode == "auto" and 0 < mixed.model_weight < 1
    assert mixed.hits[0].video_id == "chelsea" and mixed.unknown_words == ["cat"]
    assert set(mixed.hits[0].level_scores) == set(searcher.index.levels)
    assert mixed.hits[0].concept_score is not None and mixed.hits[0].concepts
    model = searcher.answer("a red square", 8, "model")
    assert model.mode == "model" and model.matched_concepts == []
    assert all(hit.concept_score is None for hit in model.hits)
