"""A job's stage DAG, pure: from the spec alone, with no database, MLflow or torch.

A stage's identity is a content hash of its config and its inputs' hashes, so a finished stage is skipped
on rerun, and a changed config reruns that stage and everything that depends on it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kdplatform.data.code_corpus import corpus_identity
from kdplatform.spec import JobSpec, RoleSpec, SpecError, hash_config
from kdplatform.store.schema import Role, StageKind

DATA_KEY = "data"
TEACHER_KEY = "train/teacher"
HARD_DATA_KEY = "hard_data"
CLASSIFY_KEY = "classify"
PRETRAIN_PREFIX = "pretrain/"
EVAL_PREFIX = "eval/"


@dataclass(frozen=True)
class Stage:
    key: str
    kind: StageKind
    config: dict[str, Any]
    deps: tuple[str, ...] = ()
    role: Role | None = None
    seed: int | None = None
    temperature: float | None = None
    objective: str | None = None
    ordering_only: tuple[str, ...] = ()
    """Deps the stage runs after but whose hash is not part of its own: a base needs the data stage's
    tokenizer, whose identity its config names itself, and not D (so jobs of other D share the base)."""


@dataclass
class Plan:
    stages: list[Stage]
    hashes: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for st in self.stages:
            deps = [self.hashes[d] for d in st.deps if d not in st.ordering_only]
            self.hashes[st.key] = hash_config({"config": st.config, "deps": deps})

    def get(self, key: str) -> Stage:
        return next(s for s in self.stages if s.key == key)


def base_key(name: str) -> str:
    """The stage key of the base `name` of `pretrain.bases`."""
    return f"{PRETRAIN_PREFIX}{name}"


TOKENIZER_FIELDS = ("source", "hf_config", "split", "text_field", "max_corpus_chars", "seed", "tokenizer")
"""The data fields the data stage's tokenizer is a function of (not the number of examples)."""


def _pretrain_stages(spec: JobSpec) -> list[Stage]:
    """One stage per base, identified by what the base is a function of: the corpus, the base's model and
    training, the seed, the tokenizer's data fields and the window length; never D's size or range."""
    if spec.pretrain is None:
        return []
    data = spec.data.model_dump(mode="json")
    tokenizer = {k: data[k] for k in TOKENIZER_FIELDS}
    out = []
    for name, base in spec.pretrain.bases.items():
        cfg: dict[str, Any] = {"model": base.model.model_dump(mode="json")}
        seed = None
        if base.train is not None:
            seed = spec.seeds[0]
            cfg |= {
                "train": base.train.model_dump(mode="json"),
                "seed": seed,
                "corpus": corpus_identity(spec.pretrain.corpus.model_dump(mode="json")),
                "tokenizer": tokenizer,
                "seq_len": spec.data.training_len,
            }
        out.append(
            Stage(
                base_key(name),
                StageKind.PRETRAIN,
                cfg,
                (DATA_KEY,),
                Role.BASE,
                seed,
                ordering_only=(DATA_KEY,),
            )
        )
    return out


def base_scan_key(name: str) -> str:
    """The stage key of the loss-only scan of the base `name` (the reference attack's calibration)."""
    return f"scan/{base_key(name)}"


def _base_scan_stages(spec: JobSpec) -> list[Stage]:
    """One loss-only scan per base that a role starts from, on D and the held-out split: the reference
    of the reference attack for every model fine-tuned from that base (each model's own base)."""
    if spec.pretrain is None:
        return []
    roles = (spec.teacher, spec.baseline, spec.student, spec.hard_student, spec.filtered_student)
    used = {rs.model.base for rs in roles if rs is not None and rs.model.base is not None}
    cfg = {"measure": "loss", "batch_size": spec.scan.batch_size, "shard_size": spec.scan.shard_size}
    return [
        Stage(base_scan_key(name), StageKind.SCAN, cfg, (base_key(name), DATA_KEY), Role.BASE)
        for name in spec.pretrain.bases
        if name in used
    ]


def _fmt_t(t: float) -> str:
    return f"{t:g}"


