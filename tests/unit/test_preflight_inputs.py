"""Inputs beside the spec refused before any database write (issue 18): the MLflow URI, the exclusion
file's ids, the workdir, and `files:` corpora (streamed to the cap; devices and FIFOs refused)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from kdplatform.cli import main
from kdplatform.data.corpus import load_documents
from kdplatform.preflight import exclusion_ids
from kdplatform.spec import SpecError

SMOKE = Path(__file__).resolve().parents[2] / "jobs" / "smoke.yaml"


def run_refused(tmp_path: Path, capsys, doc: dict, workdir: Path | None = None) -> str:
    """`kdplatform run`: asserts exit 2, no traceback and no database or MLflow store; returns stderr."""
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    workdir = workdir or tmp_path / "work"
    assert main(["run", str(path), "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for store in ("kdp.duckdb", "mlflow.db"):
        assert not (tmp_path / "work" / store).exists(), f"no {store} may be created"
    return err


def smoke(**top) -> dict:
    return yaml.safe_load(SMOKE.read_text()) | top


def test_unknown_mlflow_scheme(tmp_path, capsys):
    err = run_refused(tmp_path, capsys, smoke(mlflow_tracking_uri="bogus://x"))
    assert "mlflow_tracking_uri 'bogus://x'" in err and "sqlite" in err


def test_unknown_mlflow_scheme_from_the_environment(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "nosuch://host/x")
    assert "'nosuch://host/x'" in run_refused(tmp_path, capsys, smoke())


@pytest.mark.parametrize(
    "text, expect",
    [
        ("1\n2\nabc\n", "line 3: 'abc'"),
        ("1 2\n3 4\n", "line 1: '1 2'"),
        ("5\n-3\n", "line 2: '-3'"),
        ("1.5\n", "line 1: '1.5'"),
        ("99999999999999999999\n", "line 1"),
    ],
)
def test_exclusion_file_with_junk(tmp_path, capsys, text, expect):
    ids = tmp_path / "exclude.txt"
    ids.write_text(text)
    doc = smoke()
    doc["filtered_student"]["exclude"] = f"file:{ids}"
    err = run_refused(tmp_path, capsys, doc)
    assert "filtered_student.exclude" in err and expect in err


def test_exclusion_ids_skip_blanks_and_comments(tmp_path):
    ids = tmp_path / "exclude.txt"
    ids.write_text("# memorized by the teacher\n3\n\n 7 \n11  # and this one\n")
    assert exclusion_ids(f"file:{ids}").tolist() == [3, 7, 11]
    ids.write_text("")
    assert exclusion_ids(f"file:{ids}").tolist() == []
    with pytest.raises(SpecError, match="not a regular file"):
        exclusion_ids(f"file:{tmp_path}")


def test_workdir_that_is_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    err = run_refused(tmp_path, capsys, smoke(), tmp_path / "afile")
    assert "afile: exists and is not a directory" in err


def test_workdir_below_a_file(tmp_path, capsys):
    (tmp_path / "afile").write_text("")
    err = run_refused(tmp_path, capsys, smoke(), tmp_path / "afile" / "work")
    assert "is a file, not a directory" in err


def _read_only_dir(tmp_path: Path) -> Path:
    """A directory this process cannot create files in: mode 555, or for root a sysfs directory."""
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        return ro / "work"
    sys_dir = Path("/sys/kernel")
    if not sys_dir.is_dir():
        pytest.skip("running as root without a sysfs to stand in for a read-only directory")
    return sys_dir / "kdp-test-work"


def test_read_only_workdir(tmp_path, capsys):
    workdir = _read_only_dir(tmp_path)
    err = run_refused(tmp_path, capsys, smoke(), workdir)
    assert f"workdir {workdir}: not writable" in err and "--workdir" in err


def test_missing_corpus_is_named(tmp_path, capsys):
    doc = smoke()
    doc["data"]["source"] = "files:/nonexistent-kdp"
    err = run_refused(tmp_path, capsys, doc)
    assert "/nonexistent-kdp: no such file or directory" in err and "distinct windows" not in err


def test_txt_symlink_to_dev_zero_is_refused(tmp_path):
    link = tmp_path / "corpus.txt"
    link.symlink_to("/dev/zero")
    with pytest.raises(ValueError, match=f"{link}: not a regular file"):
        load_documents(f"files:{link}", max_chars=1000)


def test_fifo_in_a_corpus_directory_is_refused(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("some text " * 50)
    os.mkfifo(corpus / "b.txt")
    with pytest.raises(ValueError, match="b.txt: not a regular file"):
        load_documents(f"files:{corpus}", max_chars=1000)


def test_files_stop_at_the_cap(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("x" * 5_000_000)
    (corpus / "b.txt").write_text("never read")
    with (corpus / "c.jsonl").open("w") as fh:
        fh.writelines('{"text": "row"}\n' for _ in range(1000))
    docs = load_documents(f"files:{corpus}", max_chars=1000)
    assert [len(d) for d in docs] == [1000]
    jsonl = load_documents(f"files:{corpus / 'c.jsonl'}", max_chars=30)
    assert jsonl == ["row"] * 10


def test_files_below_the_cap_read_whole(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("alpha " * 10)
    (corpus / "b.jsonl").write_text('{"text": "beta"}\n\n{"text": "gamma"}\n')
    assert sorted(load_documents(f"files:{corpus}", max_chars=10_000)) == ["alpha " * 10, "beta", "gamma"]


def test_jsonl_junk_names_the_line(tmp_path):
    f = tmp_path / "c.jsonl"
    f.write_text('{"text": "ok"}\n[1, 2]\n')
    with pytest.raises(KeyError, match="c.jsonl:2"):
        load_documents(f"files:{f}")
    f.write_text('{"text": "ok"}\nnot json\n')
    with pytest.raises(ValueError, match="c.jsonl:2: not a JSON line"):
        load_documents(f"files:{f}")


def test_unknown_activation(tmp_path, capsys):
    doc = smoke()
    doc["student"]["model"]["config"]["hidden_act"] = "gleu"
    err = run_refused(tmp_path, capsys, doc)
    assert "student.model.config.hidden_act: unknown activation 'gleu'" in err and "gelu" in err
