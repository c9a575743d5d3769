"""Run a job's lm-eval tasks on one loaded model with lm-eval's own `simple_evaluate`, and turn its
results into eval_results rows (task, num_fewshot, metric, value, stderr, n_samples).

The model is handed to lm-eval's HFLM as the object the stage loaded (the platform's precision policy:
bf16 on CUDA, float32 on CPU) with the job's tokenizer; log-softmax runs in float32 whatever the model's
dtype. One `simple_evaluate` per task entry, since few-shot and limit are per task.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pyarrow as pa

from kdplatform.evaluation.tasks import needs_registry, task_manager
from kdplatform.spec import EvalSpec

ROW_SCHEMA = pa.schema(
    [
        ("task", pa.string()),
        ("num_fewshot", pa.int32()),
        ("metric", pa.string()),
        ("value", pa.float64()),
        ("stderr", pa.float64()),
        ("n_samples", pa.int32()),
    ]
)
"""eval_results' columns but the run ids, which the stage adds."""


def _number(v: Any) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def result_rows(results: Mapping[str, Any], num_fewshot: int) -> Iterator[dict[str, Any]]:
    """One row per (task, metric) of a `simple_evaluate` result: lm-eval's `metric,filter` keys, the
    filter dropped when it is `none`, with the `metric_stderr,filter` beside it and the documents
    evaluated (`n-samples`' effective count; none for a group's aggregate)."""
    for task, scores in results["results"].items():
        shots = results.get("n-shot", {}).get(task, num_fewshot)
        n = results.get("n-samples", {}).get(task, {}).get("effective")
        for key, v in scores.items():
            metric, sep, filt = key.partition(",")
            value = _number(v)
            if not sep or metric.endswith("_stderr") or value is None:
                continue
            yield {
                "task": task,
                "num_fewshot": int(shots),
                "metric": metric if filt == "none" else key,
                "value": value,
                "stderr": _number(scores.get(f"{metric}_stderr,{filt}")),
                "n_samples": None if n is None else int(n),
            }


def evaluate(model, tokenizer, spec: EvalSpec, echo: Callable[[str], None] = print) -> pa.Table:
    """Every task of `spec` on `model`, as eval_results rows (a task that two entries reach, e.g. a group
    and its member at the same few-shot setting, is kept once: the first)."""
    import lm_eval
    import torch
    from lm_eval.models.huggingface import HFLM

    manager = task_manager(spec.include_path, defaults=needs_registry(spec))
    lm = HFLM(pretrained=model, tokenizer=tokenizer, batch_size=spec.batch_size, softmax_dtype=torch.float32)
    rows: dict[tuple[str, int, str], dict[str, Any]] = {}
    for t in spec.tasks:
        out = lm_eval.simple_evaluate(
            model=lm,
            tasks=[t.name],
            num_fewshot=t.num_fewshot,
            limit=t.limit,
            task_manager=manager,
            bootstrap_iters=spec.bootstrap_iters,
            log_samples=False,
        )
        for row in result_rows(out, t.num_fewshot):
            rows.setdefault((row["task"], row["num_fewshot"], row["metric"]), row)
        echo(f"       {t.name} ({t.num_fewshot}-shot): " + _summary(out))
    return pa.Table.from_pylist(list(rows.values()), schema=ROW_SCHEMA)


def _summary(results: Mapping[str, Any]) -> str:
    rows = result_rows(results, 0)
    return ", ".join(f"{r['task']} {r['metric']} {r['value']:.4g}" for r in rows) or "no scores"
