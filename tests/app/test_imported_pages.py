"""Every page opens a model trained elsewhere (issue 17): pytorch/examples' VAE uploaded as its bare state_dict,
and the tutorial VAE uploaded as an ONNX encoder and decoder pair, both trained briefly on real digits, uploaded in
the Model library and picked in the sidebar as a student would. The pages show no exception and no error box; an
ONNX decoder that is a plain MLP runs in the browser like Latent Lab's own, any other on the server, which the pages
say in a notice."""
from __future__ import annotations

import pytest
import torch

from tests.app.conftest import open_app, picker
from tests.app.test_wae_tcvae_pages import RUN_S, assert_every_page_opens
from tests.test_importers import saved
from tests.test_onnx_import import (ConvDecoder, ConvEncoder, ExamplesVAEWithLoss, TutorialVAEWithLoss, export_pair,
                                     onnx_bytes, trained)
from vae_core.checkpoint import file_sha256
from vae_core.data import load_data
from vae_core.library import onnx_pair_sha256


@pytest.fixture(scope="module")
def originals() -> dict:
    mnist = load_data("mnist", seed=0)
    return {"state_dict": trained(ExamplesVAEWithLoss, mnist), "onnx": trained(TutorialVAEWithLoss, mnist)}


def upload(at, how: str, original) -> str:
    """Upload the model in the Model library as its author saved or exported it; the picker's key for it."""
    if how == "state_dict":
        data = saved(original)
        at.file_uploader(key="checkpoint_upload").upload("my_vae.pt", data).run()
        return f"upload/{file_sha256(data)[:12]}"
    encoder, decoder = export_pair(original, 2)
    at.file_uploader(key="onnx_encoder_upload").upload("vae_encoder.onnx", encoder).run()
    at.file_uploader(key="onnx_decoder_upload").upload("vae_decoder.onnx", decoder).run()
    return f"upload/{onnx_pair_sha256(encoder, decoder, None, 'auto')[:12]}"


def opened(originals, how: str):
    at = open_app("app_pages/library.py")
    key = upload(at, how, originals[how])
    assert not at.exception and not at.error, ([e.value for e in at.exception], [e.value for e in at.error])
    picker(at).set_value(key).run()
    return at, key


@pytest.mark.parametrize("how", ["state_dict", "onnx"])
def test_every_page_opens_an_imported_model(originals, how):
    assert_every_page_opens(*opened(originals, how))


def test_the_cards_say_where_each_model_came_from(originals):
    at, _ = opened(originals, "onnx")
    upload(at, "state_dict", originals["state_dict"])
    notes = [m.value for m in at.markdown if "**Imported**" in m.value]
    onnx = [n for n in notes if "ONNX encoder and decoder pair" in n]
    state_dict = [n for n in notes if "PyTorch state_dict" in n]
    assert onnx and "vae_encoder.onnx, vae_decoder.onnx" in onnx[0] and "ONNX Runtime" in onnx[0], notes
    assert "ends in a Sigmoid" in onnx[0] and "images 1×28×28" in onnx[0]
    assert state_dict and "my_vae.pt" in state_dict[0] and "pytorch/examples" in state_dict[0], notes
    labels = picker(at).options  # as the sidebar shows them
    assert "vae_encoder (ONNX, z=2) · uploaded" in labels and "my_vae (imported, z=20) · uploaded" in labels


def pad_notices(at) -> list[str]:
    at.switch_page("app_pages/pad.py").run(timeout=RUN_S)
    assert not at.exception and not at.error
    return [n.value for n in [*at.info, *at.warning, *at.caption, *at.markdown] if "decoded on the server" in n.value]


def test_a_plain_mlp_onnx_decoder_runs_in_the_browser(originals):
    at, _ = opened(originals, "onnx")
    assert not pad_notices(at)  # the pad decodes in the page: no fallback notice


def test_a_conv_onnx_decoder_runs_on_the_server_with_a_notice():
    at = open_app("app_pages/library.py")
    encoder = onnx_bytes(ConvEncoder(), torch.zeros(1, 1, 28, 28), ["m", "lv"])
    decoder = onnx_bytes(ConvDecoder(), torch.zeros(1, 3))
    at.file_uploader(key="onnx_encoder_upload").upload("conv_encoder.onnx", encoder).run()
    at.file_uploader(key="onnx_decoder_upload").upload("conv_decoder.onnx", decoder).run()
    picker(at).set_value(f"upload/{onnx_pair_sha256(encoder, decoder, None, 'auto')[:12]}").run()
    notices = pad_notices(at)
    assert notices and "not a plain chain of dense layers" in notices[0], notices


