"""The Latent map page: every bundled model renders; the options draw what they say; a click, a lasso and a click
on empty space (simulated as the browser sends them) show the right images; the selection round-trips through the
URL; a garbled link opens on defaults with a notice."""
from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

from tests.app.conftest import ROOT, open_app, picker
from vae_core.zoo import ZOO

PAGE = "app_pages/latent_map.py"
ZOO_KEYS = [f"zoo/{s.name}" for s in ZOO if (ROOT / "checkpoints" / f"{s.name}.pt").is_file()]
DIGITS = "zoo/digits-vae-2d"  # most tests below read its 8x8 pixels and count its 359 test images


def open_map(**link) -> AppTest:
    """A fresh session opened at a link with these query parameters, on the digits VAE unless the link names
    another model, then this page. (The app itself opens on the MNIST VAE: TestTheDefaultModel.)"""
    return open_app(PAGE, link={"model": DIGITS, **link})


# -- helpers (the Interpolate page's tests use them too) ---------------------------------------------------------------
def chart(at: AppTest, key: str):
    charts = [c for c in at.get("plotly_chart") if c.key == key]
    assert charts, f"no plotly chart with key {key!r}"
    return charts[0]


def spec(at: AppTest, key: str) -> dict:
    return json.loads(chart(at, key).proto.spec)


def array(value) -> np.ndarray:
    """A figure array from Plotly's JSON: a plain list, or numpy's {"dtype", "bdata", "shape"} encoding."""
    if isinstance(value, dict) and "bdata" in value:
        out = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return out.reshape([int(s) for s in str(shape).split(",")]) if shape else out
    return np.asarray(value)


def trace(figure: dict, name: str) -> dict:
    found = [t for t in figure["data"] if t.get("name") == name]
    assert found, f"no trace {name!r} in {[t.get('name') for t in figure['data']]}"
    return found[0]


def point_of(figure: dict, index: int) -> tuple[float, float]:
    """The (x, y) of the scatter point that carries data index `index`."""
    for t in figure["data"]:
        if "customdata" not in t or t.get("name") == "click anywhere":
            continue
        custom = array(t["customdata"]).reshape(-1)
        hits = np.flatnonzero(custom == index)
        if len(hits):
            return float(array(t["x"])[hits[0]]), float(array(t["y"])[hits[0]])
    raise AssertionError(f"no point with index {index}")


def select_on_map(at: AppTest, key: str, selection: dict) -> AppTest:
    """Send a plotly selection as the browser does (AppTest has no plotly-chart API): this run's widget states
    plus the chart's selection JSON, then run."""
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=chart(at, key).proto.id,
                                      string_value=json.dumps({"selection": {"points": [], "point_indices": [],
                                                                             "box": [], "lasso": [], **selection}})))
    at._run(states)
    assert not at.exception, [e.value for e in at.exception]
    return at


def click(index: int, x: float = 0.0, y: float = 0.0, browser_form: bool = False) -> dict:
    """The selection a click on a data point sends (customdata as documented, or as a real browser sends it)."""
    custom = {"0": index} if browser_form else [index]
    return {"points": [{"curve_number": 1, "point_number": 0, "point_index": 0, "x": x, "y": y,
                        "customdata": custom}], "point_indices": [0]}


def images_shown(at: AppTest) -> list[tuple[np.ndarray, str]]:
    """Every st.image as (pixels (H, W, 3) uint8, caption), for images sent inline as PNG data URIs."""
    out = []
    for element in at.get("image"):
        for img in element.proto.imgs:
            if img.url.startswith("data:image/png;base64,"):
                data = base64.b64decode(img.url.split(",", 1)[1])
                out.append((np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), img.caption))
    return out


def image_with_caption(at: AppTest, caption: str) -> np.ndarray:
    found = [pixels for pixels, cap in images_shown(at) if cap.startswith(caption)]
    assert found, f"no image captioned {caption!r}: {[c for _, c in images_shown(at)]}"
    return found[0]


