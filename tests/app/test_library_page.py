"""The Model library page: cards for every model, safe uploads, deleting one's own models."""
import os

import torch

from tests.app.conftest import open_app, picker
from vae_core.checkpoint import checkpoint_bytes
from vae_core.config import model_config_for
from vae_core.models import build_model


class _RunsCode:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _upload(at, name: str, data: bytes):
    at.file_uploader(key="checkpoint_upload").upload(name, data).run()
    assert not at.exception


class TestCards:
    def test_every_zoo_model_has_a_card(self):
        at = open_app("app_pages/library.py")
        titles = [m.value for m in at.markdown if m.value.startswith("**")]
        assert any("Digits VAE (2-D latent)" in t for t in titles)
        assert any("MNIST VAE (2-D latent)" in t for t in titles)
        assert len(at.get("image")) >= len(titles)  # a strip of samples on every card

    def test_use_selects_the_model(self):
        at = open_app("app_pages/library.py")
        at.button(key="use-zoo/digits-ae-2d").click().run()
        assert picker(at).value == "zoo/digits-ae-2d"


class TestUploads:
    def test_a_valid_checkpoint_is_added_and_can_be_deleted(self):
        at = open_app("app_pages/library.py")
        model = build_model(model_config_for((1, 8, 8), 10, latent_dim=3), seed=0)
        _upload(at, "mine.pt", checkpoint_bytes(model, {"name": "My upload", "dataset": "digits"}))
        assert any("Loaded **My upload**" in s.value for s in at.success)
        assert any(o.startswith("My upload · uploaded") for o in picker(at).options)
        uploads = at.session_state["uploads"]
        assert len(uploads) == 1
        (upload_key,) = uploads
        at.file_uploader(key="checkpoint_upload").clear().run()
        at.button(key=f"del-{upload_key}").click().run()
        assert len(at.session_state["uploads"]) == 0

    def test_a_hostile_pickle_is_refused_and_nothing_runs(self, tmp_path):
        marker = tmp_path / "pwned"
        payload = {"format": "latent-lab", "format_version": 1, "meta": _RunsCode(marker)}
        path = tmp_path / "evil.pt"
        torch.save(payload, path)
        at = open_app("app_pages/library.py")
        _upload(at, "evil.pt", path.read_bytes())
        assert any("refused" in e.value for e in at.error)
        assert not marker.exists()

    def test_random_bytes_are_refused(self):
        at = open_app("app_pages/library.py")
        _upload(at, "junk.pt", os.urandom(2048))
        assert any("junk.pt was refused" in e.value for e in at.error)


class TestImportedModels:
    """A state_dict saved by someone's own training script (`torch.save(model.state_dict(), path)`), uploaded as is."""

    def test_the_examples_vae_opens_and_its_card_says_where_it_came_from(self):
        from tests.test_importers import ExamplesVAE, saved

        torch.manual_seed(0)
        at = open_app("app_pages/library.py")
        _upload(at, "my_vae.pt", saved(ExamplesVAE()))
        assert any("Loaded **my" in s.value and "vae (imported, z=20)**" in s.value for s in at.success)
        (key,) = at.session_state["uploads"]
        entry, model = at.session_state["uploads"][key]
        assert model.config.input_shape == (1, 28, 28) and model.config.latent_dim == 20
        notes = [m.value for m in at.markdown if "**Imported**" in m.value]
        assert len(notes) == 1 and "pytorch/examples" in notes[0] and "fc21" in notes[0]
        assert "**Assumed**" in notes[0] and "Bernoulli" in notes[0] and "Nothing in the file was run" in notes[0]
        assert any("Imported from a PyTorch state_dict" in c.value for c in at.caption)
        at.button(key=f"use-{key}").click().run()
        assert picker(at).value == key and not at.exception

    def test_a_non_square_input_asks_for_the_shape_and_a_retry_with_it_opens(self):
        from tests.test_importers import TutorialVAE, saved

        at = open_app("app_pages/library.py")
        _upload(at, "rgb.pt", saved(TutorialVAE(input_dim=300, latent_dim=3)))
        (error,) = [e.value for e in at.error]
        assert "rgb.pt was refused" in error and "give the image shape" in error and "Image shape (C, H, W)" in error
        at.text_input(key="import_shape").input("3, ten, 10").run()
        assert any("is not an image shape" in e.value for e in at.error)
        at.text_input(key="import_shape").input("(3, 10, 10)").run()
        assert not at.exception and not at.error
        (entry, model), = at.session_state["uploads"].values()
        assert model.config.input_shape == (3, 10, 10) and model.config.latent_dim == 3
        assert any("images 3×10×10" in m.value for m in at.markdown if "**Imported**" in m.value)
