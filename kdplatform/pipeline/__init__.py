"""Plan a job into stages and run them: data, training runs by role, memorization scans, the classifier.

plan.py      the stage DAG from the spec, pure (no database, MLflow or torch)
layout.py    every path the pipeline writes under the workdir
context.py   StageContext: what a stage may use (handed over by the runner, which no stage imports)
runner.py    JobRunner: lock, skip/resume, start, fail, dispatch through stages.STAGES
status.py    each stage's state and what `run` would do with it (`kdplatform plan` and `status`)
stale.py     runs whose stage left the plan: marked stale by `run`, listed by `status`, removed by `prune`
stages/      one module per stage kind, registered in stages.STAGES
"""

from kdplatform.pipeline.errors import DataError, StageFailed, kill_point
from kdplatform.pipeline.plan import Plan, Stage, plan
from kdplatform.pipeline.runner import JobRunner
from kdplatform.pipeline.status import StageStatus

__all__ = ["DataError", "JobRunner", "Plan", "Stage", "StageFailed", "StageStatus", "kill_point", "plan"]
