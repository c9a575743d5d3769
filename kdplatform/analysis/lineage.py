"""Lineage of a job: which datasets and runs fed which (run_inputs, and the datasets data and generate runs
wrote), drawn as a Graphviz graph, and the checkpoints its training runs wrote (Table 1)."""

from __future__ import annotations

import pandas as pd

from kdplatform.analysis.groups import role_order
from kdplatform.analysis.reading import Db, read
from kdplatform.store.schema import Role, StageKind, Status


def lineage(db: Db, job_id: int) -> pd.DataFrame:
    """Lineage edges of a job, source → target: datasets and runs as nodes.

    Columns: source, target (node ids `d<dataset id>` or `r<run id>`), kind (dataset | teacher | model |
    reference from run_inputs, `produces` from a data or generate run to the dataset it wrote).
    """
    return read(
        db,
        """
        SELECT CASE WHEN i.input_run_id IS NOT NULL THEN 'r' || CAST(i.input_run_id AS VARCHAR)
                    ELSE 'd' || CAST(i.dataset_id AS VARCHAR) END AS source,
               'r' || CAST(i.run_id AS VARCHAR) AS target, i.kind
        FROM run_inputs i JOIN runs r ON r.id = i.run_id
        WHERE r.job_id = :j
        UNION ALL
        SELECT 'r' || CAST(r.id AS VARCHAR) AS source, 'd' || CAST(r.dataset_id AS VARCHAR) AS target,
               'produces' AS kind
        FROM runs r WHERE r.job_id = :j AND r.kind IN ('data', 'generate') AND r.dataset_id IS NOT NULL
        ORDER BY target, source
        """,
        j=job_id,
    )


def datasets(db: Db, job_id: int) -> pd.DataFrame:
    """The datasets a job's runs wrote or read: id, name, tokenizer, lengths, sizes, parent, path."""
    return read(
        db,
        """
        SELECT d.id, d.name, d.tokenizer, d.vocab_size, d.seq_len, d.prefix_len, d.num_train, d.num_val,
               d.parent_dataset_id, d.source, d.path
        FROM datasets d
        WHERE d.id IN (SELECT dataset_id FROM runs WHERE job_id = :j AND dataset_id IS NOT NULL)
           OR d.id IN (SELECT i.dataset_id FROM run_inputs i JOIN runs r ON r.id = i.run_id
                       WHERE r.job_id = :j AND i.dataset_id IS NOT NULL)
        ORDER BY d.id
        """,
        j=job_id,
    )


def lineage_dot(
    run_rows: pd.DataFrame, edges: pd.DataFrame, data: pd.DataFrame, *, scans: bool = False
) -> str:
    """Graphviz DOT of the lineage: datasets as boxes, runs as ellipses coloured by role, failed or
    unfinished runs dashed; scan runs only when `scans` (pure)."""
    colours = {Role.TEACHER: "#2ca02c", Role.BASELINE: "#d62728", Role.STUDENT_HARD: "#9467bd"}
    keep: set[str] = set()
    lines = ["digraph lineage {", "  rankdir=LR;", '  node [fontname="Helvetica", fontsize=10];']
    for d in data.itertuples():
        keep.add(f"d{d.id}")
        lines.append(f'  d{d.id} [shape=box, style=filled, fillcolor="#eeeeee", label="{_dot(d.name)}"];')
    for r in run_rows.itertuples():
        if r.kind == StageKind.SCAN and not scans:
            continue
        keep.add(f"r{r.run_id}")
        role = _str(r.role)
        label = _dot(r.stage_key) + (f"\\n{_dot(role)}" if role else "")
        colour = colours.get(role, "#1f77b4" if role.startswith(Role.STUDENT) else "#7f7f7f")
        style = "solid" if r.status == Status.DONE else "dashed"
        lines.append(f'  r{r.run_id} [label="{label}", color="{colour}", style={style}];')
    produced = {(e.source, e.target) for e in edges.itertuples() if e.kind == "produces"}
    for e in edges.itertuples():
        if (e.target, e.source) in produced:  # a data run's own dataset, recorded as its input too
            continue
        if e.source in keep and e.target in keep:
            lines.append(f'  {e.source} -> {e.target} [label="{_dot(e.kind)}", fontsize=8];')
    lines.append("}")
    return "\n".join(lines)


def _str(v: object) -> str:
    return v if isinstance(v, str) else ""


def _dot(s: object) -> str:
    return str(s).replace("\\", "\\\\").replace('"', '\\"')


def checkpoints(db: Db, job_id: int, *, final_only: bool = False) -> pd.DataFrame:
    """Checkpoints of the job's training runs: epoch, step, tokens, train/val loss, val perplexity.
    `final_only` gives Table 1: one row per trained model, its final checkpoint."""
    return read(
        db,
        f"""
        SELECT c.run_id, r.role, r.seed, r.objective, r.temperature, m.name AS model, m.n_params, c.epoch,
               c.step, c.tokens, c.train_loss, c.val_loss, c.val_ppl, c.is_final
        FROM checkpoints c JOIN runs r ON r.id = c.run_id LEFT JOIN models m ON m.id = r.model_id
        WHERE r.job_id = :j {"AND c.is_final" if final_only else ""}
        ORDER BY {role_order("r.role")}, r.role, r.objective, r.temperature, r.seed,
                 c.run_id, c.epoch, c.step
        """,
        j=job_id,
    )
