"""Issue 8 in a real browser: hostile and broken data files uploaded on the Train page.

Each file goes through the page's own uploader, as a student would send it: the page names the problem in an
error box (no exception element, no traceback), Start stays disabled, and the server keeps serving another
student's session. The files come from the unit tests' builders (tests/test_data.py), which check the loaders'
exact messages; here we check that those messages reach the student.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, health_ok, upload, wait_for_app
from tests.browser.test_uploaded_data import choose_option
from tests.test_data import huge_header_npz, images_u8, make_class_folder, write_npz, write_png, zip_tree

pytestmark = pytest.mark.timeout(300)

NPZ_CHOICE = "My own .npz file (array x, optional labels y)"
ZIP_CHOICE = "My own images: a .zip with one folder per class"


def hostile_npz_files(folder: Path) -> dict[str, tuple[Path, str]]:
    """name -> (file, a phrase the page's message must contain)."""
    pickled = folder / "pickled.npz"
    pickled.write_bytes(pickle.dumps({"x": images_u8(12)}))
    objects = folder / "objects.npz"
    np.savez(objects, x=np.array([images_u8(2), "text"], dtype=object))  # savez pickles object arrays
    return {
        "object arrays (a pickle inside)": (objects, "Python objects"),
        "a pickle named .npz": (pickled, "not a readable .npz"),
        "NaN pixels": (write_npz(folder / "nan.npz", x=np.full((20, 8, 8), np.nan)), "NaN"),
        "wrong shape": (write_npz(folder / "flat.npz", x=np.zeros((20, 8), np.uint8)), "2 dimensions"),
        "huge declared array": (huge_header_npz(folder / "huge.npz"), "too large"),
    }


def hostile_zip_files(folder: Path) -> dict[str, tuple[Path, str]]:
    traversal = zip_tree(make_class_folder(folder / "t"), folder / "traversal.zip")
    with zipfile.ZipFile(traversal, "a") as zf:
        zf.writestr("../../escaped.png", (folder / "t" / "cats" / "0.png").read_bytes())
    bomb = folder / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("a/0.png", b"x")
        with zf.open("b/zeros.png", "w", force_zip64=True) as f:
            for _ in range(600):  # 600 MiB declared, ~3 MB sent
                f.write(bytes(1 << 20))
    notes = make_class_folder(folder / "n")
    (notes / "cats" / "notes.txt").write_text("hello")
    many = folder / "many"
    for i in range(1000):  # a thousand classes of one tiny image each
        write_png(many / f"class{i:04d}" / "0.png", size=(4, 4), seed=i)
    big = make_class_folder(folder / "b")
    Image.new("1", (8000, 5500)).save(big / "cats" / "poster.png")  # 44 megapixels in a small file
    return {
        "path traversal": (traversal, "'..'"),
        "zip bomb": (bomb, "zip bomb"),
        "a non-image file": (zip_tree(notes, folder / "notes.zip"), "not an image"),
        "a thousand classes": (zip_tree(many, folder / "many.zip"), "1000 class folders"),
        "a 44-megapixel image": (zip_tree(big, folder / "big.zip"), "megapixel"),
    }


def refused(page, choice: str, files: dict[str, tuple[Path, str]]) -> None:
    choose_option(page, "Data", choice)
    for what, (path, phrase) in files.items():
        upload(page, path)
        wait_for_app(page)
        message = page.get_by_test_id("stAlert").filter(has_text=phrase)
        expect(message, f"{what}: no message containing {phrase!r}").to_be_visible(timeout=60_000)
        assert_no_exception(page)
        assert "Traceback" not in page.locator("[data-testid='stMain']").inner_text(), what
        expect(page.get_by_role("button", name="Start training")).to_be_disabled()


@pytest.mark.parametrize("kind", ["npz", "zip"])
def test_hostile_data_files_get_a_clear_message_and_the_server_keeps_serving(server, page, browser, tmp_path, kind):
    files = hostile_npz_files(tmp_path) if kind == "npz" else hostile_zip_files(tmp_path)
    page.goto(f"{server}/train")
    wait_for_app(page, 90_000)
    refused(page, NPZ_CHOICE if kind == "npz" else ZIP_CHOICE, files)
    assert not list(tmp_path.parent.rglob("escaped.png")) and not Path("/escaped.png").exists()

    # Another student's session is served as before.
    assert health_ok(f"{server}/_stcore/health")
    other = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        student = other.new_page()
        student.goto(f"{server}/train")
        wait_for_app(student, 90_000)
        assert_no_exception(student)
        expect(student.get_by_role("button", name="Start training")).to_be_enabled()
    finally:
        other.close()
