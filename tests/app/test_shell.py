"""The shell: the app opens on the bundled MNIST VAE, whose Welcome page puts the latent pad first with one sentence
on what to do; the picker follows the user, links carry the model."""
import json

from tests.app.conftest import ROOT, open_app, picker

DEFAULT = "zoo/mnist-vae-2d"


class TestOpening:
    def test_opens_on_the_mnist_vae_with_no_exception(self):
        at = open_app()
        assert picker(at).value == DEFAULT
        assert at.title[0].value == "Latent Lab"
        assert at.query_params["model"] == DEFAULT
        assert at.sidebar.caption[0].value == "VAE, mlp, z=2 · trained on mnist"  # real 28x28 digits

    def test_every_zoo_model_is_offered(self):
        at = open_app()
        from vae_core.zoo import ZOO

        options = picker(at).options  # the labels the user sees
        for spec in ZOO:
            assert any(o.startswith(spec.title) for o in options), spec.title


class TestPickerFollowsTheUser:
    def test_choice_survives_page_changes(self):
        at = open_app()
        picker(at).set_value("zoo/digits-cvae-2d").run()
        at.switch_page("app_pages/library.py").run()
        assert picker(at).value == "zoo/digits-cvae-2d"
        at.switch_page("app_pages/home.py").run()
        assert picker(at).value == "zoo/digits-cvae-2d"
        assert "CVAE" in at.subheader[0].value

    def test_a_link_with_a_model_opens_on_it(self):
        from streamlit.testing.v1 import AppTest

        from tests.app.conftest import APP
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["model"] = "zoo/digits-ae-2d"
        at.run()
        assert picker(at).value == "zoo/digits-ae-2d"

    def test_a_stale_link_opens_the_default_with_a_notice(self):
        from streamlit.testing.v1 import AppTest

        from tests.app.conftest import APP
        at = AppTest.from_file(APP, default_timeout=60)
        at.query_params["model"] = "zoo/no-such-model"
        at.run()
        assert not at.exception
        assert picker(at).value == DEFAULT
        assert any("not available" in i.value for i in at.info)


def pad_data(at) -> dict:
    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "latent_pad"]
    assert element.proto.component_name == "latent_pad"
    return json.loads(element.proto.json)


def release(at, z) -> None:
    """What the browser sends when the pad is released at z: the component's `point` state, then a run."""
    from streamlit.proto.WidgetStates_pb2 import WidgetState

    [element] = [e for e in at.get("bidi_component") if e.proto.component_name == "latent_pad"]
    states = at._tree.get_widget_states()
    states.widgets.append(WidgetState(id=element.proto.id, json_value=json.dumps(
        {"point": {"decoder_id": pad_data(at)["decoder_id"], "scene_id": "any", "z": list(z), "y": None,
                   "p": list(z), "seq": 1}})))
    at._run(states)
    assert not at.exception, [e.value for e in at.exception]


