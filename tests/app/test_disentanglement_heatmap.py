"""The Disentanglement lab's factor x latent-dimension heat map (issue 16): its cells are the normalised mutual
information MI / H(factor) of vae_core.disentanglement.evaluate_disentanglement, for a real bundled shapes model and
for a model trained in the app on an uploaded .npz with its own `factors`; the axes, the colour bar and the one-line
explanation are there. Which shapes models are bundled, and their latent sizes, are read, not assumed."""
import io
import json

import numpy as np
import pytest

from app_pages.disentanglement import EVAL_SAMPLES, HEATMAP_NOTE
from tests.app.conftest import open_app, picker
from vae_core.checkpoint import load_checkpoint
from vae_core.disentanglement import evaluate_disentanglement, factor_rows
from vae_core.zoo import ZOO, ZOO_DIR

PAGE = "app_pages/disentanglement.py"
HANG_GUARD_S = 240  # only there so that a hang fails the test; no speed is required
SHAPES_MODELS = [f"zoo/{spec.name}" for spec in ZOO if spec.dataset == "shapes" and (ZOO_DIR / f"{spec.name}.pt").is_file()]


def heatmap(at, key: str = "dl_heatmap") -> dict:
    """The heat map's Plotly spec: {"z" (K, D), "x" dimension names, "y" factor names, "layout"}."""
    [chart] = [c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id]
    spec = json.loads(chart.proto.spec)
    trace = spec["data"][0]
    assert trace["type"] == "heatmap"
    return {"z": np.array(trace["z"], dtype=float), "x": trace["x"], "y": trace["y"], "trace": trace,
            "layout": spec["layout"]}


def expected_nmi(model, dataset) -> tuple[np.ndarray, list[str]]:
    """(K, D) MI / H from evaluate_disentanglement on the lab's sample (EVAL_SAMPLES test images, seed 0)."""
    d = evaluate_disentanglement(model, dataset, max_samples=EVAL_SAMPLES, seed=0)
    mi, h = np.array(d["mi"]), np.array(d["entropies"])
    return (mi / h[None, :]).T, d["factor_names"]


def assert_labelled(hm: dict) -> None:
    layout = hm["layout"]
    assert layout["xaxis"]["title"]["text"] == "latent dimension" and layout["yaxis"]["title"]["text"] == "factor"
    assert hm["trace"]["colorbar"]["title"]["text"] == "MI / H(factor)"
    assert (hm["trace"]["zmin"], hm["trace"]["zmax"]) == (0, 1)


def test_a_bundled_shapes_models_heat_map_is_its_normalised_mutual_information():
    assert SHAPES_MODELS, "no bundled shapes model"
    at = open_app(PAGE)  # on MNIST: the lab offers its bundled shapes showcase, whichever model that is now
    switch = [b for b in at.button if b.label.startswith("Switch to the bundled shapes")]
    if switch:
        switch[0].click().run()
    else:  # the showcase is not built here: the last bundled shapes model
        picker(at).set_value(SHAPES_MODELS[-1]).run()
    assert not at.exception, [e.value for e in at.exception]
    shown = picker(at).value
    assert shown in SHAPES_MODELS
    model, meta = load_checkpoint(ZOO_DIR / f"{shown.split('/')[1]}.pt")
    from vae_core.data import load_from_spec

    want, names = expected_nmi(model, load_from_spec(meta["data_spec"]).test)
    hm = heatmap(at)
    assert hm["y"] == names and hm["x"] == [f"z[{i}]" for i in range(model.config.latent_dim)]
    # The card's MI (computed when the zoo was built) or the page's own measurement: the same sample, the same
    # numbers, up to the float32 jitter of the encoder (see tests/test_zoo.py).
    assert hm["z"] == pytest.approx(want, abs=1e-3)
    assert_labelled(hm)
    assert HEATMAP_NOTE in [c.value for c in at.caption]
    assert "one bright cell per factor" in HEATMAP_NOTE
    # Beside it, which factors have a traversal row of their own, from the same numbers.
    rows = factor_rows(np.array(want).T, np.ones(len(names)), names)  # `want` is MI / H, (K, D)
    owned = [r["factor"] for r in rows if r["own_row"]]
    said = [m.value for m in at.markdown if m.value.startswith("A row of its own")]
    assert said and f"{len(owned)} of {len(names)} factors" in said[0]
    assert all(f"**{name}** (" in said[0] for name in names)
    # Every bundled shapes model gets one, in the comparison's tabs too, one column per latent dimension.
    for key in SHAPES_MODELS:
        picker(at).set_value(key).run()
        assert not at.exception, key
        entry_dims = load_checkpoint(ZOO_DIR / f"{key.split('/')[1]}.pt")[0].config.latent_dim
        assert len(heatmap(at)["x"]) == entry_dims
    compared = [c for c in at.get("plotly_chart") if c.proto.id and "dl_heat_" in c.proto.id]
    assert compared and len(compared) == len(at.tabs)  # one beside each compared model's traversal


