"""The environment protocol: dealing, rules, suits, splits, the paper's episode flow and feedback turns,
prompts and prompt files, determinism, and Gymnasium's own env checker."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path

import gymnasium
import pytest
from gymnasium.utils.env_checker import check_env

from harness.simple_task import SimpleEnv
from harness.templates import TemplateError
from harness.types import RunResult, TaskSpec
from harness_plugins.baselines import OracleBackend, RandomBackend
from harness_tasks.generalpoints import solver
from harness_tasks.generalpoints.cards import BLACK_SUITS, RED_SUITS, SUITS, hand_values, parse_card
from harness_tasks.generalpoints.env import paper_layout
from tests.generalpoints.conftest import run_episodes

SPLITS = [("gp-l", "id"), ("gp-l", "ood-rule"), ("gp-vl", "id"), ("gp-vl", "ood-rule"), ("gp-vl", "ood-visual")]
WRONG = paper_layout(["4", "7", "10", "9"], [4, 7, 10, 9], "(")


def make(tasks: dict[str, TaskSpec], task: str, split: str, **kw: object) -> SimpleEnv:
    if task == "gp-vl":
        kw.setdefault("image_size", 224)
    return tasks[task].make_env(split, **kw)  # type: ignore[return-value]


def test_specs(tasks: dict[str, TaskSpec]) -> None:
    gl, gv = tasks["gp-l"], tasks["gp-vl"]
    assert [s.name for s in gl.splits] == ["id", "ood-rule"]
    assert [s.name for s in gv.splits] == ["id", "ood-rule", "ood-visual"]
    assert [s.distribution for s in gv.splits] == ["id", "ood", "ood"]
    assert gl.default_verify_iter == gv.default_verify_iter == 5
    assert (gl.modality, gv.modality) == ("text", "vision")
    assert [(m.name, m.kind) for m in gv.metrics] == [("recognition_accuracy", "ratio")]
    assert gl.parse_answer is not None and gl.parse_answer('{"formula": "1=2"}').formula == "1"


@pytest.mark.parametrize(("task", "split"), SPLITS)
def test_hands_follow_split_rule_and_suits(tasks: dict[str, TaskSpec], task: str, split: str) -> None:
    env = make(tasks, task, split)
    rule = "ood" if split == "ood-rule" else "train"
    suits = SUITS if task == "gp-l" else RED_SUITS if split == "ood-visual" else BLACK_SUITS
    for seed in range(200):
        obs, _ = env.reset(seed=seed)
        ranks = [r for r, _ in list(env.problem.cards)]
        assert {s for _, s in list(env.problem.cards)} <= set(suits)
        assert list(env.problem.values) == hand_values(ranks, rule)
        assert solver.is_solvable(list(env.problem.values)), list(env.problem.cards)
        if rule == "ood":
            assert any(r >= 11 for r in ranks), list(env.problem.cards)
    assert ("'11', '12' and '13'" in obs.text) == (rule == "ood")


def test_prompt_structure(tasks: dict[str, TaskSpec]) -> None:
    env = make(tasks, "gp-l", "id")
    obs, _ = env.reset(seed=7)
    plain = [c[:-1] for c in env.problem.names]
    assert obs.new_context and not obs.images
    assert "Cards: [" + ", ".join(f"'{c}'" for c in plain) + "]" in obs.text
    for needle in ["[Task Description]", "[Input]", "[Output]", '"cards"', '"number"', '"formula"', "24"]:
        assert needle in obs.text
    assert "[Output Example]" not in obs.text  # the paper's Llama evaluations use the prompt without it
    assert "[Output Example]" in make(tasks, "gp-l", "id", prompt="example").reset(seed=7)[0].text
    vobs, _ = make(tasks, "gp-vl", "id").reset(seed=7)
    assert len(vobs.images) == 1 and "[Input]" not in vobs.text and "image" in vobs.text
    with pytest.raises(TemplateError, match="built-in prompts"):
        make(tasks, "gp-l", "id", prompt="fancy")


def test_prompt_file_python_constants_are_read_not_run(tasks: dict[str, TaskSpec], tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    src = tmp_path / "prompts.py"
    src.write_text(
        "import os\n"
        f"os.system('touch {marker}')\n"
        'Q_GeneralPoint_EQN_L = """Make {target_number}. {face_card_msg}. Cards: {cards}. {{json}}"""\n'
        'Q_GeneralPoint_EQN_L_EG = "Example: {target_number}"\n'
        'Q_GeneralPoint_EQN_VL = "Look at the image: {target_number}"\n'
        "NOT_A_PROMPT = 5\n")
    env = make(tasks, "gp-l", "id", prompt_file=str(src))
    obs, _ = env.reset(seed=1)
    plain = [c[:-1] for c in env.problem.names]
    assert obs.text.startswith("Make 24. the face cards 'J', 'Q' and 'K' are all worth '10'. Cards: ['")
    assert obs.text.endswith("]. {json}") and repr(plain).replace('"', "'") in obs.text
    assert not marker.exists()
    assert make(tasks, "gp-l", "id", prompt_file=str(src), prompt="Q_GeneralPoint_EQN_L_EG").reset(seed=1)[0].text \
        == "Example: 24"
    assert make(tasks, "gp-vl", "id", prompt_file=str(src)).reset(seed=1)[0].text == "Look at the image: 24"
    custom = make(tasks, "gp-l", "ood-rule", prompt_file=str(src), face_card_msg="faces are 11 to 13")
    assert "faces are 11 to 13" in custom.reset(seed=1)[0].text
    with pytest.raises(TemplateError, match=r"defines no string constant .Q_X.*Q_GeneralPoint_EQN_L"):
        make(tasks, "gp-l", "id", prompt_file=str(src), prompt="Q_X")


def test_prompt_file_errors(tasks: dict[str, TaskSpec], tmp_path: Path) -> None:
    text = tmp_path / "p.txt"
    text.write_text("Reach {target_number} with {cards} and {secret}")
    with pytest.raises(TemplateError, match=r"unknown placeholder\(s\) \{secret\}; valid: \{target_number\}"):
        make(tasks, "gp-l", "id", prompt_file=str(text))
    text.write_text("Reach {cards.__class__}")
    with pytest.raises(TemplateError, match="not allowed"):
        make(tasks, "gp-l", "id", prompt_file=str(text))
    text.write_text("Reach {target_number} with {cards}")
    assert make(tasks, "gp-l", "id", prompt_file=str(text)).reset(seed=0)[0].text.startswith("Reach 24 with ['")
    with pytest.raises(TemplateError, match=r"not a file|No such file"):
        make(tasks, "gp-l", "id", prompt_file=str(tmp_path / "missing.py"))
    bad = tmp_path / "bad.py"
    bad.write_text("def (:\n")
    with pytest.raises(TemplateError, match="not a readable Python file"):
        make(tasks, "gp-l", "id", prompt_file=str(bad))


def test_feedback_turns_and_the_papers_extra_answer(tasks: dict[str, TaskSpec], play: Callable[..., RunResult],
                                                    scripted: type, tmp_path: Path) -> None:
    backend = scripted([WRONG, WRONG, None])
    res = play(tasks["gp-l"], backend, episodes=3)
    assert res.metrics["success_rate"].value == 1.0 and res.metrics["mean_turns"].value == 3
    first = [r for r in backend.requests if r.episode_seed == backend.requests[0].episode_seed]
    assert [len(r.messages) for r in first] == [1, 3, 5]
    last = first[-1].messages
    assert [m.role for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1].text == WRONG and last[2].text.startswith("You failed this trial because ")

    # 3 judged answers, then the paper's 4th answer is scored -1 unread and the episode is truncated
    never = scripted([WRONG])
    res = play(tasks["gp-l"], never, split="ood-rule", episodes=2, verify_iter=3)
    assert res.metrics["success_rate"].value == 0.0 and res.metrics["mean_turns"].value == 4
    rewards = [t["reward"] for t in res_samples(res)[0]["turns"]]
    verdicts = [t["verdict"] for t in res_samples(res)[0]["turns"]]
    assert rewards[-1] == -1.0 and verdicts[-1] == "step_limit_reached" and len(rewards) == 4
    res = run_episodes(tasks["gp-l"], scripted([WRONG]), tmp_path / "no-extra", episodes=2, verify_iter=3,
                       task_args={"answer_after_budget": False})
    assert res.metrics["mean_turns"].value == 3


def res_samples(res: RunResult) -> list[dict]:
    import orjson

    return [orjson.loads(line) for line in Path(res.run_dir, "samples.jsonl").read_bytes().splitlines()]


def test_vision_feedback_has_no_image_and_summary(tasks: dict[str, TaskSpec]) -> None:
    env = make(tasks, "gp-vl", "id", verify_iter=2)
    env.reset(seed=3)
    obs, reward, term, trunc, info = env.step("I can't read the cards")
    assert (reward, term, trunc) == (-1.5, False, False) and not obs.new_context and not obs.images
    assert obs.text == "You failed this trial because you recognized wrong cards"
    assert info["turn"] == {"verdict": "wrong_cards", "messages": ["you recognized wrong cards"],
                            "cards_correct": False}
    obs, reward, term, _, info = env.step(env.expert_action())
    assert (reward, term, info["feedback"]) == (5.0, True, "")
    ep = info["episode"]
    assert ep["success"] and ep["metrics"]["recognition_accuracy"] == (1, 2)
    assert ep["details"]["target"] == 24 and ep["details"]["rule"] == "train"
    assert ep["details"]["cards"][0][-1] in "♠♣"
    with pytest.raises(RuntimeError):
        env.step("{}")


def test_given_hand(tasks: dict[str, TaskSpec]) -> None:
    env = make(tasks, "gp-vl", "ood-rule")
    _obs, info = env.reset(seed=0, options={"cards": ["SA", "HT", "K♣", "4"]})
    assert list(env.problem.cards[:3]) == [(1, "spades"), (10, "hearts"), (13, "clubs")]
    assert env.problem.cards[3][0] == 4
    assert list(env.problem.values) == [1, 10, 13, 4] and info["cards"][:3] == ["A♠", "10♥", "K♣"]
    assert parse_card("D10") == (10, "diamonds")
    with pytest.raises(ValueError, match="bad card"):
        env.reset(options={"cards": ["XX", "2", "3", "4"]})
    with pytest.raises(ValueError, match="4 cards"):
        env.reset(options={"cards": ["2", "3"]})


@pytest.mark.parametrize(("task", "split"), SPLITS)
def test_oracle_solves_every_split_through_runner(tasks: dict[str, TaskSpec], play: Callable[..., RunResult],
                                                  task: str, split: str) -> None:
    kw = {"task_args": {"image_size": "256x192"}} if task == "gp-vl" else {}
    res = play(tasks[task], OracleBackend(), split=split, episodes=60 if task == "gp-l" else 20, **kw)
    assert res.record["status"] == "complete"
    assert res.metrics["success_rate"].value == 1.0 and res.metrics["mean_turns"].value == 1
    assert res.metrics["mean_reward"].value == 5.0
    if task == "gp-vl":
        assert res.metrics["recognition_accuracy"].value == 1.0


def test_expert_answers_in_the_papers_layout(tasks: dict[str, TaskSpec]) -> None:
    env = make(tasks, "gp-l", "id")
    env.reset(seed=0, options={"cards": ["SA", "H7", "D7", "CT"]})
    assert env.expert_action() == ('{\n  "cards": [\'A\', \'7\', \'7\', \'10\'],\n  "number": [1, 7, 7, 10],\n'
                                   '  "formula": "1*10+7+7=24",\n}')


def test_random_policy_is_well_formed_and_seeded(tasks: dict[str, TaskSpec], play: Callable[..., RunResult]
                                                 ) -> None:
    env = make(tasks, "gp-l", "id")
    env.reset(seed=11)
    assert env.random_action(random.Random(5)) == env.random_action(random.Random(5))
    verdicts = set()
    for seed in range(200):
        env.reset(seed=seed)
        verdicts.add(env.problem.judge(env.random_action(random.Random(seed))).verdict)  # type: ignore[misc]
    assert verdicts <= {"success", "no_solution"} and "no_solution" in verdicts
    r1 = play(tasks["gp-l"], RandomBackend(seed=1), episodes=30)
    assert 0.0 <= r1.metrics["success_rate"].value < 1.0


def test_determinism_same_seed_same_hand_and_pixels(tasks: dict[str, TaskSpec]) -> None:
    from harness_tasks.generalpoints import render

    a, b = make(tasks, "gp-vl", "id"), make(tasks, "gp-vl", "id")
    oa, _ = a.reset(seed=123456789)
    render.card_sprite.cache_clear()  # a cold sprite cache must draw the same pixels
    ob, _ = b.reset(seed=123456789)
    assert a.problem.cards == b.problem.cards and oa.text == ob.text
    assert oa.images[0].tobytes() == ob.images[0].tobytes()
    # random.Random(int) is the same Mersenne Twister everywhere: pin one hand so a change is noticed
    env = make(tasks, "gp-l", "id")
    env.reset(seed=2024)
    assert list(env.problem.cards) == [(8, "diamonds"), (3, "spades"), (12, "clubs"), (10, "diamonds")]


def test_gymnasium_checker_and_split_kwargs() -> None:
    for gid, kw in [("harness/gp-l-v0", {}), ("harness/gp-l-v0", {"split": "ood-rule"}),
                    ("harness/gp-vl-v0", {"split": "ood-visual", "image_size": 128})]:
        env = gymnasium.make(gid, **kw)
        check_env(env.unwrapped, skip_render_check=True)
    env = gymnasium.make("harness/gp-vl-v0", split="ood-visual", image_size=128)
    obs, _ = env.reset(seed=0)
    assert obs.images[0].size == (128, 128) and env.unwrapped.problem.cards[0][1] in RED_SUITS
    _, reward, term, _, _ = env.step(env.unwrapped.expert_action())
    assert (reward, term) == (5.0, True)
    assert gymnasium.make("harness/gp-l-v0", split="ood-rule").unwrapped.task.rule == "ood"


def test_bad_task_args(tasks: dict[str, TaskSpec]) -> None:
    with pytest.raises(KeyError):
        tasks["gp-l"].make_env("ood-visual")
    with pytest.raises(TypeError, match="unknown task args"):
        tasks["gp-l"].make_env("id", colour="blue")
    with pytest.raises(ValueError, match="target"):
        make(tasks, "gp-l", "id", target="twenty")
    with pytest.raises(ValueError, match="answer_after_budget"):
        make(tasks, "gp-l", "id", answer_after_budget="maybe")
    with pytest.raises(ValueError, match="can make"):
        make(tasks, "gp-l", "id", target=100_000)


def test_protocol_version_is_part_of_the_run_identity(tasks: dict[str, TaskSpec], tmp_path: Path) -> None:
    """Runs recorded under the old protocol (no task version) never share a directory with new ones."""
    from harness.runner import EvalConfig, Runner, run_dir_for

    old = EvalConfig(task="gp-l", split="id", model="oracle", backend="oracle", episodes=2)
    new = EvalConfig(task="gp-l", split="id", model="oracle", backend="oracle", episodes=2,
                     task_version=tasks["gp-l"].version)
    assert tasks["gp-l"].version == "paper-1" and new.identity()["task_version"] == "paper-1"
    assert run_dir_for(tmp_path, old) != run_dir_for(tmp_path, new)
    res = Runner(tasks["gp-l"], OracleBackend(), old, tmp_path / "r").run()  # the runner fills the version in
    assert res.record["task_version"] == "paper-1" and res.record["identity"]["task_version"] == "paper-1"
