"""Hostile inputs: each a clear error with exit code 2 and no database or MLflow writes."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kdplatform.cli import main
from kdplatform.spec import JobSpec, SpecError, load_spec


def smoke_doc(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "jobs" / "smoke.yaml").read_text())


def run_cli(tmp_path: Path, doc: dict, *extra: str) -> tuple[int, Path]:
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    workdir = tmp_path / "work"
    return main(["run", str(path), "--workdir", str(workdir), *extra]), workdir


def assert_no_writes(workdir: Path) -> None:
    assert not (workdir / "kdp.duckdb").exists(), "no database may be created"
    assert not (workdir / "mlflow.db").exists(), "no MLflow store may be created"


def test_corpus_smaller_than_one_example(tmp_path, repo_root, capsys):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("Only a few words here.")
    doc = smoke_doc(repo_root)
    doc["data"]["source"] = f"files:{corpus}"
    code, workdir = run_cli(tmp_path, doc)
    assert code == 2
    err = capsys.readouterr().err
    assert "distinct windows" in err and "num_examples" in err
    assert_no_writes(workdir)
    assert not list((workdir / "data").glob("*")), "no half-written data directory"


@pytest.mark.parametrize(
    "name, expect",
    [("./no/such/model", "does not exist"), ("no-such-org-kdp/no-such-model-kdp", "cannot load model")],
)
def test_unknown_model(tmp_path, repo_root, capsys, name, expect):
    doc = smoke_doc(repo_root)
    doc["teacher"]["model"] = {"name": name}
    code, workdir = run_cli(tmp_path, doc)
    assert code == 2
    err = capsys.readouterr().err
    assert "teacher.model.name" in err and expect in err
    assert_no_writes(workdir)


def _save_model(path: Path, vocab: list[str]) -> Path:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(vocab)}, unk_token=vocab[0]))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=vocab[0], unk_token=vocab[0])
    fast.save_pretrained(path)
    cfg = GPTNeoXConfig(
        vocab_size=len(vocab),
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
    )
    GPTNeoXForCausalLM(cfg).save_pretrained(path)
    return path


def test_teacher_and_student_with_different_tokenizers(tmp_path, repo_root, capsys):
    a = _save_model(tmp_path / "a", ["<eos>", "the", "cat", "sat"])
    b = _save_model(tmp_path / "b", ["<eos>", "a", "dog", "ran", "far"])
    doc = smoke_doc(repo_root)
    doc["teacher"]["model"] = {"name": str(a)}
    doc["student"]["model"] = {"name": str(b)}
    code, workdir = run_cli(tmp_path, doc)
    assert code == 2
    assert "different tokenizers" in capsys.readouterr().err
    assert_no_writes(workdir)


def test_database_that_cannot_be_opened(tmp_path, repo_root, capsys):
    doc = smoke_doc(repo_root)
    code, workdir = run_cli(tmp_path, doc, "--db", "nosuchdialect://x/y")
    assert code == 2
    assert "nosuchdialect" in capsys.readouterr().err
    assert not (workdir / "mlflow.db").exists()


def test_database_at_newer_revision(tmp_path, repo_root, capsys):
    from kdplatform.store import db

    url = f"duckdb:///{tmp_path / 'future.duckdb'}"
    engine = db.make_engine(url)
    db.upgrade(engine)
    with engine.begin() as conn:
        conn.exec_driver_sql("UPDATE alembic_version SET version_num = 'ffff_from_the_future'")
    code, workdir = run_cli(tmp_path, smoke_doc(repo_root), "--db", url)
    assert code == 2
    assert "newer code" in capsys.readouterr().err
    assert not (workdir / "mlflow.db").exists()


def test_second_writer_is_refused_naming_the_holder(tmp_path, repo_root, capsys):
    from kdplatform.joblock import JobLock

    doc = smoke_doc(repo_root)
    with JobLock(tmp_path / "work", "smoke"):
        code, workdir = run_cli(tmp_path, doc)
    assert code == 2
    err = capsys.readouterr().err
    assert "already running" in err and "pid" in err
    assert_no_writes(workdir)


def test_lock_of_a_dead_process_does_not_block(tmp_path):
    import subprocess
    import sys

    from kdplatform.joblock import JobLock

    script = (
        f"from kdplatform.joblock import JobLock; l = JobLock({str(tmp_path)!r}, 'x').__enter__(); "
        "import os; os._exit(0)"
    )
    subprocess.run([sys.executable, "-c", script], check=True)
    with JobLock(tmp_path, "x"):
        pass


LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 500),
    st.floats(-2, 5),
    st.just(float("nan")),
    st.text(max_size=8),
    st.lists(st.integers(-3, 3), max_size=3),
)


@st.composite
def mutated_specs(draw, base: dict):
    doc = yaml.safe_load(yaml.safe_dump(base))
    for _ in range(draw(st.integers(1, 3))):
        node = doc
        path = []
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            path.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        if isinstance(node, dict):
            key = draw(st.one_of(st.sampled_from(sorted(node) or ["x"]), st.text(min_size=1, max_size=6)))
            if draw(st.integers(0, 4)) == 0:
                node.pop(key, None)
            else:
                node[key] = draw(LEAVES)
    return doc


BASE = yaml.safe_load((Path(__file__).resolve().parents[2] / "jobs" / "smoke.yaml").read_text())


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=mutated_specs(BASE))
def test_validation_accepts_or_explains(tmp_path, doc):
    path = tmp_path / "j.yaml"
    path.write_text(yaml.safe_dump(doc))
    try:
        spec = load_spec(path)
    except SpecError as e:
        msg = str(e)
        assert msg.startswith(str(path)) and "\n  - " in msg or "mapping" in msg
        return
    assert isinstance(spec, JobSpec)
    assert spec.data.prefix_len < spec.data.seq_len
