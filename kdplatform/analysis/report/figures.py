"""PNG figures of one job for its Markdown report (kdplatform.analysis.report.write_report).

Every figure is drawn from SQL through the same query functions the report's tables and the dashboard
use (the analysis modules), so a figure and the table beside it agree. A figure whose data the job lacks
(one seed: no consistency heatmap; one temperature: no sweep) is skipped, not drawn empty. Figures are
`matplotlib.figure.Figure` objects saved directly: pyplot is never imported, so no figure or state leaks
into a caller's pyplot session.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from kdplatform.analysis.features import easy_scatter
from kdplatform.analysis.features import features as example_features
from kdplatform.analysis.groups import Group, role_runs, student_group
from kdplatform.analysis.mia import mechanism_points
from kdplatform.analysis.overlap import REGIONS, consistency_matrix, job_venn
from kdplatform.analysis.rates import rates, temperature_sweep
from kdplatform.analysis.reading import Db, connect
from kdplatform.store.schema import Role

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

DPI = 120
TEACHER, BASELINE, STUDENT, STUDENT_MEMORIZED, OTHER = "#2ca02c", "#d62728", "#1f77b4", "#ff7f0e", "#9a9a9a"
MODEL_COLOURS = {Role.TEACHER: TEACHER, Role.BASELINE: BASELINE, Role.STUDENT: STUDENT}

Drawn = tuple[str, "Figure"] | None


def _figure(width: float, height: float) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def _log_y(ax: Axes) -> None:
    """A log y axis labelled 20, 30, 40 rather than 2x10^1: perplexities span one or two decades."""
    from matplotlib.ticker import LogFormatter

    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(LogFormatter())
    ax.yaxis.set_minor_formatter(LogFormatter(labelOnlyBase=False))


def _seeds(n: int) -> str:
    return f"{n} seed{'s' if n != 1 else ''}"


# ------------------------------------------------------------------------------------- Figure 4: Venn
# Circle centres (unit radius) and where each region's count goes; circles are equal, not to scale.
_CENTRES = {"A": (-0.55, 0.35), "B": (0.55, 0.35), "C": (0.0, -0.55)}
_SPOTS = {
    "A": (-1.0, 0.65),
    "B": (1.0, 0.65),
    "C": (0.0, -1.1),
    "AB": (0.0, 0.8),
    "AC": (-0.65, -0.3),
    "BC": (0.65, -0.3),
    "ABC": (0.0, 0.05),
}
# Each set's label: position, vertical alignment, and what separates it from its total.
_LABELS = {"A": (-1.45, 1.5, "bottom", "\n"), "B": (1.45, 1.5, "bottom", "\n"), "C": (0.0, -1.75, "top", " ")}


def draw_venn3(ax: Axes, counts: Mapping[str, int], labels: tuple[str, str, str]) -> None:
    """Three equal circles (areas not to scale) on `ax`, each of overlap.REGIONS' counts in its region
    (AC, the inherited region, in bold) and each set's label with its total; shared by the report's
    figure and the dashboard's Overlap page."""
    from matplotlib.patches import Circle

    colours = {"A": TEACHER, "B": BASELINE, "C": STUDENT}
    for key, (x, y) in _CENTRES.items():
        ax.add_patch(Circle((x, y), 1.0, alpha=0.2, color=colours[key], lw=0))
        ax.add_patch(Circle((x, y), 1.0, fill=False, color=colours[key], lw=1.5))
    for r, (x, y) in _SPOTS.items():
        ax.text(
            x,
            y,
            f"{counts.get(r, 0):,}",
            ha="center",
            va="center",
            fontsize=12,
            fontweight="bold" if r == "AC" else "normal",
        )
    total = {k: sum(counts.get(r, 0) for r in REGIONS if k in r) for k in "ABC"}
    for key, (x, y, va, sep) in _LABELS.items():
        text = f"{labels['ABC'.index(key)]}{sep}({total[key]:,})"
        ax.text(x, y, text, ha="center", va=va, color=colours[key], fontsize=9)
    ax.set_xlim(-2.3, 2.3)
    ax.set_ylim(-2.1, 2.2)
    ax.set_aspect("equal")
    ax.axis("off")


