"""The decoder exporter: every architecture of the family exports layer by layer, the NumPy reference of the
browser's algorithm reproduces torch's decode_mean, the base64 form round-trips, and unknown layers are refused."""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from vae_core.checkpoint import load_checkpoint
from vae_core.config import model_config_for
from vae_core.export import (UnsupportedExport, browser_payload, export_decoder, export_sequential,
                             from_browser_payload, reference_decode)
from vae_core.models import build_model

ZOO = sorted((Path(__file__).resolve().parents[1] / "checkpoints").glob("*.pt"))


def _torch_decode(model, z: np.ndarray, y=None) -> np.ndarray:
    with torch.no_grad():
        yt = None if y is None else torch.as_tensor(y).long().expand(len(z))
        return model.decode_mean(torch.from_numpy(z), yt).numpy()


CONFIGS = {
    "mlp-vae": dict(shape=(1, 8, 8), classes=10, kind="vae", arch="mlp", latent_dim=2, hidden=(32, 16)),
    "mlp-cvae": dict(shape=(1, 8, 8), classes=10, kind="cvae", arch="mlp", latent_dim=3, hidden=(24,)),
    "mlp-rgb": dict(shape=(3, 6, 5), classes=0, kind="ae", arch="mlp", latent_dim=4, hidden=(20, 10)),
    "conv-vae": dict(shape=(1, 16, 16), classes=3, kind="vae", arch="conv", latent_dim=5, conv_channels=(8, 12),
                     conv_fc=32),
    "conv-cvae-rgb": dict(shape=(3, 16, 8), classes=4, kind="cvae", arch="conv", latent_dim=2,
                          conv_channels=(6, 4, 5), conv_fc=16),
}


@pytest.mark.parametrize("name", list(CONFIGS))
def test_every_architecture_exports_and_the_reference_matches_torch(name):
    spec = dict(CONFIGS[name])
    config = model_config_for(spec.pop("shape"), spec.pop("classes"), **spec)
    model = build_model(config, seed=1).eval()
    exported = export_decoder(model)
    assert exported.latent_dim == config.latent_dim
    assert exported.output_shape == tuple(config.input_shape)
    assert exported.kinds[-1] == "sigmoid"
    assert exported.n_parameters == sum(p.numel() for p in model.decoder.parameters())
    rng = np.random.default_rng(0)
    z = rng.normal(size=(6, config.latent_dim)).astype(np.float32) * 2
    y = rng.integers(0, config.num_classes, size=6) if config.is_conditional else None
    want = _torch_decode(model, z, y)
    got = reference_decode(exported, z, y)
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parametrize("path", ZOO, ids=[p.stem for p in ZOO])
def test_the_zoo_exports_and_round_trips_through_the_browser_form(path):
    model, _ = load_checkpoint(path)
    exported = export_decoder(model)
    payload = json.loads(json.dumps(browser_payload(exported)))  # what travels to the browser is plain JSON
    assert payload["format"] == "latent-lab-decoder" and payload["latent_dim"] == model.config.latent_dim
    first = payload["layers"][0]
    assert len(base64.b64decode(first["weight"])) == 4 * first["in"] * first["out"]  # float32, nothing else
    back = from_browser_payload(payload)
    for a, b in zip(exported.layers, back.layers):
        assert a["type"] == b["type"]
        for key in ("weight", "bias"):
            if key in a:
                np.testing.assert_array_equal(a[key], b[key])
    rng = np.random.default_rng(1)
    z = rng.normal(size=(4, model.config.latent_dim)).astype(np.float32)
    y = 3 if model.config.is_conditional else None
    np.testing.assert_allclose(reference_decode(back, z, y), _torch_decode(model, z, y), atol=1e-5)


def test_the_layer_layouts_are_pytorchs_own():
    model, _ = load_checkpoint(next(p for p in ZOO if p.stem == "shapes-vae"))
    exported = export_decoder(model)
    assert exported.kinds == ["linear", "relu", "linear", "relu", "unflatten", "conv_transpose2d", "relu",
                              "conv_transpose2d", "relu", "conv_transpose2d", "sigmoid"]
    conv = exported.layers[5]
    assert conv["weight"].shape == (64, 64, 4, 4) and conv["in_shape"] == [64, 4, 4] and conv["out_shape"] == [64, 8, 8]
    assert conv["stride"] == [2, 2] and conv["padding"] == [1, 1]
    np.testing.assert_array_equal(conv["weight"], model.decoder[5].weight.detach().numpy())


