"""Models trained elsewhere open through the Model library in Chromium (issue 17): pytorch/examples' VAE saved as its
author saves it (`torch.save(model.state_dict(), path)`) and the tutorial VAE exported as an ONNX encoder and
decoder pair, both trained briefly on real digits; each lands in the sidebar's picker, and the ONNX model's decoder (a
plain MLP graph) runs in the latent pad within 1e-4 of ONNX Runtime."""
from __future__ import annotations

import re

import numpy as np
import torch
from playwright.sync_api import expect

from tests.browser.conftest import assert_no_exception, record_figure, screenshot, sidebar_picker, wait_for_app
from tests.test_importers import saved
from tests.test_onnx_import import ExamplesVAEWithLoss, TutorialVAEWithLoss, export_pair, trained
from vae_core.data import load_data
from vae_core.library import onnx_pair_sha256
from vae_core.onnx_import import onnx_model


def alert(page, text: str):
    return page.get_by_test_id("stAlert").filter(has_text=text)


def file_input(page, label: str):
    """The file input of the st.file_uploader labelled `label`."""
    return page.get_by_test_id("stFileUploader").filter(has_text=label).locator('input[type="file"]')


def picker_options(page) -> list[str]:
    picker = sidebar_picker(page)
    picker.click()
    options = page.get_by_role("option")
    expect(options.first).to_be_visible()
    texts = options.all_inner_texts()
    picker.press("Escape")
    return texts


def test_a_state_dict_and_an_onnx_pair_open_through_the_library(server, page, tmp_path):
    mnist = load_data("mnist", seed=0)
    (tmp_path / "my_vae.pt").write_bytes(saved(trained(ExamplesVAEWithLoss, mnist)))
    encoder, decoder = export_pair(trained(TutorialVAEWithLoss, mnist), 2)
    (tmp_path / "vae_encoder.onnx").write_bytes(encoder)
    (tmp_path / "vae_decoder.onnx").write_bytes(decoder)

    page.goto(f"{server}/library")
    wait_for_app(page)
    expect(page.get_by_role("heading", name="Model library", level=1)).to_be_visible()
    file_input(page, "Upload a checkpoint (.pt)").set_input_files(str(tmp_path / "my_vae.pt"))
    expect(alert(page, "my_vae (imported, z=20)")).to_contain_text("now in the model picker", timeout=60_000)
    wait_for_app(page)
    file_input(page, "Encoder (.onnx)").set_input_files(str(tmp_path / "vae_encoder.onnx"))
    wait_for_app(page)
    file_input(page, "Decoder (.onnx)").set_input_files(str(tmp_path / "vae_decoder.onnx"))
    expect(alert(page, "vae_encoder (ONNX, z=2)")).to_contain_text("now in the model picker", timeout=60_000)
    wait_for_app(page)
    assert_no_exception(page)
    expect(page.get_by_test_id("stAlert").filter(has_text="refused")).to_have_count(0)
    notes = page.get_by_text(re.compile("Imported.*from an ONNX encoder and decoder pair"))
    expect(notes.first).to_contain_text("vae_encoder.onnx, vae_decoder.onnx")
    screenshot(page, "library-imported-models")

    options = picker_options(page)
    assert "my_vae (imported, z=20) · uploaded" in options and "vae_encoder (ONNX, z=2) · uploaded" in options, options
    picker = sidebar_picker(page)
    picker.click()
    page.get_by_role("option", name="vae_encoder (ONNX, z=2) · uploaded").click()
    wait_for_app(page)
    expect(picker).to_have_value("vae_encoder (ONNX, z=2) · uploaded")
    page.get_by_test_id("stSidebarNav").get_by_role("link", name="Latent pad").click()  # the same session
    wait_for_app(page)
    expect(picker).to_have_value("vae_encoder (ONNX, z=2) · uploaded")
    expect(page.locator("canvas.latent-pad")).to_be_visible(timeout=30_000)  # decoded in the page, not the server
    assert_no_exception(page)
    # The browser's decoder (the graph's Gemm and Relu layers, run by decoder.js) against ONNX Runtime's output.
    model = onnx_model(encoder, decoder)
    z = (np.random.default_rng(7).normal(size=(100, 2)) * 1.5).astype(np.float32)
    got = np.asarray(page.evaluate("([zs, ys, sha]) => window.__latentLab.decodeMany(zs, ys, sha)",
                                   [z.tolist(), None, onnx_pair_sha256(encoder, decoder, None, "auto")]))
    want = model.decode_mean(torch.from_numpy(z)).double().reshape(100, -1).numpy()
    error = float(np.abs(got - want).max())
    record_figure("latent_pad.max_abs_error.onnx-tutorial-vae", error)
    assert got.shape == want.shape and error <= 1e-4, error
    screenshot(page, "latent-pad-onnx-model")
