"""The gold-file reader and the scorer (no parser needed)."""

from __future__ import annotations

import pytest

from mcsan.core.errors import DataError
from mcsan.data.captions.gold import GoldCaption, read_gold, score
from mcsan.data.captions.parse import ParsedCaption, Relation, Span


def record(relations, entities=(), actions=()):
    return ParsedCaption(
        caption="x",
        tokens=("x",),
        lemmas=("x",),
        entities=tuple(Span(e, 0, 1) for e in entities),
        actions=tuple(Span(a, 0, 1) for a in actions),
        relations=tuple(
            Relation(Span(s, 0, 1), Span(p, 0, 1), Span(o, 0, 1))
            for s, p, o in (key.split("|") for key in relations)
        ),
    )


def test_folded_preposition_counts_as_right_but_not_a_dropped_verb():
    gold = [GoldCaption("x", (), (), ("man|talk about|car", "dog|run in|park"))]
    folded = score([record(["talk|about|car", "dog|in|park"])], gold)
    assert folded["relation"]["f1"] == pytest.approx(0.5)
    assert folded["relation_strict"]["f1"] == 0.0
    exact = score([record(["man|talk about|car", "dog|run in|park"])], gold)
    assert exact["relation"]["f1"] == exact["relation_strict"]["f1"] == 1.0


def test_entities_and_actions_are_multisets():
    gold = [GoldCaption("x", ("man", "man", "dog"), ("walk",), ())]
    result = score([record([], ["man", "dog", "cat"], ["walk", "walk"])], gold)
    assert result["entity"]["precision"] == pytest.approx(2 / 3)
    assert result["entity"]["recall"] == pytest.approx(2 / 3)
    assert result["action"]["precision"] == pytest.approx(0.5)
    assert result["relation"]["f1"] == 1.0  # nothing to find, nothing found


def test_read_gold_and_bad_lines(tmp_path):
    path = tmp_path / "gold.txt"
    path.write_text("# comment\na man runs || man || run ||\na dog || dog || || dog|in\n")
    with pytest.raises(DataError, match=r"gold.txt:3"):
        read_gold(path)
    path.write_text("a man talks to a dog || man dog || talk || man|talk to|dog ; \n")
    (only,) = read_gold(path)
    assert only.relations == ("man|talk to|dog",)
    with pytest.raises(DataError, match="1 parsed captions for 0"):
        score([record([])], [])
