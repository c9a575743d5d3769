"""Kill test: run a job, SIGKILL it at a random moment, rerun it to completion, compare every table with
an uninterrupted run (row counts, per-example outcomes, no duplicates). Prints matched trials.

    .venv/bin/python bench/soak.py [--trials 20] [--job jobs/micro.yaml]
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kdplatform.spec import load_spec  # noqa: E402
from kdplatform.store.db import make_engine  # noqa: E402
from kdplatform.store.snapshot import differences, snapshot  # noqa: E402


def run(job: Path, workdir: Path, kill_after: float | None = None) -> tuple[int, float]:
    cmd = [sys.executable, "-m", "kdplatform.cli", "run", str(job), "--workdir", str(workdir)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    if kill_after is not None:
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    return proc.wait(), time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--job", type=Path, default=ROOT / "jobs" / "micro.yaml")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    name = load_spec(args.job).name
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        ref_dir = Path(tmp) / "ref"
        code, full = run(args.job, ref_dir)
        assert code == 0, "the uninterrupted run failed"
        ref = snapshot(make_engine(f"duckdb:///{ref_dir / 'kdp.duckdb'}"), name)
        print(f"uninterrupted run: {full:.1f} s; {sum(len(v) for v in ref.values())} rows compared")
        matched = 0
        for trial in range(args.trials):
            wd = Path(tmp) / f"t{trial}"
            at = rng.uniform(0.5, full)
            code, _ = run(args.job, wd, kill_after=at)
            killed = code == -signal.SIGKILL
            code2, _ = run(args.job, wd)
            diffs = (
                ["rerun failed"]
                if code2
                else differences(ref, snapshot(make_engine(f"duckdb:///{wd / 'kdp.duckdb'}"), name))
            )
            matched += not diffs
            print(
                f"trial {trial + 1:2d}: kill at {at:5.1f} s ({'killed' if killed else 'had finished'}), "
                f"{'match' if not diffs else 'MISMATCH: ' + '; '.join(diffs)}",
                flush=True,
            )
        print(f"{matched}/{args.trials} trials matched the uninterrupted run")
    os._exit(0 if matched == args.trials else 1)


if __name__ == "__main__":
    main()
