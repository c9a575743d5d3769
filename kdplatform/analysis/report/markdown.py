"""Markdown pieces of the report: numbers as the report prints them, percentages, mean ± std, a pipe
table, and a run's configuration."""

from __future__ import annotations

import math

from kdplatform.analysis.groups import config_parts


def num(x: object, digits: int = 4) -> str:
    """An integer as itself (whole floats too), else `digits` significant digits; – for a missing value."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1):
        return str(int(x))
    return f"{float(x):.{digits}g}"


def pct(num: int, den: int) -> str:
    """num / den in percent with one decimal; – when den is 0."""
    return f"{100 * num / den:.1f}%" if den else "–"


def share_pct(x: object) -> str:
    """A share as a percentage; "–" when there is none (NULL, or NaN: a share of an empty set)."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{100 * float(x):.1f}%"


def pm(mean: object, std: object) -> str:
    """`mean ± std` with four decimals each."""

    def f(v: object) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.4f}"

    return f"{f(mean)} ± {f(std)}"


def table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def config(objective: object, temperature: object) -> str:
    """`forward_kl T=2`, or – for a run without a distillation configuration."""
    return " ".join(config_parts(objective, temperature)) or "–"
