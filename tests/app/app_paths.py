"""Where the dashboard lives and its pages, for tests/app (a plain module: tests do not import conftest)."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app" / "Home.py"
PAGES = {
    "runs": "views/runs.py",
    "memorization": "views/memorization.py",
    "overlap": "views/overlap.py",
    "easy": "views/easy.py",
    "classifier": "views/classifier.py",
    "mechanism": "views/mechanism.py",
    "membership": "views/membership.py",
    "evaluation": "views/evaluation.py",
    "canaries": "views/canaries.py",
    "crossjob": "views/crossjob.py",
    "examples": "views/examples.py",
    "console": "views/console.py",
}
