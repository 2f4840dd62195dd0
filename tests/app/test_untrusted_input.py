"""Issue 15 on the Streamlit side: nothing a user supplies is rendered as Markdown, data named by a checkpoint is
the student's own upload (never a path, never someone else's cached data), bad files cost once, model settings
the app would refuse are refused before Start, and each student's share of the server is bounded."""
import io
import re
import uuid

import numpy as np
import pytest

import ui.catalogue
import ui.datasets
import ui.latent_space
import ui.students
import ui.text
from tests.app.conftest import open_app, picker
from vae_core.checkpoint import checkpoint_bytes
from vae_core.config import max_batch_size, model_config_for
from vae_core.data import load_npz
from vae_core.library import entry_from_bytes
from vae_core.models import build_model

HOSTILE_LINK = "[click](http://evil)![x](http://evil/x.png)"


def npz_bytes(n: int = 60, side: int = 8, channels: int | None = None, seed: int | None = None, **extra) -> bytes:
    """A small valid .npz of binary blobs; a fresh seed makes a file no other test (or cache entry) has."""
    rng = np.random.default_rng(uuid.uuid4().int % 2**32 if seed is None else seed)
    shape = (n, side, side) if channels is None else (n, side, side, channels)
    buffer = io.BytesIO()
    np.savez(buffer, x=(rng.random(shape) > 0.6).astype(np.uint8) * 255, y=rng.integers(0, 2, n), **extra)
    return buffer.getvalue()


def checkpoint_for(meta: dict, shape=(1, 8, 8), classes: int = 0, **settings) -> bytes:
    settings = {"latent_dim": 2, "hidden": (16,), **settings}
    model = build_model(model_config_for(shape, classes, **settings), seed=0)
    return checkpoint_bytes(model, meta)


def use_upload(at, blob: bytes, page: str | None = None):
    """Put a checkpoint in the session's uploads (as the Model library would), pick it, open `page`."""
    entry, model = entry_from_bytes(blob, "upload")
    at.session_state["uploads"] = {entry.key: (entry, model)}
    at.run()
    picker(at).set_value(entry.key).run()
    if page:
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return entry


def texts(at) -> list[str]:
    """The Markdown source of every text element of the page (what the browser renders)."""
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "subheader", "title", "toast")
    return [e.value for kind in kinds for e in at.get(kind)]


def markup_in(markdown: str) -> list[str]:
    """The link, image, HTML and autolink openers left unescaped in a Markdown source."""
    return re.findall(r"(?<!\\)(?:\[|<|://|www\.)", markdown)


def choose(at, label: str, value) -> None:
    [s for s in at.selectbox if s.label == label][0].set_value(value).run()


def start_button(at):
    return [b for b in at.button if b.label == "Start training"][0]


# -- finding 9: no user text as Markdown -------------------------------------------------------------------------------
class TestPlainText:
    def test_plain_escapes_every_markdown_construct_and_keeps_ordinary_names(self):
        assert ui.text.plain("Digits VAE (2-D latent)") == "Digits VAE (2-D latent)"
        assert ui.text.plain("β-VAE: 2 files, 'pets.zip'") == "β-VAE: 2 files, 'pets.zip'"
        assert ui.text.plain("my_digits.npz, test image #5 (a|b)") == "my_digits.npz, test image #5 (a|b)"
        assert markup_in(HOSTILE_LINK) and not markup_in(ui.text.plain(HOSTILE_LINK))
        for raw, escaped in [("<img src=x>", "\\<img src=x>"), ("**b** _i_ ~s~", "\\*\\*b\\*\\* \\_i\\_ \\~s\\~"),
                             ("$x^2$", "\\$x^2\\$"), (":red[x]", "\\:red\\[x\\]"),
                             ("see www.evil.com", f"see www{ui.text.WORD_JOINER}.evil.com"),
                             ("me@evil.org", f"me@{ui.text.WORD_JOINER}evil.org"), ("# title", "\\# title"), ("- item", "\\- item"),
                             ("a\nb\n\n# c", "a b # c"), ("> quote", "\\> quote"), ("1. item", "1\\. item"),
                             ("a\\b", "a\\\\b"), ("`code`", "\\`code\\`")]:
            assert ui.text.plain(raw) == escaped, raw
        assert ui.text.plain("x" * 300, max_chars=10) == "x" * 10 + "…"

    def test_a_hostile_model_link_shows_its_text_not_a_link_or_an_image(self):
        at = open_app(link={"model": HOSTILE_LINK})
        notices = [i.value for i in at.info if "is not available here" in i.value]
        assert notices, texts(at)
        assert ui.text.plain(HOSTILE_LINK, max_chars=80) in notices[0]
        assert not markup_in(notices[0]), notices[0]
        assert picker(at).value == ui.catalogue.DEFAULT_MODEL

    def test_names_and_text_from_an_uploaded_checkpoint_are_shown_literally(self):
        meta = {"name": "Mine [click](http://evil)", "dataset": "<img src=http://evil/x.png>",
                "about": "**Official** notice: go to www.evil.com"}
        at = open_app("app_pages/library.py")
        at.file_uploader(key="checkpoint_upload").upload("[x](http://evil).pt", checkpoint_for(meta)).run()
        assert not at.exception
        shown = "\n".join(texts(at))
        for raw in (meta["name"], meta["dataset"], "**Official**", "www.evil.com", "[x](http://evil).pt"):
            assert raw not in shown, raw
        assert ui.text.plain(meta["name"], 80) in shown and ui.text.plain(meta["about"], 400) in shown
        assert ui.text.plain(meta["dataset"], 80) in shown

    def test_the_name_of_an_uploaded_data_file_is_shown_literally(self):
        at = open_app("app_pages/train.py")
        choose(at, "Data", "npz")
        name = "*bold* [x](www.evil.com) <b>.npz"
        at.file_uploader[0].upload(name, npz_bytes()).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        captions = [c.value for c in at.caption if "training and" in c.value]
        assert captions and captions[0].startswith(ui.text.plain(name, 80)) and not markup_in(captions[0])


