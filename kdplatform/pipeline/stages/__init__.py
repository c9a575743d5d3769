"""The stage functions by kind: each takes the StageContext the runner hands it, writes its rows and
marks its run done in one transaction (`ctx.finish`).

A new stage kind is a module here with a `run(ctx)` and one line in STAGES (and its StageKind).
"""

from __future__ import annotations

from collections.abc import Callable

from kdplatform.pipeline.context import StageContext
from kdplatform.pipeline.stages import (
    approximate,
    canary,
    classify,
    cross_scan,
    data,
    evaluate,
    generate,
    pretrain,
    scan,
    train,
)
from kdplatform.store.schema import StageKind

StageFn = Callable[[StageContext], None]

STAGES: dict[StageKind, StageFn] = {
    StageKind.DATA: data.run,
    StageKind.PRETRAIN: pretrain.run,
    StageKind.GENERATE: generate.run,
    StageKind.TRAIN: train.run,
    StageKind.SCAN: scan.run,
    StageKind.CLASSIFY: classify.run,
    StageKind.EVAL: evaluate.run,
    StageKind.CANARY: canary.run,
    StageKind.CROSS_SCAN: cross_scan.run,
    StageKind.APPROXIMATE: approximate.run,
}
