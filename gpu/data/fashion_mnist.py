"""Fashion-MNIST from the original IDX files (Debian package ``dataset-fashion-mnist``)."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from gpu.data._common import Dataset, check_subset

#: Where the Debian package ``dataset-fashion-mnist`` installs the files.
DEFAULT_ROOT = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "x_train": "train-images-idx3-ubyte.gz",
    "y_train": "train-labels-idx1-ubyte.gz",
    "x_test": "t10k-images-idx3-ubyte.gz",
    "y_test": "t10k-labels-idx1-ubyte.gz",
}
INSTALL_HINT = (
    "install the Debian package: sudo apt-get install dataset-fashion-mnist "
    f"(files in {DEFAULT_ROOT}), or pass root= a directory holding {sorted(FILES.values())}"
)
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def parse_idx(raw: bytes) -> np.ndarray:
    """Parse one IDX file (LeCun's MNIST format): magic ``00 00 <type> <ndim>``, big-endian int32
    dimensions, then the data in row-major order.

    Raises:
        ValueError: on a bad magic number, unknown type code or truncated data.
    """
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError("raw is not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"raw has unknown IDX type code 0x{code:02x}")
    dims = tuple(int(d) for d in np.frombuffer(raw, ">i4", count=ndim, offset=4))
    dtype = np.dtype(_IDX_DTYPES[code])
    count = int(np.prod(dims)) if dims else 1
    offset = 4 + 4 * ndim
    if len(raw) - offset != count * dtype.itemsize:
        raise ValueError(f"raw holds {len(raw) - offset} data bytes, IDX header says {count}")
    return (
        np.frombuffer(raw, dtype, count=count, offset=offset)
        .reshape(dims)
        .astype(dtype.newbyteorder("="))
    )


def load_fashion_mnist(
    root: str | Path | None = None, *, n_train: int | None = None, n_test: int | None = None
) -> Dataset:
    """Load Fashion-MNIST: 60000 train, 10000 test 28x28 images in [0, 1], shape ``(N, 28, 28, 1)``.

    The split is the original one; ``n_train``/``n_test`` keep the first examples of each (a fixed
    subset for quick runs).

    Raises:
        FileNotFoundError: when a file is missing, with the command that installs it.
        ValueError: on a bad subset size or a corrupt file.
    """
    base = DEFAULT_ROOT if root is None else Path(root)
    missing = [name for name in FILES.values() if not (base / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"Fashion-MNIST not found in {base} (missing {missing}): {INSTALL_HINT}"
        )
    arrays = {k: parse_idx(gzip.decompress((base / f).read_bytes())) for k, f in FILES.items()}
    ntr = check_subset("n_train", n_train, len(arrays["y_train"]))
    nte = check_subset("n_test", n_test, len(arrays["y_test"]))
    return Dataset.build(
        "fashion_mnist",
        arrays["x_train"][:ntr, ..., None] / np.float32(255.0),
        arrays["y_train"][:ntr],
        arrays["x_test"][:nte, ..., None] / np.float32(255.0),
        arrays["y_test"][:nte],
        10,
        {"source": str(base), "n_train": ntr, "n_test": nte},
    )
