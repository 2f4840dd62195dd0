"""Decode and Generate in a real browser: on the Decode page's server path a decoder slider moved with the keyboard
redraws the image (and the link), "Decode in the browser" switched off by hand gives the same sliders, another seed
draws other samples, and screenshots of both pages with the 2-D and the 10-D digits VAE. The Decode page's default,
the latent pad decoding in the browser, is tested in test_latent_pad.py."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app

DECODED_IMG = ".st-key-decoded img"
SAMPLES_IMG = ".st-key-samples img"
CHANGED_JS = "([selector, before]) => { const i = document.querySelector(selector);" \
             " return !!i && i.getAttribute('src') !== before && i.complete && i.naturalWidth > 0; }"


def open_page(page, server, path: str) -> None:
    page.goto(f"{server}/{path}")
    wait_for_app(page)
    assert_no_exception(page)


def src(page, selector: str) -> str:
    img = page.locator(selector).first
    img.wait_for(state="visible")
    return img.get_attribute("src")


def slider_thumb(page, label: str):
    """The thumb of the slider labelled `label`, the element a keyboard user focuses (Streamlit 1.67 draws it as
    an <input type="range">: role slider, without a role attribute; its accessible name repeats the label)."""
    return page.locator(f'[data-testid="stSlider"] input[type="range"][aria-label="{label}"]')


def test_a_shared_link_opens_on_its_point_and_a_slider_redraws_the_image(page, server):
    open_page(page, server, "decode?model=zoo/digits-vae-2d&decoder=server&z=1.5%2C-0.75")
    thumb = slider_thumb(page, "z[0]")
    assert (thumb.input_value(), slider_thumb(page, "z[1]").input_value()) == ("1.5", "-0.75")
    before = src(page, DECODED_IMG)
    assert before.startswith("data:image/png;base64,")
    thumb.focus()
    page.keyboard.press("ArrowRight")
    page.wait_for_function(CHANGED_JS, arg=[DECODED_IMG, before], timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert thumb.input_value() == "1.55"
    assert "z=1.55%2C-0.75" in page.url  # the link follows the slider
    # Back again: the same code, the same picture.
    page.keyboard.press("ArrowLeft")
    page.wait_for_function("(b) => document.querySelector('.st-key-decoded img').getAttribute('src') === b",
                           arg=before, timeout=30_000)


def test_switching_the_browser_decoder_off_gives_the_server_sliders(page, server):
    open_page(page, server, "decode?model=zoo/digits-vae-2d&z=0.5%2C0.5")
    expect(page.locator("canvas.latent-pad")).to_be_visible()  # the default: the pad
    assert slider_thumb(page, "z[0]").count() == 0
    page.get_by_text("Decode in the browser", exact=True).click()  # the toggle's label
    wait_for_app(page)
    assert_no_exception(page)
    assert page.locator("canvas.latent-pad").count() == 0
    assert slider_thumb(page, "z[0]").input_value() == "0.5"
    assert "decoder=server" in page.url
    before = src(page, DECODED_IMG)
    slider_thumb(page, "z[1]").focus()
    page.keyboard.press("ArrowLeft")
    page.wait_for_function(CHANGED_JS, arg=[DECODED_IMG, before], timeout=30_000)
    wait_for_app(page)
    assert "z=0.5%2C0.45" in page.url


def test_another_seed_draws_other_samples(page, server):
    open_page(page, server, "generate?model=zoo/digits-vae-2d")
    before = src(page, SAMPLES_IMG)
    page.get_by_role("button", name="New samples").click()
    page.wait_for_function(CHANGED_JS, arg=[SAMPLES_IMG, before], timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert "seed=1" in page.url
    page.goto(f"{server}/generate?model=zoo/digits-vae-2d&seed=0")  # the link of the first set shows it again
    wait_for_app(page)
    assert src(page, SAMPLES_IMG) == before


@pytest.mark.parametrize("model", ["digits-vae-2d", "digits-vae-10d"])
def test_screenshots(page, server, model):
    page.set_viewport_size({"width": 1400, "height": 2300})  # Streamlit scrolls inside: a tall window shows all
    open_page(page, server, f"decode?model=zoo/{model}&decoder=server")
    assert page.locator('[data-testid="stPlotlyChart"]').count() >= 1
    screenshot(page, f"decode-{model}")
    page.get_by_text("Manifold grid", exact=True).click()  # the segmented control's button
    wait_for_app(page)
    assert page.get_by_text("Tiles per side", exact=True).count() == 1
    page.wait_for_timeout(300)  # plotly draws a new chart over the next frames
    screenshot(page, f"decode-{model}-manifold")
    open_page(page, server, f"generate?model=zoo/{model}")
    page.get_by_text("Show each sample's nearest training image", exact=True).click()  # the toggle's label
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for(state="visible")
    wait_for_app(page)
    assert_no_exception(page)
    assert page.locator('[data-testid="stPlotlyChart"]').count() == 1
    screenshot(page, f"generate-{model}")
