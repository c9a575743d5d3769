"""The `data:` section of the tiny pipeline jobs the integration tests write: 16 training windows of 16
tokens from the builtin corpus, a 260-token BPE vocabulary, so a whole job runs in seconds."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any


def tiny_data(**over: Any) -> dict[str, Any]:
    """A fresh copy of the tiny data section, with `over` replacing its keys."""
    return {
        "num_examples": 16,
        "val_examples": 8,
        "seq_len": 16,
        "prefix_len": 8,
        "max_corpus_chars": 60000,
        "tokenizer": {"vocab_size": 260},
    } | over


def run_cli(path: Path, workdir: Path, kill_at: str | None = None) -> subprocess.CompletedProcess:
    """`kdplatform run` of a job file in a fresh process; `kill_at` names the point SIGKILL hits it
    (KDP_KILL_AT, pipeline.errors.kill_point)."""
    env = {k: v for k, v in os.environ.items() if k != "KDP_KILL_AT"}
    if kill_at:
        env["KDP_KILL_AT"] = kill_at
    cmd = [sys.executable, "-m", "kdplatform.cli", "run", str(path), "--workdir", str(workdir)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
