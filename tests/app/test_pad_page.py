"""The Latent pad page (AppTest, no browser): the component gets the decoder once per model and session and a few
hundred bytes on later runs; a link's point is used; the server path (toggle off, or a decoder the browser cannot
run) shows a notice, sliders and the server's image."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from streamlit.testing.v1 import AppTest

from ui import latent_point as lp
from tests.app.conftest import APP, ROOT, captioned_image, open_app, picker
from vae_core.checkpoint import file_sha256, load_checkpoint
from vae_core.library import entry_from_bytes
from vae_core.latent import TSNEView, decode, fit_view, image_grid
from vae_core.zoo import ZOO

PAGE = "app_pages/pad.py"
ZOO_NAMES = [s.name for s in ZOO if (ROOT / "checkpoints" / f"{s.name}.pt").is_file()]


def open_pad(name: str = "digits-vae-2d") -> AppTest:
    """This page on model `name`, the first page of the session to show that model's pad: the Welcome page shows
    the pad of the model a session opens on, so the session opens on another one and this page picks `name`. The
    link puts the point at the centre (else the Welcome page starts on a typical digit's code, and the link's z
    follows to the next model), where the tests below expect it."""
    first = "zoo/digits-ae-2d" if name != "digits-ae-2d" else "zoo/digits-vae-2d"
    at = open_app(PAGE, link={"model": first, "z": "0,0"})
    picker(at).set_value(f"zoo/{name}").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def entry(name: str):
    path = ROOT / "checkpoints" / f"{name}.pt"
    return entry_from_bytes(path.read_bytes(), "zoo", key=f"zoo/{name}", path=path)[0]


def pad_data(at: AppTest) -> dict:
    """The data the page sent to the latent pad component on the last run."""
    [element] = at.get("bidi_component")
    assert element.proto.component_name == "latent_pad"
    return json.loads(element.proto.json)


def server_image(at: AppTest) -> np.ndarray:
    return captioned_image(at, lambda caption: caption.endswith("(decoded on the server)"))


def render(model, z, y=None) -> np.ndarray:
    images = decode(model, torch.tensor([z], dtype=torch.float32), y)
    return image_grid(images, nrow=1, scale=max(1, round(200 / images.shape[-1])))


@pytest.mark.parametrize("name", ZOO_NAMES)
def test_every_zoo_model_gets_the_browser_pad(name):
    at = open_pad(name)
    model, meta = load_checkpoint(ROOT / "checkpoints" / f"{name}.pt")
    data = pad_data(at)
    assert data["decoder"]["format"] == "latent-lab-decoder"
    assert data["decoder"]["latent_dim"] == model.config.latent_dim
    assert data["decoder_id"] == file_sha256(ROOT / "checkpoints" / f"{name}.pt")  # the model file's sha256
    scene = data["scene"]
    d = model.config.latent_dim
    assert scene["view"]["method"] == ("identity" if d <= 2 else "pca")
    assert len(scene["view"]["mean"]) == d and len(scene["view"]["components"]) == 2
    lo, hi = scene["ranges"][0]
    assert scene["ranges"] == [[lo, hi]] * d and lo == -hi and hi in lp.REACHES  # the one rule: ±reach σ
    if model.config.is_generative:
        assert hi == 3.0  # the prior's ±3σ
    assert 0 < len(scene["points"]["x"]) <= lp.MAX_POINTS
    assert data["slider_dims"] == (list(range(d)) if d <= lp.MAX_SLIDERS else lp.default_slider_dims(entry(name)))
    assert len(data["z"]) == d
    assert (data["y"] is not None) == model.config.is_conditional
    if model.config.is_conditional:
        assert scene["label_names"] == [str(n) for n in meta["label_names"]]


def test_weights_travel_once_per_model_and_session():
    at = open_pad()
    first = pad_data(at)
    assert first["decoder"] is not None and first["scene"] is not None
    assert at.session_state["_latent_pad_bytes"]["pad"] > 200_000  # the digits decoder: ~50k float32 in base64
    at.run()  # a plain rerun
    again = pad_data(at)
    assert again["decoder"] is None and again["scene"] is None
    assert at.session_state["_latent_pad_bytes"]["pad"] < 1_000
    picker(at).set_value("zoo/shapes-vae").run()
    shapes = pad_data(at)
    assert shapes["decoder"] is not None and shapes["decoder_id"] != first["decoder_id"]
    assert at.session_state["_latent_pad_bytes"]["pad"] > 1_500_000
    picker(at).set_value("zoo/digits-vae-2d").run()  # back: the page still holds that decoder
    back = pad_data(at)
    assert back["decoder"] is None and back["decoder_id"] == first["decoder_id"]
    assert at.session_state["_latent_pad_bytes"]["pad"] < 1_000


def test_a_links_point_and_class_are_used():
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["model"] = "zoo/digits-cvae-2d"
    at.query_params["z"] = "1.5,-0.25"
    at.query_params["class"] = "7"
    at.run()
    at.switch_page(PAGE).run()
    assert not at.exception
    data = pad_data(at)
    assert data["z"] == [1.5, -0.25] and data["y"] == 7
    assert any("Starting at z = (1.50, -0.25), class 7" in c.value for c in at.caption)
    assert at.query_params["z"] == "1.5,-0.25" and at.query_params["class"] == "7"


def test_the_server_path_when_the_browser_decoder_is_off():
    at = open_pad()
    at.toggle(key="pad_in_browser").set_value(False).run()
    assert not at.exception
    assert not at.get("bidi_component")
    sliders = {s.label: s for s in at.slider}
    assert set(sliders) == {"z[0]", "z[1]"}
    model = load_checkpoint(ROOT / "checkpoints" / "digits-vae-2d.pt")[0]
    np.testing.assert_array_equal(server_image(at), render(model, [0.0, 0.0]))
    sliders["z[0]"].set_value(1.2).run()
    assert not at.exception
    np.testing.assert_array_equal(server_image(at), render(model, [1.2, 0.0]))
    assert at.query_params["z"] == "1.2,0.0"
    assert at.session_state[lp.SHARED_KEY]["z"] == [1.2, 0.0]  # the other pages follow


def test_a_cvae_on_the_server_path_has_a_class_choice():
    at = open_pad("digits-cvae-2d")
    at.toggle(key="pad_in_browser").set_value(False).run()
    [cls] = [s for s in at.radio if s.label == "Class"]
    cls.set_value(4).run()
    assert not at.exception
    model = load_checkpoint(ROOT / "checkpoints" / "digits-cvae-2d.pt")[0]
    np.testing.assert_array_equal(server_image(at), render(model, [0.0, 0.0], 4))
    assert at.query_params["class"] == "4"


def _odd_model_page():
    """A page embedding the pad for a model whose decoder has a layer the browser decoder does not know."""
    import streamlit as st
    import torch
    from torch import nn

    from ui import latent_point as lp
    from tests.app.conftest import ROOT
    from vae_core.checkpoint import load_checkpoint
    from vae_core.latent import fit_view
    from vae_core.library import ModelEntry

    model, meta = load_checkpoint(ROOT / "checkpoints" / "digits-vae-2d.pt")
    model.decoder[1] = nn.SiLU()  # not one of Linear, ReLU, Unflatten, ConvTranspose2d
    entry = ModelEntry("upload/odd", "Odd decoder", "upload", "f" * 64, model.config, meta)
    view = fit_view(torch.zeros(4, 2), "identity")
    point = lp.latent_pad(model, entry, view, key="odd")
    st.session_state.odd_point = point.z


def test_a_decoder_the_browser_cannot_run_falls_back_with_a_notice():
    at = AppTest.from_function(_odd_model_page, default_timeout=60)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.get("bidi_component")
    [notice] = [i for i in at.info if "cannot run in the browser" in i.value]
    assert "SiLU" in notice.value
    assert {s.label for s in at.slider} == {"z[0]", "z[1]"}
    assert server_image(at).shape == (200, 200, 3)  # 8x8 at 25x
    at.slider[0].set_value(-1.0).run()
    assert at.session_state.odd_point == [-1.0, 0.0]


def test_one_slider_range_rule_for_the_pad_its_fallback_and_decode():
    vae, ae = entry("digits-vae-2d"), entry("digits-ae-2d")
    wide = np.random.default_rng(0).normal(scale=4.0, size=(500, 2))
    assert lp.slider_ranges(vae, wide) == [[-3.0, 3.0]] * 2  # a generator keeps the prior's scale
    radius = float(np.quantile(np.abs(wide), 0.99))
    assert lp.default_reach(ae, wide) == min(r for r in lp.REACHES if r >= radius)  # an AE's reach covers its codes
    assert lp.slider_ranges(ae, None) == [[-3.0, 3.0]] * 2  # without codes: ±3
    assert lp.slider_ranges(vae, None, reach=10) == [[-10.0, 10.0]] * 2
    assert lp.slider_ranges(vae, None, z=[4.2, -0.5]) == [[-5.0, 5.0]] * 2  # widened to the next whole σ
    assert lp.reach_to(3, [-2.5, 1.0]) == 3 and lp.reach_to(3, [0.0, -7.01]) == 8
    # The browser pad of the digits AE reaches as far as Decode's server sliders do for it (tests/app/test_decode_page)
    at = open_pad("digits-ae-2d")
    assert pad_data(at)["scene"]["ranges"] == [[-10.0, 10.0]] * 2


def test_helpers():
    ten = entry("digits-vae-10d")
    kl = np.asarray(ten.meta["kl_per_dim"])
    dims = lp.default_slider_dims(ten)
    assert dims == sorted(np.argsort(-kl)[:lp.MAX_SLIDERS].tolist())
    ranges = lp.slider_ranges(ten, np.random.default_rng(0).normal(size=(50, 10)))
    assert all(lo <= -3 and hi >= 3 for lo, hi in ranges)  # a VAE's sliders cover the prior's ±3σ
    tsne = TSNEView().fit(torch.randn(8, 10))
    with pytest.raises(ValueError, match="decodable"):
        lp._view_maps(tsne)
    one = fit_view(torch.zeros(3, 1), "identity")
    assert lp._view_maps(one)["components"] == [[1.0], [0.0]]  # a 1-D latent: the pad's y axis is unused
