"""The cost budget (issue 15): every untrusted file is refused or bounded before it costs 256 MB or 2 s.

What is asserted, for each hostile file (tests/hostile_files.py), in a fresh process: the clear one-line message,
that the refusal happened before the payload was read (nothing inflated beyond the headers, no torch.load for an
archive refused from its directory, no model built, no pixel decoded for an image refused from its header), and,
as loose sanity bounds only, peak extra memory <= 256 MB and CPU <= 2 s (a refusal takes milliseconds and a few MB,
so these do not depend on the machine's speed). Valid files at the bounds are loaded within the same bounds.
"""
from __future__ import annotations

import io
import itertools
import os
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import hostile_files as hostile
from vae_core import data as data_module
from vae_core.data import image_folders
from vae_core.data import sources as data_sources
from vae_core.budget import CPU_BUDGET_SECONDS, MEMORY_BUDGET_BYTES
from vae_core.checkpoint import checkpoint_bytes, load_checkpoint
from vae_core.config import (DECODE_SAMPLES_GUARANTEED, MAX_PARAMETERS, ModelConfig, activation_values,
                             estimate_parameters, max_batch_size, model_config_for, state_shapes)
from vae_core.data import load_data, load_from_spec, load_npz, spec_cache_key
from vae_core.errors import CheckpointError, ConfigError, DataError, UserInputError
from vae_core.models import LatentVariableModel, count_parameters

ROOT = Path(__file__).resolve().parents[1]
BUDGET_MB = MEMORY_BUDGET_BYTES / 2**20  # 244 MiB: the promise of 256 MB, in the MiB that VmHWM reports

# -- what each hostile file must be refused with (a regex on the message), and what must not have happened ----------
EXPECTED = {
    "pt_wide_mlp": ("CheckpointError", r"hidden sizes must be at most 8 layers of 1\.\.4096 units"),
    "pt_many_parameters": ("CheckpointError", r"335,646,724 parameters, over the limit of 16,000,000"),
    "pt_huge_side_conv": ("CheckpointError", r"4096x4096 pixels are over the 256-pixel limit"),
    "pt_deflated": ("CheckpointError", r"compressed \(method 8\).*stores its records uncompressed"),
    "pt_conv_fc_negative": ("CheckpointError", r"conv_fc must be 1\.\.4096 units, got -5"),
    "pt_conv_fc_text": ("CheckpointError", r"conv_fc must be 1\.\.4096 units, got 'abc'"),
    "pt_classes_1e12": ("CheckpointError", r"num_classes must be 0\.\.100, got 1000000000000"),
    "pt_shape_lie": ("CheckpointError", r"do not fit the model config \(wrong shape encoder\.mu\.weight"),
    "pt_dtype_lie": ("CheckpointError", r"weights must be float32, got .*float64"),
    "pt_stride_lie": ("CheckpointError", r"do not fit the model config"),
    "pt_big_pickle": ("CheckpointError", r"metadata is 8\.\d MiB, over the 1 MiB limit"),
    "pt_many_records": ("CheckpointError", r"zip directory of [\d,]+ bytes, over the [\d,]+-byte limit"),
    "pt_path_spec_dev_zero": ("DataError", r"trained on the file 'data\.npz', which is not opened from the path"),
    "npz_bzip2_void": ("DataError", r"'x' in 'bzip2_void\.npz' is compressed with bzip2, which is not read"),
    "npz_lzma": ("DataError", r"compressed with LZMA, which is not read"),
    "npz_void": ("DataError", r"x has dtype \|V1024; expected uint8 values 0-255 or floats"),
    "npz_size_lie": ("DataError", r"declares 102,400,000 bytes of data .* but the archive holds 100"),
    "npz_over_budget": ("DataError", r"too large to load here: x 40000x64x64 uint8 would take about [\d,]+ MiB"),
    "npz_over_limit": ("DataError", r"is too large \(\(100000, 256, 256\), uint8\)"),
    "npz_object_dtype": ("DataError", r"holds Python objects \(pickled data\), which is refused"),
    "npz_datetime_dtype": ("DataError", r"x has dtype datetime64\[ns\]; expected"),
    "npz_text_images": ("DataError", r"x has dtype <U300; expected"),
    "png_16bit_6000": ("UserInputError", r"6000x6000 pixels of mode I;16, 69 MiB once decoded, over the 48 MiB"),
    "png_rgb_36mp": ("UserInputError", r"6000x6000 pixels of mode RGB, 137 MiB once decoded, over the 48 MiB"),
    "zip_16bit": ("DataError", r"b/big\.png in 'grey16\.zip' is 6000x6000 pixels of mode I;16"),
    "zip_decode_total": ("DataError", r"decoding the images of 'decode_total\.zip' would take over 192 MiB"),
}
# Refused from the archive's directory: torch.load never runs.
BEFORE_TORCH_LOAD = {"pt_deflated", "pt_big_pickle", "pt_many_records"}
HEADER_BYTES = 64 << 10  # what reading the .npy headers or a few small images may inflate


