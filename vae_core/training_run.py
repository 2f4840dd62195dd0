"""One training run, from a fresh model to its checkpoint: the path the command line, the zoo and the app's
training worker share.

    model = build_model(model_config, seed=train_config.seed)
    run = train_and_save(model, data, train_config, "model.pt", callbacks=[print])
    run.result.status, run.checkpoint   # "done", Path("model.pt")

The callers differ only in what they add: the CLI a progress bar, the zoo a model card in the metadata, the worker
live previews, a cancel event and keeping what a stopped run learnt.
"""
from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable, Iterable, NamedTuple

from vae_core.checkpoint import save_checkpoint
from vae_core.config import TrainConfig
from vae_core.train import Callback, Trainer, TrainResult, training_meta


class TrainedRun(NamedTuple):
    result: TrainResult
    checkpoint: Path | None  # None when nothing was saved (no file asked for, or nothing worth keeping)


def train_and_save(model, data, train_config: TrainConfig, save_to: str | Path | None, *,
                   callbacks: Iterable[Callback] = (), cancel: threading.Event | None = None,
                   extra_meta: Callable[[TrainResult], dict] | None = None, keep_partial: bool = False) -> TrainedRun:
    """Train `model` on `data` and save it with its training metadata (vae_core.train.training_meta).

    A finished run is saved; a stopped or failed one only with keep_partial and at least one finished epoch (the
    app keeps what a student's stopped run learnt; the CLI and the zoo report the failure instead). extra_meta
    returns what the caller adds to the metadata once training has ended (a name, a model card)."""
    result = Trainer(model, data, train_config).run(callbacks, cancel)
    worth_keeping = result.status == "done" or (keep_partial and bool(result.history))
    if save_to is None or not worth_keeping:
        return TrainedRun(result, None)
    meta = training_meta(data, train_config, result)
    if extra_meta is not None:
        meta.update(extra_meta(result))
    return TrainedRun(result, save_checkpoint(save_to, model, meta))
