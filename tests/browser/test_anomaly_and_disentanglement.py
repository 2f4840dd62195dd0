"""End-to-end browser tests of the Anomaly detection page and the Disentanglement lab.

A real `streamlit run app.py` server and a real headless Chromium (see conftest.py); nothing is mocked.
Run:  .venv/bin/python -m pytest tests/browser/test_anomaly_and_disentanglement.py -q -x
Screenshots: $LATENT_LAB_ARTIFACTS/screenshots (anomaly.png, disentanglement.png, ...).
"""
from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, record_figure, screenshot, sidebar_picker, wait_for_app
from vae_core.data import SHAPE_FACTOR_NAMES
from vae_core.disentanglement import INACTIVE_KL_NATS
from vae_core.zoo import list_zoo

pytestmark = pytest.mark.timeout(300)

RATES = re.compile(r"flags (\d+)% of the shapes \(resized to 8×8\) \(anomalies caught\) and (\d+)% of the digits")
CARDS = {card["name"]: card for card in list_zoo()}


def open_page(page, url: str) -> None:
    page.goto(url)
    wait_for_app(page)
    assert_no_exception(page)


def rates(page) -> tuple[int, int]:
    text = page.locator(".st-key-an_rates").inner_text()
    match = RATES.search(text)
    assert match, f"no rates sentence in {text!r}"
    return int(match.group(1)), int(match.group(2))


def press_on_slider(page, label: str, key: str, times: int = 1) -> None:
    """Focus a slider's thumb (role slider), press a key until the thumb moves, and wait for the app to take the
    new value. Once, on a cold server, all ten presses were lost (the thumb had not moved, nor the URL): the
    presses are sent again, up to three times, until the thumb's aria-valuenow changes."""
    thumb = page.get_by_role("slider", name=label)
    before = thumb.get_attribute("aria-valuenow")
    for _ in range(3):
        thumb.focus()
        for _ in range(times):
            thumb.press(key)
        try:
            expect(thumb).not_to_have_attribute("aria-valuenow", before or "", timeout=3_000)
            break
        except AssertionError:  # not moved: the slider was re-rendering; press again
            pass
    thumb.blur()
    expect(thumb).not_to_have_attribute("aria-valuenow", before or "")
    wait_for_app(page)


def test_anomaly_threshold_slider_changes_the_rates(server, page):
    open_page(page, f"{server}/anomaly?model=zoo/digits-vae-2d")  # the 8x8 digits VAE against the shapes
    expect(page.get_by_role("heading", name="Anomaly detection", level=1)).to_be_visible()
    auroc = float(page.get_by_test_id("stMetricValue").first.inner_text())
    record_figure("anomaly_auroc_digits_vae_vs_shapes", auroc)
    assert auroc > 0.95, "the bundled digits VAE must tell digits from shapes"
    caught, alarms = rates(page)
    assert caught > 80 and alarms <= 5
    screenshot(page, "anomaly")

    press_on_slider(page, "Threshold (nats)", "ArrowLeft", times=10)  # lower threshold: more flagged
    expect(page.locator(".st-key-an_rates")).not_to_contain_text(f"and {alarms}% of the digits")
    lower = rates(page)
    assert lower[0] >= caught and lower[1] > alarms
    press_on_slider(page, "Threshold (nats)", "End")  # above every score: nothing flagged
    expect(page.locator(".st-key-an_rates")).to_contain_text("flags 0% of the shapes")
    assert rates(page) == (0, 0)
    assert re.search(r"[?&]t=\d", page.url), f"the threshold is not in the link: {page.url}"
    assert_no_exception(page)

    # The link brings the same view back in a fresh page.
    open_page(page, page.url)
    assert rates(page) == (0, 0)


def test_disentanglement_lab_with_the_shapes_showcase(server, page):
    open_page(page, f"{server}/disentanglement")
    expect(page.get_by_role("heading", name="Disentanglement lab", level=1)).to_be_visible()
    expect(page.get_by_text("no ground-truth factors")).to_be_visible()
    page.get_by_role("button", name="Switch to the bundled shapes β-TCVAE").click()
    wait_for_app(page)
    expect(sidebar_picker(page)).to_have_value(re.compile(r"^Shapes β-TCVAE"))
    card = CARDS["shapes-tcvae"]
    mig = page.get_by_test_id("stMetric").filter(has_text=re.compile(r"^MIG")).get_by_test_id("stMetricValue")
    expect(mig).to_have_text(f"{card['mig']:.3f}")
    # Every active row of the traversal is labelled with the factor it follows (the card's, to two decimals).
    for dim, (factor, nmi) in enumerate(card["factor_per_dim"]):
        if card["kl_per_dim"][dim] >= INACTIVE_KL_NATS:
            expect(page.get_by_text(f"z[{dim}] · {factor} {nmi:.2f}").first).to_be_visible()
    vae_mig, beta_mig = CARDS["shapes-vae"]["mig"], CARDS["shapes-betavae"]["mig"]
    expect(page.get_by_text(re.compile(rf"MIG of {beta_mig:.3f}, higher than the plain VAE's {vae_mig:.3f}"))
           ).to_be_visible()
    expect(page.get_by_text(re.compile(rf"MIG of {card['mig']:.3f}, the highest of the three"))).to_be_visible()
    record_figure("disentanglement_mig", {"shapes-tcvae": card["mig"], "shapes-betavae": beta_mig,
                                          "shapes-vae": vae_mig})
    # Under the model's rows, the target: the generator's own five factor rows, each labelled with its factor.
    expect(page.get_by_text("The target: each factor on a row of its own")).to_be_visible()
    target = page.get_by_test_id("stPlotlyChart").filter(has_text="the one factor that moves")
    expect(target).to_be_visible()
    for factor in SHAPE_FACTOR_NAMES:
        expect(target.locator("g.ytick text").filter(has_text=re.compile(rf"^{factor}$"))).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "disentanglement")
