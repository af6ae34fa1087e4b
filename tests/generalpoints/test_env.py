"""The environment protocol: hands, rules, suits, splits, budget, feedback turns, determinism, images."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Callable

import gymnasium
import pytest

from harness.types import RunResult, TaskSpec
from plugins.baselines import OracleBackend, RandomBackend
from tasks.generalpoints import solver
from tasks.generalpoints.cards import BLACK_SUITS, RED_SUITS, SUITS, hand_values, parse_rank, rank_value
from tasks.generalpoints.env import GeneralPointsEnv
from tasks.generalpoints.formula import check_syntax, equals, tokenize

SPLITS = [("gp-l", "id"), ("gp-l", "ood-rule"), ("gp-vl", "id"), ("gp-vl", "ood-rule"), ("gp-vl", "ood-visual")]


def make(tasks: dict[str, TaskSpec], task: str, split: str, **kw: object) -> GeneralPointsEnv:
    kw.setdefault("image_size", 224) if task == "gp-vl" else None
    return tasks[task].make_env(split, **kw)  # type: ignore[return-value]


def test_specs(tasks: dict[str, TaskSpec]) -> None:
    gl, gv = tasks["gp-l"], tasks["gp-vl"]
    assert [s.name for s in gl.splits] == ["id", "ood-rule"]
    assert [s.name for s in gv.splits] == ["id", "ood-rule", "ood-visual"]
    assert [s.distribution for s in gv.splits] == ["id", "ood", "ood"]
    assert gl.default_verify_iter == gv.default_verify_iter == 5
    assert (gl.modality, gv.modality) == ("text", "vision")
    assert [(m.name, m.kind) for m in gv.metrics] == [("recognition_accuracy", "ratio")]
    assert gl.parse_answer is not None and gl.parse_answer('{"formula": "1"}').formula == "1"


def test_table_covers_all_multisets_and_solutions_are_right() -> None:
    table = solver.load_table(24)
    assert len(table) == 1820 == len(solver.ALL_KEYS)
    assert sum(bool(v) for v in table.values()) == 1362  # the classic count of solvable 24-game hands
    assert table[(1, 1, 1, 1)] == () and table[(3, 3, 8, 8)] == ("8/(3-8/3)",)
    rng = random.Random(0)
    for key in rng.sample([k for k, v in table.items() if v], 60):
        for sol in table[key]:
            toks = tokenize(sol)
            assert check_syntax(toks).status == "complete"
            assert sorted(int(t) for t in toks if t.isdigit()) == list(key)
            assert equals(toks, 24)[0], (key, sol)


def test_rule_values() -> None:
    assert [rank_value(r, "train") for r in range(1, 14)] == [*range(1, 11), 10, 10, 10]
    assert [rank_value(r, "ood") for r in range(1, 14)] == list(range(1, 14))
    assert hand_values([1, 11, 12, 13], "train") == (1, 10, 10, 10)
    assert [parse_rank(x) for x in ["A", "Ace", "1", "T", "10", "J", "Jack", "Q", "queen", "K", "KS", "Z"]] == \
        [1, 1, 1, 10, 10, 11, 11, 12, 12, 13, 13, None]


@pytest.mark.parametrize(("task", "split"), SPLITS)
def test_hands_solvable_with_split_rule_and_suits(tasks: dict[str, TaskSpec], task: str, split: str) -> None:
    env = make(tasks, task, split)
    table = solver.load_table(24)
    rule = "ood" if split == "ood-rule" else "train"
    suits = SUITS if task == "gp-l" else RED_SUITS if split == "ood-visual" else BLACK_SUITS
    for seed in range(300):
        obs, _ = env.reset(seed=seed)
        ranks = [r for r, _ in env.hand]
        assert len(set(env.hand)) == 4  # four distinct cards from one deck
        assert {s for _, s in env.hand} <= set(suits)
        assert env.values == list(hand_values(ranks, rule))
        assert table[tuple(sorted(env.values))], env.hand
        if rule == "ood":
            assert any(r >= 11 for r in ranks), env.hand
    assert ("11, 'Q' as 12" in obs.text) == (rule == "ood")
    assert ("all count as 10" in obs.text) == (rule == "train")


def test_prompt_contents(tasks: dict[str, TaskSpec]) -> None:
    env = make(tasks, "gp-l", "id")
    obs, _ = env.reset(seed=7)
    names = json.loads(env.expert_action())["cards"]
    assert obs.new_context and not obs.images
    assert "[" + ", ".join(f"'{n}'" for n in names) + "]" in obs.text
    for needle in ["exactly once", "+ - * / ( ) =", '"cards"', '"number"', '"formula"', "24"]:
        assert needle in obs.text
    venv = make(tasks, "gp-vl", "id")
    vobs, _ = venv.reset(seed=7)
    assert len(vobs.images) == 1 and "Your cards" not in vobs.text and "image" in vobs.text


def test_target_configurable(tasks: dict[str, TaskSpec], tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delitem(solver._TABLES, 10, raising=False)
    env = make(tasks, "gp-l", "id", target="10")
    cached = solver.cache_dir() / "table-t10-v1.json.gz"
    assert cached.is_file()
    for seed in range(50):
        obs, _ = env.reset(seed=seed)
        assert "exactly 10" in obs.text
        assert env.step(env.expert_action())[1] == 5.0
    first = solver._TABLES.pop(10)  # the second load comes from the cache file
    assert solver.load_table(10) == first and solver.load_table(10) is not first
    assert "1+2+3+4" in first[(1, 2, 3, 4)] and not first[(1, 1, 1, 1)]
    with pytest.raises(ValueError):
        make(tasks, "gp-l", "id", target="twenty")


def test_verify_iter_budget_and_feedback_turns(tasks: dict[str, TaskSpec], play: Callable[..., RunResult],
                                               scripted: type) -> None:
    wrong = '{"cards": [], "number": [], "formula": "("}'
    backend = scripted([wrong, wrong, None])
    res = play(tasks["gp-l"], backend, episodes=3)
    assert res.metrics["success_rate"].value == 1.0 and res.metrics["mean_turns"].value == 3
    first = [r for r in backend.requests if r.episode_seed == backend.requests[0].episode_seed]
    assert [len(r.messages) for r in first] == [1, 3, 5]
    last = first[-1].messages
    assert [m.role for m in last] == ["user", "assistant", "user", "assistant", "user"]
    assert last[1].text == wrong
    assert last[2].text.startswith("You failed this trial because your formula is incomplete")

    never = scripted([wrong])
    res = play(tasks["gp-l"], never, split="ood-rule", episodes=2, verify_iter=3)
    assert res.metrics["success_rate"].value == 0.0 and res.metrics["mean_turns"].value == 3
    assert res.metrics["mean_reward"].value == -9.0


def test_step_info_and_episode_summary(tasks: dict[str, TaskSpec]) -> None:
    env = make(tasks, "gp-vl", "id", verify_iter=2)
    env.reset(seed=3)
    good = json.loads(env.expert_action())
    bad = dict(good, cards=["K", "K", "K", "K"]) if good["cards"] != ["K"] * 4 else dict(good, cards=["A"] * 4)
    obs, reward, term, trunc, info = env.step(json.dumps(bad))
    assert (reward, term, trunc) == (-1.5, False, False) and not obs.new_context
    assert info["turn"] == {"verdict": "wrong_cards", "cards_correct": False}
    assert info["feedback"] and obs.text.startswith(info["feedback"])
    obs, reward, term, _, info = env.step(json.dumps(good))
    assert (reward, term, info["feedback"]) == (5.0, True, "")
    ep = info["episode"]
    assert ep["success"] and ep["metrics"]["recognition_accuracy"] == (1, 2)
    d = ep["details"]
    assert set(d) == {"cards", "values", "target", "rule", "solution"} and d["target"] == 24 and d["rule"] == "train"
    assert d["cards"][0][-1] in "♠♣"
    with pytest.raises(RuntimeError):
        env.step("{}")


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


def test_random_policy_is_well_formed_and_seeded(tasks: dict[str, TaskSpec], play: Callable[..., RunResult]
                                                 ) -> None:
    env = make(tasks, "gp-l", "id")
    env.reset(seed=11)
    a, b = env.random_action(random.Random(5)), env.random_action(random.Random(5))
    assert a == b
    verdicts = set()
    for seed in range(200):
        env.reset(seed=seed)
        verdicts.add(env._judge(env.random_action(random.Random(seed))).verdict)  # type: ignore[misc]
    assert verdicts <= {"success", "wrong_result"} and "wrong_result" in verdicts
    r1 = play(tasks["gp-l"], RandomBackend(seed=1), episodes=30)
    assert 0.0 <= r1.metrics["success_rate"].value < 1.0


def test_determinism_same_seed_same_hand_and_pixels(tasks: dict[str, TaskSpec]) -> None:
    from tasks.generalpoints import render

    a, b = make(tasks, "gp-vl", "id"), make(tasks, "gp-vl", "id")
    oa, _ = a.reset(seed=123456789)
    render.card_sprite.cache_clear()  # a cold sprite cache must draw the same pixels
    ob, _ = b.reset(seed=123456789)
    assert a.hand == b.hand and oa.text == ob.text
    assert oa.images[0].tobytes() == ob.images[0].tobytes()
    # random.Random(int) is the same Mersenne Twister everywhere: pin one hand so a change is noticed
    env = make(tasks, "gp-l", "id")
    env.reset(seed=2024)
    assert env.hand == [(7, "clubs"), (13, "spades"), (8, "diamonds"), (1, "hearts")]


def test_images(tasks: dict[str, TaskSpec]) -> None:
    env = tasks["gp-vl"].make_env("ood-visual")
    obs, _ = env.reset(seed=1)
    img = obs.images[0]
    assert img.size == (1200, 1200) and img.mode == "RGB"
    colours = img.getcolors(maxcolors=1 << 16)
    assert colours is not None and len(colours) > 10  # table, card faces, ink, anti-aliasing
    red = sum(n for n, (r, g, b) in colours if r > 150 and g < 80 and b < 80)
    assert red > 1000  # red suits are drawn in red
    digests = set()
    for seed in range(8):
        digests.add(hashlib.sha256(env.reset(seed=seed)[0].images[0].tobytes()).hexdigest())
    assert len(digests) == 8
    small = tasks["gp-vl"].make_env("id", image_size="320x200")
    assert small.reset(seed=0)[0].images[0].size == (320, 200)
    with pytest.raises(ValueError):
        tasks["gp-vl"].make_env("id", image_size="huge")


def test_gymnasium_ids_and_errors(tasks: dict[str, TaskSpec]) -> None:
    env = gymnasium.make("harness/gp-vl-v0", split="ood-visual", image_size=128)
    obs, _ = env.reset(seed=0)
    assert obs.images[0].size == (128, 128)
    assert env.unwrapped.hand[0][1] in RED_SUITS
    _, reward, term, _, _ = env.step(env.unwrapped.expert_action())
    assert (reward, term) == (5.0, True)
    assert gymnasium.make("harness/gp-l-v0").reset(seed=0)[0].new_context
    with pytest.raises(KeyError):
        tasks["gp-l"].make_env("ood-visual")
    with pytest.raises(TypeError):
        tasks["gp-l"].make_env("id", colour="blue")
