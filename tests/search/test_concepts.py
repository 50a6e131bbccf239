"""Zero-example concept search: class names, matching, pooling, the index, and real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from search_helpers import PHOTOS, photo_index_setup

from mcsan.core.errors import CheckpointError, SearchError
from mcsan.search import VideoIndex
from mcsan.search.concept_index import CONCEPTS_NAME, ConceptScores, pool_probabilities
from mcsan.search.concepts import ConceptBank, content_words, default_bank, load_classes
from mcsan.search.searcher import Searcher


@pytest.fixture(scope="module")
def photo_setup(tmp_path_factory):
    base = tmp_path_factory.getbasetemp() / "photo_setup"
    base.mkdir(exist_ok=True)
    return photo_index_setup(base)


@pytest.fixture(scope="module")
def bank() -> ConceptBank:
    return default_bank()


def test_class_names_ship_in_classifier_order():
    classes = load_classes()
    assert len(classes) == 1000
    assert classes[0].names[0] == "tench" and classes[207].label == "golden retriever"
    assert classes[281].names == ("tabby", "tabby cat") and classes[967].label == "espresso"


def test_logits_stream_is_the_pretrained_classifier():
    import skimage.data

    from mcsan.data.video.backbone import EfficientNetLiteEncoder
    from mcsan.data.video.decode import fit_square

    frames = np.stack([fit_square(skimage.data.chelsea(), 224),
                       fit_square(skimage.data.coffee(), 224)])
    encoder = EfficientNetLiteEncoder(streams="logits,head")
    out = encoder.encode(frames)
    assert out["logits"].shape == (2, 1000) and out["head"].shape == (2, 1280)
    probs = np.exp(out["logits"] - out["logits"].max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    np.testing.assert_allclose(probs, encoder.classify(frames), atol=1e-4)
    assert load_classes()[int(probs[0].argmax())].label in ("Egyptian cat", "tiger cat", "tabby")
    assert load_classes()[int(probs[1].argmax())].label == "espresso"


def test_content_words_drop_function_words():
    assert content_words("A video of a dog on the beach, dogs!") == ["dog", "beach", "dogs"]
    assert content_words("the of and") == []


@pytest.mark.parametrize(("query", "word", "label", "how"), [
    ("golden retriever", "golden retriever", "golden retriever", "phrase"),
    ("a cup", "cup", "cup", "name"),
    ("two cats", "cats", "tiger cat", "head"),
    ("a dog", "dog", "golden retriever", "hypernym"),
    ("a rocket", "rocket", "missile", "hypernym"),
    ("a motorbike", "motorbike", "moped", "hypernym"),
    ("a kayak", "kayak", "canoe", "curated"),
])
def test_query_words_match_class_names(bank, query, word, label, how):
    matched = bank.match(query)
    found = [m for m in matched.matches if m.name == label]
    assert found and found[0].word == word and found[0].how == how
    assert matched.unmatched == ()
    assert np.all(np.diff(matched.weights) <= 0) and matched.weights[0] <= 1.0


def test_string_match_beats_vectors_and_abstract_words_match_nothing(bank):
    cat = bank.match("a cat")
    assert {m.how for m in cat.matches} <= {"head", "hypernym"}  # no dog via cos(cat, dog)
    assert not any("retriever" in m.name for m in cat.matches)
    nothing = bank.match("freedom and justice")
    assert nothing.empty and nothing.unmatched == ("freedom", "justice")


def test_pooling_is_the_mean_of_the_top_three_frames():
    logits = np.log(np.array([[0.7, 0.3], [0.1, 0.9], [0.5, 0.5], [0.2, 0.8]], np.float32))
    expected = [(0.7 + 0.5 + 0.2) / 3, (0.9 + 0.8 + 0.5) / 3]
    np.testing.assert_allclose(pool_probabilities(logits), expected,
                               atol=1e-6)
    np.testing.assert_allclose(pool_probabilities(logits[:1]), [0.7, 0.3], atol=1e-6)
    with pytest.raises(SearchError):
        pool_probabilities(np.zeros((0, 2)))


def test_concept_top_k_is_the_exact_ranking(bank):
    rng = np.random.default_rng(0)
    logits = [rng.normal(size=(int(rng.integers(1, 6)), 1000)).astype(np.float32) * 3
              for _ in range(300)]
    scores = ConceptScores.from_clips(logits)
    query = bank.match("a dog and a cup")
    rows, top = scores.top(query, 7)
    full = np.array([query.weights @ pool_probabilities(x)[query.concepts] for x in logits])
    expected = np.lexsort((np.arange(300), -full.astype(np.float32)))[:7]
    assert rows.tolist() == expected.tolist()
    np.testing.assert_allclose(top, full[expected], rtol=1e-5, atol=1e-7)


def test_concept_only_index_roundtrip_and_damage(tmp_path, bank):
    logits = [np.eye(1000, dtype=np.float32)[[i, i]] * 20 for i in (281, 967, 657)]
    concepts = ConceptScores.from_clips(logits)
    index = VideoIndex.build({}, ["cat", "coffee", "rocket"], None, {}, None, concepts=concepts)
    assert not index.has_model
    index.save(tmp_path / "idx")
    loaded = VideoIndex.load(tmp_path / "idx")
    meta = json.loads((tmp_path / "idx" / "meta.json").read_text())
    assert meta["concepts"]["encoder"].startswith("efficientnet_lite0") and meta["levels"] == []
    searcher = Searcher(loaded, bank=bank)
    assert searcher.modes() == ["auto", "concepts"]
    assert [h.video_id for h in searcher.answer("espresso", 3).hits][0] == "coffee"
    with pytest.raises(SearchError, match="not available"):
        searcher.answer("a cat", 3, "model")
    with pytest.raises(SearchError, match="mode must be"):
        searcher.answer("a cat", 3, "fast")
    np.save(tmp_path / "idx" / CONCEPTS_NAME, np.zeros((1000, 2), np.float32))
    with pytest.raises(CheckpointError, match="rebuild"):
        VideoIndex.load(tmp_path / "idx")


def test_real_photo_clips_are_found_by_plain_descriptions(photo_setup, bank):
    searcher = Searcher(VideoIndex.load(photo_setup["index"]), bank=bank)
    firsts = {}
    for video_id, description in PHOTOS.items():
        answer = searcher.answer(description, 3, "concepts")
        assert answer.mode == "concepts" and answer.matched_concepts
        firsts[video_id] = answer.hits[0].video_id
        assert answer.hits[0].concepts and answer.hits[0].concept_score == answer.hits[0].score
    right = [vid for vid, first in firsts.items() if first == vid]
    assert len(right) >= 7, firsts


def test_query_matching_no_concept_says_so(photo_setup, bank):
    searcher = Searcher(VideoIndex.load(photo_setup["index"]), bank=bank)
    answer = searcher.answer("freedom and justice", 5)
    assert answer.hits == [] and answer.unmatched_words == ["freedom", "justice"]
    assert answer.warnings and "No concept matches" in answer.warnings[0]


def test_weak_evidence_is_flagged(photo_setup, bank):
    searcher = Searcher(VideoIndex.load(photo_setup["index"]), bank=bank)
    assert searcher.answer("a cat", 3).warnings == []
    weak = searcher.answer("a dog on a beach", 3)  # no dog among the photos
    assert weak.hits and weak.hits[0].concept_score < 0.05
    assert any(w.startswith("Weak evidence") for w in weak.warnings)