def downscale(pixels: np.ndarray, size: int) -> np.ndarray:
    """A crisp upscaled tile back to size x size (every k-th pixel), grey channel."""
    k = pixels.shape[0] // size
    return pixels[::k, ::k, 0][:size, :size]


def digits_data():
    from vae_core.data import load_data

    return load_data("digits", seed=0)


def url_floats(at: AppTest, name: str) -> list[float]:
    return [float(v) for v in at.query_params[name].split(",")]


def markdown_text(at: AppTest) -> str:
    return "\n".join(m.value for m in at.markdown)


# -- tests -------------------------------------------------------------------------------------------------------------
class TestEveryModel:
    def test_every_bundled_model_renders_with_labelled_axes(self):
        at = open_app(PAGE)
        assert at.title[0].value == "Latent map"
        for key in ZOO_KEYS:
            picker(at).set_value(key).run()
            assert not at.exception, (key, [e.value for e in at.exception])
            assert not at.error, (key, [e.value for e in at.error])
            layout = spec(at, "lm_chart")["layout"]
            x_title, y_title = layout["xaxis"]["title"]["text"], layout["yaxis"]["title"]["text"]
            assert (x_title, y_title) == (("z[0]", "z[1]") if key.endswith("2d") else (x_title, y_title))
            if not key.endswith("2d"):
                assert x_title.startswith("PC 1") and y_title.startswith("PC 2"), key

    def test_the_cvae_offers_a_class_and_decodes_with_it(self):
        at = open_map()
        picker(at).set_value("zoo/digits-cvae-2d").run()
        at.selectbox(key="lm_class").set_value(7).run()
        at.toggle(key="lm_background").set_value(True).run()
        select_on_map(at, "lm_chart", {"points": [{"x": 0.5, "y": -0.5, "customdata": [-1]}]})
        assert "as class **7**" in markdown_text(at)
        assert at.query_params["cls"] == "7"
        assert len(spec(at, "lm_chart")["layout"]["images"]) == 1

    def test_tsne_is_view_only(self):
        at = open_map()
        picker(at).set_value("zoo/digits-vae-10d").run()
        at.selectbox(key="lm_view").set_value("tsne").run()
        assert not at.exception
        figure = spec(at, "lm_chart")
        assert "view only" in figure["layout"]["xaxis"]["title"]["text"]
        assert all(at.toggle(key=k).disabled for k in ("lm_sigma", "lm_prior", "lm_background"))
        assert not [t for t in figure["data"] if t.get("name") == "click anywhere"]  # no spot to decode
        assert at.query_params["view"] == "tsne"


class TestOptions:
    def test_uncertainty_prior_and_background_are_drawn(self):
        at = open_map()
        names = {t.get("name") for t in spec(at, "lm_chart")["data"]}
        assert not any(n and n.startswith("μ ± σ") for n in names) and "prior 1σ" not in names
        for key in ("lm_sigma", "lm_prior", "lm_background"):
            at.toggle(key=key).set_value(True).run()
        figure = spec(at, "lm_chart")
        ellipses = trace(figure, "μ ± σ (120 images)")
        assert np.isnan(array(ellipses["x"]).astype(float)).sum() == 120  # one break after each outline
        assert len([t for t in figure["data"] if t.get("legendgroup") == "prior"]) == 3
        image = figure["layout"]["images"][0]
        assert image["source"].startswith("data:image/png;base64,") and image["layer"] == "below"

    def test_an_autoencoder_has_no_uncertainty_to_draw(self):
        at = open_map()
        picker(at).set_value("zoo/digits-ae-2d").run()
        assert at.toggle(key="lm_sigma").disabled
        assert not at.toggle(key="lm_prior").disabled


