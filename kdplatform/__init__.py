"""kdplatform: study what language models memorize under knowledge distillation."""

import os

# With few cores, OpenMP threads that spin while waiting steal the cores that do the work: measured here
# (bench/threads.py) training steps ran several times faster with PASSIVE. Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__version__ = "0.1.0"
