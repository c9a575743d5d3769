"""One AppTest per dashboard page: it renders without an exception and shows the numbers SQL gives.

Expected values come from plain SQL over the documented views and tables (kdplatform.sql.run_readonly),
not from the library functions the pages call, so a page that draws the wrong query fails.
"""

from __future__ import annotations

import math
import re

import pandas as pd
import pytest
from app_paths import PAGES

from kdplatform.sql import run_readonly


def sql(url: str, query: str) -> pd.DataFrame:
    return run_readonly(url, query)


def frames(at) -> list[pd.DataFrame]:
    return [d.value for d in at.dataframe]


def frame_with(at, *cols: str) -> pd.DataFrame:
    for df in frames(at):
        if all(c in df.columns for c in cols):
            return df
    raise AssertionError(f"no table with columns {cols}; tables: {[list(d.columns) for d in frames(at)]}")


def metric(at, label: str) -> str:
    for m in at.metric:
        if m.label == label:
            return m.value
    raise AssertionError(f"no metric {label!r}; metrics: {[m.label for m in at.metric]}")


def texts(at) -> str:
    parts = [
        e.value for kind in ("info", "warning", "error", "markdown", "caption") for e in getattr(at, kind)
    ]
    return "\n".join(str(p) for p in parts)


def venn_regions(url: str, a: list[int], b: list[int], c: list[int]) -> dict[str, int]:
    """The seven regions from memorized_examples in plain SQL (pooled sets: any run of the set)."""

    def ids(x: list[int]) -> str:
        return ", ".join(str(i) for i in x)

    df = sql(
        url,
        f"""
        SELECT in_a, in_b, in_c, COUNT(*) AS n FROM (
            SELECT example_id,
                   MAX(CASE WHEN run_id IN ({ids(a)}) THEN 1 ELSE 0 END) AS in_a,
                   MAX(CASE WHEN run_id IN ({ids(b)}) THEN 1 ELSE 0 END) AS in_b,
                   MAX(CASE WHEN run_id IN ({ids(c)}) THEN 1 ELSE 0 END) AS in_c
            FROM memorized_examples WHERE run_id IN ({ids(a + b + c)}) GROUP BY example_id) t
        GROUP BY in_a, in_b, in_c
        """,
    )
    out = {}
    for r in df.itertuples():
        name = "".join(x for x, f in zip("ABC", (r.in_a, r.in_b, r.in_c), strict=True) if f)
        out[name] = int(r.n)
    return out


def run_ids(url: str, job_id: int, where: str) -> list[int]:
    df = sql(url, f"SELECT id FROM runs WHERE job_id = {job_id} AND kind = 'train' AND {where} ORDER BY id")
    return [int(x) for x in df["id"]]


# ------------------------------------------------------------------------------------- empty databases
@pytest.mark.parametrize("page", list(PAGES))
def test_page_on_empty_and_missing_database_says_what_to_run(open_page, empty_url, missing_url, page):
    for url, said in ((empty_url, "No jobs in the database"), (missing_url, "no database at")):
        at = open_page(url, page)
        shown = texts(at)
        assert said in shown and "make demo" in shown, shown


def test_database_without_tables_says_what_to_run(open_page, tmp_path):
    import duckdb

    path = tmp_path / "bare.duckdb"
    duckdb.connect(str(path)).close()
    at = open_page(f"duckdb:///{path}", "overlap")
    assert "no kdplatform tables yet" in texts(at)


def test_job_without_scans_says_what_to_run(open_page, tmp_path):
    import datetime as dt

    from kdplatform.store import db

    url = f"duckdb:///{tmp_path / 'started.duckdb'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql(
            "INSERT INTO jobs (id, name, spec, spec_hash, workdir, created_at) "
            "VALUES (1, 'fresh', '{}', 'h', '/w', ?)",
            (dt.datetime(2025, 1, 1),),
        )
    engine.dispose()
    for page in ("memorization", "overlap", "easy", "classifier", "mechanism", "examples"):
        at = open_page(url, page)
        assert "has no scanned models yet" in texts(at), page
    at = open_page(url, "runs")
    assert "has no runs yet" in texts(at)


