"""Saved training state: written atomically, resumed only by the run that wrote it.

A state is resumed only when its fingerprint equals the resuming run's: the model's identity (config and
a digest of its initial weights), the teacher's (config and weights), the data (a digest of the training
and validation tokens), every training option, the KD settings, the seed, the world size and, when the
caller has one, its stage hash. Any other state is stale: it is removed and the run starts fresh, saying
why (``TrainResult.discarded_state``), instead of failing or, worse, continuing someone else's run.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from kdplatform.spec import TrainSpec

STATE_PREFIX = "step-"
_STATE_RE = re.compile(r"^step-(\d+)$")
_DIGEST_BYTES = 16


def weights_digest(model: torch.nn.Module) -> str:
    """A digest of every parameter and buffer (names, dtypes, shapes and values), in name order."""
    h = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    state = model.state_dict()
    for name in sorted(state):
        t = state[name].detach()
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def tokens_digest(*arrays: np.ndarray) -> str:
    """A digest of token arrays (shape and int64 values), so that other data never resumes a state."""
    h = hashlib.blake2b(digest_size=_DIGEST_BYTES)
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a, dtype=np.int64))
        h.update(f"{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def model_identity(model: torch.nn.Module | None) -> dict[str, str] | None:
    """Config and weights digest of a model (None for no model)."""
    if model is None:
        return None
    config = getattr(model, "config", None)
    text = config.to_json_string(use_diff=False) if config is not None else type(model).__name__
    return {
        "config": hashlib.blake2b(text.encode(), digest_size=_DIGEST_BYTES).hexdigest(),
        "weights": weights_digest(model),
    }


def fingerprint(
    cfg: TrainSpec,
    *,
    seed: int,
    world: int,
    model_id: dict | None,
    teacher_id: dict | None,
    data: str,
    kd: Any | None,
    stage_hash: str | None,
) -> dict[str, Any]:
    """Everything that must be equal between a saved state and the run resuming it (JSON-comparable)."""
    return json.loads(
        json.dumps(
            {
                "stage_hash": stage_hash,
                "model": model_id,
                "teacher": teacher_id,
                "data": data,
                "train": cfg.model_dump(mode="json"),
                "kd": None if kd is None else asdict(kd),
                "seed": seed,
                "num_processes": world,
            }
        )
    )


def latest_state(state_dir: Path) -> Path | None:
    found = [
        (int(m.group(1)), p) for p in state_dir.glob(f"{STATE_PREFIX}*") if (m := _STATE_RE.match(p.name))
    ]
    return max(found)[1] if found else None


def save_state(acc, state_dir: Path, step: int, progress: dict[str, Any]) -> None:
    """Write the state under a temporary name, then rename it into place and drop older states.

    A kill at any moment leaves either the previous complete state or the new one (the rename is the
    commit); leftover temporary folders are removed on the next start.
    """
    final = state_dir / f"{STATE_PREFIX}{step:09d}"
    tmp = state_dir / f"{final.name}.tmp"
    acc.save_state(str(tmp), safe_serialization=True)
    (tmp / f"progress_{acc.process_index}.json").write_text(json.dumps(progress))
    acc.wait_for_everyone()
    if acc.is_main_process:
        tmp.rename(final)
        for old in state_dir.glob(f"{STATE_PREFIX}*"):
            if old != final:
                shutil.rmtree(old, ignore_errors=True)
    acc.wait_for_everyone()


def remove_states(state_dir: Path) -> None:
    """Drop every saved state (the run is finished), and the folder itself when nothing else is in it."""
    for p in state_dir.glob(f"{STATE_PREFIX}*"):
        shutil.rmtree(p, ignore_errors=True)
    with contextlib.suppress(OSError):
        state_dir.rmdir()


def _stale_reason(latest: Path, world: int, expected: dict[str, Any]) -> str | None:
    """Why the state at `latest` cannot be resumed (None: it can); every rank reads all files: all agree."""
    for rank in range(world):
        f = latest / f"progress_{rank}.json"
        if not f.exists():
            return f"no training state for process {rank} of {world}"
        try:
            saved = json.loads(f.read_text()).get("fingerprint")
        except (OSError, ValueError) as e:
            return f"unreadable progress file {f.name}: {e}"
        if saved != expected:
            if not isinstance(saved, dict):
                return "written by an older version (no fingerprint)"
            keys = sorted(k for k in expected.keys() | saved.keys() if saved.get(k) != expected.get(k))
            return "written for another stage (differs in: " + ", ".join(keys) + ")"
    return None


def open_state(acc, state_dir: Path, expected: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """Prepare `state_dir`; load the latest state if it was written for `expected`, else remove it.

    Returns (this process's progress record or None, why a state was discarded or None).
    """
    if acc.is_main_process:
        state_dir.mkdir(parents=True, exist_ok=True)
        for tmp in state_dir.glob(f"{STATE_PREFIX}*.tmp"):
            shutil.rmtree(tmp, ignore_errors=True)
    acc.wait_for_everyone()
    latest = latest_state(state_dir)
    if latest is None:
        return None, None
    reason = _stale_reason(latest, acc.num_processes, expected)
    if reason is not None:
        acc.wait_for_everyone()  # every rank has judged the state before it is removed
        if acc.is_main_process:
            remove_states(state_dir)
            state_dir.mkdir(parents=True, exist_ok=True)
        acc.wait_for_everyone()
        return None, f"{latest.name}: {reason}; removed, starting fresh"
    acc.load_state(str(latest))
    return json.loads((latest / f"progress_{acc.process_index}.json").read_text()), None
