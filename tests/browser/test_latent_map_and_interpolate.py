"""Latent map and Interpolate in a real browser: a click on a point shows that very test image and its
reconstruction, a lasso (from Plotly's toolbar) selects the group inside it, two clicks on the Interpolate map set
the ends and the downloaded GIF has one frame per step; screenshots of both pages with the 2-D and the 10-D digits
VAE."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, screenshot, wait_for_app

pytestmark = pytest.mark.timeout(300)

MAP = '[data-testid="stPlotlyChart"] .js-plotly-plot'
# Page pixel position of data coordinates, and of every data point (with its data index from custom_data; the
# invisible click grid has index -1). plotly.js decodes numpy arrays into typed arrays: customdata[i][0] or [i].
POINTS_JS = """(sel) => {
  const gd = document.querySelector(sel);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  const out = [];
  for (const tr of gd._fullData) {
    if (!tr.customdata || tr.name === 'click anywhere') continue;
    for (let i = 0; i < tr.x.length; i++) {
      const c = tr.customdata[i];
      const index = (c !== null && typeof c === 'object') ? c[0] : c;
      out.push([index, r.left + xa._offset + xa.l2p(tr.x[i]), r.top + ya._offset + ya.l2p(tr.y[i])]);
    }
  }
  return out;
}"""


@pytest.fixture(scope="module")
def shared_page(browser):
    """One browser context for the whole module: Plotly's 4.7 MB bundle is fetched and compiled once instead of
    once per test (20+ s each on a loaded 2-core machine). Every page.goto still opens a new Streamlit session."""
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    context.set_default_timeout(30_000)
    try:
        yield context.new_page()
    finally:
        context.close()


@pytest.fixture
def page(shared_page, request):
    """This module's `page`: the shared one, with conftest's screenshot of what it showed when a test failed."""
    yield shared_page
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        screenshot(shared_page, f"FAILED-{request.node.name}")


@pytest.fixture(scope="module")
def digits():
    from vae_core.data import load_data

    return load_data("digits", seed=0)


def open_page(page, server, path: str) -> None:
    # A deep link is safe: the server fixture's timed first open of "/" has run app.py (st.navigation) already.
    page.goto(f"{server}/{path}")
    wait_for_app(page)
    page.locator(f"{MAP} .main-svg").first.wait_for(state="visible", timeout=60_000)
    assert_no_exception(page)


def map_points(page, nth: int = 0) -> dict[int, tuple[float, float]]:
    """{data index: (x, y) viewport pixels} of the nth map's points, the map scrolled into view first (the
    positions are relative to the viewport, so nothing may scroll between this and the mouse actions)."""
    chart = page.locator('[data-testid="stPlotlyChart"]').nth(nth)
    chart.scroll_into_view_if_needed()
    chart.hover(position={"x": 5, "y": 5})  # shows the modebar now, so a later hover does not scroll
    points = page.evaluate(POINTS_JS.replace("document.querySelector(sel)",
                                             f"document.querySelectorAll(sel)[{nth}]"), MAP)
    return {int(i): (x, y) for i, x, y in points}


def lonely_point(points: dict[int, tuple[float, float]], min_gap: float = 9.0) -> int:
    """A point no other point is within min_gap pixels of, so a click on it cannot hit a neighbour."""
    xy = np.array(list(points.values()))
    keys = list(points)
    gaps = np.sqrt(((xy[:, None] - xy[None]) ** 2).sum(-1)) + np.eye(len(xy)) * 1e9
    order = np.argsort(-gaps.min(1))  # the loneliest first, but not a far outlier at the edge
    for k in order[len(order) // 4:]:
        if gaps[k].min() >= min_gap:
            return keys[k]
    return keys[order[0]]


def image_pixels(page, key: str) -> np.ndarray:
    """The pixels of the st.image inside the container with key `key` (inline PNG data URI)."""
    img = page.locator(f".st-key-{key} img").first
    img.wait_for(state="visible")
    data = img.get_attribute("src").split(",", 1)[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(data))).convert("L"))


def click_and_wait(page, xy) -> None:
    page.mouse.move(*xy)
    page.wait_for_timeout(150)  # let Plotly see the hover (its click acts on the hovered point)
    page.mouse.click(*xy)
    page.wait_for_timeout(300)
    wait_for_app(page)


def test_a_click_on_a_point_shows_that_test_image_and_its_reconstruction(page, server, digits):
    open_page(page, server, "latent-map?model=zoo/digits-vae-2d")
    points = map_points(page)
    assert len(points) == len(digits.test)
    index = lonely_point(points)
    click_and_wait(page, points[index])
    expect(page.get_by_text(f"Test image #{index}")).to_be_visible()
    shown = image_pixels(page, "lm_input")
    k = shown.shape[0] // 8
    want = (digits.test.x[index, 0].numpy() * 255).round().astype(np.uint8)
    assert np.array_equal(shown[::k, ::k], want), "the input shown is not the clicked test image"
    assert image_pixels(page, "lm_recon").shape == shown.shape
    assert f"idx={index}" in page.url
    assert_no_exception(page)


def toggle_all_options(page) -> None:
    for label in ("Encoder uncertainty (μ ± σ)", "Prior circles (1σ, 2σ, 3σ)", "Decoded images behind the points"):
        page.get_by_text(label, exact=True).click()
        page.wait_for_timeout(200)
        wait_for_app(page)


def test_a_lasso_selects_the_group_inside_it(page, server):
    open_page(page, server, "latent-map?model=zoo/digits-vae-2d")
    toggle_all_options(page)  # the lasso must work over the decoded background too (and the screenshot shows all)
    assert page.locator(f"{MAP} .imagelayer image").count() == 1  # the decoded background
    points = map_points(page)
    xy = np.array(list(points.values()))
    centre = np.median(xy, axis=0)
    radius = 45.0  # pixels: a small loop in the crowded middle of the map
    ring = [(centre[0] + radius * np.cos(t), centre[1] + radius * np.sin(t)) for t in np.linspace(0, 2 * np.pi, 24)]
    inside = [i for i, (x, y) in points.items() if (x - centre[0]) ** 2 + (y - centre[1]) ** 2 < (radius - 3) ** 2]
    near_edge = [i for i, (x, y) in points.items()
                 if (radius - 3) ** 2 <= (x - centre[0]) ** 2 + (y - centre[1]) ** 2 < (radius + 3) ** 2]
    assert len(inside) > 16, "the loop should catch a crowd"
    page.locator('[data-testid="stPlotlyChart"] .modebar-btn[data-title="Lasso Select"]').first.click()
    page.mouse.move(*ring[0])
    page.mouse.down()
    for point in ring[1:]:
        page.mouse.move(*point, steps=3)
    page.mouse.up()
    page.wait_for_timeout(300)
    wait_for_app(page)
    summary = page.locator('[data-testid="stMarkdown"]').filter(has_text="test images selected")
    expect(summary).to_be_visible()
    count = int(summary.inner_text().split()[0])
    assert len(inside) <= count <= len(inside) + len(near_edge)
    assert "(the first 16 shown)" in summary.inner_text()
    assert page.locator(".st-key-lm_inputs img").count() == 1
    assert page.locator(".st-key-lm_recons img").count() == 1
    assert_no_exception(page)
    screenshot(page, "latent-map-digits-vae-2d")


def test_interpolate_between_two_clicked_points_and_download_the_gif(page, server):
    open_page(page, server, "interpolate?model=zoo/digits-vae-2d")
    points = map_points(page)
    start = lonely_point(points)
    others = {i: p for i, p in points.items() if np.hypot(p[0] - points[start][0], p[1] - points[start][1]) > 60}
    end = lonely_point(others)
    click_and_wait(page, points[start])
    expect(page.get_by_text(f"test image #{start}").first).to_be_visible()
    points = map_points(page)  # the map was redrawn (the path moved)
    click_and_wait(page, points[end])
    expect(page.get_by_text(f"test image #{end}").first).to_be_visible()
    assert f"a={start}" in page.url and f"b={end}" in page.url
    thumb = page.locator('[data-testid="stSlider"] input[type="range"][aria-label="Steps"]')
    thumb.focus()
    for _ in range(3):  # 10 -> 7 steps
        page.keyboard.press("ArrowLeft")
    page.wait_for_timeout(300)
    wait_for_app(page)
    expect(page.get_by_text("7 steps from the start")).to_be_visible()
    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download the animation (GIF)").click()
    download = download_info.value
    assert download.suggested_filename == "interpolation.gif"
    with Image.open(download.path()) as gif:
        assert gif.n_frames == 7
    assert_no_exception(page)
    screenshot(page, "interpolate-digits-vae-2d")


def test_screenshots_with_the_10d_vae(page, server):
    """The 2-D VAE's screenshots are taken by the tests above; here the 10-D one, seen through its PCA view."""
    open_page(page, server, "latent-map?model=zoo/digits-vae-10d")
    expect(page.get_by_text("PC 1", exact=False).first).to_be_visible()
    toggle_all_options(page)
    points = map_points(page)
    click_and_wait(page, points[lonely_point(points)])
    expect(page.get_by_text("Test image #")).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "latent-map-digits-vae-10d")
    open_page(page, server, "interpolate?model=zoo/digits-vae-10d")
    expect(page.locator(".st-key-ip_strip img")).to_be_visible()
    assert_no_exception(page)
    screenshot(page, "interpolate-digits-vae-10d")


