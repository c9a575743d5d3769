"""Tiny training run as a standalone script, for tests that need a separate process.

Run directly (one process, or killed mid-run to test resume) or under ``accelerate launch`` (DDP, or FSDP
with ``--fsdp``). The main process writes a JSON summary of the result; the weights are in ``--out``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
from tiny_training import tiny_data, tiny_model, wide_teacher  # noqa: E402

from kdplatform.spec import TrainSpec  # noqa: E402
from kdplatform.train.loop import KDConfig, train  # noqa: E402


def force_fsdp_on_cpu() -> None:
    """Make the shared accelerate state FSDP2 before `train` builds its Accelerator.

    accelerate (1.x) routes CPU processes to DDP and ignores --use_fsdp there, although torch's FSDP2
    (fully_shard) runs on CPU over gloo. The state is a process-wide singleton that `train`'s own
    Accelerator reuses, so setting it here runs the trainer's real FSDP code paths on CPU.
    """
    from accelerate import Accelerator, FullyShardedDataParallelPlugin
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType

    Accelerator(mixed_precision="no")
    # Every later AcceleratorState() copies PartialState's fields over its own: set the type in both.
    PartialState().distributed_type = DistributedType.FSDP
    st = AcceleratorState()
    st.distributed_type = DistributedType.FSDP
    st.fsdp_plugin = FullyShardedDataParallelPlugin(
        fsdp_version=2,
        auto_wrap_policy="transformer_based_wrap",
        transformer_cls_names_to_wrap=["GPTNeoXLayer"],
        state_dict_type="SHARDED_STATE_DICT",
        cpu_ram_efficient_loading=False,
    )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--result", type=Path, required=True)
    ap.add_argument("--state", type=Path, default=None)
    ap.add_argument("--checkpoint-every", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--grad-accum", type=int, default=2)
    ap.add_argument("--slow", type=float, default=0.0, help="seconds to sleep before each forward")
    ap.add_argument("--kd", action="store_true", help="distil from a wider teacher (soft KD, T=2)")
    ap.add_argument("--fsdp", action="store_true", help="shard the model with FSDP2 (accelerate launch)")
    args = ap.parse_args()
    if args.fsdp:
        force_fsdp_on_cpu()

    torch.set_num_threads(1)  # same kernels in every run, so resumed and uninterrupted runs agree bitwise
    model = tiny_model(0)
    if args.slow:
        model.register_forward_pre_hook(lambda *_: time.sleep(args.slow))
    cfg = TrainSpec(
        epochs=args.epochs,
        batch_size=8,
        lr=3e-3,
        warmup_ratio=0.1,
        grad_accum=args.grad_accum,
        checkpoint_every=args.checkpoint_every,
    )
    res = train(
        model,
        tiny_data(44),
        tiny_data(17, seed=1),  # 17 rows over 2 processes in batches of 8: 2 forwards and 1 (padded)
        cfg,
        seed=0,
        out_dir=args.out,
        state_dir=args.state,
        teacher=wide_teacher() if args.kd else None,
        kd=KDConfig(temperature=2.0, alpha=0.3) if args.kd else None,
    )
    if int(os.environ.get("RANK", "0")) == 0:
        summary = asdict(res) | {"world": int(os.environ.get("WORLD_SIZE", "1"))}
        args.result.write_text(json.dumps(summary))


if __name__ == "__main__":
    main()
