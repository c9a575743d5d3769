"""The cross-job views, the cross-scan and the scale hierarchy on the CPU analogue (conftest.py), each
checked against pandas (or torch) computations on the same rows."""

from __future__ import annotations

import hashlib
import json
import zlib
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from kdplatform.analysis import crossjob
from kdplatform.analysis.reading import read
from kdplatform.pipeline.errors import StageFailed
from kdplatform.store.schema import InputKind, StageKind


@pytest.fixture(scope="module")
def rows(families):
    """The raw rows every check recomputes from: examples, runs, models and members' scan results."""
    url = families.url
    examples = read(
        url,
        "SELECT dataset_id, example_id, split, text, prefix_text, suffix_text, text_hash, "
        "zlib_bits_per_token FROM examples",
    )
    runs = read(
        url, "SELECT id AS run_id, job_id, kind, role, seed, status, model_id, dataset_id, config FROM runs"
    )
    models = read(url, "SELECT id AS model_id, family, name, n_params FROM models")
    scans = read(url, "SELECT run_id, scan_run_id, dataset_id, example_id, memorized, ppl FROM scan_results")
    train = examples[examples.split == "train"]
    scans = scans.merge(train[["dataset_id", "example_id", "text_hash"]], on=["dataset_id", "example_id"])
    done = runs[runs.status == "done"]
    scans = scans[scans.run_id.isin(done.run_id) & scans.scan_run_id.isin(done.run_id)]
    return {"examples": examples, "train": train, "runs": runs, "models": models, "scans": scans}


def test_neox_stopped_at_a_cross_scan_then_ran_only_its_cross_scans(families):
    assert isinstance(families.first_error, StageFailed)
    assert "no job 'llama'" in str(families.first_error) and "run it first" in str(families.first_error)
    ran = [line.split()[2] for line in families.rerun_said if line.startswith("[run ]")]
    assert ran == ["cross_scan/llama/train/baseline/s0", "cross_scan/qwen2/train/baseline/s0"]
    assert any(line.startswith("[skip] train/teacher") for line in families.rerun_said)


def test_every_family_memorized_and_each_job_has_its_own_tokenizer(families, rows):
    mem = rows["scans"].merge(rows["runs"], on="run_id").groupby("job_id").memorized.sum()
    assert (mem > 0).all() and len(mem) == 4
    datasets = read(families.url, "SELECT id, tokenizer, vocab_size FROM datasets")
    assert datasets.vocab_size.nunique() == 3, "three tokenizers; neox-small shares neox's dataset"


def test_text_hash_is_the_md5_of_the_text(rows):
    ex = rows["examples"]
    assert len(ex) and ex.text_hash.tolist() == [hashlib.md5(t.encode()).hexdigest() for t in ex.text]


def _pairs(rows) -> pd.DataFrame:
    """text_overlap recomputed: every ordered pair of scanned runs whose datasets share texts of D."""
    s, train = rows["scans"], rows["train"]
    texts = train.groupby("dataset_id").text_hash.apply(set)
    mem = s[s.memorized.astype(bool)].groupby("run_id").text_hash.apply(set)
    ds = s.groupby("run_id").dataset_id.first()
    out = []
    for a, da in ds.items():
        for b, db in ds.items():
            shared = texts[da] & texts[db]
            if a == b or not shared:
                continue
            ma, mb = mem.get(a, set()) & shared, mem.get(b, set()) & shared
            out.append(
                {
                    "run_a": a,
                    "run_b": b,
                    "n_shared": len(shared),
                    "n_a": len(ma),
                    "n_b": len(mb),
                    "n_both": len(ma & mb),
                }
            )
    return pd.DataFrame(out).sort_values(["run_a", "run_b"]).reset_index(drop=True)


