"""SFT then RL on gp-l (and toy-add) with a tiny model: checkpoints are saved, evaluated on the task's ID
and OOD splits through the normal runner, and their run records carry the recipe and training FLOPs."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from tests.recipes.conftest import make_job


def _check_records(records: list, recipe: str, splits: set[str]) -> None:
    assert {r["split"] for r in records} == splits
    for r in records:
        t = r["training"]
        assert t["recipe"] == recipe and t["flops"] > 0 and t["trained_tokens"] > 0
        assert {"base_model", "task", "split", "step", "seed", "rollout_tokens"} <= set(t)
        assert r["status"] == "complete"


def test_sft_then_rl_on_gp_l(registry, tiny_llama: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    seen: list[dict] = []  # what the CLI's progress bar is fed
    sft = registry.recipe("sft").run(dataclasses.replace(make_job(
        registry, recipe="sft", model=tiny_llama, task="gp-l", runs=runs, steps=4,
        recipe_args={"checkpoints": 2, "batch_size": 4, "lr": 1e-3, "log_every": 0}), on_step=seen.append))
    assert [s["step"] for s in seen] == [1, 2, 3, 4] and all(s["loss"] > 0 for s in seen)
    assert [s["flops"] for s in seen] == sorted(s["flops"] for s in seen) and seen[-1]["flops"] == sft["flops"]
    assert [c["step"] for c in sft["checkpoints"]] == [2, 4]
    assert sft["checkpoints"][0]["flops"] < sft["checkpoints"][1]["flops"] == sft["flops"]
    assert sft["rollout_tokens"] == 0 and sft["trained_tokens"] > 0
    last = Path(sft["checkpoints"][-1]["dir"])
    info = json.loads((last / "harness-training.json").read_text())
    assert info["recipe"] == "sft" and info["step"] == 4

    rl = registry.recipe("rl").run(make_job(
        registry, recipe="rl", model=last, task="gp-l", runs=runs, steps=2, verify_iter=2,
        recipe_args={"checkpoints": 1, "n_envs": 2, "minibatch": 4, "max_new_tokens": 16, "lr": 1e-4,
                     "epochs": 2, "log_every": 0}))
    assert rl["rollout_tokens"] > 0 and rl["forward_tokens"] > 0 and len(rl["checkpoints"]) == 1
    assert set(rl["checkpoints"][0]["success"]) == {"id", "ood-rule"}

    records = [json.loads(p.read_text()) for p in runs.glob("gp-l_*/run.json")]
    assert len(records) == 6  # 2 SFT + 1 RL checkpoints x (id, ood-rule)
    _check_records([r for r in records if r["training"]["recipe"] == "sft"], "sft", {"id", "ood-rule"})
    _check_records([r for r in records if r["training"]["recipe"] == "rl"], "rl", {"id", "ood-rule"})
    # what boards and `harness plot compute` read: one point per checkpoint and split, by recipe
    from harness import plot

    points = plot.compute_points(plot.compute_table(runs))
    # RL started from the SFT checkpoint: both belong to one base model, so the series are the recipes
    assert {p.series for p in points} == {"SFT", "RL"}
    by_recipe = {r: [p for p in points if p.series == r.upper()] for r in ("sft", "rl")}
    assert len(by_recipe["sft"]) == 4 and len(by_recipe["rl"]) == 2
    assert {p.column.split for p in points} == {"id", "ood-rule"}
    assert sorted({p.x for p in by_recipe["sft"]}) == [c["flops"] for c in sft["checkpoints"]]


def test_toy_add_lora_grpo_by_flops_budget(registry, tiny_llama: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    probe = make_job(registry, recipe="rl", model=tiny_llama, task="toy-add", runs=runs, steps=1)
    from harness_plugins.recipes.policy import Policy

    n = Policy(probe.model_args).n_params
    budget = 6 * n * 2000  # a few steps' worth
    out = registry.recipe("rl").run(make_job(
        registry, recipe="rl", model=tiny_llama, task="toy-add", runs=runs, budget=budget, verify_iter=2,
        recipe_args={"lora": True, "advantage": "grpo", "n_envs": 4, "group_size": 2, "max_new_tokens": 4,
                     "checkpoints": 2, "log_every": 0}))
    assert out["flops"] >= budget and len(out["checkpoints"]) == 2
    records = [json.loads(p.read_text()) for p in runs.glob("toy-add_*/run.json")]
    _check_records(records, "rl", {"id", "ood"})
    assert all(r["training"]["lora"] for r in records)


def test_sft_learns_toy_add(registry, tiny_llama: Path, tmp_path: Path) -> None:
    """Enough SFT that the tiny model answers most toy-add in-distribution sums (a few seconds)."""
    runs = tmp_path / "runs"
    out = registry.recipe("sft").run(make_job(
        registry, recipe="sft", model=tiny_llama, task="toy-add", runs=runs, steps=300, episodes=50,
        recipe_args={"checkpoints": 1, "batch_size": 16, "lr": 3e-3, "revision_frac": 0.3, "log_every": 0},
        max_tokens=4, splits=("id",)))
    assert out["checkpoints"][-1]["success"]["id"] > 0.5


def test_vlm_sft_then_rl_on_gp_vl(registry, tiny_qwen2_vl: Path, tmp_path: Path) -> None:
    """The vision path end to end: card images go through the processor in SFT, in RL rollouts and updates,
    and in the checkpoint evaluations on all three gp-vl splits."""
    runs = tmp_path / "runs"
    sft = registry.recipe("sft").run(make_job(
        registry, recipe="sft", model=tiny_qwen2_vl, task="gp-vl", runs=runs, steps=1, episodes=1,
        recipe_args={"checkpoints": 1, "batch_size": 2, "log_every": 0}))
    last = Path(sft["checkpoints"][-1]["dir"])
    rl = registry.recipe("rl").run(make_job(
        registry, recipe="rl", model=last, task="gp-vl", runs=runs, steps=1, episodes=1, verify_iter=2,
        recipe_args={"checkpoints": 1, "n_envs": 2, "minibatch": 4, "max_new_tokens": 8, "epochs": 1,
                     "log_every": 0}))
    assert rl["rollout_tokens"] > 0
    records = [json.loads(p.read_text()) for p in runs.glob("gp-vl_*/run.json")]
    _check_records([r for r in records if r["training"]["recipe"] == "sft"], "sft", {"id", "ood-rule", "ood-visual"})
    _check_records([r for r in records if r["training"]["recipe"] == "rl"], "rl", {"id", "ood-rule", "ood-visual"})