@pytest.fixture(scope="module")
def measured(tmp_path_factory):
    """Every hostile and at-the-bound file, written once and measured in one fresh process (~10 s)."""
    root = tmp_path_factory.mktemp("hostile")
    files, names = [], []
    for name, (kind, writer) in {**hostile.HOSTILE, **hostile.ACCEPTED}.items():
        folder = root / name
        folder.mkdir()
        files.append((kind, writer(folder)))
        names.append(name)
    return dict(zip(names, hostile.measure_many(files)))


class TestHostileFiles:
    @pytest.mark.parametrize("name", sorted(hostile.HOSTILE))
    def test_refused_with_one_clear_line_before_the_payload_is_read(self, measured, name):
        r = measured[name]
        error_type, pattern = EXPECTED[name]
        assert r["error_type"] == error_type, r
        assert "\n" not in r["message"] and len(r["message"]) < 400, r["message"]
        assert re.search(pattern, r["message"]), r["message"]
        if name.startswith("pt_"):
            assert r["model_builds"] == (1 if name == "pt_path_spec_dev_zero" else 0), r  # only the valid one
            assert r["torch_loads"] == (0 if name in BEFORE_TORCH_LOAD else 1), r
        if name.startswith("npz_"):
            assert r["inflated_bytes"] <= HEADER_BYTES, r  # the .npy headers only, never the data
        if name.startswith("png_"):
            assert r["pixels_decoded"] == 0, r  # refused from the header
        if name == "zip_16bit":
            assert r["pixels_decoded"] < 10_000 and r["inflated_bytes"] < 1 << 20, r  # only the small images
        if name == "zip_decode_total":
            assert r["pixels_decoded"] <= data_module.MAX_FOLDER_DECODED_BYTES, r  # stopped at the bound

    @pytest.mark.parametrize("name", sorted({**hostile.HOSTILE, **hostile.ACCEPTED}))
    def test_cost_within_the_budget(self, measured, name):
        """Loose sanity bounds: refusals cost milliseconds and a few MB, valid loads at the bounds ~130 MB, ~1 s."""
        r = measured[name]
        assert r["peak_extra_mb"] <= BUDGET_MB, r
        assert r["cpu_s"] <= CPU_BUDGET_SECONDS, r
        if name in hostile.HOSTILE and name != "zip_decode_total":  # refusals are cheap by construction
            assert r["cpu_s"] < 0.5 and r["peak_extra_mb"] < 64, r

    @pytest.mark.parametrize("name", sorted(hostile.ACCEPTED))
    def test_valid_files_at_the_bounds_load(self, measured, name):
        assert measured[name]["error_type"] is None, measured[name]


# -- model settings ------------------------------------------------------------------------------------------------
CONFIGS = [
    dict(kind=k, arch=a, input_shape=s, latent_dim=3, hidden=(20, 10), learn_sigma=ls, num_classes=4,
         conv_channels=cc)
    for k, a, (s, cc), ls in itertools.product(
        ("ae", "vae", "cvae"), ("mlp", "conv"), [((1, 8, 8), (8,)), ((3, 32, 32), (8, 16)), ((1, 28, 28), (4, 8))],
        (False, True))
]


