"""Text for language models: an embedded, hashed snapshot of Python's ``pydoc_data.topics``, or any
UTF-8 file, as characters or as words.

Characters (``level="char"``): the vocabulary is every distinct character, ids in code-point order.

Words (``level="word"``): the text is lower-cased and cut into tokens, each a marker in angle
brackets (``<unk>``, as in the Penn Treebank files), a maximal run of letters, digits and
underscores (regex ``\\w+``), or one other non-space character (punctuation); each line break is the
token ``<eos>`` and other white space only separates. The token stream is split like the
characters (the first ``1 - test_fraction`` trains), and the vocabulary holds ``<unk>`` (id 0) and
the ``vocab_size - 1`` most frequent tokens of the training stream, by decreasing count and then
alphabetically; every other token (in either stream) becomes ``<unk>``. A language model's
perplexity is then ``exp(mean loss per token)``, per word.

The snapshot (``text_snapshot.txt``) was built once by :func:`build_snapshot` and is committed with
its SHA-256 (:data:`SNAPSHOT_SHA256`), checked at every load, so results do not move when a new
Python release edits its help topics.
"""

from __future__ import annotations

import collections
import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpu.data._common import checksum

SNAPSHOT = Path(__file__).with_name("text_snapshot.txt")
SNAPSHOT_SHA256 = "5ba8908aa7b9d51ca8e1d18d2fa185b6ce95f67cb210bc423a8f1c43a686a90b"
#: Length of the embedded snapshot in characters (the first topics in sorted order).
SNAPSHOT_CHARS = 300_000
#: The out-of-vocabulary token of word-level text (id 0).
UNK = "<unk>"
#: The token each line break becomes in word-level text.
EOS = "<eos>"
LEVELS = ("char", "word")
_WORD = re.compile(r"<[^<>\s]+>|\w+|[^\w\s]|\n")


@dataclass(frozen=True)
class TextDataset:
    """Integer-coded tokens with a fixed split: the first ``1 - test_fraction`` of the token stream
    is the training stream, the rest the test stream.

    Attributes:
        name: ``"pydoc_topics"`` or the file name.
        train, test: int32 arrays of token ids.
        vocab: the tokens, ``vocab[i]`` is id ``i`` (characters in code-point order; words as in
            the module docstring, ``<unk>`` first).
        checksum: :func:`gpu.data._common.checksum` of ``train``, ``test`` and the vocabulary.
        info: provenance.
        level: ``"char"`` or ``"word"``.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    vocab: tuple[str, ...]
    checksum: str
    info: dict = field(default_factory=dict)
    level: str = "char"

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens."""
        return len(self.vocab)

    def decode(self, ids: np.ndarray) -> str:
        """Text of an id sequence (words joined by spaces)."""
        sep = "" if self.level == "char" else " "
        return sep.join(self.vocab[int(i)] for i in np.asarray(ids).ravel())


def word_tokens(text: str) -> list[str]:
    """The word-level tokens of ``text`` (rules in the module docstring).

    Example:
        >>> word_tokens("The cat's <unk>.\\nEnd")
        ['the', 'cat', "'", 's', '<unk>', '.', '<eos>', 'end']
    """
    return [EOS if t == "\n" else t for t in _WORD.findall(text.lower())]


def word_vocabulary(tokens: list[str], vocab_size: int) -> tuple[str, ...]:
    """``<unk>`` and the ``vocab_size - 1`` most frequent other tokens (count down, then
    alphabetical).

    Example:
        >>> word_vocabulary(["b", "a", "b", "c", "a", "b"], 3)
        ('<unk>', 'b', 'a')
    """
    counts = collections.Counter(t for t in tokens if t != UNK)
    ranked = sorted(counts, key=lambda t: (-counts[t], t))
    return (UNK, *ranked[: vocab_size - 1])