class TestSelection:
    def test_a_click_shows_that_test_image_and_its_reconstruction(self):
        data = digits_data()
        at = open_map()
        select_on_map(at, "lm_chart", click(42, browser_form=True))
        assert "Test image #42" in markdown_text(at)
        shown = downscale(image_with_caption(at, "Input"), 8)
        assert np.array_equal(shown, (data.test.x[42, 0].numpy() * 255).round().astype(np.uint8))
        assert image_with_caption(at, "Reconstruction").shape == image_with_caption(at, "Input").shape
        assert at.query_params["idx"] == "42"
        assert trace(spec(at, "lm_chart"), "selected")  # ringed on the map

    def test_a_lasso_shows_the_first_sixteen_of_the_group(self):
        at = open_map()
        points = [{"x": 0, "y": 0, "customdata": [i]} for i in range(30, 50)] + [{"x": 1, "y": 1, "customdata": [-1]}]
        select_on_map(at, "lm_chart", {"points": points, "lasso": [{"x": [0, 1, 1], "y": [0, 0, 1]}]})
        assert "**20 test images selected** (the first 16 shown)" in markdown_text(at)
        inputs = image_with_caption(at, "Inputs")
        assert inputs.shape[0] == inputs.shape[1]  # 16 as 4 x 4: fits beside the map at a readable size
        assert "idx" not in at.query_params  # a group is not put in the link

    def test_an_empty_lasso_says_so(self):
        at = open_map()
        select_on_map(at, "lm_chart", {"points": [{"x": 1, "y": 1, "customdata": [-1]}], "box": [{"x": [0, 1]}]})
        assert any("No images inside" in i.value for i in at.info)

    def test_a_click_on_empty_space_decodes_it_and_finds_its_neighbours(self):
        at = open_map()
        select_on_map(at, "lm_chart", {"points": [{"x": 1.25, "y": -0.5, "customdata": {"0": -1}}]})
        assert "**Decoded spot** (1.25, -0.50)" in markdown_text(at)
        assert image_with_caption(at, "What the decoder makes").shape[0] >= 150  # readable: 8 px shown at ~160
        pixel_caption = [c for _, c in images_shown(at) if c.startswith("By pixels")][0]
        assert len(pixel_caption.split("·")) == 6  # five distances
        assert any("typically" in c.value for c in at.caption)
        assert url_floats(at, "pt") == [1.25, -0.5]
        assert trace(spec(at, "lm_chart"), "decoded spot")

    def test_choosing_by_number(self):
        at = open_map()
        at.number_input(key="lm_idx").set_value(7).run()
        assert "Test image #7" in markdown_text(at)
        at.number_input(key="lm_x").set_value(0.5).run()
        assert "**Decoded spot** (0.50, 0.00)" in markdown_text(at)
        assert url_floats(at, "pt") == [0.5, 0.0]

    def test_selection_handler_on_the_documented_structure(self):
        from ui.figures import map_selection

        assert map_selection(None) is None
        assert map_selection({"points": [], "box": [], "lasso": []}) is None
        documented = {"points": [{"curve_number": 2, "point_number": 9, "point_index": 9, "x": 3.6, "y": 7.2,
                                  "customdata": [123]}], "point_indices": [9], "box": [], "lasso": []}
        assert map_selection(documented) == {"indices": [123]}
        assert map_selection(click(5, browser_form=True)) == {"indices": [5]}
        grid = {"points": [{"x": 0.25, "y": -1.0, "customdata": [-1]}]}
        assert map_selection(grid) == {"spot": (0.25, -1.0)}
        two_grid_points = {"points": grid["points"] * 2}
        assert map_selection(two_grid_points) is None  # only a single click is a spot
        other_layers = {"points": [{"x": 0, "y": 0}, {"x": 0, "y": 0, "customdata": "step 3"}]}
        assert map_selection(other_layers) is None
        repeated = {"points": [{"customdata": [4]}, {"customdata": [4]}, {"customdata": [2]}], "lasso": [{}]}
        assert map_selection(repeated) == {"indices": [4, 2]}


