"""Binding negatives made from a caption's parse (roles, attributes, actions, predicates)."""

from __future__ import annotations

import torch

from mcsan.data.captions.vocab import Vocabulary
from mcsan.data.loading.collate import collate_text
from mcsan.train.negatives import NegativeMaker, SpanCaption, encoded_rows

WORDS = "a red ball is left of blue cube spinning while blinking and above".split()
VOCAB = Vocabulary.build([WORDS])
MAKER = NegativeMaker.for_vocabulary(("roles", "attributes", "actions"), VOCAB)


def caption(words: str, entities, actions=(), relations=()) -> SpanCaption:
    return SpanCaption(tuple(VOCAB.encode(words.split())), tuple(entities), tuple(actions),
                          tuple(relations))  # fmt: skip


def words(enc: SpanCaption) -> str:
    return " ".join(VOCAB.decode(enc.tokens))


def span_words(enc: SpanCaption, span) -> str:
    return " ".join(VOCAB.decode(enc.tokens[slice(*span)]))


RELATION = caption("a red ball is left of a blue cube", [(2, 3), (8, 9)],
                   relations=[((2, 3), (3, 6), (8, 9))])  # fmt: skip


def test_roles_swap_noun_phrases_and_the_triplet_follows_the_sentence() -> None:
    neg = MAKER.roles(RELATION)
    assert neg is not None and words(neg) == "a blue cube is left of a red ball"
    subject, predicate, obj = neg.relations[0]
    assert (span_words(neg, subject), span_words(neg, predicate), span_words(neg, obj)) == (
        "cube", "is left of", "ball")  # fmt: skip
    assert sorted(span_words(neg, e) for e in neg.entities) == ["ball", "cube"]


def test_attributes_exchange_modifiers_between_two_nouns() -> None:
    neg = MAKER.attributes(RELATION)
    assert neg is not None and words(neg) == "a blue ball is left of a red cube"
    assert [span_words(neg, e) for e in neg.entities] == ["ball", "cube"]
    assert MAKER.attributes(caption("a ball is left of a blue cube", [(1, 2), (7, 8)])) is None


def test_actions_exchange_two_different_actions() -> None:
    enc = caption("a red ball is spinning while a cube is blinking", [(2, 3), (7, 8)],
                  actions=[(4, 5), (9, 10)])  # fmt: skip
    neg = MAKER.actions(enc)
    assert neg is not None and words(neg) == "a red ball is blinking while a cube is spinning"
    assert MAKER.actions(caption("a ball is spinning", [(1, 2)], [(3, 4)])) is None


def test_batches_round_trip_and_name_their_source_rows() -> None:
    plain = caption("a red ball", [(2, 3)])
    batch = collate_text([plain.encoded(), RELATION.encoded()])
    assert encoded_rows(batch) == [plain, RELATION]
    negatives, rows = MAKER(batch)
    assert rows.tolist() == [1, 1]  # roles and attributes of the relation caption
    assert negatives.span_masks["relation"].tolist() == [[True], [True]]
    assert NegativeMaker(("roles",), [])(collate_text([plain.encoded()])) is None
    assert torch.equal(negatives.tokens[0, :9], torch.tensor(MAKER.roles(RELATION).tokens))


def test_predicates_take_another_predicate_and_shift_the_spans() -> None:
    neg = MAKER.predicates(RELATION, [VOCAB.encode("is left of".split()),
                                      VOCAB.encode("is above".split())])  # fmt: skip
    assert neg is not None and words(neg) == "a red ball is above a blue cube"
    subject, predicate, obj = neg.relations[0]
    assert (span_words(neg, subject), span_words(neg, predicate), span_words(neg, obj)) == (
        "ball", "is above", "cube")  # fmt: skip
    assert [span_words(neg, e) for e in neg.entities] == ["ball", "cube"]
    assert MAKER.predicates(RELATION, [VOCAB.encode("is left of".split())]) is None
    assert MAKER.predicates(caption("a red ball", [(2, 3)]), [(1,)]) is None


def test_a_batch_lends_its_predicates_to_each_other() -> None:
    above = caption("a blue cube is above a red ball", [(2, 3), (7, 8)],
                    relations=[((2, 3), (3, 5), (7, 8))])  # fmt: skip
    maker = NegativeMaker.for_vocabulary(("predicates",), VOCAB)
    negatives, rows = maker(collate_text([RELATION.encoded(), above.encoded()]))
    assert rows.tolist() == [0, 1]
    made = encoded_rows(negatives)
    assert [words(c) for c in made] == ["a red ball is above a blue cube",
                                        "a blue cube is left of a red ball"]  # fmt: skip
