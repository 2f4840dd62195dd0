"""Ready lessons a teacher runs in class: each is a list of steps, a step is a page, a model and a question.

A running lesson shows a banner on top of every page (step text, the question for the class, Back / Next).
The lesson and the step live in the URL (`lesson=...&step=...`), so a link opens the class on the same step.

Each lesson uses the data that shows its point best: real 28x28 MNIST where a picture must be read as handwriting
(the latent space, an AE is not a generator, β's trade-off), the 8x8 digits where their size is the point (a
posterior that collapses at β = 4, trained live in seconds; digits against shapes), the shapes for disentanglement.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import streamlit as st

from ui.page import queue_notice
from ui.text import plain
from ui.training import current_job, start_training_job
from vae_core.config import TrainConfig, model_config_for
from vae_core.data import load_data
from vae_core.errors import UserInputError


MNIST_TRIO = "zoo/mnist-ae-2d,zoo/mnist-vae-2d,zoo/mnist-betavae-2d"  # the Compare page's models: same network
COLLAPSE_TRIO = "zoo/digits-ae-2d,zoo/digits-vae-2d,zoo/digits-betavae4-2d"  # and seed, only the loss differs
DIGITS_VAE = "zoo/digits-vae-2d"


@dataclass(frozen=True)
class Step:
    page: str  # the page file, e.g. "app_pages/latent_map.py"
    title: str
    text: str  # what to do and where to look
    question: str  # for the class
    model: str = "zoo/mnist-vae-2d"  # the picker is set to this model
    params: dict = field(default_factory=dict)  # page state set through the URL
    action: str | None = None  # a one-click action for this step (see ACTIONS)


@dataclass(frozen=True)
class Lesson:
    id: str
    title: str
    summary: str
    steps: tuple[Step, ...]


LESSONS: tuple[Lesson, ...] = (
    Lesson("latent-space", "What the latent space looks like",
           "Meet a VAE of handwritten digits whose code has just two numbers, so its whole latent space fits on one "
           "map.", (
               Step("app_pages/how_vae_works.py", "Two numbers per image",
                    "The encoder turns this digit into a mean μ and a spread σ for each of the **two** latent "
                    "dimensions; the decoder rebuilds the image from one point z drawn around μ.",
                    "Press *Resample ε* a few times. Why does the decoded image change a little each time?"),
               Step("app_pages/latent_map.py", "Every test digit as a point",
                    "Each dot is one test image, placed at its code μ and coloured by the digit it shows.",
                    "Which digits sit close together? Why might those two be confused?"),
               Step("app_pages/latent_map.py", "What each region decodes to",
                    "Turn on *decoded-image background*: the picture behind the dots is what the decoder draws "
                    "at each spot.", "What does the decoder draw between two clusters?"),
               Step("app_pages/decode.py", "Steer the decoder",
                    "Drag the point across the pad and watch the digit change; each slider beside it moves one "
                    "latent dimension alone.",
                    "Describe in words what dimension 0 changes. And dimension 1?"),
               Step("app_pages/generate.py", "New digits from random codes",
                    "These images come from random points of the prior N(0, I), not from any input.",
                    "Are they copies of training digits? Turn on the nearest training image to check."),
           )),
    Lesson("ae-not-generator", "Why an autoencoder is not a generator",
           "The same network trained without the KL term codes its inputs well but leaves holes.", (
               Step("app_pages/compare.py", "Two maps, one network",
                    "Top left: the autoencoder (AE). Top right: the VAE, the same network and seed plus the KL term. "
                    "The dashed circles are the prior at 1, 2 and 3σ.",
                    "Where are the empty regions (holes) in the AE's map? Does the VAE's map have them?",
                    params={"models": MNIST_TRIO}),
               Step("app_pages/compare.py", "Sampling the prior",
                    "Both models decode the same random codes. The page measures how good each model's samples "
                    "are as digits.", "Which model makes better digits from random codes, and by how much?",
                    params={"models": MNIST_TRIO}),
               Step("app_pages/generate.py", "The AE on its own", "Random codes through the autoencoder.",
                    "Why do so many samples look like no digit at all?", model="zoo/mnist-ae-2d"),
               Step("app_pages/latent_map.py", "Holes, seen directly",
                    "The AE's map with the prior's circles and the decoded background.",
                    "What fraction of the prior's 2σ disc is covered by real digits?", model="zoo/mnist-ae-2d"),
           )),
    Lesson("beta-tradeoff", "β and the rate-distortion trade-off",
           "Weighting the KL term by β trades information in the code (rate) for reconstruction (distortion).", (
               Step("app_pages/compare.py", "The trade-off curve",
                    "The rate-distortion plot puts every MNIST model at (KL, reconstruction). Dashed lines join "
                    "points of equal ELBO.", "Moving from the VAE to the β = 4 model, what is gained and what is lost?",
                    params={"models": MNIST_TRIO}),
               Step("app_pages/latent_map.py", "A map that hugs the prior",
                    "The β = 4 model's map with the prior's circles.",
                    "Compare its spread with the VAE's. Why does a larger β pull codes to the prior?",
                    model="zoo/mnist-betavae-2d"),
               Step("app_pages/generate.py", "Smoother, blurrier", "Samples from the β = 4 model.",
                    "Are they blurrier than the VAE's? Why would less information in the code blur them?",
                    model="zoo/mnist-betavae-2d"),
               Step("app_pages/disentanglement.py", "β and disentanglement",
                    "On the shapes data the factors are known. Each traversal row is labelled with the factor it "
                    "follows, and MIG scores how cleanly factors map to single dimensions. This is the β-TCVAE, "
                    "which puts β on the total correlation only; the comparison below adds the VAE and the β-VAE.",
                    "Is the β-VAE's MIG higher than the VAE's, and the β-TCVAE's higher still? Which factors did "
                    "the β-TCVAE separate, and which did none of them?",
                    model="zoo/shapes-tcvae"),
           )),
    Lesson("posterior-collapse", "Posterior collapse",
           "Make the KL weight too large and the code stops carrying anything: watch it happen live.", (
               Step("app_pages/train.py", "Train a β = 4 VAE live",
                    "Press **Train it now** in this box: a digits VAE with β = 4 trains in the background. Watch "
                    "the KL curve and the *KL per latent dimension* bars.",
                    "What happens to the KL? What does the warning say, and what does it mean?",
                    model=DIGITS_VAE, action="train_collapse"),
               Step("app_pages/latent_map.py", "Where did the points go?", "The bundled β = 4 model's latent map.",
                    "Why are all the digits in one blob at the centre?", model="zoo/digits-betavae4-2d"),
               Step("app_pages/decode.py", "Sliders that do nothing", "Move the sliders of the collapsed model.",
                    "Does the image change? What has the decoder learnt to draw instead?",
                    model="zoo/digits-betavae4-2d"),
               Step("app_pages/compare.py", "Collapse on the curve",
                    "On the rate-distortion plot of the digits models the collapsed model sits at KL ≈ 0.",
                    "How many nats of reconstruction did it give up to save the KL?",
                    model="zoo/digits-betavae4-2d", params={"models": COLLAPSE_TRIO}),
           )),
    Lesson("odd-one-out", "Spotting the odd one out",
           "A VAE trained on digits scores unfamiliar images as unlikely: anomaly detection for free.", (
               Step("app_pages/anomaly.py", "Digits against shapes",
                    "Blue: the digits test set. Orange: shapes shrunk to 8×8. The score is −ELBO: high means the "
                    "model finds the image unlikely.", "Which set scores higher? Is the AUROC close to 1?",
                    model=DIGITS_VAE),
               Step("app_pages/anomaly.py", "Choosing a threshold",
                    "Move the threshold: images above it are flagged.",
                    "Where would you put it to catch 90% of the shapes? How many digits are then flagged wrongly?",
                    model=DIGITS_VAE),
               Step("app_pages/anomaly.py", "Harder cases",
                    "Switch the other set to *flipped* digits.",
                    "Why is an upside-down digit harder to spot than a shape?", model=DIGITS_VAE),
           )),
)


def lesson_by_id(lesson_id: str) -> Lesson | None:
    return next((lesson for lesson in LESSONS if lesson.id == lesson_id), None)


# -- running a lesson --------------------------------------------------------------------------------------------
def go_to(lesson: Lesson, index: int) -> None:
    """Open step `index` of a lesson: its model, its page, its state in the URL."""
    step = lesson.steps[index]
    st.session_state.lesson = (lesson.id, index)
    st.session_state.select_model = step.model
    st.switch_page(step.page, query_params={"lesson": lesson.id, "step": str(index + 1), "model": step.model,
                                            **step.params})


def active_step() -> tuple[Lesson, int] | None:
    """The running lesson and step: from the session, or from a shared link's `lesson` and `step`."""
    lesson_id, raw_step = st.query_params.get("lesson"), st.query_params.get("step")
    if lesson_id is not None:
        lesson = lesson_by_id(lesson_id)
        try:
            index = int(raw_step) - 1 if raw_step is not None else 0
        except ValueError:
            index = -1
        if lesson is None or not 0 <= index < len(lesson.steps):
            queue_notice("The link's lesson step does not exist, so the page opened normally.")
            st.query_params.pop("lesson", None)
            st.query_params.pop("step", None)
            st.session_state.pop("lesson", None)
            return None
        st.session_state.lesson = (lesson.id, index)
        return lesson, index
    if "lesson" in st.session_state:
        lesson_id, index = st.session_state.lesson
        return lesson_by_id(lesson_id), index
    return None