# -- finding 10: nothing in an uploaded checkpoint's metadata stops a page ---------------------------------------------
class TestHostileMetadata:
    META = {"name": {"not": "a string"}, "dataset": ["x"], "about": 12, "metrics": {"test_elbo": "abc", "test_kl": [1]},
            "card": {"test_elbo": float("nan"), "mig": "high", "kl_per_dim": [1, 2, 3], "factor_per_dim": "x",
                     "factor_accuracy": ["x"], "factor_chance": [2.0]},
            "label_names": {"a": 1}, "kl_per_dim": "zz", "data_spec": [1], "history": "h"}

    @pytest.mark.parametrize("page", ["app_pages/library.py", "app_pages/home.py", "app_pages/decode.py", "app_pages/latent_map.py",
                                      "app_pages/disentanglement.py", "app_pages/generate.py"])
    def test_a_checkpoint_with_wrongly_typed_metadata_is_shown_without_an_exception(self, page):
        at = open_app("app_pages/library.py")
        blob = checkpoint_for(self.META)
        at.file_uploader(key="checkpoint_upload").upload("odd.pt", blob).run()
        assert not at.exception, [e.value for e in at.exception]
        assert any("It is now in the model picker" in s.value for s in at.success), texts(at)
        (key,) = at.session_state["uploads"]
        picker(at).set_value(key).run()
        at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]


    def test_per_factor_accuracies_pass_only_when_well_formed(self):
        from ui.catalogue import _clean_card
        from vae_core.data.npz import MAX_FACTORS

        good = {"factor_accuracy": [0.5, None, 1.0], "factor_chance": [0.3, 1.0, 0.0]}
        assert _clean_card(good, latent_dim=2) == good
        for accuracy, chance in (([0.5, "x"], [0.3, 0.3]), ([0.5], [0.3, 0.3]), ([1.5], [0.3]), ([0.5], [None]),
                                 ([float("nan")], [0.3]), ([0.5] * (MAX_FACTORS + 1), [0.3] * (MAX_FACTORS + 1)),
                                 ("0.5", "0.3"), ({"a": 1}, [0.3])):
            cleaned = _clean_card({"factor_accuracy": accuracy, "factor_chance": chance}, latent_dim=2)
            assert "factor_accuracy" not in cleaned and "factor_chance" not in cleaned, (accuracy, chance)


