"""The overlap page's heatmaps keep their shape and their labels: a one-seed consistency grid is square
cells with titles that fit, not a bar stretched over the page, and the pairwise matrix gives every run
label the room it needs (Vega-Lite cuts labels at 180 px unless told). Checked on the Vega-Lite specs;
tests/app/test_app_browser.py checks the drawn charts in Chromium."""

from __future__ import annotations

import sys

import pandas as pd
import pytest
from app_paths import APP

sys.path.insert(0, str(APP.parent))
plots = pytest.importorskip("plots")


def _matrix(nb: int, ns: int) -> pd.DataFrame:
    return pd.DataFrame(
        [[100 * (i + 1) + j for j in range(ns + 1)] for i in range(nb + 1)],
        index=pd.RangeIndex(nb + 1, name="baseline_seeds"),
        columns=pd.RangeIndex(ns + 1, name="student_seeds"),
    )


def _encoding(spec: dict, channel: str) -> dict:
    return spec["layer"][0]["encoding"][channel]


@pytest.mark.parametrize(("nb", "ns"), [(1, 1), (3, 1), (3, 3)])
def test_consistency_cells_are_square_whatever_the_seeds(nb, ns):
    spec = plots.consistency_heatmap(_matrix(nb, ns)).to_dict()
    assert spec["width"] == plots.CELL_PX * (ns + 1) and spec["height"] == plots.CELL_PX * (nb + 1)
    for channel in ("x", "y"):
        title = _encoding(spec, channel)["title"]
        assert isinstance(title, list) and len(title) == 2  # two short lines fit a 2 x 2 grid
        assert max(len(line) for line in title) * plots.CHAR_PX <= 2 * plots.CELL_PX + 20
    assert _encoding(spec, "x")["axis"]["labelAngle"] == 0


def test_overlap_labels_get_the_room_they_need():
    labels = [f"student_filtered (forward_kl, T=2) s{i} (#{100 + i})" for i in range(10)]
    matrix = pd.DataFrame(1.0, index=labels, columns=labels)
    spec = plots.overlap_heatmap(matrix, "n_both").to_dict()
    longest = max(len(x) for x in labels) * plots.CHAR_PX
    for channel in ("x", "y"):
        assert _encoding(spec, channel)["axis"]["labelLimit"] >= longest > 180
    assert spec["width"] == spec["height"] >= 10 * 40
