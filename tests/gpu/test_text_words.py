"""Word-level text: tokens, the vocabulary of the most frequent training words plus <unk>, the
split, the checksum, and the errors."""

from __future__ import annotations

import numpy as np
import pytest

from gpu.data import load_text
from gpu.data.text import EOS, UNK, word_tokens, word_vocabulary


def test_tokens_lowercase_split_punctuation_and_mark_line_ends() -> None:
    assert word_tokens("Hello, World!\nA <unk> b_2") == [
        "hello", ",", "world", "!", EOS, "a", UNK, "b_2",
    ]  # fmt: skip
    assert word_tokens("  \t ") == []


def test_vocabulary_is_unk_then_most_frequent_then_alphabetical() -> None:
    tokens = ["c", "a", "b", "a", "c", "d", UNK, UNK, UNK]
    assert word_vocabulary(tokens, 3) == (UNK, "a", "c")  # a and c tie at 2: alphabetical
    assert word_vocabulary(tokens, 10) == (UNK, "a", "c", "b", "d")  # fewer words than asked


def test_word_level_file_maps_rare_and_unseen_words_to_unk(tmp_path) -> None:
    train = "the cat sat . the cat ran . the dog sat .\n" * 9
    test = "the bird sat .\n"  # "bird" never occurs in training
    p = tmp_path / "corpus.txt"
    p.write_text(train + test, encoding="utf-8")
    n_tokens = len(word_tokens(train + test))
    ds = load_text(p, level="word", vocab_size=5, test_fraction=5 / n_tokens)
    assert ds.level == "word" and ds.vocab[0] == UNK and ds.vocab_size == 5
    assert ds.vocab[1:] == (".", "the", "cat", "sat")  # counts 27, 27, 18, 18; dog/ran/<eos> 9
    assert ds.decode(ds.test) == "the <unk> sat . <unk>"  # bird unseen, <eos> not kept
    assert len(ds.train) + len(ds.test) == n_tokens
    assert ds.train.dtype == np.int32 and ds.info["unk_fraction"] > 0
    again = load_text(p, level="word", vocab_size=5, test_fraction=5 / n_tokens)
    assert again.checksum == ds.checksum
    assert load_text(p, level="word", vocab_size=6).checksum != ds.checksum


def test_embedded_snapshot_as_words_and_errors(tmp_path) -> None:
    ds = load_text(level="word", vocab_size=500)
    assert ds.vocab_size == 500 and 0 < ds.info["unk_fraction"] < 0.5
    assert load_text().level == "char"  # the default is unchanged
    with pytest.raises(ValueError, match="level"):
        load_text(level="byte")
    with pytest.raises(ValueError, match="vocab_size"):
        load_text(level="word", vocab_size=1)
    short = tmp_path / "short.txt"
    short.write_text("one two", encoding="utf-8")
    with pytest.raises(ValueError, match="too short"):
        load_text(short, level="word")