def exclusion_path(exclude: str) -> Path | None:
    """The file of `filtered_student.exclude: file:PATH` (None for `classifier`)."""
    return Path(exclude.removeprefix("file:")) if exclude.startswith("file:") else None


def exclusion_digest(exclude: str) -> str | None:
    """A digest of the exclusion file's bytes: part of the filtered student's identity, so that editing
    the file reruns it. A file that cannot be read is a SpecError (validate and run refuse it first)."""
    path = exclusion_path(exclude)
    if path is None:
        return None
    try:
        return hashlib.sha256(path.read_bytes()).hexdigest()[:16]
    except OSError as e:
        raise SpecError(
            f"filtered_student.exclude: cannot read the exclusion file {str(path)!r}: {e.strerror or e}"
        ) from None


def tasks_digest(include_path: str) -> str:
    """A digest of every file under `eval.include_path` (names and bytes): part of the eval stages'
    identity, so that editing a local task reruns them. A folder that cannot be read is a SpecError."""
    root, h = Path(include_path), hashlib.sha256()
    if not root.is_dir():
        raise SpecError(f"eval.include_path: {include_path!r} is not a folder of lm-eval task files")
    try:
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            h.update(f"{path.relative_to(root).as_posix()}\0".encode() + path.read_bytes() + b"\0")
    except OSError as e:
        raise SpecError(f"eval.include_path: cannot read {include_path!r}: {e.strerror or e}") from None
    return h.hexdigest()[:16]


def _eval_stages(spec: JobSpec, stages: list[Stage]) -> list[Stage]:
    """One `eval/<train stage>` per trained model of `eval.roles`, after its model and the data stage
    (whose tokenizer it evaluates with)."""
    ev = spec.eval
    if ev is None:
        return []
    cfg = ev.model_dump(mode="json", exclude={"roles"})
    if ev.include_path is not None:
        cfg["tasks_digest"] = tasks_digest(ev.include_path)
    roles = None if ev.roles is None else set(ev.roles)
    return [
        Stage(
            f"{EVAL_PREFIX}{st.key}",
            StageKind.EVAL,
            cfg,
            (st.key, DATA_KEY),
            st.role,
            st.seed,
            st.temperature,
            st.objective,
        )
        for st in stages
        if st.kind == StageKind.TRAIN and (roles is None or st.role in roles)
    ]


