"""Data-parallel training through torch.distributed (gloo on CPU), launched as a user launches it.

``accelerate launch`` on GPUs (DDP, FSDP, DeepSpeed) starts its processes with torch's elastic launcher;
here ``torch.distributed.run`` starts two CPU processes directly, so the recipes' one-process-view code
(batch slicing per rank, summed token counts, gathered checkpoints, main-process evaluation) runs for real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed")


ROOT = Path(__file__).resolve().parents[2]


def _launch(nproc: int, *argv: str, cwd: Path, plugins: tuple[str, ...] = ()) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    extra = [a for p in plugins for a in ("--plugin", p)]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "harness.cli", *extra, "train", *argv]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def _info(ckpt: Path) -> dict:
    return json.loads((ckpt / "harness-training.json").read_text())


def _summaries(stdout: str) -> list[dict]:
    """The JSON summaries printed on stdout (one per process that printed one)."""
    dec, out, i = json.JSONDecoder(), [], stdout.find("{")
    while i >= 0:
        try:
            obj, end = dec.raw_decode(stdout, i)
        except ValueError:
            i = stdout.find("{", i + 1)
            continue
        out.append(obj)
        i = stdout.find("{", end)
    return out


def test_sft_then_rl_on_two_processes(tiny_llama: Path, tmp_path: Path) -> None:
    common = ["--task", "gp-l", "--output", str(tmp_path / "runs"), "--eval-episodes", "2", "--max-tokens", "8"]
    sft_args = ["--recipe", "sft", "--model", str(tiny_llama), "--steps", "2",
                "--recipe-args", "checkpoints=1,batch_size=4,log_every=0", *common]
    two = _launch(2, *sft_args, "--out", str(tmp_path / "sft2"), cwd=tmp_path)
    assert two.returncode == 0, two.stderr[-3000:]
    one = _launch(1, *sft_args, "--out", str(tmp_path / "sft1"), cwd=tmp_path)
    assert one.returncode == 0, one.stderr[-3000:]
    info2, info1 = _info(tmp_path / "sft2" / "step-000002"), _info(tmp_path / "sft1" / "step-000002")
    assert info2["processes"] == 2 and info1["processes"] == 1
    # the global batch is split over the ranks, not repeated: the same tokens are trained either way
    assert info2["trained_tokens"] == info1["trained_tokens"] > 0
    assert len(_summaries(two.stdout)) == 1  # only the main process reports
    events = list((tmp_path / "sft2" / "tensorboard").glob("*/events.out.tfevents.*"))
    assert len(events) == 1, events  # the training curves: written by the main process only

    rl = _launch(2, "--recipe", "rl", "--model", str(tmp_path / "sft2" / "step-000002"), "--steps", "1",
                 "--out", str(tmp_path / "rl2"), "--recipe-args",
                 "n_envs=2,minibatch=2,micro_batch=2,epochs=1,max_new_tokens=8,checkpoints=1,log_every=0",
                 *common, cwd=tmp_path)
    assert rl.returncode == 0, rl.stderr[-3000:]
    info = _info(tmp_path / "rl2" / "step-000001")
    assert info["processes"] == 2 and info["recipe"] == "rl" and info["base_recipe"] == "sft"
    assert info["rollout_tokens"] > 0 and info["trained_tokens"] > 0
    # each checkpoint was evaluated once, by the main process, on both splits
    records = [json.loads(p.read_text()) for p in (tmp_path / "runs").glob("gp-l_*/run.json")]
    steps = sorted((r["training"]["recipe"], r["split"]) for r in records if r["training"]["processes"] == 2)
    assert steps == [("rl", "id"), ("rl", "ood-rule"), ("sft", "id"), ("sft", "ood-rule")]
    assert len(_summaries(rl.stdout)) == 1


@pytest.mark.parametrize("rollout", ["episodes", "streams"])
def test_rl_with_uneven_episode_lengths_does_not_hang(tiny_llama: Path, tmp_path: Path, rollout: str) -> None:
    """Process 0's episodes last 1 turn, process 1's 2-4 (tests/recipes/varlen_task.py): different numbers
    of rollout rounds, turns and minibatches on the two processes. Every process must still make the same
    collective calls (lock-step rounds, padded minibatches); a mismatch hangs or crashes gloo. Checkpoints
    are evaluated after training, so no process waits at a barrier while the main one evaluates."""
    mode = "turns_per_update=6" if rollout == "streams" else "n_envs=3"
    rl = _launch(2, "--recipe", "rl", "--model", str(tiny_llama), "--task", "varlen", "--steps", "3",
                 "--out", str(tmp_path / "rl"), "--output", str(tmp_path / "runs"), "--eval-episodes", "2",
                 "--max-tokens", "4", "--recipe-args",
                 f"{mode},n_envs=3,minibatch=2,micro_batch=1,epochs=2,max_new_tokens=6,checkpoints=2,log_every=0",
                 cwd=tmp_path, plugins=("tests.recipes.varlen_task",))
    assert rl.returncode == 0, rl.stderr[-3000:]
    (summary,) = _summaries(rl.stdout)
    assert summary["steps"] == 3 and [c["step"] for c in summary["checkpoints"]] == [2, 3]
    assert all(c["success"] for c in summary["checkpoints"])  # evaluated once training was over
    # the two processes really did uneven work: 3 one-turn episodes on one, 6-12 turns on the other
    assert summary["final"]["episodes"] >= 4
    info = _info(tmp_path / "rl" / "step-000003")
    assert info["processes"] == 2 and info["trained_tokens"] > 0
