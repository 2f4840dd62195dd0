"""Image folders and .zip files (vae_core.data.image_folders)."""
from __future__ import annotations

import io
import tempfile
import uuid
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from vae_core.data import load_data, load_image_folder
from vae_core.errors import DataError

from ._helpers import (
    images_u8, write_png, make_class_folder, zip_tree, Upload, count_zip_members_opened, assert_valid_split,
)


class TestImageFolders:
    def test_grey_directory(self, tmp_path):
        root = make_class_folder(tmp_path / "pets", {"dogs": 5, "cats": 6})
        split = load_image_folder(root, image_size=16)
        assert_valid_split(split)
        assert split.input_shape == (1, 16, 16)
        assert split.label_names == ("cats", "dogs")  # sorted class folders
        assert len(split.train) + len(split.test) == 11
        assert split.name == "pets" and split.spec["path"] == str(root)
        assert split.spec["source"] == "image_folder" and split.spec["image_size"] == 16

    def test_colour_gives_three_channels(self, tmp_path):
        root = make_class_folder(tmp_path / "c", {"a": 5, "b": 5})
        write_png(root / "a" / "colour.png", mode="RGB")
        assert load_image_folder(root).input_shape == (3, 32, 32)

    def test_rgb_with_equal_channels_and_rgba(self, tmp_path):
        root = make_class_folder(tmp_path / "g", {"a": 5, "b": 5})
        Image.fromarray(np.full((8, 8, 3), 77, np.uint8)).save(root / "a" / "grey_rgb.png")
        assert load_image_folder(root, image_size=8).input_shape == (1, 8, 8)
        write_png(root / "b" / "alpha.png", mode="RGBA")
        assert load_image_folder(root, image_size=8).input_shape == (3, 8, 8)

    def test_other_image_formats(self, tmp_path):
        root = tmp_path / "formats"
        for c in ("a", "b"):
            (root / c).mkdir(parents=True)
            for i in range(5):  # 16-bit grey: scaled to [0, 1], not clipped
                Image.fromarray(np.full((6, 9), 65535 if c == "a" else 0, np.uint16)).save(root / c / f"{i}.png")
        Image.new("1", (20, 20), 1).save(root / "a" / "bilevel.png")
        grey = load_image_folder(root, image_size=4)
        assert grey.input_shape == (1, 4, 4)
        whole = torch.cat([grey.train.x, grey.test.x])
        assert set(whole.flatten(1).mean(1).tolist()) == {0.0, 1.0}
        Image.fromarray(images_u8(1, 300, 400, 3)[0]).save(root / "a" / "photo.jpg", quality=90)
        palette = Image.new("P", (10, 10))
        palette.putpalette([255, 0, 0, 0, 255, 0] * 128)
        palette.save(root / "b" / "palette.png", transparency=0)
        assert load_image_folder(root, image_size=4).input_shape == (3, 4, 4)

    def test_zip_with_wrapper_folder_and_system_files(self, tmp_path):
        src = make_class_folder(tmp_path / "src", {"circles": 5, "squares": 6}, mode="RGB")
        (src / ".DS_Store").write_bytes(b"\0junk")
        (src / "circles" / ".DS_Store").write_bytes(b"\0junk")
        zip_path = zip_tree(src, tmp_path / "wrapped.zip", prefix="my_shapes/")
        with zipfile.ZipFile(zip_path, "a") as zf:
            zf.writestr("__MACOSX/my_shapes/circles/._0.png", b"resource fork")
        split = load_data(zip_path, image_size=12)
        assert_valid_split(split)
        assert split.input_shape == (3, 12, 12) and split.label_names == ("circles", "squares")
        assert split.name == "wrapped.zip"

    def test_zip_upload(self, tmp_path):
        zip_path = zip_tree(make_class_folder(tmp_path / "src"), tmp_path / "up.zip")
        split = load_image_folder(Upload(zip_path.read_bytes(), "upload.zip"), image_size=8)
        assert split.name == "upload.zip" and split.spec["path"] is None
        assert split.spec["fingerprint"] == load_image_folder(zip_path, image_size=8).spec["fingerprint"]

    def test_directory_and_zip_give_the_same_data(self, tmp_path):
        src = make_class_folder(tmp_path / "src")
        a = load_image_folder(src, image_size=8, seed=5)
        b = load_image_folder(zip_tree(src, tmp_path / "same.zip"), image_size=8, seed=5)
        assert torch.equal(a.train.x, b.train.x) and torch.equal(a.test.y, b.test.y)

    def test_one_class_is_refused(self, tmp_path):
        root = make_class_folder(tmp_path / "only", {"cats": 12})
        with pytest.raises(DataError, match="one class.*own sub-folder"):
            load_image_folder(root)
        with pytest.raises(DataError, match="one class"):
            load_image_folder(root / "cats")  # images straight in the folder: stray files
        with pytest.raises(DataError, match="one class"):
            load_image_folder(zip_tree(root, tmp_path / "one.zip", prefix="wrap/"))

    def test_images_outside_class_folders(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        write_png(root / "loose.png")
        with pytest.raises(DataError, match="'loose.png'.*not inside a class folder"):
            load_image_folder(root)

    def test_non_image_file_is_named(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        (root / "cats" / "notes.txt").write_text("hello")
        with pytest.raises(DataError, match="cats/notes.txt.*not an image"):
            load_image_folder(root)

    def test_corrupt_image_is_named(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        (root / "dogs" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
        with pytest.raises(DataError, match="dogs/broken.png"):
            load_image_folder(root)

    def test_empty_class_folder(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        (root / "birds").mkdir()
        with pytest.raises(DataError, match="'birds'.*no images"):
            load_image_folder(root)

    def test_huge_image_is_refused(self, tmp_path):
        root = make_class_folder(tmp_path / "r")
        Image.new("1", (7000, 7000)).save(root / "cats" / "huge.png")  # 49 megapixels, tiny file
        with pytest.raises(DataError, match="7000x7000.*megapixel"):
            load_image_folder(root)

    def test_too_many_classes(self, tmp_path):
        root = tmp_path / "many"
        for i in range(101):
            (root / f"c{i:03d}").mkdir(parents=True)
        with pytest.raises(DataError, match="101 class folders"):
            load_image_folder(root)

    def test_bad_image_size(self, tmp_path):
        with pytest.raises(DataError, match="image_size"):
            load_image_folder(make_class_folder(tmp_path / "r"), image_size=1000)

    def test_not_a_zip(self, tmp_path):
        path = tmp_path / "fake.zip"
        path.write_text("not a zip")
        with pytest.raises(DataError, match="not a valid .zip"):
            load_data(path)

    @pytest.mark.parametrize("evil", ["../{tag}.png", "a/../../{tag}.png", "/tmp/{tag}.png", "..\\{tag}.png"])
    def test_zip_path_traversal_is_refused(self, tmp_path, evil):
        tag = f"evil_{uuid.uuid4().hex}"
        (tmp_path / "sub").mkdir()
        zip_path = zip_tree(make_class_folder(tmp_path / "src"), tmp_path / "sub" / "evil.zip")
        png = io.BytesIO()
        Image.new("L", (4, 4)).save(png, format="PNG")
        with zipfile.ZipFile(zip_path, "a") as zf:
            zf.writestr(evil.format(tag=tag), png.getvalue())
        with pytest.raises(DataError, match="absolute path|'\\.\\.'"):
            load_image_folder(zip_path)
        # Nothing landed where the name points (next to the temp dir, /tmp) or anywhere under tmp_path.
        for where in {Path(tempfile.gettempdir()), Path("/tmp"), Path.cwd()}:
            assert not (where / f"{tag}.png").exists()
        assert not list(tmp_path.rglob(f"{tag}*"))

    def test_zip_bomb_is_refused_fast(self, tmp_path, monkeypatch):
        zip_path = tmp_path / "bomb.zip"
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            zf.writestr("a/0.png", b"x")
            with zf.open("b/zeros.png", "w", force_zip64=True) as f:
                zeros = bytes(1 << 20)
                for _ in range(600):  # 600 MiB declared, ~3 MB on disk
                    f.write(zeros)
        assert zip_path.stat().st_size < 10 << 20
        # "Refused fast" as behaviour: refused from the archive's directory, before a single member is inflated.
        with count_zip_members_opened(monkeypatch) as opened:
            with pytest.raises(DataError, match="zip bomb"):
                load_image_folder(zip_path)
        assert opened == [], f"members were unpacked before the refusal: {opened}"

    def test_zip_total_size_is_bounded(self, tmp_path, monkeypatch):
        # 600 members of 1 MiB each: none is suspicious alone, together they pass the 512 MiB limit.
        zip_path = tmp_path / "many.zip"
        zeros = bytes(1 << 20)
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
            for i in range(600):
                zf.writestr(f"c{i % 2}/{i}.bmp", zeros)
        with count_zip_members_opened(monkeypatch) as opened:
            with pytest.raises(DataError, match="would unpack to 600 MiB"):
                load_image_folder(zip_path)
        assert opened == [], f"members were unpacked before the total was checked: {opened}"

    def test_highly_compressed_member_is_refused(self, tmp_path):
        zip_path = tmp_path / "ratio.zip"
        with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
            zf.writestr("a/flat.bmp", bytes(20 << 20))
        with pytest.raises(DataError, match="expands .*x"):
            load_image_folder(zip_path)

    def test_zip_too_many_files(self, tmp_path):
        zip_path = tmp_path / "count.zip"
        with zipfile.ZipFile(zip_path, "w") as zf:
            for i in range(20_001):
                zf.writestr(f"c{i % 2}/{i}.png", b"")
        with pytest.raises(DataError, match="20,001 files"):
            load_image_folder(zip_path)
