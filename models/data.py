"""Text data for the models: tokenizer, vocabulary, readers for poems and large files, char encoding,
padding of sequence batches, and locating data files for the examples."""

from __future__ import annotations

import operator
import os
import string
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .layers import check_size

_PUNCTUATION = str.maketrans("", "", string.punctuation)
#: lines starting with these are headers, tables or lists in wiki-style dumps, skipped as the book does
_SKIP_PREFIXES = ("[", "*", "-", "|", "=", "{", "}")


def tokenize(text: str) -> list[str]:
    """Lower-case words with punctuation removed (the book's ``my_tokenizer``)."""
    return text.lower().translate(_PUNCTUATION).split()


class Vocabulary:
    """Token <-> index maps with the book's conventions: START=0, END=1, then the kept tokens by falling
    frequency, and UNKNOWN last for everything else. ``joiner`` glues decoded tokens (" " words, "" chars)."""

    START, END = 0, 1
    SPECIAL = ("START", "END", "UNKNOWN")

    def __init__(self, tokens: Sequence[str], joiner: str = " ") -> None:
        if isinstance(tokens, str) or not isinstance(joiner, str):
            raise TypeError(f"a vocabulary takes a sequence of string tokens and a string joiner, got "
                            f"{type(tokens).__name__} tokens and joiner {joiner!r}")
        tokens = list(tokens)
        not_str = [t for t in tokens if not isinstance(t, str)]
        if not_str:
            raise TypeError(f"vocabulary tokens must be strings, got {not_str[0]!r} ({type(not_str[0]).__name__})")
        clash = sorted(set(tokens) & set(self.SPECIAL))
        if clash:
            raise ValueError(f"tokens {clash} clash with the special tokens {self.SPECIAL}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("the vocabulary lists a token twice")
        self.idx2word = ["START", "END", *tokens, "UNKNOWN"]
        self.word2idx = {w: i for i, w in enumerate(self.idx2word)}
        self.joiner = joiner

    @classmethod
    def build(cls, sequences: Iterable[Iterable[str]], size: int | None = 2000, joiner: str = " ") -> Vocabulary:
        """Keep the ``size`` most frequent tokens of ``sequences`` (all when None); ties keep first-seen order."""
        counts: Counter[str] = Counter()
        for seq in sequences:
            counts.update(seq)
        for special in cls.SPECIAL:
            counts.pop(special, None)
        if size is not None and size < 1:
            raise ValueError(f"vocabulary size must be positive, got {size}")
        return cls([w for w, _ in counts.most_common(size)], joiner=joiner)

    @property
    def unknown(self) -> int:
        return len(self.idx2word) - 1

    def __len__(self) -> int:
        return len(self.idx2word)

    def __contains__(self, token: object) -> bool:
        return token in self.word2idx

    def index(self, token: str) -> int:
        """The index of a known token (KeyError naming it otherwise)."""
        if token not in self.word2idx:
            raise KeyError(f"{token!r} is not in the vocabulary ({len(self)} tokens)")
        return self.word2idx[token]

    def encode(self, tokens: Iterable[str]) -> list[int]:
        """Indices of ``tokens``, UNKNOWN for tokens not kept."""
        unknown = self.unknown
        return [self.word2idx.get(t, unknown) for t in tokens]

    def decode(self, ids: Iterable[int], skip_special: bool = True) -> str:
        """The text of ``ids`` (START, END and UNKNOWN left out when ``skip_special``); an id outside the
        vocabulary is an error, not a word silently dropped or read from the end."""
        ids = [operator.index(i) for i in ids]
        for position, i in enumerate(ids):
            if not 0 <= i < len(self):
                raise ValueError(f"token id {i} at position {position} is not in the vocabulary: expected an id in "
                                 f"[0, {len(self)})")
        if skip_special:
            ids = [i for i in ids if 1 < i < self.unknown]
        return self.joiner.join(self.idx2word[i] for i in ids)

    def get_config(self) -> dict[str, Any]:
        return {"tokens": self.idx2word[2:-1], "joiner": self.joiner}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Vocabulary:
        return cls(config["tokens"], joiner=config.get("joiner", " "))

    def __repr__(self) -> str:
        return f"Vocabulary({len(self)} tokens, joiner={self.joiner!r})"


# -- readers ------------------------------------------------------------------------------------------
def read_poems(path: str | os.PathLike[str]) -> list[list[str]]:
    """Tokenised verse lines of a poems file (one line per verse; blank lines separate stanzas)."""
    lines = []
    with open(_existing(path), encoding="utf-8", errors="replace") as f:
        for line in f:
            tokens = tokenize(line)
            if tokens:
                lines.append(tokens)
    return lines


def iter_text_chunks(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> Iterator[str]:
    """The file's text in pieces of at most ``chunk_size`` characters, never the whole file at once.
    The arguments are checked at the call, not at the first ``next``."""
    check_size(chunk_size, "chunk_size")  # read(0) would end the file at once, read(-1) read it whole
    return _chunks(_existing(path), chunk_size)


def _chunks(path: Path, chunk_size: int) -> Iterator[str]:
    with open(path, encoding="utf-8", errors="replace") as f:
        while True:
            chunk = f.read(chunk_size)
            if not chunk:
                return
            yield chunk


def iter_lines(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> Iterator[str]:
    """The file's lines (without newlines), assembled from chunks so huge files stream through."""
    return _lines(iter_text_chunks(path, chunk_size))


def _lines(chunks: Iterator[str]) -> Iterator[str]:
    rest = ""
    for chunk in chunks:
        pieces = (rest + chunk).split("\n")
        rest = pieces.pop()
        yield from pieces
    if rest:
        yield rest


def iter_sentences(path: str | os.PathLike[str], by_paragraph: bool = False, min_length: int = 2,
                   chunk_size: int = 1 << 20) -> Iterator[list[str]]:
    """Tokenised sentences of a large text file (the book's Wikipedia reader): lines split at ". ",
    header/list lines skipped, sentences shorter than ``min_length`` tokens dropped."""
    return _sentences(iter_lines(path, chunk_size), by_paragraph, min_length)


def _sentences(lines: Iterator[str], by_paragraph: bool, min_length: int) -> Iterator[list[str]]:
    for line in lines:
        line = line.strip()
        if not line or line.startswith(_SKIP_PREFIXES):
            continue
        for sentence in [line] if by_paragraph else line.split(". "):
            tokens = tokenize(sentence)
            if len(tokens) >= min_length:
                yield tokens


def load_corpus(path: str | os.PathLike[str], vocab_size: int = 2000, max_sentences: int | None = None,
                by_paragraph: bool = False, min_length: int = 2) -> tuple[list[list[int]], Vocabulary]:
    """Sentences of a large text file as index lists over its ``vocab_size`` most frequent words.

    Two streaming passes (count, then encode), so only the index lists are held in memory.
    """
    def sentences() -> Iterator[list[str]]:
        for i, s in enumerate(iter_sentences(path, by_paragraph, min_length)):
            if max_sentences is not None and i >= max_sentences:
                return
            yield s

    vocab = Vocabulary.build(sentences(), vocab_size)
    return [vocab.encode(s) for s in sentences()], vocab


def read_char_lines(path: str | os.PathLike[str], max_lines: int | None = None, min_length: int = 2,
                    lower: bool = False) -> list[str]:
    """Non-blank lines of a text file for character-level models (optionally lower-cased), at most
    ``max_lines`` of them (0 gives none)."""
    if max_lines is not None:
        check_size(max_lines, "max_lines", 0)
    lines: list[str] = []
    if max_lines == 0:
        return lines
    for line in iter_lines(path):
        line = line.strip()
        if len(line) >= min_length:
            lines.append(line.lower() if lower else line)
            if max_lines is not None and len(lines) >= max_lines:
                break
    return lines


def char_vocabulary(texts: Iterable[str]) -> Vocabulary:
    """A character vocabulary (every character seen, most frequent first) that decodes without spaces."""
    return Vocabulary.build((list(t) for t in texts), size=None, joiner="")


def encode_chars(text: str, vocab: Vocabulary) -> list[int]:
    """Character indices of ``text`` (UNKNOWN for characters the vocabulary lacks)."""
    return vocab.encode(list(text))


# -- batches ------------------------------------------------------------------------------------------
def pad_batch(sequences: Sequence[Any], dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """Stack sequences of different lengths time-major: ``(T, N, ...)`` zero-padded, and a ``(T, N)`` mask."""
    arrays = [np.asarray(s, dtype=dtype) for s in sequences]
    if not arrays:
        raise ValueError("cannot pad an empty batch")
    for i, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"sequence {i} of the batch is a scalar ({a.item()!r}); expected a sequence of steps "
                             "(at least 1-d)")
    lengths = [len(a) for a in arrays]
    if min(lengths) == 0:
        raise ValueError(f"sequence {lengths.index(0)} of the batch is empty; every sequence needs a step")
    trailing = arrays[0].shape[1:]
    for i, a in enumerate(arrays):
        if a.shape[1:] != trailing:
            raise ValueError(f"sequence {i} has steps of shape {a.shape[1:]}, but sequence 0 has {trailing}")
    out = np.zeros((max(lengths), len(arrays), *trailing), dtype=dtype)
    mask = np.zeros((max(lengths), len(arrays)), dtype="float64")
    for j, a in enumerate(arrays):
        out[: len(a), j] = a
        mask[: len(a), j] = 1.0
    return out, mask


# -- locating data files ----------------------------------------------------------------------------
#: where to get the data files the examples use
SOURCES = {
    "robert_frost.txt": "Robert Frost's poems, one verse line per line (e.g. from Project Gutenberg, "
                        "https://www.gutenberg.org/ebooks/59824, or the book's repository "
                        "https://github.com/lazyprogrammer/machine_learning_examples/tree/master/hmm_class)",
    "edgar_allan_poe.txt": "Edgar Allan Poe's poems, one verse line per line (e.g. from Project Gutenberg, "
                           "https://www.gutenberg.org/ebooks/10031, or the book's repository "
                           "https://github.com/lazyprogrammer/machine_learning_examples/tree/master/hmm_class)",
    "tinyshakespeare.txt": "tiny Shakespeare: https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                           "tinyshakespeare/input.txt (save it as tinyshakespeare.txt)",
}


class DataFileError(FileNotFoundError):
    """A data file the caller needs is not where it was looked for."""


def find_data_file(filename: str, data: str | os.PathLike[str] | None = None, env: str = "SYMFLOW_DATA") -> Path:
    """The data file to use: ``data`` itself if it is a file, ``data/filename`` if it is a directory,
    else ``$SYMFLOW_DATA/filename``. Raises DataFileError saying what is needed and where to get it."""
    tried = []
    if data is not None:
        p = Path(data).expanduser()
        candidate = p / filename if p.is_dir() else p
        if candidate.is_file():
            return candidate
        tried.append(str(candidate))
    elif os.environ.get(env):
        candidate = Path(os.environ[env]).expanduser() / filename
        if candidate.is_file():
            return candidate
        tried.append(f"{candidate} (from ${env})")
    where = f"looked at {', '.join(tried)}" if tried else f"no --data path given and ${env} is not set"
    source = SOURCES.get(filename, "")
    raise DataFileError(
        f"data file {filename!r} not found ({where}). Pass --data PATH (the file or a directory holding it) "
        f"or set {env} to a directory holding it." + (f" Get it from: {source}" if source else "")
    )


def _existing(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    if not p.is_file():
        raise DataFileError(f"data file {str(p)!r} does not exist" if not p.exists()
                            else f"{str(p)!r} is not a file")
    return p
