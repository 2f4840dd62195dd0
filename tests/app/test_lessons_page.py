"""Lessons: every lesson runs start to finish through its steps with no exception, sets its model, shows its
question, and a link to a step opens on that step; a garbage step link opens normally with a notice."""
import pytest
from streamlit.testing.v1 import AppTest

from ui.lessons import LESSONS
from tests.app.conftest import APP, open_app, picker


def _banner_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


def compared(at: AppTest) -> list[str]:
    """The models the Compare page's three selectors show."""
    return [s.value for s in at.selectbox if s.key and s.key.startswith("cmp_model_")]


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_a_lesson_runs_start_to_finish(lesson):
    at = open_app("app_pages/lessons.py")
    at.button(key=f"start-{lesson.id}").click().run(timeout=120)
    for index, step in enumerate(lesson.steps):
        assert not at.exception, (lesson.id, index, [e.value for e in at.exception])
        text = _banner_text(at)
        assert f"step {index + 1} of {len(lesson.steps)}" in text and step.question in text
        assert picker(at).value == step.model
        if "models" in step.params:  # the Compare page shows the three models the step names
            assert compared(at) == step.params["models"].split(","), (lesson.id, index)
        if step.action:
            at.button(key="lesson_action").click().run(timeout=120)
            job = at.session_state["training_run"].job
            assert job.is_active or job.state == "done"
            job.cancel()
            job.join(30)
        if index + 1 < len(lesson.steps):
            at.button(key="lesson_next").click().run(timeout=120)
    at.button(key="lesson_end").click().run()
    assert "Question for the class" not in _banner_text(at)


def test_a_link_opens_on_the_lesson_step():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"lesson": "ae-not-generator", "step": "3", "model": "zoo/mnist-ae-2d"})
    at.run()
    assert not at.exception
    assert "step 3 of 4" in _banner_text(at)


def test_a_garbage_step_link_opens_normally_with_a_notice():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"lesson": "no-such-lesson", "step": "x"})
    at.run()
    assert not at.exception
    assert "Question for the class" not in _banner_text(at)
    assert any("lesson step does not exist" in i.value for i in at.info)


def test_each_lesson_uses_the_data_that_shows_its_point_best():
    """Real 28x28 MNIST where a picture must read as handwriting; the 8x8 digits where their size is the point (a
    posterior that collapses at β = 4 and trains live in seconds; digits against shapes); shapes for
    disentanglement, whose factors are known."""
    from ui.lessons import lesson_by_id

    def models(lesson_id):
        return [step.model for step in lesson_by_id(lesson_id).steps]

    assert all(m.startswith("zoo/mnist-") for m in models("latent-space"))
    assert all(m.startswith("zoo/mnist-") for m in models("ae-not-generator"))
    assert "zoo/mnist-ae-2d" in models("ae-not-generator")
    beta = models("beta-tradeoff")
    assert beta[-1] == "zoo/shapes-tcvae" and all(m.startswith("zoo/mnist-") for m in beta[:-1])
    assert "zoo/mnist-betavae-2d" in beta
    collapse = lesson_by_id("posterior-collapse")
    assert collapse.steps[0].action == "train_collapse"
    assert all(m == "zoo/digits-betavae4-2d" for m in models("posterior-collapse")[1:])
    assert "zoo/digits-betavae4-2d" in collapse.steps[-1].params["models"]  # the collapsed one on the curve
    assert all(m.startswith("zoo/digits-") for m in models("odd-one-out"))


def test_a_compare_step_shows_its_models_after_the_session_compared_others():
    """The Compare page reads a link's models on its first visit only: a lesson step still gets its own."""
    at = open_app("app_pages/compare.py")
    assert not at.exception and compared(at)[1] == "zoo/mnist-vae-2d"  # the page opened on its default trio
    at.switch_page("app_pages/lessons.py").run()
    at.button(key="start-posterior-collapse").click().run(timeout=120)
    for _ in range(3):  # to the last step, on the Compare page
        at.button(key="lesson_next").click().run(timeout=120)
    assert not at.exception, [e.value for e in at.exception]
    assert compared(at) == ["zoo/digits-ae-2d", "zoo/digits-vae-2d", "zoo/digits-betavae4-2d"]
