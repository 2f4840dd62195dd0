"""One file per model, loaded without running code.

The file is `torch.save` of a plain dict (nanoGPT style) holding only tensors and JSON-like primitives:

    {"format": "latent-lab", "format_version": 1,
     "model_config": {...},            # ModelConfig.to_dict()
     "state_dict": {name: tensor},     # the weights
     "meta": {...}}                    # dataset spec, label names, train config, metrics, history, card

It is read back with `torch.load(weights_only=True)`, whose unpickler refuses every global that is not a tensor
type, so a file crafted to run code on load is refused before anything in it runs. Writes are atomic: a
temporary file in the same folder, fsync, then rename, so a crash mid-save leaves the old file intact.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
import zipfile
from pathlib import Path
from typing import BinaryIO

import torch

from vae_core.config import ModelConfig
from vae_core.errors import CheckpointError, UserInputError
from vae_core.models import LatentVariableModel

FORMAT = "latent-lab"
FORMAT_VERSION = 1
MAX_CHECKPOINT_BYTES = 200 * 1024 * 1024  # far above any model this app trains; refuses absurd uploads early


def save_checkpoint(path: str | os.PathLike, model: LatentVariableModel, meta: dict | None = None) -> Path:
    """Write model and metadata to `path` atomically; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = checkpoint_payload(model, meta)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(payload, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_name, path)  # atomic on POSIX: readers see the old file or the new one, never half
        _fsync_dir(path.parent)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return path


def checkpoint_bytes(model: LatentVariableModel, meta: dict | None = None) -> bytes:
    """The checkpoint as bytes (for downloads)."""
    buffer = io.BytesIO()
    torch.save(checkpoint_payload(model, meta), buffer)
    return buffer.getvalue()


def checkpoint_payload(model: LatentVariableModel, meta: dict | None) -> dict:
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        # A JSON round trip turns numpy scalars and tuples into primitives the safe loader accepts.
        "meta": json.loads(json.dumps(meta or {}, default=_json_default)),
    }


def load_checkpoint(source: str | os.PathLike | bytes | BinaryIO) -> tuple[LatentVariableModel, dict]:
    """(model in eval mode on the CPU, meta) from a path, bytes or a binary file; CheckpointError if refused."""
    data = _read_bytes(source)
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"the file is {len(data) / 2**20:.0f} MB; a Latent Lab checkpoint is at most "
                              f"{MAX_CHECKPOINT_BYTES // 2**20} MB")
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError("not a Latent Lab checkpoint (not a torch.save zip file): choose a .pt file saved by Latent Lab")
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError("refused: the file contains objects other than weights and plain data "
                              f"(it could run code when loaded), so nothing in it was run. Detail: {_first_line(exc)}") from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise CheckpointError(f"the checkpoint is corrupt or truncated and cannot be read: {_first_line(exc)}") from None
    return model_from_payload(payload)


def model_from_payload(payload: object) -> tuple[LatentVariableModel, dict]:
    """Check a loaded payload and build its model; CheckpointError if anything does not fit."""
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError("not a Latent Lab checkpoint (the format marker is missing)")
    version = payload.get("format_version")
    if version != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint format version {version!r} is not supported (this Latent Lab reads "
                              f"version {FORMAT_VERSION}): retrain or re-save the model with this version")
    state_dict, meta = payload.get("state_dict"), payload.get("meta", {})
    if not isinstance(state_dict, dict) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise CheckpointError("the checkpoint's weights are missing or not tensors")
    if not isinstance(meta, dict):
        raise CheckpointError("the checkpoint's metadata is not a dict")
    try:
        config = ModelConfig.from_dict(payload.get("model_config"))
    except UserInputError as exc:
        raise CheckpointError(f"the checkpoint's model config is invalid: {exc}") from None
    model = LatentVariableModel(config)
    _check_weights_fit(model, state_dict)
    model.load_state_dict(state_dict)
    model.eval()
    return model, meta


def _check_weights_fit(model: LatentVariableModel, state_dict: dict) -> None:
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state_dict))
    unexpected = sorted(set(state_dict) - set(expected))
    wrong = [f"{k} {tuple(state_dict[k].shape)} != {tuple(v.shape)}"
             for k, v in expected.items() if k in state_dict and state_dict[k].shape != v.shape]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
            f"wrong shape {', '.join(wrong[:3])}" if wrong else "",
        ]))
        raise CheckpointError(f"the weights do not fit the model config ({detail}): the file was edited or is damaged")
    for k, v in state_dict.items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise CheckpointError(f"the weights contain NaN or infinite values ({k}): the model is unusable")


def file_sha256(source: str | os.PathLike | bytes) -> str:
    """Hex sha256 of a file's content (the cache key of a loaded model)."""
    data = source if isinstance(source, (bytes, bytearray)) else Path(source).read_bytes()
    return hashlib.sha256(data).hexdigest()


def _read_bytes(source) -> bytes:
    if isinstance(source, (bytes, bytearray)):
        return bytes(source)
    if hasattr(source, "getvalue"):
        return source.getvalue()
    if hasattr(source, "read"):
        return source.read(MAX_CHECKPOINT_BYTES + 1)
    path = Path(source)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint file at {path}: check the path")
    if path.stat().st_size > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"{path.name} is {path.stat().st_size / 2**20:.0f} MB; a Latent Lab checkpoint is "
                              f"at most {MAX_CHECKPOINT_BYTES // 2**20} MB")
    return path.read_bytes()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__


def _json_default(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"{type(value).__name__} cannot be stored in checkpoint metadata")


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
