"""Figures Streamlit's native charts do not draw: a three-set Venn diagram and KDE contours (matplotlib),
and the overlap page's two heatmaps (Altair), sized from what they show: square cells of a fixed size
whatever the number of seeds (one seed is a 2 x 2 grid, not a bar stretched over the page) and axis
labels given the room their longest label needs (Vega-Lite cuts labels at 180 px by default)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import altair as alt  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from kdplatform.analysis.report.figures import draw_venn3  # noqa: E402


def venn3(counts: pd.DataFrame, labels: tuple[str, str, str]):
    """A three-circle Venn diagram of overlap.venn3's seven region counts (figures.draw_venn3)."""
    n = dict(zip(counts["region"], counts["count"].astype(int), strict=True))
    fig, ax = plt.subplots(figsize=(5.2, 4.6))
    draw_venn3(ax, n, labels)
    fig.tight_layout()
    return fig


def kde_contours(
    df: pd.DataFrame, x: str, y: str, by: str, *, logx: bool = False, xlabel: str = "", ylabel: str = ""
):
    """Gaussian-KDE contours of (x, y) per category of `by`; categories with too few distinct points
    for a density are drawn as points instead."""
    from scipy.stats import gaussian_kde

    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    palette = ["#ff7f0e", "#d62728", "#1f77b4", "#2ca02c", "#9467bd"]
    d = df[[x, y, by]].dropna()
    xs = np.log10(d[x].astype(float).clip(lower=1e-12)) if logx else d[x].astype(float)
    d = d.assign(_x=xs, _y=d[y].astype(float))
    if d.empty:
        ax.text(0.5, 0.5, "no examples", ha="center", transform=ax.transAxes)
    gx = np.linspace(d["_x"].min(), d["_x"].max(), 80) if not d.empty else None
    gy = np.linspace(d["_y"].min(), d["_y"].max(), 80) if not d.empty else None
    handles = []
    for i, (cat, part) in enumerate(sorted(d.groupby(by), key=lambda kv: str(kv[0]))):
        colour = palette[i % len(palette)]
        pts = part[["_x", "_y"]].to_numpy().T
        drawn = False
        if pts.shape[1] >= 5 and np.linalg.matrix_rank(np.cov(pts)) == 2:
            try:
                kde = gaussian_kde(pts)
                xx, yy = np.meshgrid(gx, gy)
                zz = kde(np.vstack([xx.ravel(), yy.ravel()])).reshape(xx.shape)
                ax.contour(xx, yy, zz, levels=5, colors=colour, linewidths=1.2)
                drawn = True
            except (np.linalg.LinAlgError, ValueError):
                drawn = False
        if not drawn:
            ax.scatter(pts[0], pts[1], s=10, color=colour)
        handles.append(plt.Line2D([], [], color=colour, label=f"{cat} ({pts.shape[1]:,})"))
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="best")
    ax.set_xlabel(xlabel or (f"log10 {x}" if logx else x))
    ax.set_ylabel(ylabel or y)
    fig.tight_layout()
    return fig


CELL_PX = 64
"""Side of one heatmap cell."""
CHAR_PX = 7
"""Width of one character of an axis label (Vega-Lite's 10 px sans-serif, rounded up)."""
PAD = alt.AutoSizeParams(type="pad")
"""width and height are the cells' area, axes and legend added around it (Streamlit's default fits the
whole chart, titles and legend included, into the width, which squashes a small grid)."""


def label_px(labels: list[str]) -> int:
    """The room the longest label needs, for an axis' labelLimit (never cut)."""
    return CHAR_PX * max((len(x) for x in labels), default=0) + 12


def overlap_heatmap(matrix: pd.DataFrame, value: str) -> alt.LayerChart:
    """overlap.overlap_matrix as a heatmap: a square cell per pair of runs, each value written in its cell;
    the run labels in full on both axes (x labels slanted)."""
    long = matrix.reset_index(names="A").melt(id_vars="A", var_name="B", value_name="value")
    order = [str(x) for x in matrix.index]
    room = label_px(order)
    x = alt.X("B:N", sort=order, title=None, axis=alt.Axis(labelAngle=-90, labelLimit=room))
    y = alt.Y("A:N", sort=order, title=None, axis=alt.Axis(labelLimit=room))
    heat = (
        alt.Chart(long)
        .mark_rect()
        .encode(
            x=x, y=y, color=alt.Color("value:Q", scale=alt.Scale(scheme="blues")), tooltip=["A", "B", "value"]
        )
    )
    fmt = ",.0f" if value == "n_both" else ".2f"
    text = alt.Chart(long).mark_text(fontSize=10).encode(x=x, y=y, text=alt.Text("value:Q", format=fmt))
    side = max(CELL_PX, 44) * len(order)
    return (heat + text).properties(width=side, height=side, autosize=PAD)


def consistency_heatmap(m: pd.DataFrame) -> alt.LayerChart:
    """overlap.consistency_matrix (Figure 3) as a heatmap of square cells, (0, 0) at the bottom left; axis
    titles on two lines so that a one-seed grid (2 x 2) holds them."""
    cells = m.stack().rename("examples").reset_index()
    cells["baseline_seeds"] = cells["baseline_seeds"].astype(str)
    cells["student_seeds"] = cells["student_seeds"].astype(str)
    rows = [str(i) for i in reversed(m.index)]
    base = alt.Chart(cells).encode(
        x=alt.X(
            "student_seeds:N",
            title=["student seeds", "that memorized it"],
            sort=[str(c) for c in m.columns],
            axis=alt.Axis(labelAngle=0),
        ),
        y=alt.Y("baseline_seeds:N", title=["baseline seeds", "that memorized it"], sort=rows),
    )
    rect = base.mark_rect().encode(
        color=alt.Color("examples:Q", scale=alt.Scale(type="symlog", scheme="oranges")),
        tooltip=["baseline_seeds", "student_seeds", "examples"],
    )
    text = base.mark_text().encode(text=alt.Text("examples:Q", format=","))
    return (rect + text).properties(width=CELL_PX * len(m.columns), height=CELL_PX * len(rows), autosize=PAD)
