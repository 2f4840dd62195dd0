"""Lessons: ready-made classroom walkthroughs. One click sets the model and the page; a banner on top of each
page then leads through numbered steps, each with a question for the class."""
import streamlit as st

from ui import lessons
from ui.page import page_header


def main() -> None:
    page_header(
        "Lessons",
        "Each lesson is a short walk through the app for a class. **Start** picks the right model and opens the first "
        "page; a box on top of every page then says what to look at and asks the class a question, with **Next** to "
        "move on. The address bar always holds the current step: share it and the class opens on the same step.",
    )

    for lesson in lessons.LESSONS:
        with st.container(border=True):
            left, right = st.columns([4, 1])
            with left:
                st.subheader(lesson.title)
                st.write(lesson.summary)
                st.caption(" → ".join(f"{i + 1}. {step.title}" for i, step in enumerate(lesson.steps)))
            with right:
                if st.button("Start", key=f"start-{lesson.id}", type="primary", icon=":material/play_arrow:",
                             help=f"Open step 1 of “{lesson.title}”."):
                    lessons.go_to(lesson, 0)


if __name__ == "__main__":
    main()