GRID_JS = """(sel) => {
  const gd = document.querySelector(sel);
  const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, r = gd.getBoundingClientRect();
  const tr = gd._fullData.find(t => t.name === 'click anywhere');
  return Array.from(tr.x, (x, i) => [r.left + xa._offset + xa.l2p(x), r.top + ya._offset + ya.l2p(tr.y[i])]);
}"""


def empty_spot(page) -> tuple[float, float]:
    """Viewport pixels of a point of the map's invisible click grid far from every data point (and from the map's
    edges): a click there picks that spot of the latent space, not a test image."""
    points = np.array(list(map_points(page).values()))  # scrolls the map into view first
    grid = np.array(page.evaluate(GRID_JS, MAP))
    lo, hi = grid.min(0), grid.max(0)
    inner = grid[((grid > lo + 0.1 * (hi - lo)) & (grid < hi - 0.1 * (hi - lo))).all(1)]
    gaps = np.sqrt(((inner[:, None] - points[None]) ** 2).sum(-1)).min(1)
    best = inner[int(np.argmax(gaps))]
    assert gaps.max() > 15, "no empty spot on the map"
    return float(best[0]), float(best[1])


def test_a_shared_link_reopens_interpolate_with_the_same_ends(page, server, browser):
    """Both kinds of end survive a link: a spot of the map (a code, written exactly) and a test image number; so do
    the method and the steps. A new browser context on the link shows the very same pictures."""
    from urllib.parse import parse_qs, urlparse

    open_page(page, server, "interpolate?model=zoo/digits-vae-2d")
    click_and_wait(page, empty_spot(page))  # the first click on the map sets the start
    expect(page.get_by_text("Start: the map spot (")).to_be_visible()
    end = page.get_by_role("spinbutton", name="End: test image number", exact=True)
    end.fill("123")
    end.press("Enter")
    wait_for_app(page)
    expect(page.get_by_text("End: test image #123 (label")).to_be_visible()
    page.get_by_text("Great circle (slerp)", exact=True).click()
    wait_for_app(page)
    thumb = page.locator('[data-testid="stSlider"] input[type="range"][aria-label="Steps"]')
    thumb.focus()
    page.keyboard.press("ArrowLeft")  # 10 -> 9 steps
    page.wait_for_timeout(300)
    wait_for_app(page)
    expect(page.get_by_text("9 steps from the start")).to_be_visible()
    assert_no_exception(page)
    link = page.url
    query = parse_qs(urlparse(link).query)
    assert query["b"] == ["123"] and query["method"] == ["slerp"] and query["n"] == ["9"], link
    assert "a" not in query and len(query["za"][0].split(",")) == 2, link
    shown = {key: image_pixels(page, key) for key in ("ip_a_image", "ip_b_image", "ip_strip")}

    context = browser.new_context(viewport={"width": 1400, "height": 900})
    try:
        other = context.new_page()
        other.goto(link)
        wait_for_app(other, 90_000)
        other.locator(f"{MAP} .main-svg").first.wait_for(state="visible", timeout=90_000)
        assert_no_exception(other)
        expect(other.get_by_text("Start: a code from the link (decoded)")).to_be_visible()
        expect(other.get_by_text("End: test image #123 (label")).to_be_visible()
        expect(other.get_by_role("spinbutton", name="End: test image number", exact=True)).to_have_value("123")
        expect(other.get_by_role("radio", name="Great circle (slerp)")).to_be_checked()
        expect(other.get_by_text("9 steps from the start")).to_be_visible()
        for key, pixels in shown.items():
            assert np.array_equal(image_pixels(other, key), pixels), f"{key} differs after reopening the link"
        reopened = parse_qs(urlparse(other.url).query)
        assert {k: reopened.get(k) for k in ("za", "b", "method", "n")} == \
               {k: query.get(k) for k in ("za", "b", "method", "n")}, other.url
        screenshot(other, "interpolate-from-a-shared-link")
    finally:
        context.close()
