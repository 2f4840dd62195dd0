"""The Interpolate page: every bundled model renders; the ends are chosen by number, by clicks on the map, at random
from two classes and from uploaded images; the path starts and ends exactly at the chosen points; the strip has n
steps and the GIF n frames; the ends, method and steps round-trip through the URL; bad input gets a clear message."""
from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

from tests.app.conftest import open_app, picker
from tests.app.test_latent_map_page import (
    DIGITS, ZOO_KEYS, array, click, digits_data, image_with_caption, point_of, select_on_map, spec, trace,
)

PAGE = "app_pages/interpolate.py"


def open_interpolate(**link) -> AppTest:
    """A fresh session opened at a link with these query parameters, on the digits VAE unless the link names
    another model (most tests here read its 8x8 test images), then this page."""
    return open_app(PAGE, link={"model": DIGITS, **link})


@pytest.fixture
def downloads(monkeypatch):
    """The files the page hands to download buttons, by mimetype (AppTest keeps no media files after a run)."""
    files: dict[str, bytes] = {}
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self, path_or_data, mimetype, kind, filename=None):
        if isinstance(path_or_data, bytes):
            files[mimetype] = path_or_data
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    return files


def ends_text(at: AppTest) -> str:
    return " | ".join(m.value for m in at.markdown if m.value.startswith(("**Start:**", "**End:**")))


def path_xy(at: AppTest) -> np.ndarray:
    path = trace(spec(at, "ip_chart"), "interpolation path")
    return np.stack([array(path["x"]).astype(float), array(path["y"]).astype(float)], axis=1)


class TestEveryModel:
    def test_every_bundled_model_renders_a_path_a_chart_and_downloads(self):
        at = open_app(PAGE)  # the app's default model first, then every other
        assert picker(at).value == "zoo/mnist-vae-2d"
        assert at.title[0].value == "Interpolate"
        for key in ZOO_KEYS:
            picker(at).set_value(key).run()
            assert not at.exception, (key, [e.value for e in at.exception])
            assert not at.error, (key, [e.value for e in at.error])
            assert len(path_xy(at)) == 10, key
            elbo = spec(at, "ip_elbo")["layout"]
            assert elbo["xaxis"]["title"]["text"] == "step"
            want = "−reconstruction error (nats)" if key.endswith(("-ae-2d", "-wae-2d")) else "ELBO (nats)"  # no KL
            assert elbo["yaxis"]["title"]["text"] == want, key
            assert [b.label for b in at.get("download_button")] == ["Download the strip (PNG)",
                                                                   "Download the animation (GIF)"]

    def test_the_cvae_decodes_the_path_as_the_chosen_class(self):
        at = open_interpolate()
        picker(at).set_value("zoo/digits-cvae-2d").run()
        before = image_with_caption(at, "10 steps")
        at.selectbox(key="ip_class").set_value(4).run()
        assert not at.exception
        assert not np.array_equal(before, image_with_caption(at, "10 steps"))
        assert at.query_params["cls"] == "4"


class TestPath:
    def test_the_path_starts_and_ends_at_the_chosen_points(self):
        at = open_interpolate()
        for key in ("zoo/digits-vae-2d", "zoo/digits-vae-10d"):  # the identity view, then a PCA view
            picker(at).set_value(key).run()
            at.number_input(key="ip_a").set_value(11).run()
            at.number_input(key="ip_b").set_value(200).run()
            figure, xy = spec(at, "ip_chart"), path_xy(at)
            assert tuple(xy[0]) == pytest.approx(point_of(figure, 11), abs=1e-6), key
            assert tuple(xy[-1]) == pytest.approx(point_of(figure, 200), abs=1e-6), key

    def test_steps_method_and_the_downloads(self, downloads):
        at = open_interpolate()
        at.slider(key="ip_n").set_value(7).run()
        strip = image_with_caption(at, "7 steps")
        assert strip.shape[1] > 6 * strip.shape[0]  # one row of 7 tiles
        assert len(path_xy(at)) == 7
        with Image.open(io.BytesIO(downloads["image/gif"])) as gif:
            assert gif.n_frames == 7
            assert gif.info["loop"] == 0
            assert gif.size[0] >= 96  # upscaled: an 8-pixel digit is not a speck
        with Image.open(io.BytesIO(downloads["image/png"])) as png:
            assert png.size[0] > 6 * png.size[1]
        linear = path_xy(at)
        at.radio(key="ip_method").set_value("slerp").run()
        slerp = path_xy(at)
        assert not np.allclose(linear[1:-1], slerp[1:-1])  # a different path ...
        assert np.allclose(linear[[0, -1]], slerp[[0, -1]])  # ... between the same ends
        assert (at.query_params["method"], at.query_params["n"]) == ("slerp", "7")

    def test_a_collapsed_model_still_gives_n_frames(self, downloads):
        at = open_interpolate()
        picker(at).set_value("zoo/digits-betavae4-2d").run()  # every step decodes to about the same blur
        at.slider(key="ip_n").set_value(12).run()
        with Image.open(io.BytesIO(downloads["image/gif"])) as gif:
            assert gif.n_frames == 12


