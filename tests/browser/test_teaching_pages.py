"""The teaching pages in a real browser: "How a VAE works" (Resample redraws ε and the decoded image, the sum/mean
toggle changes the loss numbers) and "AE vs VAE vs β-VAE" (the statement about the samples, every chart drawn),
with a screenshot of each."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.timeout(120)

DECODED_IMG = ".st-key-hvw_decoded img"
CHANGED_SRC_JS = "([selector, before]) => { const i = document.querySelector(selector);" \
                 " return !!i && i.getAttribute('src') !== before && i.complete && i.naturalWidth > 0; }"
CHANGED_TEXT_JS = "([selector, before]) => { const e = document.querySelector(selector);" \
                  " return !!e && e.innerText !== before; }"


OPEN_TIMEOUT_MS = 90_000  # a page's first visit on a cold server loads its data and chart code; slow under load


def open_page(page, server, path: str) -> None:
    page.goto(f"{server}/{path}")
    wait_for_app(page, OPEN_TIMEOUT_MS)
    assert_no_exception(page)


def text_of(page, selector: str) -> str:
    element = page.locator(selector).first
    element.wait_for(state="visible")
    return element.inner_text()


def test_how_a_vae_works(page, server):
    page.set_viewport_size({"width": 1400, "height": 2000})  # Streamlit scrolls inside: a tall window shows all
    open_page(page, server, "how-a-vae-works?model=zoo/digits-vae-2d")
    image = page.locator(DECODED_IMG).first
    image.wait_for(state="visible")
    before_src, before_eps = image.get_attribute("src"), text_of(page, ".st-key-hvw_trick .katex-html")
    assert before_src.startswith("data:image/png;base64,")
    assert image.evaluate("i => i.naturalWidth") >= 128  # shown big: 8 pixels a side, upscaled

    page.get_by_role("button", name="Resample ε").click()
    page.wait_for_function(CHANGED_SRC_JS, arg=[DECODED_IMG, before_src], timeout=20_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert text_of(page, ".st-key-hvw_trick .katex-html") != before_eps
    expect(page.get_by_text("Draw number 1.")).to_be_visible()
    screenshot(page, "how-a-vae-works")

    loss = ".st-key-hvw_loss [data-testid='stMetricValue']"
    summed = text_of(page, loss)
    page.get_by_text("Average over the pixels instead of summing").click()
    page.wait_for_function(CHANGED_TEXT_JS, arg=[loss, summed], timeout=20_000)
    wait_for_app(page)
    assert_no_exception(page)
    averaged = text_of(page, loss)
    assert float(averaged) * 64 == pytest.approx(float(summed), abs=0.1)  # the reconstruction, divided by 64 pixels
    expect(page.get_by_text("64 times more")).to_be_visible()
    screenshot(page, "how-a-vae-works-mean")

    # The autoencoder, in the same browser context (its chart code is loaded already): no σ, no ε, nothing to draw.
    open_page(page, server, "how-a-vae-works?model=zoo/digits-ae-2d")
    expect(page.get_by_text("no σ and no ε", exact=False)).to_be_visible()
    expect(page.get_by_role("button", name="Resample ε")).to_be_disabled()
    screenshot(page, "how-a-vae-works-ae")


def test_compare_page(page, server):
    page.set_viewport_size({"width": 1400, "height": 3300})
    open_page(page, server, "compare")
    expect(page.get_by_text("The AE's samples are worse than the VAE's", exact=False)).to_be_visible()
    verdict = text_of(page, ".st-key-cmp_verdict")
    assert "of the AE's samples would have to change class" in verdict
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(5)  # three maps, the interpolation, the rate-distortion plot
    assert page.locator('[data-testid="stImage"] img').count() >= 4  # three sample grids and the walk's two ends
    screenshot(page, "compare")
