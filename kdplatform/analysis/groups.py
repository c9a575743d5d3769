"""Which runs are compared: a job's scanned models, pooled into groups, and how they are labelled.

A *group* is the runs of one job with one (role, objective, temperature): one configuration over its
seeds. The paper's Venn diagrams (Figures 4, 10, 11, 13) pool the seeds of a role, an example counts as
memorized by "the baseline" when any baseline seed memorized it. `student_group` picks which student runs
are pooled: one role at one (objective, temperature), by default the job spec's first objective and first
temperature (the configuration a sweep starts from), else the configuration with the most seeds.

An analysis of one student group takes a `GroupChoice`: a Group (from `student_group` or `groups`), or a
role for that role's default group; `chosen` resolves it, so the choice is made in one place.

Each of these reads the job's scanned_runs, a pass over every scan row; an analysis that asks several of
them passes the table it read once as `runs` (scanned_runs' rows of the job) instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, TypeAlias

import pandas as pd

from kdplatform.analysis.jobs import job_info
from kdplatform.analysis.reading import Db, none_if_null, read, read_job
from kdplatform.store.schema import Role


def role_order(column: str = "role") -> str:
    """An ORDER BY key putting the teacher first, then the baseline, the student and the other roles."""
    return f"CASE {column} WHEN 'teacher' THEN 0 WHEN 'baseline' THEN 1 WHEN 'student' THEN 2 ELSE 3 END"


ROLE_ORDER = role_order()


def config_parts(objective: object, temperature: object) -> list[str]:
    """A run's distillation configuration as label words: the objective and `T=<temperature>`, each only
    when set; callers join them to their own format."""
    o, t = none_if_null(objective), none_if_null(temperature)
    return [p for p in (str(o) if o else "", f"T={float(t):g}" if t is not None else "") if p]


@dataclass(frozen=True)
class Group:
    """Runs pooled as one model: a role at one (objective, temperature), over its seeds."""

    role: str
    objective: str | None
    temperature: float | None
    run_ids: tuple[int, ...]

    @property
    def label(self) -> str:
        n = len(self.run_ids)
        words = [self.role, *config_parts(self.objective, self.temperature)]
        return " ".join(words) + f" ({n} seed{'s' if n != 1 else ''})"


def group_filter(prefix: str = "student_") -> str:
    """SQL matching one group's rows in a view with `<prefix>role`, `<prefix>objective`, ... columns;
    its parameters are group_params(g)."""
    return (
        f"{prefix}role = :role AND {prefix}objective IS NOT DISTINCT FROM :objective "
        f"AND {prefix}temperature IS NOT DISTINCT FROM :temperature"
    )


def group_params(g: Group) -> dict[str, Any]:
    return {"role": g.role, "objective": g.objective, "temperature": g.temperature}


def _scanned_order(p: str = "") -> str:
    """Teacher, baseline, students; then by configuration and seed (`p`: the view's alias and a dot)."""
    return f"{role_order(p + 'role')}, {p}role, {p}objective, {p}temperature, {p}seed, {p}run_id"


def scanned_runs(db: Db, job_id: int) -> pd.DataFrame:
    """The job's scanned models (the scanned_runs view): run id, scanned dataset, role, seed, objective,
    temperature, model, examples and memorized counts; teacher first, then baseline and students."""
    return read_job(db, job_id, f"SELECT * FROM scanned_runs WHERE job_id = :j ORDER BY {_scanned_order()}")


def scanned(db: Db, job_id: int | None = None) -> pd.DataFrame:
    """scanned_runs with the job's name, of one job or of every job (None).

    Columns: job_id, job, dataset_id, run_id, role, seed, temperature, objective, model_family,
    model_name, examples, memorized.
    """
    sql = f"""
        SELECT s.job_id, j.name AS job, s.dataset_id, s.run_id, s.role, s.seed, s.temperature, s.objective,
               s.model_family, s.model_name, s.examples, s.memorized
        FROM scanned_runs s JOIN jobs j ON j.id = s.job_id
        {"WHERE s.job_id = :j" if job_id is not None else ""}
        ORDER BY s.job_id, {_scanned_order("s.")}
        """
    return read(db, sql) if job_id is None else read_job(db, job_id, sql)


def _default_config(db: Db, job_id: int) -> tuple[str | None, float | None]:
    distill = job_info(db, job_id)["spec"].get("student", {}).get("distill", {})
    objectives, temperatures = distill.get("objective") or [None], distill.get("temperature") or [None]
    return objectives[0], temperatures[0]


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float) or isinstance(b, float):
        return math.isclose(float(a), float(b))
    return a == b


def _runs(db: Db, job_id: int, runs: pd.DataFrame | None) -> pd.DataFrame:
    return scanned_runs(db, job_id) if runs is None else runs


def groups(db: Db, job_id: int, role: str, runs: pd.DataFrame | None = None) -> list[Group]:
    """Every (objective, temperature) configuration of a role in the job, with its scanned runs."""
    runs = _runs(db, job_id, runs)
    runs = runs[runs["role"] == role]
    out: dict[tuple, list[int]] = {}
    for r in runs.itertuples():
        key = (none_if_null(r.objective), none_if_null(r.temperature))
        out.setdefault(key, []).append(int(r.run_id))
    return [Group(role, o, t, tuple(ids)) for (o, t), ids in out.items()]


def student_group(
    db: Db,
    job_id: int,
    role: str = Role.STUDENT,
    objective: str | None = None,
    temperature: float | None = None,
    runs: pd.DataFrame | None = None,
) -> Group | None:
    """The runs of `role` pooled as one model (see the module docstring for the default choice)."""
    found = groups(db, job_id, role, runs)
    if objective is not None or temperature is not None:
        found = [
            g
            for g in found
            if (objective is None or g.objective == objective)
            and (temperature is None or _same(g.temperature, temperature))
        ]
    if not found:
        return None
    d_obj, d_t = _default_config(db, job_id)
    for g in found:
        if _same(g.objective, d_obj) and _same(g.temperature, d_t):
            return g
    return max(found, key=lambda g: (len(g.run_ids), -min(g.run_ids)))


def role_runs(db: Db, job_id: int, role: str, runs: pd.DataFrame | None = None) -> list[int]:
    """Every scanned run of a role in the job (all seeds and configurations)."""
    runs = _runs(db, job_id, runs)
    return [int(r) for r in runs.loc[runs["role"] == role, "run_id"]]


GroupChoice: TypeAlias = Group | str | None
"""A Group as given, a role for its default group (student_group), or None for no group."""


def chosen(db: Db, job_id: int, group: GroupChoice, runs: pd.DataFrame | None = None) -> Group | None:
    """The group an analysis of one student group runs on (see GroupChoice)."""
    return student_group(db, job_id, group, runs=runs) if isinstance(group, str) else group


def trio(
    db: Db, job_id: int, group: GroupChoice, runs: pd.DataFrame | None = None
) -> tuple[list[int], list[int], Group] | None:
    """The teacher runs, the baseline runs and the student group that a three-way comparison needs; None
    when the job lacks a scanned teacher, baseline or that group."""
    runs = _runs(db, job_id, runs)
    teacher, baseline = role_runs(db, job_id, Role.TEACHER, runs), role_runs(db, job_id, Role.BASELINE, runs)
    student = chosen(db, job_id, group, runs)
    if not teacher or not baseline or student is None:
        return None
    return teacher, baseline, student
