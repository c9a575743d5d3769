"""A role with `train: null`: the checkpoint used as it is, recorded like a trained run without training.

The continued-pre-training setup (paper A.6) takes its teacher and baseline straight from the Pythia suite:
the 116k checkpoints already saw the data in pretraining. The stage still saves the weights to the run's
checkpoint folder (so scans, hard-KD data and students read every role from one place, pinned to the
revision) and records one epoch-0 checkpoint row with the validation loss. There is no training loss:
it is NaN, and no tokens or steps are counted.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np

from kdplatform.train.loop import EpochStats, TrainResult, save_checkpoint
from kdplatform.train.precision import as_master_weights
from kdplatform.train.validate import evaluate

EVAL_BATCH_SIZE = 8
"""Validation rows per forward pass (no `train:` section gives one)."""


def record_as_is(
    model, val_tokens: np.ndarray, out_dir: Path, *, batch_size: int = EVAL_BATCH_SIZE
) -> TrainResult:
    """Save `model` unchanged to `out_dir` and measure its validation loss: a one-checkpoint result."""
    from accelerate import PartialState

    state = PartialState()
    start = time.perf_counter()
    model = as_master_weights(model).to(state.device)
    val_loss = evaluate(model, np.asarray(val_tokens), batch_size, state.device)
    if state.is_main_process:
        save_checkpoint(model, out_dir)
    state.wait_for_everyone()
    stats = EpochStats(
        epoch=0,
        train_loss=math.nan,
        val_loss=val_loss,
        val_ppl=math.exp(min(val_loss, 50.0)),
        tokens=0,
        seconds=time.perf_counter() - start,
    )
    return TrainResult(epochs=[stats], seconds=stats.seconds)
