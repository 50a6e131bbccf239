"""Example queries an index can answer, from its own vocabulary, for the page's first view.

- With a model: captions of the indexed clips from the checkpoint's dataset (its own words);
  when that dataset is not readable here, the most frequent words of its vocabulary.
- With concept scores: the concept each of a few clips shows most clearly ("a tabby",
  "a person"), only above ``CLEAR``.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from mcsan.search.concepts import concept_label

logger = logging.getLogger(__name__)

COUNT = 4
CLEAR = 0.3
"""A clip's best concept must reach this score to become an example."""


def example_queries(searcher: Any, count: int = COUNT) -> list[str]:
    """Up to ``count`` queries (distinct, in a fixed order) that ``searcher`` can answer."""
    found: list[str] = []
    if searcher.retriever is not None:
        found += _caption_examples(searcher, count)
    if searcher.index.concepts is not None and len(found) < count:
        found += _concept_examples(searcher.index.concepts.probs, count - len(found))
    return list(dict.fromkeys(found))[:count]


def _caption_examples(searcher: Any, count: int) -> list[str]:
    """First captions of the first indexed clips; else frequent vocabulary words."""
    root = getattr(getattr(searcher.retriever, "config", None), "data", None)
    wanted = set(searcher.index.ids[: 50 * count])
    try:
        from mcsan.data.native import read_captions

        out: dict[str, str] = {}
        for record in read_captions(root.root):
            if record.video_id in wanted and record.video_id not in out:
                out[record.video_id] = record.caption
                if len(out) >= count:
                    break
        if out:
            return sorted(out.values(), key=len)
    except Exception as exc:  # noqa: BLE001 - the dataset may be absent where the index serves
        logger.info("no captions for example queries (%s); using the vocabulary", exc)
    vocab = getattr(searcher.retriever, "vocab", None)
    words = [w for w in getattr(vocab, "itos", [])[2:] if w.isalpha() and len(w) > 2]
    return [_article(word) for word in words[:count]]


def _concept_examples(probs: np.ndarray, count: int) -> list[str]:
    """``a <concept>`` for the clearest concept of clips in index order, each shown once."""
    out: list[str] = []
    for column in range(probs.shape[1]):
        scores = np.asarray(probs[:, column], np.float32)
        best = int(np.argmax(scores))
        label = concept_label(best)
        if scores[best] >= CLEAR and label not in out:
            out.append(label)
        if len(out) >= count:
            break
    return [_article(label) for label in out]


def _article(label: str) -> str:
    """``a tripod``, ``an Egyptian cat``; ``people`` as it is."""
    if label == "people":
        return label
    return f"{'an' if label[:1].lower() in 'aeiou' else 'a'} {label}"