class TestWelcome:
    """The first minute of a demo: the MNIST VAE's latent pad first, one sentence saying what to do, big crisp
    digits; then the model in brief and a few of its samples."""

    def test_the_pad_comes_first_with_one_sentence_on_what_to_do(self):
        from ui import latent_point as lp

        at = open_app()
        kinds = [e.type for e in at.main if e.type not in ("flex_container", "column", "main")]
        assert kinds[:4] == ["title", "markdown", "markdown", "bidi_component"]  # title, lead, what to do, the pad
        assert at.markdown[1].value.count(".") == 1  # one sentence
        assert "Click or drag anywhere on the square" in at.markdown[1].value
        assert "draws the digit at that point of its 2-D latent space" in at.markdown[1].value
        assert "two numbers" in at.markdown[0].value
        data = pad_data(at)
        assert data["decoder"]["format"] == "latent-lab-decoder"  # the first page of the session: the weights
        scene = data["scene"]
        assert scene["view"]["method"] == "identity" and len(data["z"]) == 2
        assert len(scene["points"]["x"]) == lp.MAX_POINTS  # a fixed sample of the 10,000 test digits
        assert scene["label_names"] == [str(d) for d in range(10)]

    def test_the_decoded_digit_is_drawn_large_at_a_whole_multiple_of_its_pixels(self):
        from app_pages import home
        from ui.latent_point import image_size

        at = open_app()
        [style] = [h.proto.body for h in at.get("html") if "--latent-image-px" in h.proto.body]
        assert "--latent-image-px: 280px" in style and "home_pad_frame" in style  # 28 px x 10, pixelated in CSS
        css = (ROOT / "ui" / "latent_pad" / "pad.css").read_text()
        assert "image-rendering: pixelated" in css and "var(--latent-image-px" in css
        digits, shapes = type("E", (), {}), type("E", (), {})
        digits.config = type("C", (), {"input_shape": (1, 8, 8)})
        shapes.config = type("C", (), {"input_shape": (1, 32, 32)})
        assert image_size(digits, home.IMAGE_PX) == 280 and image_size(shapes, home.IMAGE_PX) == 288

    def test_the_model_card_and_samples_follow_the_pad(self):
        at = open_app()
        assert at.subheader[0].value == "MNIST VAE (2-D latent)"
        assert {m.label for m in at.metric} >= {"ELBO (nats)", "Latent size"}
        assert any("16 digits it made up" in m.value for m in at.markdown)
        assert len(at.get("image")) == 1

    def test_a_release_on_the_pad_is_the_point_the_other_pages_follow(self):
        at = open_app()
        release(at, [1.5, -0.5])
        assert at.query_params["z"] == "1.5,-0.5"
        at.switch_page("app_pages/decode.py").run()
        assert at.session_state["page_state.DecodeState"].point["z"] == [1.5, -0.5]

    def test_a_cvae_says_how_to_pick_the_digit(self):
        from vae_core.data import load_data

        at = open_app()
        picker(at).set_value("zoo/digits-cvae-2d").run()
        assert not at.exception
        assert "buttons beside it choose which digit" in at.markdown[1].value
        assert pad_data(at)["y"] == int(load_data("digits", seed=0).test.y[0])  # the class of the typical code

    def test_the_pad_starts_on_a_typical_digit_not_between_classes(self):
        import numpy as np

        from vae_core.checkpoint import load_checkpoint
        from vae_core.data import load_data
        from vae_core.latent import encode_dataset

        at = open_app()
        model, _ = load_checkpoint(ROOT / "checkpoints" / "mnist-vae-2d.pt")
        test = load_data("mnist", seed=0).test
        mu = encode_dataset(model, test.x, test.y).mu.numpy()
        sevens = mu[test.y.numpy() == int(test.y[0])]  # MNIST's first test digit is a 7
        typical = [float(v) for v in np.median(sevens, axis=0)]
        assert pad_data(at)["z"] == typical
        assert at.session_state["latent_point"]["z"] == typical  # the session's point: the other pages follow it
        release(at, [1.5, -0.5])
        at.run()  # later runs keep the point the user chose: the typical code is for a first visit only
        assert at.session_state["latent_point"]["z"] == [1.5, -0.5] and pad_data(at)["z"] in ([1.5, -0.5], None)

    def test_the_lead_says_what_kind_of_network_it_is(self):
        at = open_app()
        assert "That is a variational autoencoder (VAE)." in at.markdown[0].value
        picker(at).set_value("zoo/mnist-ae-2d").run()
        assert "plain autoencoder" in at.markdown[0].value and "variational" not in at.markdown[0].value
        picker(at).set_value("zoo/mnist-conv-vae-16d").run()
        assert "**16 numbers**" in at.markdown[0].value and "flat slice" in at.markdown[0].value
        assert "of its latent space" in at.markdown[1].value and "2-D" not in at.markdown[1].value
        picker(at).set_value("zoo/mnist-cvae-2d").run()
        assert "told which digit to draw" in at.markdown[0].value
        assert any("holds only the style" in c.value for c in at.caption)  # no "drag onto a colour" for a CVAE

    def test_a_links_point_is_where_the_pad_starts(self):
        at = open_app(link={"z": "1.25,-0.5"})
        assert pad_data(at)["z"] == [1.25, -0.5]


class TestPageFolder:
    def test_the_page_folder_holds_the_navigations_pages_only(self):
        """app_pages/ holds one script per page of app.py's navigation and nothing else: the pieces the pages share
        live in ui/. Every name is distinct, and every page file is one the navigation runs."""
        import re

        from tests.app.conftest import ROOT

        names = [p.stem for p in (ROOT / "app_pages").glob("*.py")]
        assert len(names) == len(set(names)), sorted(names)
        listed = set(re.findall(r'"(\w+)\.py"', (ROOT / "app.py").read_text()))
        assert set(names) == listed, sorted(set(names) ^ listed)
        others = [p.name for p in (ROOT / "app_pages").iterdir() if p.suffix != ".py" and p.name != "__pycache__"]
        assert not others, others
