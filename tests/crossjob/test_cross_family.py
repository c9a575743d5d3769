"""The cross-job views, the cross-scan and the scale hierarchy on the CPU analogue (conftest.py), each
checked against pandas (or torch) computations on the same rows."""

from __future__ import annotations

from kdplatform.analysis.reading import read


def test_debug(families):
    print(repr(families.first_error))
    print("\n".join(families.rerun_said))
    for v in (
        "memorization_rates",
        "cross_scan_overlap",
        "zlib_correlation",
        "scale_hierarchy",
        "text_overlap",
    ):
        print(read(families.url, f"select * from {v}").to_string())
