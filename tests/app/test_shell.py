"""The shell: the app opens on the bundled digits VAE, the picker follows the user, links carry the model."""
from tests.app.conftest import open_app, picker


class TestOpening:
    def test_opens_on_the_digits_vae_with_no_exception(self):
        at = open_app()
        assert picker(at).value == "zoo/digits-vae-2d"
        assert at.title[0].value == "Latent Lab"
        assert at.query_params["model"] == "zoo/digits-vae-2d"

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
        at.switch_page("pages/library.py").run()
        assert picker(at).value == "zoo/digits-cvae-2d"
        at.switch_page("pages/home.py").run()
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
        assert picker(at).value == "zoo/digits-vae-2d"
        assert any("not available" in i.value for i in at.info)


class TestPagesFolder:
    def test_no_helper_module_shadows_a_page(self):
        """Streamlit's old pages/-folder scan names a page by its file name without leading underscores, so
        pages/_x.py beside pages/x.py clash on a fresh server's first run. Keep helper names distinct."""
        from tests.app.conftest import ROOT

        names = [p.stem.lstrip("_") for p in (ROOT / "pages").glob("*.py")]
        assert len(names) == len(set(names)), sorted(names)
