"""What a synthetic study contains: jobs of trained configurations on datasets, and how it is written.

One `Design` covers every use: the store tests (awkward texts, ids from the sequences, datasets shared
by digest), the analysis tests (pinned dataset ids, frames kept for independent pandas checks) and the
dashboard benchmark (1M examples, lineage, checkpoints, greedy continuations, a classifier run). The
presets at the bottom are those three studies.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from kdplatform.store.schema import Role


@dataclass(frozen=True)
class Arm:
    """One trained configuration, run once per seed. An example is memorized when its latent
    difficulty (uniform in [0, 1]) plus noise is below `capacity` (a share of the examples)."""

    role: Role
    seeds: tuple[int, ...] = (0,)
    capacity: float = 0.1
    objective: str | None = None
    temperature: float | None = None


@dataclass(frozen=True)
class DatasetDesign:
    """A tokenization of the study's examples. `id` pins the row id (else the sequence gives it);
    a dataset whose digest is already stored is reused, examples and all."""

    name: str
    family: str = "gpt_neox"
    id: int | None = None
    digest: str | None = None
    zlib_jitter: int = 0
    """Largest per-example shift of zlib entropy against the first dataset (another tokenizer)."""


@dataclass(frozen=True)
class JobDesign:
    """A job: its arms on one dataset. `spec` is merged into the stored spec JSON (e.g. the distill
    section whose first temperature the analysis picks); `hard_data` makes the hard student train on a
    child dataset written by a `hard_data` generate stage, as the pipeline does."""

    name: str
    arms: tuple[Arm, ...]
    dataset: str
    spec: dict = field(default_factory=dict)
    kld: bool = True
    classifier: bool = False
    hard_data: bool = False


@dataclass(frozen=True)
class Memorization:
    """How memorized sets are drawn: an example is memorized by a run when its latent difficulty plus
    noise is below the run's capacity, or spontaneously, or (students) inherited from the teacher."""

    rate_scale: float = 1.0
    """Multiplies every capacity and the spontaneous rate (small databases need more memorized)."""
    noise: float = 0.3
    """Standard deviation of the difficulty noise, as a share of the capacity."""
    spontaneous: float = 0.0002
    """Probability that any example is memorized regardless of its difficulty."""
    inherit: float = 0.03
    """Probability that a student also memorizes an example its teacher memorized."""


@dataclass(frozen=True)
class Design:
    jobs: tuple[JobDesign, ...]
    datasets: tuple[DatasetDesign, ...]
    n_examples: int = 240
    seed: int = 0
    window: tuple[int, int] = (32, 32)
    """Prefix and suffix lengths in tokens."""
    vocab: int = 2000
    example_ids: tuple[int, int] = (0, 1)
    """The first example id and the step between ids (stable ids need not be 0..n-1)."""
    awkward: bool = False
    """Texts start with strings that break naive CSV/COPY or encoding paths (AWKWARD)."""
    memorization: Memorization = Memorization()
    provenance: bool = True
    """What the pipeline records besides results: data and hard_data stages, the run_inputs edges
    between datasets, runs and checkpoints, checkpoints, stage start and finish times. Off: train and
    scan runs alone (reports then say no wall time and no Table 1)."""
    greedy: bool = True
    """Greedy continuations of memorized examples and near misses."""
    hard_examples: bool = False
    """The hard dataset gets its own copy of the examples."""
    keep_rows: bool = False
    """Keep examples, scan results and KLDs as pandas frames on the returned Study (small studies)."""
    write_files: bool = False
    """Each dataset's train.parquet and a word-level tokenizer, for token-level highlighting."""
    workdir: Path = Path("/tmp/kdp-synthetic")
    chunk_rows: int = 131_072

    @property
    def prefix_len(self) -> int:
        return self.window[0]

    @property
    def suffix_len(self) -> int:
        return self.window[1]

    @property
    def seq_len(self) -> int:
        return sum(self.window)

    def digest(self, ds: DatasetDesign) -> str:
        if ds.digest:
            return ds.digest
        return hashlib.sha256(f"{ds.name}/{self.seed}/{self.n_examples}".encode()).hexdigest()


T, B, S = Role.TEACHER, Role.BASELINE, Role.STUDENT
FKL = "forward_kl"