class TestModelBounds:
    @pytest.mark.parametrize("settings", CONFIGS)
    def test_shapes_and_parameters_from_the_settings_match_the_built_model(self, settings):
        config = ModelConfig(**{**settings, "num_classes": settings["num_classes"] if settings["kind"] == "cvae" else 0})
        model = LatentVariableModel(config)
        assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == state_shapes(config)
        assert estimate_parameters(config) == count_parameters(model)

    def test_every_bundled_model_loads(self):
        paths = sorted((ROOT / "checkpoints").glob("*.pt"))
        assert paths
        for path in paths:
            model, _ = load_checkpoint(path)
            assert estimate_parameters(model.config) <= MAX_PARAMETERS

    def test_everything_the_train_page_offers_on_built_in_data_is_admitted(self):
        # app_pages/train.py: MLP presets, latent 1..32, kinds, both networks; built-in sides 8, 28, 32, 64 (grey), and
        # image .zip uploads resized to 16, 28, 32 or 64 (grey or colour); 10 classes
        presets = [(256, 128), (400,), (512, 256), (128,)]
        for side, channels, hidden, arch, z, kind in itertools.product(
                (8, 16, 28, 32, 64), (1, 3), presets, ("mlp", "conv"), (1, 32), ("ae", "vae", "cvae")):
            config = model_config_for((channels, side, side), 10, kind=kind, arch=arch, latent_dim=z, hidden=hidden)
            assert max_batch_size(config) >= DECODE_SAMPLES_GUARANTEED

    @pytest.mark.parametrize("settings, words", [
        ({"input_shape": (1, 4096, 4096), "arch": "conv", "conv_channels": (1,) * 6, "conv_fc": 1},
         "4096x4096 pixels are over the 256-pixel limit"),
        ({"hidden": (8192, 8192, 8192)}, "at most 8 layers of 1..4096 units"),
        ({"hidden": (16,) * 9}, "at most 8 layers"),
        ({"arch": "conv", "input_shape": (1, 256, 256), "conv_channels": (8,) * 7}, "conv_channels must be 1..6"),
        ({"conv_fc": -5}, "conv_fc must be 1..4096"),
        ({"conv_fc": "abc"}, "conv_fc must be 1..4096"),
        ({"kind": "cvae", "num_classes": 1e12}, "num_classes must be 0..100"),
        ({"kind": "cvae", "num_classes": 101}, "num_classes must be 0..100"),
        ({"input_shape": (3, 256, 256), "hidden": (512, 256)}, "parameters, over the limit of 16,000,000"),
        ({"arch": "conv", "input_shape": (3, 256, 256), "conv_channels": (512, 8, 8, 8), "conv_fc": 16},
         "activations per image, over the limit"),
        ({"learn_sigma": "yes"}, "learn_sigma must be true or false"),
    ])
    def test_settings_over_a_bound_name_it(self, settings, words):
        with pytest.raises(ConfigError, match=words.replace("(", r"\(").replace(".", r"\.")):
            ModelConfig(**settings)

    def test_decoding_is_batched_within_the_budget(self, monkeypatch):
        """Decode memory: activations per example x samples decoded at once <= the budget (latent.decode chunks)."""
        from vae_core import latent

        config = model_config_for((3, 256, 256), 2, arch="conv")
        encoder_values, decoder_values = activation_values(config)
        batch = max_batch_size(config)
        assert DECODE_SAMPLES_GUARANTEED <= batch < 1024
        assert batch * 4 * max(encoder_values, decoder_values) <= MEMORY_BUDGET_BYTES
        with torch.device("meta"):
            model = LatentVariableModel(config)
        sizes = []
        monkeypatch.setattr(model, "decode_mean", lambda z, y=None: sizes.append(len(z)) or torch.zeros(len(z), 1))
        latent.decode(model, torch.zeros(400, config.latent_dim))
        assert max(sizes) <= batch and sum(sizes) == 400


# -- checkpoints: each exception becomes one CheckpointError (finding 10) --------------------------------------------
class TestCheckpointErrors:
    @pytest.mark.parametrize("field, value", [
        ("conv_fc", -5), ("conv_fc", "abc"), ("num_classes", 1e12), ("hidden", 5), ("hidden", ["a"]),
        ("input_shape", "abc"), ("input_shape", [1, 8]), ("latent_dim", None), ("kind", ["vae"]), ("beta", "1"),
        ("gaussian_sigma", 0.0), ("conv_channels", []), ("learn_sigma", 2), ("arch", {}),
    ])
    def test_any_bad_setting_is_one_checkpoint_error(self, field, value):
        payload = hostile.small_payload()
        payload["model_config"][field] = value
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with pytest.raises(CheckpointError, match="model config is invalid") as err:
            load_checkpoint(buffer.getvalue())
        assert "\n" not in str(err.value)

    def test_non_text_keys_are_one_checkpoint_error(self):
        payload = hostile.small_payload()
        payload["model_config"][1] = 2
        payload["state_dict"][3] = torch.zeros(1)
        buffer = io.BytesIO()
        torch.save(payload, buffer)
        with pytest.raises(CheckpointError):
            load_checkpoint(buffer.getvalue())

    def test_the_model_takes_the_checked_weights_without_a_copy(self):
        model, _ = load_checkpoint(checkpoint_bytes(hostile.small_model()))
        assert all(p.device.type == "cpu" and p.is_contiguous() and p.requires_grad for p in model.parameters())
        assert not model.training


