"""The entry points: load any source by id or path, and reload the split a checkpoint names from its recipe."""
from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

from vae_core.data.builtin import BUILTIN_SOURCES, _load_builtin
from vae_core.data.checks import MAX_SIDE, _check_int, _check_native_size, _check_split_settings, _max_bytes
from vae_core.data.image_folders import _folder_split, load_image_folder
from vae_core.data.npz import _npz_split, load_npz
from vae_core.data.splits import DataSplit
from vae_core.data.user_files import _hash_tree, _open_user_data, _sha256
from vae_core.errors import DataError


def load_data(
    source: str | os.PathLike,
    *,
    seed: int = 0,
    image_size: int | None = None,
    test_fraction: float = 0.2,
    cache_dir: str | None = None,
    max_bytes: int | None = None,
) -> DataSplit:
    """Load a built-in data set by id, or a user .npz file, .zip or folder by path, split by `seed`.

    max_bytes: the memory (bytes) a user file's load may take by the estimate, default ESTIMATE_LIMIT_BYTES.
    """
    if isinstance(source, str) and source in BUILTIN_SOURCES:
        return _load_builtin(source, seed=seed, image_size=image_size, test_fraction=test_fraction, cache_dir=cache_dir)
    path = os.fspath(source)
    if path.lower().endswith(".npz"):
        split = load_npz(path, seed=seed, test_fraction=test_fraction, max_bytes=max_bytes)
        _check_native_size(split.name, *split.input_shape[1:], image_size)
        return split
    if path.lower().endswith(".zip") or os.path.isdir(path):
        return load_image_folder(path, image_size=image_size or 32, seed=seed, test_fraction=test_fraction,
                                 max_bytes=max_bytes)
    known = ", ".join(repr(s) for s in BUILTIN_SOURCES)
    problem = "no such file or folder" if not os.path.exists(path) else "not a .npz file, .zip or folder"
    raise DataError(
        f"unknown data source {path!r} ({problem}): use one of {known}, "
        "or the path of a .npz file, a .zip of class folders or a folder of class folders"
    )


def load_from_spec(
    spec: dict,
    *,
    file: BinaryIO | None = None,
    cache_dir: str | None = None,
    allow_paths: bool = False,
    max_bytes: int | None = None,
) -> DataSplit:
    """Reload the split a checkpoint was trained on; refuse a user file that is missing or changed.

    A spec has "source" (a built-in id, "npz" or "image_folder"), "name", "seed", "test_fraction",
    "image_size" (pixels) and "fingerprint" (sha256 of the file's bytes, of a folder's files, or of a
    built-in set's arrays); user sources add "path" (absolute, or None for an upload).

    No path written in a spec is ever opened unless the caller passes allow_paths=True, which only a caller
    that trusts the spec may do (one it wrote itself, never one read from an uploaded or downloaded
    checkpoint): a checkpoint is untrusted, and its path could name /dev/zero, a FIFO, another user's
    files or a folder of links. Built-in data comes from its name alone. User data comes from `file` (the
    same bytes, checked against the fingerprint); without it the spec is refused with a message that says
    to provide the file.
    """
    source, seed, test_fraction, image_size, fingerprint = _parse_spec(spec)
    if source in BUILTIN_SOURCES:
        split = _load_builtin(
            source, seed=seed, image_size=image_size, test_fraction=test_fraction, cache_dir=cache_dir
        )
        if fingerprint is not None and split.spec["fingerprint"] != fingerprint:
            raise DataError(
                f"the built-in data set {source!r} differs from the one this model was trained on "
                "(made by another version of the library): train the model again"
            )
        return split

    path, name = spec.get("path"), os.path.basename(str(spec.get("name") or "data"))[:200] or "data"
    if path is not None and not isinstance(path, str):
        raise DataError(f"the data recipe has a malformed path {str(path)[:100]!r}: train the model again")
    if file is None and (path is None or not allow_paths):
        if path is None:
            raise DataError(
                f"the model was trained on the uploaded file {name!r}: upload {name!r} again to reload its data"
            )
        raise DataError(
            f"the model was trained on the file {name!r}, which is not opened from the path the checkpoint names "
            f"(paths in model files are never followed): provide {name!r} itself (upload it, or pass --data)"
        )
    if file is None and not os.path.exists(path):
        raise DataError(
            f"the data file {path!r} the model was trained on is missing: put it back, or train a new model"
        )
    _check_split_settings(seed, test_fraction)
    limit = _max_bytes(max_bytes)
    blob, abs_path, name = _open_user_data(file if file is not None else path, name, limit)
    actual = _sha256(blob) if blob is not None else _hash_tree(abs_path)
    if actual != fingerprint:
        raise DataError(
            f"the data {name!r} changed since the model was trained (its content hash differs): "
            "restore the original file, or train a new model on the new data"
        )
    if source == "npz":
        if blob is None:
            raise DataError(f"{name!r} is a folder, but the model was trained on a .npz file: give the .npz file")
        return _npz_split(blob, path=abs_path, name=name, seed=seed, test_fraction=test_fraction, max_bytes=limit)
    _check_int("image_size", image_size, 4, MAX_SIDE)
    return _folder_split(blob, abs_path, name, image_size=image_size, seed=seed, test_fraction=test_fraction,
                         max_bytes=limit)


def spec_cache_key(spec: dict, file: bytes | None = None) -> str:
    """A cache key for the data of `spec` loaded with `file` (bytes or None): the spec and the sha256 of the bytes
    actually given. A key from the spec alone would hand data loaded from one user's upload to anyone holding a
    checkpoint that names its fingerprint (issue 15, finding 11)."""
    import json

    content = hashlib.sha256(bytes(file)).hexdigest() if file is not None else "no-file"
    return json.dumps({"spec": spec, "file_sha256": content}, sort_keys=True, default=str)


def _parse_spec(spec: dict) -> tuple[str, int, float, int | None, str | None]:
    """Check a stored spec's fields: (source, seed, test_fraction, image_size, fingerprint)."""
    if not isinstance(spec, dict) or "source" not in spec:
        raise DataError("the data recipe is malformed (no 'source'): train the model again")
    source = spec["source"]
    if source not in BUILTIN_SOURCES and source not in ("npz", "image_folder"):
        raise DataError(f"the data recipe names an unknown source {source!r}: train the model again")
    if source not in BUILTIN_SOURCES and not isinstance(spec.get("fingerprint"), str):
        raise DataError("the data recipe has no content hash for its file: train the model again")
    return (
        source,
        spec.get("seed", 0),
        spec.get("test_fraction", 0.2),
        spec.get("image_size"),
        spec.get("fingerprint"),
    )
