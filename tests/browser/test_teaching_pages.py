"""The teaching pages in a real browser: "How a VAE works" (Resample redraws ε and the decoded image, the sum/mean
toggle changes the loss numbers), "AE, VAE, β-VAE and WAE" (the statement about the samples, every chart drawn) and
the posterior-collapse lesson run end to end (Start, its live β = 4 training, every step through Next, each step's
link opened in a new browser context), with screenshots."""
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
    page.wait_for_function(CHANGED_SRC_JS, arg=[DECODED_IMG, before_src], timeout=30_000)
    wait_for_app(page)
    assert_no_exception(page)
    assert text_of(page, ".st-key-hvw_trick .katex-html") != before_eps
    expect(page.get_by_text("Draw number 1.")).to_be_visible()
    screenshot(page, "how-a-vae-works")

    loss = ".st-key-hvw_loss [data-testid='stMetricValue']"
    summed = text_of(page, loss)
    page.get_by_text("Average over the pixels instead of summing").click()
    page.wait_for_function(CHANGED_TEXT_JS, arg=[loss, summed], timeout=30_000)
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
    page.set_viewport_size({"width": 1400, "height": 4400})
    open_page(page, server, "compare")
    expect(page.get_by_text("The AE's samples are worse than the VAE's", exact=False)).to_be_visible()
    verdict = text_of(page, ".st-key-cmp_verdict")  # the MNIST twins, judged by the shipped digit classifier
    assert "of the AE's samples as a digit" in verdict and "FID" in verdict
    assert "From best samples to worst" in verdict and "WAE (" in verdict  # the four ranked
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(6)  # four maps (two to a row), the interpolation, the rate-distortion plot
    expect(page.locator('[data-testid="stImage"] img')).to_have_count(5)  # four sample grids, the walk's ends (one strip)
    expect(page.get_by_text("A WAE has no ELBO", exact=False)).to_be_visible()
    screenshot(page, "compare")


# -- the posterior-collapse lesson, end to end --------------------------------------------------------------------
PAGES = {"app_pages/train.py": ("/train", "Train a model"), "app_pages/latent_map.py": ("/latent-map", "Latent map"),
         "app_pages/decode.py": ("/decode", "Decode"), "app_pages/compare.py": ("/compare", "AE, VAE, β-VAE and WAE")}
LESSON_TRAIN_TIMEOUT_MS = 240_000  # 30 epochs of the digits MLP: seconds alone, much longer on a loaded machine


def banner_text(lesson, index: int) -> str:
    step = lesson.steps[index]
    return f"Lesson: {lesson.title} · step {index + 1} of {len(lesson.steps)}: {step.title}"


def model_caption(key: str) -> str:
    """The sidebar's caption for a bundled model: '<kind, arch, z> · trained on <data>'."""
    from pathlib import Path

    from vae_core.checkpoint import load_checkpoint

    model, meta = load_checkpoint(Path(__file__).resolve().parents[2] / "checkpoints" / f"{key.split('/')[1]}.pt")
    return f"{model.config.label} · trained on {meta['dataset']}"


def expect_step(page, lesson, index: int) -> None:
    """The page of step `index`, its banner (text and question), its model in the picker, no exception."""
    step = lesson.steps[index]
    expect(page.get_by_text(banner_text(lesson, index))).to_be_visible(timeout=OPEN_TIMEOUT_MS)
    expect(page.get_by_role("heading", name=PAGES[step.page][1], level=1)).to_be_visible(timeout=OPEN_TIMEOUT_MS)
    expect(page.get_by_text(step.question)).to_be_visible()
    expect(page.get_by_test_id("stSidebar").get_by_text(model_caption(step.model), exact=True)).to_be_visible()
    assert_no_exception(page)


def keyed_button(page, key: str):
    """The button st.button(key=key) draws. (With a help tooltip Streamlit 1.67 also keeps a hidden copy of the
    button in the same element, so only the visible one is taken.)"""
    return page.locator(f".st-key-{key} button:visible")


def metric_value(page, label: str) -> str:
    name = page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    return page.get_by_test_id("stMetric").filter(has=name).get_by_test_id("stMetricValue").inner_text()


@pytest.mark.timeout(480)
def test_the_posterior_collapse_lesson_end_to_end(page, server, browser):
    from urllib.parse import parse_qs, urlparse

    from ui.lessons import lesson_by_id
    from tests.browser.test_shell_and_training import alert, stop_if_training

    lesson = lesson_by_id("posterior-collapse")
    page.set_viewport_size({"width": 1400, "height": 1400})
    open_page(page, server, "lessons")
    expect(page.get_by_role("heading", name="Lessons", level=1)).to_be_visible()
    expect(page.get_by_role("heading", name=lesson.title)).to_be_visible()
    screenshot(page, "lessons")
    keyed_button(page, f"start-{lesson.id}").click()  # the lesson's Start

    links = []
    for index, step in enumerate(lesson.steps):
        expect_step(page, lesson, index)
        wait_for_app(page, OPEN_TIMEOUT_MS)
        assert_no_exception(page)
        query = parse_qs(urlparse(page.url).query)
        assert urlparse(page.url).path == PAGES[step.page][0], page.url
        assert query["lesson"] == [lesson.id] and query["step"] == [str(index + 1)], page.url
        assert query["model"] == [step.model], page.url
        links.append(page.url)

        if step.action == "train_collapse":
            try:
                keyed_button(page, "lesson_action").click()  # "Train it now"
                expect(page.get_by_text("Run: Lesson: β = 4 on digits")).to_be_visible(timeout=30_000)
                expect(alert(page, "Finished")).to_be_visible(timeout=LESSON_TRAIN_TIMEOUT_MS)
                wait_for_app(page, OPEN_TIMEOUT_MS)
            finally:
                stop_if_training(page)
            # The collapse, as the class sees it: the warning, a KL of about zero, no active unit.
            expect(alert(page, "Posterior collapse:")).to_be_visible()
            kl = float(metric_value(page, "KL"))
            assert 0 <= kl < 0.1, f"the β = 4 run should collapse (KL ≈ 0), its test KL is {kl}"
            assert metric_value(page, "Active units") == "0"
            expect(page.get_by_text("KL per latent dimension (nats): the information each dimension")).to_be_visible()
            expect(page.get_by_test_id("stPlotlyChart")).to_have_count(3)  # the loss, the latent map, KL per dim
            expect(page.get_by_text(banner_text(lesson, index))).to_be_visible()  # still on the lesson's step
            assert parse_qs(urlparse(page.url).query)["step"] == [str(index + 1)]
            assert_no_exception(page)
            page.mouse.move(5, 5)  # no tooltip of the button just pressed in the picture
            screenshot(page, "lesson-posterior-collapse-step-1")
        elif step.page == "app_pages/latent_map.py":
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(state="visible",
                                                                                  timeout=OPEN_TIMEOUT_MS)
        if index + 1 < len(lesson.steps):
            keyed_button(page, "lesson_next").click()
        else:
            expect(page.locator(".st-key-lesson_next")).to_have_count(0)  # the last step has no Next
            screenshot(page, "lesson-posterior-collapse-last-step")

    # Each step's link opens a new session on the same step, with its page and its model.
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        other = context.new_page()
        for index, link in enumerate(links):
            other.goto(link)
            expect_step(other, lesson, index)
    finally:
        context.close()

    keyed_button(page, "lesson_end").click()
    expect(page.get_by_text(f"Lesson: {lesson.title}")).to_have_count(0, timeout=30_000)
    wait_for_app(page)
    assert "lesson" not in parse_qs(urlparse(page.url).query)
    assert_no_exception(page)