def test_text_overlap_matches_pandas(families, rows):
    view = read(
        families.url,
        "SELECT run_a, run_b, n_shared, n_a, n_b, n_both, jaccard, share_of_a_in_b "
        "FROM text_overlap ORDER BY run_a, run_b",
    )
    want = _pairs(rows)
    pd.testing.assert_frame_equal(view[want.columns].astype("int64"), want.astype("int64"))
    share = want.n_both / want.n_a.replace(0, np.nan)
    np.testing.assert_allclose(view.share_of_a_in_b.astype(float), share, equal_nan=True)
    union = (want.n_a + want.n_b - want.n_both).replace(0, np.nan)
    np.testing.assert_allclose(view.jaccard.astype(float), want.n_both / union, equal_nan=True)
    jobs = rows["runs"].set_index("run_id").job_id
    across = view[view.run_a.map(jobs) != view.run_b.map(jobs)]
    assert len(across) and len(crossjob.text_overlap(families.url)) == len(across)


def test_scale_hierarchy_matches_pandas(families, rows):
    info = rows["runs"].merge(rows["models"], on="model_id").set_index("run_id")
    want = _pairs(rows)
    fam_a, fam_b = want.run_a.map(info.family), want.run_b.map(info.family)
    want = want[(fam_a == fam_b) & (want.run_a.map(info.n_params) < want.run_b.map(info.n_params))]
    view = crossjob.scale_hierarchy(families.url).sort_values(["run_small", "run_large"])
    got = view[["run_small", "run_large", "n_small", "n_large", "n_both"]].to_numpy().tolist()
    assert got == want[["run_a", "run_b", "n_a", "n_b", "n_both"]].to_numpy().tolist()
    jobs = set(zip(view.job_name_small, view.job_name_large, strict=True))
    assert ("neox-small", "neox") in jobs, "the hierarchy across jobs on one dataset (Pythia-1B in 1.4B)"


def _cross_runs(rows) -> pd.DataFrame:
    r = rows["runs"]
    return r[(r.kind == StageKind.CROSS_SCAN) & (r.status == "done")]


def test_cross_scans_match_an_independent_scan_of_the_same_texts(families, rows):
    """Each cross-scan row again: the source text tokenized by the scanning job's tokenizer, memorized by
    float32 generate(), perplexity by a plain forward pass, zlib bits per token of the same bytes."""
    import torch

    from kdplatform.data.examples import load_tokenizer
    from kdplatform.memorization.reference import greedy_reference
    from kdplatform.models import load_frozen

    results = read(families.url, "SELECT * FROM cross_scan_results")
    cross = _cross_runs(rows)
    assert len(cross) == 6 and set(results.scan_run_id) == set(cross.run_id)
    datasets = read(families.url, "SELECT id, path, seq_len, prefix_len FROM datasets").set_index("id")
    for c in cross.itertuples():
        cfg = json.loads(c.config)
        model_run = rows["runs"][
            (rows["runs"].job_id == c.job_id) & (rows["runs"].kind == "train") & (rows["runs"].role == c.role)
        ].iloc[0]
        own = datasets.loc[
            rows["runs"][(rows["runs"].job_id == c.job_id) & (rows["runs"].kind == "data")].dataset_id.iloc[0]
        ]
        tok = load_tokenizer(Path(own.path) / "tokenizer")
        src = rows["train"][rows["train"].dataset_id == c.dataset_id].sort_values("example_id")
        if cfg["examples"] == "memorized":
            source_job = _job_id(families, cfg["job"])
            s = rows["scans"].merge(rows["runs"][["run_id", "job_id"]], on="run_id")
            chosen = s[(s.job_id == source_job) & s.memorized.astype(bool) & (s.dataset_id == c.dataset_id)]
            src = src[src.example_id.isin(chosen.example_id)]
        ids = [tok(t, add_special_tokens=False)["input_ids"] for t in src.text]
        keep = [i for i, x in enumerate(ids) if len(x) >= own.seq_len]
        got = results[results.scan_run_id == c.run_id].sort_values("example_id")
        assert got.example_id.tolist() == src.example_id.iloc[keep].tolist()
        assert (got.run_id == model_run.run_id).all() and (
            got.text_hash.tolist() == src.text_hash.iloc[keep].tolist()
        )
        assert len(keep) > 0.8 * len(ids), "texts longer than the window: most hold seq_len tokens"
        tokens = torch.tensor([ids[i][: own.seq_len] for i in keep])
        ckpt = Path(
            families.runners[_job_name(families, c.job_id)].layout.checkpoint_dir(
                f"train/{c.role}" + ("" if c.role == "teacher" else f"/s{c.seed}")
            )
        )
        model = load_frozen(ckpt, dtype=torch.float32)
        ref = greedy_reference(model, tokens, int(own.prefix_len))
        np.testing.assert_array_equal(got.memorized.to_numpy(bool), ref.memorized)
        with torch.no_grad():
            logp = torch.log_softmax(model(tokens).logits[:, :-1].float(), -1)
        nll = -logp.gather(-1, tokens[:, 1:, None])[..., 0].mean(1)
        np.testing.assert_allclose(got.ppl.to_numpy(), torch.exp(nll).numpy(), rtol=1e-4)
        mem = (src.prefix_text + src.suffix_text).iloc[keep]
        n = [len(tok(t, add_special_tokens=False)["input_ids"]) for t in mem]
        bits = [8.0 * len(zlib.compress(t.encode())) / k for t, k in zip(mem, n, strict=True)]
        np.testing.assert_allclose(got.zlib_bits_per_token.to_numpy(), bits)
        assert got.n_tokens.tolist() == n


