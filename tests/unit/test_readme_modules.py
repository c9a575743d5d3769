"""The README's module table names every module of the package and the dashboard, and nothing that is gone:
the architecture section stays true to the tree."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _table() -> dict[str, str]:
    """Room (`kdplatform/pipeline/`) -> the text of its row in the README's module table."""
    rows = {}
    for line in (ROOT / "README.md").read_text().splitlines():
        m = re.match(r"^\| `((?:kdplatform|app|migrations)[\w/]*/)` \| (.*) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    return rows


def _modules() -> list[Path]:
    files = [*(ROOT / "kdplatform").rglob("*.py"), *(ROOT / "app").rglob("*.py")]
    return sorted(p.relative_to(ROOT) for p in files if p.stat().st_size > 0)


def _room(rel: Path, rooms: dict[str, str]) -> str | None:
    """The deepest room listed in the table that holds `rel`."""
    for parent in [*rel.parents][:-1]:
        key = f"{parent.as_posix()}/"
        if key in rooms:
            return key
    return None


def test_every_module_is_named_in_the_readme_table():
    rooms = _table()
    assert {"kdplatform/", "kdplatform/pipeline/", "kdplatform/store/", "app/"} <= set(rooms)
    missing = []
    for rel in _modules():
        room = _room(rel, rooms)
        name = rel.relative_to(room).as_posix() if room else None
        if rel.name == "__init__.py" and rel.parent.as_posix() + "/" in rooms:
            continue  # a room's own package file: the row is its documentation
        if room is None or f"`{name}`" not in rooms[room]:
            missing.append(rel.as_posix())
    assert not missing, f"modules not named in README.md's module table: {missing}"


def test_every_module_the_readme_names_exists():
    rooms = _table()
    gone = [
        f"{room}{name}"
        for room, text in rooms.items()
        for name in re.findall(r"`([\w/]+\.py)`", text)
        if not (ROOT / room / name).exists()
    ]
    assert not gone, f"README.md names modules that do not exist: {gone}"
