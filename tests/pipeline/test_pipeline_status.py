"""`kdplatform status`: each stage's state, timings and what `run` would do, read without writing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from kdplatform.cli import main
from kdplatform.pipeline import JobRunner, plan
from kdplatform.pipeline.status import assess, render
from kdplatform.spec import load_spec
from kdplatform.store.schema import Run, Status

ROOT = Path(__file__).resolve().parents[2]
SMOKE = ROOT / "jobs" / "smoke.yaml"
T0 = dt.datetime(2026, 1, 2, 3, 4, 5)


def _run(status: str, config_hash: str, error: str | None = None) -> Run:
    return Run(
        status=status,
        config_hash=config_hash,
        error=error,
        started_at=T0,
        finished_at=T0 + dt.timedelta(seconds=90) if status != Status.RUNNING else None,
        seconds=90.0 if status == Status.DONE else None,
    )


@pytest.fixture(scope="module")
def data_stage():
    p = plan(load_spec(SMOKE))
    return p.get("data"), p.hashes["data"]


@pytest.mark.parametrize(
    "row, state, why",
    [
        (None, "not started", "run: never run"),
        (("done", "same"), "done", "skip: done"),
        (("done", "other"), "stale config", "run: its config or an input changed"),
        (("running", "same"), "running", "resume: left running by a process that died (or running now)"),
        (
            ("failed", "same", "OSError: disk full\ntraceback"),
            "failed",
            "run: last attempt failed (OSError: disk full)",
        ),
    ],
)
def test_assess_every_state(data_stage, row, state, why):
    stage, h = data_stage
    run = None if row is None else _run(row[0], h if row[1] == "same" else "x", *row[2:])
    st = assess(stage, h, run)
    assert (st.state, st.why) == (state, why)
    assert st.action == why.split(":")[0]
    assert st.started_at == (None if run is None else T0)


def test_render_shows_timings_and_counts(data_stage):
    stage, h = data_stage
    text = render("smoke", [assess(stage, h, _run("done", h)), assess(stage, h, None)])
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["stage", "kind", "state"]
    assert "2026-01-02 03:04:05" in lines[1] and "2026-01-02 03:05:35" in lines[1] and "90.0" in lines[1]
    assert lines[2].split()[:4] == ["data", "data", "not", "started"]
    assert lines[-1] == "job smoke: 2 stages (1 done, 1 not started); `kdplatform run` would run 1"


def test_never_run_job_is_all_not_started_and_nothing_written(tmp_path, capsys):
    workdir = tmp_path / "work"
    assert main(["status", str(SMOKE), "--workdir", str(workdir)]) == 0
    out = capsys.readouterr().out.splitlines()
    stages = plan(load_spec(SMOKE)).stages
    rows = out[1 : 1 + len(stages)]
    assert [r.split()[0] for r in rows] == [s.key for s in stages]
    assert all("not started" in r and r.endswith("run: never run") for r in rows)
    assert out[-1].endswith(f"would run {len(stages)}")
    assert not workdir.exists(), "status writes nothing, not even the workdir"


def test_status_of_the_smoke_job(smoke, capsys):
    from kdplatform.store.snapshot import snapshot

    before = snapshot(smoke.engine, "smoke")
    assert main(["status", str(SMOKE), "--db", smoke.database_url]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()[1 : 1 + len(smoke.plan.stages)]
    assert all(" done " in r and r.endswith("skip: done") for r in lines)
    runs = {r.stage_key: r for r in smoke.stored_runs().values()}
    first = lines[0].split()
    assert first[0] == "data" and f"{runs['data'].seconds:.1f}" in first
    assert out.splitlines()[-1].endswith("would run 0")
    assert snapshot(smoke.engine, "smoke") == before
    # The same from the job's name alone: the spec it was run with is in the database.
    assert main(["status", "smoke", "--db", smoke.database_url]) == 0
    assert capsys.readouterr().out == out


def test_status_without_a_job_lists_the_jobs(smoke, capsys):
    """The message `no job ...; kdplatform status lists the jobs` (analysis.jobs) holds."""
    assert main(["status", "--db", smoke.database_url]) == 0
    header, row = capsys.readouterr().out.splitlines()
    n = len(smoke.plan.stages)
    assert header.split()[:5] == ["job", "stages", "done", "running", "failed"]
    assert row.split()[:5] == ["smoke", str(n), str(n), "0", "0"]


def test_changed_config_is_stale_and_would_run(smoke):
    changed = smoke.spec.model_copy(
        update={
            "baseline": smoke.spec.baseline.model_copy(
                update={"train": smoke.spec.baseline.train.model_copy(update={"lr": 1e-4})}
            )
        }
    )
    states = {s.stage.key: s for s in JobRunner(changed, smoke.workdir).status()}
    assert states["train/baseline/s0"].state == "stale config"
    assert states["train/baseline/s0"].action == "run"
    assert states["train/teacher"].state == "done" and states["train/teacher"].seconds > 0


def test_unknown_job_name_is_a_spec_error(smoke, capsys):
    assert main(["status", "no-such-job", "--db", smoke.database_url]) == 2
    assert "no such job file, and no job of that name" in capsys.readouterr().err
