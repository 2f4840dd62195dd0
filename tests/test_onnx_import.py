"""Importing a VAE from any framework as an ONNX encoder and decoder pair (vae_core.onnx_import), and the ELBO
Latent Lab reports for imported models against the one their authors' own loss computes.

The two source classes are pytorch/examples' `vae/main.py` and the tutorial class (tests/test_importers.py types
them in as their authors wrote them; the forward pass, the reparameterisation and the loss below are theirs too).
Each is trained briefly on real digits (the bundled MNIST), exported with the three lines the README gives, and
opened by Latent Lab; the converted model computes what the original does, and `python -m vae_core evaluate`
reports the ELBO their own `loss_function` gives on the same test images, within 1 nat.
"""
from __future__ import annotations

import io
import json
import warnings

import numpy as np
import onnx
import pytest
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper
from torch import nn

from tests.test_cli import cli
from tests.test_importers import ExamplesVAE, TutorialVAE, saved
from vae_core.checkpoint import checkpoint_bytes, load_checkpoint, model_from_payload
from vae_core.data import load_data
from vae_core.errors import CheckpointError
from vae_core.onnx_import import OnnxModel, onnx_model, onnx_payload

TRAIN_IMAGES, EPOCHS = 6000, 2  # enough for a model whose ELBO is far from the untrained one's (~540 nats)


class ExamplesVAEWithLoss(ExamplesVAE):
    """pytorch/examples vae/main.py's reparameterize and forward, verbatim."""

    def reparameterize(self, mu, logvar):
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def forward(self, x):
        mu, logvar = self.encode(x.view(-1, 784))
        z = self.reparameterize(mu, logvar)
        return self.decode(z), mu, logvar


class TutorialVAEWithLoss(TutorialVAE):
    reparameterize = ExamplesVAEWithLoss.reparameterize
    forward = ExamplesVAEWithLoss.forward


def loss_function(recon_x, x, mu, logvar):
    """pytorch/examples vae/main.py: reconstruction + KL divergence losses summed over all elements and batch."""
    BCE = F.binary_cross_entropy(recon_x, x.view(-1, 784), reduction='sum')
    # see Appendix B from VAE paper: Kingma and Welling. Auto-Encoding Variational Bayes. ICLR, 2014
    KLD = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    return BCE + KLD


@pytest.fixture(scope="module")
def mnist():
    return load_data("mnist", seed=0)


def trained(cls, mnist, **kwargs) -> nn.Module:
    """A model trained as pytorch/examples trains it (Adam 1e-3, batches of 128), briefly, on real digits."""
    torch.manual_seed(0)
    model = cls(**kwargs)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = mnist.train.x[:TRAIN_IMAGES]
    for _ in range(EPOCHS):
        for batch in x[torch.randperm(len(x))].split(128):
            optimizer.zero_grad()
            recon, mu, logvar = model(batch)
            loss_function(recon, batch, mu, logvar).backward()
            optimizer.step()
    return model.eval()


@pytest.fixture(scope="module")
def models(mnist) -> dict[str, nn.Module]:
    return {"examples": trained(ExamplesVAEWithLoss, mnist), "tutorial": trained(TutorialVAEWithLoss, mnist)}


def export_pair(model: nn.Module, latent_dim: int, *, dynamic: bool = True, image: tuple = (784,)
                ) -> tuple[bytes, bytes]:
    """The README's export lines: the model's forward set to encode, then to decode, exported each time."""
    encoder, decoder = io.BytesIO(), io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        model.forward = model.encode
        torch.onnx.export(model, torch.zeros(1, *image), encoder, input_names=["x"], output_names=["mu", "logvar"],
                          dynamic_axes={"x": {0: "batch"}} if dynamic else None, dynamo=False)
        model.forward = model.decode
        torch.onnx.export(model, torch.zeros(1, latent_dim), decoder, input_names=["z"],
                          dynamic_axes={"z": {0: "batch"}} if dynamic else None, dynamo=False)
    del model.forward  # the class's forward again
    return encoder.getvalue(), decoder.getvalue()


