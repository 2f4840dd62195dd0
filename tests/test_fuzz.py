"""Fuzzing the loaders of untrusted files: whatever the bytes, the only failure is a clear UserInputError.

Bounded: a fixed number of examples per target, no deadline per example (the machine is shared).
The cost-budget targets (issue 15) also check that nothing is inflated, loaded or built before a refusal.
"""
import io
import math
import zipfile

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vae_core.checkpoint import checkpoint_bytes, load_checkpoint
from vae_core.config import model_config_for
from vae_core.data import load_image_folder, load_npz
from vae_core.errors import UserInputError
from vae_core.models import build_model

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

_VALID_CHECKPOINT = checkpoint_bytes(build_model(model_config_for((1, 8, 8), 10, latent_dim=2, hidden=(8,))),
                                     {"name": "fuzz"})


def _npz_bytes(**arrays) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for position, value in edits:
        out[position % len(out)] = value
    return bytes(out)


edits = st.lists(st.tuples(st.integers(0, 10**9), st.integers(0, 255)), min_size=1, max_size=20)


class TestCheckpointLoader:
    @FUZZ
    @given(st.binary(max_size=4096))
    def test_random_bytes(self, data):
        with pytest.raises(UserInputError):
            load_checkpoint(data)

    @FUZZ
    @given(edits)
    def test_corrupted_valid_checkpoint(self, changes):
        data = _mutate(_VALID_CHECKPOINT, changes)
        try:
            model, _ = load_checkpoint(data)
        except UserInputError:
            return
        # Some flips land in padding or in weight bytes: then the model must still be whole and usable.
        assert torch.isfinite(model.decode_mean(torch.zeros(1, 2))).all()

    @FUZZ
    @given(st.integers(1, len(_VALID_CHECKPOINT) - 1))
    def test_truncated_checkpoint(self, length):
        with pytest.raises(UserInputError):
            load_checkpoint(_VALID_CHECKPOINT[:length])


array_shapes = st.lists(st.integers(0, 12), min_size=0, max_size=5).map(tuple)
dtypes = st.sampled_from([np.uint8, np.int16, np.int64, np.float32, np.float64, np.bool_, np.complex64, "U3"])


class TestNpzLoader:
    @FUZZ
    @given(st.binary(max_size=4096))
    def test_random_bytes(self, data):
        with pytest.raises(UserInputError):
            load_npz(io.BytesIO(data), name="fuzz.npz")

    @FUZZ
    @given(array_shapes, dtypes, st.one_of(st.none(), array_shapes), st.floats(allow_nan=True, allow_infinity=True))
    def test_arbitrary_arrays(self, x_shape, dtype, y_shape, fill):
        x = np.zeros(x_shape, dtype=dtype)
        if x.size and np.issubdtype(x.dtype, np.floating):
            x.flat[0] = fill
        arrays = {"x": x}
        if y_shape is not None:
            arrays["y"] = np.zeros(y_shape, dtype=np.int64)
        try:
            split = load_npz(io.BytesIO(_npz_bytes(**arrays)), name="fuzz.npz")
        except UserInputError:
            return
        # Accepted: then it must satisfy the Dataset contract.
        for part in (split.train, split.test):
            assert part.x.dtype == torch.float32 and part.x.ndim == 4
            assert torch.isfinite(part.x).all() and part.x.min() >= 0 and part.x.max() <= 1
            assert len(part.y) == len(part.x)

    @FUZZ
    @given(edits)
    def test_corrupted_valid_npz(self, changes):
        good = _npz_bytes(x=np.random.default_rng(0).integers(0, 255, (30, 8, 8), dtype=np.uint8))
        try:
            load_npz(io.BytesIO(_mutate(good, changes)), name="fuzz.npz")
        except UserInputError:
            pass


