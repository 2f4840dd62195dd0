"""Hostile files for the cost-budget tests (tests/test_budget.py, tests/test_fuzz.py), and a measuring harness.

Each `write_*` function writes one file that used to cost the server far more than its size (issue 15's findings)
into a folder and returns its path. `measure(kind, path)` loads it in a fresh Python process and reports what the
load cost: CPU seconds, peak extra memory (VmHWM after minus VmRSS before, with the peak reset just before the
load), how many bytes zipfile inflated, whether torch.load ran, whether a model was built, how many pixels were
decoded, and the error it raised. Run directly to print the figures of every hostile file:

    .venv/bin/python tests/hostile_files.py            # a table of every file in HOSTILE
    .venv/bin/python tests/hostile_files.py measure checkpoint some.pt
"""
from __future__ import annotations

import collections
import io
import json
import os
import pickle
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from vae_core.checkpoint import checkpoint_bytes, checkpoint_payload  # noqa: E402
from vae_core.config import ModelConfig, model_config_for  # noqa: E402
from vae_core.models import LatentVariableModel, build_model  # noqa: E402

MB = 2**20


# -- building blocks: a torch.save zip written by hand, so that it can lie -------------------------------------------
class FakeStorage:
    """A storage reference in a crafted pickle: record `key`, declared to hold `numel` elements of storage_type."""

    def __init__(self, key: str, numel: int, storage_type: str = "FloatStorage"):
        self.key, self.numel, self.storage_type = key, numel, storage_type


class FakeTensor:
    """A tensor in a crafted pickle: rebuilt by torch._utils._rebuild_tensor_v2 from a FakeStorage."""

    def __init__(self, storage: FakeStorage, size, stride=None, offset: int = 0):
        self.storage, self.size, self.offset = storage, tuple(size), offset
        if stride is None:
            stride, step = [], 1
            for n in reversed(self.size):
                stride.insert(0, step)
                step *= n
        self.stride = tuple(stride)

    def __reduce__(self):
        return (torch._utils._rebuild_tensor_v2,
                (self.storage, self.offset, self.size, self.stride, False, collections.OrderedDict()))


class _Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, FakeStorage):
            return ("storage", getattr(torch, obj.storage_type), obj.key, "cpu", obj.numel)
        return None


def torch_zip(path: Path, payload, records: dict[str, bytes | tuple[int, int]], *,
              compression: int = zipfile.ZIP_STORED, level: int | None = None) -> Path:
    """Write a torch.save-style zip: data.pkl from `payload` (FakeTensor/FakeStorage allowed), then each record,
    given as bytes or as (zero bytes, chunk size) streamed so that a huge record costs no memory to write."""
    buffer = io.BytesIO()
    _Pickler(buffer, protocol=2).dump(payload)
    with zipfile.ZipFile(path, "w", compression=compression, compresslevel=level) as z:
        z.writestr("archive/data.pkl", buffer.getvalue(), compress_type=zipfile.ZIP_STORED)
        z.writestr("archive/byteorder", "little", compress_type=zipfile.ZIP_STORED)
        for key, content in records.items():
            if isinstance(content, tuple):
                total, chunk = content
                with z.open(f"archive/data/{key}", "w", force_zip64=total > 2**31) as f:
                    zeros = bytes(chunk)
                    for start in range(0, total, chunk):
                        f.write(zeros[: min(chunk, total - start)])
            else:
                z.writestr(f"archive/data/{key}", content)
        z.writestr("archive/version", "3\n", compress_type=zipfile.ZIP_STORED)
    return path


def small_model(**settings):
    return build_model(model_config_for((1, 8, 8), 10, latent_dim=2, hidden=(8,), **settings), seed=0)


def small_payload(**settings) -> dict:
    return checkpoint_payload(small_model(**settings), {"name": "small"})


def unchecked_config(**fields) -> ModelConfig:
    """A ModelConfig built without its validation: settings no valid file may hold (for making hostile files)."""
    config = object.__new__(ModelConfig)
    for name, value in {**ModelConfig().to_dict(), **fields}.items():
        object.__setattr__(config, name, tuple(value) if isinstance(value, list) else value)
    return config


