"""Unit tests of the recipe pieces: action span, GAE, GRPO, schedule, expert data, args."""

from __future__ import annotations

import itertools
import random
from pathlib import Path

import pytest

from harness_plugins.recipes.action import action_span, token_weights
from harness_plugins.recipes.checkpoints import Schedule
from harness_plugins.recipes.config import RLArgs, SFTArgs, parse_args
from harness_plugins.recipes.grpo import episode_return, group_advantages
from harness_plugins.recipes.ppo import gae
from harness_tasks.virl.plugin import VIRL_L


def test_action_span_finds_the_field_value() -> None:
    text = 'Let me think. {"cards": ["5", "J"], "number": [5, 10], "formula": "(5+10)*2=30"} done'
    lo, hi = action_span(text, "formula")
    assert text[lo:hi] == "(5+10)*2=30"
    assert action_span(text, "action") is None
    assert action_span('{"Formula" : "1+2"}', "formula") is not None  # as lenient as the verifier
    assert action_span('{"formula": "unterminated', "formula") is None
    virl = '{"current observation": "x", "action": "turn_direction(north)"}'
    lo, hi = action_span(virl, VIRL_L.action_field)
    assert virl[lo:hi] == "turn_direction(north)"


def test_token_weights_follow_the_characters(tiny_llama: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    text = 'ok {"cards": ["5"], "formula": "(2+3)*4=20"}'
    ids = [*tok(text, add_special_tokens=False)["input_ids"], tok.eos_token_id]

    def decode(x):
        return tok.decode(list(x), skip_special_tokens=True)

    w = token_weights(ids, decode(ids), decode, "formula", 0.5)
    assert len(w) == len(ids) and set(w) == {0.5, 1.0}
    action = "".join(decode([i]) for i, x in zip(ids, w, strict=True) if x == 1.0)
    assert "(2+3)*4=20" in action and "cards" not in action
    assert w[-1] == 0.5  # end-of-turn token: part of the thought, not the action
    assert token_weights(ids[:3], decode(ids[:3]), decode, None, 0.5) == [1.0, 1.0, 1.0]


def test_gae_by_hand() -> None:
    adv, ret = gae([1.0, 2.0], [0.5, 0.25], gamma=0.9, lam=0.95)
    d1 = 2.0 - 0.25
    d0 = 1.0 + 0.9 * 0.25 - 0.5
    assert adv[1] == pytest.approx(d1)
    assert adv[0] == pytest.approx(d0 + 0.9 * 0.95 * d1)
    assert ret == pytest.approx([adv[0] + 0.5, adv[1] + 0.25])


def test_grpo_advantages() -> None:
    adv = group_advantages([1.0, 3.0, 5.0, 5.0], [0, 0, 1, 1])
    assert adv[0] < 0 < adv[1]
    assert adv[2] == adv[3] == 0.0  # equal returns: no signal
    assert episode_return([-1.0, 5.0]) == 4.0


def test_schedule_steps_and_budget() -> None:
    s = Schedule(steps=10, budget=None, n=4)
    due = [k for k in range(1, 11) if s.due(k, 0.0)]
    assert due == [2, 5, 8, 10]
    b = Schedule(steps=None, budget=100.0, n=2)
    assert not b.due(1, 10.0) and b.due(2, 60.0) and not b.done(2, 60.0)
    assert b.due(3, 130.0) and b.done(3, 130.0)
    m = Schedule(steps=5, budget=None, n=4, milestones=[10.0, 20.0])
    assert m.due(1, 25.0)  # both crossed at once: one checkpoint
    with pytest.raises(ValueError):
        Schedule(steps=None, budget=None)


def test_args_parse_and_reject() -> None:
    a = parse_args(RLArgs, {"advantage": "grpo", "lr": "1e-4", "lora": "true", "milestones": "[1e9, 2e9]"}, "rl")
    assert a.advantage == "grpo" and a.lr == 1e-4 and a.lora is True and a.milestones == [1e9, 2e9]
    assert a.gamma == 0.9 and a.gae_lambda == 0.95 and a.clip == 0.1 and a.epochs == 4 and a.thought_coef == 0.5
    with pytest.raises(ValueError, match=r"unknown recipe args.*bogus.*valid:"):
        parse_args(SFTArgs, {"bogus": 1}, "sft")


def test_expert_transcripts_teach_revisions(registry) -> None:
    from harness_plugins.recipes.data import expert_stream

    task = registry.task("gp-l")
    examples = list(itertools.islice(expert_stream(task, "id", seed=0, verify_iter=None, revision_frac=1.0,
                                                   max_wrong=2), 20))
    assert all(ex.revision for ex in examples)
    env = task.make_env("id")
    for ex in examples:
        roles = [m.role for m in ex.messages]
        assert roles[0] == "user" and roles[-1] == "user" and roles[-2] == "assistant"
        assert "You failed this trial" in ex.messages[-1].text  # the verifier's feedback turn
        assert '"formula"' in ex.answer
        assert ex.answer not in [m.text for m in ex.messages if m.role == "assistant"]
    # the targets are correct answers: replaying one on its own hand succeeds
    first = next(iter(expert_stream(task, "id", seed=0, verify_iter=None, revision_frac=0.0, max_wrong=0)))
    assert not first.revision and len(first.messages) == 1
    from harness.runner import episode_seed

    env.reset(seed=episode_seed("gp-l", "id/sft", 0, 0))
    _, reward, done, _, _ = env.step(first.answer)
    assert done and reward == 5.0


def test_wrong_answer_falls_back_to_corruption() -> None:
    from harness_plugins.recipes.data import wrong_answer

    class NoRandom:
        def random_action(self, rng):
            raise NotImplementedError

        def expert_action(self):
            return "42"

    assert wrong_answer(NoRandom(), random.Random(0)) != "42"  # type: ignore[arg-type]
