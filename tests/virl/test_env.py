"""The episode flow, prompts and history of virl-l / virl-vl, as the paper's env runs them."""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from harness.templates import TemplateError
from harness_tasks.virl.env import VirlEnv
from harness_tasks.virl.plugin import VIRL_L, VIRL_VL
from tests.virl.helpers import answer, paper_route, write_routes


def route_file(tmp: Path, **kw) -> str:
    return str(write_routes(tmp / "routes.json", [paper_route(**kw)]))


def test_prompt_structure_and_history(tmp_path: Path) -> None:
    env = VIRL_L.make_env("id", data=route_file(tmp_path, init_heading=90), drop_rate=1.0)
    obs, _ = env.reset(seed=0)
    assert obs.new_context and not obs.images
    for head in ("[Task Description]", "[Instruction]", "[Action space]", "[Observations and actions sequence]",
                 "[Output]", '"current observation"', '"current instruction"', '"action"'):
        assert head in obs.text
    assert "1. First, turn right to face south.\n2. Move forward until you reach next intersection where Blue Door " \
           "Cafe is on your left.\n" in obs.text  # 177 - 90 = 87: right
    assert obs.text.count("O_1: No landmarks nearby; \nA_1: \n") == 1
    obs, r, *_ = env.step(answer("", "", "turn_direction(south)"))
    assert r == 1 and obs.new_context
    assert "O_1: No landmarks nearby; \nA_1: turn_direction(south)\n" \
           "O_2: Blue Door Cafe is on your left; You observe an intersection\nA_2: \n" in obs.text


def test_vision_history_keeps_past_text_observations(tmp_path: Path) -> None:
    env = VIRL_VL.make_env("id", data=route_file(tmp_path), drop_rate=1.0, image_size=64)
    obs, _ = env.reset(seed=0)
    assert len(obs.images) == 1 and obs.images[0].size == (133, 133)  # 2 x 64 + the 5-pixel gap
    assert "O_1: You observe an image of 4 views; \nA_1: \n" in obs.text
    assert "[front, right\n back, left]" in obs.text
    obs, *_ = env.step(env.expert_action())
    obs, *_ = env.step(env.expert_action())
    # past steps show their text observations, landmark names included (the paper's quirk)
    assert "O_2: Blue Door Cafe is on your left; You observe an intersection\nA_2: turn_direction(east)\n" in obs.text
    assert "O_3: You observe an image of 4 views; You observe an intersection\nA_3: \n" in obs.text


def test_budget_extra_answer_and_success(tmp_path: Path) -> None:
    data = route_file(tmp_path)
    env = VIRL_L.make_env("id", data=data, drop_rate=1.0)
    env.reset(seed=0)
    wrong = answer("No landmarks nearby", "", "stop()")
    obs, r, term, trunc, info = env.step(wrong)
    assert (r, term, trunc, obs.new_context) == (-1, False, False, False)
    assert obs.text.startswith("You failed this trial because you make incorrect action. Please avoid this action")
    obs, r, term, trunc, _ = env.step(wrong)  # the second judged answer of this step
    assert (r, term, trunc) == (-1, False, False)
    _, r, term, trunc, info = env.step(env.expert_action())  # the paper's extra answer: -1 unread, episode over
    assert (r, term, trunc) == (-1, False, True) and info["turn"]["verdict"] == "step_limit_reached"
    ep = info["episode"]
    assert not ep["success"] and ep["metrics"]["step_accuracy"] == (0, len(env.rail))
    with pytest.raises(RuntimeError):
        env.step(wrong)

    env = VIRL_L.make_env("id", data=data, drop_rate=1.0, answer_after_budget=False)
    env.reset(seed=0)
    env.step(wrong)
    assert env.step(wrong)[3] is True  # ends right after the last judged answer

    env.reset(seed=0)
    total, steps = 0.0, 0
    while True:
        if steps == 1:  # one wrong answer on the way is corrected within the budget
            total += env.step(wrong)[1]
        _, r, term, trunc, info = env.step(env.expert_action())
        total += r
        steps += 1
        if term or trunc:
            break
    assert term and info["episode"]["success"] and info["episode"]["metrics"]["step_accuracy"] == (steps, steps)
    assert total == steps - 1


