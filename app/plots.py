"""Figures Streamlit's native charts do not draw: a three-set Venn diagram and KDE contours (matplotlib)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

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
