"""The Decode page: every bundled model renders; the sliders drive the decoded image (the decode of exactly that
code); the start points, the grids, the CVAE class; a link reproduces the image exactly; a bad link gets defaults
and a notice. Most tests take the server path (`?decoder=server`: Streamlit sliders, images decoded by PyTorch);
TestBrowserPad covers the default, the latent pad decoding in the browser, and the way between the two."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.proto.WidgetStates_pb2 import WidgetState
from streamlit.testing.v1 import AppTest

import ui.datasets
from ui.images import scale_for
from ui.state import exact_float
from tests.app.conftest import ROOT, captioned_image, open_page_link, picker
from vae_core.checkpoint import load_checkpoint
from vae_core.data import load_from_spec
from vae_core.latent import encode_dataset, image_grid, sample_prior
from vae_core.zoo import ZOO

PAGE = "app_pages/decode.py"
ZOO_NAMES = [s.name for s in ZOO if (ROOT / "checkpoints" / f"{s.name}.pt").is_file()]


# -- helpers ----------------------------------------------------------------------------------------------------------
def model(name: str):
    return load_checkpoint(ROOT / "checkpoints" / f"{name}.pt")[0]


def open_decode(name: str = "digits-vae-2d", *, browser: bool = False) -> AppTest:
    return open_link(model=f"zoo/{name}", browser=browser)


def open_link(*, browser: bool = False, **params) -> AppTest:
    """A fresh session opening the page at a link with these query parameters, as a browser would (AppTest finds
    the page by its file name before the first run: its url_path is the file's stem). Unless browser=True (or the
    link says otherwise) the link asks for the server path: `decoder=server`; unless it names a model, the digits
    VAE, whose 8x8 images these tests read (the app's own default, the MNIST VAE: TestTheDefaultModel)."""
    if not browser:
        params.setdefault("decoder", "server")
    params.setdefault("model", "zoo/digits-vae-2d")
    return open_page_link(PAGE, **params)


def decoded(at: AppTest) -> np.ndarray:
    """The decoded image the page shows, read back from its inline PNG."""
    return captioned_image(at, lambda caption: caption.startswith("The decoder's image"))


def rendered(m, z, y=None) -> np.ndarray:
    """decode_mean(z) drawn the way the page draws it: one tile, ~256 px, nearest-neighbour upscaled."""
    with torch.no_grad():
        images = m.eval().decode_mean(torch.tensor([z], dtype=torch.float32),
                                      None if y is None else torch.tensor([y])).clamp(0, 1)
    return image_grid(images, nrow=1, scale=scale_for(images, 256))


def z_sliders(at: AppTest):
    return [s for s in at.slider if s.label.startswith("z[")]


def point(at: AppTest) -> list[float]:
    return list(at.session_state["page_state.DecodeState"].point["z"])


def charts(at: AppTest) -> list[dict]:
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def show_manifold(at: AppTest) -> AppTest:
    labelled(at.segmented_control, "Around your point").set_value("Manifold grid").run()
    return at


def button(at: AppTest, label: str):
    return labelled(at.button, label)


def labelled(widgets, label: str):
    [widget] = [w for w in widgets if w.label == label]
    return widget


# -- every model ------------------------------------------------------------------------------------------------------
def test_every_bundled_model_renders():
    at = open_decode()
    for name in ZOO_NAMES:  # one session picking each model in turn, as a teacher would
        picker(at).set_value(f"zoo/{name}").run()
        assert not at.exception, (name, [e.value for e in at.exception])
        m = model(name)
        d = m.config.latent_dim
        assert at.title[0].value == "Decode"
        assert len(z_sliders(at)) == min(d, 6), name
        assert all(s.help for s in z_sliders(at)), "every slider explains what a latent dimension is"
        assert np.array_equal(decoded(at), rendered(m, [0.0] * d, 0 if m.config.is_conditional else None)), name
        assert len(charts(at)) == 1, name  # the traversal (the manifold grid is one click away)
        assert at.query_params["z"] == ",".join(["0.0"] * d), name
        assert not at.error, (name, [e.value for e in at.error])


def uploaded(at: AppTest, **settings):
    """Put an untrained model of another shape in the session's uploads (no data set with it) and pick it."""
    from vae_core.checkpoint import checkpoint_bytes
    from vae_core.config import model_config_for
    from vae_core.library import entry_from_bytes
    from vae_core.models import build_model

    shape, classes = settings.pop("input_shape"), settings.pop("num_classes", 0)
    m = build_model(model_config_for(shape, classes, **settings), seed=0)
    entry, m = entry_from_bytes(checkpoint_bytes(m, {"name": "odd model"}), "upload")
    at.session_state["uploads"] = {entry.key: (entry, m)}
    at.run()
    picker(at).set_value(entry.key).run()
    assert not at.exception, [e.value for e in at.exception]
    return m


@pytest.mark.parametrize("settings", [
    dict(input_shape=(1, 8, 8), kind="ae", latent_dim=1),  # a 1-D latent: no plane for a manifold grid
    dict(input_shape=(3, 16, 16), num_classes=3, kind="cvae", arch="conv", latent_dim=12),  # colour, conv, 12-D
])
def test_other_shapes_of_model_without_their_data(settings):
    at = open_decode()
    m = uploaded(at, **settings)
    d, conditional = m.config.latent_dim, m.config.is_conditional
    assert len(z_sliders(at)) == min(d, 6)
    assert np.array_equal(decoded(at), rendered(m, [0.0] * d, 0 if conditional else None))
    assert button(at, "Encode").disabled  # no data set came with the upload
    rows = charts(at)[0]["layout"]["yaxis"]["ticktext"]
    assert len(rows) == (d if d <= 10 else 6)  # a big latent's traversal shows the dimensions with sliders
    show_manifold(at)
    assert not charts(at) if d == 1 else len(charts(at)) == 1
    assert not at.error


# -- the sliders drive the image --------------------------------------------------------------------------------------
class TestSliders:
    def test_moving_a_slider_redraws_the_decode_of_that_code(self):
        at = open_decode()
        before = decoded(at)
        z_sliders(at)[0].set_value(1.5).run()
        after = decoded(at)
        assert not np.array_equal(before, after)
        assert np.array_equal(after, rendered(model("digits-vae-2d"), [1.5, 0.0]))
        assert point(at) == [1.5, 0.0]

    def test_slider_range_is_in_prior_sigma_and_adjustable(self):
        at = open_decode()
        s = z_sliders(at)[0]
        assert (s.min, s.max, s.step) == (-3.0, 3.0, 0.05)
        labelled(at.select_slider, "Slider range (± σ)").set_value(5).run()
        assert (z_sliders(at)[0].min, z_sliders(at)[0].max) == (-5.0, 5.0)

    def test_an_autoencoder_range_covers_its_codes(self):
        at = open_decode("digits-ae-2d")
        assert z_sliders(at)[0].max == 10.0  # its test codes reach ~8: no prior scale to speak of
        assert any("autoencoder has no prior" in s.help for s in at.select_slider)

    def test_a_large_latent_gets_sliders_for_its_most_informative_dimensions(self):
        at = open_decode("digits-vae-10d")
        [dims] = at.multiselect
        assert dims.label == "Dimensions with sliders"
        kl = model_meta("digits-vae-10d")["kl_per_dim"]
        assert set(dims.value) == set(np.argsort(kl)[::-1][:6].tolist())
        [s for s in z_sliders(at) if s.label == "z[3]"][0].set_value(1.0).run()
        dims.set_value([0, 3]).run()  # z[3] keeps its value, the others stay where the point is
        assert [s.label for s in z_sliders(at)] == ["z[0]", "z[3]"]
        assert z_sliders(at)[1].value == 1.0
        assert point(at)[3] == 1.0 and len(point(at)) == 10
        assert len(charts(at)[0]["layout"]["yaxis"]["tickvals"]) == 10  # the traversal still shows every dimension

    def test_the_point_stays_when_switching_to_a_model_of_the_same_size(self):
        at = open_decode()
        z_sliders(at)[1].set_value(-1.0).run()
        picker(at).set_value("zoo/digits-betavae-2d").run()
        assert [s.value for s in z_sliders(at)] == [0.0, -1.0]
        assert np.array_equal(decoded(at), rendered(model("digits-betavae-2d"), [0.0, -1.0]))
        picker(at).set_value("zoo/digits-vae-10d").run()  # another size: back to the centre
        assert point(at) == [0.0] * 10


def model_meta(name: str) -> dict:
    return load_checkpoint(ROOT / "checkpoints" / f"{name}.pt")[1]


# -- start points -----------------------------------------------------------------------------------------------------
class TestStartPoints:
    def test_random_code_is_the_seeded_prior_sample_and_moves_the_seed_on(self):
        at = open_decode()
        at.number_input(key="decode_seed").set_value(7).run()
        button(at, "Random").click().run()
        expected = sample_prior(model("digits-vae-2d"), 1, seed=7)[0][0].tolist()
        assert point(at) == expected
        assert [s.value for s in z_sliders(at)] == expected
        assert at.number_input(key="decode_seed").value == 8
        assert np.array_equal(decoded(at), rendered(model("digits-vae-2d"), expected))

    def test_centre_goes_back_to_zeros(self):
        at = open_decode()
        z_sliders(at)[0].set_value(2.0).run()
        button(at, "Centre").click().run()
        assert point(at) == [0.0, 0.0]
        assert [s.value for s in z_sliders(at)] == [0.0, 0.0]

    def test_encoding_a_test_image_gives_its_reconstruction_and_class(self):
        at = open_decode("digits-cvae-2d")
        m, meta = load_checkpoint(ROOT / "checkpoints" / "digits-cvae-2d.pt")
        data = load_from_spec(meta["data_spec"])
        at.number_input(key="decode_index_359").set_value(5).run()
        assert any(c == str(int(data.test.y[5])) for i in at.image for c in i.captions)
        button(at, "Encode").click().run()
        mu = encode_dataset(m, data.test.x[5:6], data.test.y[5:6]).mu[0].tolist()
        label = int(data.test.y[5])
        assert point(at) == mu
        assert labelled(at.radio, "Class").value == label
        assert np.array_equal(decoded(at), rendered(m, mu, label))

    def test_without_the_data_the_test_image_start_says_why_it_is_off(self, monkeypatch):
        monkeypatch.setattr(ui.datasets, "model_data", lambda entry: None)
        at = open_decode()
        assert button(at, "Encode").disabled
        assert any("does not have the data" in c.value for c in at.caption)
        assert len(z_sliders(at)) == 2  # the rest of the page works


# -- the grids --------------------------------------------------------------------------------------------------------
class TestGrids:
    def test_manifold_grid_size_follows_n(self):
        at = show_manifold(open_decode())
        at.slider(key="decode_grid_n").set_value(5).run()
        [manifold] = charts(at)
        assert manifold["layout"]["xaxis"]["ticktext"] == ["-3.00", "-1.50", "0.00", "1.50", "3.00"]
        assert manifold["layout"]["yaxis"]["ticktext"] == ["3.00", "1.50", "0.00", "-1.50", "-3.00"]  # top: largest
        across = int(np.argmax(model_meta("digits-vae-2d")["kl_per_dim"]))  # the more informative one
        assert manifold["layout"]["xaxis"]["title"]["text"] == f"z[{across}] (σ)"
        assert manifold["layout"]["yaxis"]["title"]["text"] == f"z[{1 - across}] (σ)"
        assert len(manifold["layout"]["shapes"]) == 1  # the frame on the tile nearest the point

    def test_manifold_needs_two_different_dimensions(self):
        at = show_manifold(open_decode())
        across, up = labelled(at.selectbox, "Across"), labelled(at.selectbox, "Up")
        across.set_value(up.value).run()
        assert any("two different dimensions" in w.value for w in at.warning)
        assert not charts(at)

    def test_manifold_marks_the_point_and_follows_it(self):
        at = show_manifold(open_decode())
        at.slider(key="decode_grid_n").set_value(5).run()  # columns at -3, -1.5, 0, 1.5, 3
        across = int(labelled(at.selectbox, "Across").value)
        z_sliders(at)[across].set_value(1.4).run()
        [manifold] = charts(at)
        [frame] = manifold["layout"]["shapes"]
        centres = manifold["layout"]["xaxis"]["tickvals"]
        assert min(range(5), key=lambda c: abs(centres[c] - (frame["x0"] + frame["x1"]) / 2)) == 3

    def test_traversal_frames_the_tile_nearest_the_point(self):
        at = open_decode()
        at.slider(key="decode_trav_n").set_value(7).run()
        trav = charts(at)[0]
        assert trav["layout"]["xaxis"]["ticktext"] == ["-3.00", "-2.00", "-1.00", "0.00", "1.00", "2.00", "3.00"]
        assert trav["layout"]["yaxis"]["ticktext"] == ["z[0]", "z[1]"]
        assert trav["layout"]["xaxis"]["title"]["text"] == "value of the dimension (σ)"
        centres = trav["layout"]["xaxis"]["tickvals"]

        def framed_columns(fig):
            return [min(range(len(centres)), key=lambda c: abs(centres[c] - (s["x0"] + s["x1"]) / 2))
                    for s in fig["layout"]["shapes"]]

        assert framed_columns(trav) == [3, 3]  # the point is the centre: the middle column in both rows
        z_sliders(at)[0].set_value(2.9).run()
        assert framed_columns(charts(at)[0]) == [6, 3]


# -- the CVAE's class -------------------------------------------------------------------------------------------------
def test_cvae_class_is_a_control_and_in_the_url():
    at = open_decode("digits-cvae-2d")
    [cls] = at.radio
    assert cls.label == "Class" and cls.help
    cls.set_value(3).run()
    assert np.array_equal(decoded(at), rendered(model("digits-cvae-2d"), [0.0, 0.0], 3))
    assert at.query_params["class"] == "3"
    picker(at).set_value("zoo/digits-vae-2d").run()
    assert "class" not in at.query_params


# -- shared links -----------------------------------------------------------------------------------------------------
class TestLinks:
    def test_a_point_beyond_the_range_widens_the_sliders(self):  # (the server path, as every test here)
        at = open_link(z="4.2,0")
        assert (z_sliders(at)[0].min, z_sliders(at)[0].max, z_sliders(at)[0].value) == (-5.0, 5.0, 4.2)
        assert any("Widened to ±5" in c.value for c in at.caption)

    def test_a_link_reproduces_the_decoded_image_exactly(self):
        z = [1.2345673, -0.4999999]  # not on the slider's 0.05 steps: an encoded image's code, say
        at = open_link(z=",".join(map(str, z)))
        assert [s.value for s in z_sliders(at)] == z
        assert np.array_equal(decoded(at), rendered(model("digits-vae-2d"), z))
        assert [np.float32(v) for v in at.query_params["z"].split(",")] == [np.float32(v) for v in z]

    def test_the_url_the_page_writes_opens_the_same_image(self):
        sender = open_decode("digits-cvae-2d")
        sender.number_input(key="decode_index_359").set_value(42).run()
        button(sender, "Encode").click().run()  # arbitrary float32 codes
        link = dict(sender.query_params)
        receiver = open_link(**link)
        assert np.array_equal(decoded(receiver), decoded(sender))
        assert picker(receiver).value == "zoo/digits-cvae-2d"

    def test_the_url_follows_the_sliders(self):
        at = open_decode()
        z_sliders(at)[1].set_value(0.15).run()
        assert at.query_params["z"] == "0.0,0.15"

    @pytest.mark.parametrize("params", [{"z": "abc,1"}, {"z": "1,2,3"}, {"z": "nan,0"}, {"z": "1e9,0"},
                                        {"model": "zoo/digits-cvae-2d", "z": "0.5,0.5", "class": "99"}])
    def test_garbage_gets_defaults_and_a_notice(self, params):
        at = open_link(**params)
        assert any("could not be used" in i.value for i in at.info), [i.value for i in at.info]
        if "class" in params:  # the good part of the link is kept
            assert point(at) == [0.5, 0.5] and at.query_params["class"] == "0"
        else:
            assert [s.value for s in z_sliders(at)] == [0.0, 0.0]
            assert at.query_params["z"] == "0.0,0.0"


def test_exact_float_reads_back_as_the_same_float32():
    for v in [0.15, 0.1 + 0.05, -1.2345673, 1e-9, 3.0, 2.5000001, 999.99]:
        assert np.float32(float(exact_float(v))) == np.float32(v)


# -- the latent pad: the default way to move the point (decoded in the browser) ----------------------------------------
def pad_data(at: AppTest) -> dict:
    """The data the page sent to the latent pad component on the last run."""
    [element] = at.get("bidi_component")
    assert element.proto.component_name == "latent_pad"
    return json.loads(element.proto.json)


def release(at: AppTest, z, y=None) -> AppTest:
    """What the browser sends when the pad is released at (z, y): the component's `point` state, then a run."""
    [element] = at.get("bidi_component")
    sha = json.loads(element.proto.json)["decoder_id"]
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=element.proto.id, json_value=json.dumps(
        {"point": {"decoder_id": sha, "scene_id": "any", "z": list(z), "y": y, "p": [0, 0]}})))
    at._run(states)
    assert not at.exception, [e.value for e in at.exception]
    return at