def build_snapshot(num_chars: int = SNAPSHOT_CHARS) -> str:
    """Rebuild a snapshot text from the running Python: topics in sorted key order, joined by a
    blank line, truncated to ``num_chars``. Different Python versions give different text; the
    committed file is the reference."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return text[:num_chars]


def load_text(
    path: str | Path | None = None,
    *,
    test_fraction: float = 0.1,
    level: str = "char",
    vocab_size: int = 10_000,
) -> TextDataset:
    """Load the embedded snapshot (``path=None``) or a UTF-8 file as character or word ids.

    Args:
        path: a UTF-8 file, or None for the embedded snapshot.
        test_fraction: the trailing fraction of the token stream held out, in (0, 0.5].
        level: ``"char"`` or ``"word"`` (module docstring).
        vocab_size: words kept, ``<unk>`` included (word level only), at least 2.

    Raises:
        ValueError: ``test_fraction`` outside (0, 0.5], an unknown ``level``, ``vocab_size``
            below 2, a text too short to split, a snapshot whose hash does not match, or a file
            that is not UTF-8.
        FileNotFoundError: when ``path`` does not exist.
    """
    if not (0.0 < test_fraction <= 0.5):
        raise ValueError(f"test_fraction must lie in (0, 0.5] (got {test_fraction!r})")
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS} (got {level!r})")
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 2:
        raise ValueError(f"vocab_size must be an integer >= 2 (got {vocab_size!r})")
    if path is None:
        if not SNAPSHOT.is_file():
            raise FileNotFoundError(
                f"the embedded text snapshot {SNAPSHOT} is missing: reinstall momentum-lab"
            )
        raw = SNAPSHOT.read_bytes()
        digest = hashlib.sha256(raw).hexdigest()
        if digest != SNAPSHOT_SHA256:
            raise ValueError(f"text snapshot hash {digest} differs from {SNAPSHOT_SHA256}")
        name, source = "pydoc_topics", "embedded snapshot of pydoc_data.topics"
    else:
        p = Path(path)
        if not p.is_file():
            raise FileNotFoundError(f"text file {p} not found: pass path= an existing UTF-8 file")
        raw, name, source = p.read_bytes(), p.name, str(p)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"path {source} is not UTF-8 text") from err
    info = {"source": source, "sha256": hashlib.sha256(raw).hexdigest()}
    if level == "word":
        return _words(text, name, source, test_fraction, vocab_size, info)
    vocab = tuple(sorted(set(text)))
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = np.fromiter((lookup[c] for c in text), dtype=np.int32, count=len(text))
    split = round(len(ids) * (1.0 - test_fraction))
    if split < 2 or len(ids) - split < 2:
        raise ValueError(f"path {source} holds {len(ids)} characters: too short to split")
    train, test = ids[:split], ids[split:]
    vocab_codes = np.array([ord(c) for c in vocab], dtype=np.int32)
    return TextDataset(
        name,
        train,
        test,
        vocab,
        checksum(train, test, vocab_codes),
        info,
    )


def _words(
    text: str, name: str, source: str, test_fraction: float, vocab_size: int, info: dict
) -> TextDataset:
    tokens = word_tokens(text)
    split = round(len(tokens) * (1.0 - test_fraction))
    if split < 2 or len(tokens) - split < 2:
        raise ValueError(f"path {source} holds {len(tokens)} words: too short to split")
    vocab = word_vocabulary(tokens[:split], vocab_size)
    lookup = {t: i for i, t in enumerate(vocab)}
    ids = np.fromiter((lookup.get(t, 0) for t in tokens), dtype=np.int32, count=len(tokens))
    train, test = ids[:split], ids[split:]
    vocab_bytes = np.frombuffer("\0".join(vocab).encode(), dtype=np.uint8)
    info = {**info, "tokens": len(tokens), "unk_fraction": float(np.mean(ids == 0))}
    return TextDataset(
        name, train, test, vocab, checksum(train, test, vocab_bytes), info, level="word"
    )
