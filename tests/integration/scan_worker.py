"""One process of a multi-process scan (see test_accelerate_scan.py): scans this rank's shards."""

import sys
from pathlib import Path

import torch
from accelerate import PartialState

import kdplatform  # noqa: F401
from kdplatform.memorization.shards import scan_to_shards
from kdplatform.models import load_pretrained

if __name__ == "__main__":
    model_dir, examples, out = sys.argv[1:4]
    state = PartialState(cpu=not torch.cuda.is_available())
    model = load_pretrained(model_dir)
    scan_to_shards(
        model,
        examples,
        out,
        8,
        shard_size=7,
        greedy_min_match=0,
        rank=state.process_index,
        world_size=state.num_processes,
    )
    (Path(out) / f"rank-{state.process_index}-of-{state.num_processes}").touch()
    state.wait_for_everyone()
