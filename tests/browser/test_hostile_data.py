"""Issue 8 in a real browser: hostile and broken data files uploaded on the Train page.

Each file goes through the page's own uploader, as a student would send it: the page names the problem in an
error box (no exception element, no traceback), Start stays disabled, and the server keeps serving another
student's session. The files come from the unit tests' builders (tests/data/_helpers.py), which check the loaders'
exact messages; here we check that those messages reach the student.
"""
from __future__ import annotations

import pickle
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import (assert_no_exception, choose_training_data, health_ok, record_figure, upload,
                                    wait_for_app)
from tests.browser.test_uploaded_data import choose_option
from tests.data._helpers import huge_header_npz, images_u8, make_class_folder, write_npz, write_png, zip_tree

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


# -- issue 15: hostile checkpoints and .npz files, and text from users -----------------------------------------------
def refused_once(page, path: Path, phrase: str, what: str, kind: str = "") -> float:
    """Upload `path` into the page's uploader: exactly one message box (containing `kind`, if given) and it names
    the problem (`phrase`); no exception, no traceback. Returns the seconds from the upload to the message (a
    figure, not a requirement here)."""
    started = time.monotonic()
    upload(page, path)
    message = page.get_by_test_id("stAlert").filter(has_text=phrase)
    expect(message, f"{what}: no message containing {phrase!r}").to_have_count(1, timeout=60_000)
    seconds = time.monotonic() - started
    wait_for_app(page)
    expect(message, f"{what}: one message").to_have_count(1)
    expect(page.get_by_test_id("stMain").get_by_test_id("stAlert").filter(has_text=kind),
           f"{what}: one message box").to_have_count(1)
    assert_no_exception(page)
    assert "Traceback" not in page.locator("[data-testid='stMain']").inner_text(), what
    return seconds


def test_hostile_checkpoints_and_npz_files_get_one_clear_message_while_another_student_works(server, page, browser,
                                                                                           tmp_path):
    from tests import hostile_files as hf

    other = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        student = other.new_page()  # another student, on the Train page with the 8x8 digits, before and after
        student.goto(f"{server}/train")
        wait_for_app(student, 90_000)
        choose_training_data(student, "Digits")

        seconds = {}
        page.goto(f"{server}/library")
        wait_for_app(page, 90_000)
        for name, path, phrase in [
            ("deflated records", hf.write_pt_deflated(tmp_path), "is compressed"),
            ("three 8192-unit layers", hf.write_pt_wide_mlp(tmp_path), "hidden sizes must be at most"),
            ("a 4096x4096 conv model", hf.write_pt_huge_side_conv(tmp_path), "over the 256-pixel limit"),
        ]:
            seconds[name] = refused_once(page, path, phrase, name, kind="was refused")

        page.goto(f"{server}/train")
        wait_for_app(page, 90_000)
        choose_option(page, "Data", NPZ_CHOICE)
        for name, path, phrase in [
            ("bzip2 void records", hf.write_npz_bzip2_void(tmp_path), "bzip2, which is not read"),
            ("LZMA records", hf.write_npz_lzma(tmp_path), "LZMA, which is not read"),
            ("a declared size that lies", hf.write_npz_size_lie(tmp_path), "the file is damaged or was edited"),
            ("40,000 images of 64x64", hf.write_npz_over_budget(tmp_path), "over the 192 MiB limit"),
        ]:
            seconds[name] = refused_once(page, path, phrase, name)
            expect(page.get_by_role("button", name="Start training")).to_be_disabled()
        record_figure("hostile_upload_seconds", seconds)

        # The other student's session was served all along, and still is.
        assert health_ok(f"{server}/_stcore/health")
        choose_training_data(student, "MNIST")  # a rerun of their page, answered as before
        assert_no_exception(student)
        expect(student.get_by_role("button", name="Start training")).to_be_enabled()
    finally:
        other.close()


HOSTILE_TEXT = "[a](http://ev.il)![i](http://ev.il/i.png) <b>b</b> :red[r] $x$ www.ev.il a@ev.il"  # 80 characters


def test_links_file_names_and_model_names_show_as_plain_text(server, page, tmp_path):
    """Finding 9: a shared link's ?model= and an uploaded checkpoint's name are shown as typed: no link, no image,
    no HTML, no colour, no maths, and no stray backslashes from the escaping."""
    from urllib.parse import quote

    from ui.text import WORD_JOINER
    from vae_core.checkpoint import checkpoint_bytes
    from vae_core.config import model_config_for
    from vae_core.models import build_model

    def no_markup(where: str) -> None:
        main = page.locator("[data-testid='stMain']")
        assert main.locator("a[href*='ev.il'], img[src*='ev.il']").count() == 0, where
        assert main.locator("b:text-is('b'), .katex, [class*='ColoredText']:text-is('r')").count() == 0, where
        assert main.locator("[class*='ColoredText']:empty").count() == 0, where  # ":red" alone: an empty span

    def shown(locator) -> str:
        """The text as a reader sees it (ui.plain puts invisible word joiners inside bare links)."""
        return locator.inner_text().replace(WORD_JOINER, "")

    page.goto(f"{server}/?model={quote(HOSTILE_TEXT)}")
    wait_for_app(page, 90_000)
    notice = page.get_by_test_id("stAlert").filter(has_text="is not available here")
    expect(notice).to_have_count(1)
    assert f"“{HOSTILE_TEXT}”" in shown(notice), shown(notice)  # as typed, every character, no backslash
    no_markup("the link's notice")

    path = tmp_path / "hostile-name.pt"
    model = build_model(model_config_for((1, 8, 8), 0, latent_dim=2, hidden=(16,)), seed=0)
    path.write_bytes(checkpoint_bytes(model, {"name": HOSTILE_TEXT[:70], "dataset": "<img src=http://ev.il>",
                                              "about": HOSTILE_TEXT}))
    page.goto(f"{server}/library")
    wait_for_app(page, 90_000)
    upload(page, path)
    wait_for_app(page)
    loaded = page.get_by_test_id("stAlert").filter(has_text="It is now in the model picker")
    expect(loaded).to_have_count(1)
    assert HOSTILE_TEXT[:70] in shown(loaded), shown(loaded)
    main = shown(page.locator("[data-testid='stMain']"))
    assert "<img src=http://ev.il>" in main and HOSTILE_TEXT in main and "\\" not in main
    no_markup("the library")
    assert_no_exception(page)