def test_output_padding_and_odd_strides_are_exact():
    seq = nn.Sequential(nn.Linear(3, 2 * 3 * 2), nn.Unflatten(1, (2, 3, 2)),
                        nn.ConvTranspose2d(2, 3, kernel_size=3, stride=3, padding=1, output_padding=1), nn.ReLU(),
                        nn.ConvTranspose2d(3, 1, kernel_size=(2, 5), stride=(1, 2), padding=(0, 2), bias=False))
    torch.manual_seed(0)
    exported = export_sequential(seq, 3)
    z = np.random.default_rng(2).normal(size=(3, 3)).astype(np.float32)
    with torch.no_grad():
        want = torch.sigmoid(seq(torch.from_numpy(z))).numpy()
    np.testing.assert_allclose(reference_decode(exported, z), want, atol=1e-5)


@pytest.mark.parametrize("layer", [nn.Tanh(), nn.LeakyReLU(), nn.BatchNorm1d(8), nn.Dropout(0.1)],
                         ids=lambda m: type(m).__name__)
def test_an_unknown_layer_is_refused_with_its_name(layer):
    seq = nn.Sequential(nn.Linear(2, 8), layer, nn.Linear(8, 4), nn.Unflatten(1, (1, 2, 2)))
    with pytest.raises(UnsupportedExport, match=type(layer).__name__):
        export_sequential(seq, 2)


def test_unsupported_conv_options_and_shapes_are_refused():
    grouped = nn.Sequential(nn.Linear(2, 16), nn.Unflatten(1, (4, 2, 2)), nn.ConvTranspose2d(4, 4, 2, groups=2))
    with pytest.raises(UnsupportedExport, match="groups"):
        export_sequential(grouped, 2)
    with pytest.raises(UnsupportedExport, match="takes 3 features"):
        export_sequential(nn.Sequential(nn.Linear(3, 4), nn.Unflatten(1, (1, 2, 2))), 2)
    with pytest.raises(UnsupportedExport, match="must end in an image"):
        export_sequential(nn.Sequential(nn.Linear(2, 4)), 2)
    with pytest.raises(UnsupportedExport, match="flat nn.Sequential"):
        export_sequential(nn.ModuleList([nn.Linear(2, 4)]), 2)
    with pytest.raises(UnsupportedExport, match="not a Latent Lab model"):
        export_decoder(nn.Linear(2, 2))


def test_a_model_whose_decoder_was_swapped_is_refused():
    config = model_config_for((1, 8, 8), 10, kind="vae", latent_dim=2, hidden=(16,))
    model = build_model(config, seed=0)
    model.decoder[1] = nn.SiLU()  # what a user's own variant of the family might do
    with pytest.raises(UnsupportedExport, match="layer 1 \\(SiLU\\)"):
        export_decoder(model)


def test_the_reference_needs_the_class_of_a_cvae():
    config = model_config_for((1, 8, 8), 10, kind="cvae", latent_dim=2, hidden=(16,))
    exported = export_decoder(build_model(config, seed=0))
    assert exported.num_classes == 10 and exported.input_size == 12
    with pytest.raises(ValueError, match="class"):
        reference_decode(exported, np.zeros((1, 2), np.float32))


# -- the browser's decoder itself, run by Node.js when the machine has it -----------------------------------------------
DECODER_JS = Path(__file__).resolve().parents[1] / "ui" / "latent_pad" / "decoder.js"
NODE_RUNNER = """
const fs = require('fs'), vm = require('vm');
globalThis.atob = (s) => Buffer.from(s, 'base64').toString('latin1');
vm.runInThisContext(fs.readFileSync(process.argv[2], 'utf8'));
const cases = JSON.parse(fs.readFileSync(process.argv[3], 'utf8'));
const out = cases.map(({payload, z, y}) => {
  const dec = compileDecoder(payload);
  return z.map((row, i) => Array.from(dec.decode(row, y === null ? null : y[i])));
});
process.stdout.write(JSON.stringify(out));
"""