def _job_name(families, job_id: int) -> str:
    return read(families.url, "SELECT name FROM jobs WHERE id = :j", j=job_id).name.iloc[0]


def _job_id(families, name: str) -> int:
    return int(read(families.url, "SELECT id FROM jobs WHERE name = :n", n=name).id.iloc[0])


def test_cross_scans_record_their_lineage(families, rows):
    edges = read(families.url, "SELECT run_id, kind, dataset_id, input_run_id, checkpoint_id FROM run_inputs")
    r = rows["runs"]
    for c in _cross_runs(rows).itertuples():
        e = edges[edges.run_id == c.run_id]
        model = e[e.kind == InputKind.MODEL]
        assert len(model) == 1 and model.checkpoint_id.notna().all()
        assert r.set_index("run_id").job_id[int(model.input_run_id.iloc[0])] == c.job_id
        assert e[e.kind == InputKind.DATASET].dataset_id.tolist() == [c.dataset_id]
        source_job = _job_id(families, json.loads(c.config)["job"])
        want = r[(r.job_id == source_job) & (r.kind == "scan") & (r.status == "done")].run_id
        assert sorted(e[e.kind == InputKind.SCAN].input_run_id.astype(int)) == sorted(want)


def _examples_frame(families, rows) -> pd.DataFrame:
    """cross_scan_examples recomputed: each cross-scan row beside every source scan its lineage names."""
    res = read(families.url, "SELECT * FROM cross_scan_results")
    edges = read(
        families.url,
        "SELECT run_id AS scan_run_id, input_run_id AS source_scan FROM run_inputs WHERE kind = 'scan'",
    )
    s = rows["scans"].rename(
        columns={
            "scan_run_id": "source_scan",
            "run_id": "source_run_id",
            "memorized": "source_memorized",
            "ppl": "source_ppl",
        }
    )
    out = res.merge(edges, on="scan_run_id").merge(
        s[["source_scan", "source_run_id", "dataset_id", "example_id", "source_memorized", "source_ppl"]],
        on=["source_scan", "dataset_id", "example_id"],
    )
    return out.rename(columns={"scan_run_id": "cross_scan_run_id"})


