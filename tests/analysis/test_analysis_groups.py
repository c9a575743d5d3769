"""Run groups and their labels: one configuration formatter behind every label, and the role order."""

from __future__ import annotations

import duckdb
import pandas as pd

from kdplatform.analysis.groups import Group, config_parts, role_order
from kdplatform.analysis.reading import none_if_null
from kdplatform.analysis.report.markdown import config
from kdplatform.store.schema import Role


def test_null_in_every_form_reads_as_none():
    assert [none_if_null(v) for v in (None, float("nan"), pd.NA, 0.0, "")] == [None, None, None, 0.0, ""]


def test_config_parts_and_the_labels_built_from_them():
    assert config_parts("forward_kl", 2.0) == ["forward_kl", "T=2"]
    assert config_parts("reverse_kl", 0.5) == ["reverse_kl", "T=0.5"]
    nan = float("nan")
    assert config_parts(None, nan) == config_parts(nan, None) == config_parts("", pd.NA) == []
    assert Group(Role.STUDENT, "forward_kl", 2.0, (3, 5, 7)).label == "student forward_kl T=2 (3 seeds)"
    assert Group(Role.BASELINE, None, None, (2,)).label == "baseline (1 seed)"
    assert config("forward_kl", 1.0) == "forward_kl T=1" and config(None, None) == "–"


def test_role_order_puts_teacher_baseline_student_first():
    con = duckdb.connect()
    roles = ["student_hard", "student", "baseline", "teacher"]
    con.execute("CREATE TABLE r AS SELECT unnest($1::VARCHAR[]) AS role", [roles])
    got = [r[0] for r in con.execute(f"SELECT role FROM r ORDER BY {role_order()}, role").fetchall()]
    assert got == [Role.TEACHER, Role.BASELINE, Role.STUDENT, Role.STUDENT_HARD]
    assert role_order("r.role").startswith("CASE r.role WHEN 'teacher'")
