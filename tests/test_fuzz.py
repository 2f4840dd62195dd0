"""Fuzzing the loaders of untrusted files: whatever the bytes, the only failure is a clear UserInputError.

Bounded: a fixed number of examples per target, no deadline per example (the machine is shared).
"""
import io
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
