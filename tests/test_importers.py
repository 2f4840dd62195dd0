"""Importing a VAE written elsewhere from its state_dict: the converted model computes what the original does.

The two source classes below are typed in as their authors wrote them (pytorch/examples `vae/main.py`, and the
tutorial class with Sequential stacks and fc_mu / fc_logvar heads); each is saved with
`torch.save(model.state_dict(), path)`, opened by Latent Lab, and compared with the original on the same inputs.
"""
from __future__ import annotations

import io
import json

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vae_core.checkpoint import checkpoint_bytes, load_checkpoint
from vae_core.errors import CheckpointError


class ExamplesVAE(nn.Module):
    """pytorch/examples vae/main.py, verbatim apart from the loss and the training loop."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 400)
        self.fc21 = nn.Linear(400, 20)
        self.fc22 = nn.Linear(400, 20)
        self.fc3 = nn.Linear(20, 400)
        self.fc4 = nn.Linear(400, 784)

    def encode(self, x):
        h1 = F.relu(self.fc1(x))
        return self.fc21(h1), self.fc22(h1)

    def decode(self, z):
        h3 = F.relu(self.fc3(z))
        return torch.sigmoid(self.fc4(h3))


class TutorialVAE(nn.Module):
    """The tutorial's class: encoder 128-64, fc_mu and fc_logvar heads, a decoder that ends in a Sigmoid."""

    def __init__(self, input_dim=784, latent_dim=2):
        super().__init__()
        self.encoder = nn.Sequential(nn.Linear(input_dim, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU())
        self.fc_mu = nn.Linear(64, latent_dim)
        self.fc_logvar = nn.Linear(64, latent_dim)
        self.decoder = nn.Sequential(nn.Linear(latent_dim, 64), nn.ReLU(), nn.Linear(64, 128), nn.ReLU(),
                                     nn.Linear(128, input_dim), nn.Sigmoid())

    def encode(self, x):
        h = self.encoder(x)
        return self.fc_mu(h), self.fc_logvar(h)

    def decode(self, z):
        return self.decoder(z)


def saved(module: nn.Module) -> bytes:
    buffer = io.BytesIO()
    torch.save(module.state_dict(), buffer)
    return buffer.getvalue()


@pytest.mark.parametrize("source, latent", [(ExamplesVAE, 20), (TutorialVAE, 2)])
def test_imported_model_computes_what_the_original_does(source, latent):
    torch.manual_seed(0)
    original = source().eval()
    model, meta = load_checkpoint(saved(original))
    assert model.config.input_shape == (1, 28, 28) and model.config.latent_dim == latent
    x = torch.rand(16, 1, 28, 28)
    z = torch.randn(16, latent)
    with torch.no_grad():
        mu, logvar = model.encode(x)
        ref_mu, ref_logvar = original.encode(x.flatten(1))
        torch.testing.assert_close(mu, ref_mu, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(logvar, ref_logvar, atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(model.decode_mean(z).flatten(1), original.decode(z), atol=1e-6, rtol=1e-5)
    assert "state_dict" in meta["about"] and meta["imported"]["assumed"]


def test_examples_layout_is_named_and_its_sides_found():
    _, meta = load_checkpoint(saved(ExamplesVAE()))
    recognised = meta["imported"]
    assert "pytorch/examples" in recognised["layout"]
    assert recognised["encoder"] == ["fc1"] and recognised["decoder"] == ["fc3", "fc4"]
    assert (recognised["mean"], recognised["logvar"]) == ("fc21", "fc22")


def test_an_imported_model_saves_as_a_latent_lab_checkpoint():
    torch.manual_seed(1)
    model, meta = load_checkpoint(saved(TutorialVAE(latent_dim=3)))
    again, meta_again = load_checkpoint(checkpoint_bytes(model, meta))
    for (k, v), (k2, v2) in zip(model.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert meta_again["imported"] == meta["imported"]


def test_a_non_square_input_asks_for_the_image_shape():
    with pytest.raises(CheckpointError, match="not a square greyscale image: give the image shape"):
        load_checkpoint(saved(TutorialVAE(input_dim=300)))


def test_a_decoder_that_does_not_mirror_the_encoder_is_refused_with_both_shapes():
    model = TutorialVAE()
    model.decoder[2] = nn.Linear(64, 100)
    model.decoder[4] = nn.Linear(100, 784)
    with pytest.raises(CheckpointError, match=r"decoder's hidden sizes \(64, 100\) are not the encoder's \(128, 64\)"):
        load_checkpoint(saved(model))


def test_missing_heads_name_what_was_found():
    class NoHeads(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = nn.Linear(784, 10)
            self.b = nn.Linear(10, 784)

    with pytest.raises(CheckpointError, match=r"no mean head found .* layers found: a 10x784, b 784x10"):
        load_checkpoint(saved(NoHeads()))


def test_conv_layers_are_refused_pointing_to_onnx():
    class ConvVAE(TutorialVAE):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(1, 4, 3)

    with pytest.raises(CheckpointError, match="ONNX"):
        load_checkpoint(saved(ConvVAE()))


def test_a_broken_chain_says_which_layer_does_not_fit():
    model = ExamplesVAE()
    model.fc3 = nn.Linear(20, 300)  # fc4 takes 400
    with pytest.raises(CheckpointError, match="decoder's layer fc4 takes 400 inputs but the layer before it gives 300"):
        load_checkpoint(saved(model))


def test_a_given_image_shape_is_used_for_a_non_square_input():
    torch.manual_seed(2)
    original = TutorialVAE(input_dim=300).eval()
    model, _ = load_checkpoint(saved(original), input_shape=(3, 10, 10))
    assert model.config.input_shape == (3, 10, 10)
    x = torch.rand(4, 3, 10, 10)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x)[0], original.encode(x.flatten(1))[0], atol=1e-6, rtol=1e-5)


def test_the_import_command_writes_a_checkpoint_and_refuses_in_one_line(tmp_path):
    from tests.test_cli import cli

    torch.manual_seed(3)
    original = ExamplesVAE().eval()
    (tmp_path / "my_vae.pt").write_bytes(saved(original))
    proc = cli("import", tmp_path / "my_vae.pt", "--out", tmp_path / "ll.pt", "--json")
    result = json.loads(proc.stdout)
    assert result["name"] == "my_vae (imported, z=20)" and "pytorch/examples" in result["imported"]["layout"]
    model, meta = load_checkpoint(tmp_path / "ll.pt")
    assert meta["imported"]["assumed"] and model.config.latent_dim == 20
    z = torch.randn(4, 20)
    with torch.no_grad():
        torch.testing.assert_close(model.decode_mean(z).flatten(1), original.decode(z), atol=1e-6, rtol=1e-5)

    (tmp_path / "rgb.pt").write_bytes(saved(TutorialVAE(input_dim=300)))
    refused = cli("import", tmp_path / "rgb.pt", "--out", tmp_path / "x.pt", check_code=2)
    assert len(refused.stderr.strip().splitlines()) == 1 and "give the image shape" in refused.stderr
    cli("import", tmp_path / "rgb.pt", "--out", tmp_path / "rgb-ll.pt", "--input-shape", 3, 10, 10, "--name", "RGB")
    model, meta = load_checkpoint(tmp_path / "rgb-ll.pt")
    assert model.config.input_shape == (3, 10, 10) and meta["name"] == "RGB"
    again = cli("import", tmp_path / "ll.pt", "--out", tmp_path / "y.pt", check_code=2)
    assert "already a Latent Lab checkpoint" in again.stderr and not (tmp_path / "y.pt").exists()
