"""The report's figures and provenance header: valid PNGs, resolving links, skipped figures unlinked, the
header's versions and wall time, and the figures' data against pandas over the memorization view."""

from __future__ import annotations

import datetime as dt
import json
import platform
import re
from importlib import metadata
from pathlib import Path

import matplotlib.image
import numpy as np
import pandas as pd
import pytest
from sqlalchemy.orm import Session

from kdplatform.analysis import groups, overlap, rates, reading, report
from kdplatform.analysis.report import figures, provenance
from kdplatform.store import db
from kdplatform.store.schema import Job, Run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ALL = {f"{name}.png" for name, _ in figures.FIGURES}


def links(md: str) -> list[str]:
    return re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", md)


def assert_png(path: Path) -> None:
    assert path.read_bytes()[:8] == PNG_MAGIC, path
    img = matplotlib.image.imread(path)
    assert img.ndim == 3 and img.shape[0] > 50 and img.shape[1] > 50, (path, img.shape)


def assert_page(md: str, out: Path) -> set[str]:
    """Every linked figure is a readable PNG in <stem>-figures/, and every PNG there is linked."""
    found = links(md)
    assert found and all(link.startswith(f"{out.stem}-figures/") for link in found)
    for link in found:
        assert_png(out.parent / link)
    on_disk = {p.name for p in (out.parent / f"{out.stem}-figures").iterdir()}
    assert on_disk == {Path(link).name for link in found}
    return on_disk


def test_smoke_report_is_a_results_page(smoke, tmp_path):
    out = tmp_path / "results" / "smoke.md"
    stale = out.parent / "smoke-figures" / "temperature.png"  # left by an earlier report of another job
    stale.parent.mkdir(parents=True)
    stale.write_bytes(PNG_MAGIC)

    md = report.write_report(smoke.engine, "smoke", out, job_yaml="jobs/smoke.yaml")
    assert out.read_text() == md
    shown = assert_page(md, out)
    # One seed and one temperature: no consistency heatmap and no sweep, neither linked nor on disk.
    assert {"venn.png", "zlib_vs_ppl.png", "entropy_vs_logprob.png"} <= shown
    assert not shown & {"consistency.png", "temperature.png"}
    assert "consistency.png" not in md and "temperature.png" not in md
    assert "## Figures" in md

    head = md.split("## The paper's findings")[0]
    assert head.startswith("# Memorization report: smoke (job ")
    assert (
        f"- Regenerate: `kdplatform run jobs/smoke.yaml && kdplatform report jobs/smoke.yaml --out {out} "
        "--force`" in head
    )
    for name in provenance.VERSIONED:
        assert f"{name} {metadata.version(name)}" in head
    assert f"python {platform.python_version()}" in head

    runs = reading.read(smoke.engine, "SELECT status, started_at, finished_at, seconds FROM runs")
    done = runs[runs.status == "done"]
    span = (pd.to_datetime(done.finished_at).max() - pd.to_datetime(done.started_at).min()).total_seconds()
    assert (
        f"- Wall time: {provenance.duration(span)} from the first stage's start to the last stage's finish"
        in head
    )
    assert f"the {len(done)} finished stages took {provenance.duration(done.seconds.sum())} in sum" in head

    text_only = report.render_report(smoke.engine, "smoke")
    assert "## Figures" not in text_only and "Wall time" not in text_only and "![" not in text_only
    assert text_only.split("\n", 2)[2].rstrip() in md  # the same tables below the header


def test_cli_report_writes_the_page(smoke, tmp_path, monkeypatch, capsys):
    from kdplatform.cli import main

    monkeypatch.chdir(Path(__file__).resolve().parents[2])
    out = tmp_path / "page.md"
    assert main(["report", "jobs/smoke.yaml", "--db", smoke.database_url, "--out", str(out)]) == 0
    md = out.read_text()
    assert_page(md, out)
    assert (
        f"- Regenerate: `kdplatform run jobs/smoke.yaml --db {smoke.database_url} && "
        f"kdplatform report jobs/smoke.yaml --db {smoke.database_url} --out {out} --force`"
    ) in md


def test_every_figure_with_seeds_and_a_sweep(study, tmp_path):
    out = tmp_path / "alpha.md"
    md = report.write_report(study.engine, "alpha", out)
    assert assert_page(md, out) == ALL
    assert "Regenerate" not in md  # no job yaml given
    assert "- Wall time: no finished stage has its start and finish stored" in md

    # gamma: one baseline and one student seed at one temperature; no KLD stored.
    out = tmp_path / "gamma.md"
    md = report.write_report(study.engine, "gamma", out)
    assert assert_page(md, out) == ALL - {"consistency.png", "temperature.png"}