class TestLinks:
    def _open_with(self, **params) -> AppTest:
        return open_map(**params)

    def test_an_index_link_round_trips(self):
        at = open_map()
        select_on_map(at, "lm_chart", click(17))
        link = dict(at.query_params)
        reopened = self._open_with(**link)
        assert "Test image #17" in markdown_text(reopened)

    def test_a_spot_and_view_link_round_trips(self):
        at = self._open_with(model="zoo/digits-vae-10d", view="pca", pt="0.75,-1.5")
        assert picker(at).value == "zoo/digits-vae-10d"
        assert "**Decoded spot** (0.75, -1.50)" in markdown_text(at)
        assert at.selectbox(key="lm_view").value == "pca"

    @pytest.mark.parametrize("params", [{"idx": "banana"}, {"idx": "99999"}, {"pt": "1,nan"}, {"pt": "1"},
                                        {"view": "cubism"}])
    def test_a_garbled_link_opens_on_defaults_with_a_notice(self, params):
        at = self._open_with(**params)
        assert any("could not be used" in i.value for i in at.info)
        assert any("Nothing selected yet" in i.value for i in at.info)
        for name in ("idx", "pt"):
            assert name not in at.query_params  # the bad value is dropped from the link


# -- the real-time pad below the map -------------------------------------------------------------------------------
def pad_data(at: AppTest) -> dict:
    """The data the page sent to the latent pad component on the last run."""
    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "latent_pad"]
    assert element.proto.component_name == "latent_pad"
    return json.loads(element.proto.json)


def release_pad(at: AppTest, z, y=None) -> AppTest:
    """What the browser sends when the pad is released at (z, y): the component's `point` state, then a run."""
    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "latent_pad"]
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=element.proto.id, json_value=json.dumps(
        {"point": {"decoder_id": pad_data(at)["decoder_id"], "scene_id": "any", "z": list(z), "y": y,
                   "p": [0, 0]}})))
    at._run(states)
    assert not at.exception, [e.value for e in at.exception]
    return at


class TestRealTimePad:
    def test_the_pad_walks_the_same_view_as_the_map(self):
        # The Welcome page's pad showed the MNIST VAE (at the link's centre): the digits VAE is new to this session.
        at = open_app(PAGE, link={"z": "0,0"})
        picker(at).set_value(DIGITS).run()
        assert "Walk the map in real time" in [h.value for h in at.subheader]
        data = pad_data(at)
        assert data["decoder"]["format"] == "latent-lab-decoder" and data["z"] == [0.0, 0.0]
        scene = data["scene"]
        assert scene["view"]["method"] == "identity" and scene["view"]["axis_labels"] == ["z[0]", "z[1]"]
        assert len(scene["points"]["x"]) == 359  # every test image, in the map's coordinates
        first = point_of(spec(at, "lm_chart"), 0)
        assert (scene["points"]["x"][0], scene["points"]["y"][0]) == pytest.approx(first, abs=1e-3)

    def test_a_pca_map_gets_a_pca_pad_and_a_tsne_map_says_why_the_pad_stays_pca(self):
        at = open_map()
        picker(at).set_value("zoo/digits-vae-10d").run()
        view = pad_data(at)["scene"]["view"]
        assert view["method"] == "pca" and len(view["mean"]) == 10
        assert not any("t-SNE map has no way back" in c.value for c in at.caption)
        at.selectbox(key="lm_view").set_value("tsne").run()
        assert not at.exception
        assert "view only" in spec(at, "lm_chart")["layout"]["xaxis"]["title"]["text"]  # the map: t-SNE
        assert any("t-SNE map has no way back" in c.value for c in at.caption)
        assert pad_data(at)["scene"] is None  # the same PCA scene the page already holds: not sent again
        assert at.get("bidi_component")[0].proto.component_name == "latent_pad"

    def test_a_release_reaches_the_link_and_the_decode_page(self):
        at = open_map()
        select_on_map(at, "lm_chart", click(42))
        release_pad(at, [1.5, -0.75])
        assert at.query_params["z"] == "1.5,-0.75"
        assert at.query_params["idx"] == "42"  # the map's selection stays
        assert "Test image #42" in markdown_text(at)
        at.switch_page("app_pages/decode.py").run()
        assert not at.exception
        assert at.session_state["page_state.DecodeState"].point["z"] == [1.5, -0.75]
        [decode_pad] = at.get("bidi_component")
        sent = json.loads(decode_pad.proto.json)
        assert sent["z"] == [1.5, -0.75]
        assert sent["decoder"] is None  # the page got this model's weights on the Latent map already

    def test_the_maps_class_moves_the_pads_class(self):
        at = open_map()
        picker(at).set_value("zoo/digits-cvae-2d").run()
        assert pad_data(at)["y"] == 0
        release_pad(at, [0.25, 0.5], y=2)
        at.selectbox(key="lm_class").set_value(7).run()
        data = pad_data(at)
        assert (data["z"], data["y"]) == ([0.25, 0.5], 7)
        assert at.query_params["class"] == "7" and at.query_params["cls"] == "7"

    def test_a_decoder_the_browser_cannot_run_gets_the_notice_and_server_sliders(self):
        from torch import nn

        from tests.app.conftest import ROOT
        from vae_core.checkpoint import load_checkpoint
        from vae_core.library import ModelEntry

        at = open_map(z="0,0")  # the centre (else the Welcome page's typical digit), where the sliders below start
        m, meta = load_checkpoint(ROOT / "checkpoints" / "digits-vae-2d.pt")
        m.decoder[1] = nn.SiLU()  # a layer the browser decoder does not know
        entry = ModelEntry("upload/odd-decoder", "Odd decoder", "upload", "d0" * 32, m.config, meta)
        at.session_state["uploads"] = {entry.key: (entry, m)}
        at.run()
        picker(at).set_value(entry.key).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not at.get("bidi_component")
        [notice] = [i for i in at.info if "cannot run in the browser" in i.value]
        assert "SiLU" in notice.value
        sliders = [s for s in at.slider if s.label.startswith("z[")]
        assert [s.label for s in sliders] == ["z[0]", "z[1]"]
        sliders[1].set_value(-1.0).run()
        assert at.query_params["z"] == "0.0,-1.0"
        assert image_with_caption(at, "The decoder's image for this code").shape == (200, 200, 3)
        assert spec(at, "lm_chart")["layout"]["xaxis"]["title"]["text"] == "z[0]"  # the map is unaffected


