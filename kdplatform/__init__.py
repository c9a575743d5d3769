"""kdplatform: study what language models memorize under knowledge distillation."""

import os

# OpenMP threads that spin while waiting steal the cores from any other process. Measured on 2 cores
# (bench/threads.py): alone, the default policy was ~14% faster per training step than PASSIVE; with one
# other busy process (a second job, the test suite, the dashboard) PASSIVE was 1.25-1.44x faster. We take the
# robust choice; an OMP_WAIT_POLICY already in the environment wins. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