def framed_columns(fig: dict) -> list[int]:
    """Per traversal row, the column of the red frame (the tile nearest the point)."""
    centres = fig["layout"]["xaxis"]["tickvals"]
    return [min(range(len(centres)), key=lambda c: abs(centres[c] - (s["x0"] + s["x1"]) / 2))
            for s in fig["layout"]["shapes"]]


def odd_model(at: AppTest):
    """Put a model whose decoder has a layer the browser decoder does not know (SiLU) in the session's uploads and
    pick it (as tests/app/test_pad_page.py does for the component alone)."""
    from torch import nn

    from vae_core.library import ModelEntry

    m, meta = load_checkpoint(ROOT / "checkpoints" / "digits-vae-2d.pt")
    m.decoder[1] = nn.SiLU()  # not one of Linear, ReLU, Unflatten, ConvTranspose2d
    entry = ModelEntry("upload/odd-decoder", "Odd decoder", "upload", "d0" * 32, m.config, meta)
    at.session_state["uploads"] = {entry.key: (entry, m)}
    at.run()
    picker(at).set_value(entry.key).run()
    assert not at.exception, [e.value for e in at.exception]
    return m


class TestBrowserPad:
    def test_the_pad_is_the_default_for_every_bundled_model(self):
        at = open_decode(browser=True)
        toggle = at.toggle(key="decode_in_browser")
        assert toggle.value is True and toggle.label == "Decode in the browser" and len(toggle.help) > 80
        for name in ZOO_NAMES:
            picker(at).set_value(f"zoo/{name}").run()
            assert not at.exception, (name, [e.value for e in at.exception])
            m = model(name)
            d = m.config.latent_dim
            data = pad_data(at)
            assert data["z"] == [0.0] * d and (data["y"] == 0) == m.config.is_conditional, name
            assert data["slider_dims"] == (list(range(d)) if d <= 6 else sorted(labelled(
                at.multiselect, "Dimensions with sliders").value)), name
            assert not z_sliders(at), name  # the pad replaces the server sliders
            assert not [i for i in at.image if i.captions and i.captions[0].startswith("The decoder's image")]
            assert len(charts(at)) == 1, name  # the traversal around the point
            assert at.query_params["z"] == ",".join(["0.0"] * d) and "decoder" not in at.query_params, name
            assert not at.error and not at.info, (name, [e.value for e in at.error], [i.value for i in at.info])

    def test_a_model_without_its_data_gets_a_pad_without_test_points(self):
        at = open_decode(browser=True)
        uploaded(at, input_shape=(3, 16, 16), num_classes=3, kind="cvae", arch="conv", latent_dim=12)
        data = pad_data(at)
        assert data["decoder"]["latent_dim"] == 12 and data["z"] == [0.0] * 12 and data["y"] == 0
        assert data["scene"]["points"] is None and data["scene"]["view"]["method"] == "pca"
        assert data["slider_dims"] == sorted(labelled(at.multiselect, "Dimensions with sliders").value)
        assert any("without the model's data the pad is the plane of z[0] and z[1]" in c.value for c in at.caption)
        release(at, [0.5] * 12, y=2)
        assert point(at) == [0.5] * 12 and at.query_params["class"] == "2"
        assert len(charts(at)) == 1 and not at.error

    def test_the_released_point_is_the_pages_point_and_the_grid_and_url_follow(self):
        at = open_decode(browser=True)
        at.slider(key="decode_trav_n").set_value(7).run()  # columns at -3, -2, ..., 3
        assert framed_columns(charts(at)[0]) == [3, 3]
        release(at, [2.9, -1.1])
        assert point(at) == [2.9, -1.1]
        assert at.query_params["z"] == "2.9,-1.1"
        assert framed_columns(charts(at)[0]) == [6, 2]
        assert any(c.value.startswith("z = (2.90, -1.10).") for c in at.caption)
        assert pad_data(at)["z"] is None  # the pad shows that point already: nothing to move
        show_manifold(at)
        [manifold] = charts(at)
        assert len(manifold["layout"]["shapes"]) == 1  # the manifold grid frames the released point too

    def test_a_cvae_release_carries_its_class(self):
        at = open_decode("digits-cvae-2d", browser=True)
        release(at, [0.5, 0.25], y=6)
        assert at.session_state["page_state.DecodeState"].point["y"] == 6 and point(at) == [0.5, 0.25]
        assert at.query_params["class"] == "6"
        assert any(c.value.startswith("z = (0.50, 0.25), class 6.") for c in at.caption)

    def test_the_start_buttons_move_the_pad(self):
        at = open_decode(browser=True)
        release(at, [1.0, 1.0])
        at.number_input(key="decode_seed").set_value(7).run()
        button(at, "Random").click().run()
        expected = sample_prior(model("digits-vae-2d"), 1, seed=7)[0][0].tolist()
        assert pad_data(at)["z"] == expected and point(at) == expected
        release(at, [-2.0, 0.5])
        button(at, "Centre").click().run()
        assert pad_data(at)["z"] == [0.0, 0.0] and point(at) == [0.0, 0.0]
        assert at.query_params["z"] == "0.0,0.0"

    def test_encoding_a_test_image_moves_the_pad_and_its_class(self):
        at = open_decode("digits-cvae-2d", browser=True)
        m, meta = load_checkpoint(ROOT / "checkpoints" / "digits-cvae-2d.pt")
        data = load_from_spec(meta["data_spec"])
        at.number_input(key="decode_index_359").set_value(5).run()
        button(at, "Encode").click().run()
        mu = encode_dataset(m, data.test.x[5:6], data.test.y[5:6]).mu[0].tolist()
        sent = pad_data(at)
        assert sent["z"] == mu and sent["y"] == int(data.test.y[5])

    def test_the_toggle_switches_to_the_server_sliders_at_the_same_point_and_back(self):
        at = open_decode(browser=True)
        release(at, [1.25, -0.5])
        at.toggle(key="decode_in_browser").set_value(False).run()
        assert not at.exception and not at.get("bidi_component")
        assert [s.value for s in z_sliders(at)] == [1.25, -0.5]
        assert np.array_equal(decoded(at), rendered(model("digits-vae-2d"), [1.25, -0.5]))
        assert at.query_params["decoder"] == "server"  # the link keeps the choice
        z_sliders(at)[0].set_value(-2.0).run()
        at.toggle(key="decode_in_browser").set_value(True).run()
        assert pad_data(at)["z"] == [-2.0, -0.5]  # the pad starts where the sliders left the point
        assert "decoder" not in at.query_params and not z_sliders(at)

    def test_a_link_can_ask_for_the_server_path(self):
        at = open_link(model="zoo/digits-vae-2d", decoder="server", z="0.5,0.5")
        assert at.toggle(key="decode_in_browser").value is False
        assert not at.get("bidi_component") and [s.value for s in z_sliders(at)] == [0.5, 0.5]
        assert at.query_params["decoder"] == "server"

    def test_a_garbled_decoder_link_gets_the_pad_and_a_notice(self):
        at = open_link(browser=True, decoder="gpu")
        assert any("“decoder” value could not be used" in i.value for i in at.info)
        assert pad_data(at)["decoder"] is not None and not z_sliders(at)

    def test_the_choice_stays_while_another_page_shows(self):
        at = open_decode(browser=True)
        at.toggle(key="decode_in_browser").set_value(False).run()
        at.switch_page("app_pages/generate.py").run()
        at.switch_page(PAGE).run()
        assert not at.exception
        assert at.toggle(key="decode_in_browser").value is False and z_sliders(at)

    def test_a_decoder_the_browser_cannot_run_gets_the_notice_and_the_server_sliders(self):
        at = open_decode(browser=True)
        m = odd_model(at)
        assert not at.get("bidi_component")
        [notice] = [i for i in at.info if "cannot run in the browser" in i.value]
        assert "SiLU" in notice.value
        assert at.toggle(key="decode_in_browser").value is True  # the choice stands; this model cannot take it
        assert [s.label for s in z_sliders(at)] == ["z[0]", "z[1]"]
        z_sliders(at)[0].set_value(1.0).run()
        assert np.array_equal(decoded(at), rendered(m, [1.0, 0.0]))
        picker(at).set_value("zoo/digits-vae-2d").run()  # a bundled model: the pad again, at the same point
        assert pad_data(at)["z"] == [1.0, 0.0]
        assert not [i for i in at.info if "cannot run in the browser" in i.value]


# -- the model the app opens on ----------------------------------------------------------------------------------------
class TestTheDefaultModel:
    def test_the_mnist_vae_decodes_a_28x28_digit_large_and_crisp(self):
        at = open_page_link(PAGE, decoder="server")  # a link without a model: the app's default
        assert picker(at).value == "zoo/mnist-vae-2d"
        image = decoded(at)
        assert image.shape[:2] == (252, 252)  # 28 pixels, each a 9x9 block (nearest neighbour: no blur)
        assert np.array_equal(image, rendered(model("mnist-vae-2d"), [0.0, 0.0]))
        z_sliders(at)[0].set_value(1.5).run()
        assert np.array_equal(decoded(at), rendered(model("mnist-vae-2d"), [1.5, 0.0]))

    def test_the_mnist_vae_gets_the_pad(self):
        at = open_page_link(PAGE)
        assert picker(at).value == "zoo/mnist-vae-2d" and at.toggle(key="decode_in_browser").value is True
        data = pad_data(at)
        assert data["decoder"]["latent_dim"] == 2 and len(data["scene"]["points"]["x"]) == 2000