LATENT = {"examples": 20, "tutorial": 2}


@pytest.mark.parametrize("source", list(LATENT))
def test_an_onnx_pair_computes_what_the_original_does(models, mnist, source):
    original = models[source]
    model, meta = model_from_payload(onnx_payload(*export_pair(original, LATENT[source]),
                                                  file_names=("enc.onnx", "dec.onnx")))
    assert isinstance(model, OnnxModel) and model.config.kind == "vae" and model.config.arch == "onnx"
    assert model.config.input_shape == (1, 28, 28) and model.config.latent_dim == LATENT[source]
    x, z = mnist.test.x[:300], torch.randn(300, LATENT[source])
    with torch.no_grad():
        mu, logvar = model.encode(x)
        ref_mu, ref_logvar = original.encode(x.flatten(1))
        torch.testing.assert_close(mu, ref_mu, atol=1e-5, rtol=0)
        torch.testing.assert_close(logvar, ref_logvar, atol=1e-5, rtol=0)
        torch.testing.assert_close(model.decode_mean(z).flatten(1), original.decode(z), atol=1e-5, rtol=0)
        # The logits given to the likelihood are those of the probabilities: sigmoid(decode) is decode_mean.
        torch.testing.assert_close(torch.sigmoid(model.decode(z)), model.decode_mean(z), atol=1e-5, rtol=0)
    imported = meta["imported"]
    assert imported["importer"] == "onnx" and imported["files"] == ["enc.onnx", "dec.onnx"]
    assert (imported["mean"], imported["logvar"], imported["decoder_output"]) == ("mu", "logvar", "probabilities")
    assert "ends in a Sigmoid" in imported["assumed"] and "enc.onnx, dec.onnx" in meta["about"]  # the card shows both


def test_a_pair_saved_as_a_checkpoint_loads_back_the_same_model(models, mnist):
    model, meta = model_from_payload(onnx_payload(*export_pair(models["tutorial"], 2)))
    again, meta_again = load_checkpoint(checkpoint_bytes(model, meta))  # torch.load(weights_only=True) inside
    assert isinstance(again, OnnxModel) and again.config == model.config and meta_again == meta
    x = mnist.test.x[:50]
    torch.testing.assert_close(again.encode(x)[0], model.encode(x)[0], atol=0, rtol=0)


@pytest.mark.parametrize("source, how", [("examples", "onnx"), ("examples", "state_dict"), ("tutorial", "onnx"),
                                         ("tutorial", "state_dict")])
def test_evaluate_reports_the_elbo_their_own_loss_computes(models, mnist, tmp_path, source, how):
    original = models[source]
    if how == "onnx":
        encoder, decoder = export_pair(original, LATENT[source])
        (tmp_path / "encoder.onnx").write_bytes(encoder)
        (tmp_path / "decoder.onnx").write_bytes(decoder)
        args = ["--encoder", tmp_path / "encoder.onnx", "--decoder", tmp_path / "decoder.onnx"]
    else:
        (tmp_path / "vae.pt").write_bytes(saved(original))
        args = [tmp_path / "vae.pt"]
    imported = json.loads(cli("import", *args, "--out", tmp_path / "ll.pt", "--json").stdout)
    assert imported["model_config"]["latent_dim"] == LATENT[source]
    info = json.loads(cli("info", "--checkpoint", tmp_path / "ll.pt", "--json").stdout)
    assert info["model_config"]["arch"] == ("onnx" if how == "onnx" else "mlp")
    assert info["imported"]["files"] == (["encoder.onnx", "decoder.onnx"] if how == "onnx" else ["vae.pt"])
    assert info["data_spec"]["source"] == "mnist" and "assumed" in info["dataset"]  # the bundled set of 1x28x28
    report = json.loads(cli("evaluate", "--checkpoint", tmp_path / "ll.pt", "--json").stdout)
    x = mnist.test.x
    torch.manual_seed(0)
    with torch.no_grad():
        theirs = -float(sum(loss_function(recon, b, mu, logvar) for b in x.split(1000)
                            for recon, mu, logvar in [original(b)])) / len(x)
    assert report["n_test"] == len(x)
    assert abs(report["elbo"] - theirs) < 1.0, (report["elbo"], theirs)
    assert theirs > -250  # trained: an untrained model's ELBO is about -540 nats


