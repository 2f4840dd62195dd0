"""The job view: one widget that shows the session's training run on the page that started it (state, progress, the
end's message, a Stop button) and handles the run's end once.

    snap = job_status(run, name_in_text=False, done_note="The model is saved and selected in the sidebar.",
                      kept_note="listed in the sidebar", select_new_model=True, key="train")

Call it in a fragment that reruns every second or so while the job is active: the snapshot is cheap.
"""
from __future__ import annotations

import streamlit as st

from ui.catalogue import select_model
from ui.text import plain
from ui.training import TrainingRun


def handle_end(run: TrainingRun, *, select_new_model: bool) -> None:
    """Once per run, when its job has ended: pick the new model (if asked) and redraw the whole app, so that the
    sidebar lists the model and the page shows its final state. Whichever page sees the end first handles it."""
    if run.job.is_active or run.end_handled:
        return
    run.end_handled = True
    checkpoint = run.job.snapshot().checkpoint
    if select_new_model and checkpoint:
        select_model(f"mine/{checkpoint.stem}")  # the picker opens on the new model
    st.rerun(scope="app")


def job_status(run: TrainingRun, *, name_in_text: bool, done_note: str, kept_note: str, select_new_model: bool,
               key: str):
    """The run's state in one line (queued, a progress bar, finished, stopped or failed) and, while it runs, a Stop
    button; returns the job's snapshot. name_in_text: name the run in the progress and end lines (a page that
    shows other models too). done_note: where the finished model is now; kept_note: where a stopped run's
    weights are listed."""
    job = run.job
    handle_end(run, select_new_model=select_new_model)
    snap = job.snapshot()
    name = plain(job.name, 80)
    if snap.state == "queued":
        st.info(f"All training slots on this server are busy. You are **number {snap.queue_position or 1}** in the "
                "queue; your run starts by itself.", icon=":material/hourglass_top:")
    elif snap.state == "running":
        eta = f", about {snap.eta_seconds:.0f} s left" if snap.eta_seconds is not None else ""
        epoch = f"{name}: epoch" if name_in_text else "Epoch"
        st.progress(min(snap.progress, 1.0),
                    text=f"{epoch} {snap.epoch} of {snap.epochs} · {snap.samples_per_s:,.0f} images/s{eta}")
    elif snap.state == "done":
        finished = f"Finished {name}" if name_in_text else "Finished"
        st.success(f"{finished}: {plain(snap.message, 500)}. {done_note}", icon=":material/check_circle:")
    elif snap.state == "cancelled":
        kept = f" What it learnt so far is saved and {kept_note}." if snap.checkpoint else ""
        st.warning(f"Stopped: {plain(snap.message, 500)}.{kept}", icon=":material/stop_circle:")
    elif snap.state == "failed":
        st.error(plain(snap.message, 1000), icon=":material/error:")
    if job.is_active and st.button("Stop", icon=":material/stop:", key=f"{key}_stop",
                                   help="Stop training; the weights learnt so far are kept and saved."):
        job.cancel()
    return snap
