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
        (lambda d: d["student"]["distill"].update(sweep_seeds=[7]), "student.distill.sweep_seeds"),
        (lambda d: d["hard_student"].update(seeds=[]), "hard_student.seeds"),
        (lambda d: d["classifier"].update(target="teacher"), "classifier.target"),
        (lambda d: d.pop("hard_student") and d["classifier"].update(target="student_hard"), "hard_student"),
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


def test_seed_subsets_select_the_runs(repo_root):
    """sweep_seeds: the whole (objective, T) grid on those seeds, the first pair on the rest; role seeds."""
    from kdplatform.spec import JobSpec

    doc = _base(repo_root)
    doc["seeds"] = [0, 1, 2]
    doc["student"]["distill"].update(objective=["forward_kl", "reverse_kl"], temperature=[2.0, 1.0])
    doc["student"]["distill"]["sweep_seeds"] = [1]
    doc["hard_student"]["seeds"] = [2]
    p = plan(JobSpec.model_validate(doc))
    students = {s.key for s in p.stages if s.kind == "train" and s.role == "student"}
    grid = {f"train/student/s1/{o}/T{t}" for o in ("forward_kl", "reverse_kl") for t in ("2", "1")}
    assert students == grid | {"train/student/s0/forward_kl/T2", "train/student/s2/forward_kl/T2"}
    hard = {s.key for s in p.stages if s.role == "student_hard" and s.kind == "train"}
    assert hard == {"train/student_hard/s2"}
    del doc["student"]["distill"]["sweep_seeds"], doc["hard_student"]["seeds"]
    full = plan(JobSpec.model_validate(doc))
    assert sum(s.kind == "train" and s.role == "student" for s in full.stages) == 3 * 4
    assert sum(s.kind == "train" and s.role == "student_hard" for s in full.stages) == 3


def test_classifier_follows_every_scan_it_may_target(repo_root):
    """The classifier reads the hard student's scan when it targets it, so the plan orders it after."""
    p = plan(load_spec(repo_root / "jobs" / "smoke.yaml"))
    keys = [s.key for s in p.stages]
    scans = [k for k in keys if k.startswith("scan/") and "student_filtered" not in k]
    assert "scan/train/student_hard/s0" in scans
    assert set(p.get("classify").deps) == set(scans)
    assert all(keys.index(k) < keys.index("classify") for k in scans)