def test_start_heading_zero_or_missing_is_random_per_episode(tmp_path: Path) -> None:
    for kw in ({"init_heading": 0}, {"init_heading": None}):
        env = VIRL_L.make_env("id", data=str(write_routes(tmp_path / "r.json", [paper_route(**kw)])))
        firsts = set()
        for seed in range(20):
            env.reset(seed=seed)
            firsts.add(env.rail[0].heading)
        assert len(firsts) > 10 and all(0 <= h <= 359 and h == int(h) for h in firsts)
    env.reset(seed=3)
    a = env.rail[0].heading
    env.reset(seed=3)
    assert env.rail[0].heading == a


def test_relative_actions_on_the_ood_rule_split(tmp_path: Path) -> None:
    env = VIRL_L.make_env("ood-rule", data=route_file(tmp_path, init_heading=200), drop_rate=1.0)
    obs, _ = env.reset(seed=0)
    assert "'slightly left', 'slightly right'" in obs.text
    assert env.current.action(False) == "turn_direction(slightly left)"  # 177 - 200 = -23
    assert env.step(answer("", "", "turn_direction(south)"))[1] == -1  # absolute actions are wrong here
    assert env.step(answer("", "", "turn_direction(slightly left)"))[1] == 1


def test_prompt_file(tmp_path: Path) -> None:
    src = tmp_path / "prompts.py"
    src.write_text('Q_VIRL_L = """Go: {instruction}|{action_space}|{obs_act_seq}"""\nQ_VIRL_VL = "See {instruction}"\n')
    env = VIRL_L.make_env("id", data=route_file(tmp_path), prompt_file=str(src))
    assert env.reset(seed=0)[0].text.startswith("Go: 1. First, turn")
    with pytest.raises(TemplateError, match="unknown placeholder"):
        (tmp_path / "p.txt").write_text("{instruction} {route}")
        VIRL_L.make_env("id", prompt_file=str(tmp_path / "p.txt"))


def test_generated_cities_follow_the_same_rules() -> None:
    env = VIRL_L.make_env("id")
    counts = []
    for seed in range(60):
        env.reset(seed=seed)
        ins = env.instructions
        assert ins.sentences[0].startswith("First, turn ") and ins.sentences[-1].startswith(
            "Move forward until you reach destination where ")
        assert env.rail[-1].absolute_action == "stop()"
        for s in env.rail:
            assert s.heading == int(s.heading)
        counts.extend(n for n in (sum(1 for s in env.rail if s.stop is None and s.leg == j)
                                  for j in range(1, len(env.route.milestones) + 1)))
    assert set(counts) <= {0, 1, 2, 3, 4} and {0, 2, 4} <= set(counts)


def test_gymnasium_checker_and_split_kwargs(tmp_path: Path) -> None:
    for gid, kw in [("harness/virl-l-v0", {}), ("harness/virl-l-v0", {"split": "ood-rule"}),
                    ("harness/virl-vl-v0", {"split": "world", "image_size": 64})]:
        check_env(gym.make(gid, **kw).unwrapped, skip_render_check=True)
    env = gym.make("harness/virl-vl-v0", split="world", image_size=64)
    env.reset(seed=0)
    assert env.unwrapped.route.city != "nyc" and env.unwrapped.action_space_name == "absolute"
    assert gym.make("harness/virl-l-v0", split="ood-rule").unwrapped.action_space_name == "relative"
    with pytest.raises(KeyError, match="world"):
        gym.make("harness/virl-l-v0", split="world")


def test_bad_task_args() -> None:
    with pytest.raises(TypeError, match="unknown task args"):
        VIRL_L.make_env("id", colour="blue")
    for kw in ({"image_size": 100_000}, {"image_size": float("nan")}, {"drop_rate": 2}, {"verify_iter": 0},
               {"action_space": "polar"}, {"route_order": "shuffled"}, {"answer_after_budget": "maybe"}):
        with pytest.raises(ValueError):
            VirlEnv(vision=True, **kw)  # type: ignore[arg-type]
