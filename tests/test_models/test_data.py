"""Data helpers: tokenizer, vocabulary, readers, char encoding, padding, data-file lookup."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from models import (
    DataFileError,
    Vocabulary,
    char_vocabulary,
    encode_chars,
    find_data_file,
    iter_sentences,
    iter_text_chunks,
    load_corpus,
    pad_batch,
    read_char_lines,
    read_poems,
    tokenize,
)
from models.data import iter_lines


def test_tokenize_lowercases_and_strips_punctuation() -> None:
    assert tokenize("Two roads diverged, in a YELLOW wood; I rear'd!") == \
        ["two", "roads", "diverged", "in", "a", "yellow", "wood", "i", "reard"]
    assert tokenize("  ... ") == []


def test_vocabulary_keeps_the_most_frequent_words() -> None:
    vocab = Vocabulary.build([["b", "a", "b"], ["c", "a", "b"], ["d"]], size=2)
    assert vocab.idx2word == ["START", "END", "b", "a", "UNKNOWN"]
    assert (Vocabulary.START, Vocabulary.END, vocab.unknown) == (0, 1, 4)
    assert vocab.encode(["a", "zebra", "b"]) == [3, 4, 2]
    assert vocab.decode([0, 3, 4, 2, 1]) == "a b"
    assert vocab.decode([0, 3, 1], skip_special=False) == "START a END"
    assert "a" in vocab and "c" not in vocab
    with pytest.raises(KeyError, match="'zebra' is not in the vocabulary"):
        vocab.index("zebra")
    same = Vocabulary.from_config(vocab.get_config())
    assert same.idx2word == vocab.idx2word


def test_vocabulary_ties_keep_first_seen_order_and_specials_are_reserved() -> None:
    assert Vocabulary.build([["x", "y", "z"]], size=None).idx2word[2:-1] == ["x", "y", "z"]
    with pytest.raises(ValueError, match="clash with the special tokens"):
        Vocabulary(["END"])
    with pytest.raises(ValueError, match="size must be positive"):
        Vocabulary.build([["a"]], size=0)


def test_read_poems(tmp_path: Path) -> None:
    f = tmp_path / "poems.txt"
    f.write_text("Whose woods these are I think I know.\n\n  His house is in the village though;\n")
    assert read_poems(f) == [["whose", "woods", "these", "are", "i", "think", "i", "know"],
                             ["his", "house", "is", "in", "the", "village", "though"]]
    with pytest.raises(DataFileError, match="does not exist"):
        read_poems(tmp_path / "missing.txt")


def test_large_files_stream_in_chunks(tmp_path: Path) -> None:
    text = "first line. second part\n[[header]]\n\nthird line here\nlast"
    f = tmp_path / "big.txt"
    f.write_text(text)
    chunks = list(iter_text_chunks(f, chunk_size=7))
    assert max(len(c) for c in chunks) <= 7 and "".join(chunks) == text
    assert list(iter_lines(f, chunk_size=5)) == text.split("\n")
    assert list(iter_sentences(f)) == [["first", "line"], ["second", "part"], ["third", "line", "here"]]
    assert list(iter_sentences(f, by_paragraph=True, min_length=1))[0] == ["first", "line", "second", "part"]
    sentences, vocab = load_corpus(f, vocab_size=3, max_sentences=2)
    assert len(sentences) == 2 and len(vocab) == 6
    assert vocab.decode(sentences[0]) == "first line"


def test_char_encoding(tmp_path: Path) -> None:
    f = tmp_path / "play.txt"
    f.write_text("ROMEO:\nBut soft!\n\nx\n")
    lines = read_char_lines(f)
    assert lines == ["ROMEO:", "But soft!"]
    vocab = char_vocabulary(lines)
    ids = encode_chars("Bob", vocab)
    assert ids[-1] == vocab.unknown  # no lower-case b in the text
    assert vocab.decode(ids) == "Bo"
    assert read_char_lines(f, lower=True, max_lines=1) == ["romeo:"]


def test_pad_batch() -> None:
    X, mask = pad_batch([[1, 2, 3], [4]], "int32")
    np.testing.assert_array_equal(X, [[1, 4], [2, 0], [3, 0]])
    np.testing.assert_array_equal(mask, [[1, 1], [1, 0], [1, 0]])
    F, _ = pad_batch([np.ones((2, 3)), np.ones((1, 3))], "float64")
    assert F.shape == (2, 2, 3)
    with pytest.raises(ValueError, match="sequence 1 of the batch is empty"):
        pad_batch([[1], []], "int32")
    with pytest.raises(ValueError, match=r"sequence 1 has steps of shape \(2,\)"):
        pad_batch([np.ones((2, 3)), np.ones((2, 2))], "float64")


def test_find_data_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    f = tmp_path / "tinyshakespeare.txt"
    f.write_text("x")
    monkeypatch.delenv("SYMFLOW_DATA", raising=False)
    assert find_data_file("tinyshakespeare.txt", f) == f
    assert find_data_file("tinyshakespeare.txt", tmp_path) == f
    monkeypatch.setenv("SYMFLOW_DATA", str(tmp_path))
    assert find_data_file("tinyshakespeare.txt") == f
    monkeypatch.delenv("SYMFLOW_DATA")
    with pytest.raises(DataFileError, match="karpathy/char-rnn") as e:
        find_data_file("tinyshakespeare.txt")
    assert "--data" in str(e.value) and "SYMFLOW_DATA" in str(e.value)
    with pytest.raises(DataFileError, match="gutenberg"):
        find_data_file("robert_frost.txt", tmp_path)


def test_decode_refuses_ids_outside_the_vocabulary() -> None:
    vocab = Vocabulary(["a", "b"])
    with pytest.raises(ValueError, match=r"token id 99 at position 1 is not in the vocabulary: expected an id in "
                                         r"\[0, 5\)"):
        vocab.decode([2, 99])
    with pytest.raises(ValueError, match="token id -1 at position 0"):
        vocab.decode([-1, 2])
    with pytest.raises(TypeError):
        vocab.decode([2.5])
    assert vocab.decode(np.array([2, 3], dtype=np.uint8)) == "a b"


def test_line_and_chunk_limits(tmp_path: Path) -> None:
    path = tmp_path / "t.txt"
    path.write_text("first line. second one\nthird line here\n")
    assert read_char_lines(path, max_lines=0) == []
    assert read_char_lines(path, max_lines=1) == ["first line. second one"]
    with pytest.raises(ValueError, match="max_lines must be a non-negative int, got -1"):
        read_char_lines(path, max_lines=-1)
    for bad in (0, -1):
        with pytest.raises(ValueError, match=f"chunk_size must be a positive int, got {bad}"):
            iter_sentences(path, chunk_size=bad)  # refused at the call, before any iteration
        with pytest.raises(ValueError, match="chunk_size must be a positive int"):
            iter_lines(path, chunk_size=bad)
    assert list(iter_sentences(path, chunk_size=3)) == [["first", "line"], ["second", "one"],
                                                        ["third", "line", "here"]]


def test_pad_batch_names_a_scalar_in_the_batch() -> None:
    with pytest.raises(ValueError, match=r"sequence 1 of the batch is a scalar \(5\); expected a sequence of steps"):
        pad_batch([[1, 2], 5], "int32")