# -- checkpoints ---------------------------------------------------------------------------------------------------
def write_pt_wide_mlp(folder: Path) -> Path:
    """Finding 1: 1.5 kB, declares hidden=[8192]*3 and holds no weights (the model used to be built: 1.75 GB)."""
    payload = {"format": "latent-lab", "format_version": 1, "meta": {},
               "model_config": {**ModelConfig().to_dict(), "hidden": [8192] * 3}, "state_dict": {}}
    path = folder / "wide_mlp.pt"
    torch.save(payload, path)
    return path


def write_pt_many_parameters(folder: Path) -> Path:
    """Widths and depth each within bounds, 3x64x64 with eight 4096-unit layers: ~200 M parameters, no weights."""
    payload = {"format": "latent-lab", "format_version": 1, "meta": {}, "state_dict": {},
               "model_config": {**ModelConfig().to_dict(), "input_shape": [3, 64, 64], "hidden": [4096] * 8}}
    path = folder / "many_parameters.pt"
    torch.save(payload, path)
    return path


def write_pt_huge_side_conv(folder: Path) -> Path:
    """Finding 1: a *valid* conv checkpoint (all weights present, right shapes) for 4096x4096 images, ~20 kB.
    Decoding 8 samples of it used to take 5.9 GB."""
    config = unchecked_config(arch="conv", input_shape=(1, 4096, 4096), latent_dim=2, conv_channels=(1,) * 6,
                              conv_fc=1)
    model = LatentVariableModel(config)
    path = folder / "huge_side_conv.pt"
    torch.save(checkpoint_payload(model, {"name": "huge side"}), path)
    return path


def write_pt_deflated(folder: Path, declared: int = 320 * MB) -> Path:
    """Finding 2: a few-MB .pt whose one record is `declared` bytes of deflated zeros (torch inflates it whole)."""
    numel = declared // 4
    payload = {"format": "latent-lab", "format_version": 1, "meta": {},
               "model_config": ModelConfig().to_dict(),
               "state_dict": {"encoder.mu.weight": FakeTensor(FakeStorage("0", numel), (numel,))}}
    return torch_zip(folder / "deflated.pt", payload, {"0": (declared, MB)}, compression=zipfile.ZIP_DEFLATED,
                     level=1)


def write_pt_bad_setting(folder: Path, name: str, **override) -> Path:
    """Finding 10: a small valid checkpoint whose model_config has one setting edited (conv_fc=-5, "abc", 1e12)."""
    payload = small_payload()
    payload["model_config"].update(override)
    path = folder / f"bad_setting_{name}.pt"
    torch.save(payload, path)
    return path


def write_pt_shape_lie(folder: Path) -> Path:
    """Settings of a tiny model, one tensor 4 M values long: the shapes must be checked before anything else."""
    payload = small_payload()
    payload["state_dict"]["encoder.mu.weight"] = torch.zeros(2, 2_000_000)
    path = folder / "shape_lie.pt"
    torch.save(payload, path)
    return path


def write_pt_dtype_lie(folder: Path) -> Path:
    """The right shapes, but float64 weights (twice the bytes the settings imply)."""
    payload = small_payload()
    payload["state_dict"] = {k: v.double() for k, v in payload["state_dict"].items()}
    path = folder / "dtype_lie.pt"
    torch.save(payload, path)
    return path


def write_pt_stride_lie(folder: Path) -> Path:
    """A tensor declared 250 M elements long over a one-element storage (stride 0): no memory until touched."""
    payload = {"format": "latent-lab", "format_version": 1, "meta": {}, "model_config": ModelConfig().to_dict(),
               "state_dict": {"encoder.mu.weight": FakeTensor(FakeStorage("0", 1), (250_000_000,), (0,))}}
    return torch_zip(folder / "stride_lie.pt", payload, {"0": bytes(4)})


def write_pt_big_pickle(folder: Path) -> Path:
    """3 MiB of metadata: a list of a million empty lists (the restricted unpickler's slowest food)."""
    payload = small_payload()
    payload["meta"]["junk"] = [[] for _ in range(1_500_000)]
    path = folder / "big_pickle.pt"
    torch.save(payload, path)
    return path


