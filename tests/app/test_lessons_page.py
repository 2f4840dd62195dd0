"""Lessons: every lesson runs start to finish through its steps with no exception, sets its model, shows its
question, and a link to a step opens on that step; a garbage step link opens normally with a notice."""
import pytest
from streamlit.testing.v1 import AppTest

from pages._lesson_plans import LESSONS
from tests.app.conftest import APP, open_app, picker


def _banner_text(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("lesson", LESSONS, ids=[lesson.id for lesson in LESSONS])
def test_a_lesson_runs_start_to_finish(lesson):
    at = open_app("pages/lessons.py")
    at.button(key=f"start-{lesson.id}").click().run(timeout=120)
    for index, step in enumerate(lesson.steps):
        assert not at.exception, (lesson.id, index, [e.value for e in at.exception])
        text = _banner_text(at)
        assert f"step {index + 1} of {len(lesson.steps)}" in text and step.question in text
        assert picker(at).value == step.model
        if step.action:
            at.button(key="lesson_action").click().run(timeout=120)
            job = at.session_state["job"]
            assert job.is_active or job.state == "done"
            job.cancel()
            job.join(30)
        if index + 1 < len(lesson.steps):
            at.button(key="lesson_next").click().run(timeout=120)
    at.button(key="lesson_end").click().run()
    assert "Question for the class" not in _banner_text(at)


def test_a_link_opens_on_the_lesson_step():
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params.update({"lesson": "ae-not-generator", "step": "3", "model": "zoo/digits-ae-2d"})
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