def plan(spec: JobSpec) -> Plan:
    """The stage DAG of a job, in an order where every stage follows its inputs."""
    stages = [Stage(DATA_KEY, StageKind.DATA, spec.data.model_dump(mode="json")), *_pretrain_stages(spec)]
    stages += _base_scan_stages(spec)
    scan_cfg = spec.scan.model_dump(mode="json", exclude={"approximate_min_match"})
    canaries = spec.data.canaries
    canary_cfg = None if canaries is None else canaries.model_dump(mode="json") | {"vocab": "tokenizer"}
    approx = spec.scan.approximate_min_match

    def train(
        key: str, role: Role, rs: RoleSpec, seed: int, deps: tuple[str, ...] = (DATA_KEY,), **kw
    ) -> None:
        if rs.model.base is not None:  # last: the converged student finds its baseline at deps[2]
            deps = (*deps, base_key(rs.model.base))
        cfg = {
            "model": rs.model.model_dump(mode="json"),
            "train": None if rs.train is None else rs.train.model_dump(mode="json"),
            "seed": seed,
        }
        cfg.update({k: v for k, v in kw.items() if v is not None})
        t, obj = kw.get("temperature"), kw.get("objective")
        stages.append(Stage(key, StageKind.TRAIN, cfg, deps, role, seed, t, obj))
        scan_deps = (key, DATA_KEY) + ((TEACHER_KEY,) if spec.scan.kld and role != Role.TEACHER else ())
        stages.append(Stage(f"scan/{key}", StageKind.SCAN, scan_cfg, scan_deps, role, seed, t, obj))
        if canary_cfg is not None:  # D's canaries, on every model the job scans
            stages.append(
                Stage(f"canary/{key}", StageKind.CANARY, canary_cfg, (key, DATA_KEY), role, seed, t, obj)
            )
        if approx is not None:
            a_cfg = {"min_match": approx, "batch_size": spec.scan.batch_size}
            a_deps = (key, f"scan/{key}", DATA_KEY)
            a_key = f"approximate/{key}"
            stages.append(Stage(a_key, StageKind.APPROXIMATE, a_cfg, a_deps, role, seed, t, obj))

    train(TEACHER_KEY, Role.TEACHER, spec.teacher, spec.seeds[0])
    for seed in spec.seeds:
        train(f"train/baseline/s{seed}", Role.BASELINE, spec.baseline, seed)
    d = spec.student.distill
    pairs = [(objective, t) for objective in d.objective for t in d.temperature]
    sweep = set(spec.seeds if d.sweep_seeds is None else d.sweep_seeds)
    for seed in spec.seeds:
        for objective, t in pairs if seed in sweep else pairs[:1]:
            train(
                f"train/student/s{seed}/{objective}/T{_fmt_t(t)}",
                Role.STUDENT,
                spec.student,
                seed,
                (DATA_KEY, TEACHER_KEY),
                objective=objective,
                temperature=t,
                alpha=d.alpha,
            )
    if d.converged_max_epochs is not None:
        for seed in spec.seeds:
            train(
                f"train/student_converged/s{seed}",
                Role.STUDENT_CONVERGED,
                spec.student,
                seed,
                (DATA_KEY, TEACHER_KEY, f"train/baseline/s{seed}"),
                objective=d.objective[0],
                temperature=d.temperature[0],
                alpha=d.alpha,
                max_epochs=d.converged_max_epochs,
            )
    if spec.hard_student is not None:
        # The argmax is restricted to the tokenizer's ids (the data stage's, among the deps).
        gen_cfg = {
            "prefix_len": spec.data.prefix_len,
            "shard_size": spec.scan.shard_size,
            "argmax_vocab": "tokenizer",
        }
        stages.append(
            Stage(HARD_DATA_KEY, StageKind.GENERATE, gen_cfg, (DATA_KEY, TEACHER_KEY), Role.TEACHER)
        )
        for seed in spec.hard_student.seeds or spec.seeds:
            train(
                f"train/student_hard/s{seed}",
                Role.STUDENT_HARD,
                spec.hard_student,
                seed,
                (DATA_KEY, HARD_DATA_KEY),
            )
    if spec.classifier is not None:
        scans = tuple(s.key for s in stages if s.kind == StageKind.SCAN and s.role != Role.BASE)
        stages.append(Stage(CLASSIFY_KEY, StageKind.CLASSIFY, spec.classifier.model_dump(mode="json"), scans))
    fs = spec.filtered_student
    if fs is not None:
        exclusion = (CLASSIFY_KEY,) if fs.exclude == "classifier" else ()
        digest = exclusion_digest(fs.exclude)
        for seed in fs.seeds or spec.seeds:
            train(
                f"train/student_filtered/s{seed}",
                Role.STUDENT_FILTERED,
                fs,
                seed,
                (DATA_KEY, TEACHER_KEY, *exclusion),
                objective=fs.distill.objective[0],
                temperature=fs.distill.temperature[0],
                alpha=fs.distill.alpha,
                exclude=fs.exclude,
                exclude_digest=digest,
            )
    stages += _cross_scan_stages(spec, stages)
    return Plan(stages + _eval_stages(spec, stages))


CROSS_SCAN_PREFIX = "cross_scan/"


def _cross_scan_stages(spec: JobSpec, stages: list[Stage]) -> list[Stage]:
    """One `cross_scan/<job>/<train stage>` per other job and trained model of the section's roles. The
    other job's rows are read when the stage runs (its identity here is its name and the section)."""
    cs = spec.cross_scan
    if cs is None:
        return []
    trained = [s for s in stages if s.kind == StageKind.TRAIN and s.role in cs.roles]
    return [
        Stage(
            f"{CROSS_SCAN_PREFIX}{job}/{st.key}",
            StageKind.CROSS_SCAN,
            {"job": job, "examples": cs.examples, "batch_size": cs.batch_size},
            (st.key, DATA_KEY),
            st.role,
            st.seed,
            st.temperature,
            st.objective,
        )
        for job in cs.jobs
        for st in trained
    ]
