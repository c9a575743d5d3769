"""Time every dashboard page's library queries on a generated study: 1M examples × 10 trained runs.

    .venv/bin/python bench/dashboard.py                      # 1M examples, a fresh DuckDB under /tmp
    .venv/bin/python bench/dashboard.py --examples 100000    # quicker
    .venv/bin/python bench/dashboard.py --db /tmp/b.duckdb --keep   # reuse it next time (skips generation)

The study is synthetic but shaped like the paper's: one job with a teacher, three baseline seeds, three
soft students at T=2, one each at T=1 and T=4, and a hard student (10 trained runs), each scanned on every
example, with teacher KLDs, greedy continuations of near-misses, checkpoints, lineage and a classifier run.
Memorization follows a latent difficulty per example, so sets overlap as they do in the paper. Rows go in
through kdplatform.store.db.bulk_insert from Arrow, as the pipeline writes them.

Each page's queries are the calls its view makes (uncached); the table prints seconds per call and per
page, slowest page last. `generate()` is also what tests/app uses for its small synthetic database.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SUFFIX_LEN = 32
PREFIX_LEN = 32
VOCAB = 2000
GREEDY_MIN_MATCH = 24
# role, objective, temperature, seeds, memorization capacity (share of examples, before rate_scale)
MODELS = [
    ("teacher", None, None, [0], 0.020),
    ("baseline", None, None, [0, 1, 2], 0.012),
    ("student", "forward_kl", 2.0, [0, 1, 2], 0.006),
    ("student", "forward_kl", 1.0, [0], 0.008),
    ("student", "forward_kl", 4.0, [0], 0.004),
    ("student_hard", None, None, [0], 0.006),
]
FILTERED = ("student_filtered", "forward_kl", 2.0, [0], 0.003)
FEATURES = ("teacher_ppl", "baseline_ppl", "zlib_entropy", "teacher_baseline_kld")


def _now(minutes: float = 0.0) -> dt.datetime:
    return dt.datetime(2025, 1, 1) + dt.timedelta(minutes=minutes)


def _words(rng: np.random.Generator) -> list[str]:
    syll = ["ka", "lo", "mi", "ne", "ru", "ta", "vo", "si", "de", "pa", "zu", "ber", "tor", "lin", "gas"]
    out: set[str] = set()
    while len(out) < VOCAB:
        out.add("".join(rng.choice(syll, size=int(rng.integers(1, 4)))))
    return sorted(out)


def _join(vocab: pa.Array, tokens: np.ndarray) -> pa.Array:
    """Space-joined words of each row of token ids, computed in Arrow."""
    words = vocab.take(pa.array(tokens.reshape(-1), pa.int32()))
    rows = pa.FixedSizeListArray.from_arrays(words, tokens.shape[1])
    return pc.binary_join(rows.cast(pa.list_(pa.string())), " ")


def _tokens(rng: np.random.Generator, z: np.ndarray) -> np.ndarray:
    """Token windows [N, PREFIX_LEN + SUFFIX_LEN]; easy (low z) examples repeat a few words."""
    n, width = len(z), PREFIX_LEN + SUFFIX_LEN
    tokens = rng.integers(0, VOCAB, size=(n, width), dtype=np.int32)
    easy = z < 0.05
    tokens[easy] = rng.integers(0, 12, size=(int(easy.sum()), width), dtype=np.int32)
    return tokens


def _write_tokenizer(words: list[str], out: Path) -> None:
    from tokenizers import Tokenizer
    from tokenizers.models import WordLevel
    from tokenizers.pre_tokenizers import WhitespaceSplit

    tok = Tokenizer(WordLevel({w: i for i, w in enumerate(words)} | {"<unk>": len(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = WhitespaceSplit()
    out.mkdir(parents=True, exist_ok=True)
    tok.save(str(out / "tokenizer.json"))


def generate(
    url: str,
    n_examples: int,
    *,
    seed: int = 0,
    workdir: Path | None = None,
    rate_scale: float = 1.0,
    filtered: bool = False,
    second_family: bool = False,
    write_files: bool = False,
    log: Callable[[str], None] = lambda _: None,
) -> dict:
    """Fill a fresh database at `url` with a synthetic study; return what was written (ids, counts).

    `rate_scale` multiplies every memorization capacity (small test databases need more memorized
    examples); `filtered` adds a student_filtered run; `second_family` adds a job "bench-olmo" on another
    tokenization of the same examples (Figure 6); `write_files` writes each dataset's train.parquet and a
    word-level tokenizer under `workdir` so the example browser can split continuations on tokens.
    """
    from kdplatform.store import db

    rng = np.random.default_rng(seed)
    workdir = Path(workdir or tempfile.mkdtemp(prefix="kdp-bench-"))
    engine = db.make_engine(url)
    db.upgrade(engine)
    t0 = time.perf_counter()
    n = int(n_examples)
    ids = np.arange(n, dtype=np.int64)
    z = rng.random(n)  # latent difficulty: low = easy to memorize
    words = _words(rng)
    vocab = pa.array(words, pa.string())
    tokens = _tokens(rng, z)
    prefix_text, suffix_text = _join(vocab, tokens[:, :PREFIX_LEN]), _join(vocab, tokens[:, PREFIX_LEN:])
    text = pc.binary_join_element_wise(prefix_text, suffix_text, " ")
    zlib = np.maximum(20, (60 + 260 * z + rng.normal(0, 12, n))).astype(np.int64)
    log(f"examples built in {time.perf_counter() - t0:.1f} s")

    jobs = [("bench", "gpt_neox", 1, 1)]
    if second_family:
        jobs.append(("bench-olmo", "olmo2", 2, 3))
    tables: dict[str, list[pa.Table]] = {}

    def add(name: str, cols: dict) -> None:
        tables.setdefault(name, []).append(pa.table(cols))

    run_id, ck_id, edge_id, model_id = 0, 0, 0, 0
    summary: dict = {"jobs": {}, "runs": {}, "workdir": str(workdir)}
    for job_name, family, job_id, dataset_id in jobs:
        spec = {"name": job_name, "student": {"distill": {"objective": ["forward_kl"], "temperature": [2.0]}}}
        if job_name == "bench":
            spec["student"]["distill"]["temperature"] = [2.0, 1.0, 4.0]
        add(
            "jobs",
            {
                "id": [job_id],
                "name": [job_name],
                "spec": [json.dumps(spec)],
                "spec_hash": ["synthetic"],
                "workdir": [str(workdir / job_name)],
                "mlflow_run_id": [f"mlflow-job-{job_id}"],
                "created_at": pa.array([_now()], pa.timestamp("us")),
            },
        )
        summary["jobs"][job_name] = job_id
        data_dir = workdir / job_name / "data"
        hard_id = dataset_id + 1
        made = [(dataset_id, f"{job_name}:synthetic", None)]
        if job_name == "bench":
            made.append((hard_id, f"{job_name}:hard", dataset_id))
        for ds, name, parent in made:
            path = data_dir / str(ds)
            add(
                "datasets",
                {
                    "id": [ds],
                    "name": [name],
                    "digest": [f"digest-{ds}"],
                    "source": ["synthetic"],
                    "tokenizer": [f"words-{family}"],
                    "vocab_size": [VOCAB + 1],
                    "seq_len": [PREFIX_LEN + SUFFIX_LEN],
                    "prefix_len": [PREFIX_LEN],
                    "num_train": [n],
                    "num_val": [0],
                    "path": [str(path)],
                    "parent_dataset_id": pa.array([parent], pa.int32()),
                    "created_at": pa.array([_now()], pa.timestamp("us")),
                },
            )
            if write_files and ds == dataset_id:
                path.mkdir(parents=True, exist_ok=True)
                flat = pa.array(tokens.reshape(-1), pa.int32())
                pq.write_table(
                    pa.table(
                        {
                            "example_id": pa.array(ids, pa.int64()),
                            "tokens": pa.FixedSizeListArray.from_arrays(flat, tokens.shape[1]),
                        }
                    ),
                    path / "train.parquet",
                )
                _write_tokenizer(words, path / "tokenizer")
        bits = 8.0 * zlib / (PREFIX_LEN + SUFFIX_LEN) * (1.0 if family == "gpt_neox" else 0.93)
        add(
            "examples",
            {
                "dataset_id": pa.array(np.full(n, dataset_id), pa.int32()),
                "example_id": pa.array(ids, pa.int64()),
                "split": pa.array(np.full(n, "train"), pa.string()),
                "n_tokens": pa.array(np.full(n, PREFIX_LEN + SUFFIX_LEN), pa.int32()),
                "text": text,
                "prefix_text": prefix_text,
                "suffix_text": suffix_text,
                "zlib_entropy": pa.array(zlib, pa.int64()),
                "zlib_bits_per_token": pa.array(bits, pa.float64()),
            },
        )

        def run(
            stage_key: str,
            kind: str,
            role=None,
            s=None,
            objective=None,
            temperature=None,
            ds=None,
            model=None,
            job: int = job_id,
        ):
            nonlocal run_id
            run_id += 1
            add(
                "runs",
                {
                    "id": [run_id],
                    "job_id": [job],
                    "stage_key": [stage_key],
                    "kind": [kind],
                    "role": pa.array([role], pa.string()),
                    "seed": pa.array([s], pa.int32()),
                    "temperature": pa.array([temperature], pa.float64()),
                    "objective": pa.array([objective], pa.string()),
                    "status": ["done"],
                    "config": [
                        json.dumps({"role": role, "objective": objective, "temperature": temperature})
                    ],
                    "config_hash": [f"h{run_id}"],
                    "model_id": pa.array([model], pa.int32()),
                    "dataset_id": pa.array([ds], pa.int32()),
                    "mlflow_run_id": [f"mlflow-{job}-{run_id}"],
                    "started_at": pa.array([_now(run_id)], pa.timestamp("us")),
                    "finished_at": pa.array([_now(run_id + 0.5)], pa.timestamp("us")),
                    "seconds": [30.0 + run_id],
                },
            )
            return run_id

        def edge(rid: int, kind: str, ds=None, input_run=None, ck=None) -> None:
            nonlocal edge_id
            edge_id += 1
            add(
                "run_inputs",
                {
                    "id": [edge_id],
                    "run_id": [rid],
                    "kind": [kind],
                    "dataset_id": pa.array([ds], pa.int32()),
                    "input_run_id": pa.array([input_run], pa.int32()),
                    "checkpoint_id": pa.array([ck], pa.int32()),
                },
            )

        data_run = run("data", "data", ds=dataset_id)
        edge(data_run, "dataset", ds=dataset_id)
        models = MODELS + ([FILTERED] if filtered and job_name == "bench" else [])
        if job_name != "bench":
            models = [m[:3] + ([0],) + m[4:] for m in MODELS if m[0] in ("teacher", "baseline", "student")]
            models = [m for m in models if m[2] in (None, 2.0)]
        teacher_run, teacher_ck, teacher_mem, hard_data_run = None, None, None, None
        for role, objective, temperature, seeds, capacity in models:
            for s in seeds:
                if role == "student_hard" and hard_data_run is None:
                    hard_data_run = run("hard_data", "generate", "teacher", ds=hard_id)
                    edge(hard_data_run, "dataset", ds=dataset_id)
                    edge(hard_data_run, "teacher", input_run=teacher_run, ck=teacher_ck)
                model_id += 1
                add(
                    "models",
                    {
                        "id": [model_id],
                        "name": [f"{family}-{'teacher' if role == 'teacher' else 'small'}"],
                        "revision": pa.array([None], pa.string()),
                        "family": [family],
                        "n_params": [12_000_000_000 if role == "teacher" else 1_400_000_000],
                        "logit_width": [VOCAB + 1],
                        "config": ["{}"],
                    },
                )
                key = "/".join(
                    x for x in (role, f"s{s}", objective, f"T{temperature:g}" if temperature else None) if x
                )
                train_ds = hard_id if role == "student_hard" else dataset_id
                tr = run(f"train/{key}", "train", role, s, objective, temperature, train_ds, model_id)
                edge(tr, "dataset", ds=train_ds)
                if role.startswith("student") and role != "student_hard":
                    edge(tr, "teacher", input_run=teacher_run, ck=teacher_ck)
                final_ck = None
                for epoch in (1, 2, 3):
                    ck_id += 1
                    loss = 3.2 - 0.3 * epoch + (0.4 if role != "teacher" else 0.0) + 0.01 * s
                    add(
                        "checkpoints",
                        {
                            "id": [ck_id],
                            "run_id": [tr],
                            "path": pa.array([None], pa.string()),
                            "epoch": [epoch],
                            "step": [epoch * 1000],
                            "tokens": [epoch * 1000 * 64 * 16],
                            "train_loss": [loss - 0.1],
                            "val_loss": [loss],
                            "val_ppl": [float(np.exp(loss))],
                            "is_final": [epoch == 3],
                        },
                    )
                    final_ck = ck_id
                sc = run(f"scan/train/{key}", "scan", role, s, objective, temperature, dataset_id)
                edge(sc, "dataset", ds=dataset_id)
                edge(sc, "model", input_run=tr, ck=final_ck)
                cap = capacity * rate_scale
                mem = (z + rng.normal(0, cap * 0.3, n) < cap) | (rng.random(n) < 0.0002 * rate_scale)
                if teacher_mem is not None and role.startswith("student"):
                    mem |= teacher_mem & (rng.random(n) < 0.03)
                near = ~mem & (z < 3 * cap)
                match = np.minimum(SUFFIX_LEN - 1, rng.geometric(0.5, n) - 1)
                match[near] = rng.integers(SUFFIX_LEN // 2, SUFFIX_LEN, int(near.sum()))
                match[mem] = SUFFIX_LEN
                offset = {"teacher": 0.2}.get(role, 0.6)
                ppl = np.exp(np.clip(offset + 3.5 * z + rng.normal(0, 0.3, n) - 1.5 * mem, 0.01, None))
                rid = np.full(n, tr, np.int32)
                add(
                    "scan_results",
                    {
                        "run_id": pa.array(rid),
                        "example_id": pa.array(ids),
                        "dataset_id": pa.array(np.full(n, dataset_id, np.int32)),
                        "scan_run_id": pa.array(np.full(n, sc, np.int32)),
                        "memorized": pa.array(mem),
                        "match_len": pa.array(match.astype(np.int32)),
                        "suffix_logprob": pa.array(
                            np.where(mem, -0.02, -(0.05 + 3 * z)) * SUFFIX_LEN * rng.random(n)
                        ),
                        "suffix_entropy": pa.array(
                            np.clip(0.3 + 4 * z + rng.normal(0, 0.3, n) - mem, 0, None)
                        ),
                        "ppl": pa.array(ppl),
                    },
                )
                if role == "teacher":
                    teacher_run, teacher_ck, teacher_mem = tr, final_ck, mem
                else:
                    edge(sc, "reference", input_run=teacher_run)
                    add(
                        "example_kld",
                        {
                            "run_id": pa.array(rid),
                            "reference_run_id": pa.array(np.full(n, teacher_run, np.int32)),
                            "example_id": pa.array(ids),
                            "dataset_id": pa.array(np.full(n, dataset_id, np.int32)),
                            "scan_run_id": pa.array(np.full(n, sc, np.int32)),
                            "kld": pa.array(np.abs(0.05 + 1.5 * z + rng.normal(0, 0.1, n))),
                        },
                    )
                keep = np.flatnonzero(match >= GREEDY_MIN_MATCH)
                greedy = tokens[keep, PREFIX_LEN:].copy()
                for row, m in enumerate(match[keep]):
                    if m < SUFFIX_LEN:
                        greedy[row, m] = (greedy[row, m] + 1 + rng.integers(VOCAB - 1)) % VOCAB
                        greedy[row, m + 1 :] = rng.integers(0, VOCAB, SUFFIX_LEN - m - 1)
                tok_text = pc.binary_join(
                    pa.FixedSizeListArray.from_arrays(
                        pa.array(greedy.reshape(-1).astype(str)), SUFFIX_LEN
                    ).cast(pa.list_(pa.string())),
                    " ",
                )
                add(
                    "greedy_continuations",
                    {
                        "run_id": pa.array(np.full(len(keep), tr, np.int32)),
                        "example_id": pa.array(ids[keep]),
                        "scan_run_id": pa.array(np.full(len(keep), sc, np.int32)),
                        "tokens": tok_text,
                        "text": _join(vocab, greedy),
                    },
                )
                summary["runs"][(job_name, role, objective, temperature, s)] = tr
        if job_name == "bench":
            cl = run("classify", "classifier", "student", None, "forward_kl", 2.0, dataset_id)
            trials = 20
            metric = {m: np.clip(rng.normal(v, 0.02, trials), 0, 1) for m, v in _METRIC_MEANS.items()}
            add(
                "classifier_trials",
                {
                    "run_id": pa.array(np.full(trials, cl, np.int32)),
                    "trial": pa.array(np.arange(trials, dtype=np.int32)),
                    "n_train": pa.array(np.full(trials, 700, np.int32)),
                    "n_test": pa.array(np.full(trials, 300, np.int32)),
                    "n_positive": pa.array(np.full(trials, 250, np.int32)),
                    "n_negative": pa.array(np.full(trials, 750, np.int32)),
                }
                | {m: pa.array(v) for m, v in metric.items()},
            )
            feats = np.repeat(np.array(FEATURES), trials)
            coef = np.concatenate([rng.normal(v, 0.1, trials) for v in (-0.8, -1.1, -2.0, -0.6)])
            add(
                "classifier_coefficients",
                {
                    "run_id": pa.array(np.full(len(feats), cl, np.int32)),
                    "trial": pa.array(np.tile(np.arange(trials, dtype=np.int32), len(FEATURES))),
                    "feature": pa.array(feats),
                    "value": pa.array(coef),
                },
            )
            risk = 1 / (1 + np.exp(40 * (z - 0.012 * rate_scale) + rng.normal(0, 1, n)))
            add(
                "example_risk",
                {
                    "run_id": pa.array(np.full(n, cl, np.int32)),
                    "example_id": pa.array(ids),
                    "dataset_id": pa.array(np.full(n, dataset_id, np.int32)),
                    "risk": pa.array(risk),
                    "predicted": pa.array(risk >= 0.5),
                },
            )
            summary["classifier_run"] = cl
    t1 = time.perf_counter()
    with engine.begin() as conn:
        for name in (
            "jobs",
            "datasets",
            "models",
            "runs",
            "checkpoints",
            "run_inputs",
            "examples",
            "scan_results",
            "example_kld",
            "greedy_continuations",
            "classifier_trials",
            "classifier_coefficients",
            "example_risk",
        ):
            for t in tables.get(name, []):
                db.bulk_insert(conn, name, t)
    engine.dispose()
    log(f"inserted in {time.perf_counter() - t1:.1f} s")
    summary["examples"] = n
    return summary


_METRIC_MEANS = {"accuracy": 0.91, "precision": 0.83, "recall": 0.8, "f1": 0.81, "roc_auc": 0.95}


# ---------------------------------------------------------------------------------------------- pages
def page_calls(url: str, job: str = "bench") -> dict[str, list[tuple[str, Callable[[], object]]]]:
    """Each page's library calls, as its view in app/views makes them (no cache)."""
    from kdplatform.analysis import browse, compare, filtering, mia, queries

    e = browse.engine(url)
    j = queries.resolve_job(e, job)
    group = queries.student_group(e, j)
    runs = queries.scanned_runs(e, j)
    three = [int(x) for x in runs["run_id"][:3]]
    cl = browse.classifier_run(e, j)
    example = int(browse.search_examples(e, j, limit=1)["example_id"].iloc[0])
    return {
        "runs & lineage": [
            ("jobs", lambda: browse.jobs(e)),
            ("runs", lambda: browse.runs(e, j)),
            ("lineage", lambda: browse.lineage(e, j)),
            ("datasets", lambda: browse.datasets(e, j)),
            ("checkpoints", lambda: browse.checkpoints(e, j)),
        ],
        "memorization": [
            ("rates", lambda: queries.rates(e, j)),
            ("rate_summary", lambda: queries.rate_summary(e, j)),
            ("soft_vs_hard", lambda: compare.soft_vs_hard(e, j)),
        ],
        "overlap": [
            ("run_sets", lambda: browse.run_sets(e, j)),
            ("venn3", lambda: queries.venn3(e, *three)),
            ("overlap_matrix", lambda: browse.overlap_matrix(e, j)),
            ("inheritance", lambda: queries.inheritance(e, j)),
            ("consistency_matrix", lambda: queries.consistency_matrix(e, j)),
        ],
        "easy examples": [
            ("easy_scatter", lambda: browse.easy_scatter(e, j)),
            ("cross_ppl", lambda: compare.cross_ppl(e, three[0], three[1])),
        ],
        "classifier": [
            ("feature_sample", lambda: browse.feature_sample(e, j, group)),
            ("classifier_summary", lambda: queries.classifier_summary(e, j)),
            ("risk_counts", lambda: browse.risk_counts(e, cl["run_id"], cl["group"]) if cl else None),
            ("filtering_summary", lambda: filtering.filtering_summary(e, j)),
        ],
        "mechanism": [
            ("mechanism_points", lambda: mia.mechanism_points(e, j)),
            ("kld_categories", lambda: browse.kld_categories(e, j, group)),
        ],
        "example browser": [
            ("search (most memorized)", lambda: browse.search_examples(e, j)),
            ("search text", lambda: browse.search_examples(e, j, text="kalo")),
            ("search id", lambda: browse.search_examples(e, j, example_id=example)),
            ("example_detail", lambda: browse.example_detail(e, j, example)),
        ],
        "sql console": [
            (
                "rates query",
                lambda: browse.console(url, browse.EXAMPLE_QUERIES["Memorization rate per run (Table 2)"]),
            ),
            ("overlap query", lambda: browse.console(url, browse.EXAMPLE_QUERIES["Pairwise overlap"])),
        ],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--examples", type=int, default=1_000_000)
    p.add_argument("--db", help="DuckDB file (default: a fresh one under /tmp)")
    p.add_argument("--keep", action="store_true", help="keep the database; reuse it when it exists")
    p.add_argument("--repeat", type=int, default=2, help="runs per call; the best is reported")
    args = p.parse_args()
    path = Path(args.db or Path(tempfile.mkdtemp(prefix="kdp-bench-")) / "bench.duckdb")
    url = f"duckdb:///{path}"
    if not path.exists():
        t = time.perf_counter()
        generate(url, args.examples, workdir=path.parent, log=lambda m: print(f"  {m}", flush=True))
        print(f"generated {args.examples:,} examples × 10 runs in {time.perf_counter() - t:.1f} s: {path}")
    else:
        print(f"reusing {path}")
    print(f"database size {path.stat().st_size / 2**20:.0f} MiB")
    page_totals = []
    print(f"\n{'page':<18} {'query':<26} {'seconds':>8}")
    for page, calls in page_calls(url).items():
        total = 0.0
        for name, fn in calls:
            best = min(_timed(fn) for _ in range(args.repeat))
            total += best
            print(f"{page:<18} {name:<26} {best:8.3f}")
        page_totals.append((total, page))
    print("\npage totals (uncached, one load):")
    for total, page in sorted(page_totals):
        print(f"  {page:<18} {total:8.3f} s")
    total, page = max(page_totals)
    print(f"\nslowest page: {page} ({total:.2f} s for its queries on {args.examples:,} examples × 10 runs)")
    if not args.keep and not args.db:
        path.unlink(missing_ok=True)


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


if __name__ == "__main__":
    sys.exit(main())