# -- the model the app opens on: MNIST, 10,000 test images, 60,000 training images ---------------------------------------
def entry_sha(name: str) -> str:
    from vae_core.checkpoint import file_sha256

    return file_sha256(ROOT / "checkpoints" / f"{name}.pt")


class TestTheDefaultModel:
    def test_the_mnist_map_shows_every_test_digit_and_decodes_a_spot_crisply(self):
        at = open_app(PAGE)
        assert picker(at).value == "zoo/mnist-vae-2d"
        figure = spec(at, "lm_chart")
        points = [t for t in figure["data"] if t.get("type") == "scattergl" and t.get("name") != "click anywhere"]
        assert sum(len(array(t["x"])) for t in points) == 10_000  # every test digit, clickable by its number
        sent = pad_data(at)  # the Welcome page's pad showed this model over this very view: nothing big again
        assert sent["decoder"] is None and sent["scene"] is None and sent["decoder_id"] == entry_sha("mnist-vae-2d")
        select_on_map(at, "lm_chart", {"points": [{"x": 0.5, "y": -0.5, "customdata": [-1]}]})
        assert "**Decoded spot** (0.50, -0.50)" in markdown_text(at)
        spot = image_with_caption(at, "What the decoder makes")
        assert spot.shape[:2] == (168, 168)  # 28 pixels, each a 6x6 block: crisp, about 160 px
        assert np.array_equal(spot[::6, ::6], spot[5::6, 5::6])  # nearest neighbour: no blur inside a block
        neighbours = image_with_caption(at, "By pixels")  # the nearest of the 60,000 training digits
        assert neighbours.shape[0] >= 2 * 28 and len([c for _, c in images_shown(at) if c.startswith("By")]) == 2
        assert any("typically" in c.value for c in at.caption)
