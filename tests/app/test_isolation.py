"""Two students at once: one's trained and uploaded models, job and state are invisible to the other;
kept mode brings a student's models back after a restart; the zoo is read-only."""

from streamlit.testing.v1 import AppTest

from tests.app.conftest import open_app, picker
from vae_core.checkpoint import checkpoint_bytes
from vae_core.config import model_config_for
from vae_core.models import build_model


def _train_quickly(at: AppTest):
    at.switch_page("app_pages/train.py").run()
    [s for s in at.slider if s.label == "Epochs"][0].set_value(1).run()
    [b for b in at.button if b.label == "Start training"][0].click().run()
    job = at.session_state["training_run"].job
    assert job.join(120)
    at.run()
    at.run()
    return job


def _upload(at: AppTest):
    at.switch_page("app_pages/library.py").run()
    model = build_model(model_config_for((1, 8, 8), 10, latent_dim=3), seed=1)
    at.file_uploader(key="checkpoint_upload").upload("secret.pt", checkpoint_bytes(model, {"name": "Alice's upload"})).run()


class TestTwoSessions:
    def test_models_and_jobs_do_not_leak(self):
        alice, bob = open_app(), open_app()
        job = _train_quickly(alice)
        _upload(alice)
        alice_options = picker(alice).options
        assert any("trained by you" in o for o in alice_options)
        assert any(o.startswith("Alice's upload") for o in alice_options)
        bob.run()
        bob.switch_page("app_pages/library.py").run()
        assert not any("trained by you" in o or "uploaded" in o for o in picker(bob).options)
        assert not any(s.value in ("Trained by you", "Uploaded by you") for s in bob.subheader)
        assert "training_run" not in bob.session_state and "uploads" not in bob.session_state
        assert alice.session_state["session_id"] != bob.session_state["session_id"]
        assert job.snapshot().checkpoint.parent.name == alice.session_state["session_id"]


class TestKeptMode:
    def test_a_locker_code_reopens_models_after_a_restart(self, monkeypatch):
        monkeypatch.setenv("LATENT_LAB_KEEP_MODELS", "1")
        alice = open_app()
        _train_quickly(alice)
        code = alice.session_state["locker"]
        # A new server process knows nothing of Alice's session: a fresh AppTest is a fresh session.
        later = open_app()
        assert not any("trained by you" in o for o in picker(later).options)
        later.sidebar.text_input(key="locker_input").set_value(code).run()
        later.run()
        assert any("trained by you" in o for o in picker(later).options)

    def test_a_wrong_code_is_explained(self, monkeypatch):
        monkeypatch.setenv("LATENT_LAB_KEEP_MODELS", "1")
        at = open_app()
        at.sidebar.text_input(key="locker_input").set_value("zzzz-2222").run()
        assert any("No models are kept under zzzz-2222" in e.value for e in at.sidebar.error)
        at.sidebar.text_input(key="locker_input").set_value("not a code").run()
        assert any("looks like" in e.value for e in at.sidebar.error)


class TestZooIsReadOnly:
    def test_zoo_models_cannot_be_deleted_from_the_library(self):
        at = open_app("app_pages/library.py")
        assert not [b for b in at.button if (b.key or "").startswith("del-zoo/")]