def venn(db: Db, job_id: int) -> Drawn:
    """The report's Figure 4 table as a picture: teacher, pooled baseline seeds, pooled student group."""
    v = job_venn(db, job_id)
    if v is None:
        return None
    fig = _figure(5.4, 4.8)
    labels = (
        "teacher",
        f"baseline, {_seeds(len(v.baseline))} pooled",
        f"{v.student.label.rsplit(' (', 1)[0]}, {_seeds(len(v.student.run_ids))} pooled",
    )
    draw_venn3(fig.add_subplot(), {r: int(v[r]) for r in REGIONS}, labels)
    caption = (
        f"Figure 4: examples memorized by the teacher, the baseline ({_seeds(len(v.baseline))} pooled) and "
        f"the {v.student.label}, seeds pooled; each region's count (bold: inherited, memorized by "
        "teacher and student but no baseline seed). Circles are equal, not to scale."
    )
    return caption, fig


# ------------------------------------------------------------------------------ Figure 3: consistency
def consistency(db: Db, job_id: int) -> Drawn:
    """Seed counts need several seeds: with one baseline and one student run the matrix says nothing the
    Venn does not."""
    m = consistency_matrix(db, job_id)
    if m.empty or max(m.shape) < 3:
        return None
    counts = m.to_numpy(dtype=float)
    shade = np.log1p(counts)  # the (0, 0) cell dwarfs the rest; a log scale keeps the others visible
    fig = _figure(max(4.5, 1.2 + 0.9 * m.shape[1]), 1.2 + 0.8 * m.shape[0])
    ax = fig.add_subplot()
    ax.imshow(shade, cmap="Blues", aspect="auto")
    top = shade.max() or 1.0
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            ax.text(
                j,
                i,
                f"{int(counts[i, j]):,}",
                ha="center",
                va="center",
                fontsize=10,
                color="white" if shade[i, j] > 0.6 * top else "black",
            )
    ax.set_xticks(range(m.shape[1]), [str(c) for c in m.columns])
    ax.set_yticks(range(m.shape[0]), [str(r) for r in m.index])
    g: Group = m.attrs["group"]
    ax.set_xlabel("student seeds that memorized")
    ax.set_title(g.label, fontsize=10)
    ax.set_ylabel("baseline seeds that memorized")
    caption = (
        f"Figure 3: examples by how many of the {m.shape[0] - 1} baseline seeds (rows) and how many of the "
        f"{m.shape[1] - 1} seeds of the {g.label} (columns) memorized them; shading is log-scaled."
    )
    return caption, fig


# ------------------------------------------------------------------------------- Figure 5: easy examples
def zlib_vs_ppl(db: Db, job_id: int, sample: int = 25_000) -> Drawn:
    """Easy-to-memorize examples against the rest; above `sample` examples the others are subsampled, as
    the paper's 25,000."""
    df = easy_scatter(db, job_id, sample).dropna(subset=["zlib_entropy", "baseline_ppl"])
    if df.empty:
        return None
    easy, other = df[df["easy"]], df[~df["easy"]]
    fig = _figure(6.0, 4.4)
    ax = fig.add_subplot()
    for part, name, size, colour, alpha in (
        (other, "other", 9, OTHER, 0.6),
        (easy, "easy", 12, BASELINE, 0.8),
    ):
        label = f"{name} ({len(part):,})"
        ax.scatter(part["zlib_entropy"], part["baseline_ppl"], s=size, color=colour, alpha=alpha, label=label)
    _log_y(ax)
    ax.set_xlabel("zlib entropy (bytes)")
    ax.set_ylabel("baseline perplexity")
    ax.legend(fontsize=8)
    n_baseline = len(role_runs(db, job_id, Role.BASELINE))
    step = int(df.attrs.get("step", 1))
    shown = (
        f"all {len(df):,} training examples"
        if step == 1
        else f"every easy example and the {len(other):,} others whose id is a multiple of {step}"
    )
    caption = (
        f"Figure 5: zlib entropy against baseline perplexity (mean over {_seeds(n_baseline)}), {shown}; "
        "red: easy-to-memorize (memorized by the teacher and a baseline seed)."
    )
    return caption, fig