def test_the_javascript_decoder_matches_torch_on_odd_architectures(tmp_path):
    """decoder.js (what the browser runs) on shapes the zoo does not have: RGB, odd kernels, strides and output
    padding, a conditional conv decoder. The zoo models themselves are checked in a real browser."""
    import shutil
    import subprocess

    node = shutil.which("node") or shutil.which("nodejs")
    if node is None:
        pytest.skip("Node.js is not installed (the browser tests check the zoo's decoders in Chromium)")
    torch.manual_seed(0)
    odd = nn.Sequential(nn.Linear(3, 2 * 3 * 2), nn.ReLU(), nn.Unflatten(1, (2, 3, 2)),
                        nn.ConvTranspose2d(2, 3, kernel_size=3, stride=3, padding=1, output_padding=1), nn.ReLU(),
                        nn.ConvTranspose2d(3, 3, kernel_size=(2, 5), stride=(1, 2), padding=(0, 2)))
    cases, wants = [], []
    rng = np.random.default_rng(3)
    for name in ["mlp-rgb", "conv-vae", "conv-cvae-rgb", "odd"]:
        if name == "odd":
            exported, forward, y = export_sequential(odd, 3), (lambda z, y: torch.sigmoid(odd(z))), None
            z = rng.normal(size=(5, 3)).astype(np.float32)
        else:
            spec = dict(CONFIGS[name])
            config = model_config_for(spec.pop("shape"), spec.pop("classes"), **spec)
            model = build_model(config, seed=2).eval()
            exported, forward = export_decoder(model), model.decode_mean
            z = rng.normal(size=(5, config.latent_dim)).astype(np.float32) * 2
            y = rng.integers(0, config.num_classes, size=5) if config.is_conditional else None
        with torch.no_grad():
            wants.append(forward(torch.from_numpy(z), None if y is None else torch.from_numpy(y)).reshape(5, -1).numpy())
        cases.append({"payload": browser_payload(exported), "z": z.tolist(), "y": None if y is None else y.tolist()})
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(cases))
    runner = tmp_path / "run.js"
    runner.write_text(NODE_RUNNER)
    result = subprocess.run([node, str(runner), str(DECODER_JS), str(path)], capture_output=True, text=True,
                            timeout=120, check=True)
    for got, want in zip(json.loads(result.stdout), wants):
        np.testing.assert_allclose(np.asarray(got), want, atol=1e-5)


# -- the encoder (the drawing box) ------------------------------------------------------------------------------------
@pytest.mark.parametrize("settings", [dict(kind="vae"), dict(kind="vae", arch="conv"), dict(kind="cvae"),
                                      dict(kind="ae"), dict(kind="cvae", arch="conv", latent_dim=5)])
def test_the_encoder_exports_and_the_reference_matches_torch(settings):
    from vae_core.export import encoder_payload, export_encoder, reference_encode

    settings = {"latent_dim": 3, **settings}
    model = build_model(model_config_for((1, 28, 28), 10, **settings), seed=0).eval()
    exported = export_encoder(model)
    x, y = torch.rand(3, 1, 28, 28), torch.tensor([1, 2, 3])
    with torch.no_grad():
        mu, logvar = model.encode(x, y if model.config.is_conditional else None)
    got_mu, got_logvar = reference_encode(exported, x.numpy(), y.numpy())
    np.testing.assert_allclose(got_mu, mu.numpy(), atol=1e-5)
    assert (got_logvar is None) == (logvar is None)
    if logvar is not None:
        np.testing.assert_allclose(got_logvar, logvar.numpy(), atol=1e-5)
    payload = json.loads(json.dumps(encoder_payload(exported)))
    assert payload["format"] == "latent-lab-encoder" and payload["n_parameters"] == exported.n_parameters
    assert [L["type"] for L in payload["conv"]] == (["conv2d", "relu", "conv2d", "relu", "flatten"]
                                                    if settings.get("arch") == "conv" else [])
