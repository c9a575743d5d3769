"""The pipeline package's seams: every stage kind registered, stages independent of the runner, one
workdir layout."""

from __future__ import annotations

import ast
from pathlib import Path

from kdplatform.joblock import JobLock
from kdplatform.pipeline import plan
from kdplatform.pipeline.layout import Layout, publish, staging
from kdplatform.pipeline.stages import STAGES
from kdplatform.spec import load_spec
from kdplatform.store.schema import StageKind

PKG = Path(__file__).resolve().parents[2] / "kdplatform" / "pipeline"


def test_every_stage_kind_has_a_stage_function():
    assert set(STAGES) == set(StageKind)
    assert all(callable(fn) for fn in STAGES.values())


def _imports(path: Path) -> set[str]:
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
    return out


def test_stages_and_context_never_import_the_runner():
    """The runner imports the stages; a stage importing it back (or the package, which re-exports it)
    would close an import cycle."""
    for path in [*(PKG / "stages").glob("*.py"), PKG / "context.py", PKG / "plan.py", PKG / "layout.py"]:
        bad = {m for m in _imports(path) if m in ("kdplatform.pipeline", "kdplatform.pipeline.runner")}
        assert not bad, f"{path.name} imports {bad}"


def test_plan_is_pure():
    """Planning needs the spec only: no database, MLflow or torch."""
    banned = ("torch", "transformers", "mlflow", "kdplatform.store.db", "sqlalchemy")
    assert not {m for m in _imports(PKG / "plan.py") if m.startswith(banned)}


def test_layout_names_the_paths(tmp_path):
    p = plan(load_spec(PKG.parents[1] / "jobs" / "smoke.yaml"))
    lay = Layout(tmp_path, p.hashes)
    assert lay.lock_file == JobLock(tmp_path, "smoke").path
    assert lay.data_dir() == tmp_path / "data" / p.hashes["data"]
    assert lay.checkpoint_dir("train/baseline/s0") == tmp_path / "checkpoints" / "train-baseline-s0"
    assert lay.state_dir("train/teacher").name == "train-teacher.state"
    key = "scan/train/teacher"
    assert lay.scan_shards(key) == tmp_path / "scans" / "scan-train-teacher" / p.hashes[key]
    out = lay.data_dir()
    out.mkdir(parents=True)
    (out / "old").write_text("left by an earlier attempt")
    tmp = staging(out)
    tmp.mkdir()
    (tmp / "new").write_text("x")
    publish(tmp, out)
    assert sorted(f.name for f in out.iterdir()) == ["new"] and not tmp.exists()
