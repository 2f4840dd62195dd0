"""Every page opens a WAE and a β-TCVAE (issue 16): checkpoints made by the command line on digits, uploaded in the
Model library and picked in the sidebar, as a student would; the pages say what such a model has (a WAE is a
generator but has no ELBO)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.app.conftest import ROOT, open_app, picker
from vae_core.checkpoint import file_sha256

KINDS = {"wae": ["--model", "wae"], "tcvae": ["--model", "tcvae", "--beta", "6"]}
# Every page that shows the sidebar's model (the Compare page shows its own three: tests/app/test_compare_page.py).
PAGES = ["home", "how_vae_works", "lessons", "train", "library", "latent_map", "interpolate", "decode", "generate",
         "pad", "anomaly", "disentanglement"]
RUN_S = 180  # a page run's hang guard: the anomaly page scores two sets; no speed is asserted


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> dict[str, bytes]:
    """One tiny model of each kind, trained for one epoch by `python -m vae_core train` on the bundled digits."""
    folder = tmp_path_factory.mktemp("new_kinds")
    out = {}
    for kind, args in KINDS.items():
        path = folder / f"{kind}.pt"
        subprocess.run([sys.executable, "-m", "vae_core", "train", "--dataset", "digits", *args, "--latent-dim", "3",
                        "--epochs", "1", "--threads", "1", "--out", str(path)], cwd=ROOT, check=True,
                       capture_output=True, timeout=300)
        out[kind] = path.read_bytes()
    return out


def open_with(checkpoint: bytes):
    """A session that uploaded the checkpoint in the Model library and picked it in the sidebar."""
    at = open_app("app_pages/library.py")
    at.file_uploader(key="checkpoint_upload").upload("model.pt", checkpoint).run()
    key = f"upload/{file_sha256(checkpoint)[:12]}"
    picker(at).set_value(key).run()
    assert not at.exception, [e.value for e in at.exception]
    return at, key


def assert_every_page_opens(at, key: str) -> None:
    """Each page runs on the picked model `key` with no exception and no error box."""
    for page in PAGES:
        at.switch_page(f"app_pages/{page}.py").run(timeout=RUN_S)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert picker(at).value == key, page  # the page shows this model, not the default one
        assert not at.error, (page, [e.value for e in at.error])


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_page_opens_the_model(checkpoints, kind):
    assert_every_page_opens(*open_with(checkpoints[kind]))


def test_a_wae_is_a_generator_without_an_elbo(checkpoints):
    at, _ = open_with(checkpoints["wae"])
    card = [m.value for m in at.markdown if "WAE (λ=100)" in m.value and "reconstruction" in m.value]
    assert card and "MMD" in card[0] and "no ELBO" in card[0], [m.value for m in at.markdown]
    at.switch_page("app_pages/generate.py").run()
    assert not [w for w in at.warning if "not a generator" in w.value]  # the AE's warning is not the WAE's
    at.switch_page("app_pages/anomaly.py").run(timeout=RUN_S)
    assert any("This is a WAE" in c.value for c in at.caption)
