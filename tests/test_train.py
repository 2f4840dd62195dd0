"""The Trainer: it learns, it is deterministic, it can be cancelled from another thread, it survives divergence."""
import threading

import torch

from vae_core.config import TrainConfig, model_config_for
from vae_core.models import build_model
from vae_core.train import Trainer


def _vae(data, kind="vae", **kw):
    config = model_config_for(data.input_shape, data.num_classes, kind=kind, latent_dim=2, hidden=(64,), **kw)
    return build_model(config, seed=0)


class TestLearning:
    def test_test_elbo_improves_and_events_arrive_in_order(self, digits):
        events = []
        result = Trainer(_vae(digits), digits, TrainConfig(epochs=3, batch_size=64, seed=0)).run([events.append])
        assert result.status == "done"
        kinds = [e.kind for e in events]
        assert kinds[-1] == "done" and kinds.count("epoch") == 3 and "step" in kinds
        elbos = [h["test_elbo"] for h in result.history]
        assert elbos[-1] > elbos[0]
        assert result.samples_seen == 3 * len(digits.train)
        assert all(h["test_recon"] > 0 and h["test_kl"] >= 0 for h in result.history)

    def test_every_kind_trains(self, digits):
        for kind in ("ae", "vae", "cvae"):
            result = Trainer(_vae(digits, kind), digits, TrainConfig(epochs=1, batch_size=128)).run()
            assert result.status == "done", result.message
        assert result.history[-1]["test_kl"] > 0  # the CVAE has a KL term; the AE reports none

    def test_warm_up_starts_from_zero_kl_weight(self, digits):
        events = []
        config = TrainConfig(epochs=2, batch_size=64, kl_warmup_epochs=2, steps_per_event=1)
        Trainer(_vae(digits), digits, config).run([events.append])
        weights = [e.metrics["kl_weight"] for e in events if e.kind == "step"]
        assert weights[0] == 0.0 and weights == sorted(weights) and weights[-1] < 1.0


class TestDeterminism:
    def test_same_seed_same_curve_and_weights(self, digits):
        runs = []
        for _ in range(2):
            model = _vae(digits)
            result = Trainer(model, digits, TrainConfig(epochs=2, batch_size=64, seed=3)).run()
            runs.append((result.history, model.state_dict()))
        (h1, w1), (h2, w2) = runs
        assert [h["train_loss"] for h in h1] == [h["train_loss"] for h in h2]
        assert [h["test_elbo"] for h in h1] == [h["test_elbo"] for h in h2]
        assert all(torch.equal(w1[k], w2[k]) for k in w1)

    def test_other_seed_other_curve(self, digits):
        losses = [Trainer(_vae(digits), digits, TrainConfig(epochs=1, seed=s)).run().history[0]["train_loss"]
                  for s in (1, 2)]
        assert losses[0] != losses[1]


class TestCancellation:
    def test_cancel_from_another_thread_stops_within_one_batch(self, digits):
        cancel = threading.Event()
        steps_after_cancel = []
        first_step = threading.Event()

        def on_event(event):
            if event.kind == "step":
                if cancel.is_set():
                    steps_after_cancel.append(event.step)
                first_step.set()

        model = _vae(digits)
        trainer = Trainer(model, digits, TrainConfig(epochs=1000, batch_size=16, steps_per_event=1))
        box = {}
        worker = threading.Thread(target=lambda: box.setdefault("result", trainer.run([on_event], cancel)))
        worker.start()
        assert first_step.wait(30)
        cancel.set()
        worker.join(timeout=10)
        assert not worker.is_alive()
        assert box["result"].status == "cancelled"
        assert len(steps_after_cancel) <= 1  # at most the batch that was already running
        assert all(torch.isfinite(p).all() for p in model.parameters())


class TestDivergence:
    def test_non_finite_loss_stops_with_a_message_and_finite_weights(self, digits):
        model = _vae(digits, likelihood="gaussian", gaussian_sigma=1e-3)
        events = []
        result = Trainer(model, digits, TrainConfig(epochs=20, lr=10.0, batch_size=32)).run([events.append])
        assert result.status == "failed"
        assert "learning rate" in result.message and "NaN" in result.message
        assert events[-1].kind == "failed"
        assert all(torch.isfinite(p).all() for p in model.parameters())

    def test_an_exception_inside_training_becomes_a_failed_result(self, digits):
        wrong_shape = build_model(model_config_for((1, 4, 4), 10, latent_dim=2), seed=0)
        result = Trainer(wrong_shape, digits, TrainConfig(epochs=1)).run()
        assert result.status == "failed" and "training failed" in result.message
