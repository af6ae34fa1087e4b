"""The RL update moves the policy toward reward: a one-turn task where a single answer token is rewarded.

Each episode asks the same question; the model answers with one token; the verifier pays 1 for the
rewarded word and 0 otherwise. The rewarded word is one the untrained tiny model says only a few percent
of the time. After a few PPO (and, separately, GRPO) steps its probability must have risen clearly.
A sign error in the loss, advantages that ignore reward, or log-probs of the wrong tokens fail this.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest
import torch

from harness.env import TextEnv
from harness.types import Message, Observation, SplitSpec, TaskSpec, TrainJob

PROMPT = "Pick one word."


class PickEnv(TextEnv):
    target = ""  # set by the test once it knows the tokenizer

    def __init__(self, split: str = "id", verify_iter: int = 1, **_: Any) -> None:
        self.verify_iter = verify_iter

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict]:
        return Observation(PROMPT, new_context=True), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        ok = action.strip() == PickEnv.target
        return Observation(""), 1.0 if ok else 0.0, True, False, {"episode": {"success": ok}}

    def expert_action(self) -> str:
        return PickEnv.target

    def random_action(self, rng: random.Random) -> str:
        return "x"


TASK = TaskSpec("pick-word", "say the rewarded word", "text", (SplitSpec("id", "one prompt"),), PickEnv)


def _target_probability(policy: Any, lm: Any, token_ids: list[int]) -> float:
    enc = policy.encode([[Message.make("user", PROMPT)]], [[token_ids[0]]])
    with torch.no_grad():
        logits = lm(**enc.inputs).logits[0, -2]
    return float(torch.softmax(logits, -1)[token_ids].sum())


def _pick_target(policy: Any) -> tuple[str, list[int]]:
    """The most likely alphabetic word under the untrained model (a few percent), and every token that
    decodes to it (with or without a leading space)."""
    enc = policy.encode([[Message.make("user", PROMPT)]], [[0]])
    with torch.no_grad():
        probs = torch.softmax(policy.module.lm(**enc.inputs).logits[0, -2], -1)
    for i in probs.argsort(descending=True).tolist():
        word = policy.decode([i]).strip()
        if word.isalpha() and len(word) > 1:
            same = [j for j in range(probs.numel()) if policy.decode([j]).strip() == word]
            return word, same
    raise AssertionError("no word token")


@pytest.mark.parametrize("advantage", ["gae", "grpo"])
def test_rl_raises_the_rewarded_answer(tiny_llama: Path, tmp_path: Path, advantage: str) -> None:
    from harness_plugins.recipes.config import RLArgs
    from harness_plugins.recipes.rl import RLTrainer

    torch.manual_seed(0)
    job = TrainJob(recipe="rl", model=str(tiny_llama), model_args={"pretrained": str(tiny_llama)}, task=TASK,
                   split="id", out_dir=str(tmp_path), evaluate=lambda d, i: [], seed=0, steps=6, verify_iter=1)
    args = RLArgs(advantage=advantage, lr=3e-3, n_envs=16, group_size=16, minibatch=16, micro_batch=16,
                  max_new_tokens=1, checkpoints=0, evaluate=False, log_every=0)
    rl = RLTrainer(job, args)
    word, ids = _pick_target(rl.policy)
    PickEnv.target = word
    before = _target_probability(rl.policy, rl.tr.unwrapped().lm, ids)
    assert before < 0.2
    rewards = []
    for _ in range(6):
        rewards.append(rl.step_once()["reward"])
        rl.tr.end_step()
    after = _target_probability(rl.policy, rl.tr.unwrapped().lm, ids)
    assert after > max(2 * before, before + 0.1), (word, before, after, rewards)
    assert rl.tr.meter.trained_tokens > 0 and rl.tr.meter.rollout_tokens > 0