def test_a_refused_pair_names_what_was_found(originals):
    at = open_app("app_pages/library.py")
    encoder, decoder = export_pair(originals["onnx"], 2)
    at.file_uploader(key="onnx_encoder_upload").upload("e.onnx", decoder).run()
    at.file_uploader(key="onnx_decoder_upload").upload("d.onnx", encoder).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and "e.onnx and d.onnx were refused" in errors[0] and "look swapped" in errors[0], errors


def test_an_imported_model_is_shown_on_the_bundled_data_of_its_shape_and_measured_on_it(originals):
    at, key = opened(originals, "onnx")
    assert "trained on mnist (assumed" in at.sidebar.caption[0].value
    at.button(key=f"measure-{key}").click().run(timeout=RUN_S)
    assert not at.exception and not at.error
    figures = [m.value for m in at.markdown if "VAE, onnx, z=2 · test ELBO" in m.value]
    assert figures, [m.value for m in at.markdown]
    elbo = float(figures[0].split("test ELBO **")[1].split("**")[0])
    assert -250 < elbo < -100, elbo  # a briefly trained z=2 VAE on MNIST; untrained is about -540
    assert any("Measured here on 2,000 test images of mnist" in c.value for c in at.caption)


@pytest.mark.parametrize("how", ["state_dict", "onnx"])
def test_the_data_pages_show_the_imported_model_on_its_data(originals, how):
    at, _ = opened(originals, how)
    for page in ("latent_map", "interpolate", "anomaly"):
        at.switch_page(f"app_pages/{page}.py").run(timeout=RUN_S)
        notes = [i.value for i in at.info]
        assert not any("cannot be loaded here" in n for n in notes), (page, notes)
        assert at.get("plotly_chart"), page  # its test images, encoded by the imported model


def npz_bytes(**arrays) -> bytes:
    """A .npz file's bytes, as numpy.savez writes it."""
    import io

    import numpy as np

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def measured(at, key: str) -> dict:
    """The figures the card keeps for the imported model after Measure."""
    return at.session_state["uploads"][key][0].meta["metrics"]


def assert_figures_of(metrics: dict, model, test, images, labels) -> None:
    """The card's figures are evaluate_model's on these very images."""
    import dataclasses

    from vae_core.metrics import evaluate_model

    expected = evaluate_model(model, dataclasses.replace(test, x=images, y=labels, factors=None))
    assert abs(metrics["test_elbo"] - expected["elbo"]) < 1e-4, (metrics, expected["elbo"])
    assert abs(metrics["test_kl"] - expected["kl"]) < 1e-4 and metrics["active_units"] == expected["active_units"]


def test_an_imported_model_is_measured_on_the_data_the_user_chooses(originals):
    """The bundled set of its shape by default, then an .npz of real MNIST digits of the user's own: the card's
    figures are evaluate_model's on those images, its caption names the data, and the pages show it on that file."""
    at, key = opened(originals, "state_dict")
    model = at.session_state["uploads"][key][1]
    test = load_data("mnist", seed=0).test
    at.button(key=f"measure-{key}").click().run(timeout=RUN_S)
    assert not at.exception and not at.error
    assert_figures_of(measured(at, key), model, test, test.x[:2000], test.y[:2000])

    images, labels = test.x[2000:2500], test.y[2000:2500]
    digits = npz_bytes(x_train=test.x[:100, 0].numpy(), y_train=test.y[:100].numpy(), x_test=images[:, 0].numpy(),
                       y_test=labels.numpy())
    at.radio(key=f"measure-on-{key}").set_value("file").run(timeout=RUN_S)
    at.file_uploader(key=f"measure-file-{key}").upload("my_digits.npz", digits).run(timeout=RUN_S)
    at.button(key=f"measure-{key}").click().run(timeout=RUN_S)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert_figures_of(measured(at, key), model, test, images, labels)
    assert any("Measured here on 500 test images of my_digits.npz" in c.value for c in at.caption)
    at.switch_page("app_pages/latent_map.py").run(timeout=RUN_S)
    assert not at.exception and at.get("plotly_chart")
    assert "my_digits.npz" in at.sidebar.caption[0].value


def test_a_file_of_another_image_shape_is_refused_with_both_shapes():
    from tests.app.test_library_page import _upload
    from tests.test_importers import ExamplesVAE
    import numpy as np

    torch.manual_seed(0)
    at = open_app("app_pages/library.py")
    _upload(at, "my_vae.pt", saved(ExamplesVAE()))
    (key,) = at.session_state["uploads"]
    at.radio(key=f"measure-on-{key}").set_value("file").run(timeout=RUN_S)
    small = npz_bytes(x=np.random.default_rng(0).random((50, 8, 8), dtype=np.float32))
    at.file_uploader(key=f"measure-file-{key}").upload("small.npz", small).run(timeout=RUN_S)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("small.npz holds images of 1×8×8" in e and "takes images of 1×28×28" in e for e in errors), errors
