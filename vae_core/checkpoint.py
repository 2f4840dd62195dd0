"""One file per model, loaded without running code.

The file is `torch.save` of a plain dict (nanoGPT style) holding only tensors and JSON-like primitives:

    {"format": "latent-lab", "format_version": 1,
     "model_config": {...},            # ModelConfig.to_dict()
     "state_dict": {name: tensor},     # the weights
     "meta": {...}}                    # dataset spec, label names, train config, metrics, history, card

It is read back with `torch.load(weights_only=True)`, whose unpickler refuses every global that is not a tensor
type, so a file crafted to run code on load is refused before anything in it runs. Writes are atomic: a
temporary file in the same folder, fsync, then rename, so a crash mid-save leaves the old file intact.

Loading an untrusted file is bounded (vae_core/budget.py: 256 MB, 2 s) before any work: the file's size; the zip
directory (entries, every record stored uncompressed, sizes consistent, the pickle at most MAX_PICKLE_BYTES);
then, after torch.load has read at most the file's own bytes, the model settings (vae_core/config.py bounds) and
every tensor's shape and dtype against the shapes the settings imply, before the model is built (on the meta
device, taking the loaded tensors: the weights are held once). Every failure is one CheckpointError.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import tempfile
from pathlib import Path
from typing import BinaryIO

import torch

from vae_core.budget import check_stored_records, zip_members
from vae_core.config import MAX_PARAMETERS, ModelConfig, state_shapes
from vae_core.errors import CheckpointError, UserInputError
from vae_core.importers import convert_state_dict, imported_data_meta, is_bare_state_dict
from vae_core.models import LatentVariableModel

FORMAT = "latent-lab"
FORMAT_VERSION = 1
# The pickle (data.pkl: the metadata and the tensors' descriptions) is read by torch's pure-Python restricted
# unpickler at up to about 1 µs per byte, and its objects can take up to ~25x its size in memory (measured with
# lists of empty lists): 1 MiB is at most ~1 s and ~30 MB. A 60-epoch model's pickle is 11 kB; 1 MiB holds the
# history of several thousand epochs.
MAX_PICKLE_BYTES = 1 << 20
# The largest checkpoint: MAX_PARAMETERS float32 weights (64 MB) plus the pickle and the zip's own records.
MAX_CHECKPOINT_BYTES = 4 * MAX_PARAMETERS + MAX_PICKLE_BYTES + (1 << 20)
MAX_RECORDS = 1024  # zip records in a checkpoint: 2 per layer and 5 of torch's own; ours have at most ~40


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
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()},
        # A JSON round trip turns numpy scalars and tuples into primitives the safe loader accepts.
        "meta": json.loads(json.dumps(meta or {}, default=_json_default)),
    }
    if getattr(model, "onnx_files", None):  # an imported ONNX pair: its graphs are its weights
        from vae_core.onnx_import import stored_files

        payload["onnx"] = stored_files(model)
    return payload


def load_checkpoint(source: str | os.PathLike | bytes | BinaryIO,
                    input_shape: tuple[int, int, int] | None = None) -> tuple[LatentVariableModel, dict]:
    """(model in eval mode on the CPU, meta) from a path, bytes or a binary file; CheckpointError if refused.

    Bounded before any work (see the module's docstring): a hostile file is refused from its size, its zip
    directory, its settings and its tensors' declared shapes, at a cost of milliseconds and a few MB.
    A bare state_dict of a plain MLP VAE trained elsewhere is imported (vae_core.importers); `input_shape`
    (C, H, W) is its image shape when the input size is not a square greyscale image.
    """
    payload = _load_payload(_read_bytes(source))
    if is_bare_state_dict(payload):  # torch.save(model.state_dict(), path) from someone's own training script
        payload = imported_payload(payload, input_shape)
    return model_from_payload(payload)


def _load_payload(data: bytes) -> object:
    """What torch.save wrote, loaded weights-only after the size and archive checks."""
    if len(data) > MAX_CHECKPOINT_BYTES:
        raise CheckpointError(f"the file is {len(data) / 2**20:.0f} MB; a Latent Lab checkpoint is at most "
                              f"{MAX_CHECKPOINT_BYTES // 2**20} MB")
    if not data.startswith(b"PK\x03\x04"):
        raise CheckpointError("not a Latent Lab checkpoint (not a torch.save zip file): choose a .pt file saved by "
                              "Latent Lab, or a state_dict saved with torch.save(model.state_dict(), path)")
    check_checkpoint_archive(data)
    try:
        return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise CheckpointError("refused: the file contains objects other than weights and plain data "
                              f"(it could run code when loaded), so nothing in it was run. Detail: {_first_line(exc)}") from None
    except Exception as exc:  # RuntimeError, EOFError, BadZipFile, ValueError, KeyError, OverflowError, MemoryError...
        raise CheckpointError(f"the checkpoint is corrupt or truncated and cannot be read: {_first_line(exc)}") from None


def check_checkpoint_archive(data: bytes, name: str = "the checkpoint") -> None:
    """Refuse, from the zip directory alone, a checkpoint that would cost more to read than its own bytes:
    too many records, compressed or encrypted records, sizes that do not add up, an oversized pickle."""
    archive = zip_members(data, name, max_entries=MAX_RECORDS, max_directory_bytes=MAX_RECORDS * 512,
                          error=CheckpointError, remedy="not a checkpoint Latent Lab wrote")
    with archive:
        infos = check_stored_records(archive, name, max_total_bytes=len(data), error=CheckpointError)
    for info in infos:
        if info.filename.endswith("/data.pkl") and info.file_size > MAX_PICKLE_BYTES:
            raise CheckpointError(f"the checkpoint's metadata is {info.file_size / 2**20:.1f} MiB, over the "
                                  f"{MAX_PICKLE_BYTES >> 20} MiB limit: not a checkpoint Latent Lab wrote")


def model_from_payload(payload: object) -> tuple[LatentVariableModel, dict]:
    """Check a loaded payload and build its model; CheckpointError if anything does not fit.

    The settings are validated (with their upper bounds) and every tensor's shape and dtype checked against the
    shapes the settings imply before the model is built; the model is built on the meta device and takes the
    checked tensors, so nothing but the file's own weights is allocated.
    """
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
    except Exception as exc:  # a value no check foresaw: still one clear message
        raise CheckpointError(f"the checkpoint's model config is invalid ({type(exc).__name__}: {_first_line(exc)})"
                              ) from None
    if config.arch == "onnx":
        return _onnx_model(payload, config, state_dict), meta
    weights = _check_weights_fit(config, state_dict)
    try:
        with torch.device("meta"):
            model = LatentVariableModel(config)  # no memory: the parameters are placeholders
        model.load_state_dict(weights, strict=True, assign=True)
    except Exception as exc:
        raise CheckpointError(f"the weights cannot be loaded into the model ({type(exc).__name__}: "
                              f"{_first_line(exc)}): the file was edited or is damaged") from None
    model.eval()
    return model, meta


def _onnx_model(payload: dict, config: ModelConfig, state_dict: dict):
    """The model of a checkpoint holding an ONNX encoder and decoder pair (vae_core.onnx_import), checked again."""
    from vae_core.onnx_import import model_from_stored

    if state_dict:
        raise CheckpointError("the checkpoint holds an ONNX pair and PyTorch weights at once: the file was edited or "
                              "is damaged")
    return model_from_stored(payload.get("onnx"), config).eval()


def imported_payload(state_dict: dict, input_shape: tuple[int, int, int] | None = None) -> dict:
    """A checkpoint payload for a recognised plain MLP VAE's state_dict (vae_core.importers); its meta says where
    it came from and what was assumed."""
    config, weights, recognised = convert_state_dict(state_dict, input_shape)
    meta = {"name": f"Imported VAE, z={config.latent_dim}", "imported": recognised,
            "about": f"Imported from a PyTorch state_dict ({recognised['layout']}). Assumed: {recognised['assumed']}.",
            **imported_data_meta(config.input_shape)}
    return {"format": FORMAT, "format_version": FORMAT_VERSION, "model_config": config.to_dict(),
            "state_dict": weights, "meta": meta}


def _check_weights_fit(config: ModelConfig, state_dict: dict) -> dict[str, torch.Tensor]:
    """The weights as contiguous float32 CPU tensors with exactly the names and shapes `config` implies; raises
    CheckpointError naming the first misfits. Shapes come from the settings' arithmetic, not from a built model."""
    expected = state_shapes(config)
    names = [k for k in state_dict if isinstance(k, str)]
    if len(names) != len(state_dict):
        raise CheckpointError("the checkpoint's weights have names that are not text: the file was edited or is damaged")
    missing = sorted(set(expected) - set(names))
    unexpected = sorted(set(names) - set(expected))
    wrong = [f"{k} {tuple(state_dict[k].shape)} != {shape}"
             for k, shape in expected.items() if k in state_dict and tuple(state_dict[k].shape) != shape]
    if missing or unexpected or wrong:
        detail = "; ".join(filter(None, [
            f"missing {', '.join(missing[:3])}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}" if unexpected else "",
            f"wrong shape {', '.join(wrong[:3])}" if wrong else "",
        ]))
        raise CheckpointError(f"the weights do not fit the model config ({detail}): the file was edited or is damaged")
    bad_dtype = [f"{k} ({v.dtype})" for k, v in state_dict.items() if v.dtype != torch.float32 or v.device.type != "cpu"]
    if bad_dtype:
        raise CheckpointError(f"the weights must be float32, got {', '.join(bad_dtype[:3])}: the file was edited "
                              "or is damaged")
    out = {}
    for k, v in state_dict.items():
        if not torch.isfinite(v).all():
            raise CheckpointError(f"the weights contain NaN or infinite values ({k}): the model is unusable")
        # A tensor that is a view (odd strides, a shared or larger storage) gets its own exact storage.
        exact = v.is_contiguous() and v.untyped_storage().nbytes() == 4 * v.numel() and v.storage_offset() == 0
        out[k] = v if exact else v.clone(memory_format=torch.contiguous_format)
    return out


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
