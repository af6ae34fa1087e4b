"""DeepSpeed ZeRO-2 and ZeRO-3 through ``accelerate launch`` with a user's accelerate config, on two CPU
processes (DeepSpeed's CPU accelerator, gloo). Skipped where DeepSpeed is not installed (it builds from
source against the installed torch: ``pip install --no-build-isolation deepspeed``; .ci/run tries).

What must hold: ``prepare`` starts without a dataloader (the recipe sets the micro-batch size), an
optimiser step accumulates its micro-batches (DeepSpeed's engine steps once per optimiser step, not once
per backward), the recipe's ``grad_clip`` reaches DeepSpeed's config (accelerate's ``clip_grad_norm_`` is
a no-op there), and a ZeRO-3 checkpoint is gathered into one complete, loadable model.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("deepspeed")

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """compute_environment: LOCAL_MACHINE
distributed_type: DEEPSPEED
deepspeed_config:
  zero_stage: {stage}
  offload_optimizer_device: none
  offload_param_device: none
  zero3_init_flag: false
mixed_precision: 'no'
num_machines: 1
num_processes: 2
use_cpu: false
machine_rank: 0
rdzv_backend: static
same_network: true
"""


def _launch(tmp_path: Path, stage: int, *argv: str) -> dict:
    cfg = tmp_path / f"zero{stage}.yaml"
    cfg.write_text(CONFIG.format(stage=stage))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "DS_ACCELERATOR": "cpu",
           "HARNESS_NO_PROGRESS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(cfg), "-m", "harness.cli",
           "--plugin", "tests.recipes.varlen_task", "train", *argv]
    out = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout[out.stdout.index("{"):])


def test_zero2_sft_accumulates_and_clips(tiny_llama: Path, tmp_path: Path) -> None:
    s = _launch(tmp_path, 2, "--recipe", "sft", "--model", str(tiny_llama), "--task", "gp-l", "--steps", "2",
                "--out", str(tmp_path / "sft"), "--output", str(tmp_path / "runs"), "--eval-episodes", "1",
                "--max-tokens", "4", "--recipe-args", "batch_size=8,micro_batch=2,grad_clip=0.5,checkpoints=1,"
                "evaluate=false,log_every=0")
    d = s["distributed"]
    assert d["backend"] == "deepspeed" and d["zero_stage"] == 2 and d["processes"] == 2
    assert d["train_micro_batch_size_per_gpu"] == 2 and d["gradient_accumulation_steps"] == 2
    assert d["gradient_clipping"] == 0.5
    assert d["engine_steps"] == d["optimizer_steps"] == 2  # 2 steps of 2 micro-batches each, not 4 steps


def test_zero3_rl_uneven_episodes_and_gathered_checkpoint(tiny_llama: Path, tmp_path: Path) -> None:
    """ZeRO-3 partitions every weight: rollouts gather them (every process the same number of times, the
    varlen task makes the processes' episodes end at different turns), the checkpoint is gathered whole,
    and it is evaluated after training with ZeRO-3 switched off for loading."""
    from safetensors.torch import load_file

    s = _launch(tmp_path, 3, "--recipe", "rl", "--model", str(tiny_llama), "--task", "varlen", "--steps", "2",
                "--out", str(tmp_path / "rl"), "--output", str(tmp_path / "runs"), "--eval-episodes", "2",
                "--max-tokens", "4", "--recipe-args",
                "n_envs=3,minibatch=2,micro_batch=1,epochs=1,max_new_tokens=6,lr=1e-3,checkpoints=1,log_every=0")
    d = s["distributed"]
    assert d["zero_stage"] == 3 and d["engine_steps"] == d["optimizer_steps"] > 0
    assert s["checkpoints"][0]["success"]  # evaluated after training: the checkpoint loads
    base = load_file(tiny_llama / "model.safetensors")
    trained = load_file(tmp_path / "rl" / "step-000002" / "model.safetensors")
    assert set(base) == set(trained) and all(base[k].shape == trained[k].shape for k in base)  # gathered, whole
    assert any(not (base[k] == trained[k]).all() for k in base)  # and trained
