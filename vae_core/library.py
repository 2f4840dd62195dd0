"""The models a user can pick: the bundled zoo, the ones they trained, the ones they uploaded.

A `ModelEntry` describes one checkpoint whatever its source; its `key` is stable (it goes in shared links):
"zoo/<name>" for the zoo, "mine/<file stem>" for trained models, "upload/<first 12 hex of sha256>" for uploads.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from vae_core.checkpoint import file_sha256, load_checkpoint
from vae_core.config import ModelConfig
from vae_core.errors import CheckpointError

SOURCES = ("zoo", "mine", "upload")
SOURCE_LABELS = {"zoo": "bundled", "mine": "trained by you", "upload": "uploaded"}


@dataclass(frozen=True, eq=False)
class ModelEntry:
    key: str
    title: str
    source: str  # zoo | mine | upload
    sha256: str
    config: ModelConfig
    meta: dict = field(repr=False)
    path: Path | None = None

    @property
    def dataset(self) -> str:
        return self.meta.get("dataset", "unknown data")

    @property
    def card(self) -> dict:
        """The zoo's model card, or the trained model's last test metrics."""
        return self.meta.get("card") or self.meta.get("metrics", {})

    @property
    def about(self) -> str:
        return self.meta.get("about", "")

    @property
    def label(self) -> str:
        return f"{self.title} · {SOURCE_LABELS[self.source]}"


def entry_from_bytes(data: bytes, source: str, *, key: str | None = None, path: Path | None = None,
                     fallback_title: str = "", input_shape: tuple[int, int, int] | None = None
                     ) -> tuple[ModelEntry, object]:
    """(entry, model) for a checkpoint's bytes; CheckpointError if it is refused. input_shape (C, H, W): the image
    shape of a model imported from a bare state_dict whose input size is not a square greyscale image."""
    model, meta = load_checkpoint(data, input_shape=input_shape)
    sha = file_sha256(data)
    title = str(meta.get("name") or fallback_title or model.config.label)
    key = key or f"upload/{sha[:12]}"
    return ModelEntry(key, title, source, sha, model.config, meta, path), model


def entry_from_onnx_pair(encoder: bytes, decoder: bytes, source: str, *, file_names: tuple[str, str],
                         input_shape: tuple[int, int, int] | None = None, decoder_output: str = "auto"
                         ) -> tuple[ModelEntry, object]:
    """(entry, model) for an ONNX encoder and decoder pair (vae_core.onnx_import); CheckpointError if refused. Its
    sha256 (the key of everything cached for it) covers both files and the choices that change the model."""
    from vae_core.onnx_import import imported_pair

    model, meta = imported_pair(encoder, decoder, file_names=file_names, input_shape=input_shape,
                                decoder_output=decoder_output)
    sha = onnx_pair_sha256(encoder, decoder, input_shape, decoder_output)
    return ModelEntry(f"upload/{sha[:12]}", str(meta["name"]), source, sha, model.config, meta), model


def onnx_pair_sha256(encoder: bytes, decoder: bytes, input_shape, decoder_output: str) -> str:
    """The identity of an imported ONNX pair: both files and the choices that change the model."""
    import hashlib

    return hashlib.sha256(f"{file_sha256(encoder)}:{file_sha256(decoder)}:{input_shape}:{decoder_output}".encode()
                          ).hexdigest()


def slug(text: str) -> str:
    """A file-name-safe, URL-safe version of a title."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:60] or "model"


def unique_path(folder: Path, stem: str, suffix: str = ".pt") -> Path:
    """folder/stem.pt, or stem-2.pt, stem-3.pt ... if taken."""
    path = folder / f"{stem}{suffix}"
    n = 2
    while path.exists():
        path = folder / f"{stem}-{n}{suffix}"
        n += 1
    return path


def checkpoint_files(folder: Path) -> list[Path]:
    """The .pt files of a folder, oldest first (temporary files of unfinished saves are left out)."""
    if not folder.is_dir():
        return []
    files = [p for p in folder.glob("*.pt") if not p.name.startswith(".")]
    return sorted(files, key=lambda p: p.stat().st_mtime)


__all__ = ["ModelEntry", "entry_from_bytes", "entry_from_onnx_pair", "onnx_pair_sha256", "slug", "unique_path", "checkpoint_files", "CheckpointError",
           "SOURCES", "SOURCE_LABELS"]