# -- finding 4: no path from a file is ever followed ----------------------------------------------------------------
class TestNoPathFollowed:
    @pytest.fixture
    def no_filesystem(self, monkeypatch):
        """Fail the test if the loader opens, hashes or stats a user path (the spec's path, or any other)."""
        def forbidden(*args, **kwargs):
            raise AssertionError(f"the loader touched the filesystem: {args}")
        real_exists = os.path.exists
        checked = []
        monkeypatch.setattr(data_sources, "_open_user_data", forbidden)
        monkeypatch.setattr(data_sources, "_hash_tree", forbidden)
        monkeypatch.setattr(data_sources.os.path, "exists", lambda p: checked.append(p) or real_exists(p))
        yield checked

    @pytest.mark.parametrize("source", ["npz", "image_folder"])
    @pytest.mark.parametrize("target", ["/dev/zero", "/dev/fd", "/proc/self/fd/0", "/etc/passwd", "../../x.npz"])
    def test_a_spec_path_is_never_opened(self, no_filesystem, source, target):
        spec = {"source": source, "name": "mine.npz", "seed": 0, "test_fraction": 0.2, "image_size": 8,
                "fingerprint": "0" * 64, "path": target}
        with pytest.raises(DataError, match="which is not opened from the path the checkpoint names") as err:
            load_from_spec(spec)
        assert target not in str(err.value)  # the path is not even echoed
        assert target not in no_filesystem  # nor even checked for existence

    def test_a_fifo_named_by_a_checkpoint_does_not_hang(self, tmp_path):
        fifo = tmp_path / "pipe"
        os.mkfifo(fifo)
        _, meta = load_checkpoint(hostile.write_pt_path_spec(tmp_path, str(fifo)))
        with pytest.raises(DataError, match="never followed"):
            load_from_spec(meta["data_spec"])

    def test_with_the_file_itself_the_data_loads_and_the_path_is_ignored(self, tmp_path):
        path = tmp_path / "mine.npz"
        np.savez(path, x=np.random.default_rng(0).integers(0, 255, (30, 8, 8), dtype=np.uint8))
        split = load_data(path)
        spec = {**split.spec, "path": "/dev/zero"}
        again = load_from_spec(spec, file=io.BytesIO(path.read_bytes()))
        assert torch.equal(again.train.x, split.train.x)

    def test_the_app_may_follow_its_own_paths_explicitly(self, tmp_path):
        path = tmp_path / "mine.npz"
        np.savez(path, x=np.random.default_rng(0).integers(0, 255, (30, 8, 8), dtype=np.uint8))
        split = load_data(path)
        assert torch.equal(load_from_spec(split.spec, allow_paths=True).test.x, split.test.x)

    def test_built_in_data_comes_from_its_name(self, no_filesystem):
        spec = dict(load_data("digits").spec, path="/dev/zero")
        assert len(load_from_spec(spec).train) > 0
        assert "/dev/zero" not in no_filesystem


# -- finding 11: the data cache key holds the file's content hash ----------------------------------------------------
def test_the_data_cache_key_holds_the_files_content_hash():
    spec = {"source": "npz", "name": "u.npz", "fingerprint": "a" * 64, "seed": 0}
    mine, theirs = spec_cache_key(spec, b"my bytes"), spec_cache_key(spec, b"their bytes")
    assert len({mine, theirs, spec_cache_key(spec, None)}) == 3
    assert spec_cache_key(dict(reversed(spec.items())), b"my bytes") == mine  # stable for the same inputs