# -- findings 4 and 11: data named by a checkpoint ---------------------------------------------------------------------
class TestDataOfAnUploadedModel:
    def test_a_model_trained_on_a_users_file_asks_for_that_file_and_checks_it(self):
        data_file = npz_bytes(n=60)
        spec = load_npz(io.BytesIO(data_file), name="blobs.npz").spec
        entry_blob = checkpoint_for({"name": "Blob VAE", "dataset": "blobs.npz", "data_spec": spec})
        at = open_app()
        use_upload(at, entry_blob, "app_pages/latent_map.py")
        assert any("trained on a file of your own" in i.value and "upload that file" in i.value for i in at.info)
        assert not at.get("plotly_chart")  # nothing but the request
        uploader = at.file_uploader[0]
        uploader.upload("other.npz", npz_bytes(n=60)).run()  # not the same bytes
        assert any("is not the file this model was trained on" in e.value for e in at.error)
        at.file_uploader[0].upload("blobs.npz", data_file).run()
        assert not at.exception and not at.error, [e.value for e in at.error]
        assert at.get("plotly_chart"), "the page shows the data once it has the file"

    def test_a_path_in_a_checkpoint_is_never_followed(self, tmp_path, monkeypatch):
        """The spec names a real file holding the right bytes: it is still not opened; the page asks for an upload."""
        data_file = npz_bytes(n=60)
        on_disk = tmp_path / "blobs.npz"
        on_disk.write_bytes(data_file)
        spec = {**load_npz(io.BytesIO(data_file), name="blobs.npz").spec, "path": str(on_disk)}
        opened = []
        real_open = open

        def spy_open(file, *args, **kwargs):
            if str(file) == str(on_disk):
                opened.append(file)
            return real_open(file, *args, **kwargs)

        monkeypatch.setattr("builtins.open", spy_open)
        at = open_app()
        use_upload(at, checkpoint_for({"name": "Path VAE", "dataset": "blobs.npz", "data_spec": spec}),
                   "app_pages/latent_map.py")
        assert any("trained on a file of your own" in i.value for i in at.info)
        assert not opened

    def test_another_sessions_upload_is_not_handed_out_by_fingerprint(self):
        """Alice trains on her file; Bob uploads a checkpoint naming its fingerprint: the cache gives Bob nothing."""
        data_file = npz_bytes(n=60)
        alice = open_app("app_pages/train.py")
        choose(alice, "Data", "npz")
        alice.file_uploader[0].upload("secret.npz", data_file).run()
        assert not alice.error
        spec = load_npz(io.BytesIO(data_file), name="secret.npz").spec
        bob = open_app()
        use_upload(bob, checkpoint_for({"name": "Fishing", "dataset": "secret.npz", "data_spec": spec}),
                   "app_pages/latent_map.py")
        assert any("trained on a file of your own" in i.value for i in bob.info)
        assert not bob.get("plotly_chart")


