"""Atomic checkpoints of any pytree of arrays (params, optimizer state, step, key, history) as NPZ.

The file holds the leaves in ``tree_util`` order plus a manifest of their shapes and dtypes; a
restore needs a template of the same structure (the freshly initialised state) and checks it
leaf by leaf.
Writes go to a temporary file in the same directory, which is then renamed over the target
(``os.replace`` is atomic on POSIX), so an interrupted write never leaves a torn checkpoint.

A run fingerprint (:func:`tree_digest`, :func:`check_fingerprint`) stored beside the arrays lets a
trainer refuse to resume a checkpoint written by a different run.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np

_MANIFEST = "__manifest__"
FINGERPRINT = "fingerprint"


def save_checkpoint(
    path: str | Path, tree: Any, extra: dict[str, np.ndarray] | None = None
) -> Path:
    """Write ``tree`` (and optional named host arrays ``extra``) to ``path`` atomically.

    Raises:
        ValueError: if a leaf is not an array (e.g. a typed PRNG key: store raw ``uint32`` keys).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    leaves = jax.tree_util.tree_leaves(tree)
    arrays: dict[str, np.ndarray] = {}
    manifest = []
    for i, leaf in enumerate(leaves):
        if jax.dtypes.issubdtype(getattr(leaf, "dtype", None), jax.dtypes.prng_key):
            raise ValueError("tree holds a typed PRNG key: store jax.random.key_data(key) instead")
        a = np.asarray(jax.device_get(leaf))
        arrays[f"leaf_{i:06d}"] = a
        manifest.append([list(a.shape), a.dtype.str])
    for k, v in (extra or {}).items():
        arrays[f"extra_{k}"] = np.asarray(v)
    arrays[_MANIFEST] = np.frombuffer(json.dumps(manifest).encode(), dtype=np.uint8)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            np.savez(fh, **arrays)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, template: Any) -> tuple[Any, dict[str, np.ndarray]]:
    """Read a checkpoint written by :func:`save_checkpoint` into the structure of ``template``.

    Returns:
        ``(tree, extra)``: the tree with numpy leaves, and the extra host arrays.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: when the file does not match ``template`` (leaf count, shapes or dtypes).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    leaves, treedef = jax.tree_util.tree_flatten(template)
    with np.load(path, allow_pickle=False) as npz:
        manifest = json.loads(bytes(npz[_MANIFEST]).decode())
        if len(manifest) != len(leaves):
            raise ValueError(
                f"checkpoint {path} holds {len(manifest)} arrays, template has {len(leaves)}"
            )
        out = []
        for i, leaf in enumerate(leaves):
            a = npz[f"leaf_{i:06d}"]
            want = (tuple(np.shape(leaf)), np.dtype(getattr(leaf, "dtype", np.asarray(leaf).dtype)))
            if (a.shape, a.dtype) != want:
                raise ValueError(f"checkpoint {path}: leaf {i} is {a.shape} {a.dtype}, want {want}")
            out.append(a)
        extra = {k[len("extra_") :]: npz[k] for k in npz.files if k.startswith("extra_")}
    return jax.tree_util.tree_unflatten(treedef, out), extra


def _node_types(tree: Any) -> list[str]:
    """Type names of the tuple nodes (optax states are NamedTuples) in traversal order."""
    names: list[str] = []

    def visit(node: Any) -> None:
        if isinstance(node, tuple):
            names.append(type(node).__qualname__)
            for child in node:
                visit(child)
        elif isinstance(node, Mapping):
            for child in node.values():
                visit(child)

    visit(tree)
    return names


def tree_digest(tree: Any, *, values: bool = True) -> str:
    """SHA-256 of a pytree: the types of its tuple nodes, the path, shape and dtype of every leaf
    and, with ``values``, the leaves' bytes. Stable across processes (no object ids).

    Example:
        >>> import numpy as np
        >>> tree_digest({"a": np.zeros(2)}) == tree_digest({"a": np.zeros(2)})
        True
        >>> tree_digest({"a": np.zeros(2)}) == tree_digest({"a": np.ones(2)})
        False
    """
    h = hashlib.sha256(repr(_node_types(tree)).encode())
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        a = np.asarray(jax.device_get(leaf))
        h.update(f"{jax.tree_util.keystr(path)}|{a.shape}|{a.dtype.str}|".encode())
        if values:
            h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()


def encode_fingerprint(fingerprint: Mapping[str, str]) -> np.ndarray:
    """A fingerprint (component name -> string) as the uint8 array stored in a checkpoint.

    The array holds the UTF-8 bytes of the JSON object with sorted keys, so equal fingerprints
    give equal arrays whatever the order of their components. Pass it to :func:`save_checkpoint`
    as ``extra={FINGERPRINT: encode_fingerprint(fp)}``; :func:`check_fingerprint` reads it back.

    Example:
        >>> a = encode_fingerprint({"seed": "0", "task": "digits"})
        >>> a.dtype, bytes(a).decode()
        (dtype('uint8'), '{"seed": "0", "task": "digits"}')
        >>> np.array_equal(a, encode_fingerprint({"task": "digits", "seed": "0"}))
        True
    """
    return np.frombuffer(json.dumps(dict(fingerprint), sort_keys=True).encode(), dtype=np.uint8)


def check_fingerprint(path: str | Path, fingerprint: Mapping[str, str]) -> None:
    """Raise ``ValueError`` unless the checkpoint at ``path`` was written by a run with this
    fingerprint; the message names every component that differs.

    Raises:
        FileNotFoundError: when ``path`` does not exist.
        ValueError: a different run, or a checkpoint without a fingerprint.

    Example:
        >>> import tempfile
        >>> path = Path(tempfile.mkdtemp()) / "ckpt.npz"
        >>> fp = {"seed": "0", "task": "digits"}
        >>> _ = save_checkpoint(path, {"w": np.zeros(3)}, {FINGERPRINT: encode_fingerprint(fp)})
        >>> check_fingerprint(path, fp)  # same run: returns None
        >>> check_fingerprint(path, {"seed": "1", "task": "digits"})  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: checkpoint ... different run: seed (checkpoint 0, this run 1); refusing ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} not found")
    with np.load(path, allow_pickle=False) as npz:
        key = f"extra_{FINGERPRINT}"
        if key not in npz.files:
            raise ValueError(
                f"checkpoint {path} has no run fingerprint, so it cannot be matched to this run; "
                "delete it or use another checkpoint_dir"
            )
        stored = json.loads(bytes(npz[key]).decode())
    want = dict(fingerprint)
    diffs = [
        f"{k} (checkpoint {stored.get(k, '<absent>')}, this run {want.get(k, '<absent>')})"
        for k in sorted(set(stored) | set(want))
        if stored.get(k) != want.get(k)
    ]
    if diffs:
        raise ValueError(
            f"checkpoint {path} was written by a different run: {'; '.join(diffs)}; refusing to "
            "resume (use another checkpoint_dir or delete the file)"
        )


