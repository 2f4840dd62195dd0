"""Config dataclasses: validation with clear errors, and a lossless dict round trip."""
import json

import pytest

from vae_core.config import ModelConfig, TrainConfig, model_config_for
from vae_core.errors import ConfigError


class TestRoundTrip:
    def test_model_config_survives_json(self):
        config = ModelConfig(kind="cvae", arch="conv", input_shape=(3, 32, 32), latent_dim=6,
                             conv_channels=(16, 32), num_classes=4, beta=4.0, likelihood="gaussian")
        assert ModelConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config

    def test_train_config_survives_json(self):
        config = TrainConfig(epochs=3, batch_size=32, lr=5e-4, seed=7, kl_warmup_epochs=1.5)
        assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


class TestValidation:
    @pytest.mark.parametrize("settings, words", [
        ({"kind": "gan"}, "model kind"),
        ({"arch": "transformer"}, "arch"),
        ({"latent_dim": 0}, "latent_dim"),
        ({"input_shape": (2, 8, 8)}, "channels"),
        ({"arch": "conv", "input_shape": (1, 28, 28), "conv_channels": (8, 8, 8)}, "divisible by 8"),
        ({"kind": "cvae", "num_classes": 0}, "CVAE"),
        ({"beta": -1.0}, "beta"),
        ({"beta": float("nan")}, "beta"),
    ])
    def test_bad_model_settings_name_the_problem(self, settings, words):
        with pytest.raises(ConfigError, match=words):
            ModelConfig(**settings)

    @pytest.mark.parametrize("settings, words", [
        ({"epochs": 0}, "epochs"), ({"batch_size": 0}, "batch size"), ({"lr": 0.0}, "learning rate"),
        ({"seed": -1}, "seed"), ({"device": "tpu"}, "device"), ({"kl_warmup_epochs": -2}, "warm-up"),
    ])
    def test_bad_train_settings_name_the_problem(self, settings, words):
        with pytest.raises(ConfigError, match=words):
            TrainConfig(**settings)

    def test_unknown_keys_are_refused(self):
        with pytest.raises(ConfigError, match="unknown"):
            ModelConfig.from_dict({"kind": "vae", "layers": 3})


class TestFittedToData:
    def test_conv_depth_follows_image_size(self):
        small = model_config_for((1, 28, 28), 10, arch="conv")
        large = model_config_for((1, 64, 64), 10, arch="conv")
        assert len(large.conv_channels) > len(small.conv_channels)

    def test_classes_only_for_the_cvae(self):
        assert model_config_for((1, 8, 8), 10, kind="vae").num_classes == 0
        assert model_config_for((1, 8, 8), 10, kind="cvae").num_classes == 10
