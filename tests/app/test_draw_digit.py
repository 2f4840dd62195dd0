"""The drawing box on the Welcome, Latent map and How-a-VAE-works pages: shown for 28x28 greyscale models with a
sentence for a newcomer, absent for others; what comes back from the browser is checked before it is used."""
import pytest

from tests.app.conftest import open_app, open_page_link
from ui import draw_digit

PAGES = [(None, "Or draw one yourself"), ("app_pages/latent_map.py", "Draw a digit and watch it land"),
         ("app_pages/how_vae_works.py", "Try it with a digit of your own")]


def _texts(at) -> list[str]:
    return [e.value for e in [*at.markdown, *at.subheader, *at.caption]]


@pytest.mark.parametrize("page, heading", PAGES)
def test_the_drawing_box_is_on_the_page_for_mnist_models(page, heading):
    at = open_app(page, timeout=120)
    texts = _texts(at)
    assert any(heading in t for t in texts), texts
    assert any("Draw" in t and "encoder" in t and "black square" in t for t in texts)
    assert "_draw_digit_sent" in at.session_state  # the component was drawn and its weights recorded as sent


def test_no_drawing_box_for_an_8x8_model():
    at = open_page_link("app_pages/latent_map.py", model="zoo/digits-vae-2d")
    assert not any("Draw a digit and watch it land" in t for t in _texts(at))


class _Entry:
    sha256 = "abc"

    class config:
        latent_dim, num_classes, is_conditional, input_shape = 2, 10, False, (1, 28, 28)


def test_a_released_code_is_checked_before_use():
    good = {"model_id": "abc", "mu": [0.1, -0.2], "logvar": [-1.0, -2.0], "x": [0.0] * 784, "y": None, "seq": 1}
    code = draw_digit._valid_code(good, _Entry)
    assert code.mu == [0.1, -0.2] and code.logvar == [-1.0, -2.0] and code.y is None
    assert draw_digit._valid_code({**good, "model_id": "other"}, _Entry) is None
    assert draw_digit._valid_code({**good, "mu": [0.1]}, _Entry) is None
    assert draw_digit._valid_code({**good, "mu": [float("nan"), 0.0]}, _Entry) is None
    assert draw_digit._valid_code({**good, "x": [0.0] * 10}, _Entry) is None
    assert draw_digit._valid_code({**good, "logvar": None}, _Entry).logvar is None
    assert draw_digit._valid_code("junk", _Entry) is None
