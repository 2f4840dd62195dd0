"""The "AE vs VAE vs β-VAE" page: the default trio, the statement that the AE's samples are worse than the VAE's
(with numbers), the three selectors, the data set choice, and the sidebar picker on every bundled model."""
from __future__ import annotations

import re

from tests.app.conftest import open_app, picker

PAGE = "pages/compare.py"
BUNDLED = ["zoo/digits-vae-2d", "zoo/digits-ae-2d", "zoo/digits-betavae-2d", "zoo/digits-betavae4-2d",
           "zoo/digits-cvae-2d", "zoo/digits-vae-10d", "zoo/shapes-vae", "zoo/shapes-betavae"]
TRIO = ["zoo/digits-ae-2d", "zoo/digits-vae-2d", "zoo/digits-betavae-2d"]


def selectors(at):
    return [at.selectbox(key=f"cmp_model_{slot}_digits (8×8)") for slot in range(3)]


def verdict(at) -> str:
    return "\n".join(m.value for m in at.markdown if m.value.startswith("- **"))


def test_default_trio_and_the_statement_about_the_aes_samples():
    at = open_app(PAGE)
    assert at.title[0].value == "AE vs VAE vs β-VAE"
    assert [s.value for s in selectors(at)] == TRIO
    text = verdict(at)
    line = next(l for l in text.splitlines() if l.startswith("- **The AE's samples are worse than the VAE's"))
    assert re.search(r"\d+% of the AE's samples would have to change class .* against \d+% of the VAE's", line)
    assert at.query_params["models"] == ",".join(TRIO)
    # Three latent maps, the interpolation and the rate-distortion plot.
    assert len(at.get("plotly_chart")) == 5
    assert not at.error


def test_the_three_selectors_work():
    at = open_app(PAGE)
    first, second, third = selectors(at)
    assert set(first.options) == set(second.options)  # the digits models only
    assert not any("Shapes" in o for o in first.options)
    second.set_value("zoo/digits-cvae-2d").run()
    third.set_value("zoo/digits-betavae4-2d").run()
    first.set_value("zoo/digits-vae-10d").run()
    assert not at.exception and not at.error
    assert [s.value for s in selectors(at)] == ["zoo/digits-vae-10d", "zoo/digits-cvae-2d", "zoo/digits-betavae4-2d"]
    assert any("PCA view" in c.value for c in at.caption)  # the 10-D model's map is a PCA view
    assert "AE" not in verdict(at).replace("VAE", "")
    # The same model twice is allowed and said.
    first.set_value("zoo/digits-cvae-2d").run()
    assert not at.exception and not at.error
    assert any("more than once" in c.value for c in at.caption)


def test_the_sidebar_picker_on_every_bundled_model():
    """The page keeps its own three models whatever the sidebar shows. (Switching the data set to shapes is not
    run here: measuring 512 samples against 16,000 training images of 32x32 takes too long on a loaded machine.)"""
    at = open_app(PAGE)
    assert {o.split(" (")[0] for o in at.selectbox(key="cmp_data").options} == {"digits", "shapes"}
    for key in BUNDLED:
        picker(at).set_value(key).run()
        assert not at.exception and not at.error, key
        assert picker(at).value == key
        assert [s.value for s in selectors(at)] == TRIO


def test_a_link_picks_the_models():
    at = open_app()
    at.query_params["models"] = "zoo/digits-vae-2d,zoo/digits-betavae-2d,zoo/digits-betavae4-2d"
    at.switch_page(PAGE).run()
    assert [s.value for s in selectors(at)] == ["zoo/digits-vae-2d", "zoo/digits-betavae-2d", "zoo/digits-betavae4-2d"]
    at2 = open_app()
    at2.query_params["models"] = "zoo/nope,zoo/digits-vae-2d,zoo/shapes-vae"
    at2.switch_page(PAGE).run()
    assert not at2.exception
    assert [s.value for s in selectors(at2)] == TRIO
    assert any("could not all be found" in i.value for i in at2.info)