def test_cross_scan_examples_and_overlap_match_pandas(families, rows):
    want = _examples_frame(families, rows)
    key = ["cross_scan_run_id", "source_run_id", "example_id"]
    view = read(families.url, "SELECT * FROM cross_scan_examples").sort_values(key).reset_index(drop=True)
    want = want.sort_values(key).reset_index(drop=True)
    assert view[key].to_numpy().tolist() == want[key].to_numpy().tolist()
    for col in ("memorized", "source_memorized"):
        assert view[col].astype(bool).tolist() == want[col].astype(bool).tolist()
    np.testing.assert_allclose(view.source_ppl, want.source_ppl)
    np.testing.assert_allclose(view.ppl, want.ppl)
    g = want.assign(sm=want.source_memorized.astype(bool), m=want.memorized.astype(bool))
    g = g.assign(b=g.sm & g.m).groupby(["cross_scan_run_id", "source_run_id"])
    counts = pd.DataFrame(
        {"n_texts": g.size(), "n_source": g.sm.sum(), "n_scanned": g.m.sum(), "n_both": g.b.sum()}
    ).reset_index()
    overlap = crossjob.cross_scans(families.url).sort_values(["cross_scan_run_id", "source_run_id"])
    cols = ["cross_scan_run_id", "source_run_id", "n_texts", "n_source", "n_scanned", "n_both"]
    assert overlap[cols].to_numpy().tolist() == counts[cols].to_numpy().tolist()
    assert overlap.n_source.sum() > 0, "the other families memorized some of the scanned texts"
    one = overlap[overlap.n_source > 0].iloc[0]
    points = crossjob.cross_ppl_points(families.url, int(one.cross_scan_run_id), int(one.source_run_id))
    assert len(points) == one.n_source + one.n_scanned - one.n_both
    assert set(points.memorized_by) <= {"source", "scanning", "both"}


def test_zlib_correlation_matches_pandas(families, rows):
    res = read(
        families.url,
        "SELECT scan_run_id, dataset_id, example_id, zlib_bits_per_token FROM cross_scan_results",
    )
    src = rows["train"][["dataset_id", "example_id", "zlib_bits_per_token"]]
    joined = res.merge(src, on=["dataset_id", "example_id"], suffixes=("", "_source"))
    view = crossjob.zlib_correlations(families.url).set_index("cross_scan_run_id")
    for run, g in joined.groupby("scan_run_id"):
        assert view.n_texts[run] == len(g)
        np.testing.assert_allclose(
            view.pearson_r[run], g.zlib_bits_per_token.corr(g.zlib_bits_per_token_source)
        )
        np.testing.assert_allclose(view.mean_bits[run], g.zlib_bits_per_token.mean())
    assert view.tokenizer.ne(view.source_tokenizer).all()


def test_report_section_gives_the_views_numbers(families):
    from kdplatform.analysis.report import render_report

    md = render_report(families.url, "neox")
    section = md.split("## Across jobs on the same texts", 1)[1]
    assert "### Scale hierarchy" in section and "### Other families on the same texts" in section
    assert "### zlib bits per token under two tokenizers" in section
    for r in crossjob.zlib_correlations(families.url, _job_id(families, "neox")).itertuples():
        assert f"| {r.n_texts} |" in section and f"{r.pearson_r:.3f}" in section


def test_dashboard_page_shows_the_views_numbers(families, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("KDP_DATABASE_URL", families.url)
    at = AppTest.from_file(str(Path(__file__).resolve().parents[2] / "app" / "Home.py"), default_timeout=60)
    at.run()
    at.session_state["job_id"] = _job_id(families, "neox")
    at.switch_page("views/crossjob.py").run()
    assert not at.exception, [e.value for e in at.exception]
    shown = {tuple(d.value.columns): d.value for d in at.dataframe}
    cross = next(v for k, v in shown.items() if "share_of_source_in_scanned" in k)
    want = read(
        families.url,
        "SELECT cross_scan_run_id, source_run_id, n_both FROM cross_scan_overlap "
        "WHERE job_id = :j OR source_job_id = :j ORDER BY job_id, run_id, source_job_id, source_run_id",
        j=_job_id(families, "neox"),
    )
    assert cross.n_both.tolist() == want.n_both.tolist() and len(want)
    hier = next(v for k, v in shown.items() if "share_of_small_in_large" in k)
    assert "neox-small" in set(hier.job_name_small)
