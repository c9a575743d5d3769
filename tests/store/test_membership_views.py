"""The views of migration 0005 against pandas and sklearn on fresh random rows, on DuckDB and PostgreSQL:
membership_inference (AUC, TPR at low FPR) on members of D against held-out non-members,
extraction_rates against kdplatform.memorization.extraction_rate, prefix_memorization_rates against
pandas, and the older views counting members only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from sqlalchemy import text

from kdplatform.memorization import ATTACKS, attack_scores, extraction_rate
from kdplatform.store import db
from kdplatform.testing.rows import arrow, at

metrics = pytest.importorskip("sklearn.metrics")

N_MEMBERS, N_HELDOUT = 150, 120
RUNS = {  # run id: (role, seed, status)
    1: ("teacher", 0, "done"),
    2: ("baseline", 0, "done"),
    3: ("baseline", 1, "done"),
    4: ("student", 1, "done"),
    5: ("student", 2, "done"),  # no baseline of seed 2: referenced to both baselines
    6: ("student", 0, "stale"),
    10: ("student", 0, "done"),  # no base: referenced to the baseline of seed 0
}
BASES = {7: "done", 8: "done", 9: "failed"}  # base run: the status of its loss-only scan (run 100 + id)
BASE_OF = {1: 8, 3: 7, 4: 7, 6: 7, 2: 9}  # run: its base (the teacher's is another than the others')
SETTINGS = ((1.0, 0), (0.7, 40))
OTHER_PREFIX = (4,)


def _study(seed: int) -> tuple[pd.DataFrame, ...]:
    """examples, scan_results, extraction_scores, prefix_memorization and example_losses rows: members
    better fitted, scores rounded so that ties occur (within and across the two classes)."""
    rng = np.random.default_rng(seed)
    n = N_MEMBERS + N_HELDOUT
    ids = np.arange(n, dtype=np.int64) * 7 + 3
    member = np.arange(n) < N_MEMBERS
    examples = pd.DataFrame(
        {
            "dataset_id": 1,
            "example_id": ids,
            "split": np.where(member, "train", "heldout"),
            "n_tokens": 16,
            "text": "t",
            "prefix_text": "p",
            "suffix_text": "s",
            "zlib_entropy": rng.integers(20, 40, n),
            "zlib_bits_per_token": 1.0,
        }
    )
    scans, extraction, prefix = [], [], []
    for run in RUNS:
        fit = rng.uniform(0.1, 0.8)
        loss = np.round(rng.normal(3.0, 0.5, n) - fit * member, 1)
        memorized = rng.random(n) < 0.2 + 0.3 * member
        scans.append(
            pd.DataFrame(
                {
                    "run_id": run,
                    "example_id": ids,
                    "dataset_id": 1,
                    "scan_run_id": 100 + run,
                    "memorized": memorized,
                    "match_len": np.where(memorized, 8, rng.integers(0, 8, n)),
                    "suffix_logprob": -loss * 8,
                    "suffix_entropy": rng.random(n),
                    "ppl": np.exp(loss),
                    "min_margin": rng.random(n),
                    "loss": loss,
                    "min_k_20": np.round(-loss - rng.exponential(1.0, n), 1),
                    "min_k_pp_20": np.round(rng.normal(0, 1, n) + fit * member, 2),
                }
            )
        )
        for temperature, top_k in SETTINGS:
            logprob = -rng.exponential(4.0, n) * (1.5 - member)
            logprob[rng.random(n) < 0.1] = 0.0 if top_k else -np.inf
            extraction.append(
                pd.DataFrame(
                    {
                        "run_id": run,
                        "example_id": ids,
                        "temperature": temperature,
                        "top_k": top_k,
                        "dataset_id": 1,
                        "scan_run_id": 100 + run,
                        "logprob": logprob,
                    }
                )
            )
        for k in OTHER_PREFIX:
            prefix.append(
                pd.DataFrame(
                    {
                        "run_id": run,
                        "example_id": ids,
                        "prefix_len": k,
                        "dataset_id": 1,
                        "scan_run_id": 100 + run,
                        "memorized": rng.random(n) < 0.1,
                    }
                )
            )
    losses = [
        pd.DataFrame(
            {
                "run_id": base,
                "example_id": ids,
                "dataset_id": 1,
                "scan_run_id": 100 + base,
                "loss": np.round(rng.normal(3.2, 0.5, n) - 0.1 * member, 1),
            }
        )
        for base in BASES
    ]
    return examples, pd.concat(scans), pd.concat(extraction), pd.concat(prefix), pd.concat(losses)


def _write(engine, frames) -> None:
    examples, scans, extraction, prefix, losses = frames
    job = dict(id=1, name="j", spec="{}", spec_hash="h", workdir="/w", created_at=at(0))
    dataset = dict(id=1, name="d", digest="x", source="builtin", tokenizer="bpe", vocab_size=9, seq_len=16)
    dataset |= dict(prefix_len=8, num_train=N_MEMBERS, num_val=0, path="/p", created_at=at(0))
    run = dict(job_id=1, config="{}", config_hash="h")
    small = {
        "jobs": [job],
        "datasets": [dataset],
        "runs": [
            run | dict(id=i, stage_key=f"train/{role}/{i}", kind="train", role=role, seed=seed, status=status)
            for i, (role, seed, status) in RUNS.items()
        ]
        + [
            run | dict(id=100 + i, stage_key=f"scan/{i}", kind="scan", role=role, seed=seed, status="done")
            for i, (role, seed, _) in RUNS.items()
        ]
        + [
            run | dict(id=i, stage_key=f"pretrain/{i}", kind="pretrain", role="base", status="done")
            for i in BASES
        ]
        + [
            run | dict(id=100 + i, stage_key=f"scan/pretrain/{i}", kind="scan", role="base", status=status)
            for i, status in BASES.items()
        ],
        "run_inputs": [
            dict(id=i + 1, run_id=r, kind="base", input_run_id=b) for i, (r, b) in enumerate(BASE_OF.items())
        ],
    }
    with engine.begin() as conn:
        for table, rows in small.items():
            db.bulk_insert(conn, table, arrow(table, rows))
        for table, frame in (
            ("examples", examples),
            ("scan_results", scans),
            ("extraction_scores", extraction),
            ("prefix_memorization", prefix),
            ("example_losses", losses),
        ):
            db.bulk_insert(conn, table, pa.Table.from_pandas(frame, preserve_index=False))


def _read(engine, sql: str) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(text(sql), conn)


@pytest.fixture
def study(db_url):
    engine = db.make_engine(db_url)
    db.upgrade(engine)
    frames = _study(np.random.default_rng().integers(1 << 30))
    _write(engine, frames)
    yield engine, frames
    engine.dispose()


def _tpr_at(member: np.ndarray, score: np.ndarray, fpr_max: float) -> float:
    fpr, tpr, _ = metrics.roc_curve(member, score, drop_intermediate=False)
    return float(tpr[fpr <= fpr_max].max())


def test_membership_inference_matches_sklearn(study):
    engine, (examples, scans, _, _, losses) = study
    got = _read(engine, "SELECT * FROM membership_inference").set_index(["run_id", "attack"])
    base_loss = {b: g.set_index("example_id").loss for b, g in losses.groupby("run_id")}
    member = examples.set_index("example_id").split.eq("train")
    zlib = examples.set_index("example_id").zlib_entropy
    by_run = {r: g.set_index("example_id").loc[examples.example_id] for r, g in scans.groupby("run_id")}
    done = [r for r, (_, _, status) in RUNS.items() if status == "done"]
    expected = []
    for run in done:
        role, seed, _ = RUNS[run]
        s = by_run[run]
        ref = None
        if run in BASE_OF:  # its own base, once the base's loss-only scan is done
            if BASES[BASE_OF[run]] == "done":
                ref = base_loss[BASE_OF[run]].loc[s.index].to_numpy()
        elif role != "baseline":
            refs = [b for b, (rl, sd, _) in RUNS.items() if rl == "baseline" and sd == seed] or [
                b for b, (rl, _, _) in RUNS.items() if rl == "baseline"
            ]
            ref = np.mean([by_run[b].loss.to_numpy() for b in refs], axis=0)
        scores = attack_scores(s.loss, zlib.loc[s.index], s.min_k_20, s.min_k_pp_20, reference_loss=ref)
        y = member.loc[s.index].to_numpy()
        for attack, score in scores.items():
            expected.append((run, attack))
            row = got.loc[(run, attack)]
            assert row.auc == pytest.approx(metrics.roc_auc_score(y, score), abs=1e-12), (run, attack)
            assert row.tpr_at_1pct_fpr == pytest.approx(_tpr_at(y, score, 0.01), abs=1e-12), (run, attack)
            assert row.tpr_at_01pct_fpr == pytest.approx(_tpr_at(y, score, 0.001), abs=1e-12), (run, attack)
            assert (row.n_members, row.n_nonmembers) == (N_MEMBERS, N_HELDOUT)
            assert (row.role, row.job_id) == (role, 1)
    # No rows: the stale run, the reference of a baseline without a base or of a run whose base's loss
    # scan failed; the bases themselves are not scanned runs.
    assert sorted(got.index) == sorted(expected)
    assert (1, "reference") in got.index and (2, "reference") not in got.index
    assert set(got.index.get_level_values("attack")) == set(ATTACKS)


def test_extraction_rates_match_extraction_rate(study):
    engine, (examples, _, extraction, _, _) = study
    got = _read(engine, "SELECT * FROM extraction_rates")
    member = examples.set_index("example_id").split.eq("train")
    done = {r for r, (_, _, status) in RUNS.items() if status == "done"}
    assert set(got.run_id) == done
    assert len(got) == len(done) * len(SETTINGS) * 4 * 3 * 2
    x = extraction.assign(member=member.loc[extraction.example_id].to_numpy())
    for row in got.itertuples():
        g = x[(x.run_id == row.run_id) & (x.temperature == row.sample_temperature) & (x.top_k == row.top_k)]
        g = g[g.member == row.member]
        assert row.examples == len(g) == (N_MEMBERS if row.member else N_HELDOUT)
        assert row.rate == pytest.approx(extraction_rate(g.logprob.to_numpy(), row.n, row.p), abs=1e-12)
        assert row.extracted == round(row.rate * row.examples)


def test_prefix_memorization_rates_match_pandas(study):
    engine, (examples, scans, _, prefix, _) = study
    got = _read(engine, "SELECT * FROM prefix_memorization_rates")
    member = examples.set_index("example_id").split.eq("train")
    flags = pd.concat([scans.assign(prefix_len=8)[prefix.columns], prefix])
    flags = flags[flags.run_id.map(lambda r: RUNS[r][2] == "done")]
    flags = flags.assign(member=member.loc[flags.example_id].to_numpy())
    want = flags.groupby(["run_id", "prefix_len", "member"]).memorized.agg(["count", "sum"]).reset_index()
    got = got.sort_values(["run_id", "prefix_len", "member"]).reset_index(drop=True)
    want = want.sort_values(["run_id", "prefix_len", "member"]).reset_index(drop=True)
    assert got.examples.tolist() == want["count"].tolist()
    assert got.memorized.tolist() == want["sum"].tolist()
    assert got[["run_id", "prefix_len"]].values.tolist() == want[["run_id", "prefix_len"]].values.tolist()
    assert got.member.astype(bool).tolist() == want.member.tolist()
    assert set(got.suffix_len) == {8}
    np.testing.assert_allclose(got.rate_pct, 100 * want["sum"] / want["count"])


def test_older_views_count_members_only(study):
    engine, (examples, scans, _, _, _) = study
    members = set(examples.example_id[examples.split == "train"])
    rates = _read(engine, "SELECT run_id, examples, memorized FROM memorization_rates").set_index("run_id")
    for run, g in scans.groupby("run_id"):
        if RUNS[run][2] != "done":
            assert run not in rates.index
            continue
        m = g[g.example_id.isin(members)]
        assert tuple(rates.loc[run]) == (N_MEMBERS, int(m.memorized.sum()))
    for view in ("memorization", "memorized_examples"):
        ids = set(_read(engine, f"SELECT example_id FROM {view}").example_id)
        assert ids and ids <= members, view
    seeds = _read(engine, "SELECT example_id, n_baseline_runs FROM seed_consistency")
    assert set(seeds.example_id) == members
    assert set(_read(engine, "SELECT examples FROM scanned_runs").examples) == {N_MEMBERS}