def test_a_fixed_batch_export_runs_in_chunks_of_its_batch(models, mnist):
    """Exported without dynamic_axes, the graphs take exactly one image: Latent Lab runs them one at a time."""
    original = models["tutorial"]
    model = onnx_model(*export_pair(original, 2, dynamic=False))
    assert model.spec.encoder_input.batch == 1
    x = mnist.test.x[:7]
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x)[1], original.encode(x.flatten(1))[1], atol=1e-5, rtol=0)


# -- other layouts: a convolutional pair with image inputs, logits and an autoencoder's single code ---------------
class ConvEncoder(nn.Module):
    def __init__(self, latent=3, heads=2):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(1, 4, 4, 2, 1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 14 * 14, 2 * latent))
        self.heads, self.latent = heads, latent

    def forward(self, x):
        h = self.body(x)
        return (h[:, :self.latent], h[:, self.latent:]) if self.heads == 2 else h[:, :self.latent]


class ConvDecoder(nn.Module):
    def __init__(self, latent=3, channels_last=False):
        super().__init__()
        self.fc, self.up = nn.Linear(latent, 4 * 14 * 14), nn.ConvTranspose2d(4, 1, 4, 2, 1)
        self.channels_last = channels_last

    def forward(self, z):
        logits = self.up(F.relu(self.fc(z)).view(-1, 4, 14, 14))
        return logits.permute(0, 2, 3, 1) if self.channels_last else logits


def onnx_bytes(module: nn.Module, example: torch.Tensor, outputs: list[str] | None = None) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(module.eval(), example, buffer, input_names=["input"], output_names=outputs,
                          dynamic_axes={"input": {0: "n"}}, dynamo=False)
    return buffer.getvalue()


def test_a_convolutional_pair_with_image_layouts_and_logits():
    torch.manual_seed(4)
    encoder, decoder = ConvEncoder(), ConvDecoder(channels_last=True)  # the decoder gives (N, 28, 28, 1)
    model = onnx_model(onnx_bytes(encoder, torch.zeros(1, 1, 28, 28), ["m", "lv"]),
                       onnx_bytes(decoder, torch.zeros(1, 3)))
    assert model.spec.encoder_layout.kind == "chw" and model.spec.decoder_layout.kind == "hwc"
    assert not model.spec.probabilities and "gives logits" in model.spec.assumed
    x, z = torch.rand(5, 1, 28, 28), torch.randn(5, 3)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x)[0], encoder(x)[0], atol=1e-5, rtol=0)
        torch.testing.assert_close(model.decode(z), decoder(z).permute(0, 3, 1, 2), atol=1e-5, rtol=0)
    with pytest.raises(CheckpointError, match="goes outside \\[0, 1\\].*you chose probabilities.*'logits'"):
        onnx_model(onnx_bytes(encoder, torch.zeros(1, 1, 28, 28), ["m", "lv"]), onnx_bytes(decoder, torch.zeros(1, 3)),
                   decoder_output="probabilities")


def test_an_encoder_with_one_output_is_an_autoencoder():
    model = onnx_model(onnx_bytes(ConvEncoder(heads=1), torch.zeros(1, 1, 28, 28), ["code"]),
                       onnx_bytes(ConvDecoder(), torch.zeros(1, 3)))
    assert model.config.kind == "ae" and not model.config.is_variational
    mu, logvar = model.encode(torch.rand(2, 1, 28, 28))
    assert mu.shape == (2, 3) and logvar is None


