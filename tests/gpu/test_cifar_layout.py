"""CIFAR from a user directory: which variants a directory holds, the layout message, and loading
the standard python-pickle batches (a tiny fake directory, nothing downloaded)."""

from __future__ import annotations

import numpy as np
import pytest

from gpu.data import load_cifar
from gpu.data.cifar import cifar_layout, find_cifar
from tests.gpu._fake_cifar import write_fake_cifar


def test_find_cifar_names_the_variants_present(tmp_path) -> None:
    assert find_cifar(None) == () and find_cifar("") == ()
    assert find_cifar(tmp_path) == ()
    write_fake_cifar(tmp_path, 10, per_batch=4)
    assert find_cifar(tmp_path) == (10,)
    assert find_cifar(tmp_path / "cifar-10-batches-py") == (10,)  # the folder itself
    write_fake_cifar(tmp_path, 100, per_batch=4)
    assert find_cifar(tmp_path) == (10, 100)
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    assert find_cifar(tmp_path) == (100,)  # an incomplete folder does not count


def test_layout_message_names_folder_and_files() -> None:
    assert "cifar-10-batches-py" in cifar_layout(10) and "test_batch" in cifar_layout(10)
    assert "cifar-100-python" in cifar_layout(100) and "train" in cifar_layout(100)
    with pytest.raises(ValueError, match="variant"):
        cifar_layout(20)


@pytest.mark.parametrize("variant", [10, 100])
def test_fake_directory_loads_as_nhwc_in_unit_range(tmp_path, variant) -> None:
    write_fake_cifar(tmp_path, variant, per_batch=6)
    ds = load_cifar(tmp_path, variant)
    n_train = 30 if variant == 10 else 6
    assert ds.x_train.shape == (n_train, 32, 32, 3) and ds.x_test.shape == (6, 32, 32, 3)
    assert ds.num_classes == variant and ds.x_train.min() >= 0.0 and ds.x_train.max() <= 1.0
    assert np.all((ds.y_train >= 0) & (ds.y_train < variant))
