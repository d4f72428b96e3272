"""Character-level text: an embedded, hashed snapshot of Python's ``pydoc_data.topics``, or any
UTF-8 file.

The snapshot (``text_snapshot.txt``) was built once by :func:`build_snapshot` and is committed with
its SHA-256 (:data:`SNAPSHOT_SHA256`), checked at every load, so results do not move when a new
Python release edits its help topics.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gpu.data._common import checksum

SNAPSHOT = Path(__file__).with_name("text_snapshot.txt")
SNAPSHOT_SHA256 = "5ba8908aa7b9d51ca8e1d18d2fa185b6ce95f67cb210bc423a8f1c43a686a90b"
#: Length of the embedded snapshot in characters (the first topics in sorted order).
SNAPSHOT_CHARS = 300_000


@dataclass(frozen=True)
class TextDataset:
    """Integer-coded characters with a fixed split: the first ``1 - test_fraction`` of the text is
    the training stream, the rest the test stream.

    Attributes:
        name: ``"pydoc_topics"`` or the file name.
        train, test: int32 arrays of character ids.
        vocab: the characters, ``vocab[i]`` is id ``i`` (sorted code points).
        checksum: :func:`gpu.data._common.checksum` of ``train``, ``test`` and the vocabulary.
        info: provenance.
    """

    name: str
    train: np.ndarray
    test: np.ndarray
    vocab: tuple[str, ...]
    checksum: str
    info: dict = field(default_factory=dict)

    @property
    def vocab_size(self) -> int:
        """Number of distinct characters."""
        return len(self.vocab)

    def decode(self, ids: np.ndarray) -> str:
        """Characters of an id sequence."""
        return "".join(self.vocab[int(i)] for i in np.asarray(ids).ravel())


def build_snapshot(num_chars: int = SNAPSHOT_CHARS) -> str:
    """Rebuild a snapshot text from the running Python: topics in sorted key order, joined by a
    blank line, truncated to ``num_chars``. Different Python versions give different text; the
    committed file is the reference."""
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[k] for k in sorted(topics))
    return text[:num_chars]


def load_text(path: str | Path | None = None, *, test_fraction: float = 0.1) -> TextDataset:
    """Load the embedded snapshot (``path=None``) or a UTF-8 file as character ids.

    Raises:
        ValueError: ``test_fraction`` outside (0, 0.5], a text too short to split, a snapshot whose
            hash does not match, or a file that is not UTF-8.
        FileNotFoundError: when ``path`` does not exist.
    """
    if not (0.0 < test_fraction <= 0.5):
        raise ValueError(f"test_fraction must lie in (0, 0.5] (got {test_fraction!r})")
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
        {"source": source, "sha256": hashlib.sha256(raw).hexdigest()},
    )
