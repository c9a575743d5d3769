"""The Markdown report of one job: the paper's tables and counts with this job's numbers, all read from SQL
through kdplatform.analysis.queries. Sections whose runs are missing (no hard student, no classifier run)
say so instead of failing.

    kdplatform report JOB --out report.md

`render_report` returns the text alone. `write_report` makes a self-contained results page: a provenance
header (how to regenerate it, package versions, the job's wall time, its description) and PNG figures in
`<stem>-figures/` next to the file (kdplatform.analysis.figures), linked relatively.
"""

from __future__ import annotations

import math
import platform
import shlex
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from kdplatform.analysis import compare, filtering, mia, queries
from kdplatform.analysis.queries import Db

VENN_LABELS = {
    "A": "teacher only",
    "B": "baseline only",
    "C": "student only",
    "AB": "teacher and baseline, not student (easy, suppressed by distillation)",
    "AC": "teacher and student, not baseline (inherited)",
    "BC": "baseline and student, not teacher",
    "ABC": "teacher, baseline and student (easy)",
}
COEF_LABELS = {
    "teacher_ppl": "Teacher PPL",
    "baseline_ppl": "Baseline PPL",
    "zlib_entropy": "zlib Entropy",
    "teacher_baseline_kld": "Teacher-Baseline KLD",
    "teacher_student_kld": "Teacher-Student KLD",
}
METRIC_LABELS = {
    "accuracy": "Accuracy",
    "precision": "Precision",
    "recall": "Recall",
    "f1": "F1",
    "roc_auc": "ROC-AUC",
}


def _num(x: object, digits: int = 4) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) >= 1):
        return str(int(x))
    return f"{float(x):.{digits}g}"


def _pct(num: int, den: int) -> str:
    return f"{100 * num / den:.1f}%" if den else "–"


def _share_pct(x: object) -> str:
    return "–" if x is None else f"{100 * float(x):.1f}%"


def _pm(mean: object, std: object) -> str:
    def f(v: object) -> str:
        return "–" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.4f}"

    return f"{f(mean)} ± {f(std)}"