def write_pt_many_records(folder: Path) -> Path:
    """A checkpoint zip with 30,000 empty records: zipfile's directory parse alone used to cost ~0.4 s and 20 MB."""
    path = folder / "many_records.pt"
    data = checkpoint_bytes(small_model())
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(path, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        for i in range(30_000):
            dst.writestr(f"archive/junk/{i}", b"")
    return path


def write_pt_path_spec(folder: Path, target: str) -> Path:
    """Finding 4: a valid small checkpoint whose data recipe names a path (a FIFO, /dev/zero, someone's folder)."""
    spec = {"source": "npz", "name": "data.npz", "seed": 0, "test_fraction": 0.2, "image_size": 8,
            "fingerprint": "0" * 64, "path": target}
    path = folder / "path_spec.pt"
    torch.save(checkpoint_payload(small_model(), {"name": "path", "data_spec": spec}), path)
    return path


# -- .npz ----------------------------------------------------------------------------------------------------------
def npy_header(descr: str, shape: tuple[int, ...]) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def write_npz_member(path: Path, key: str, header: bytes, body: bytes | tuple[int, int], *,
                     compression: int = zipfile.ZIP_STORED) -> Path:
    """An .npz of one member `key`.npy: the given header, then `body` (bytes, or (zero bytes, chunk) streamed)."""
    with zipfile.ZipFile(path, "w", compression=compression) as z:
        with z.open(f"{key}.npy", "w", force_zip64=True) as f:
            f.write(header)
            if isinstance(body, tuple):
                total, chunk = body
                zeros = bytes(chunk)
                for start in range(0, total, chunk):
                    f.write(zeros[: min(chunk, total - start)])
            else:
                f.write(body)
    return path


def write_npz_bzip2_void(folder: Path) -> Path:
    """Finding 3: a bzip2 member declaring 1e6 x V1024 (1 GB) holding 64 MB of zeros, a ~1 kB file."""
    return write_npz_member(folder / "bzip2_void.npz", "x", npy_header("|V1024", (1_000_000,)), (64 * MB, MB),
                            compression=zipfile.ZIP_BZIP2)


def write_npz_lzma(folder: Path) -> Path:
    """An LZMA member, otherwise an honest small uint8 image array."""
    images = np.zeros((20, 8, 8), np.uint8)
    return write_npz_member(folder / "lzma.npz", "x", npy_header("|u1", images.shape), images.tobytes(),
                            compression=zipfile.ZIP_LZMA)


def write_npz_void_deflated(folder: Path) -> Path:
    """A deflated member of dtype V1024 (raw bytes, not numbers)."""
    return write_npz_member(folder / "void.npz", "x", npy_header("|V1024", (1_000,)), (1_024_000, MB),
                            compression=zipfile.ZIP_DEFLATED)


def write_npz_size_lie(folder: Path) -> Path:
    """Declared-size lie: the header says 100,000 x 32 x 32 uint8 (100 MB), the member holds 100 bytes."""
    return write_npz_member(folder / "size_lie.npz", "x", npy_header("|u1", (100_000, 32, 32)), bytes(100))


def write_npz_over_budget(folder: Path) -> Path:
    """An honest deflated array of 164 M zero bytes (a 160 kB file): valid, but its load would take over 1 GB."""
    return write_npz_member(folder / "over_budget.npz", "x", npy_header("|u1", (40_000, 64, 64)),
                            (40_000 * 64 * 64, 4 * MB), compression=zipfile.ZIP_DEFLATED)


def write_npz_over_limit(folder: Path) -> Path:
    """A header declaring 100,000 x 256 x 256 uint8 (6.5 G values) over a 100-byte body."""
    return write_npz_member(folder / "over_limit.npz", "x", npy_header("|u1", (100_000, 256, 256)), bytes(100))


def write_npz_dtype_lie(folder: Path, descr: str, name: str) -> Path:
    """A header whose dtype is not numbers (or text where labels are): the body matches the declared size."""
    header = npy_header(descr, (20, 8, 8))
    size = 20 * 8 * 8 * np.dtype(descr).itemsize
    return write_npz_member(folder / f"dtype_{name}.npz", "x", header, bytes(size), compression=zipfile.ZIP_DEFLATED)


# -- images --------------------------------------------------------------------------------------------------------
def png_bytes(array: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG", optimize=False, compress_level=9)
    return buffer.getvalue()


def write_png_16bit(folder: Path, side: int = 6000) -> Path:
    """Finding 8: a ~100 kB 16-bit grey PNG of side x side pixels (72 MB decoded at 6000; float64 made it 288 MB)."""
    path = folder / f"grey16_{side}.png"
    path.write_bytes(png_bytes(np.zeros((side, side), np.uint16)))
    return path


def write_png_rgb(folder: Path, width: int = 6000, height: int = 6000) -> Path:
    """Finding 8, Interpolate: a 36-megapixel RGB PNG, ~100 kB (the page used to turn it into 1.15 GB of floats)."""
    path = folder / f"rgb_{width}x{height}.png"
    path.write_bytes(png_bytes(np.zeros((height, width, 3), np.uint8)))
    return path


def write_zip_of(folder: Path, name: str, files: dict[str, bytes]) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for member, data in files.items():
            z.writestr(member, data)
    return path


def write_zip_16bit(folder: Path) -> Path:
    """Finding 8 in an image .zip: two classes, one 16-bit 6000x6000 PNG among small ones."""
    small = png_bytes(np.zeros((8, 8), np.uint8))
    big = write_png_16bit(folder).read_bytes()
    files = {f"a/{i}.png": small for i in range(6)} | {f"b/{i}.png": small for i in range(5)} | {"b/big.png": big}
    return write_zip_of(folder, "grey16.zip", files)


def write_zip_decode_total(folder: Path) -> Path:
    """Each image within the per-image bound, 40 of them 12 MB decoded each (480 MB in all): bounded in total."""
    image = png_bytes(np.zeros((3000, 4000), np.uint8))
    files = {f"{'ab'[i % 2]}/{i}.png": image for i in range(40)}
    return write_zip_of(folder, "decode_total.zip", files)


# -- valid files at the bounds: accepted, and their cost is what the budget allows -----------------------------------
def write_pt_largest_train_page(folder: Path) -> Path:
    """The largest model the Train page can make: CVAE, MLP 512-256, z=32, on 3x64x64 images (12.9 M parameters,
    a 52 MB file)."""
    model = build_model(model_config_for((3, 64, 64), 10, kind="cvae", latent_dim=32, hidden=(512, 256)), seed=0)
    path = folder / "largest_train_page.pt"
    torch.save(checkpoint_payload(model, {"name": "largest"}), path)
    return path


def write_npz_near_budget(folder: Path) -> Path:
    """26,000 images of 32x32 uint8 in a deflated .npz: the largest such file the default budget admits."""
    rng = np.random.default_rng(0)
    images = (rng.random((26_000, 32, 32)) < 0.2).astype(np.uint8) * 255
    path = folder / "near_budget.npz"
    np.savez_compressed(path, x=images, y=np.arange(26_000) % 10)
    return path


def write_zip_max_files(folder: Path, n: int = 4_000) -> Path:
    """MAX_ZIP_FILES small PNGs (32x32 grey) in two classes: the most images a .zip may hold."""
    rng = np.random.default_rng(0)
    images = [png_bytes(rng.integers(0, 255, (32, 32), dtype=np.uint8)) for _ in range(16)]
    return write_zip_of(folder, "max_files.zip", {f"{'ab'[i % 2]}/{i}.png": images[i % 16] for i in range(n)})


# -- measuring -----------------------------------------------------------------------------------------------------
HOSTILE = {  # name: (kind, writer)
    "pt_wide_mlp": ("checkpoint", write_pt_wide_mlp),
    "pt_many_parameters": ("checkpoint", write_pt_many_parameters),
    "pt_huge_side_conv": ("checkpoint", write_pt_huge_side_conv),
    "pt_deflated": ("checkpoint", write_pt_deflated),
    "pt_conv_fc_negative": ("checkpoint", lambda f: write_pt_bad_setting(f, "negative", conv_fc=-5)),
    "pt_conv_fc_text": ("checkpoint", lambda f: write_pt_bad_setting(f, "text", conv_fc="abc")),
    "pt_classes_1e12": ("checkpoint", lambda f: write_pt_bad_setting(f, "classes", kind="cvae", num_classes=1e12)),
    "pt_shape_lie": ("checkpoint", write_pt_shape_lie),
    "pt_dtype_lie": ("checkpoint", write_pt_dtype_lie),
    "pt_stride_lie": ("checkpoint", write_pt_stride_lie),
    "pt_big_pickle": ("checkpoint", write_pt_big_pickle),
    "pt_many_records": ("checkpoint", write_pt_many_records),
    "pt_path_spec_dev_zero": ("spec", lambda f: write_pt_path_spec(f, "/dev/zero")),
    "npz_bzip2_void": ("npz", write_npz_bzip2_void),
    "npz_lzma": ("npz", write_npz_lzma),
    "npz_void": ("npz", write_npz_void_deflated),
    "npz_size_lie": ("npz", write_npz_size_lie),
    "npz_over_budget": ("npz", write_npz_over_budget),
    "npz_over_limit": ("npz", write_npz_over_limit),
    "npz_object_dtype": ("npz", lambda f: write_npz_dtype_lie(f, "|O", "object")),
    "npz_datetime_dtype": ("npz", lambda f: write_npz_dtype_lie(f, "<M8[ns]", "datetime")),
    "npz_text_images": ("npz", lambda f: write_npz_dtype_lie(f, "<U300", "text")),
    "png_16bit_6000": ("image", write_png_16bit),
    "png_rgb_36mp": ("image", write_png_rgb),
    "zip_16bit": ("zip", write_zip_16bit),
    "zip_decode_total": ("zip", write_zip_decode_total),
}
ACCEPTED = {  # valid files at the bounds: loaded, within the budget
    "pt_largest_train_page": ("checkpoint", write_pt_largest_train_page),
    "npz_near_budget": ("npz", write_npz_near_budget),
    "png_16bit_3000": ("image", lambda f: write_png_16bit(f, side=3000)),
    "zip_max_files": ("zip", write_zip_max_files),
}


def measure(kind: str, path: Path | str, timeout: float = 120) -> dict:
    """Load `path` as `kind` in a fresh process; what it cost and what it raised (see the module docstring)."""
    return measure_many([(kind, path)], timeout=timeout)[0]


def measure_many(files: list[tuple[str, Path | str]], timeout: float = 300) -> list[dict]:
    """measure() for several files in one fresh process, one after the other: the peak is reset before each file
    and counted from the memory in use just before it, the CPU time is each file's own."""
    proc = subprocess.run([sys.executable, str(Path(__file__).resolve()), "measure-many",
                           json.dumps([[kind, str(path)] for kind, path in files])],
                          capture_output=True, text=True, timeout=timeout, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    if proc.returncode != 0:
        raise RuntimeError(f"measuring {files} failed: {proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def _run_measured(kind: str, path: str) -> dict:
    """In the measuring process: warm up with a valid file of the same kind, count, then load `path` once.
    The counting patches are undone afterwards, so that several files can be measured in one process."""
    import time

    import PIL.ImageFile

    from vae_core import latent, models
    from vae_core.checkpoint import load_checkpoint
    from vae_core.data import load_from_spec, load_image_folder, load_npz
    from vae_core.errors import UserInputError

    def load(kind_: str, source) -> object:
        if kind_ == "checkpoint":
            return load_checkpoint(source)
        if kind_ == "spec":
            _, meta = load_checkpoint(source)
            return load_from_spec(meta.get("data_spec"))
        if kind_ == "npz":
            return load_npz(source)
        if kind_ == "zip":
            return load_image_folder(source, image_size=16)
        if kind_ == "image":
            return latent.image_from_bytes(Path(source).read_bytes() if not isinstance(source, bytes) else source,
                                           (1, 28, 28))
        raise ValueError(kind_)

    # Warm-up: the same code paths on a valid file, so that lazy imports and first-call set-up are not counted.
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        small = np.zeros((12, 8, 8), np.uint8)
        warm = {"checkpoint": lambda: checkpoint_bytes(small_model()), "spec": lambda: checkpoint_bytes(small_model()),
                "npz": lambda: io.BytesIO(_npz_bytes(x=small)),
                "zip": lambda: write_zip_of(tmp, "w.zip", {"a/0.png": png_bytes(small[0]), "a/1.png": png_bytes(small[1]),
                                                           "b/0.png": png_bytes(small[0]), "b/1.png": png_bytes(small[1]),
                                                           **{f"b/{i}.png": png_bytes(small[0]) for i in range(2, 9)}}),
                "image": lambda: png_bytes(small[0])}[kind]()
        try:
            load(kind, warm)
        except UserInputError:
            pass  # the spec warm-up has no data recipe; its checkpoint part ran

    counts = {"inflated_bytes": 0, "torch_loads": 0, "model_builds": 0, "pixels_decoded": 0}
    read, read1 = zipfile.ZipExtFile.read, zipfile.ZipExtFile.read1

    def counting_read(self, n=-1):
        data = read(self, n)
        counts["inflated_bytes"] += len(data)
        return data

    def counting_read1(self, n=-1):
        data = read1(self, n)
        counts["inflated_bytes"] += len(data)
        return data

    torch_load, model_init, image_load = torch.load, models.LatentVariableModel.__init__, PIL.ImageFile.ImageFile.load

    def counting_torch_load(*args, **kwargs):
        counts["torch_loads"] += 1
        return torch_load(*args, **kwargs)

    def counting_init(self, *args, **kwargs):
        counts["model_builds"] += 1
        return model_init(self, *args, **kwargs)

    def counting_image_load(self):
        if getattr(self, "tile", None):  # not decoded yet
            counts["pixels_decoded"] += self.size[0] * self.size[1]
        return image_load(self)

    zipfile.ZipExtFile.read, zipfile.ZipExtFile.read1 = counting_read, counting_read1
    torch.load, models.LatentVariableModel.__init__ = counting_torch_load, counting_init
    PIL.ImageFile.ImageFile.load = counting_image_load

    try:
        return _measured_load(kind, path, load, counts)
    finally:
        zipfile.ZipExtFile.read, zipfile.ZipExtFile.read1 = read, read1
        torch.load, models.LatentVariableModel.__init__ = torch_load, model_init
        PIL.ImageFile.ImageFile.load = image_load


def _measured_load(kind: str, path: str, load, counts: dict) -> dict:
    import gc
    import time

    from vae_core.errors import UserInputError

    gc.collect()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (the peak) to the current RSS
        peak_method = "clear_refs"
    except OSError:
        peak_method = "vmhwm_since_start"  # conservative: the peak may include the imports
    rss_before = _status_kb("VmRSS")
    cpu_before = time.process_time()
    error_type, message = None, None
    try:
        load(kind, path)
    except UserInputError as exc:
        error_type, message = type(exc).__name__, str(exc)
    except Exception as exc:  # reported, not raised: the test says what escaped
        error_type, message = f"ESCAPED {type(exc).__name__}", str(exc)
    cpu = time.process_time() - cpu_before
    peak_extra_mb = (_status_kb("VmHWM") - rss_before) / 1024
    return {"kind": kind, "path": str(path), "file_kb": round(os.path.getsize(path) / 1024, 1), "cpu_s": round(cpu, 4),
            "peak_extra_mb": round(peak_extra_mb, 1), "peak_method": peak_method, "error_type": error_type,
            "message": message, **counts}


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def main(argv: list[str]) -> None:
    if argv[:1] == ["measure"]:
        print(json.dumps(_run_measured(argv[1], argv[2])))
        return
    if argv[:1] == ["measure-many"]:
        print(json.dumps([_run_measured(kind, path) for kind, path in json.loads(argv[1])]))
        return
    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for name, (kind, writer) in {**HOSTILE, **ACCEPTED}.items():
            folder = Path(tmp) / name
            folder.mkdir()
            files.append((kind, writer(folder)))
        results = measure_many(files)
        print(f"{'file':<24} {'size kB':>9} {'CPU s':>7} {'peak +MB':>9} {'inflated':>10} {'torch.load':>10} "
              f"{'built':>5} {'pixels':>10}  message")
        for name, r in zip({**HOSTILE, **ACCEPTED}, results):
            print(f"{name:<24} {r['file_kb']:>9,.1f} {r['cpu_s']:>7.3f} {r['peak_extra_mb']:>9.1f} "
                  f"{r['inflated_bytes']:>10,} {r['torch_loads']:>10} {r['model_builds']:>5} {r['pixels_decoded']:>10,}  "
                  f"{(r['error_type'] or 'accepted')}: {(r['message'] or '')[:110]}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
