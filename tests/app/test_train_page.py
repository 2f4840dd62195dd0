"""The Train page: it opens on the bundled MNIST with a quick 2-D VAE, a digits model trains in the background,
Stop keeps what was learnt, bad data gets a clear message."""
import io
import time

import numpy as np

from tests.app.conftest import open_app, picker


HANG_GUARD_S = 120  # join/wait limits: only there so that a hang fails the test; no speed is required here


def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def choose_data(at, source: str) -> None:
    [s for s in at.selectbox if s.label == "Data"][0].set_value(source).run()


def widget(widgets, label: str):
    return [w for w in widgets if w.label == label][0]


class TestControls:
    def test_opens_on_the_bundled_mnist_with_a_quick_2d_vae(self):
        from app_pages.train import DATA_DEFAULTS

        at = open_app("app_pages/train.py")
        assert at.title[0].value == "Train a model"
        assert widget(at.selectbox, "Data").value == "mnist"
        label = widget(at.selectbox, "Data").options[0]
        assert label.startswith("MNIST") and "bundled" in label and "network" not in label  # offline, and says so
        caption = [c.value for c in at.caption if "training and" in c.value]
        assert caption and "60,000 training and 10,000 test images of 1×28×28" in caption[0], caption
        assert "copy used: bundled" in caption[0]  # the page says which MNIST copy it loaded
        quick = DATA_DEFAULTS["mnist"]
        assert widget(at.radio, "Model").value == "VAE" and widget(at.radio, "Network").value == "mlp"
        assert widget(at.slider, "Latent dimensions").value == 2  # the map is the latent plane itself
        assert widget(at.selectbox, "Hidden layers (MLP)").value == quick["hidden"]
        assert widget(at.slider, "Epochs").value == quick["epochs"]
        assert widget(at.select_slider, "Batch size").value == quick["batch_size"] == 128
        assert widget(at.select_slider, "Learning rate").value == quick["lr"]
        start = [b for b in at.button if b.label == "Start training"][0]
        assert not start.disabled

    def test_digits_keep_their_own_first_settings(self):
        at = open_app("app_pages/train.py")
        choose_data(at, "digits")
        assert any("1,438 training and 359 test images" in c.value for c in at.caption)
        assert not any("copy used" in c.value for c in at.caption)
        assert widget(at.slider, "Epochs").value == 30
        assert widget(at.select_slider, "Batch size").value == 64
        assert widget(at.selectbox, "Hidden layers (MLP)").value == "256, 128"

    def test_beta_slider_only_for_the_beta_vae(self):
        at = open_app("app_pages/train.py")
        assert not [s for s in at.slider if s.label.startswith("β")]
        model_radio = [r for r in at.radio if r.label == "Model"][0]
        model_radio.set_value("β-VAE").run()
        assert [s for s in at.slider if s.label.startswith("β")]

    def test_the_wae_gets_a_lambda_and_the_tcvae_a_beta_each_explained(self):
        from app_pages.train import KIND_NOTES

        at = open_app("app_pages/train.py")
        model_radio = widget(at.radio, "Model")
        assert {"WAE", "β-TCVAE"} <= set(model_radio.options)
        assert not [s for s in at.select_slider if s.label.startswith("λ")]
        model_radio.set_value("WAE").run()
        assert widget(at.select_slider, "λ (MMD weight)").value == 100.0  # vae_core's measured default
        assert not [s for s in at.slider if s.label.startswith("β")]
        assert any(c.value == KIND_NOTES["WAE"] for c in at.caption)
        widget(at.radio, "Model").set_value("β-TCVAE").run()
        assert widget(at.slider, "β (total-correlation weight)").value == 6.0
        assert not [s for s in at.select_slider if s.label.startswith("λ")]
        assert any(c.value == KIND_NOTES["β-TCVAE"] for c in at.caption)


def chart_traces(at, key: str) -> tuple[list[str], dict]:
    """(trace names, layout) of the page's Plotly chart with this key."""
    import json

    [chart] = [c for c in at.get("plotly_chart") if c.proto.id.endswith(key) or key in c.proto.id]
    spec = json.loads(chart.proto.spec)
    return [t.get("name") for t in spec["data"]], spec["layout"]


