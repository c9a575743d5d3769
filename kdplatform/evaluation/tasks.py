"""Which lm-eval task names a job may use, told without downloading anything: the local `include_path`
is indexed by lm-eval itself (fast: a handful of files); the built-in registry is first read as text
(each task, group and tag name its YAML files declare, about a second), and only a name missing there is
looked up in lm-eval's full index (tens of seconds), so a typo is refused with the nearest names."""

from __future__ import annotations

import difflib
import importlib.util
import re
from functools import cache
from pathlib import Path

from kdplatform.spec import EvalSpec, SpecError

INSTALL = "install the `eval` extra (pip install 'kdplatform[eval]', lm-evaluation-harness)"
_DECLARED = re.compile(r"^(?:task|group|tag):\s*[\"']?([A-Za-z0-9_][A-Za-z0-9_.\-]*)", re.MULTILINE)


def _tasks_dir() -> Path:
    found = importlib.util.find_spec("lm_eval")
    if found is None or found.origin is None:
        raise SpecError(f"eval: lm-evaluation-harness is not installed; {INSTALL}")
    return Path(found.origin).parent / "tasks"


@cache
def declared_names() -> frozenset[str]:
    """The names lm-eval's own task files declare at top level (`task:`, `group:`, `tag:`), read as text."""
    names: set[str] = set()
    for path in _tasks_dir().rglob("*.yaml"):
        try:
            names.update(_DECLARED.findall(path.read_text(encoding="utf-8", errors="replace")))
        except OSError:
            continue
    return frozenset(names)


@cache
def task_manager(include_path: str | None, *, defaults: bool = True):
    """lm-eval's TaskManager over `include_path` (and the built-in registry with `defaults`), built once a
    process: indexing the registry takes tens of seconds, and a job evaluates many models."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_path, include_defaults=defaults)


@cache
def registry_names() -> frozenset[str]:
    """Every task, group and tag of lm-eval's full index of its registry (tens of seconds to build)."""
    return frozenset(task_manager(None).all_tasks)


def local_names(include_path: str | None) -> frozenset[str]:
    """The tasks, groups and tags of the local task folder (none without one)."""
    if include_path is None:
        return frozenset()
    return frozenset(task_manager(include_path, defaults=False).all_tasks)


def check_tasks(spec: EvalSpec) -> None:
    """SpecError naming the field for an `eval:` section lm-eval cannot run: lm-eval missing, an
    include_path that is not a folder, or a task name that neither it nor lm-eval's registry has."""
    tasks_dir = _tasks_dir()
    if spec.include_path is not None and not Path(spec.include_path).is_dir():
        raise SpecError(f"eval.include_path: {spec.include_path!r} is not a folder of lm-eval task files")
    local = local_names(spec.include_path)
    unknown = [(i, t.name) for i, t in enumerate(spec.tasks) if t.name not in local | declared_names()]
    if not unknown:
        return
    everything = local | registry_names()
    for i, name in unknown:
        if name not in everything:
            near = difflib.get_close_matches(name, sorted(everything), n=3)
            hint = f"did you mean {', '.join(map(repr, near))}?" if near else f"see {tasks_dir}"
            where = f" or in {spec.include_path!r}" if spec.include_path else ""
            raise SpecError(f"eval.tasks.{i}.name: no lm-eval task {name!r} in its registry{where}; {hint}")


def needs_registry(spec: EvalSpec) -> bool:
    """Whether a task of `spec` is not in the local folder, so lm-eval's registry must be indexed too."""
    local = local_names(spec.include_path)
    return any(t.name not in local for t in spec.tasks)