# -- .npz and images: the rest of findings 3 and 8 -------------------------------------------------------------------
class TestNpzAndImages:
    def test_npz_members_are_checked_before_np_load(self, tmp_path, monkeypatch):
        path = hostile.write_npz_size_lie(tmp_path)
        monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load ran before the headers were checked"))
        with pytest.raises(DataError, match="declares"):
            load_npz(path)

    def test_text_labels_are_still_read(self, tmp_path):
        path = tmp_path / "t.npz"
        np.savez(path, x=np.zeros((20, 8, 8), np.uint8), y=np.array(["cat", "dog"] * 10),
                 label_names=np.array(["cat", "dog"]))
        assert load_npz(path).label_names == ("cat", "dog")

    def test_sixteen_bit_images_scale_exactly_as_before_without_float64(self, monkeypatch):
        from PIL import Image

        rng = np.random.default_rng(0)
        grey16 = rng.integers(0, 65535, (300, 400), dtype=np.uint16)
        image = Image.fromarray(grey16)
        monkeypatch.setattr(image_folders, "_CONVERT_CHUNK_PIXELS", 7_777)  # many chunks, one partial
        converted = np.asarray(image_folders._to_l_or_rgb(image))
        expected = np.clip(grey16.astype(np.float64) / 65535 * 255 + 0.5, 0, 255).astype(np.uint8)  # the old formula
        assert np.array_equal(converted, expected)

    def test_interpolate_upload_of_a_large_photo_is_reduced_before_the_float_conversion(self, tmp_path):
        from vae_core.latent import image_from_bytes

        path = hostile.write_png_rgb(tmp_path, 3000, 2000)  # 24 MB decoded: admitted
        x = image_from_bytes(path.read_bytes(), (3, 32, 32))
        assert x.shape == (1, 3, 32, 32) and float(x.max()) == 0.0

    def test_interpolate_upload_refuses_from_the_header(self, tmp_path):
        from vae_core.latent import image_from_bytes

        with pytest.raises(UserInputError, match="over the 48 MiB limit per image"):
            image_from_bytes(hostile.write_png_rgb(tmp_path).read_bytes(), (1, 28, 28))

    def test_zip_members_compressed_with_bzip2_are_refused_unread(self, tmp_path):
        path = tmp_path / "b.zip"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_BZIP2) as z:
            for i in range(12):
                z.writestr(f"{'ab'[i % 2]}/{i}.png", hostile.png_bytes(np.zeros((8, 8), np.uint8)))
        with pytest.raises(DataError, match="compressed with bzip2"):
            data_module.load_image_folder(path)


# -- the command line: exit code 2 and one line ---------------------------------------------------------------------
def run_cli(*args, in_process: bool = True) -> subprocess.CompletedProcess:
    """`python -m vae_core ARGS`: as a real process, or in-process through vae_core.cli.main (the same parsing,
    handlers, exit codes and output, without a torch import per case)."""
    argv = [str(a) for a in args]
    if not in_process:
        return subprocess.run([sys.executable, "-m", "vae_core", *argv], cwd=ROOT, capture_output=True, text=True,
                              timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})
    import contextlib

    from vae_core.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


@pytest.mark.parametrize("command, writer, in_process", [
    (("info", "--checkpoint"), hostile.write_pt_deflated, False),
    (("info", "--checkpoint"), hostile.write_pt_wide_mlp, True),
    (("info", "--checkpoint"), hostile.write_pt_dtype_lie, True),
    (("evaluate", "--checkpoint"), hostile.write_pt_huge_side_conv, False),
    (("evaluate", "--checkpoint"), lambda folder: hostile.write_pt_path_spec(folder, "/dev/fd"), True),
    (("evaluate", "--checkpoint"), lambda folder: hostile.write_pt_bad_setting(folder, "n", conv_fc=-5), True),
    (("train", "--out", "never.pt", "--data"), hostile.write_npz_bzip2_void, False),
    (("train", "--out", "never.pt", "--data"), hostile.write_npz_over_budget, True),
    (("train", "--out", "never.pt", "--data"), hostile.write_npz_size_lie, True),
    (("train", "--out", "never.pt", "--data"), hostile.write_zip_16bit, True),
])
def test_cli_refuses_hostile_files_with_exit_code_2_and_one_line(tmp_path, command, writer, in_process):
    proc = run_cli(*command, writer(tmp_path), in_process=in_process)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert proc.stdout == "" and not (ROOT / "never.pt").exists()


def test_max_data_mb_admits_a_large_file_of_your_own(tmp_path):
    """The default budget refuses a file whose load would take ~330 MiB; max_bytes=512 MiB admits it."""
    path = tmp_path / "big.npz"
    np.savez(path, x=np.zeros((55_000, 28, 28), np.uint8))
    with pytest.raises(DataError, match="too large to load here"):
        load_data(path)
    split = load_data(path, max_bytes=512 << 20)
    assert len(split.train) + len(split.test) == 55_000
    del split
    proc = run_cli("train", "--data", path, "--max-data-mb", 0, "--out", tmp_path / "m.pt")
    assert proc.returncode == 2 and "--max-data-mb must be" in proc.stderr
