"""The training loop: exact resume (after SIGKILL and after a crash), stop rules, throughput, DDP."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from kdplatform.spec import TrainSpec
from kdplatform.train.loop import KDConfig, train

sys.path.insert(0, str(Path(__file__).parent))
from tiny_training import tiny_data, tiny_model, wide_teacher  # noqa: E402

SCRIPT = Path(__file__).parent / "train_script.py"
TRAIN, VAL = tiny_data(44), tiny_data(12, seed=1)
# 44 rows / batch 8 = 6 micro-batches per epoch (the last of 4 rows); grad_accum 2 -> 3 steps per epoch.
CFG = TrainSpec(epochs=3, batch_size=8, lr=3e-3, warmup_ratio=0.1, grad_accum=2, checkpoint_every=2)


class Crash(Exception):
    pass


def crash_after(model, calls: int) -> None:
    """Raise on the `calls`-th forward pass (training or validation): a job dying mid-run."""
    seen = [0]

    def hook(*_):
        seen[0] += 1
        if seen[0] == calls:
            raise Crash

    model.register_forward_pre_hook(hook)


def weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def run_script(*args: str, env: dict | None = None, **kw) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2]), **(env or {})}
    return subprocess.Popen(
        [sys.executable, str(SCRIPT), *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw
    )


def finish(proc: subprocess.Popen, timeout: float = 120) -> None:
    out, _ = proc.communicate(timeout=timeout)
    assert proc.returncode == 0, out.decode()[-4000:]


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted single-process run of the script, started in the background when first needed."""
    d = tmp_path_factory.mktemp("reference")
    proc = run_script("--out", str(d / "model"), "--result", str(d / "result.json"))

    def result() -> tuple[dict, dict[str, torch.Tensor]]:
        if proc.returncode is None:
            finish(proc)
        return json.loads((d / "result.json").read_text()), load_file(d / "model" / "model.safetensors")

    yield result
    if proc.poll() is None:
        proc.kill()
        proc.wait()


