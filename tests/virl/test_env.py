from __future__ import annotations

import json
import random

import pytest

from tasks.virl.env import VirlEnv
from tasks.virl.plugin import VIRL_L, VIRL_VL
from tasks.virl.verifier import ABSOLUTE_ACTIONS, RELATIVE_ACTIONS, parse_answer


def _wrong(env: VirlEnv) -> str:
    good = json.loads(env.expert_action())
    good["action"] = "stop()" if good["action"] != "stop()" else "forward()"
    return json.dumps(good)


def test_first_prompt_is_a_fresh_context_with_everything() -> None:
    env = VirlEnv(vision=False)
    obs, info = env.reset(seed=1)
    assert obs.new_context and not obs.images and info["city"] == "nyc"
    for part in ("[Instruction]", "1. First, turn", "[Action space]", "turn_direction(x)", "northwest",
                 "[Observations and actions so far]", "O_1:", "[Current observation]", '"current instruction"'):
        assert part in obs.text
    obs, r, term, trunc, info = env.step(env.expert_action())
    assert r == 1 and not term and not trunc and obs.new_context and info["feedback"] == ""
    assert info["turn"] == {"verdict": "correct", "step": 0}
    assert "A_1: turn_direction(" in obs.text and "O_2:" in obs.text


def test_verify_iter_budget_and_feedback_as_next_user_turn() -> None:
    env = VirlEnv(vision=False, verify_iter=2)
    env.reset(seed=2)
    env.step(env.expert_action())
    obs, r, term, _, info = env.step(_wrong(env))
    assert (r, term) == (-1.0, False) and not obs.new_context and obs.text == info["feedback"]
    assert "not the right action" in obs.text and '"action"' in obs.text  # says what was wrong + the format
    assert info["turn"]["step"] == 1
    # a right answer on the retry advances; the step still counts as passed
    obs, r, term, _, info = env.step(env.expert_action())
    assert r == 1 and obs.new_context and env.pos == 2
    # two wrong answers at one step: the budget is spent and the episode fails
    env.step(_wrong(env))
    obs, r, term, _, info = env.step(_wrong(env))
    assert term and info["turn"]["budget_spent"]
    ep = info["episode"]
    assert ep["success"] is False and ep["metrics"]["step_accuracy"] == (2, len(env.rail))
    assert ep["details"]["failed_at"] == 2 and ep["details"]["answers"] == 5
    with pytest.raises(RuntimeError):
        env.step("{}")


def test_verify_iter_one_means_no_revision() -> None:
    env = VirlEnv(vision=False, verify_iter=1)
    env.reset(seed=2)
    assert env.step("garbage")[2] is True


def test_continue_after_fail_moves_on_like_the_paper() -> None:
    env = VirlEnv(vision=False, verify_iter=1, continue_after_fail=True)
    env.reset(seed=4)
    obs, r, term, _, info = env.step("garbage")
    assert r == -1.75 and not term and obs.new_context and env.pos == 1
    while True:
        *_, term, _, info = env.step(env.expert_action())
        if term:
            break
    assert info["episode"]["success"] is False
    assert info["episode"]["metrics"]["step_accuracy"] == (len(env.rail) - 1, len(env.rail))


def test_oracle_succeeds_and_step_accuracy_is_full() -> None:
    for space in ("absolute", "relative"):
        env = VirlEnv(vision=False, action_space=space)
        for seed in range(20):
            env.reset(seed=seed)
            total = 0.0
            while True:
                _, r, term, _, info = env.step(env.expert_action())
                total += r
                if term:
                    break
            n = len(env.rail)
            assert info["episode"]["success"] and info["episode"]["metrics"]["step_accuracy"] == (n, n)
            assert total == n and info["episode"]["details"]["rail_steps"] == n


def test_relative_split_uses_relative_turns() -> None:
    env = VirlEnv(vision=False, action_space="relative")
    obs, _ = env.reset(seed=5)
    a = parse_answer(env.expert_action()).action
    assert a in RELATIVE_ACTIONS and a.startswith("turn_direction(")
    assert "slightly left" in obs.text and "northwest" not in obs.text.split("[Action space]")[1]


def test_vision_text_never_names_landmarks() -> None:
    env = VirlEnv(vision=True)
    env.reset(seed=3)
    names = {s.name for st in env.route.stops for s in st.sightings}
    instruction_names = {c.name for c in env.route.cues if c}
    while True:
        obs_text = env._observe().text
        tail = obs_text.split("[Observations and actions so far]")[1]
        assert not any(n in tail for n in names)  # only the instruction may name landmarks
        assert len(env._observe().images) == 1
        if env.step(env.expert_action())[2]:
            break
    assert instruction_names


def test_text_observation_names_landmarks_and_intersections() -> None:
    env = VirlEnv(vision=False)
    env.reset(seed=3)
    seen = []
    while True:
        cur = env.current
        text = env._observe().text.split("[Current observation]\n")[1].split("\n")[0]
        seen.append(text)
        assert ("You observe an intersection." in text) == cur.is_intersection
        for name, side in cur.visible():
            assert f"{name} on your {side}" in text or name in text
        if env.step(env.expert_action())[2]:
            break
    assert any("No landmarks nearby." in s for s in seen)


def test_random_action_is_well_formed() -> None:
    for space, actions in (("absolute", ABSOLUTE_ACTIONS), ("relative", RELATIVE_ACTIONS)):
        env = VirlEnv(vision=False, action_space=space)
        env.reset(seed=0)
        rng = random.Random(0)
        for _ in range(30):
            a = parse_answer(env.random_action(rng))
            assert a.action in actions and a.instruction in env.sentences


def test_route_depends_only_on_the_seed() -> None:
    a, b = VirlEnv(vision=False), VirlEnv(vision=False)
    oa, _ = a.reset(seed=123)
    b.reset(seed=9)
    ob, _ = b.reset(seed=123)
    assert oa.text == ob.text and a.route == b.route


def test_world_picks_world_styles_per_seed() -> None:
    env = VIRL_VL.make_env("world", **VIRL_VL.split("world").options)
    cities = {env.reset(seed=s)[1]["city"] for s in range(60)}
    assert "nyc" not in cities and len(cities) >= 5


def test_bad_task_args_are_explained() -> None:
    with pytest.raises(TypeError, match="valid task args"):
        VIRL_L.make_env("id", colour="red")
    with pytest.raises(ValueError, match="unknown city style"):
        VIRL_L.make_env("id", styles="atlantis")
    env = VIRL_L.make_env("id", styles="paris,rio", image_size="256", min_turns="3", max_turns="3")
    env.reset(seed=1)
    assert env.route.turns == 3 and env.route.city in ("paris", "rio")