def run_fingerprint(
    state: Any,
    task: Any,
    seed: int,
    staleness: Any,
    pass_staleness: bool,
    track: Any,
    run_config: Mapping[str, Any] | None,
) -> dict[str, str]:
    """What identifies a run for checkpoint resume: every component must match to resume.

    ``optimizer`` digests the initial optimizer state (its NamedTuple types, leaf paths, shapes and
    values): it tells optimizers apart, but not hyper-parameters that live only in the update
    function (``optax.adam(1e-3)`` and ``optax.adam(1e-2)`` start from the same state); name those
    in ``run_config``. ``model`` digests the parameter structure only, not the initial values,
    which the checkpoint replaces.

    Returns:
        ``{component: string}`` for ``seed``, ``task``, ``model``, ``optimizer``, ``staleness``,
        ``pass_staleness``, ``track`` and ``run_config``; stored with
        :func:`gpu.checkpoint.encode_fingerprint` and compared by
        :func:`gpu.checkpoint.check_fingerprint`.

    Example:
        >>> import optax
        >>> from flax import nnx
        >>> from gpu.data import load_digits
        >>> from gpu.models import MLP
        >>> from gpu.tasks import classification_task
        >>> from gpu.train import init_state
        >>> task = classification_task(load_digits(), 32)
        >>> def fingerprint(tx, seed=0):
        ...     _, state = init_state(MLP(64, (16,), 10, rngs=nnx.Rngs(seed)), tx, seed)
        ...     return run_fingerprint(state, task, seed, None, False, None, {"lr": 0.1})
        >>> fp = fingerprint(optax.sgd(0.1, 0.9))
        >>> fp["seed"], fp["run_config"]
        ('0', '{"lr": 0.1}')
        >>> fp == fingerprint(optax.sgd(0.1, 0.9))  # the same run, rebuilt
        True
        >>> fp["optimizer"] == fingerprint(optax.adam(1e-3))["optimizer"]
        False
        >>> fp["model"] == fingerprint(optax.sgd(0.1, 0.9), seed=1)["model"]  # structure only
        True
    """
    config = (
        None if run_config is None else json.dumps(dict(run_config), sort_keys=True, default=str)
    )
    tracked = None if track is None else tree_digest((track.leaf, track.flat))[:16]
    return {
        "seed": str(seed),
        "task": f"{task.name} checksum {task.checksum[:16]} batch_size {task.batch_size}",
        "model": tree_digest((state.params, state.rest), values=False)[:16],
        "optimizer": tree_digest(state.opt_state)[:16],
        "staleness": repr(staleness),
        "pass_staleness": str(bool(pass_staleness)),
        "track": str(tracked),
        "run_config": str(config),
    }
