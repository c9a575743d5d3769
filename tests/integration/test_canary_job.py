"""Canaries end to end on a tiny job (teacher, baseline, soft and hard student): the data stage records
each canary once, the training data hold its copies, every trained model gets a `canary` stage whose rows
reach canary_results, canary_memorization has a row per (run, copies), and the views of D's natural
examples count no canary."""

from __future__ import annotations

import math

import pytest
import yaml
from sqlalchemy import text
from tiny_jobs import tiny_data

from kdplatform.cli import main
from kdplatform.store.db import make_engine

TINY = {"num_hidden_layers": 1, "hidden_size": 16, "intermediate_size": 32}
TRAIN = {"epochs": 2, "batch_size": 8, "lr": 3.0e-3, "checkpoint_every": None}
CANARIES = {"counts": [1, 2, 4], "per_count": 2, "secret_len": 4, "alternatives": 30, "seed": 3}
N_CANARIES, N_ROWS = 6, 14
ROLES = ("teacher", "baseline", "student", "student_hard")


def _job() -> dict:
    role = {"model": {"preset": "tiny-student", "config": TINY}, "train": TRAIN}
    return {
        "name": "canary15",
        "seeds": [0],
        "data": tiny_data(heldout_examples=4, canaries=CANARIES),
        "teacher": {"model": {"preset": "tiny-teacher", "config": TINY}, "train": TRAIN},
        "baseline": role,
        "student": role,
        "hard_student": role,
        "scan": {"shard_size": 8, "kld": False, "audit_sample": 0},
    }


@pytest.fixture(scope="module")
def job_db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("canary15")
    path, work = tmp / "job.yaml", tmp / "work"
    path.write_text(yaml.safe_dump(_job()))
    assert main(["run", str(path), "--workdir", str(work)]) == 0
    engine = make_engine(f"duckdb:///{work / 'kdp.duckdb'}", read_only=True)
    yield engine
    engine.dispose()


def q(engine, sql: str) -> list[tuple]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql)).all()]


def test_canaries_are_recorded_once_with_their_copies(job_db):
    n = tiny_data()["num_examples"]
    splits = dict(
        q(
            job_db,
            "SELECT split, COUNT(*) FROM examples e JOIN datasets d ON d.id = e.dataset_id "
            "WHERE d.parent_dataset_id IS NULL GROUP BY split",
        )
    )
    assert splits == {"train": n, "val": 8, "heldout": 4, "canary": N_CANARIES}
    copies = q(job_db, "SELECT copies, COUNT(*) FROM canaries GROUP BY copies ORDER BY copies")
    assert copies == [(1, 2), (2, 2), (4, 2)]
    natural = q(job_db, "SELECT MAX(example_id) FROM examples WHERE split <> 'canary'")[0][0]
    assert q(job_db, "SELECT MIN(example_id) FROM canaries")[0][0] == natural + 1
    suffixes = q(
        job_db,
        "SELECT e.suffix_text, k.secret FROM canaries k JOIN examples e USING (dataset_id, example_id)",
    )
    assert all(s.endswith(secret) for s, secret in suffixes)


def test_training_data_hold_every_copy(job_db):
    n = tiny_data()["num_examples"]
    per_epoch = q(
        job_db,
        "SELECT r.role, MIN(c.tokens) FROM checkpoints c JOIN runs r ON r.id = c.run_id "
        "WHERE r.kind = 'train' AND c.epoch = 1 GROUP BY r.role",
    )
    predicted = tiny_data()["seq_len"] - 1  # tokens counts the predicted tokens of each row
    assert dict(per_epoch) == dict.fromkeys(ROLES, (n + N_ROWS) * predicted)


def test_every_model_has_canary_results_and_the_view(job_db):
    rows = q(
        job_db,
        "SELECT r.role, COUNT(*), MIN(c.exposure), MAX(c.exposure), MAX(c.rank) "
        "FROM canary_results c JOIN runs r ON r.id = c.run_id GROUP BY r.role",
    )
    assert sorted(r[0] for r in rows) == sorted(ROLES)
    for _, count, lo, hi, rank in rows:
        assert count == N_CANARIES and 0 <= lo <= hi <= math.log2(31) + 1e-9 and 1 <= rank <= 31
    view = q(
        job_db,
        "SELECT role, copies, n_canaries, n_memorized, rate, mean_exposure, max_exposure "
        "FROM canary_memorization ORDER BY role, copies",
    )
    assert [(r[0], r[1], r[2]) for r in view] == [(role, c, 2) for role in sorted(ROLES) for c in (1, 2, 4)]
    assert all(r[4] == r[3] / 2 and r[6] == pytest.approx(math.log2(31)) for r in view)


def test_natural_views_count_no_canary(job_db):
    n = tiny_data()["num_examples"]
    assert {r[0] for r in q(job_db, "SELECT examples FROM memorization_rates")} == {n}
    assert q(
        job_db, "SELECT COUNT(*) FROM scan_results s JOIN canaries k USING (dataset_id, example_id)"
    ) == [(0,)]
