"""Training from the pages: one job per student in the background, the server's limiter, and the session's run.

A session has at most one run (`TrainingRun`: the job, the page that started it, whether its end was handled);
the job view (ui/job_view.py) shows it on the page that started it.
"""
from __future__ import annotations

import os
import threading
from dataclasses import dataclass

import streamlit as st

from ui.students import disk_use, max_models, max_user_bytes, student_key, user_dir
from vae_core.errors import QuotaError
from vae_core.jobs import JobLimiter, TrainingJob, new_job_limiter


@dataclass
class TrainingRun:
    """The session's training run: its job, the page that started it ("train", "disentanglement"...), and
    whether a page already handled its end (picked the new model, redrew the app)."""

    job: TrainingJob
    started_on: str
    end_handled: bool = False


def current_run() -> TrainingRun | None:
    """The session's run (active or finished), or None."""
    return st.session_state.get("training_run")


def current_job() -> TrainingJob | None:
    run = current_run()
    return None if run is None else run.job


def session_alive_probe():
    """A callable that tells whether this browser session is still connected (for the training watchdog)."""
    from streamlit.runtime import Runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    if ctx is None or not Runtime.exists():
        return None
    runtime, sid = Runtime.instance(), ctx.session_id

    def alive() -> bool:
        return bool(runtime._session_mgr.is_active_session(sid))  # no public API for this in Streamlit 1.67

    return alive


@st.cache_resource(show_spinner=False)
def job_limiter() -> JobLimiter:
    """One per server: caps how many students train at the same time (with LATENT_LAB_RAY_ADDRESS, the Ray
    cluster's scheduler, shared by every replica, and the jobs train on the cluster: vae_core.ray_jobs)."""
    return new_job_limiter(int(os.environ.get("LATENT_LAB_MAX_JOBS", os.cpu_count() or 1)))


WARM_UP_DELAY_S = 8.0


@st.cache_resource(show_spinner=False)
def warm_up_training() -> bool:
    """Once per server, in the background: start the training workers' fork server (it imports torch, ~2 s),
    so that the first Start of the day answers at once. A few seconds late, so that it does not compete with the
    first page for the CPU (on 2 cores it slowed the first render by a second or more)."""
    from vae_core.jobs import warm_up_workers

    timer = threading.Timer(WARM_UP_DELAY_S, warm_up_workers)
    timer.name, timer.daemon = "warm-up-training", True
    timer.start()
    return True


def checkpoint_size_estimate(model_config) -> int:
    """Bytes of the checkpoint a model of these settings makes: float32 weights and a margin for the metadata."""
    from vae_core.config import estimate_parameters

    return 4 * estimate_parameters(model_config) + 256 * 1024


def training_refusal(model_config=None) -> str | None:
    """Why this student may not start a training now (a sentence that says what to do), or None. Checked while
    the settings are chosen (the Start button is then disabled) and again on Start."""
    running = job_limiter().job_of(student_key())
    own = current_job()
    if running is not None and running is not own:
        return (f"You already have a training running (“{running.name}”), maybe in another tab: one at a time per "
                "student. Stop it there or wait for it to finish.")
    count, used = disk_use(user_dir())
    if count >= max_models():
        return (f"You keep {count} trained models, the most one student may keep on this server: delete some in the "
                "Model library, then start again.")
    if model_config is not None:
        size = checkpoint_size_estimate(model_config)
        if used + size > max_user_bytes():
            return (f"Your models take {used / 1e6:,.1f} MB and this one would add about {size / 1e6:,.1f} MB, over "
                    f"the {max_user_bytes() / 1e6:,.0f} MB each student may keep on this server: delete some in the "
                    "Model library, or choose a smaller model.")
    return None


def start_training_job(model_config, train_config, data, name: str, *, started_on: str) -> TrainingJob:
    """Start this session's training job in the background (one per student), saving into the user's folder;
    QuotaError (nothing started) if a quota is used up. started_on: the page that shows it (see TrainingRun)."""
    from vae_core.library import slug, unique_path

    problem = training_refusal(model_config)
    if problem:
        raise QuotaError(problem)
    folder = user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    job = TrainingJob(model_config, train_config, data, job_limiter(), save_to=unique_path(folder, slug(name)),
                      name=name, alive=session_alive_probe(), owner=student_key(),
                      orphan_grace=float(os.environ.get("LATENT_LAB_ORPHAN_GRACE", 30)))
    st.session_state.training_run = TrainingRun(job.start(), started_on)
    return job
