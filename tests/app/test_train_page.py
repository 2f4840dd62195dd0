"""The Train page: defaults render, a digits model trains in the background, Stop keeps what was learnt,
bad data gets a clear message."""
import io
import time

import numpy as np

from tests.app.conftest import open_app, picker


def wait_until(predicate, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


class TestControls:
    def test_defaults_render_and_describe_the_data(self):
        at = open_app("pages/train.py")
        assert at.title[0].value == "Train a model"
        assert any("1,438 training and 359 test images" in c.value for c in at.caption)
        start = [b for b in at.button if b.label == "Start training"][0]
        assert not start.disabled

    def test_beta_slider_only_for_the_beta_vae(self):
        at = open_app("pages/train.py")
        assert not [s for s in at.slider if s.label.startswith("β")]
        model_radio = [r for r in at.radio if r.label == "Model"][0]
        model_radio.set_value("β-VAE").run()
        assert [s for s in at.slider if s.label.startswith("β")]


class TestTraining:
    def test_a_digits_model_trains_and_appears_in_the_picker(self):
        at = open_app("pages/train.py")
        [s for s in at.slider if s.label == "Epochs"][0].set_value(3).run()
        [b for b in at.button if b.label == "Start training"][0].click().run()
        job = at.session_state["job"]
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
        at.switch_page("pages/library.py").run()
        assert any(s.value == "Trained by you" for s in at.subheader)

    def test_stop_keeps_what_was_learnt(self):
        at = open_app("pages/train.py")
        [s for s in at.slider if s.label == "Epochs"][0].set_value(200).run()
        [b for b in at.button if b.label == "Start training"][0].click().run()
        job = at.session_state["job"]
        wait_until(lambda: len(job.snapshot().history) >= 1)
        at.run()
        stop = [b for b in at.button if b.label == "Stop"][0]
        started = time.monotonic()
        stop.click().run()
        assert job.join(5), "the worker did not stop"
        assert time.monotonic() - started < 5
        at.run()
        at.run()
        assert job.state == "cancelled"
        assert any("Stopped" in w.value for w in at.warning)
        assert job.snapshot().checkpoint is not None and job.snapshot().checkpoint.is_file()


class TestBadData:
    def test_a_malformed_npz_gets_a_clear_message(self):
        at = open_app("pages/train.py")
        [s for s in at.selectbox if s.label == "Data"][0].set_value("npz").run()
        buffer = io.BytesIO()
        np.savez(buffer, x=np.full((20, 8, 8), np.nan, dtype=np.float32))
        at.file_uploader[0].upload("bad.npz", buffer.getvalue()).run()
        assert not at.exception
        assert any("NaN" in e.value for e in at.error)
        start = [b for b in at.button if b.label == "Start training"][0]
        assert start.disabled

    def test_a_good_npz_can_be_trained_on(self):
        at = open_app("pages/train.py")
        [s for s in at.selectbox if s.label == "Data"][0].set_value("npz").run()
        rng = np.random.default_rng(0)
        buffer = io.BytesIO()
        np.savez(buffer, x=(rng.random((200, 12, 12)) > 0.6).astype(np.uint8) * 255, y=rng.integers(0, 2, 200))
        at.file_uploader[0].upload("blobs.npz", buffer.getvalue()).run()
        assert any("blobs.npz: 160 training" in c.value for c in at.caption)