def bars_npz(n: int = 1000, seed: int = 0) -> bytes:
    """8x8 images of a vertical bar at column c and a horizontal bar at row r, with factors (c, r) named."""
    rng = np.random.default_rng(seed)
    c, r = rng.integers(0, 8, n), rng.integers(0, 8, n)
    x = np.zeros((n, 8, 8), np.uint8)
    x[np.arange(n), :, c] = 255
    x[np.arange(n), r, :] = 255
    buffer = io.BytesIO()
    np.savez(buffer, x=x, factors=np.stack([c, r], axis=1), factor_names=np.array(["column", "row"]))
    return buffer.getvalue()


def test_a_model_trained_on_an_uploaded_factors_file_gets_the_heat_map():
    at = open_app("app_pages/train.py")
    [s for s in at.selectbox if s.label == "Data"][0].set_value("npz").run()
    at.file_uploader[0].upload("bars.npz", bars_npz()).run()
    assert not at.error, [e.value for e in at.error]
    [s for s in at.slider if s.label == "Epochs"][0].set_value(5).run()
    [b for b in at.button if b.label == "Start training"][0].click().run()
    job = at.session_state["training_run"].job
    assert job.join(HANG_GUARD_S), "training did not finish"
    at.run()
    assert job.state == "done", job.snapshot().message
    key = f"mine/{job.snapshot().checkpoint.stem}"
    picker(at).set_value(key).run()
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not [i for i in at.info if "no ground-truth factors" in i.value]
    model = load_checkpoint(job.snapshot().checkpoint)[0]
    want, names = expected_nmi(model, job.data.test)
    hm = heatmap(at)
    assert names == ["column", "row"] and hm["y"] == names
    assert hm["x"] == [f"z[{i}]" for i in range(model.config.latent_dim)]
    assert hm["z"] == pytest.approx(want, abs=1e-6)  # measured by the page on the same images
    assert_labelled(hm)


def test_normalised_information_divides_each_factor_by_its_entropy():
    from ui.figures import factor_heatmap, normalised_information

    mi = np.array([[1.0, 0.0, 0.5], [0.5, 0.0, 0.25]])  # (D = 2, K = 3) nats
    nmi = normalised_information(mi, [2.0, 0.0, 0.5])  # a constant second factor: 0, not 0/0
    assert nmi.tolist() == [[0.5, 0.25], [0.0, 0.0], [1.0, 0.5]]  # (K, D)
    fig = factor_heatmap(mi, [2.0, 0.0, 0.5], ["a", "<b>", "c"])
    assert fig.data[0].y == ("a", "&lt;b&gt;", "c")  # a name from a user's file shows as typed
    with pytest.raises(ValueError, match="expected"):
        normalised_information(mi, [1.0, 2.0])