@pytest.mark.parametrize("every_temperature", [False, True])
def test_temperature_sweep_matches_the_memorization_view(study, every_temperature):
    job = study.jobs["alpha"]
    mem = reading.read(study.engine, "SELECT * FROM memorization WHERE job_id = :j", j=job)
    mem = mem[(mem.role == "student") & mem.temperature.notna()]
    per_run = (
        mem.assign(memorized=mem.memorized.astype(float))
        .groupby(["run_id", "seed", "objective", "temperature"], as_index=False)["memorized"]
        .mean()
        .assign(rate=lambda d: 100 * d.memorized)
    )
    if every_temperature:  # alpha trains T=1 on seeds 0, 1 and T=2 on seeds 0, 1, 2
        n_temps = per_run.temperature.nunique()
        full = per_run.groupby("seed").temperature.nunique().loc[lambda n: n == n_temps].index
        per_run = per_run[per_run.seed.isin(full)]
    want = (
        per_run.groupby(["objective", "temperature"])["rate"]
        .agg(["count", "mean", "min", "max"])
        .reset_index()
        .sort_values(["objective", "temperature"])
    )
    got = rates.temperature_sweep(study.engine, job, every_temperature=every_temperature)
    assert list(got.temperature) == list(want.temperature) == [1.0, 2.0]
    assert list(got.runs) == list(want["count"]) == ([2, 2] if every_temperature else [2, 3])
    for g, w in (("rate_pct_mean", "mean"), ("rate_pct_min", "min"), ("rate_pct_max", "max")):
        assert np.allclose(got[g].to_numpy(float), want[w].to_numpy(float))


def test_consistency_matrix_matches_the_memorization_view(study):
    job = study.jobs["alpha"]
    g = groups.student_group(study.engine, job)
    mem = reading.read(study.engine, "SELECT * FROM memorization WHERE job_id = :j", j=job)
    mem = mem.assign(memorized=mem.memorized.astype(int))
    nb = mem[mem.role == "baseline"].groupby("example_id").memorized.sum()
    ns = mem[mem.run_id.isin(g.run_ids)].groupby("example_id").memorized.sum()
    want = pd.crosstab(nb, ns.reindex(nb.index)).reindex(
        index=range(mem[mem.role == "baseline"].run_id.nunique() + 1),
        columns=range(len(g.run_ids) + 1),
        fill_value=0,
    )
    got = overlap.consistency_matrix(study.engine, job)
    assert (got.to_numpy() == want.to_numpy()).all()


def test_header_description_and_wall_time(tmp_path):
    engine = db.make_engine(f"duckdb:///{tmp_path / 'kdp.duckdb'}")
    db.upgrade(engine)
    t0 = dt.datetime(2026, 1, 2, 10, 0, 0)
    spec = {"name": "described", "description": "Why this job exists.\n\nHow it was calibrated."}
    with Session(engine) as s:
        job = Job(name="described", spec=json.dumps(spec), spec_hash="h", workdir="/tmp", created_at=t0)
        s.add(job)
        s.flush()
        for key, start, secs, status in (
            ("data", 0, 30, "done"),
            ("train/teacher", 60, 60, "done"),
            ("train/baseline/s0", 200, 500, "failed"),
        ):
            s.add(
                Run(
                    job_id=job.id,
                    stage_key=key,
                    kind="train",
                    status=status,
                    config="{}",
                    config_hash="c",
                    started_at=t0 + dt.timedelta(seconds=start),
                    finished_at=t0 + dt.timedelta(seconds=start + secs),
                    seconds=float(secs),
                )
            )
        s.commit()
    out = tmp_path / "docs" / "described.md"
    md = report.write_report(engine, "described", out, job_yaml="jobs/x.yaml", options=["--workdir", "w d"])
    engine.dispose()
    assert "> Why this job exists.\n>\n> How it was calibrated.\n" in md
    assert "kdplatform run jobs/x.yaml --workdir 'w d' && kdplatform report jobs/x.yaml --workdir 'w d'" in md
    assert (
        "- Wall time: 2 min 00 s from the first stage's start to the last stage's finish "
        "(2026-01-02 10:00 to 2026-01-02 10:02 UTC); the 2 finished stages took 1 min 30 s in sum"
    ) in md
    # Nothing scanned: no figures, no section, no empty folder.
    assert "## Figures" not in md and not (out.parent / "described-figures").exists()


def test_per_run_table_shows_epochs_and_val_loss(smoke):
    """Table 2's per-run rows carry each run's final checkpoint, as the checkpoints table stores it."""
    md = report.render_report(smoke.engine, "smoke")
    ck = reading.read(
        smoke.engine,
        "SELECT r.id, r.role, c.epoch, c.val_loss FROM runs r JOIN checkpoints c ON c.run_id = r.id "
        "WHERE c.is_final AND r.role = 'teacher'",
    )
    assert len(ck) == 1
    row = next(line for line in md.splitlines() if line.startswith(f"| {int(ck.id[0])} | teacher |"))
    assert row.endswith(f"| {int(ck.epoch[0])} | {float(ck.val_loss[0]):.4g} |")


def test_draw_venn3_writes_each_region_and_each_set_total():
    """The one Venn drawing (report and dashboard): region counts in place, set totals summed from them."""
    from matplotlib.figure import Figure

    from kdplatform.analysis.report.figures import draw_venn3

    rng = np.random.default_rng()
    counts = {r: int(rng.integers(1000, 99_999)) for r in overlap.REGIONS}
    ax = Figure().add_subplot()
    draw_venn3(ax, counts, ("T", "B", "S"))
    texts = [t.get_text() for t in ax.texts]
    assert texts[:7] == [f"{counts[r]:,}" for r in figures._SPOTS]
    for name, key in zip("TBS", "ABC", strict=True):
        total = sum(n for r, n in counts.items() if key in r)
        assert any(t.startswith(name) and t.endswith(f"({total:,})") for t in texts[7:]), (name, texts)
