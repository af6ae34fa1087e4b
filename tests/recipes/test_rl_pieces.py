"""RL pieces without a model: lock-step rollout rounds, env streams, GAE with bootstrap, PPO's value
clipping and ratio guard, the paper preset, the key-to-end action span."""

from __future__ import annotations

import random
from typing import Any

import pytest
import torch

from harness.env import TextEnv
from harness.types import Observation
from harness_plugins.recipes.action import token_weights
from harness_plugins.recipes.config import RLArgs, parse_args
from harness_plugins.recipes.ppo import gae, policy_losses, value_losses
from harness_plugins.recipes.presets import RL_PRESETS, with_preset
from harness_plugins.recipes.rollout import Streams, play


class CountEnv(TextEnv):
    """Ends after ``seed % 3 + 1`` answers; reward 1 per answer."""

    def __init__(self) -> None:
        self.n = self.left = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[Observation, dict]:
        self.left = (seed or 0) % 3 + 1
        return Observation(f"episode {seed}", new_context=True), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self.left -= 1
        done = self.left == 0
        return Observation("more"), 1.0, done, False, {"episode": {"success": True}} if done else {}

    def expert_action(self) -> str:
        return "x"

    def random_action(self, rng: random.Random) -> str:
        return "x"


def _gen(calls: list[tuple[int, int]]):
    def generate(convs, max_new, temperature, seed):
        calls.append((len(convs), max_new))
        return [[7, 8] for _ in convs], [3 for _ in convs]
    return generate


def test_idle_process_keeps_answering_a_filler_until_all_are_done() -> None:
    calls: list[tuple[int, int]] = []
    others_rounds = iter([True, True, True, True, False])  # another process needs 4 more rounds than we do
    # this process: 2 episodes of 1 turn (seeds 0, 3): done after 1 round
    logs = play(_gen(calls), lambda ids: "ab", [CountEnv(), CountEnv()], [0, 3], [0, 1], max_new_tokens=5,
                temperature=1.0, sample_seed=0, sync=lambda live: live or next(others_rounds))
    assert [len(lg.turns) for lg in logs] == [1, 1] and all(lg.finished for lg in logs)
    assert calls == [(2, 5), (1, 1), (1, 1), (1, 1), (1, 1)]  # then 4 one-token filler calls, discarded


def test_streams_collect_exactly_n_turns_and_carry_episodes_over() -> None:
    seeds = iter(range(100))
    streams = Streams([CountEnv(), CountEnv()], lambda k: next(seeds))
    calls: list[tuple[int, int]] = []
    first = streams.collect(_gen(calls), lambda ids: "ab", 5, max_new_tokens=4, temperature=1.0, sample_seed=0)
    assert sum(len(lg.turns) for lg in first) == 5 and calls == [(2, 4), (2, 4), (1, 4)]
    # seed 0: 1 turn, seed 1: 2 turns, seed 2: 3 turns (stream 0 restarts with it), seed 3: 1 turn
    unfinished = [lg for lg in first if not lg.finished]
    assert all(lg.turns for lg in unfinished) and {lg.stream for lg in unfinished} <= {0, 1}
    second = streams.collect(_gen(calls), lambda ids: "ab", 4, max_new_tokens=4, temperature=1.0, sample_seed=1)
    carried = [lg for lg in second if lg.seed in {u.seed for u in unfinished}]
    assert carried and all(lg.turns for lg in carried)  # the cut episodes went on where they stopped


def test_gae_bootstraps_an_unfinished_piece() -> None:
    adv, ret = gae([1.0], [0.5], gamma=0.9, lam=0.95, last_value=2.0)
    assert adv == pytest.approx([1.0 + 0.9 * 2.0 - 0.5]) and ret == pytest.approx([adv[0] + 0.5])
    done, _ = gae([1.0], [0.5], gamma=0.9, lam=0.95)
    assert done == pytest.approx([0.5])


def test_value_clipping_and_ratio_guard() -> None:
    v, old, ret = torch.tensor([2.0]), torch.tensor([0.0]), torch.tensor([3.0])
    assert float(value_losses(v, ret)) == pytest.approx(0.5)
    # clipped V is 0.1, whose loss (2.9^2/2) is larger: the paper's max(unclipped, clipped)
    assert float(value_losses(v, ret, old, clip=0.1)) == pytest.approx(0.5 * 2.9 ** 2)
    logp, old_logp, adv = torch.tensor([3.0, 0.05]), torch.tensor([0.0, 0.0]), torch.tensor([-1.0, -1.0])
    plain, _ = policy_losses(logp, old_logp, adv, 0.1)
    guarded, _ = policy_losses(logp, old_logp, adv, 0.1, ratio_guard=10.0)
    assert float(plain[0]) == pytest.approx(float(torch.exp(torch.tensor(3.0))))  # min picks the huge ratio
    assert float(guarded[0]) == pytest.approx(1.1)  # guard: clipped term only
    assert float(guarded[1]) == pytest.approx(float(plain[1]))  # ratios under the guard are untouched


def test_paper_preset_values_and_overrides() -> None:
    args = parse_args(RLArgs, with_preset({"preset": "paper", "lr": "2e-6"}, "gp-l", RL_PRESETS), "rl")
    assert (args.temperature, args.max_new_tokens, args.value_lr, args.adam_eps) == (0.2, 512, 1e-6, 1e-7)
    assert (args.value_clip, args.ratio_guard, args.grad_clip, args.minibatch) == (0.1, 10.0, 0.01, 128)
    assert (args.turns_per_update, args.updates, args.lr_schedule, args.lr_decay_steps) == (256, 20, "cosine", 100)
    assert args.lr == 2e-6  # an explicit arg wins over the preset
    assert parse_args(RLArgs, with_preset({"preset": "paper"}, "virl-vl", RL_PRESETS), "rl").turns_per_update == 512
    with pytest.raises(ValueError, match="unknown preset"):
        with_preset({"preset": "nope"}, "gp-l", RL_PRESETS)


def test_key_to_end_span_covers_the_rest_of_the_answer() -> None:
    text = 'think {"cards": [1], "formula": "1+2"} bye'

    ids = [*range(len(text)), 999]  # one token per character, then end-of-turn

    def dec(x):
        return text[:min(len(x), len(text))]

    value = token_weights(ids, text, dec, "formula", 0.5)
    to_end = token_weights(ids, text, dec, "formula", 0.5, "key-to-end")
    key = text.index('"formula"')
    assert [i for i, w in enumerate(value) if w == 1.0] == list(range(text.index("1+2"), text.index("1+2") + 3))
    assert [i for i, w in enumerate(to_end) if w == 1.0] == list(range(key, len(ids)))