def bench_design(
    n_examples: int,
    *,
    seed: int = 0,
    workdir: Path | None = None,
    rate_scale: float = 1.0,
    filtered: bool = False,
    second_family: bool = False,
    write_files: bool = False,
) -> Design:
    """The paper's shape: a teacher, three baseline seeds, three soft students at T=2, one each at T=1
    and T=4, a hard student (10 trained runs); `filtered` adds a student_filtered run, `second_family`
    a job "bench-olmo" on another tokenization of the same examples (Figure 6)."""
    arms = [
        Arm(T, capacity=0.020),
        Arm(B, (0, 1, 2), 0.012),
        Arm(S, (0, 1, 2), 0.006, FKL, 2.0),
        Arm(S, (0,), 0.008, FKL, 1.0),
        Arm(S, (0,), 0.004, FKL, 4.0),
        Arm(Role.STUDENT_HARD, capacity=0.006),
    ]
    if filtered:
        arms.append(Arm(Role.STUDENT_FILTERED, capacity=0.003, objective=FKL, temperature=2.0))
    distill = {"objective": [FKL], "temperature": [2.0, 1.0, 4.0]}
    jobs = [
        JobDesign(
            "bench", tuple(arms), "bench", {"student": {"distill": distill}}, classifier=True, hard_data=True
        )
    ]
    datasets = [DatasetDesign("bench")]
    if second_family:
        olmo = (
            Arm(T, capacity=0.020),
            Arm(B, capacity=0.012),
            Arm(S, capacity=0.006, objective=FKL, temperature=2.0),
        )
        distill = {"objective": [FKL], "temperature": [2.0]}
        jobs.append(JobDesign("bench-olmo", olmo, "bench-olmo", {"student": {"distill": distill}}))
        datasets.append(DatasetDesign("bench-olmo", "olmo2", zlib_jitter=2))
    extra = {"workdir": Path(workdir)} if workdir else {}
    return Design(
        tuple(jobs),
        tuple(datasets),
        n_examples,
        seed,
        memorization=Memorization(rate_scale=rate_scale),
        write_files=write_files,
        **extra,
    )


def analysis_design() -> Design:
    """Three jobs (alpha: every role, several seeds and temperatures; beta: shares alpha's dataset;
    gamma: another tokenizer, reverse KL, no KLDs) on 240 examples with spread-out large ids."""
    alpha = (
        Arm(T, capacity=0.35),
        Arm(B, (0, 1, 2), 0.25),
        Arm(S, (0, 1, 2), 0.1, FKL, 2.0),
        Arm(S, (0, 1), 0.2, FKL, 1.0),
        Arm(Role.STUDENT_HARD, (0, 5), 0.15),
        Arm(Role.STUDENT_FILTERED, (0,), 0.03, FKL, 2.0),
    )
    beta = (Arm(T, capacity=0.3), Arm(B, capacity=0.2), Arm(S, (0, 1), 0.1, FKL, 2.0))
    gamma = (
        Arm(T, capacity=0.3),
        Arm(B, capacity=0.2),
        Arm(S, capacity=0.1, objective="reverse_kl", temperature=2.0),
    )
    return Design(
        jobs=(
            JobDesign(
                "alpha",
                alpha,
                "pythia",
                {"student": {"distill": {"objective": [FKL], "temperature": [1.0, 2.0]}}},
            ),
            JobDesign("beta", beta, "pythia"),
            JobDesign(
                "gamma",
                gamma,
                "olmo",
                {"student": {"distill": {"objective": ["reverse_kl"], "temperature": [2.0]}}},
                kld=False,
            ),
        ),
        datasets=(DatasetDesign("pythia", id=10), DatasetDesign("olmo", "olmo2", id=11, zlib_jitter=5)),
        n_examples=240,
        seed=20240601,
        window=(50, 50),
        example_ids=(3_000_000_007, 4099),
        memorization=Memorization(noise=0.25, spontaneous=0.02, inherit=0.05),
        provenance=False,
        greedy=False,
        keep_rows=True,
    )


def store_design(name: str = "study", seed: int = 0, n: int = 120) -> Design:
    """Job `name` (teacher, two baselines, a soft and a hard-data student) on awkward texts, ids from
    the sequences. The dataset digest depends on `seed` only, so jobs of one seed share a dataset."""
    arms = (
        Arm(T, capacity=0.5),
        Arm(B, (0, 1), 0.3),
        Arm(S, (0,), 0.15, FKL, 2.0),
        Arm(Role.STUDENT_HARD, capacity=0.2),
    )
    digest = hashlib.sha256(f"data-{seed}".encode()).hexdigest()
    return Design(
        jobs=(JobDesign(name, arms, "builtin", {"seed": seed}, hard_data=True),),
        datasets=(DatasetDesign("builtin", digest=digest),),
        n_examples=n,
        seed=seed,
        window=(20, 20),
        vocab=512,
        example_ids=(3, 7),
        awkward=True,
        memorization=Memorization(noise=0.2),
        hard_examples=True,
    )
