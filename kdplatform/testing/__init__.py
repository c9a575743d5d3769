"""The one synthetic study, for tests and benchmarks: `build_study(engine_or_url, design)` writes a
study shaped like the paper's (jobs of teachers, baselines and students per seed and temperature,
memorized sets that overlap, lineage, checkpoints, greedy continuations, a classifier run) through the
store's bulk ingest, on DuckDB or PostgreSQL, in bounded memory at 1M examples. No torch.

Presets: `bench_design` (bench/dashboard.py and the dashboard tests), `analysis_design` (the view and
report tests), `store_design` (backend and transfer tests).
"""

from kdplatform.testing.design import (
    Arm,
    DatasetDesign,
    Design,
    JobDesign,
    Memorization,
    analysis_design,
    bench_design,
    store_design,
)
from kdplatform.testing.plan import stage_key
from kdplatform.testing.rows import arrow
from kdplatform.testing.synthetic import Study, build_study
from kdplatform.testing.text import AWKWARD

__all__ = [
    "AWKWARD",
    "Arm",
    "DatasetDesign",
    "Design",
    "JobDesign",
    "Memorization",
    "Study",
    "analysis_design",
    "arrow",
    "bench_design",
    "build_study",
    "stage_key",
    "store_design",
]
