"""kdplatform.analysis: the dashboard's own queries agree with the documented views they shortcut,
its pure helpers, and its engine waiting out a job's write lock instead of failing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest

from kdplatform import sql
from kdplatform.analysis import (
    browser,
    classifier_results,
    features,
    groups,
    jobs,
    lineage,
    overlap,
    rates,
    reading,
)


@pytest.fixture(scope="module")
def eng(synthetic_url):
    return reading.engine(synthetic_url)


# ------------------------------------------------------------------------- the same numbers as the views
def test_scanned_equals_scanned_runs_view(eng, synthetic):
    for job_id in synthetic["jobs"].values():
        fast = groups.scanned(eng, job_id).drop(columns=["job"])
        view = groups.scanned_runs(eng, job_id)
        cols = ["run_id", "dataset_id", "role", "seed", "examples", "memorized"]
        pd.testing.assert_frame_equal(
            fast[cols].sort_values("run_id").reset_index(drop=True),
            view[cols].sort_values("run_id").reset_index(drop=True),
            check_dtype=False,
        )


def test_overlap_matrix_equals_run_overlap_view(eng, synthetic):
    job_id = synthetic["jobs"]["bench"]
    both, jac = overlap.overlap_matrix(eng, job_id), overlap.overlap_matrix(eng, job_id, "jaccard")
    ids = [int(label.rsplit("#", 1)[1].rstrip(")")) for label in both.index]
    pos = {r: i for i, r in enumerate(ids)}
    for r in overlap.overlap(eng, job_id).itertuples():
        assert both.iloc[pos[r.run_a], pos[r.run_b]] == r.n_both
        assert np.isclose(jac.iloc[pos[r.run_a], pos[r.run_b]], r.jaccard, equal_nan=True)
    memorized = rates.rates(eng, job_id).set_index("run_id")["memorized"]
    assert [both.iloc[i, i] for i in range(len(ids))] == [memorized[r] for r in ids]


def test_feature_sample_and_kld_categories_equal_example_features(eng, synthetic):
    job_id = synthetic["jobs"]["bench"]
    group = groups.student_group(eng, job_id)
    view = features.features(eng, job_id)
    sample = features.feature_sample(eng, job_id, group, sample=100)
    assert set(view.loc[view["student_memorized"], "example_id"]) <= set(sample["example_id"])
    m = sample.merge(view, on="example_id", suffixes=("", "_view"))
    assert len(m) == len(sample)
    for col in ("zlib_entropy", "baseline_ppl", "teacher_baseline_kld", "teacher_ppl", "student_memorized"):
        assert np.allclose(m[col].astype(float), m[f"{col}_view"].astype(float)), col
    cats = features.kld_categories(eng, job_id, group)
    want = view[(view["n_baseline_memorized"] > 0) | view["student_memorized"]]
    m = cats.merge(want, on="example_id", suffixes=("", "_view"))
    assert len(m) == len(cats) == len(want)
    expected = np.where(
        (m["n_baseline_memorized"] > 0) & m["student_memorized"],
        "baseline & student",
        np.where(m["n_baseline_memorized"] > 0, "baseline only", "student only"),
    )
    assert (m["category"] == expected).all()
    assert np.allclose(m["teacher_student_kld"], m["teacher_student_kld_view"])
    assert np.allclose(m["baseline_ppl"], m["baseline_ppl_view"])


def test_easy_scatter_has_every_easy_example_and_a_sample(eng, synthetic):
    job_id = synthetic["jobs"]["bench"]
    df = features.easy_scatter(eng, job_id, sample=100)
    view = features.easy_examples(eng, job_id)
    easy = df[df["easy"]].merge(view, on="example_id", suffixes=("", "_view"))
    assert len(easy) == len(view) == int(df["easy"].sum()) > 0
    assert np.allclose(easy["baseline_ppl"], easy["baseline_ppl_view"])
    others = df[~df["easy"]]
    assert (others["example_id"] % df.attrs["step"] == 0).all() and df.attrs["step"] == 6
    assert not set(others["example_id"]) & set(view["example_id"])


def test_risk_counts_and_roc(eng, synthetic):
    run = classifier_results.classifier_run(eng, synthetic["jobs"]["bench"])
    assert run["run_id"] == synthetic["classifier_run"] and run["group"].temperature == 2.0
    counts = classifier_results.risk_counts(eng, run["run_id"], run["group"])
    pos = overlap.memorized_ids(eng, run["group"].run_ids)
    assert int(counts["positives"].sum()) == len(pos)
    assert int(counts[["positives", "negatives"]].to_numpy().sum()) == 600
    roc, auc = classifier_results.roc_curve(counts)
    assert roc["fpr"].iloc[-1] == roc["tpr"].iloc[-1] == 1.0 and 0.5 < auc <= 1.0


def test_roc_curve_pure():
    counts = pd.DataFrame({"risk_bin": [0.9, 0.5, 0.1], "positives": [2, 1, 0], "negatives": [0, 1, 2]})
    roc, auc = classifier_results.roc_curve(counts)
    assert list(roc["tpr"]) == [0, 2 / 3, 1, 1] and list(roc["fpr"]) == [0, 0, 1 / 3, 1]
    assert auc == pytest.approx(2 / 3 * 0 + (1 / 3) * (2 / 3 + 1) / 2 + (2 / 3) * 1)
    empty, nan = classifier_results.roc_curve(counts.assign(positives=0))
    assert empty.empty and nan != nan


def test_run_sets_pool_seeds(eng, synthetic):
    sets = overlap.run_sets(eng, synthetic["jobs"]["bench"])
    pooled = sets[sets["pooled"]]
    assert set(map(len, pooled["run_ids"])) == {3}  # baseline and T=2 students
    assert len(sets[~sets["pooled"]]) == 11
    everyone = overlap.run_sets(eng)
    assert everyone["label"].str.startswith("bench-olmo: ").any()


def test_lineage_graph(eng, synthetic):
    job_id = synthetic["jobs"]["bench"]
    runs, edges, data = jobs.runs(eng, job_id), lineage.lineage(eng, job_id), lineage.datasets(eng, job_id)
    dot = lineage.lineage_dot(runs, edges, data)
    teacher = synthetic["runs"][("bench", "teacher", None, None, 0)]
    hard = synthetic["runs"][("bench", "student_hard", None, None, 0)]
    assert f"r{teacher} -> r{synthetic['runs'][('bench', 'student', 'forward_kl', 2.0, 0)]}" in dot
    gen = int(runs.loc[runs["kind"] == "generate", "run_id"].iloc[0])
    assert f"r{teacher} -> r{gen}" in dot and f"r{gen} -> d2" in dot and f"d2 -> r{hard}" in dot
    assert "scan/" not in dot and "scan/" in lineage.lineage_dot(runs, edges, data, scans=True)


def test_checkpoints_table1(eng, synthetic):
    final = lineage.checkpoints(eng, synthetic["jobs"]["bench"], final_only=True)
    assert len(final) == 11 and final["is_final"].all() and (final["epoch"] == 3).all()
    assert list(final["role"][:2]) == ["teacher", "baseline"]


# ------------------------------------------------------------------------------------ example browser
def test_token_pieces_and_first_mismatch():
    vocab = {1: " the", 2: " cat", 3: " sat", 4: "!"}

    def decode(ids):
        return "".join(vocab[i] for i in ids)

    assert browser.token_pieces([1, 2, 4], decode) == [" the", " cat", "!"]
    assert browser.first_mismatch([1, 2, 3], [1, 2, 4]) == 2
    assert browser.first_mismatch([1, 2, 3], [1, 2, 3]) == 3
    ex = {"prefix_len": 2, "suffix_text": " cat sat"}
    parts = browser.continuation_parts(ex, "2 4", " cat!", 1, decode, [9, 9, 2, 3])
    assert parts == {
        "matched": " cat",
        "mismatch": "!",
        "rest": "",
        "expected": " sat",
        "index": 1,
        "exact": True,
    }


def test_continuation_parts_compare_within_the_memorization_window():
    """With data.train_len the stored window runs past seq_len: a full match has no 'true next token'."""
    vocab = {1: " the", 2: " cat", 3: " sat"}

    def decode(ids):
        return "".join(vocab[i] for i in ids)

    ex = {"prefix_len": 2, "seq_len": 4, "suffix_text": " cat sat"}
    parts = browser.continuation_parts(ex, "2 3", " cat sat", 2, decode, [9, 9, 2, 3, 1, 1])
    assert (parts["matched"], parts["mismatch"], parts["expected"], parts["index"]) == (
        " cat sat",
        "",
        None,
        2,
    )


def test_continuation_parts_without_tokenizer_splits_on_characters():
    ex = {"prefix_len": 4, "suffix_text": "alpha beta gamma delta"}
    parts = browser.continuation_parts(ex, "5 6 7 8", "alpha beta gamut delta", 2, None, None)
    assert (parts["matched"], parts["mismatch"], parts["rest"]) == ("alpha beta ", "gamut", " delta")
    assert parts["expected"] == "gamma" and not parts["exact"]
    assert browser.continuation_parts(ex, None, float("nan"), 0, None, None) is None


def test_search_escapes_like_wildcards(eng, synthetic):
    job_id = synthetic["jobs"]["bench"]
    assert browser.search_examples(eng, job_id, text="%").empty
    assert browser.search_examples(eng, job_id, text="_").empty
    assert len(browser.search_examples(eng, job_id, text=" ", limit=7)) == 7


def test_example_detail_reads_tokens_when_files_exist(eng, synthetic):
    d = browser.example_detail(eng, synthetic["jobs"]["bench"], 5)
    ex = d["example"]
    tokens = browser.true_tokens(ex["path"], 5)
    decode = browser.token_decoder(ex["path"])
    assert len(tokens) == ex["seq_len"] and decode(tokens[ex["prefix_len"] :]) == ex["suffix_text"]
    assert browser.true_tokens("/nonexistent", 5) is None and browser.token_decoder("/nonexistent") is None
    assert browser.example_detail(eng, synthetic["jobs"]["bench"], 10**9) is None


# ---------------------------------------------------------------------------------- a job is writing
HOLD = textwrap.dedent(
    """
    import sys, time, duckdb
    con = duckdb.connect(sys.argv[1])
    con.execute("BEGIN")
    con.execute("UPDATE jobs SET spec_hash = spec_hash")
    print("locked", flush=True)
    time.sleep(float(sys.argv[2]))
    con.execute("COMMIT")
    con.close()
    """
)


def hold_write_lock(path: str, seconds: float) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLD, path, str(seconds)], stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_pages_wait_while_a_job_writes(synthetic_url, tmp_path):
    import shutil

    path = tmp_path / "busy.duckdb"
    shutil.copy(synthetic_url.removeprefix("duckdb:///"), path)
    url = f"duckdb:///{path}"
    writer = hold_write_lock(str(path), 1.5)
    t = time.monotonic()
    assert not jobs.jobs(reading.engine(url, wait_s=20)).empty
    assert time.monotonic() - t > 0.5  # it waited for the writer rather than failing
    assert sql.console(url, "SELECT COUNT(*) AS n FROM runs")["n"][0] > 0
    writer.wait(timeout=30)
    writer = hold_write_lock(str(path), 3)
    try:
        with pytest.raises(reading.DatabaseUnavailable, match="busy: a job is writing"):
            jobs.jobs(reading.engine(url, wait_s=0.5))
    finally:
        writer.wait(timeout=30)


def test_page_says_busy_instead_of_failing(open_page, synthetic_url, tmp_path, monkeypatch):
    import shutil

    path = tmp_path / "busy-page.duckdb"
    shutil.copy(synthetic_url.removeprefix("duckdb:///"), path)
    monkeypatch.setenv("KDP_DB_WAIT_S", "0.3")
    writer = hold_write_lock(str(path), 600)  # held until the page is drawn, however slow the machine
    try:
        at = open_page(f"duckdb:///{path}", "memorization")
        assert any("busy" in w.value for w in at.warning), [w.value for w in at.warning]
    finally:
        writer.terminate()
        writer.wait(timeout=30)


def test_app_imports_no_torch_transformers_or_training_code():
    """DESIGN.md's wall: app/ calls read-only library queries; importing its modules and every page's
    imports loads no torch, transformers, training, pipeline or model code."""
    import ast
    from pathlib import Path

    app = Path(__file__).resolve().parents[2] / "app"
    banned = ("torch", "transformers", "accelerate", "kdplatform.train", "kdplatform.pipeline",
              "kdplatform.models", "kdplatform.memorization", "kdplatform.store.db")  # fmt: skip
    modules = set()
    for path in app.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules |= {a.name for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                modules.add(node.module)
    assert not [m for m in modules if m.startswith(banned)], modules
    code = (
        f"import sys; sys.path.insert(0, {str(app)!r}); import common, plots; "
        + "; ".join(f"import {m}" for m in sorted(modules) if m not in ("common", "plots", "__future__"))
        + "; bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'transformers', 'accelerate')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, timeout=120)
