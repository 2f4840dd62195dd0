"""The "How a VAE works" page: every bundled model kind renders its walk-through, Resample draws a new ε (and a
new image), the sum/mean toggle changes the numbers shown, the AE is explained without σ, ε or KL."""
from __future__ import annotations

from tests.app.conftest import ROOT, open_app, picker
from vae_core.zoo import ZOO

PAGE = "app_pages/how_vae_works.py"
BUNDLED = [f"zoo/{s.name}" for s in ZOO if (ROOT / "checkpoints" / f"{s.name}.pt").is_file()]
DIGITS = "zoo/digits-vae-2d"  # 64 pixels: the sum/mean test's arithmetic


def resample_button(at):
    return next(b for b in at.button if b.label == "Resample ε")


def eps_column(at) -> list[float]:
    return at.dataframe[0].value["ε (noise)"].tolist()


def decoded_image(at) -> str:
    return next(i for i in at.image if i.captions == ["Decoded from z"]).value[0]


def test_every_bundled_model_renders():
    at = open_app(PAGE)
    assert at.title[0].value == "How a VAE works"
    for key in BUNDLED:
        picker(at).set_value(key).run()
        assert not at.exception, (key, [e.value for e in at.exception])
        assert not at.error, (key, [e.value for e in at.error])
        latex = " ".join(l.value for l in at.latex)
        assert r"\text{loss}" in latex, key
        if key.endswith(("-ae-2d", "-wae-2d")):  # one exact code per image: no σ, no ε, no KL, no ELBO
            assert r"\text{ELBO}" not in latex and "KL" not in latex
            assert resample_button(at).disabled
            assert any("no σ and no ε" in m.value for m in at.markdown)
            if key.endswith("-wae-2d"):
                assert r"\text{MMD}" in latex and any("no ELBO" in m.value for m in at.markdown)
        else:
            assert r"\text{ELBO}" in latex and r"\varepsilon" in latex
        if key.endswith("-cvae-2d"):
            assert any("the label" in c.value for c in at.caption)


def test_resample_draws_a_new_eps_and_a_new_image():
    at = open_app(PAGE)
    eps, image = eps_column(at), decoded_image(at)
    mu = at.dataframe[0].value["μ (mean)"].tolist()
    resample_button(at).click().run()
    assert not at.exception
    assert eps_column(at) != eps
    assert decoded_image(at) != image
    assert at.dataframe[0].value["μ (mean)"].tolist() == mu  # the encoder's output does not change


def test_sum_mean_toggle_changes_the_numbers():
    at = open_app(PAGE, link={"model": DIGITS})
    summed = [m.value for m in at.metric]
    latex = [l.value for l in at.latex]
    at.toggle(key="hvw_mean").set_value(True).run()
    assert not at.exception
    averaged = [m.value for m in at.metric]
    assert averaged[0] != summed[0]  # the reconstruction term is divided by the 64 pixels
    assert averaged[1] == summed[1]  # the KL is not
    assert float(averaged[0]) * 64 == __import__("pytest").approx(float(summed[0]), abs=0.1)
    assert averaged[2] != summed[2]  # so the KL's share of the loss grows
    assert [l.value for l in at.latex] != latex and r"/ 64" in at.latex[-1].value
    assert any("64 times more" in i.value for i in at.info)


def test_the_image_index_comes_from_the_link_and_is_checked():
    at = open_app()
    at.query_params["i"] = "5"
    at.switch_page(PAGE).run()
    assert at.number_input(key="hvw_index").value == 5
    assert any("Test image 5" in c for i in at.image for c in i.captions)


def test_the_default_mnist_vae_averages_over_784_pixels():
    at = open_app(PAGE)
    assert picker(at).value == "zoo/mnist-vae-2d"
    summed = [m.value for m in at.metric]
    at.toggle(key="hvw_mean").set_value(True).run()
    assert not at.exception
    averaged = [m.value for m in at.metric]
    assert float(averaged[0]) * 784 == __import__("pytest").approx(float(summed[0]), rel=0.01)
    assert r"/ 784" in at.latex[-1].value