class TestImageZipLoader:
    @pytest.mark.filterwarnings("ignore:Duplicate name")  # duplicate members are part of the fuzz
    @FUZZ
    @given(st.lists(st.tuples(st.sampled_from(["a/", "b/", "../", "/", "c/d/", ""]),
                              st.text("xyz.", min_size=1, max_size=6), st.binary(max_size=64)),
                    min_size=0, max_size=6))
    def test_arbitrary_zip_members(self, members):
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as z:
            for folder, name, data in members:
                z.writestr(folder + name, data)
        with pytest.raises(UserInputError):  # no member is a real image: always refused, never a crash
            load_image_folder(io.BytesIO(buffer.getvalue()), name="fuzz.zip")


# -- the cost budget (issue 15): compressed records, declared-size lies, dtype lies, path fields ------------------------
from unittest import mock  # noqa: E402

import hostile_files as hostile  # noqa: E402

from vae_core.config import MAX_PARAMETERS, estimate_parameters  # noqa: E402
from vae_core.data import load_from_spec  # noqa: E402


def _rezip(data: bytes, method_for) -> bytes:
    """The zip `data` rewritten record by record, each with the compression method_for(index, name) says."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for i, info in enumerate(src.infolist()):
            dst.writestr(info.filename, src.read(info), compress_type=method_for(i, info.filename))
    return out.getvalue()


class _Counting:
    """Counts torch.load calls and model builds inside a `with` block (hypothesis forbids monkeypatch here)."""

    def __enter__(self):
        from vae_core import checkpoint, models

        self.loads, self.builds = 0, 0
        torch_load, init = torch.load, models.LatentVariableModel.__init__

        def load(*args, **kwargs):
            self.loads += 1
            return torch_load(*args, **kwargs)

        def build(model, *args, **kwargs):
            self.builds += 1
            return init(model, *args, **kwargs)

        self._patches = [mock.patch.object(checkpoint.torch, "load", load),
                         mock.patch.object(models.LatentVariableModel, "__init__", build)]
        for p in self._patches:
            p.start()
        return self

    def __exit__(self, *exc):
        for p in reversed(self._patches):
            p.stop()


config_values = st.one_of(st.integers(-10**13, 10**13), st.floats(allow_nan=True, allow_infinity=True),
                          st.text(max_size=4), st.none(), st.booleans(),
                          st.lists(st.integers(-3, 10**5), max_size=10), st.dictionaries(st.text(max_size=2),
                                                                                         st.integers(), max_size=2))
config_fields = st.sampled_from(["kind", "arch", "input_shape", "latent_dim", "hidden", "conv_channels", "conv_fc",
                                 "num_classes", "likelihood", "gaussian_sigma", "learn_sigma", "beta"])


class TestCheckpointBudget:
    @FUZZ
    @given(st.integers(0, 40), st.sampled_from([zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]))
    def test_a_compressed_record_is_refused_before_torch_load(self, index, method):
        n = len(zipfile.ZipFile(io.BytesIO(_VALID_CHECKPOINT)).infolist())
        data = _rezip(_VALID_CHECKPOINT, lambda i, _: method if i == index % n else zipfile.ZIP_STORED)
        with _Counting() as count, pytest.raises(UserInputError, match="compressed"):
            load_checkpoint(data)
        assert count.loads == 0 and count.builds == 0

    @FUZZ
    @given(st.dictionaries(config_fields, config_values, min_size=1, max_size=4))
    def test_any_model_config_is_refused_cleanly_or_bounded(self, changes):
        payload = hostile.small_payload()
        payload["model_config"].update(changes)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with _Counting() as count:
            try:
                model, _ = load_checkpoint(buffer.getvalue())
            except UserInputError:
                model = None
        assert count.builds <= 1  # a model is built only once its weights fit, and then it is small
        if model is not None:
            assert estimate_parameters(model.config) <= MAX_PARAMETERS

    @FUZZ
    @given(st.lists(st.integers(0, 10**6), min_size=0, max_size=3), st.integers(0, 10**12),
           st.integers(0, 64), st.sampled_from(["FloatStorage", "DoubleStorage", "ByteStorage", "HalfStorage"]),
           st.booleans())
    def test_declared_sizes_that_lie_are_refused(self, size, numel, record_bytes, storage_type, zero_stride):
        """A tensor whose declared shape, storage length or record size disagree: one clear error, never a crash."""
        payload = hostile.small_payload()
        stride = [0] * len(size) if zero_stride else None
        payload["state_dict"]["encoder.mu.weight"] = hostile.FakeTensor(
            hostile.FakeStorage("0", numel, storage_type), size, stride)
        buffer = io.BytesIO()
        state = {k: v for k, v in payload["state_dict"].items() if not isinstance(v, torch.Tensor)}
        records = {"0": bytes(record_bytes)}
        for i, (k, v) in enumerate(payload["state_dict"].items()):  # the real tensors as records 1, 2, ...
            if isinstance(v, torch.Tensor):
                records[str(i + 1)] = v.contiguous().numpy().tobytes()
                state[k] = hostile.FakeTensor(hostile.FakeStorage(str(i + 1), v.numel()), v.shape)
        payload["state_dict"] = state
        hostile.torch_zip(buffer, payload, records)
        with pytest.raises(UserInputError):
            load_checkpoint(buffer.getvalue())


npy_dtypes = st.sampled_from(["|u1", "<i2", "<i8", "<f2", "<f4", "<f8", ">f4", "|b1", "<c8", "<c16", "|V16", "|V1024",
                              "|O", "<M8[ns]", "<m8[s]", "<U3", "<U300", "|S10", "<f16"])


class TestNpzBudget:
    @FUZZ
    @given(npy_dtypes, st.lists(st.integers(0, 10**7), min_size=1, max_size=4).map(tuple), st.integers(-64, 64),
           st.sampled_from([zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA]),
           st.sampled_from(["x", "y", "label_names", "x_train"]))
    def test_dtype_and_size_lies_are_refused_from_the_header(self, descr, shape, lie, method, key):
        """Whatever the header declares, nothing past the headers is inflated unless the load fits the budget."""
        try:
            itemsize = np.dtype(descr).itemsize
        except TypeError:
            return
        declared = math.prod(shape) * itemsize
        body = min(max(declared + lie, 0), 4096)  # the member never holds more than 4 kB
        buffer = io.BytesIO()
        hostile.write_npz_member(buffer, key, hostile.npy_header(descr, shape), bytes(body), compression=method)
        inflated = []
        read = zipfile.ZipExtFile.read

        def counting_read(self, n=-1):
            chunk = read(self, n)
            inflated.append(len(chunk))
            return chunk

        with mock.patch.object(zipfile.ZipExtFile, "read", counting_read):
            try:
                split = load_npz(io.BytesIO(buffer.getvalue()), name="fuzz.npz")
            except UserInputError:
                split = None
        assert sum(inflated) <= 64 + 4096 + 1024  # the header, and at most the (small) honest body
        if split is not None:
            assert split.train.x.dtype == torch.float32


path_values = st.one_of(st.text(max_size=30), st.sampled_from(["/dev/zero", "/dev/fd", "/proc/self/fd/0", "/", ".",
                                                                "..", "/etc/passwd", "C:\\x.npz", "//srv/share"]),
                        st.integers(), st.none(), st.lists(st.text(max_size=3), max_size=2),
                        st.dictionaries(st.text(max_size=2), st.text(max_size=2), max_size=1))


class TestSpecPaths:
    @FUZZ
    @given(st.sampled_from(["npz", "image_folder"]), path_values, st.one_of(st.text(max_size=20), st.integers(),
                                                                           st.none()))
    def test_no_path_in_a_spec_is_ever_touched(self, source, path, name):
        spec = {"source": source, "name": name, "seed": 0, "test_fraction": 0.2, "image_size": 8,
                "fingerprint": "0" * 64, "path": path}

        def forbidden(*args, **kwargs):
            raise AssertionError(f"the loader touched {args}")

        from vae_core.data import sources

        with mock.patch.object(sources, "_open_user_data", forbidden), mock.patch.object(sources, "_hash_tree", forbidden):
            with pytest.raises(UserInputError) as err:
                load_from_spec(spec)
        assert "\n" not in str(err.value)