# ------------------------------------------------------------------------------------------ runs page
@pytest.mark.parametrize("db", ["smoke", "synthetic"])
def test_runs_page_shows_runs_lineage_and_table1(open_page, smoke_url, synthetic_url, db):
    url = smoke_url if db == "smoke" else synthetic_url
    job_id = int(sql(url, "SELECT MIN(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(url, "runs", job_id)
    jobs = frame_with(at, "name", "runs", "done")
    assert list(jobs["name"]) == list(sql(url, "SELECT name FROM jobs ORDER BY id")["name"])
    runs = frame_with(at, "run_id", "stage_key", "status", "mlflow")
    want = sql(
        url, f"SELECT id, stage_key, status, mlflow_run_id FROM runs WHERE job_id = {job_id} ORDER BY id"
    )
    assert list(runs["run_id"]) == list(want["id"])
    assert list(runs["status"]) == list(want["status"])
    assert all(m in link for m, link in zip(want["mlflow_run_id"], runs["mlflow"], strict=True) if m)
    final = frame_with(at, "val_loss", "val_ppl", "epoch")
    want = sql(
        url,
        f"SELECT c.run_id, c.val_ppl FROM checkpoints c JOIN runs r ON r.id = c.run_id "
        f"WHERE r.job_id = {job_id} AND c.is_final",
    )
    got = dict(zip(final["run_id"], final["val_ppl"], strict=True))
    assert len(got) == len(want) > 0
    for r in want.itertuples():
        assert math.isclose(got[r.run_id], r.val_ppl, rel_tol=1e-9)
    dot = at.get("graphviz_chart")
    assert dot, "no lineage graph"
    spec = dot[0].proto.spec
    teacher = sql(url, f"SELECT id FROM runs WHERE job_id = {job_id} AND stage_key = 'train/teacher'")
    for t in teacher["id"]:
        assert f"r{t} -> " in spec  # the teacher feeds its students


# ---------------------------------------------------------------------------------- memorization page
@pytest.mark.parametrize("db", ["smoke", "synthetic"])
def test_memorization_page_shows_table2(open_page, smoke_url, synthetic_url, db):
    url = smoke_url if db == "smoke" else synthetic_url
    job_id = int(sql(url, "SELECT MIN(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(url, "memorization", job_id)
    got = frame_with(at, "run_id", "examples", "memorized", "rate_pct")
    want = sql(
        url, f"SELECT run_id, examples, memorized, rate_pct FROM memorization_rates WHERE job_id = {job_id}"
    )
    merged = want.merge(got, on="run_id", suffixes=("", "_app"))
    assert len(merged) == len(want) == len(got) > 0
    assert (merged["examples"] == merged["examples_app"]).all()
    assert (merged["memorized"].astype(int) == merged["memorized_app"].astype(int)).all()
    assert all(
        math.isclose(a, b, abs_tol=1e-9)
        for a, b in zip(merged["rate_pct"], merged["rate_pct_app"], strict=True)
    )


def test_memorization_page_sweeps_temperature_and_compares_soft_hard(open_page, synthetic_url, synthetic):
    url, job_id = synthetic_url, synthetic["jobs"]["bench"]
    at = open_page(url, "memorization", job_id)
    sweep = frame_with(at, "temperature", "rate_pct_mean", "runs")
    students = sweep[sweep["role"] == "student"]
    assert sorted(students["temperature"]) == [1.0, 2.0, 4.0]
    want = sql(
        url,
        f"SELECT temperature, AVG(rate_pct) AS r FROM memorization_rates WHERE job_id = {job_id} "
        "AND role = 'student' GROUP BY temperature",
    )
    for r in want.itertuples():
        got = float(students.loc[students["temperature"] == r.temperature, "rate_pct_mean"].iloc[0])
        assert math.isclose(got, r.r, rel_tol=1e-9)
    soft = run_ids(url, job_id, "role = 'student' AND temperature = 2.0")
    hard = run_ids(url, job_id, "role = 'student_hard'")
    v = venn_regions(url, hard, soft, [-1])
    share = v.get("AB", 0) / (v.get("A", 0) + v.get("AB", 0))
    assert metric(at, "hard-memorized also soft-memorized") == f"{100 * share:.1f}%"


# -------------------------------------------------------------------------------------- overlap page
def test_overlap_page_figure4_venn_matrix_inheritance_consistency(open_page, synthetic_url, synthetic):
    url, job_id = synthetic_url, synthetic["jobs"]["bench"]
    at = open_page(url, "overlap", job_id)
    regions = frame_with(at, "region", "meaning", "count")
    teacher = run_ids(url, job_id, "role = 'teacher'")
    baseline = run_ids(url, job_id, "role = 'baseline'")
    student = run_ids(url, job_id, "role = 'student' AND temperature = 2.0")  # the spec's first temperature
    want = venn_regions(url, teacher, baseline, student)
    assert dict(zip(regions["region"], regions["count"], strict=True)) == {
        r: want.get(r, 0) for r in ("A", "B", "C", "AB", "AC", "BC", "ABC")
    }
    assert metric(at, "inherited (teacher ∩ student ∖ baseline)") == str(want.get("AC", 0))
    assert at.get("image") or at.get("imgs"), "no Venn figure"

    inh = frame_with(at, "n_inherited", "n_teacher_not_baseline")
    view = sql(
        url, f"SELECT student_run_id, baseline_run_id, n_inherited FROM inheritance WHERE job_id = {job_id}"
    )
    m = view.merge(inh, on=["student_run_id", "baseline_run_id"], suffixes=("", "_app"))
    assert len(m) == len(view) > 0 and (m["n_inherited"] == m["n_inherited_app"]).all()

    pairs = frame_with(at, "run_a", "run_b", "n_both", "jaccard")
    view = sql(url, f"SELECT run_a, run_b, n_both FROM run_overlap WHERE job_id = {job_id}")
    assert len(pairs) == len(view) and set(zip(pairs.run_a, pairs.run_b, pairs.n_both, strict=True)) == set(
        zip(view.run_a, view.run_b, view.n_both, strict=True)
    )

    cons = [d for d in frames(at) if d.index.name == "baseline_seeds" or "0" in map(str, d.columns)]
    want = sql(
        url,
        f"SELECT n_baseline_memorized AS b, n_student_memorized AS s, COUNT(*) AS n FROM seed_consistency "
        f"WHERE job_id = {job_id} AND student_role = 'student' AND student_temperature = 2.0 GROUP BY 1, 2",
    )
    grid = cons[-1]
    for r in want.itertuples():
        assert int(grid.iloc[int(r.b), int(r.s)]) == int(r.n)
    assert int(grid.to_numpy().sum()) == int(
        sql(url, "SELECT COUNT(*) AS n FROM examples WHERE dataset_id = 1")["n"][0]
    )


def test_overlap_page_any_three_runs_and_presets(open_page, synthetic_url, synthetic):
    url, job_id = synthetic_url, synthetic["jobs"]["bench"]
    at = open_page(url, "overlap", job_id, venn_preset="Any three runs (Figure 13 across jobs)")
    a = synthetic["runs"][("bench", "student_hard", None, None, 0)]
    b = synthetic["runs"][("bench", "student", "forward_kl", 1.0, 0)]
    baseline = run_ids(url, job_id, "role = 'baseline'")
    at.selectbox(key="venn_0").set_value(f"run:{a}")
    at.selectbox(key="venn_1").set_value(f"run:{b}")
    at.selectbox(key="venn_2").set_value("group:" + ",".join(map(str, baseline)))
    at.run()
    assert not at.exception
    regions = frame_with(at, "region", "meaning", "count")
    want = venn_regions(url, [a], [b], baseline)
    assert dict(zip(regions["region"], regions["count"], strict=True)) == {
        r: want.get(r, 0) for r in ("A", "B", "C", "AB", "AC", "BC", "ABC")
    }
    # across jobs: the other family's runs are offered
    at.toggle(key="venn_all_jobs").set_value(True).run()
    assert any("bench-olmo" in str(o) for o in at.selectbox(key="venn_0").options)
    # Figures 10 and 11 from the soft/hard comparison
    hard = run_ids(url, job_id, "role = 'student_hard'")
    soft = run_ids(url, job_id, "role = 'student' AND temperature = 2.0")
    teacher = run_ids(url, job_id, "role = 'teacher'")
    for preset, sets in (
        ("Figure 10: soft student · hard student · baseline", (soft, hard, baseline)),
        ("Figure 11: teacher · baseline · hard student", (teacher, baseline, hard)),
    ):
        at.radio(key="venn_preset").set_value(preset).run()
        assert not at.exception
        regions = frame_with(at, "region", "meaning", "count")
        want = venn_regions(url, *sets)
        assert dict(zip(regions["region"], regions["count"], strict=True)) == {
            r: want.get(r, 0) for r in ("A", "B", "C", "AB", "AC", "BC", "ABC")
        }


def default_students(url: str, job_id: int) -> list[int]:
    """The student runs the pages pool by default: the job spec's first objective and temperature."""
    import json

    spec = json.loads(sql(url, f"SELECT spec FROM jobs WHERE id = {job_id}")["spec"][0])
    distill = spec.get("student", {}).get("distill", {})
    objective, temperature = (
        (distill.get("objective") or [None])[0],
        (distill.get("temperature") or [None])[0],
    )
    where = "role = 'student'"
    where += f" AND objective = '{objective}'" if objective else " AND objective IS NULL"
    where += (
        f" AND temperature = {float(temperature)}" if temperature is not None else " AND temperature IS NULL"
    )
    return run_ids(url, job_id, where + " AND id IN (SELECT run_id FROM scan_results)")


def test_overlap_page_on_smoke(open_page, smoke_url):
    job_id = int(sql(smoke_url, "SELECT MAX(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(smoke_url, "overlap", job_id)
    regions = frame_with(at, "region", "count")
    teacher = run_ids(smoke_url, job_id, "role = 'teacher'")
    baseline = run_ids(smoke_url, job_id, "role = 'baseline'")
    want = venn_regions(smoke_url, teacher, baseline, default_students(smoke_url, job_id))
    assert dict(zip(regions["region"], regions["count"], strict=True)) == {
        r: want.get(r, 0) for r in ("A", "B", "C", "AB", "AC", "BC", "ABC")
    }
    n = int(sql(smoke_url, f"SELECT COUNT(*) AS n FROM memorization_rates WHERE job_id = {job_id}")["n"][0])
    assert frame_with(at, "run_a", "run_b", "n_both").shape[0] == n * (n - 1)


# ----------------------------------------------------------------------------------------- easy page
@pytest.mark.parametrize("db", ["smoke", "synthetic"])
def test_easy_page_counts_easy_examples(open_page, smoke_url, synthetic_url, db):
    url = smoke_url if db == "smoke" else synthetic_url
    job_id = int(sql(url, "SELECT MIN(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(url, "easy", job_id)
    n = int(sql(url, f"SELECT COUNT(*) AS n FROM easy_examples WHERE job_id = {job_id}")["n"][0])
    assert metric(at, "easy-to-memorize examples") == f"{n:,}"


def test_easy_page_cross_family_pairs(open_page, synthetic_url, synthetic):
    url = synthetic_url
    a = synthetic["runs"][("bench", "teacher", None, None, 0)]
    b = synthetic["runs"][("bench-olmo", "teacher", None, None, 0)]
    at = open_page(url, "easy", synthetic["jobs"]["bench"], fam_a=a, fam_b=b)
    want = sql(
        url,
        f"SELECT COUNT(*) AS n FROM scan_results x JOIN scan_results y ON y.example_id = x.example_id "
        f"WHERE x.run_id = {a} AND y.run_id = {b} AND (x.memorized OR y.memorized)",
    )
    assert f"{int(want['n'][0]):,} examples memorized by A or B" in texts(at)
    r = metric(at, "Pearson r of zlib bits per token between the two tokenizations")
    assert r != "–" and float(r) > 0.9


# ----------------------------------------------------------------------------------- membership page
def test_membership_page_on_smoke(open_page, smoke_url, synthetic_url):
    job_id = int(sql(smoke_url, "SELECT MAX(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(smoke_url, "membership", job_id)
    summary = frame_with(at, "attack", "auc_mean", "tpr_1pct_mean")
    want = sql(smoke_url, f"SELECT run_id, attack, auc FROM membership_inference WHERE job_id = {job_id}")
    assert {"teacher", "baseline", "student"} <= set(summary["role"])
    per_run = frame_with(at, "run_id", "attack", "auc", "n_nonmembers")
    assert sorted(zip(per_run.run_id, per_run.attack, strict=True)) == sorted(
        zip(want.run_id, want.attack, strict=True)
    )
    assert frame_with(at, "n", "p", "rate").shape[0] > 0
    at = open_page(
        synthetic_url, "membership", int(sql(synthetic_url, "SELECT MIN(id) AS j FROM jobs")["j"][0])
    )
    assert "has no held-out scores" in texts(at)  # the synthetic study holds nothing out


# ----------------------------------------------------------------------------------- classifier page
def test_classifier_page_tables_roc_and_filtering(open_page, synthetic_url, synthetic):
    url, job_id = synthetic_url, synthetic["jobs"]["bench"]
    at = open_page(url, "classifier", job_id)
    run = synthetic["classifier_run"]
    summary = sql(url, f"SELECT kind, name, mean, std FROM classifier_summary WHERE run_id = {run}")
    shown = pd.concat([d for d in frames(at) if "mean ± std" in d.columns])
    for r in summary.itertuples():
        assert f"{r.mean:.4f} ± {r.std:.4f}" in set(shown.loc[shown["name"] == r.name, "mean ± std"]), r.name
    assert re.search(r"ROC of the stored risk scores\*\* \(AUC 0\.\d{3}\)", texts(at))
    excluded = int(
        sql(url, f"SELECT COUNT(*) AS n FROM example_risk WHERE run_id = {run} AND predicted")["n"][0]
    )
    assert metric(at, "excluded examples") == f"{excluded:,}"
    student = run_ids(url, job_id, "role = 'student' AND temperature = 2.0")
    filtered = run_ids(url, job_id, "role = 'student_filtered'")
    before, after = (sum(venn_regions(url, s, [-1], [-2]).values()) for s in (student, filtered))
    assert metric(at, "memorized before → after") == f"{before:,} → {after:,}"


def test_classifier_page_on_smoke(open_page, smoke_url):
    job_id = int(sql(smoke_url, "SELECT MAX(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(smoke_url, "classifier", job_id)
    runs = sql(
        smoke_url,
        f"SELECT DISTINCT c.run_id FROM classifier_trials c JOIN runs r ON r.id = c.run_id "
        f"WHERE r.job_id = {job_id} ORDER BY 1",
    )
    if runs.empty:
        assert "has no classifier run" in texts(at)
        return
    run = int(runs["run_id"].iloc[-1])
    summary = sql(smoke_url, f"SELECT kind, name, mean, std FROM classifier_summary WHERE run_id = {run}")
    shown = pd.concat([d for d in frames(at) if "mean ± std" in d.columns])
    for r in summary.itertuples():
        std = "" if r.std is None or r.std != r.std else f" ± {r.std:.4f}"
        assert f"{r.mean:.4f}{std}" in set(shown.loc[shown["name"] == r.name, "mean ± std"]), r.name
    assert f"classifier run #{run}" in texts(at)


# ------------------------------------------------------------------------------------ mechanism page
@pytest.mark.parametrize("db", ["smoke", "synthetic"])
def test_mechanism_page_counts_categories(open_page, smoke_url, synthetic_url, db):
    url = smoke_url if db == "smoke" else synthetic_url
    job_id = int(sql(url, "SELECT MIN(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(url, "mechanism", job_id)
    student = default_students(url, job_id)
    baseline = run_ids(url, job_id, "role = 'baseline'")
    teacher = run_ids(url, job_id, "role = 'teacher'")
    v = venn_regions(url, baseline, student, [-1])
    both, b_only, s_only = v.get("AB", 0), v.get("A", 0), v.get("B", 0)
    if both + b_only + s_only == 0:
        assert "Neither the baseline nor the student memorized an example." in texts(at)
    else:
        assert metric(at, "baseline & student") == f"{both:,}"
        assert metric(at, "baseline only") == f"{b_only:,}"
        assert metric(at, "student only") == f"{s_only:,}"
    means = [d for d in frames(at) if "suffix_entropy_std" in d.columns]
    t = venn_regions(url, teacher, baseline, student)
    n_left = t.get("AB", 0)
    n_right = sum(t.get(r, 0) for r in ("C", "AC", "BC", "ABC"))
    if n_left + n_right:
        got = means[0].groupby("subset")["examples"].max().to_dict()
        assert got.get("teacher_baseline_not_student", 0) == n_left
        assert got.get("student_memorized", 0) == n_right


# ----------------------------------------------------------------------------------- example browser
def test_example_browser_highlights_first_mismatching_token(open_page, synthetic_url, synthetic):
    url, job_id = synthetic_url, synthetic["jobs"]["bench"]
    row = sql(
        url,
        f"""SELECT g.run_id, g.example_id, g.text, s.match_len FROM greedy_continuations g
        JOIN scan_results s ON s.run_id = g.run_id AND s.example_id = g.example_id
        JOIN runs r ON r.id = g.run_id WHERE r.job_id = {job_id} AND NOT s.memorized
        ORDER BY g.example_id, g.run_id LIMIT 1""",
    ).iloc[0]
    at = open_page(url, "examples", job_id, ex_id=str(int(row.example_id)))
    hits = frame_with(at, "example_id", "text", "models_memorized")
    assert list(hits["example_id"]) == [row.example_id]
    models = frame_with(at, "run_id", "match_len", "memorized", "suffix_logprob")
    want = sql(
        url,
        f"SELECT s.run_id, s.match_len, s.memorized FROM scan_results s JOIN runs r ON r.id = s.run_id "
        f"WHERE r.job_id = {job_id} AND s.example_id = {int(row.example_id)} ORDER BY s.run_id",
    )
    m = want.merge(models, on="run_id", suffixes=("", "_app"))
    assert len(m) == len(want) and (m["match_len"] == m["match_len_app"]).all()
    # the continuation: the first match_len words green, the next one red
    words = row.text.split(" ")
    k = int(row.match_len)
    shown = [md.value for md in at.markdown if f"(#{row.run_id}) · match {k}/" in md.value]
    assert shown, [md.value[:80] for md in at.markdown]
    html = shown[0]
    assert f"first mismatch at suffix token {k}" in html
    mismatch = re.search(r"data-kdp='mismatch'>([^<]*)<", html).group(1)
    assert mismatch.strip() == words[k]
    matched = re.search(r"background:#e6f4ea'>([^<]*)<", html).group(1)
    assert matched.split() == words[:k]
    truth = sql(
        url, f"SELECT suffix_text FROM examples WHERE example_id = {int(row.example_id)} AND dataset_id = 1"
    )
    assert f"true token &#x27; {truth['suffix_text'][0].split(' ')[k]}&#x27;" in html


def test_example_browser_searches_text_and_lists_most_memorized(open_page, synthetic_url, synthetic):
    url, job_id = synthetic_url, synthetic["jobs"]["bench"]
    text = sql(url, "SELECT text FROM examples WHERE dataset_id = 1 AND example_id = 7")["text"][0]
    phrase = " ".join(text.split(" ")[3:6])
    at = open_page(url, "examples", job_id, ex_text=phrase.upper())
    hits = frame_with(at, "example_id", "text")
    want = sql(
        url, f"SELECT example_id FROM examples WHERE dataset_id = 1 AND text LIKE '%{phrase}%' ORDER BY 1"
    )
    assert list(hits["example_id"]) == list(want["example_id"])[:50] and 7 in set(hits["example_id"])
    at = open_page(url, "examples", job_id)
    top = frame_with(at, "example_id", "models_memorized")
    want = sql(
        url,
        f"SELECT MAX(n) AS n FROM (SELECT example_id, COUNT(*) AS n FROM memorized_examples m "
        f"JOIN runs r ON r.id = m.run_id WHERE r.job_id = {job_id} GROUP BY example_id) t",
    )
    assert int(top["models_memorized"].iloc[0]) == int(want["n"][0])


def test_example_browser_on_smoke(open_page, smoke_url):
    job_id = int(sql(smoke_url, "SELECT MAX(id) AS j FROM jobs")["j"].iloc[0])
    at = open_page(smoke_url, "examples", job_id, ex_id="3")
    models = frame_with(at, "run_id", "match_len", "memorized")
    want = sql(
        smoke_url,
        f"SELECT s.run_id, s.match_len FROM scan_results s JOIN runs r ON r.id = s.run_id "
        f"WHERE r.job_id = {job_id} AND s.example_id = 3 ORDER BY s.run_id",
    )
    assert sorted(zip(models["run_id"], models["match_len"], strict=True)) == sorted(
        zip(want["run_id"], want["match_len"], strict=True)
    )
    prefix = sql(smoke_url, "SELECT prefix_text FROM examples WHERE example_id = 3 AND split = 'train'")
    import html as h

    assert h.escape(prefix["prefix_text"][0]) in texts(at)


def test_example_browser_bad_id(open_page, synthetic_url):
    at = open_page(synthetic_url, "examples", 1, ex_id="abc")
    assert "Example ids are whole numbers" in texts(at)


# --------------------------------------------------------------------------------------------- PostgreSQL
@pytest.mark.parametrize("page", list(PAGES))
def test_page_on_postgresql(open_page, pg_synthetic_url, page):
    at = open_page(pg_synthetic_url, page, 1)
    if page == "memorization":
        got = frame_with(at, "run_id", "memorized")
        want = sql(pg_synthetic_url, "SELECT run_id, memorized FROM memorization_rates WHERE job_id = 1")
        assert dict(zip(got.run_id, got.memorized.astype(int), strict=True)) == dict(
            zip(want.run_id, want.memorized.astype(int), strict=True)
        )
    assert not at.warning, [w.value for w in at.warning]
