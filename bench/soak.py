"""Kill test: run a job, SIGKILL it at a random moment, rerun it to completion, compare every table with
an uninterrupted run (row counts, per-example outcomes, no duplicates). Prints matched trials.

Each trial starts a fresh job in a fresh workdir, and the kill moments cycle through three kinds, so the
first seconds of a job are hit as often as the rest:
- `store`: while the local MLflow store is being created (when its file, or its temporary file, first
  appears in the workdir, plus up to 1.5 s: MLflow's migrations of a new store);
- `early`: in the first 10 seconds (start-up, the data stage, the database's migrations, the first stage);
- `any`: anywhere in the uninterrupted run's duration.

    .venv/bin/python bench/soak.py [--trials 20] [--job bench/soak-job.yaml]

The default job is jobs/micro.yaml cut to the tests' tiny data (bench/soak-job.yaml): micro's trials took
minutes each on a shared 2-core machine, most of it start-up and data, which every trial pays twice.
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

KINDS = ("store", "early", "any")
STORE_WINDOW_S = 1.5
EARLY_S = 10.0


def run(
    job: Path, workdir: Path, kill_after: float | None = None, on_store: bool = False
) -> tuple[int, float]:
    """Run the job; SIGKILL it `kill_after` seconds after its start, or (`on_store`) after the MLflow
    store's file first appears in the workdir. Returns the exit code and the seconds it ran."""
    cmd = [sys.executable, "-m", "kdplatform.cli", "run", str(job), "--workdir", str(workdir)]
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    if kill_after is not None:
        if on_store:
            while proc.poll() is None and not list(workdir.glob("mlflow.db*")):
                time.sleep(0.01)
        try:
            proc.wait(timeout=kill_after)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
    return proc.wait(), time.perf_counter() - start


def kill_moment(kind: str, full: float, rng: random.Random) -> tuple[float, str]:
    """Seconds to wait before the kill, and how the trial's line describes the moment."""
    if kind == "store":
        at = rng.uniform(0.0, STORE_WINDOW_S)
        return at, f"MLflow store appeared + {at:.2f} s"
    at = rng.uniform(0.5, min(EARLY_S, full) if kind == "early" else full)
    return at, f"{at:5.1f} s ({kind})"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--job", type=Path, default=ROOT / "bench" / "soak-job.yaml")
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
            kind = KINDS[trial % len(KINDS)]
            at, moment = kill_moment(kind, full, rng)
            code, _ = run(args.job, wd, kill_after=at, on_store=kind == "store")
            killed = code == -signal.SIGKILL
            code2, _ = run(args.job, wd)
            diffs = (
                ["rerun failed"]
                if code2
                else differences(ref, snapshot(make_engine(f"duckdb:///{wd / 'kdp.duckdb'}"), name))
            )
            matched += not diffs
            print(
                f"trial {trial + 1:2d}: kill at {moment} ({'killed' if killed else 'had finished'}), "
                f"{'match' if not diffs else 'MISMATCH: ' + '; '.join(diffs)}",
                flush=True,
            )
        print(f"{matched}/{args.trials} trials matched the uninterrupted run")
    os._exit(0 if matched == args.trials else 1)


if __name__ == "__main__":
    main()