def test_outputs_named_logvar_first_are_put_in_their_place(models):
    encoder, decoder = export_pair(models["tutorial"], 2)
    graph = onnx.load_model_from_string(encoder)
    for value in [*graph.graph.output, *graph.graph.node]:  # rename mu -> logvar and logvar -> mu, reorder
        if isinstance(value, onnx.NodeProto):
            value.output[:] = [{"mu": "log_var", "logvar": "mean"}.get(o, o) for o in value.output]
        else:
            value.name = {"mu": "log_var", "logvar": "mean"}[value.name]
    model = onnx_model(graph.SerializeToString(), decoder)
    assert (model.spec.mean, model.spec.logvar) == ("mean", "log_var")


# -- refused files ------------------------------------------------------------------------------------------------
def graph(inputs: list[tuple[str, list]], outputs: list[tuple[str, list]], nodes: list, initializers=()) -> bytes:
    """A hand-made ONNX model (opset 17) from (name, dims) inputs and outputs."""
    value = lambda name, dims: helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)  # noqa: E731
    g = helper.make_graph(nodes, "g", [value(*i) for i in inputs], [value(*o) for o in outputs],
                          initializer=list(initializers))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


def mlp_decoder(latent=2, out=784) -> bytes:
    return onnx_bytes(nn.Sequential(nn.Linear(latent, out), nn.Sigmoid()), torch.zeros(1, latent))


@pytest.fixture(scope="module")
def pair(models) -> tuple[bytes, bytes]:
    return export_pair(models["tutorial"], 2)


