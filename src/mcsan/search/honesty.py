"""What a search can know: the checkpoint's dataset and vocabulary, and warnings about a query.

A trained checkpoint knows the words of its training captions and nothing else; a query of
other words still gets a ranking, which means nothing. These helpers name the checkpoint's
dataset, list the query words its vocabulary lacks and word the warnings the CLI, the API
and the page show.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mcsan.search.concepts import content_words, singular_forms

MOSTLY_UNKNOWN = 0.5
"""Warn when more than this share of a query's content words is unknown to the model."""


def dataset_name(root: str | None) -> str:
    """The name on the dataset card at ``root``; else the folder name; else ``unknown``."""
    if not root:
        return "unknown"
    try:
        from mcsan.data.native import read_card

        name = read_card(root).get("name")
    except Exception:  # noqa: BLE001 - the card may be gone on the serving machine
        name = None
    return str(name) if name else Path(root).name or "unknown"


def model_info(retriever: Any, checkpoint: str | None = None) -> dict[str, Any]:
    """Checkpoint, dataset and vocabulary size of a trained encoder (``Retriever``)."""
    config = getattr(retriever, "config", None)
    root = getattr(getattr(config, "data", None), "root", None)
    vocab = getattr(retriever, "vocab", None)
    words = max(0, len(vocab.itos) - 2) if vocab is not None else None
    name = dataset_name(root)
    return {
        "checkpoint": str(checkpoint or getattr(retriever, "path", "") or "") or None,
        "checkpoint_sha256": getattr(retriever, "checkpoint_sha256", None),
        "dataset": name,
        "vocabulary_size": words,
        "domain": domain_line(name, words),
    }


def domain_line(dataset: str, words: int | None) -> str:
    """One line stating what the trained model can find."""
    size = f" ({words}-word vocabulary)" if words is not None else ""
    return (
        f"The model was trained on the {dataset!r} dataset{size}: it can only find what "
        "those captions name."
    )


def concept_domain_line() -> str:
    """One line stating what concept (zero-example) search can find."""
    return (
        "Concept search (no training): clips are scored by the 1,000 ImageNet classes of the "
        "frame encoder (animals, objects, food, vehicles, a few scenes) and by a face and "
        "person detector (person, people, face; it cannot tell men, women or children "
        "apart); actions, counts and relations are not understood."
    )


def unknown_words(retriever: Any, query: str) -> tuple[list[str], list[str]]:
    """(known, unknown) content words of ``query`` for the model's vocabulary."""
    vocab = getattr(retriever, "vocab", None)
    stoi = getattr(vocab, "stoi", None)
    if stoi is None:
        return [], []
    known, unknown = [], []
    for word in content_words(query):
        (known if any(form in stoi for form in singular_forms(word)) else unknown).append(word)
    return known, unknown


def model_warning(known: list[str], unknown: list[str], dataset: str) -> str | None:
    """A warning when the model knows none or only a few of the query's words."""
    total = len(known) + len(unknown)
    if total == 0:  # only common words ("the", "a", "of"): nothing for the model to match
        return (
            f"The query has no content word the model (trained on {dataset!r}) could match, "
            "only common words; its ranking is not meaningful. Describe what the clip shows."
        )
    if not unknown:
        return None
    listed = ", ".join(repr(w) for w in unknown)
    if not known:
        return (
            f"The model (trained on {dataset!r}) knows none of the query's words ({listed}); "
            "its ranking is not meaningful."
        )
    if len(unknown) / total > MOSTLY_UNKNOWN:
        return (
            f"The model (trained on {dataset!r}) does not know most of the query's words "
            f"({listed}); treat the ranking with caution."
        )
    return f"The model does not know {listed}; those words were ignored."


def concept_warning(words: list[str], unmatched: list[str]) -> str | None:
    """A message when no query word, or only some, matched an ImageNet class."""
    if not words:
        return "The query names nothing (only common words); describe what the clip shows."
    if len(unmatched) == len(words):
        listed = ", ".join(repr(w) for w in unmatched)
        return (
            f"No concept matches {listed}: the frame encoder knows 1,000 ImageNet classes "
            "(animals, objects, food, vehicles); nothing was ranked."
        )
    if unmatched:
        return f"No concept matches {', '.join(repr(w) for w in unmatched)}; ignored."
    return None
