"""Bad job specs fail fast: exit 2, the file and the field named, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from kdplatform.cli import main
from kdplatform.pipeline import plan
from kdplatform.spec import SpecError, load_spec

JOBS = sorted(
    p for p in (Path(__file__).resolve().parents[2] / "jobs").rglob("*.yaml") if p.parent.name != "accelerate"
)


@pytest.mark.parametrize("job", JOBS, ids=lambda p: p.name)
def test_every_shipped_job_validates_and_plans(job):
    spec = load_spec(job)
    stages = plan(spec).stages
    assert stages[0].key == "data" and any(s.kind == "scan" for s in stages)


def _write(tmp_path: Path, doc) -> Path:
    p = tmp_path / "job.yaml"
    p.write_text(doc if isinstance(doc, str) else yaml.safe_dump(doc))
    return p


def _base(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "jobs" / "smoke.yaml").read_text())


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda d: d.update(bogus=1), "bogus"),
        (lambda d: d["data"].update(seq_len=-5), "data.seq_len"),
        (lambda d: d["data"].update(prefix_len=40, seq_len=40), "prefix_len"),
        (lambda d: d["teacher"]["train"].update(epochs="many"), "teacher.train.epochs"),
        (lambda d: d["student"]["distill"].update(temperature=[0.0]), "student.distill.temperature"),
        (lambda d: d["baseline"]["model"].update(preset="huge"), "baseline.model"),
        (lambda d: d.pop("teacher"), "teacher"),
        (lambda d: d["data"].update(source="ftp://x"), "data.source"),
    ],
)
def test_bad_spec_exits_2_naming_file_and_field(tmp_path, repo_root, capsys, mutate, field):
    doc = _base(repo_root)
    mutate(doc)
    path = _write(tmp_path, doc)
    workdir = tmp_path / "work"
    assert main(["run", str(path), "--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and field in err
    assert not workdir.exists(), "nothing may be written for a bad spec"


def test_malformed_yaml(tmp_path, capsys):
    path = _write(tmp_path, "name: [unclosed\n")
    assert main(["validate", str(path)]) == 2
    assert "not valid YAML" in capsys.readouterr().err


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="no such job file"):
        load_spec(tmp_path / "nope.yaml")


def test_validate_ok(repo_root, capsys):
    assert main(["validate", str(repo_root / "jobs" / "smoke.yaml")]) == 0
    assert "valid job spec 'smoke'" in capsys.readouterr().out


def test_changing_one_stage_config_changes_only_dependants(repo_root):
    doc = _base(repo_root)
    a = plan(load_spec(repo_root / "jobs" / "smoke.yaml"))
    doc["baseline"]["train"]["lr"] = 1e-4
    from kdplatform.spec import JobSpec

    b = plan(JobSpec.model_validate(doc))
    changed = {k for k in a.hashes if a.hashes[k] != b.hashes[k]}
    # The classifier reads the baseline's scan, and the filtered student is distilled on its verdicts.
    assert changed == {
        "train/baseline/s0",
        "scan/train/baseline/s0",
        "classify",
        "train/student_filtered/s0",
        "scan/train/student_filtered/s0",
    }
