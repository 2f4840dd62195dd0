"""The Generate page: every bundled model renders; the same seed gives the same images, another seed others;
temperature 0 makes every sample the centre's image; the CVAE's rows per class; the nearest training images and
their distances; the PNG download; settings in the URL, and defaults with a notice for a bad link."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
import streamlit
import torch
from PIL import Image
from streamlit.testing.v1 import AppTest

import ui.datasets
from ui.images import scale_for
from tests.app.conftest import ROOT, open_page_link, picker
from vae_core.checkpoint import load_checkpoint
from vae_core.data import load_from_spec
from vae_core.latent import image_grid, nearest_training_images, sample_prior
from vae_core.zoo import ZOO

PAGE = "app_pages/generate.py"
ZOO_NAMES = [s.name for s in ZOO if (ROOT / "checkpoints" / f"{s.name}.pt").is_file()]


@pytest.fixture
def downloads(monkeypatch) -> list[bytes]:
    """The data of every st.download_button the app draws (AppTest does not expose it)."""
    seen: list[bytes] = []
    original = streamlit.download_button

    def recording(label, data, *args, **kwargs):
        seen.append(data)
        return original(label, data, *args, **kwargs)

    monkeypatch.setattr(streamlit, "download_button", recording)
    return seen


def open_generate(name: str = "digits-vae-2d") -> AppTest:
    return open_link(model=f"zoo/{name}")


def open_link(**params) -> AppTest:
    """A fresh session opening this page at a link with these query parameters."""
    return open_page_link(PAGE, **params)


def shown(at: AppTest) -> np.ndarray:
    """The samples picture the page shows (inline PNG)."""
    [image] = [i for i in at.image if i.value[0].startswith("data:image/png")]
    return png(base64.b64decode(image.value[0].split(",", 1)[1]))


def png(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def tiles(picture: np.ndarray, n: int, columns: int, side: int) -> list[np.ndarray]:
    """The n tiles of a grid of `side`-pixel tiles with `gap`-pixel gaps, as image_grid lays them out."""
    rows = -(-n // columns)
    gap = (picture.shape[1] - columns * side) // (columns + 1)
    out = []
    for i in range(n):
        r, c = divmod(i, columns)
        y, x = gap + r * (side + gap), gap + c * (side + gap)
        out.append(picture[y:y + side, x:x + side])
    assert picture.shape[0] == rows * side + (rows + 1) * gap
    return out


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def labelled(widgets, label: str):
    [widget] = [w for w in widgets if w.label == label]
    return widget


def model(name: str):
    return load_checkpoint(ROOT / "checkpoints" / f"{name}.pt")


# -- every model ------------------------------------------------------------------------------------------------------
def test_every_bundled_model_renders(downloads):
    at = open_generate()
    for name in ZOO_NAMES:
        picker(at).set_value(f"zoo/{name}").run()
        assert not at.exception, (name, [e.value for e in at.exception])
        assert not at.error, (name, [e.value for e in at.error])
        assert at.title[0].value == "Generate"
        conditional = model(name)[0].config.is_conditional
        assert len(charts(at) if conditional else [shown(at)]) == 1, name  # a CVAE: a figure with class rows
        assert [b.label for b in at.get("download_button")] == ["Download the grid (PNG)"]
        assert png(downloads[-1]).shape[2] == 3
        assert all(s.help for s in at.slider)


@pytest.mark.parametrize("settings", [
    dict(input_shape=(1, 8, 8), kind="ae", latent_dim=1),
    dict(input_shape=(3, 16, 16), num_classes=3, kind="cvae", arch="conv", latent_dim=12),
])
def test_other_shapes_of_model_without_their_data(settings, downloads):
    from vae_core.checkpoint import checkpoint_bytes
    from vae_core.config import model_config_for
    from vae_core.library import entry_from_bytes
    from vae_core.models import build_model

    at = open_generate()
    shape, classes = settings.pop("input_shape"), settings.pop("num_classes", 0)
    entry, m = entry_from_bytes(checkpoint_bytes(build_model(model_config_for(shape, classes, **settings)),
                                                 {"name": "odd model"}), "upload")
    at.session_state["uploads"] = {entry.key: (entry, m)}
    at.run()
    picker(at).set_value(entry.key).run()
    assert not at.exception, [e.value for e in at.exception]
    assert labelled(at.toggle, "Show each sample's nearest training image").disabled
    scale = scale_for(torch.zeros(1, *shape))
    rows, columns = (classes, 8) if classes else (2, 8)
    h, w = shape[1:]
    assert png(downloads[-1]).shape == ((rows * (h + 1) + 1) * scale, (columns * (w + 1) + 1) * scale, 3)


# -- seeds and temperature ---------------------------------------------------------------------------------------
class TestSampling:
    def test_same_seed_same_images_another_seed_others(self):
        a, b = open_generate(), open_generate()
        for at in (a, b):
            at.number_input(key="gen_seed").set_value(5).run()
        assert np.array_equal(shown(a), shown(b))
        labelled(a.button, "New samples").click().run()
        assert a.number_input(key="gen_seed").value == 6
        assert not np.array_equal(shown(a), shown(b))

    def test_the_picture_is_the_seeded_prior_samples(self):
        at = open_generate()
        at.number_input(key="gen_seed").set_value(3).run()
        m = model("digits-vae-2d")[0]
        images = sample_prior(m, 16, seed=3)[1]
        assert np.array_equal(shown(at), image_grid(images, nrow=8, scale=scale_for(images)))

    def test_temperature_zero_makes_every_sample_the_same(self):
        at = open_generate()
        labelled(at.slider, "Temperature").set_value(0.0).run()
        picture = shown(at)
        parts = tiles(picture, 16, 8, 8 * scale_for(torch.zeros(1, 1, 8, 8)))
        assert all(np.array_equal(parts[0], p) for p in parts[1:])
        at.number_input(key="gen_seed").set_value(9).run()
        assert np.array_equal(shown(at), picture)  # the seed no longer matters either

    def test_temperature_has_a_help_that_explains_it(self):
        at = open_generate()
        assert "N(0, T²·I)" in labelled(at.slider, "Temperature").help


# -- the CVAE -------------------------------------------------------------------------------------------------------
class TestCvae:
    def test_one_row_per_class_with_the_same_codes(self):
        at = open_generate("digits-cvae-2d")
        [fig] = charts(at)
        names = model("digits-cvae-2d")[1]["label_names"]
        assert fig["layout"]["yaxis"]["ticktext"] == names
        assert fig["layout"]["yaxis"]["title"]["text"] == "class"
        assert len(fig["layout"]["xaxis"]["ticktext"]) == 8

    def test_one_class(self):
        at = open_generate("digits-cvae-2d")
        labelled(at.selectbox, "Class").set_value(4).run()
        assert not charts(at)
        m = model("digits-cvae-2d")[0]
        images = sample_prior(m, 8, seed=0, y=4)[1]
        assert np.array_equal(shown(at), image_grid(images, nrow=8, scale=scale_for(images)))
        assert at.query_params["class"] == "4"


# -- is it just copying? ----------------------------------------------------------------------------------------------
class TestNearest:
    def test_each_sample_gets_its_nearest_training_image_and_distance(self):
        at = open_generate()
        labelled(at.slider, "How many samples").set_value(8).run()
        labelled(at.toggle, "Show each sample's nearest training image").set_value(True).run()
        [fig] = charts(at)
        m, meta = model("digits-vae-2d")
        data = load_from_spec(meta["data_spec"])
        images = sample_prior(m, 8, seed=0)[1]
        _, dist = nearest_training_images(m, images, data.train.x, k=1)
        notes = [a["text"] for a in fig["layout"]["annotations"]]
        assert notes == [f"{d:.1f}" for d in dist[:, 0].tolist()]
        assert fig["layout"]["yaxis"]["ticktext"] == ["samples", "nearest"]
        assert any("never saw typically lies" in c.value for c in at.caption)

    def test_without_the_data_the_toggle_says_why_it_is_off(self, monkeypatch):
        monkeypatch.setattr(ui.datasets, "model_data", lambda entry: None)
        at = open_generate()
        assert labelled(at.toggle, "Show each sample's nearest training image").disabled
        assert any("does not have the data" in c.value for c in at.caption)


# -- download -------------------------------------------------------------------------------------------------------
def test_the_png_download_is_the_grid_at_its_size(downloads):
    at = open_generate()
    labelled(at.slider, "How many samples").set_value(12).run()
    picture = png(downloads[-1])
    scale = scale_for(torch.zeros(1, 1, 8, 8))
    assert picture.shape == ((2 * 9 + 1) * scale, (8 * 9 + 1) * scale, 3)  # 12 samples: 2 rows of 8 columns
    assert np.array_equal(picture, shown(at))


def test_an_autoencoder_gets_a_warning_about_sampling_it():
    at = open_generate("digits-ae-2d")
    assert any("not a generator" in w.value for w in at.warning)


# -- links ----------------------------------------------------------------------------------------------------------
class TestLinks:
    def test_settings_are_in_the_url_and_a_link_restores_them(self):
        at = open_generate()
        at.number_input(key="gen_seed").set_value(11).run()
        labelled(at.slider, "Temperature").set_value(0.65).run()
        labelled(at.slider, "How many samples").set_value(5).run()
        assert (at.query_params["seed"], at.query_params["temp"], at.query_params["n"]) == ("11", "0.65", "5")
        other = open_link(**at.query_params)
        assert other.number_input(key="gen_seed").value == 11
        assert labelled(other.slider, "Temperature").value == 0.65
        assert np.array_equal(shown(other), shown(at))

    def test_a_cvae_link_keeps_its_class(self):
        at = open_link(model="zoo/digits-cvae-2d", seed="2", temp="0.5", n="3", **{"class": "7"})
        assert labelled(at.selectbox, "Class").value == 7
        assert labelled(at.slider, "Samples per class").value == 3

    @pytest.mark.parametrize("params", [{"seed": "-4"}, {"temp": "hot"}, {"temp": "3"}, {"n": "1000"},
                                        {"model": "zoo/digits-cvae-2d", "class": "12"}])
    def test_garbage_gets_defaults_and_a_notice(self, params):
        at = open_link(**params)
        assert any("could not be used" in i.value for i in at.info), [i.value for i in at.info]
        assert at.number_input(key="gen_seed").value == 0
        assert labelled(at.slider, "Temperature").value == 1.0


# -- the model the app opens on ----------------------------------------------------------------------------------------
class TestTheDefaultModel:
    def test_mnist_samples_are_crisp_and_their_nearest_are_found_among_60000_digits(self):
        at = open_link()  # a link without a model: the app's default
        assert picker(at).value == "zoo/mnist-vae-2d"
        m, meta = model("mnist-vae-2d")
        images = sample_prior(m, 16, seed=0)[1]
        assert images.shape[1:] == (1, 28, 28)
        assert np.array_equal(shown(at), image_grid(images, nrow=8, scale=3))  # 28 px as 3x3 blocks: 84 px a tile
        labelled(at.slider, "How many samples").set_value(4).run()
        labelled(at.toggle, "Show each sample's nearest training image").set_value(True).run()
        assert not at.exception, [e.value for e in at.exception]
        [fig] = charts(at)
        data = load_from_spec(meta["data_spec"])
        assert len(data.train.x) == 60_000
        _, dist = nearest_training_images(m, sample_prior(m, 4, seed=0)[1], data.train.x, k=1)
        assert [a["text"] for a in fig["layout"]["annotations"]] == [f"{d:.1f}" for d in dist[:, 0].tolist()]