# -- finding 5: failures cached ---------------------------------------------------------------------------------------
class TestBadFilesCostOnce:
    def test_a_refused_data_file_is_read_once_however_often_the_page_reruns(self, monkeypatch):
        calls = []
        real = ui.datasets.load_npz
        monkeypatch.setattr(ui.datasets, "load_npz", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
        at = open_app("app_pages/train.py")
        choose(at, "Data", "npz")
        bad = io.BytesIO()
        np.savez(bad, x=np.full((20, 8, 8), np.nan, dtype=np.float32), nonce=np.array([uuid.uuid4().int % 2**31]))
        at.file_uploader[0].upload("bad.npz", bad.getvalue()).run()
        assert any("NaN" in e.value for e in at.error)
        for _ in range(3):
            at.run()
            assert any("NaN" in e.value for e in at.error) and not at.exception
        assert len(calls) == 1

    def test_a_refused_checkpoint_is_checked_once_while_it_stays_in_the_uploader(self, monkeypatch):
        import vae_core.library

        calls = []
        real = vae_core.library.load_checkpoint
        monkeypatch.setattr(vae_core.library, "load_checkpoint", lambda *a, **k: (calls.append(1), real(*a, **k))[1])
        at = open_app("app_pages/library.py")
        at.file_uploader(key="checkpoint_upload").upload("junk.pt", uuid.uuid4().bytes * 64).run()
        for _ in range(3):
            at.run()
            assert any("junk.pt was refused" in e.value for e in at.error)
        assert len(calls) == 1

    def test_a_session_keeps_the_bytes_of_its_latest_data_file_only(self):
        at = open_app("app_pages/train.py")
        choose(at, "Data", "npz")
        for name in ("one.npz", "two.npz", "three.npz"):
            at.file_uploader[0].upload(name, npz_bytes()).run()
            assert not at.error
            assert len(at.session_state["data_uploads"]) == 1


# -- finding 6: settings the app would refuse never start --------------------------------------------------------------
class TestSettingsBeforeStart:
    def test_a_model_over_the_bounds_is_refused_while_settings_are_chosen(self):
        at = open_app("app_pages/train.py")
        choose(at, "Data", "npz")
        at.file_uploader[0].upload("big.npz", npz_bytes(n=20, side=256, channels=3)).run()
        assert not at.error, [e.value for e in at.error]
        choose(at, "Hidden layers (MLP)", "512, 256")
        refusals = [w.value for w in at.warning if "cannot be trained here" in w.value]
        assert refusals and "parameters" in refusals[0]
        assert start_button(at).disabled
        choose(at, "Hidden layers (MLP)", "128")  # 25 M parameters: still over the 16 M bound
        [r for r in at.radio if r.label == "Network"][0].set_value("conv").run()  # a conv network fits
        assert not any("cannot be trained here" in w.value for w in at.warning)
        assert not start_button(at).disabled


# -- findings 6 and 7: quotas per student ------------------------------------------------------------------------------
def seed_models(folder, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"m{i}.pt").write_bytes(checkpoint_for({"name": f"m{i}"}))


class TestQuotas:
    def test_models_kept(self, monkeypatch, tmp_path):
        monkeypatch.setenv("LATENT_LAB_MAX_MODELS", "2")
        at = open_app()
        seed_models(ui.students.USER_ROOT / "sessions" / at.session_state["session_id"], 2)
        at.switch_page("app_pages/train.py").run()
        assert any("You keep 2 trained models" in w.value for w in at.warning)
        assert start_button(at).disabled

    def test_bytes_on_disk(self, monkeypatch):
        monkeypatch.setenv("LATENT_LAB_MAX_USER_MB", "1")
        at = open_app("app_pages/train.py")  # MNIST through a 256-128 MLP: a 2 MB checkpoint
        assert any("over the 1 MB each student may keep" in w.value for w in at.warning)
        assert start_button(at).disabled

    def test_uploaded_models_per_session(self, monkeypatch):
        monkeypatch.setenv("LATENT_LAB_MAX_UPLOADS", "1")
        at = open_app("app_pages/library.py")
        at.file_uploader(key="checkpoint_upload").upload("a.pt", checkpoint_for({"name": "A"})).run()
        at.file_uploader(key="checkpoint_upload").upload("b.pt", checkpoint_for({"name": "B"}, hidden=(8,))).run()
        assert any("b.pt was refused" in e.value and "the most one session may hold" in e.value for e in at.error)
        assert len(at.session_state["uploads"]) == 1

    def test_one_training_at_a_time_per_locker_across_tabs(self, monkeypatch):
        monkeypatch.setenv("LATENT_LAB_KEEP_MODELS", "1")
        first = open_app("app_pages/train.py")
        choose(first, "Data", "digits")
        [s for s in first.slider if s.label == "Epochs"][0].set_value(200).run()
        start_button(first).click().run()
        job = first.session_state["training_run"].job
        try:
            second = open_app()  # another tab of the same student: same locker
            second.sidebar.text_input(key="locker_input").set_value(first.session_state["locker"]).run()
            second.switch_page("app_pages/train.py").run()
            assert any("already have a training running" in w.value for w in second.warning), texts(second)
            assert start_button(second).disabled
        finally:
            job.cancel()
            assert job.join(120)

    def test_a_file_of_yours_the_app_refuses_can_be_deleted(self):
        at = open_app()
        folder = ui.students.USER_ROOT / "sessions" / at.session_state["session_id"]
        folder.mkdir(parents=True)
        (folder / "broken.pt").write_bytes(b"not a checkpoint")
        at.switch_page("app_pages/library.py").run()
        assert any("broken.pt" in m.value and "cannot be loaded" in m.value for m in at.markdown)
        [b for b in at.button if b.label == "Delete this file"][0].click().run()
        assert not (folder / "broken.pt").exists()


# -- decode grids within the budget ---------------------------------------------------------------------------------
class TestGridBudget:
    @pytest.mark.parametrize("shape", [(1, 28, 28), (3, 64, 64), (3, 256, 256)])
    def test_a_grid_fits_one_batch(self, shape):
        config = model_config_for(shape, 0, arch="conv")
        model = build_model(config, seed=0)
        n = ui.latent_space.grid_side_limit(model, 25)
        assert 4 <= n <= 25 and n * n <= max(16, max_batch_size(config))
        if shape == (1, 28, 28):
            assert n == 25  # ordinary models keep the full grid

    def test_the_decode_page_offers_a_smaller_grid_for_a_large_model(self):
        at = open_app()
        blob = checkpoint_bytes(build_model(model_config_for((3, 256, 256), 0, arch="conv"), seed=0), {"name": "Large"})
        use_upload(at, blob, "app_pages/decode.py")
        at.session_state["decode_grid_n"] = 25  # kept from a small model: clamped, not an error
        [seg] = [w for w in at.segmented_control if w.label == "Around your point"]
        seg.set_value("Manifold grid").run()
        assert not at.exception, [e.value for e in at.exception]
        grid = [s for s in at.slider if s.label == "Tiles per side"]
        assert grid, [s.label for s in at.slider]
        limit = ui.latent_space.grid_side_limit(use_upload.__globals__["entry_from_bytes"](blob, "upload")[1], 25)
        assert grid[0].max == limit < 25 and grid[0].value <= limit