class TestNewKinds:
    """The WAE shows reconstruction and MMD (no ELBO, and says why); the β-TCVAE its KL's three parts."""

    def _train(self, kind: str, epochs: int = 2):
        at = open_app("app_pages/train.py")
        choose_data(at, "digits")
        widget(at.radio, "Model").set_value(kind).run()
        widget(at.slider, "Epochs").set_value(epochs).run()
        [b for b in at.button if b.label == "Start training"][0].click().run()
        job = at.session_state["training_run"].job
        assert job.join(HANG_GUARD_S), "training did not finish"
        at.run()
        at.run()
        assert not at.exception, [e.value for e in at.exception]
        assert job.state == "done"
        return at, job

    def test_a_wae_shows_reconstruction_and_mmd_and_no_elbo(self):
        at, job = self._train("WAE")
        assert job.model_config.kind == "wae" and job.model_config.mmd_weight == 100.0
        labels = [m.label for m in at.metric]
        assert "Reconstruction" in labels and "MMD to the prior" in labels
        assert "Test ELBO" not in labels and "KL" not in labels
        assert any("no ELBO" in c.value for c in at.caption)
        names, layout = chart_traces(at, "loss_chart")
        assert "train reconstruction" in names and not any("KL" in n or "ELBO" in n for n in names)
        names, layout = chart_traces(at, "terms_chart")
        assert names == ["train MMD", "test MMD"]
        assert layout["xaxis"]["title"]["text"] == "epoch" and "MMD" in layout["yaxis"]["title"]["text"]

    def test_a_tcvae_shows_the_three_parts_of_its_kl_live(self):
        at, job = self._train("β-TCVAE", epochs=1)
        assert (job.model_config.kind, job.model_config.beta) == ("tcvae", 6.0)
        steps = job.snapshot().steps
        assert steps and all({"mi", "tc", "dwkl"} <= set(s) for s in steps)
        names, layout = chart_traces(at, "terms_chart")
        for part in ("mutual information", "total correlation", "dimension-wise KL"):
            assert f"train {part}" in names and f"test {part}" in names
        assert layout["xaxis"]["title"]["text"] == "epoch" and "nats" in layout["yaxis"]["title"]["text"]
        assert any("log N" in c.value for c in at.caption)  # read the change, not the distance to zero
        assert "Total correlation" in [m.label for m in at.metric]


class TestTraining:
    def test_a_digits_model_trains_and_appears_in_the_picker(self):
        at = open_app("app_pages/train.py")
        choose_data(at, "digits")
        [s for s in at.slider if s.label == "Epochs"][0].set_value(3).run()
        [b for b in at.button if b.label == "Start training"][0].click().run()
        job = at.session_state["training_run"].job
        assert job.join(120), "training did not finish"
        at.run()  # the poll that sees the finished job redraws the whole app
        at.run()
        assert not at.exception
        assert job.state == "done"
        assert any("Finished" in s.value for s in at.success)
        assert picker(at).value.startswith("mine/")
        assert "trained by you" in picker(at).options[picker(at).index]
        assert len(job.snapshot().history) == 3
        assert job.snapshot().checkpoint.is_file()
        # The other pages see the new model.
        at.switch_page("app_pages/library.py").run()
        assert any(s.value == "Trained by you" for s in at.subheader)

    def test_stop_keeps_what_was_learnt(self):
        at = open_app("app_pages/train.py")
        # A run that cannot end by itself before Stop is pressed, by its size rather than the machine's speed:
        # shapes (16,000 training images) at batch 16 for 200 epochs is 200,000 optimisation steps of ~150
        # PyTorch operators each, >= 1 us apiece on any machine: >= 30 s, against the one page run (about a
        # second) between the first finished epoch and the click. One epoch takes seconds on a slow machine.
        [s for s in at.selectbox if s.label == "Data"][0].set_value("shapes").run()
        [s for s in at.select_slider if s.label == "Batch size"][0].set_value(16).run()
        [s for s in at.slider if s.label == "Epochs"][0].set_value(200).run()
        [b for b in at.button if b.label == "Start training"][0].click().run()
        job = at.session_state["training_run"].job
        assert (job.train_config.epochs, job.train_config.batch_size, len(job.data.train)) == (200, 16, 16_000)
        wait_until(lambda: len(job.snapshot().history) >= 1, timeout=HANG_GUARD_S)
        at.run()
        stop = [b for b in at.button if b.label == "Stop"][0]
        stop.click().run()
        # Stop acts at once as behaviour, not as a time: the run ends cancelled mid-way (it could not have ended
        # on its own), keeping the epochs it finished. (The Trainer's one-mini-batch bound: tests/test_train.py.)
        assert job.join(HANG_GUARD_S), "the worker did not stop"
        at.run()
        at.run()
        assert job.state == "cancelled"
        assert 1 <= len(job.snapshot().history) < 200
        assert any("Stopped" in w.value for w in at.warning)
        assert job.snapshot().checkpoint is not None and job.snapshot().checkpoint.is_file()


class TestBadData:
    def test_a_malformed_npz_gets_a_clear_message(self):
        at = open_app("app_pages/train.py")
        [s for s in at.selectbox if s.label == "Data"][0].set_value("npz").run()
        buffer = io.BytesIO()
        np.savez(buffer, x=np.full((20, 8, 8), np.nan, dtype=np.float32))
        at.file_uploader[0].upload("bad.npz", buffer.getvalue()).run()
        assert not at.exception
        assert any("NaN" in e.value for e in at.error)
        start = [b for b in at.button if b.label == "Start training"][0]
        assert start.disabled

    def test_a_good_npz_can_be_trained_on(self):
        at = open_app("app_pages/train.py")
        [s for s in at.selectbox if s.label == "Data"][0].set_value("npz").run()
        rng = np.random.default_rng(0)
        buffer = io.BytesIO()
        np.savez(buffer, x=(rng.random((200, 12, 12)) > 0.6).astype(np.uint8) * 255, y=rng.integers(0, 2, 200))
        at.file_uploader[0].upload("blobs.npz", buffer.getvalue()).run()
        assert any("blobs.npz: 160 training" in c.value for c in at.caption)
