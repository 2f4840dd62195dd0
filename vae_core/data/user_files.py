"""User files: opening a path or an upload within a size limit, and the content hashes (fingerprints) that
tie a model to its data."""
from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

import numpy as np

from vae_core.data.checks import MAX_FILE_BYTES
from vae_core.errors import DataError


def _open_user_data(
    source: str | os.PathLike | BinaryIO, name: str | None, max_bytes: int = MAX_FILE_BYTES
) -> tuple[bytes | None, str | None, str]:
    """(file bytes or None for a directory, absolute path or None for an upload, display name).

    A file over min(MAX_FILE_BYTES, max_bytes) is refused from its size, before it is read.
    """
    limit = min(MAX_FILE_BYTES, max_bytes)
    if isinstance(source, (str, os.PathLike)):
        path = os.path.abspath(os.fspath(source))
        display = name or os.path.basename(path.rstrip(os.sep)) or path
        if os.path.isdir(path):
            return None, path, display
        if not os.path.isfile(path):
            raise DataError(f"file not found: {path!r}: check the path")
        size = os.path.getsize(path)
        if size > limit:
            raise DataError(
                f"{display!r} is {size / 2**20:.0f} MiB, over the {limit >> 20} MiB limit: use a smaller file"
            )
        try:
            with open(path, "rb") as f:
                return f.read(limit + 1), path, display
        except OSError as e:
            raise DataError(f"cannot read {path!r} ({e.strerror}): check the file's permissions") from e
    if not (hasattr(source, "getvalue") or hasattr(source, "read")):
        raise TypeError(f"expected a path or a binary file-like object, got {type(source).__name__}")
    display = os.path.basename(name or getattr(source, "name", None) or "upload") or "upload"
    return _read_upload(source, display, limit), None, display


def _read_upload(file: BinaryIO, display: str, limit: int = MAX_FILE_BYTES) -> bytes:
    """All bytes of an uploaded file-like object (Streamlit's UploadedFile has getvalue()), at most `limit`."""
    if hasattr(file, "getvalue"):
        blob = file.getvalue()
    else:
        if hasattr(file, "seek"):
            file.seek(0)
        blob = file.read(limit + 1)
    if not isinstance(blob, (bytes, bytearray, memoryview)):
        raise DataError(f"{display!r} was not opened in binary mode: pass the uploaded file or open(path, 'rb')")
    if len(blob) > limit:
        raise DataError(f"{display!r} is over the {limit >> 20} MiB limit: use a smaller file")
    return bytes(blob)


def _sha256(blob: bytes) -> str:
    """Hex sha256 of some bytes."""
    return hashlib.sha256(blob).hexdigest()


def _sha256_arrays(*arrays: np.ndarray) -> str:
    """Hex sha256 of arrays' dtypes, shapes and contents (the fingerprint of a built-in set)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.data)
    return h.hexdigest()


def _hash_tree(root: str) -> str:
    """Hex sha256 of every non-ignored file's relative path and content under a directory."""
    h = hashlib.sha256()
    for rel in _walk_files(root):
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        with open(os.path.join(root, rel), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        h.update(b"\0")
    return h.hexdigest()


def _is_ignored(name: str) -> bool:
    """Hidden files and folders and OS clutter (.DS_Store, __MACOSX/, Thumbs.db) are skipped."""
    return name.startswith(".") or name in ("__MACOSX", "Thumbs.db", "desktop.ini")


def _walk_files(root: str) -> list[str]:
    """Sorted '/'-separated relative paths of the non-ignored files under root."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not _is_ignored(d))  # prune, and walk in a fixed order
        rel_dir = os.path.relpath(dirpath, root)
        for f in sorted(filenames):
            if not _is_ignored(f):
                found.append(f if rel_dir == "." else f"{rel_dir}/{f}".replace(os.sep, "/"))
    return sorted(found)
