"""The concept bank's data: the ImageNet class names, their WordNet ancestors, the people
detector's concepts and the curated query words (files shipped beside this module)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from mcsan.core.errors import DataError

CLASSES_FILE = Path(__file__).with_name("imagenet_classes.txt")
HYPERNYMS_FILE = Path(__file__).with_name("imagenet_hypernyms.txt")
CURATED_FILE = Path(__file__).with_name("concept_words.txt")
IMAGENET_CLASSES = 1000
PEOPLE_CONCEPTS: tuple[str, ...] = ("person", "people", "face")
"""The people detector's concepts (:mod:`mcsan.search.people`), indices 1000, 1001, 1002."""


@dataclass(frozen=True)
class ConceptClass:
    """One class of the frame encoder: its output index, WordNet id and names."""

    index: int
    wnid: str
    names: tuple[str, ...]

    @property
    def label(self) -> str:
        """The first (most common) name, shown to users."""
        return self.names[0]


def _data_lines(source: Path, what: str) -> list[tuple[int, str]]:
    """(line number, line) of a shipped data file, blank and ``#`` lines left out."""
    try:
        lines = source.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise DataError(f"{source}: cannot read {what} ({exc}); reinstall mcsan") from exc
    return [
        (number, line)
        for number, line in enumerate(lines, start=1)
        if line.strip() and not line.startswith("#")
    ]


@functools.lru_cache(maxsize=1)
def load_classes(path: str | None = None) -> tuple[ConceptClass, ...]:
    """The 1,000 ImageNet classes in classifier order from ``imagenet_classes.txt``."""
    source = Path(path) if path else CLASSES_FILE
    classes = []
    for _, line in _data_lines(source, "the class names"):
        wnid, _, names = line.partition(" ")
        parts = tuple(n.strip() for n in names.split(",") if n.strip())
        classes.append(ConceptClass(len(classes), wnid, parts))
    if len(classes) != 1000:
        raise DataError(f"{source}: {len(classes)} classes, expected 1000; reinstall mcsan")
    return tuple(classes)


@functools.lru_cache(maxsize=1)
def load_hypernyms(path: str | None = None) -> tuple[tuple[tuple[str, ...], tuple[int, ...]], ...]:
    """WordNet ancestors of the classes: (names, class indices below) per ancestor synset."""
    source = Path(path) if path else HYPERNYMS_FILE
    out = []
    for number, line in _data_lines(source, "the hypernyms"):
        parts = line.split("\t")
        try:
            indices = tuple(int(i) for i in parts[2].split())
        except (IndexError, ValueError):
            raise DataError(f"{source}:{number}: expected 'wnid<TAB>names<TAB>indices'") from None
        out.append((tuple(n.strip() for n in parts[1].split(",") if n.strip()), indices))
    return tuple(out)


def concept_classes() -> tuple[ConceptClass, ...]:
    """The ImageNet classes followed by the people detector's concepts (index 1000 on)."""
    classes = load_classes()
    return classes + tuple(
        ConceptClass(len(classes) + j, f"detector:{name}", (name,))
        for j, name in enumerate(PEOPLE_CONCEPTS)
    )


def concept_label(index: int) -> str:
    """The display name of concept ``index`` (an ImageNet class or a detector concept)."""
    classes = concept_classes()
    return classes[index].label if 0 <= index < len(classes) else f"concept {index}"


@functools.lru_cache(maxsize=1)
def load_curated(path: str | None = None) -> dict[str, tuple[tuple[tuple[str, float], ...], str]]:
    """``concept_words.txt``: word -> ((target name, weight), ...), note."""
    source = Path(path) if path else CURATED_FILE
    out = {}
    for number, line in _data_lines(source, "the curated concept words"):
        parts = line.split("\t")
        if len(parts) < 2:
            raise DataError(f"{source}:{number}: expected 'word<TAB>targets[<TAB>note]'")
        targets = []
        for item in parts[1].split(","):
            name, _, weight = item.strip().partition(":")
            try:
                targets.append((name.strip(), float(weight) if weight else 1.0))
            except ValueError:
                raise DataError(f"{source}:{number}: bad weight in {item!r}") from None
        out[parts[0].strip().lower()] = (tuple(targets), parts[2].strip() if len(parts) > 2 else "")
    return out