def lesson_banner() -> None:
    """The running lesson's step on top of the page: what to look at, the question, and Back / Next / End."""
    current = active_step()
    if current is None:
        return
    lesson, index = current
    step = lesson.steps[index]
    with st.container(border=True):
        st.markdown(f"**Lesson: {lesson.title}** · step {index + 1} of {len(lesson.steps)}: **{step.title}**")
        st.markdown(step.text)
        st.markdown(f":material/help: **Question for the class:** {step.question}")
        cols = st.columns([1, 1, 1, 3])
        if step.action and cols[3].button("Train it now", type="primary", key="lesson_action",
                                          help="Start the training this step is about, in the background."):
            ACTIONS[step.action]()
            st.rerun()
        if index > 0 and cols[0].button("Back", icon=":material/arrow_back:", key="lesson_back"):
            go_to(lesson, index - 1)
        if index + 1 < len(lesson.steps):
            if cols[1].button("Next", icon=":material/arrow_forward:", type="primary", key="lesson_next"):
                go_to(lesson, index + 1)
        if cols[2].button("End lesson", key="lesson_end"):
            st.session_state.pop("lesson", None)
            st.query_params.pop("lesson", None)
            st.query_params.pop("step", None)
            st.rerun()


def _train_collapse() -> None:
    """The posterior-collapse lesson's live run: a digits VAE with β = 4 (it collapses; see vae_core/zoo.py). The
    step is on the Train page, which shows the run."""
    job = current_job()
    if job is not None and job.is_active:
        return
    data = load_data("digits", seed=0)
    try:  # out of the model's bounds (ConfigError) or of the student's quotas (QuotaError): say so, start nothing
        config = model_config_for(data.input_shape, data.num_classes, kind="vae", latent_dim=2, hidden=(256, 128),
                                  beta=4.0)
        start_training_job(config, TrainConfig(epochs=30, batch_size=64, lr=2e-3, seed=0), data,
                           "Lesson: β = 4 on digits", started_on="train")
    except UserInputError as exc:
        queue_notice(f"The training could not start: {plain(exc, 1000)}")  # shown after the rerun


ACTIONS = {"train_collapse": _train_collapse}
