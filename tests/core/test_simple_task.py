"""SimpleTask: a task written as problem / prompt / judge / expert / random answer gets the whole episode loop,
the Gymnasium env and the TaskSpec from harness."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from gymnasium.utils.env_checker import check_env
from harness_toy.countdown import Countdown

from harness.runner import EvalConfig, Runner
from harness.simple_task import BUDGET_SPENT, Judgement, SimpleTask
from harness.types import MetricSpec, SplitSpec
from harness_plugins.baselines import OracleBackend, RandomBackend


def _run(spec, backend, tmp: Path, split: str = "id", episodes: int = 30, **kw) -> list[dict]:
    cfg = EvalConfig(task=spec.name, split=split, model="m", backend="b", episodes=episodes, **kw)
    res = Runner(spec, backend, cfg, tmp / f"{spec.name}-{split}").run()
    assert res.record["status"] == "complete"
    return [orjson.loads(x) for x in (tmp / f"{spec.name}-{split}" / "samples.jsonl").read_bytes().splitlines()]


def test_countdown_runs_through_the_runner(tmp_path: Path) -> None:
    spec = Countdown.spec()
    assert spec.default_verify_iter == 3 and [s.name for s in spec.splits] == ["id", "ood"]
    oracle = _run(spec, OracleBackend(), tmp_path, split="ood")
    assert all(s["success"] and len(s["turns"]) == 1 and s["metrics"]["valid"] == [1, 1] for s in oracle)
    rand = _run(spec, RandomBackend(seed=0), tmp_path)
    assert 0 < sum(s["success"] for s in rand) < 30
    failed = [s for s in rand if not s["success"]]
    assert all(len(s["turns"]) == 3 for s in failed)  # the answer budget
    assert all(t["feedback"].startswith("That makes ") for s in failed for t in s["turns"])


def test_the_loop_feedback_turns_and_the_extra_answer() -> None:
    env = Countdown.make_env("id")
    obs, _ = env.reset(seed=4)
    assert obs.new_context and "make" in obs.text
    obs, r, term, trunc, info = env.step("__import__('os').system('true')")
    assert (r, term, trunc, obs.new_context) == (-1.0, False, False, False)
    assert obs.text.startswith("Not a valid expression") and info["turn"] == {}
    env.step("0")  # 0 is never among the numbers
    _, r, term, trunc, info = env.step("x")
    assert (term, trunc) == (False, True) and info["episode"]["metrics"]["valid"] == (0, 3)
    env = Countdown.make_env("id", answer_after_budget=True)
    env.reset(seed=4)
    for _ in range(3):
        env.step("0")
    _, r, term, trunc, info = env.step(env.expert_action())  # read by nobody: the budget is spent
    assert (r, trunc, info["turn"]["verdict"]) == (-1.0, True, BUDGET_SPENT)
    with pytest.raises(RuntimeError):
        env.step("1")


def test_task_args_are_checked_against_the_constructor() -> None:
    assert Countdown.task_args() == ("low", "high")
    assert Countdown.make_env("id", high=20).task.high == 20
    with pytest.raises(TypeError, match=r"unknown task args \['hihg'\]; valid: low, high"):
        Countdown.make_env("id", hihg=20)
    with pytest.raises(KeyError, match="valid splits: id, ood"):
        Countdown.make_env("zzz")


def test_gymnasium_checker_passes_and_reset_is_seeded() -> None:
    env = Countdown.make_env("ood")
    check_env(env, skip_render_check=True)
    a = env.reset(seed=11)[0].text
    assert env.reset(seed=11)[0].text == a and env.reset(seed=12)[0].text != a
    assert env.random_action(random.Random(1)) == env.random_action(random.Random(1))


class Guess(SimpleTask):
    name, description = "guess", "guess the number"
    splits = (SplitSpec("id", "0-3"),)
    verify_iter = 4
    metrics = (MetricSpec("closeness", "mean distance", "mean"), MetricSpec("won", "won", "rate"))

    def problem(self, rng, options):
        return options.get("secret", rng.randint(0, 3))

    def prompt(self, secret):
        return "Guess 0-3."

    def judge(self, secret, answer):
        ok = answer.strip() == str(secret)
        return Judgement(1.0 if ok else 0.0, ok, "No.", metrics={"closeness": abs(int(answer) - secret), "won": ok})

    def expert(self, secret):
        return str(secret)

    def random_answer(self, secret, rng):
        return str(rng.randint(0, 3))


def test_metric_kinds_combine_per_episode() -> None:
    env = Guess.make_env()
    env.reset(seed=0, options={"secret": 3})
    env.step("0")
    env.step("1")
    _, _, term, _, info = env.step("3")
    assert term and info["episode"]["metrics"] == {"closeness": 5 / 3, "won": True}
