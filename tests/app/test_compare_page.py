"""The "AE vs VAE vs β-VAE" page: the default MNIST trio, the verdict that the AE's samples are worse than the VAE's
by the shipped digit classifier (with the same numbers as the table), the pixel measures on other data, the three
selectors, the data set choice, and the sidebar picker on every bundled model."""
from __future__ import annotations

import re

from tests.app.conftest import open_app, picker

PAGE = "app_pages/compare.py"
MNIST = "mnist (28×28)"
DIGITS = "digits (8×8)"
BUNDLED = ["zoo/mnist-vae-2d", "zoo/mnist-ae-2d", "zoo/mnist-betavae-2d", "zoo/mnist-cvae-2d",
           "zoo/mnist-conv-vae-16d", "zoo/digits-vae-2d", "zoo/digits-ae-2d", "zoo/digits-betavae-2d",
           "zoo/digits-betavae4-2d", "zoo/digits-cvae-2d", "zoo/digits-vae-10d", "zoo/shapes-vae",
           "zoo/shapes-betavae"]
TRIO = ["zoo/mnist-ae-2d", "zoo/mnist-vae-2d", "zoo/mnist-betavae-2d"]
DIGITS_TRIO = ["zoo/digits-ae-2d", "zoo/digits-vae-2d", "zoo/digits-betavae-2d"]


def selectors(at, group: str = MNIST):
    return [at.selectbox(key=f"cmp_model_{slot}_{group}") for slot in range(3)]


def verdict(at) -> str:
    return "\n".join(m.value for m in at.markdown if m.value.startswith("- **"))


def quality_rows(at) -> dict:
    """The quality table, by model name: {name: {column: value}}."""
    table = at.dataframe[0].value
    return {row["model"]: row for row in table.to_dict("records")}


def test_default_trio_and_the_classifiers_verdict_on_the_aes_samples():
    at = open_app(PAGE)
    assert at.title[0].value == "AE vs VAE vs β-VAE"
    assert at.selectbox(key="cmp_data").value == MNIST
    assert [s.value for s in selectors(at)] == TRIO
    assert at.query_params["models"] == ",".join(TRIO)
    rows = quality_rows(at)
    assert set(rows) == {"AE", "VAE", "β-VAE", "real digits (for scale)"}
    ae, vae, real = rows["AE"], rows["VAE"], rows["real digits (for scale)"]
    # The bundled twins: the AE's prior samples are worse on both of the classifier's measures, and real digits
    # (the scale) beat every model.
    assert ae["recognised as a digit (%)"] < vae["recognised as a digit (%)"]
    assert ae["FID"] > vae["FID"]
    assert real["FID"] < min(r["FID"] for name, r in rows.items() if name != "real digits (for scale)")
    line = next(l for l in verdict(at).splitlines() if l.startswith("- **The AE's samples are worse than the VAE's"))
    # The verdict quotes the table's numbers.
    m = re.search(r"recognises (\d+)% of the AE's samples as a digit, against (\d+)% of the VAE's", line)
    recognised = "recognised as a digit (%)"
    assert m and (int(m[1]), int(m[2])) == (round(ae[recognised]), round(vae[recognised]))
    m = re.search(r"FID ([\d.]+) against ([\d.]+) for the VAE's", line)
    assert m and (float(m[1]), float(m[2])) == (round(ae["FID"], 1), round(vae["FID"], 1))
    # Each measure is explained in a sentence, with the classifier's own accuracy.
    text = "\n".join(m.value for m in at.markdown)
    assert "**Recognised as a digit**" in text and "**FID**" in text
    assert re.search(r"right on 9\d\.\d% of the test digits", text)
    # Three latent maps, the interpolation and the rate-distortion plot.
    assert len(at.get("plotly_chart")) == 5
    assert not at.error


def test_other_data_keeps_the_pixel_measures():
    at = open_app(PAGE)
    at.selectbox(key="cmp_data").set_value(DIGITS).run()
    assert not at.exception and not at.error
    assert [s.value for s in selectors(at, DIGITS)] == DIGITS_TRIO
    assert "mix off by (%)" in at.dataframe[0].value.columns and "FID" not in at.dataframe[0].value.columns
    line = next(l for l in verdict(at).splitlines() if l.startswith("- **The AE's samples are worse than the VAE's"))
    assert re.search(r"\d+% of the AE's samples would have to change class .* against \d+% of the VAE's", line)


def test_the_three_selectors_work():
    at = open_app(PAGE)
    first, second, third = selectors(at)
    assert set(first.options) == set(second.options)  # the MNIST models only
    assert len(first.options) == sum(k.startswith("zoo/mnist-") for k in BUNDLED)  # shown by their labels
    assert all(o.startswith("MNIST ") for o in first.options)
    second.set_value("zoo/mnist-cvae-2d").run()
    third.set_value("zoo/mnist-betavae-2d").run()
    first.set_value("zoo/mnist-conv-vae-16d").run()
    assert not at.exception and not at.error
    assert [s.value for s in selectors(at)] == ["zoo/mnist-conv-vae-16d", "zoo/mnist-cvae-2d", "zoo/mnist-betavae-2d"]
    assert any("PCA view" in c.value for c in at.caption)  # the 16-D model's map is a PCA view
    assert "AE" not in verdict(at).replace("VAE", "")
    assert any("CVAE" in line and "even by design" in line for line in verdict(at).splitlines())
    # The same model twice is allowed and said.
    first.set_value("zoo/mnist-cvae-2d").run()
    assert not at.exception and not at.error
    assert any("more than once" in c.value for c in at.caption)


def test_the_sidebar_picker_on_every_bundled_model():
    """The page keeps its own three models whatever the sidebar shows. (Switching the data set to shapes is not
    run here: measuring 512 samples against 16,000 training images of 32x32 takes too long on a loaded machine.)"""
    at = open_app(PAGE)
    assert {o.split(" (")[0] for o in at.selectbox(key="cmp_data").options} == {"mnist", "digits", "shapes"}
    for key in BUNDLED:
        picker(at).set_value(key).run()
        assert not at.exception and not at.error, key
        assert picker(at).value == key
        assert [s.value for s in selectors(at)] == TRIO


def test_a_link_picks_the_models():
    at = open_app()
    at.query_params["models"] = "zoo/mnist-vae-2d,zoo/mnist-betavae-2d,zoo/mnist-cvae-2d"
    at.switch_page(PAGE).run()
    assert [s.value for s in selectors(at)] == ["zoo/mnist-vae-2d", "zoo/mnist-betavae-2d", "zoo/mnist-cvae-2d"]
    at2 = open_app()
    at2.query_params["models"] = "zoo/nope,zoo/mnist-vae-2d,zoo/shapes-vae"
    at2.switch_page(PAGE).run()
    assert not at2.exception
    assert [s.value for s in selectors(at2)] == TRIO
    assert any("could not all be found" in i.value for i in at2.info)
    at3 = open_app()  # a link to the 8x8 trio still opens on it
    at3.query_params["models"] = ",".join(DIGITS_TRIO)
    at3.switch_page(PAGE).run()
    assert at3.selectbox(key="cmp_data").value == DIGITS
    assert [s.value for s in selectors(at3, DIGITS)] == DIGITS_TRIO
