"""The table-driven attribute ruler gives exactly what spaCy's gives, or is not used."""

from __future__ import annotations

from pathlib import Path

import spacy

from mcsan.data.captions.fast_attributes import fast_ruler
from mcsan.data.captions.gold import read_gold

GOLD = Path(__file__).with_name("real_gold.txt")


def _annotations(docs):
    return [[(t.pos_, t.lemma_, str(t.morph)) for t in doc] for doc in docs]


def test_same_annotations_as_spacy_on_captions(caption_parser):
    assert caption_parser._fast_ruler is not None  # the small model's patterns are supported
    texts = [g.caption for g in read_gold(GOLD)] + [
        "a red ball is being approached by a blue cube",
        "there's somebody who can't stop, isn't there?",
        "i'd say it's the cube's turn . . .",
        "Someone   sings  ",
    ]
    expected = _annotations(caption_parser.nlp.pipe(texts))
    assert _annotations(caption_parser.docs(texts)) == expected


def test_unsupported_patterns_keep_spacys_ruler():
    nlp = spacy.blank("en")
    ruler = nlp.add_pipe("attribute_ruler")
    ruler.add([[{"LOWER": "big", "OP": "+"}]], {"POS": "ADJ"})
    assert fast_ruler(ruler) is None
    ruler = nlp.add_pipe("attribute_ruler", name="plain")
    ruler.add([[{"LOWER": {"IN": ["big", "huge"]}}]], {"POS": "ADJ"})
    ruler.add([[{"LOWER": "big"}, {"LOWER": "dog"}]], {"POS": "NOUN"}, index=1)
    fast = fast_ruler(ruler)
    assert fast is not None
    doc = fast(nlp.make_doc("a huge big dog"))
    assert [t.pos_ for t in doc] == ["", "ADJ", "ADJ", "NOUN"]
