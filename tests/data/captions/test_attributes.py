"""Attribute vocabularies, labels (caption and video) and imbalance statistics."""

from __future__ import annotations

import json

import pytest

from mcsan.core.errors import DataError
from mcsan.data.captions.attributes import AttributeVocabs, caption_items, label_statistics
from mcsan.data.captions.parse import ParsedCaption, Relation, Span


def caption(entities, actions=(), relations=()):
    """A ParsedCaption with the given lemmas (spans are irrelevant here)."""
    return ParsedCaption(
        caption=" ".join(entities),
        tokens=tuple(entities),
        lemmas=tuple(entities),
        entities=tuple(Span(e, 0, 1) for e in entities),
        actions=tuple(Span(a, 0, 1) for a in actions),
        relations=tuple(
            Relation(Span(s, 0, 1), Span(p, 0, 1), Span(o, 0, 1)) for s, p, o in relations
        ),
    )


CORPUS = [
    caption(["man", "guitar"], ["play"], [("man", "play", "guitar")]),
    caption(["man", "man", "dog"], ["walk"], [("man", "walk", "dog")]),
    caption(["woman", "dog"], ["walk"], [("woman", "walk", "dog")]),
    caption(["cat"]),
]


TRIPLETS_ONLY = ("triplet",)


def test_top_k_by_caption_frequency_ties_alphabetical():
    vocabs = AttributeVocabs.build(
        CORPUS, {"entity": 3, "action": 5, "relation": 2}, relation_forms=TRIPLETS_ONLY
    )
    assert vocabs.items("entity") == ("dog", "man", "cat")  # man counted once per caption
    assert vocabs.items("action") == ("walk", "play")
    assert vocabs.items("relation") == ("man|play|guitar", "man|walk|dog")
    assert vocabs.sizes == {"entity": 3, "action": 2, "relation": 2}


def test_labels_are_sorted_indices_and_video_labels_the_union():
    vocabs = AttributeVocabs.build(
        CORPUS, {"entity": 3, "action": 5, "relation": 2}, relation_forms=TRIPLETS_ONLY
    )
    assert vocabs.labels(CORPUS[2]) == {"entity": [0], "action": [0], "relation": []}
    assert vocabs.labels(CORPUS[0]) == {"entity": [1], "action": [1], "relation": [0]}
    video = vocabs.video_labels([CORPUS[0], CORPUS[1]])
    assert video == {"entity": [0, 1], "action": [0, 1], "relation": [0, 1]}


def test_save_load_sha(tmp_path):
    vocabs = AttributeVocabs.build(CORPUS, {"entity": 3, "action": 5, "relation": 2})
    vocabs.save(tmp_path / "attributes.json")
    loaded = AttributeVocabs.load(tmp_path / "attributes.json")
    assert loaded.sha256() == vocabs.sha256()
    assert loaded.items("relation") == vocabs.items("relation")
    with pytest.raises(DataError, match="unknown attribute level"):
        AttributeVocabs({"colour": ["red"]})
    with pytest.raises(DataError):
        AttributeVocabs.build(CORPUS, {"entity": 0})


def test_label_statistics_measure_the_imbalance():
    labels = [{"entity": [0, 1]}, {"entity": [0]}, {"entity": [0]}, {"entity": []}]
    stats = label_statistics(labels, {"entity": 4})["entity"]
    assert stats["samples"] == 4 and stats["labels_used"] == 2
    assert stats["positives_per_sample"] == pytest.approx(1.0)
    assert stats["empty_share"] == pytest.approx(0.25)
    assert stats["positive_rate"] == pytest.approx(0.25)
    assert (stats["label_frequency_min"], stats["label_frequency_max"]) == (0, 3)
    assert stats["rarest_half_share"] == 0.0  # the two rarest labels hold no positive
    assert label_statistics(labels, {"entity": 2})["entity"]["rarest_half_share"] == 0.25


def test_on_parsed_captions(caption_parser):
    parsed = caption_parser.parse(["a man plays guitar", "a man is walking a dog", "a dog runs"])
    vocabs = AttributeVocabs.build(parsed, {"entity": 10, "action": 10, "relation": 10})
    assert vocabs.items("entity")[:2] == ("dog", "man")
    assert "man|walk|dog" in vocabs.items("relation")


def test_factored_relation_labels_back_off_to_predicates():
    vocabs = AttributeVocabs.build(CORPUS, {"relation": 3})
    # "walk" relations in two captions: the predicate and the predicate+object forms lead
    assert vocabs.items("relation") == ("*|walk|*", "*|walk|dog", "*|play|*")
    assert vocabs.labels(CORPUS[2])["relation"] == [0, 1]
    assert vocabs.labels(CORPUS[0])["relation"] == [2]
    # an action that heads no triplet gives its intransitive predicate
    running = caption(["dog"], ["run"])
    assert caption_items(running)["relation"] == {"*|run|*"}
    assert caption_items(running, TRIPLETS_ONLY)["relation"] == set()
    assert caption_items(CORPUS[0])["relation"] == {
        "man|play|guitar",
        "*|play|guitar",
        "man|play|*",
        "*|play|*",
    }
    # a verb + preposition predicate also gives the preposition's forms
    running = caption(["dog", "park"], ["run"], [("dog", "run in", "park")])
    assert {"*|in|*", "*|in|park", "*|run in|*"} <= caption_items(running)["relation"]
    assert "*|run|*" not in caption_items(running)["relation"]  # the verb heads a triplet
    with pytest.raises(DataError, match="relation forms"):
        AttributeVocabs.build(CORPUS, relation_forms=("subject",))


def test_captions_are_labelled_with_the_forms_the_vocabulary_was_built_with(tmp_path):
    # "*|run|*" is in the vocabulary as a predicate; a caption where "run" heads no
    # triplet only gets it when the intransitive form is part of the design
    corpus = [caption(["dog", "park"], ["run"], [("dog", "run", "park")])]
    running = caption(["dog"], ["run"])
    narrow = AttributeVocabs.build(corpus, relation_forms=("triplet", "predicate"))
    assert "*|run|*" in narrow.items("relation")
    assert narrow.labels(running)["relation"] == []
    assert AttributeVocabs.build(corpus).labels(running)["relation"] != []
    narrow.save(tmp_path / "narrow.json")
    loaded = AttributeVocabs.load(tmp_path / "narrow.json")
    assert loaded.relation_forms == ("triplet", "predicate")
    assert loaded.labels(running)["relation"] == []
    default = AttributeVocabs.build(corpus)
    assert "relation_forms" not in default.to_json()  # default vocabularies keep their format
    assert AttributeVocabs.from_json(default.to_json()).labels(running) == default.labels(running)


def test_vocabulary_saved_before_the_factored_design_still_labels(tmp_path):
    path = tmp_path / "old.json"
    levels = {
        "entity": ["man"],
        "action": ["walk"],
        "relation": ["man|walk|dog", "man|play|guitar"],
    }
    path.write_text(json.dumps({"levels": levels}), encoding="utf-8")
    old = AttributeVocabs.load(path)
    assert old.labels(CORPUS[1]) == {"entity": [0], "action": [0], "relation": [0]}
    assert old.labels(CORPUS[2])["relation"] == []
    path.write_text(json.dumps({"relations": []}), encoding="utf-8")
    with pytest.raises(DataError, match="not an attribute vocabulary"):
        AttributeVocabs.load(path)