def test_sigkill_then_rerun_equals_uninterrupted_run(reference, tmp_path):
    """A real SIGKILL in the middle of epoch 2; the rerun resumes from the saved state and ends equal."""
    state, out, res = tmp_path / "state", tmp_path / "model", tmp_path / "result.json"
    args = ["--out", str(out), "--result", str(res), "--state", str(state), "--checkpoint-every", "2"]
    victim = run_script(*args, "--slow", "0.05")
    deadline = time.monotonic() + 120
    # step 4 = epoch 2, one step in; wait until the previous state is also pruned, so the kill does not
    # land between saving the new state and deleting the old one (both are then legitimately on disk)
    while not (state / "step-000000004").is_dir() or (state / "step-000000002").exists():
        assert victim.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no state appeared"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert victim.returncode == -signal.SIGKILL
    assert not out.exists() and not res.exists()
    saved = [p.name for p in state.iterdir() if not p.name.endswith(".tmp")]
    assert len(saved) == 1, saved  # only the latest state is kept

    finish(run_script(*args))
    got, ref = json.loads(res.read_text()), reference()
    assert got["resumed_from"] is not None and got["resumed_from"] >= 4
    assert not state.exists()  # removed once the final weights are saved
    ref_result, ref_weights = ref
    for a, b in zip(got["epochs"], ref_result["epochs"], strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=1e-6)
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=1e-6)
    assert (got["steps"], got["tokens"]) == (ref_result["steps"], ref_result["tokens"])
    mine = load_file(out / "model.safetensors")
    assert mine.keys() == ref_weights.keys()
    for k in mine:
        torch.testing.assert_close(mine[k], ref_weights[k], rtol=0, atol=1e-6)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_two(tmp_path: Path, *extra: str) -> dict:
    """train_script.py in two local CPU processes (gloo) under accelerate; returns its JSON summary."""
    out, res = tmp_path / "model", tmp_path / "result.json"
    cmd = [
        str(Path(sys.executable).with_name("accelerate")),
        "launch",
        "--multi_gpu",  # with ACCELERATE_USE_CPU: torchrun-style local processes on CPU (gloo)
        "--num_processes=2",
        "--num_machines=1",
        "--mixed_precision=no",
        "--dynamo_backend=no",
        f"--main_process_port={free_port()}",
        str(SCRIPT),
        *("--out", str(out), "--result", str(res), "--state", str(tmp_path / "state")),
        *("--checkpoint-every", "2"),
        *extra,
    ]
    env = {**os.environ, "ACCELERATE_USE_CPU": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return json.loads(res.read_text())


def assert_matches_reference(got: dict, reference, model_dir: Path, *, loss_tol: float, weight_tol: float):
    ref_result, ref_weights = reference()
    assert got["world"] == 2 and ref_result["world"] == 1
    assert (got["steps"], got["tokens"]) == (ref_result["steps"], ref_result["tokens"])
    assert all(np.isfinite(e["val_loss"]) for e in got["epochs"])
    for a, b in zip(got["epochs"], ref_result["epochs"], strict=True):
        assert a["val_loss"] == pytest.approx(b["val_loss"], abs=loss_tol)
        assert a["train_loss"] == pytest.approx(b["train_loss"], abs=loss_tol)
    mine = load_file(model_dir / "model.safetensors")
    assert mine.keys() == ref_weights.keys()
    for k in mine:
        torch.testing.assert_close(mine[k], ref_weights[k], rtol=0, atol=weight_tol)


def test_two_cpu_processes_match_one(reference, tmp_path):
    """DDP on gloo with the same global batch: each process takes half of every micro-batch.

    Tolerance 1e-5 on losses and 1e-4 on weights: the gradient is the same mean over the step's tokens,
    but summed in a different order (two partial sums, then an all-reduce), so the runs differ by float32
    rounding (~1e-7 relative per step), which nine Adam steps carry forward without meaningful growth.
    """
    got = launch_two(tmp_path)
    assert_matches_reference(got, reference, tmp_path / "model", loss_tol=1e-5, weight_tol=1e-4)
    assert not (tmp_path / "state").exists()


def test_two_process_fsdp_matches_one(tmp_path):
    """FSDP2 (fully_shard, gloo) on CPU, soft KD from a wider teacher: the 1-process run's numbers.

    accelerate sends CPU processes down its DDP path, so train_script --fsdp sets the shared accelerate
    state to FSDP2 before `train` runs (see force_fsdp_on_cpu; FSDP1 cannot run on CPU: torch rejects its
    "cpu" compute device against accelerate's "cpu:0" device_id). Covered: the logit width read before
    sharding, validation through the wrapped model with as many forwards on every process (17 rows over
    2 processes in batches of 8: 9 rows take two forwards, so the 8-row process pads an empty batch; the
    original code hangs there, a process waiting in an all-gather the other never joins), sharded
    save_state every 2 steps, and the final save from a full state dict gathered by every process. Same
    tolerances as DDP: the reduce-scatter sums the gradient in another order, nothing else differs.
    """
    one = tmp_path / "one"
    ref = run_script("--kd", "--out", str(one / "model"), "--result", str(one / "result.json"))
    got = launch_two(tmp_path, "--fsdp", "--kd")
    finish(ref)

    def reference():
        return json.loads((one / "result.json").read_text()), load_file(one / "model" / "model.safetensors")

    assert_matches_reference(got, reference, tmp_path / "model", loss_tol=1e-5, weight_tol=1e-4)
    assert not (tmp_path / "state").exists()


def _run(tmp_path: Path, name: str, *, teacher=None, cfg=CFG, crash_at: int | None = None, **kw):
    model = tiny_model(0, dropout=0.1)  # dropout: the resumed run must also restore the RNG
    if crash_at is not None:
        crash_after(model, crash_at)
    kd = KDConfig(temperature=2.0, alpha=0.3) if teacher is not None else None
    res = train(
        model, TRAIN, VAL, cfg, seed=3, out_dir=tmp_path / name, teacher=teacher, kd=kd, desc=name, **kw
    )
    return res, weights(model)


@pytest.mark.parametrize(
    ("checkpoint_every", "crash_at", "kd", "resumed_from"),
    [
        # 8 forwards per epoch: 6 training micro-batches, then 2 validation batches.
        (2, 12, False, 4),  # mid-epoch 2, between the micro-batches of step 5
        (3, 8, False, 3),  # in epoch 1's validation: the state sits at the epoch's very end
        (1, 4, True, 1),  # soft KD (teacher wider than student), mid-accumulation of step 2
    ],
)
def test_crash_then_rerun_equals_uninterrupted(tmp_path, checkpoint_every, crash_at, kd, resumed_from):
    cfg = CFG.model_copy(update={"checkpoint_every": checkpoint_every})
    teacher = wide_teacher() if kd else None
    ref, ref_w = _run(tmp_path, "ref", teacher=teacher, cfg=cfg)
    state = tmp_path / "state"
    with pytest.raises(Crash):
        _run(tmp_path, "crashed", teacher=teacher, cfg=cfg, crash_at=crash_at, state_dir=state)
    got, got_w = _run(tmp_path, "resumed", teacher=teacher, cfg=cfg, state_dir=state)
    assert ref.resumed_from is None and got.resumed_from == resumed_from
    assert [e.val_loss for e in got.epochs] == pytest.approx([e.val_loss for e in ref.epochs], abs=1e-6)
    assert [e.train_loss for e in got.epochs] == pytest.approx([e.train_loss for e in ref.epochs], abs=1e-6)
    assert [(e.step, e.tokens) for e in got.epochs] == [(e.step, e.tokens) for e in ref.epochs]
    for k in ref_w:
        torch.testing.assert_close(got_w[k], ref_w[k], rtol=0, atol=1e-6)
    assert not state.exists()


def test_keeps_only_latest_state_and_reports_throughput(tmp_path):
    state = tmp_path / "state"
    seen: list[list[str]] = []
    res, _ = _run(tmp_path, "m", state_dir=state, on_epoch=lambda e: seen.append(sorted(os.listdir(state))))
    assert seen == [["step-000000002"], ["step-000000006"], ["step-000000008"]]
    assert not state.exists() and (tmp_path / "m" / "model.safetensors").exists()
    assert res.steps == 9 and res.tokens == 3 * 44 * 15
    assert res.tokens_per_s > 0 and all(e.tokens_per_s > 0 for e in res.epochs)
    assert [e.step for e in res.epochs] == [3, 6, 9]


def test_resume_discards_a_state_from_other_settings(tmp_path):
    """A state written with other options is removed and the run starts fresh, saying why."""
    state = tmp_path / "state"
    with pytest.raises(Crash):
        _run(tmp_path, "a", crash_at=5, state_dir=state)
    fresh, fresh_w = _run(tmp_path, "b", cfg=CFG.model_copy(update={"batch_size": 4}), state_dir=state)
    assert fresh.resumed_from is None
    assert "removed, starting fresh" in fresh.discarded_state and "train" in fresh.discarded_state
    ref, ref_w = _run(tmp_path, "c", cfg=CFG.model_copy(update={"batch_size": 4}))
    assert [e.val_loss for e in fresh.epochs] == pytest.approx([e.val_loss for e in ref.epochs], abs=1e-6)


def test_stop_at_val_loss(tmp_path):
    reached, _ = _run(tmp_path, "a", stop_at_val_loss=100.0)
    assert reached.reached_target is True and len(reached.epochs) == 1
    missed, _ = _run(tmp_path, "b", stop_at_val_loss=0.0)
    assert missed.reached_target is False and len(missed.epochs) == CFG.epochs
    untargeted, _ = _run(tmp_path, "c")
    assert untargeted.reached_target is None and len(untargeted.epochs) == CFG.epochs


def test_token_budget_stops_mid_epoch(tmp_path):
    """120 tokens per micro-batch: a 500-token budget ends on the 5th one, closing step 3 early."""
    res, _ = _run(tmp_path, "m", cfg=CFG.model_copy(update={"max_tokens": 500}))
    assert res.tokens == 600 and res.steps == 3 and len(res.epochs) == 1
    assert np.isfinite(res.final.val_loss)