class TestChoosingEnds:
    def test_by_number(self):
        data = digits_data()
        at = open_interpolate()
        at.number_input(key="ip_a").set_value(5).run()
        at.number_input(key="ip_b").set_value(9).run()
        assert "test image #5" in ends_text(at) and "test image #9" in ends_text(at)
        start = image_with_caption(at, "Start image")
        k = start.shape[0] // 8
        assert np.array_equal(start[::k, ::k, 0], (data.test.x[5, 0].numpy() * 255).round().astype(np.uint8))
        assert (at.query_params["a"], at.query_params["b"]) == ("5", "9")

    def test_by_clicking_the_map_first_start_then_end(self):
        at = open_interpolate()
        select_on_map(at, "ip_chart", click(30, browser_form=True))
        assert "**Start:** test image #30" in ends_text(at)
        select_on_map(at, "ip_chart", click(31))
        assert "**End:** test image #31" in ends_text(at)
        select_on_map(at, "ip_chart", {"points": [{"x": 0.5, "y": 1.0, "customdata": [-1]}]})
        assert "**Start:** the map spot (0.50, 1.00)" in ends_text(at)
        figure, xy = spec(at, "ip_chart"), path_xy(at)
        assert tuple(xy[0]) == pytest.approx((0.5, 1.0), abs=1e-6)
        assert tuple(xy[-1]) == pytest.approx(point_of(figure, 31), abs=1e-6)
        assert "za" in at.query_params and "a" not in at.query_params

    def test_at_random_from_two_classes_is_seeded(self):
        data = digits_data()
        at = open_interpolate()
        at.selectbox(key="ip_rand_a").set_value(3).run()
        at.selectbox(key="ip_rand_b").set_value(8).run()
        at.number_input(key="ip_seed").set_value(11).run()
        [b for b in at.button if b.label == "Pick at random"][0].click().run()
        a, b = int(at.query_params["a"]), int(at.query_params["b"])
        assert (int(data.test.y[a]), int(data.test.y[b])) == (3, 8)
        assert at.number_input(key="ip_seed").value == 12  # moved on: the next press gives a new pair
        at.number_input(key="ip_seed").set_value(11).run()
        [b for b in at.button if b.label == "Pick at random"][0].click().run()
        assert (int(at.query_params["a"]), int(at.query_params["b"])) == (a, b)  # same seed, same pair

    def test_from_uploaded_images(self):
        data = digits_data()
        at = open_interpolate()
        digit = (data.test.x[20, 0].numpy() * 255).round().astype(np.uint8).repeat(4, 0).repeat(4, 1)  # 32x32
        buffer = io.BytesIO()
        Image.fromarray(digit).save(buffer, format="PNG")
        at.file_uploader(key="ip_upload_a").upload("my_digit.png", buffer.getvalue(), "image/png").run()
        assert not at.exception
        assert "**Start:** your image my_digit.png" in ends_text(at)
        # Area-averaging the 4x nearest upscale gives the digit back (to 8-bit rounding), so its code is the test
        # image's code.
        figure, xy = spec(at, "ip_chart"), path_xy(at)
        assert tuple(xy[0]) == pytest.approx(point_of(figure, 20), abs=5e-3)
        assert len(at.query_params["za"].split(",")) == 2

    def test_a_file_that_is_not_an_image_gets_a_clear_message(self):
        at = open_interpolate()
        at.file_uploader(key="ip_upload_b").upload("notes.png", b"definitely not a png", "image/png").run()
        assert not at.exception
        assert any("PNG or JPEG" in e.value for e in at.error)
        assert "**End:** test image" in ends_text(at)  # the end is unchanged


class TestLinks:
    def _open_with(self, **params) -> AppTest:
        return open_interpolate(**params)

    def test_a_link_round_trips(self):
        at = open_interpolate()
        at.number_input(key="ip_a").set_value(3).run()
        at.number_input(key="ip_b").set_value(77).run()
        at.radio(key="ip_method").set_value("slerp").run()
        at.slider(key="ip_n").set_value(5).run()
        link = dict(at.query_params)
        reopened = self._open_with(**link)
        assert "test image #3" in ends_text(reopened) and "test image #77" in ends_text(reopened)
        assert reopened.radio(key="ip_method").value == "slerp"
        assert reopened.slider(key="ip_n").value == 5
        assert np.allclose(path_xy(reopened), path_xy(at))

    def test_a_latent_end_round_trips(self):
        at = self._open_with(model="zoo/digits-vae-10d", a="4", zb=",".join(["0.5"] * 10))
        assert "**End:** a code from the link (decoded)" in ends_text(at)
        assert np.allclose(array(at.query_params["zb"].split(",")).astype(float), 0.5)

    @pytest.mark.parametrize("params", [{"a": "-3"}, {"b": "x"}, {"za": "1,2,3"}, {"method": "zigzag"},
                                        {"n": "1000"}])
    def test_a_garbled_link_opens_on_defaults_with_a_notice(self, params):
        at = self._open_with(**params)
        assert any("could not be used" in i.value for i in at.info)
        assert at.slider(key="ip_n").value == 10 and at.radio(key="ip_method").value == "linear"
        assert "test image #3" in ends_text(at) and "test image #12" in ends_text(at)  # the default pair
