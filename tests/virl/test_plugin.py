from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import orjson
import pytest

from harness.plugins import load_registry
from harness.runner import EvalConfig, Runner
from harness.types import TaskSpec
from harness_plugins.baselines import OracleBackend, RandomBackend
from harness_tasks.virl.city import WORLD_STYLES
from tests.virl.helpers import paper_route, write_routes


@pytest.fixture(scope="module")
def registry():
    return load_registry(["harness_tasks.virl.plugin"], entry_points=False)


def _run(task: TaskSpec, split: str, tmp: Path, backend=None, episodes: int = 12, **task_args) -> tuple:
    cfg = EvalConfig(task=task.name, split=split, model="oracle", backend="oracle", episodes=episodes, seed=0,
                     batch_size=5, task_args=task_args)
    res = Runner(task, backend or OracleBackend(), cfg, tmp).run()
    samples = [orjson.loads(x) for x in (tmp / "samples.jsonl").read_bytes().splitlines()]
    return res, samples


def test_tasks_and_splits(registry) -> None:
    lt, vl = registry.task("virl-l"), registry.task("virl-vl")
    assert (lt.modality, vl.modality) == ("text", "vision")
    assert [s.name for s in lt.splits] == ["id", "ood-rule"]
    assert [s.name for s in vl.splits] == ["id", "ood-rule", "world"]
    assert vl.split("ood-visual").name == "world"
    assert [s.distribution for s in vl.splits] == ["id", "ood", "ood"]
    assert vl.split("world").options["styles"] == WORLD_STYLES and "nyc" not in WORLD_STYLES
    assert vl.split("ood-rule").options["action_space"] == "relative"
    assert lt.default_verify_iter == vl.default_verify_iter == 2
    assert [m.name for m in lt.metrics] == ["step_accuracy"] and lt.metrics[0].kind == "ratio"
    assert lt.parse_answer('{"current observation": "a", "current instruction": "b", "action": "c"}')["action"] == "c"
    assert lt.version == vl.version == "paper-1"
    with pytest.raises(KeyError, match="world"):
        lt.split("world")


def test_gym_ids_are_registered(registry) -> None:
    assert registry.task("virl-l").gym_id == "harness/virl-l-v0"
    env = gym.make("harness/virl-vl-v0", image_size=128, action_space="relative")
    obs, _ = env.reset(seed=1)
    assert obs.images[0].size == (261, 261)
    _, r, *_ = env.step(env.unwrapped.expert_action())
    assert r == 1
    env.close()


@pytest.mark.parametrize(("task", "split"), [("virl-l", "id"), ("virl-l", "ood-rule"), ("virl-vl", "id"),
                                             ("virl-vl", "ood-rule"), ("virl-vl", "ood-visual")])
def test_oracle_is_perfect_through_the_runner(registry, tmp_path: Path, task: str, split: str) -> None:
    res, samples = _run(registry.task(task), split, tmp_path, image_size=96)
    assert res.record["status"] == "complete" and res.record["split"] in ("id", "ood-rule", "world")
    assert res.metrics["success_rate"].value == 1.0 and res.metrics["step_accuracy"].value == 1.0
    for s in samples:
        assert s["success"] and all(t["verdict"] == "correct" and t["feedback"] == "" for t in s["turns"])
        hits, total = s["metrics"]["step_accuracy"]
        assert hits == total == len(s["turns"]) == s["details"]["rail_steps"]
    if split == "ood-visual":
        assert {s["details"]["city"] for s in samples} <= set(WORLD_STYLES)


def test_oracle_on_a_route_file_through_the_runner(registry, tmp_path: Path) -> None:
    path = write_routes(tmp_path / "paper.json", [paper_route(90, 2), paper_route(0, 4)])
    for task in ("virl-l", "virl-vl"):
        res, samples = _run(registry.task(task), "id", tmp_path / task, episodes=6, data=str(path),
                            image_size=128)
        assert res.metrics["success_rate"].value == 1.0
        assert all(s["details"]["route_id"].startswith("paper.json#") for s in samples)


def test_random_backend_gets_rewards_and_feedback(registry, tmp_path: Path) -> None:
    res, samples = _run(registry.task("virl-l"), "id", tmp_path, backend=RandomBackend(0), episodes=10)
    assert res.metrics["success_rate"].value == 0.0
    turns = [t for s in samples for t in s["turns"]]
    assert {t["verdict"] for t in turns} - {"correct"}
    assert all((t["feedback"] == "") == (t["verdict"] in ("correct", "step_limit_reached")) for t in turns)
    # verify_iter 2: a failing step got a retry, then the paper's extra unread answer ended the episode
    assert all(len(s["turns"]) >= 3 and s["turns"][-1]["verdict"] == "step_limit_reached" for s in samples)
