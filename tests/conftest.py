"""Shared fixtures: small real data (digits) and tiny trained models, built once per test session."""
from __future__ import annotations

import os
from pathlib import Path

# The tests share two cores with the Streamlit servers and browsers they start: wait passively, as the app does
# (app.py), so OpenMP threads do not spin against them. Set before torch loads; vae_core itself sets nothing.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import pytest  # noqa: E402
import torch  # noqa: E402

from vae_core.config import TrainConfig, model_config_for
from vae_core.models import build_model
from vae_core.train import Trainer


@pytest.fixture(scope="session")
def digits():
    from vae_core.data import load_data

    return load_data("digits", seed=0)


@pytest.fixture(scope="session")
def trained_digits_vae(digits):
    """A digits VAE (latent 2) trained long enough that its posterior is informative (KL of a few nats)."""
    config = model_config_for(digits.input_shape, digits.num_classes, kind="vae", latent_dim=2, hidden=(256, 128))
    model = build_model(config, seed=0)
    Trainer(model, digits, TrainConfig(epochs=25, batch_size=64, lr=3e-3, seed=0)).run()
    return model.eval()


@pytest.fixture(scope="session")
def browser():
    """One Chromium for the whole session, shared by tests/browser and tests/cluster: Playwright's sync API runs
    one event loop per thread, so a second sync_playwright() while this one is open would fail."""
    from playwright.sync_api import expect, sync_playwright

    from bench.harness import CHROMIUM, launch_chromium

    # expect() waits for behaviour (a rerun's new text, a picture appearing), never times it: a rerun that takes
    # 6 s on a loaded 2-core machine is slow, not wrong. Playwright's 5 s default made such waits race the
    # machine's speed (a threshold slider's new rates missed it once in a whole-suite run), so every assertion
    # gets the 30 s that actions already have; a test that means a duration records it in bench/.
    expect.set_options(timeout=30_000)
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium (./run.sh test does it)")
    with sync_playwright() as p:
        b = launch_chromium(p)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(autouse=True)
def _deterministic_threads():
    torch.set_num_threads(2)
    yield


BROWSER_TESTS = "tests/browser/"  # node ids of the browser tests start so


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: inert when tests run in one process
def pytest_xdist_make_scheduler(config, log):
    """`./run.sh test` runs `-n 2 --dist loadgroup`: the browser tests as one unit of work, the rest test by test.

    One worker drives every browser test in order, with its one Streamlit server and Chromium, while the other
    takes the rest. The browser tests mostly wait on the server and the rest mostly compute, so side by side they
    share the two cores; the unit is the largest, so xdist hands it out first. (xdist's own loadgroup renames node
    ids to group them, which pytest 9 ignores: with it, the browser tests were spread over both workers.)"""
    from xdist.scheduler import LoadGroupScheduling

    class BrowserGroupScheduling(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return BROWSER_TESTS if nodeid.startswith(BROWSER_TESTS) else nodeid

    return BrowserGroupScheduling(config, log) if config.getvalue("dist") == "loadgroup" else None