def test_a_truncated_file_is_refused(pair):
    with pytest.raises(CheckpointError, match="the encoder file is not an ONNX model .*export it with torch.onnx"):
        onnx_model(pair[0][: len(pair[0]) // 2], pair[1])


@pytest.mark.parametrize("content, message", [
    (b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4, "the decoder file is not an ONNX model"),
    ("Hello, I am a README renamed .onnx\n".encode() * 20, "the decoder file is not an ONNX model"),
    (None, "the decoder file is a zip archive, not ONNX: a PyTorch .pt file is uploaded as a checkpoint"),
])
def test_a_file_that_is_not_onnx_is_refused(pair, content, message):
    content = saved(TutorialVAE()) if content is None else content
    with pytest.raises(CheckpointError, match=message):
        onnx_model(pair[0], content)


def test_a_decoder_of_the_wrong_shape_names_what_it_found(pair):
    conv = graph([("x", ["N", 3, 64, 64])], [("y", ["N", 3, 64, 64])], [helper.make_node("Relu", ["x"], ["y"])])
    with pytest.raises(CheckpointError, match=r"the decoder has 1 input 'x' of shape \[N, 3, 64, 64\], 1 output 'y' of"
                                              r" shape \[N, 3, 64, 64\]; a decoder must take one input of shape \[N, 2\]"):
        onnx_model(pair[0], conv)
    with pytest.raises(CheckpointError, match=r"the decoder gives '.*' of shape \[N, 100\] but the encoder takes images of \(1, 28, 28\)"):
        onnx_model(pair[0], mlp_decoder(out=100))


def test_an_encoder_without_an_image_input_names_what_it_found(pair):
    odd = graph([("x", ["N", 5, 7, 9])], [("mu", ["N", 5, 7, 9])], [helper.make_node("Relu", ["x"], ["mu"])])
    with pytest.raises(CheckpointError, match=r"the encoder's input 'x' of shape \[N, 5, 7, 9\] is not an image"):
        onnx_model(odd, pair[1])


def test_huge_declared_dimensions_are_refused_before_anything_runs(pair):
    huge = graph([("x", ["N", 1, 100_000, 100_000])], [("mu", ["N", 2]), ("lv", ["N", 2])],
                 [helper.make_node("ReduceMean", ["x"], ["r"], axes=[2, 3], keepdims=0),
                  helper.make_node("Tile", ["r", "reps"], ["mu"]), helper.make_node("Identity", ["mu"], ["lv"])],
                 [helper.make_tensor("reps", TensorProto.INT64, [2], [1, 2])])
    with pytest.raises(CheckpointError, match="operators Latent Lab does not run: Tile"):
        onnx_model(huge, pair[1])
    square = graph([("x", ["N", 1, 100_000, 100_000])], [("mu", ["N", 1])],
                   [helper.make_node("ReduceMean", ["x"], ["mu"], axes=[2, 3], keepdims=0)])
    with pytest.raises(CheckpointError, match=r"the encoder holds 10,000,000,001 values per image on its way through, over the limit"):
        onnx_model(square, mlp_decoder(latent=1, out=100))


def test_a_swapped_pair_is_named_as_swapped(pair):
    with pytest.raises(CheckpointError, match="the files look swapped"):
        onnx_model(pair[1], pair[0])


def test_weights_kept_in_another_file_are_refused(pair):
    model = onnx.load_model_from_string(pair[1])
    weight = model.graph.initializer[0]
    weight.data_location = TensorProto.EXTERNAL
    weight.ClearField("raw_data")
    weight.external_data.add(key="location", value="/etc/passwd")
    with pytest.raises(CheckpointError, match="keeps its weights in other files"):
        onnx_model(pair[0], model.SerializeToString())


def test_an_edited_checkpoint_whose_config_disagrees_with_its_graphs_is_refused(pair):
    payload = onnx_payload(*pair)
    payload["model_config"]["latent_dim"] = 3
    with pytest.raises(CheckpointError, match="config says .* z=3 .* edited or is damaged"):
        model_from_payload(payload)
    payload = onnx_payload(*pair)
    del payload["onnx"]["decoder"]
    with pytest.raises(CheckpointError, match="encoder and decoder files are missing"):
        model_from_payload(payload)


def test_the_import_command_refuses_in_one_line(pair, tmp_path):
    (tmp_path / "e.onnx").write_bytes(pair[0])
    (tmp_path / "d.onnx").write_bytes(b"not onnx at all" * 10)
    refused = cli("import", "--encoder", tmp_path / "e.onnx", "--decoder", tmp_path / "d.onnx", "--out",
                  tmp_path / "x.pt", check_code=2)
    assert len(refused.stderr.strip().splitlines()) == 1 and "the decoder file is not an ONNX model" in refused.stderr
    half = cli("import", "--encoder", tmp_path / "e.onnx", "--out", tmp_path / "x.pt", check_code=2)
    assert "both --encoder E.onnx and --decoder D.onnx" in half.stderr and not (tmp_path / "x.pt").exists()


@pytest.mark.parametrize("source", list(LATENT))
def test_a_plain_mlp_decoder_graph_becomes_the_browsers_decoder(models, source):
    """Gemm and Relu, ending in a Sigmoid: the same layers as Latent Lab's own MLP decoder, so the latent pad decodes
    it in the page; the export's reference decode (what decoder.js computes) equals ONNX Runtime's output."""
    from vae_core.export import export_decoder, reference_decode

    model = onnx_model(*export_pair(models[source], LATENT[source]))
    exported = export_decoder(model)
    assert exported.kinds[-2:] == ["unflatten", "sigmoid"] and exported.output_shape == (1, 28, 28)
    z = torch.randn(50, LATENT[source]) * 1.5
    np.testing.assert_allclose(reference_decode(exported, z.numpy()), model.decode_mean(z).numpy(), atol=1e-5)


def test_other_graphs_are_decoded_on_the_server_with_the_reason():
    """The pages then decode on the server and say why (ui/latent_point.fallback_notice)."""
    from vae_core.export import UnsupportedExport, export_decoder, export_encoder

    model = onnx_model(onnx_bytes(ConvEncoder(), torch.zeros(1, 1, 28, 28), ["m", "lv"]),
                       onnx_bytes(ConvDecoder(), torch.zeros(1, 3)))
    with pytest.raises(UnsupportedExport, match="its ONNX decoder is not a plain chain of dense layers .* server"):
        export_decoder(model)
    with pytest.raises(UnsupportedExport, match="its ONNX encoder is an imported graph, so ONNX Runtime runs it"):
        export_encoder(model)


def test_a_latent_lab_conv_model_exported_to_onnx_imports_and_matches():
    """nn.Unflatten exports as Shape -> Slice -> Concat -> Reshape: folded to constants, the graph's sizes are known."""
    from vae_core.config import model_config_for
    from vae_core.models import build_model

    original = build_model(model_config_for((1, 28, 28), 0, arch="conv", latent_dim=4), seed=5).eval()
    model = onnx_model(*export_pair(original, 4, image=(1, 28, 28)))
    assert model.spec.encoder_layout.kind == "chw" and not model.spec.probabilities
    x, z = torch.rand(6, 1, 28, 28), torch.randn(6, 4)
    with torch.no_grad():
        torch.testing.assert_close(model.encode(x)[1], original.encode(x)[1], atol=1e-5, rtol=0)
        torch.testing.assert_close(model.decode(z), original.decode(z), atol=1e-5, rtol=0)


def test_a_size_computed_from_the_data_is_refused(pair):
    """A reshape to a size read from the pixels: no bound on what follows can be known before running it."""
    nodes = [helper.make_node("ReduceMax", ["x"], ["m"], axes=[0, 1], keepdims=0),
             helper.make_node("Cast", ["m"], ["mi"], to=TensorProto.INT64),
             helper.make_node("Unsqueeze", ["mi", "zero"], ["rows"]),
             helper.make_node("Concat", ["rows", "minus_one"], ["shape"], axis=0),
             helper.make_node("Reshape", ["x", "shape"], ["r"]),
             helper.make_node("ReduceMean", ["r"], ["mu"], axes=[1], keepdims=1),
             helper.make_node("Identity", ["mu"], ["lv"])]
    consts = [helper.make_tensor("zero", TensorProto.INT64, [1], [0]),
              helper.make_tensor("minus_one", TensorProto.INT64, [1], [-1])]
    sneaky = graph([("x", ["N", 784])], [("mu", ["N", 1]), ("lv", ["N", 1])], nodes, consts)
    with pytest.raises(CheckpointError, match="the size of the encoder's tensor '.*' cannot be read from the graph"):
        onnx_model(sneaky, mlp_decoder(latent=1))


def test_too_many_multiply_adds_are_refused_before_anything_runs():
    kernel = helper.make_tensor("w", TensorProto.FLOAT, [32, 1, 15, 15], [0.0] * (32 * 225))
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[7, 7, 7, 7]),
             helper.make_node("GlobalAveragePool", ["c"], ["g"]), helper.make_node("Flatten", ["g"], ["mu"]),
             helper.make_node("Identity", ["mu"], ["lv"])]
    slow = graph([("x", ["N", 1, 256, 256])], [("mu", ["N", 32]), ("lv", ["N", 32])], nodes, [kernel])
    # 32 x 256 x 256 outputs x 15 x 15 taps = 471,859,200, plus the cheap operators after it
    with pytest.raises(CheckpointError, match=r"the encoder takes 471,859,\d{3} multiply-adds per image, over the limit"):
        onnx_model(slow, mlp_decoder(latent=32, out=256 * 256))


def test_damaged_files_are_refused_with_a_message_never_another_error(pair):
    """Bytes flipped, cut or repeated anywhere in a real pair: each import gives a model or a CheckpointError (the
    app shows its message), never another exception."""
    import random

    rng = random.Random(1)
    outcomes = set()
    for trial in range(200):  # before names were decoded, ~3% of such trials raised a TypeError (invalid UTF-8)
        encoder, decoder = bytearray(pair[0]), bytearray(pair[1])
        target = encoder if trial % 2 else decoder
        header = min(len(target), 600)  # the graph's structure is at the front; the weights are the bulk behind it
        for _ in range(rng.randint(1, 4)):
            i = rng.randrange(header)
            target[i] = rng.randrange(256)
        if trial % 5 == 0:
            del target[rng.randrange(len(target)):]
        try:
            onnx_model(bytes(encoder), bytes(decoder))
            outcomes.add("opened")
        except CheckpointError as exc:
            assert str(exc), "a refusal says why"
            outcomes.add("refused")
    assert "refused" in outcomes
