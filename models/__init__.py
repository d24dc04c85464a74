"""The book's recurrent networks on symflow: units, layers, task models, training and data helpers.

    from models import GRU, LanguageModel, SequenceTagger, Vocabulary, read_poems

See ``units`` (SimpleRNN, RatedRNN, GRU, LSTM), ``layers`` (Embedding, Dense, Dropout, Bidirectional),
``tasks`` (SequenceTagger, SequenceClassifier, LanguageModel), ``training`` (History, plot_history) and
``data`` (tokenizer, Vocabulary, readers).
"""

from .data import (
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
from .io import ModelFileError
from .layers import ACTIVATIONS, Bidirectional, Dense, Dropout, Embedding, Layer, get_activation
from .tasks import LanguageModel, SequenceClassifier, SequenceModel, SequenceTagger, build_layers, load_model
from .training import History, plot_history
from .units import GRU, LSTM, UNITS, RatedRNN, RecurrentUnit, SimpleRNN, unit_class

__all__ = [
    "ACTIVATIONS", "GRU", "LSTM", "UNITS", "Bidirectional", "DataFileError", "Dense", "Dropout", "Embedding", "History",
    "LanguageModel", "Layer", "ModelFileError", "RatedRNN", "RecurrentUnit", "SequenceClassifier", "SequenceModel",
    "SequenceTagger", "SimpleRNN", "Vocabulary", "build_layers", "char_vocabulary", "encode_chars", "find_data_file",
    "get_activation", "iter_sentences", "iter_text_chunks", "load_corpus", "load_model", "pad_batch", "plot_history",
    "read_char_lines", "read_poems", "tokenize", "unit_class",
]