# -------------------------------------------------------------------------- Figure 7: feature distributions
FEATURES = (
    ("teacher_ppl", "teacher perplexity", True),
    ("baseline_ppl", "baseline perplexity", True),
    ("zlib_entropy", "zlib entropy (bytes)", False),
    ("teacher_baseline_kld", "teacher-baseline KLD", False),
)


def features(db: Db, job_id: int) -> Drawn:
    """A distribution split needs both sides: no figure when the student memorized nothing (or all)."""
    df = example_features(db, job_id)
    if df.empty:
        return None
    mem = df["student_memorized"]
    panels = []
    for col, label, log in FEATURES:
        yes, no = df.loc[mem, col].dropna(), df.loc[~mem, col].dropna()
        if len(yes) and len(no):
            panels.append((label, log, no.to_numpy(dtype=float), yes.to_numpy(dtype=float)))
    if not panels:
        return None
    cols = min(2, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = _figure(3.3 * cols, 2.9 * rows)
    for i, (label, log, no, yes) in enumerate(panels):
        ax = fig.add_subplot(rows, cols, i + 1)
        box = ax.boxplot([no, yes], widths=0.55, patch_artist=True, flierprops={"markersize": 3})
        for patch, colour in zip(box["boxes"], (OTHER, STUDENT), strict=True):
            patch.set_facecolor(colour)
            patch.set_alpha(0.5)
        ax.set_xticks([1, 2], [f"not memorized\n({len(no):,})", f"memorized\n({len(yes):,})"], fontsize=8)
        if log:
            _log_y(ax)
        ax.set_title(label, fontsize=10)
    g: Group = df.attrs["group"]
    caption = (
        f"Figure 7: the classifier's features of the examples the {g.label} memorized (any seed) "
        "and of those it did not (example_features); box plots: median, quartiles, whiskers at 1.5 IQR."
    )
    return caption, fig


# ----------------------------------------------------------------------------- Figure 8: mechanism
SUBSETS = {
    "teacher_baseline_not_student": "memorized by teacher and baseline, not student",
    "student_memorized": "memorized by the student",
}


def entropy_vs_logprob(db: Db, job_id: int) -> Drawn:
    """mia.mechanism_points' two subsets side by side, each model a colour (the paper's left and right)."""
    pts = mechanism_points(db, job_id)
    present = [s for s in SUBSETS if (pts["subset"] == s).any()]
    if not present:
        return None
    fig = _figure(4.4 * len(present), 4.0)
    axes = fig.subplots(1, len(present), sharex=True, sharey=True, squeeze=False)[0]
    for ax, subset in zip(axes, present, strict=True):
        part = pts[pts["subset"] == subset]
        for model, colour in MODEL_COLOURS.items():
            sel = part[part["model"] == model]
            if sel.empty:
                continue
            if subset == "student_memorized" and model == Role.STUDENT:
                colour = STUDENT_MEMORIZED
            ax.scatter(
                sel["suffix_entropy"], sel["suffix_logprob"], s=12, alpha=0.6, color=colour, label=model
            )
        n = part["example_id"].nunique()
        ax.set_title(f"{SUBSETS[subset]} ({n:,})", fontsize=9)
        ax.set_xlabel("mean suffix entropy (nats)")
        ax.legend(fontsize=8)
    axes[0].set_ylabel("suffix log-probability")
    g = student_group(db, job_id)
    caption = (
        "Figure 8: suffix log-probability against mean suffix entropy of the teacher, baseline and student "
        f"({g.label if g else 'student'}) on the examples the teacher and a baseline seed memorized but no "
        "student seed did, and on the student's memorized examples; one point per example and model, "
        "averaged over the model's seeds."
    )
    return caption, fig


# ---------------------------------------------------------------------------- Figure 2: temperature
def temperature(db: Db, job_id: int) -> Drawn:
    """A sweep needs two temperatures of one objective trained by one seed. The mean is over the seeds
    that trained every temperature (as the Figure 2 verdict compares them); every seed's runs are drawn
    too, so extra seeds at the first temperature stay visible without skewing the curve."""
    sweep = temperature_sweep(db, job_id, every_temperature=True)
    sweep = sweep.assign(objective=sweep["objective"].fillna("–"))
    objectives = [
        o for o, part in sweep.groupby("objective", sort=True) if part["temperature"].nunique() >= 2
    ]
    if not objectives:
        return None
    per_run = rates(db, job_id)
    runs = per_run[(per_run["role"] == Role.STUDENT) & per_run["temperature"].notna()]
    runs = runs.assign(objective=runs["objective"].fillna("–"))
    base = per_run.loc[per_run["role"] == Role.BASELINE, "rate_pct"]
    seeds = sorted({int(s) for s in runs["seed"].dropna()})
    palette = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22"]
    fig = _figure(4.6 * len(objectives), 3.8)
    axes = fig.subplots(1, len(objectives), sharey=True, squeeze=False)[0]
    for ax, objective in zip(axes, objectives, strict=True):
        agg = sweep[sweep["objective"] == objective].sort_values("temperature")
        own = runs[runs["objective"] == objective]
        for i, seed in enumerate(seeds):
            s = own[own["seed"] == seed].sort_values("temperature")
            if not s.empty:
                ax.plot(
                    s["temperature"],
                    s["rate_pct"],
                    marker="o",
                    ms=4,
                    lw=0.8,
                    alpha=0.7,
                    color=palette[i % len(palette)],
                    label=f"seed {seed}",
                )
        mean = agg["rate_pct_mean"].to_numpy()
        spread = [mean - agg["rate_pct_min"].to_numpy(), agg["rate_pct_max"].to_numpy() - mean]
        err = np.clip(np.vstack(spread), 0.0, None)  # equal seeds: AVG may round a hair below MIN
        ax.errorbar(
            agg["temperature"],
            mean,
            yerr=err,
            color="black",
            lw=2,
            capsize=4,
            marker="s",
            label=f"mean of {_seeds(int(agg['runs'].iloc[0]))} (min–max)",
        )
        if not base.empty:
            ax.axhline(float(base.mean()), ls="--", color=BASELINE, label=f"baseline ({_seeds(len(base))})")
        ax.set_xticks(agg["temperature"].tolist(), [f"{t:g}" for t in agg["temperature"]])
        ax.set_xlabel("distillation temperature T")
        ax.set_title(str(objective), fontsize=10)
        ax.legend(fontsize=7)
    axes[0].set_ylabel("memorized (%)")
    caption = (
        "Figure 2: memorization rate (%) of the soft students against the distillation temperature T: "
        "in black the mean over the seeds that trained every temperature, bars from their lowest to their "
        "highest rate; each seed's runs as thin lines; the baseline's mean rate dashed."
    )
    return caption, fig


FIGURES: tuple[tuple[str, Callable[[Db, int], Drawn]], ...] = (
    ("venn", venn),
    ("consistency", consistency),
    ("zlib_vs_ppl", zlib_vs_ppl),
    ("features", features),
    ("entropy_vs_logprob", entropy_vs_logprob),
    ("temperature", temperature),
)


def write_figures(db: Db, job_id: int, out_dir: Path) -> list[tuple[str, Path]]:
    """Write each figure the job has data for as `out_dir/<name>.png`; returns (caption, path) in order.

    A figure skipped this time is removed from `out_dir` if an earlier report left it there, so the folder
    never holds a picture the report does not describe. PNGs carry no software metadata: a rerun on the
    same database writes the same bytes on the same matplotlib.
    """
    if isinstance(db, str):  # one connection for the figures' queries
        with connect(db) as conn:
            return write_figures(conn, job_id, out_dir)
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:  # a caller's interactive pyplot keeps its own backend
        matplotlib.use("Agg")
    out_dir = Path(out_dir)
    written: list[tuple[str, Path]] = []
    for name, draw in FIGURES:
        path = out_dir / f"{name}.png"
        drawn = draw(db, job_id)
        if drawn is None:
            path.unlink(missing_ok=True)
            continue
        caption, fig = drawn
        out_dir.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=DPI, metadata={"Software": None})
        written.append((caption, path))
    return written
