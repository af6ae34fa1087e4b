"""RL raises success on a multi-turn task with a multi-token answer, shown by a paired test.

The task: say a two-token password; a wrong answer gets the verifier's "wrong, try again" and one more
try (verify_iter 2), success pays 1. The password is the two-token sequence the untrained tiny model is
likeliest to sample (a few percent per try). PPO (value head, GAE over the two turns) trains from it;
then the model before and after answer the same 200 episodes with the same sampling seeds, and an exact
McNemar test on the paired outcomes must find the gain significant.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import torch

from harness.env import TextEnv
from harness.leaderboard import mcnemar_exact
from harness.types import Message, Observation, SplitSpec, TaskSpec, TrainJob

PROMPT = "Say the password."


class PasswordEnv(TextEnv):
    password = ""  # set once the tokenizer is known

    def __init__(self, split: str = "id", verify_iter: int = 2, **_: Any) -> None:
        self.verify_iter, self.tries = verify_iter, 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict]:
        self.tries = 0
        return Observation(PROMPT, new_context=True), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self.tries += 1
        ok = action.strip().startswith(PasswordEnv.password)
        done = ok or self.tries >= self.verify_iter
        info = {"episode": {"success": ok}} if done else {}
        return Observation("Wrong, try again."), 1.0 if ok else 0.0, done, False, info

    def expert_action(self) -> str:
        return PasswordEnv.password

    def random_action(self, rng: random.Random) -> str:
        return "x"


TASK = TaskSpec("password", "say a two-token password", "text", (SplitSpec("id", "one prompt"),), PasswordEnv,
                default_verify_iter=2)


def _pick_password(policy: Any) -> str:
    """The likeliest two-token sample (first token a word, no end-of-turn) under the untrained model."""
    lm = policy.module.lm
    enc = policy.encode([[Message.make("user", PROMPT)]], [[0]])
    with torch.no_grad():
        first = torch.softmax(lm(**enc.inputs).logits[0, -2], -1)
        best, text = 0.0, ""
        for t1 in first.argsort(descending=True)[:30].tolist():
            if not policy.decode([t1]).strip():
                continue
            enc2 = policy.encode([[Message.make("user", PROMPT)]], [[t1, 0]])
            second = torch.softmax(lm(**enc2.inputs).logits[0, -2], -1)
            for t2 in second.argsort(descending=True)[:5].tolist():
                words = policy.decode([t1, t2]).strip()
                if t2 != policy.eos_id and len(words) > len(policy.decode([t1]).strip()):
                    p = float(first[t1] * second[t2])
                    if p > best:
                        best, text = p, words
                    break
    assert text
    return text


def _successes(rl: Any, n: int) -> list[bool]:
    """The current policy on n fresh episodes with fixed sampling seeds (pairs with a later call)."""
    from harness_plugins.recipes.rollout import play

    envs = [PasswordEnv() for _ in range(n)]
    logs = play(rl._generate, rl.policy.decode, envs, list(range(n)), list(range(n)), max_new_tokens=4,
                temperature=1.0, sample_seed=12345)
    return [lg.success for lg in logs]


def test_ppo_raises_multiturn_success_paired(tiny_llama: Path, tmp_path: Path) -> None:
    from harness_plugins.recipes.config import RLArgs
    from harness_plugins.recipes.rl import RLTrainer

    torch.manual_seed(0)
    job = TrainJob(recipe="rl", model=str(tiny_llama), model_args={"pretrained": str(tiny_llama)}, task=TASK,
                   split="id", out_dir=str(tmp_path), evaluate=lambda d, i: [], seed=0, steps=20, verify_iter=2)
    args = RLArgs(lr=2e-3, value_lr=1e-3, n_envs=32, minibatch=32, micro_batch=32, epochs=2, max_new_tokens=4,
                  checkpoints=0, evaluate=False, log_every=0)
    rl = RLTrainer(job, args)
    PasswordEnv.password = _pick_password(rl.policy)
    before = _successes(rl, 200)
    for _ in range(20):
        rl.step_once()
        rl.tr.end_step()
    after = _successes(rl, 200)
    p, n01, n10 = mcnemar_exact(before, after)
    assert sum(after) > sum(before) and p < 0.01, (PasswordEnv.password, sum(before), sum(after), p, n01, n10)