def _table(headers: list[str], rows: list[list[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def _none(v: object) -> object:
    return None if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NA else v


def _config(objective: object, temperature: object) -> str:
    o, t = _none(objective), _none(temperature)
    return " ".join(p for p in (str(o) if o else "", f"T={float(t):g}" if t is not None else "") if p) or "–"


def _rates(db: Db, job_id: int) -> list[str]:
    out = ["## Memorization rates (Table 2)", ""]
    summ = queries.rate_summary(db, job_id)
    if summ.empty:
        return out + ["No scanned models yet.", ""]
    out.append(
        _table(
            ["model", "config", "model name", "seeds", "examples", "memorized (mean)", "rate % (mean ± std)"],
            [
                [
                    r.role,
                    _config(r.objective, r.temperature),
                    r.model_name or "–",
                    int(r.runs),
                    int(r.examples),
                    _num(float(r.memorized_mean)),
                    f"{_num(float(r.rate_pct_mean))} ± {_num(_none(r.rate_pct_std))}",
                ]
                for r in summ.itertuples()
            ],
        )
    )
    runs = queries.rates(db, job_id)
    final = queries.final_checkpoints(db, job_id).set_index("run_id")
    out += ["", "Per run (epochs and validation loss of the final checkpoint):", ""]
    out.append(
        _table(
            ["run", "model", "seed", "config", "examples", "memorized", "rate %", "epochs", "val loss"],
            [
                [
                    int(r.run_id),
                    r.role,
                    _num(_none(r.seed)),
                    _config(r.objective, r.temperature),
                    int(r.examples),
                    int(r.memorized),
                    _num(float(r.rate_pct)),
                    int(final.epoch[r.run_id]) if r.run_id in final.index else "–",
                    _num(float(final.val_loss[r.run_id])) if r.run_id in final.index else "–",
                ]
                for r in runs.itertuples()
            ],
        )
    )
    return out + [""]


def _venn(db: Db, job_id: int) -> list[str]:
    out = ["## Overlap of memorized examples (Figure 4)", ""]
    v = queries.job_venn(db, job_id)
    if v is None:
        return out + ["Needs a scanned teacher, baseline and student.", ""]
    out += [
        f"Teacher runs {list(v.teacher)}, baseline runs {list(v.baseline)} (seeds pooled), "
        f"student: {v.student.label}, runs {list(v.student.run_ids)}.",
        "",
        _table(["region", "examples"], [[f"{r} — {VENN_LABELS[r]}", v[r]] for r in queries.REGIONS]),
        "",
        f"- Easy-to-memorize (teacher and a baseline seed): {v.n_easy}",
        f"- Student memorized (seeds pooled): {v.n_student}; of these easy: {v['ABC']} "
        f"({_pct(v['ABC'], v.n_student)})",
        f"- Easy examples the student did not memorize: {v['AB']}",
        "",
        "## Inheritance (section 3.1)",
        "",
        f"Inherited (memorized by the teacher and the student, by no baseline seed): **{v.n_inherited}** "
        f"of {v.n_teacher_not_baseline} teacher-not-baseline examples "
        f"({_pct(v.n_inherited, v.n_teacher_not_baseline)}); "
        f"{_pct(v.n_inherited, v.n_student)} of the student's memorization.",
        "",
    ]
    inh = queries.inheritance(db, job_id)
    if not inh.empty:
        out += [
            "Per (teacher, student, baseline) run triple, baseline of the student's seed where there is one:",
            "",
            _table(
                [
                    "student",
                    "student run (seed)",
                    "baseline run (seed)",
                    "teacher ∖ baseline",
                    "inherited",
                    "share of student",
                ],
                [
                    [
                        f"{r.student_role} {_config(r.student_objective, r.student_temperature)}",
                        f"{int(r.student_run_id)} ({_num(_none(r.student_seed))})",
                        f"{int(r.baseline_run_id)} ({_num(_none(r.baseline_seed))})",
                        int(r.n_teacher_not_baseline),
                        int(r.n_inherited),
                        _share_pct(_none(r.share_of_student)),
                    ]
                    for r in inh.itertuples()
                ],
            ),
            "",
        ]
    return out


def _consistency(db: Db, job_id: int) -> list[str]:
    out = ["## Consistency across seeds (Figure 3)", ""]
    m = queries.consistency_matrix(db, job_id)
    if m.empty:
        return out + ["Needs scanned baseline and student runs.", ""]
    out += [
        f"Examples by how many baseline seeds (rows) and how many seeds of {m.attrs['group'].label} "
        "(columns) memorized them.",
        "",
        _table(
            ["baseline \\ student"] + [str(c) for c in m.columns],
            [[str(i)] + [int(x) for x in m.loc[i]] for i in m.index],
        ),
        "",
    ]
    return out


def _classifier(db: Db, job_id: int) -> list[str]:
    out = ["## Memorization classifier (section 4.1, Tables 4-7)", ""]
    s = queries.classifier_summary(db, job_id)
    if s.empty:
        return out + ["No classifier run stored for this job.", ""]
    n = int(s["n_trials"].max())
    metrics, coefs = s[s["kind"] == "metric"], s[s["kind"] == "coefficient"]
    out += [
        f"Classifier run {int(s['run_id'].iloc[0])}: mean ± std over {n} trials; positives are the examples "
        f"memorized by the {queries.classifier_target(db, int(s['run_id'].iloc[0]))} "
        "(`classifier.target`).",
        "",
        _table(
            ["Metric", "Value"],
            [[METRIC_LABELS.get(r.name, r.name), _pm(r.mean, r.std)] for r in metrics.itertuples()],
        ),
        "",
        _table(
            ["Feature", "Coefficient"],
            [[COEF_LABELS.get(r.name, r.name), _pm(r.mean, r.std)] for r in coefs.itertuples()],
        ),
        "",
    ]
    return out


def _filtering(db: Db, job_id: int) -> list[str]:
    f = filtering.filtering_summary(db, job_id)
    if f is None:
        return []
    return [
        "## Filtering before distillation (section 4.2)",
        "",
        _table(
            ["", "examples"],
            [
                ["excluded (predicted memorized)", f.n_excluded],
                [f"memorized before ({f.before.label})", f.n_before],
                [f"memorized after ({f.after.label})", f.n_after],
                ["newly memorized after filtering", f.n_new],
                ["memorized before and excluded", f.n_before_excluded],
                ["memorized after although excluded", f.n_after_excluded],
            ],
        ),
        "",
    ]


def _mia(db: Db, job_id: int) -> list[str]:
    auc = mia.mia(db, job_id)
    if auc.empty or auc["auc"].isna().all():
        return []
    r0 = auc.iloc[0]
    return [
        "## Student vs baseline-only memorization (A.5)",
        "",
        f"AUC of each feature separating {int(r0.n_student)} student-memorized from "
        f"{int(r0.n_baseline_only)} baseline-only examples:",
        "",
        _table(
            ["feature", "AUC (max(auc, 1-auc))", "direction"],
            [
                [COEF_LABELS.get(r.feature, r.feature), _num(_none(r.auc_separation)), r.direction]
                for r in auc.itertuples()
                if not math.isnan(r.auc)
            ],
        ),
        "",
    ]


def _soft_hard(db: Db, job_id: int) -> list[str]:
    sh = compare.soft_vs_hard(db, job_id)
    if sh is None:
        return []
    return [
        "## Soft vs hard distillation (section 6)",
        "",
        f"Soft: {sh.soft.label}; hard: {sh.hard.label} (seeds pooled).",
        "",
        _table(
            ["", "value"],
            [
                ["memorized by the soft student", sh.n_soft],
                ["memorized by the hard student", sh.n_hard],
                ["memorized by both", sh.n_both],
                ["share of the hard student's also memorized by the soft", _pct(sh.n_both, sh.n_hard)],
                ["hard-memorized and easy (teacher and baseline)", sh.n_hard_easy],
                ["difficult (hard only: not soft, no baseline seed)", sh.n_difficult],
                [
                    "difficult also memorized by the teacher",
                    f"{sh.n_difficult_teacher} ({_pct(sh.n_difficult_teacher, sh.n_difficult)})",
                ],
                ["inherited by the soft student", sh.inherited_soft],
                ["inherited by the hard student", sh.inherited_hard],
                ["inheritance ratio hard / soft", _num(sh.inheritance_ratio, 3)],
            ],
        ),
        "",
    ]


def _verdicts(db: Db, job_id: int) -> list[str]:
    from kdplatform.analysis.verdicts import verdicts

    lines = [f"- {v.line()}" for v in verdicts(db, job_id)]
    return ["## The paper's findings on this job", "", *lines, ""]


SECTIONS = (_verdicts, _rates, _venn, _consistency, _classifier, _filtering, _mia, _soft_hard)
VERSIONED = ("kdplatform", "torch", "transformers", "duckdb", "sqlalchemy", "mlflow", "scikit-learn")


def _title(db: Db, job_id: int) -> list[str]:
    return [f"# Memorization report: {queries.job_info(db, job_id)['name']} (job {job_id})", ""]


def _body(db: Db, job_id: int) -> list[str]:
    lines: list[str] = []
    for section in SECTIONS:
        lines += section(db, job_id)
    return lines


def _duration(seconds: float) -> str:
    s = round(seconds)
    if s < 60:
        return f"{seconds:.1f} s"
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h} h {m:02d} min" if h else f"{m} min {sec:02d} s"


def versions() -> dict[str, str]:
    """Versions of the environment writing the report (the database does not record the run's)."""
    out = {}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out | {"python": platform.python_version()}


def regenerate_command(job_yaml: str | Path, out: str | Path, options: Sequence[str] = ()) -> str:
    """The shell line that reruns the job (finished stages are skipped) and rewrites this report."""
    run = shlex.join(["kdplatform", "run", str(job_yaml), *options])
    report = shlex.join(["kdplatform", "report", str(job_yaml), *options, "--out", str(out)])
    return f"{run} && {report}"


def _provenance(db: Db, job_id: int, command: str | None) -> list[str]:
    info = queries.job_info(db, job_id)
    out: list[str] = []
    description = info["spec"].get("description")
    if isinstance(description, str) and description.strip():
        out += [f"> {line}".rstrip() for line in description.strip().splitlines()] + [""]
    out.append(f"- Job: `{info['name']}` (job {job_id} in its database)")
    if command:
        out.append(f"- Regenerate: `{command}`")
    t = queries.job_timings(db, job_id)
    if t is None:
        out.append("- Wall time: no finished stage has its start and finish stored")
    else:
        out.append(
            f"- Wall time: {_duration(t.span_seconds)} from the first stage's start to the last stage's "
            f"finish ({t.first_start:%Y-%m-%d %H:%M} to {t.last_finish:%Y-%m-%d %H:%M} UTC); "
            f"the {t.stages} finished stages took {_duration(t.stage_seconds)} in sum"
        )
    v = versions()
    out.append(
        "- Package versions (the environment that wrote this report): "
        + ", ".join(f"{k} {val}" for k, val in v.items())
    )
    return out + [""]


def _figures(figures: list[tuple[str, Path]], base: Path) -> list[str]:
    if not figures:
        return []
    out = ["## Figures", ""]
    for caption, path in figures:
        link = quote(path.relative_to(base).as_posix())
        alt = caption.replace("[", "(").replace("]", ")")
        out += [f"![{alt}]({link})", "", caption, ""]
    return out


def render_report(db: Db, job: int | str) -> str:
    """The report's text alone: no provenance header and no figures, for callers that want the tables."""
    if isinstance(db, str):  # one connection for the report's few dozen queries
        with queries.connect(db) as conn:
            return render_report(conn, job)
    job_id = queries.resolve_job(db, job)
    return "\n".join(_title(db, job_id) + _body(db, job_id)).rstrip() + "\n"


def write_report(
    db: Db,
    job: int | str,
    path: str | Path,
    *,
    job_yaml: str | Path | None = None,
    options: Sequence[str] = (),
) -> str:
    """Write the results page to `path` and its figures to `<stem>-figures/` beside it; returns the Markdown.

    `job_yaml` (and the CLI `options` it was given, e.g. --workdir) go into the header's regenerate
    command; without it the header has no command.
    """
    if isinstance(db, str):  # one connection for the report's and the figures' queries
        with queries.connect(db) as conn:
            return write_report(conn, job, path, job_yaml=job_yaml, options=options)
    from kdplatform.analysis.figures import write_figures

    path = Path(path)
    job_id = queries.resolve_job(db, job)
    command = regenerate_command(job_yaml, path, options) if job_yaml is not None else None
    figures = write_figures(db, job_id, path.parent / f"{path.stem}-figures")
    lines = _title(db, job_id) + _provenance(db, job_id, command) + _body(db, job_id)
    md = "\n".join(lines + _figures(figures, path.parent)).rstrip() + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(md)
    return md
