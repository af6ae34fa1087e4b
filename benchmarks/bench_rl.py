"""RL throughput on CPU: the ``rl`` recipe (GRPO advantages) against TRL's GRPOTrainer.

Same tiny model (``make_tiny('llama')``), same gp-l ID hands as prompts, same verifier reward, same
shape of work per step: ``prompts`` hands x ``group`` sampled answers of at most ``max_new`` tokens, one
optimiser step over all of them (epochs=1 / num_iterations=1), no KL term (beta=0), temperature 1. Both
sides are single-turn here (verify_iter=1) because TRL's trainer has no multi-turn episodes. Reported:
samples/s and tokens/s (prompt + completion tokens through rollout and update) per step, after warm-up.

    pip install -e ".[bench]"        # trl
    python benchmarks/bench_rl.py --steps 6

Both run on the same shared CPU one after the other, so compare numbers from one invocation only.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def hands(n: int, seed: int = 0) -> list[tuple[int, str]]:
    from harness.runner import episode_seed
    from harness_tasks.generalpoints.plugin import GP_L

    env = GP_L.make_env("id", verify_iter=1)
    out = []
    for i in range(n):
        s = episode_seed("gp-l", "id/bench", seed, i)
        obs, _ = env.reset(seed=s)
        out.append((s, obs.text))
    return out


def gp_reward(seed: int, text: str) -> float:
    from harness_tasks.generalpoints.plugin import GP_L

    env = GP_L.make_env("id", verify_iter=1)
    env.reset(seed=seed)
    return float(env.step(text)[1])


def bench_harness(model: Path, a: argparse.Namespace) -> dict[str, Any]:
    from harness.types import TrainJob
    from harness_plugins.recipes.config import RLArgs
    from harness_plugins.recipes.rl import RLTrainer
    from harness_tasks.generalpoints.plugin import GP_L

    n = a.prompts * a.group
    job = TrainJob(recipe="rl", model=str(model), model_args={"pretrained": str(model)}, task=GP_L, split="id",
                   out_dir=tempfile.mkdtemp(), evaluate=lambda d, i: [], seed=0, steps=a.steps + 1, verify_iter=1)
    args = RLArgs(advantage="grpo", group_size=a.group, n_envs=n, minibatch=n, micro_batch=n, epochs=1,
                  max_new_tokens=a.max_new, lr=1e-5, checkpoints=0, evaluate=False, log_every=0)
    rl = RLTrainer(job, args)
    times, tokens = [], []
    for i in range(a.steps + 1):
        before = rl.tr.meter.rollout_tokens
        t = time.perf_counter()
        rl.step_once()
        rl.tr.end_step()
        if i:  # the first step warms up allocators and kernels
            times.append(time.perf_counter() - t)
            tokens.append(rl.tr.meter.rollout_tokens - before)
    return _rates("harness rl (grpo)", n, times, tokens)


def bench_trl(model: Path, a: argparse.Namespace, gradient_checkpointing: bool | None) -> dict[str, Any]:
    """``gradient_checkpointing=None`` keeps TRL's default (GRPOConfig turns it on)."""
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    n = a.prompts * a.group
    rows = hands(a.prompts * (a.steps + 2))
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": text}], "seed": s} for s, text in rows])

    def reward(prompts: Any, completions: Any, seed: list[int], **_: Any) -> list[float]:
        return [gp_reward(s, c[-1]["content"] if isinstance(c, list) else c) for s, c in zip(seed, completions,
                                                                                            strict=True)]

    class Clock(TrainerCallback):
        def __init__(self) -> None:
            self.marks: list[float] = []

        def on_step_begin(self, *args: Any, **kw: Any) -> None:
            self.marks.append(time.perf_counter())

        def on_train_end(self, *args: Any, **kw: Any) -> None:
            self.marks.append(time.perf_counter())

    out_dir = tempfile.mkdtemp()
    cfg = GRPOConfig(output_dir=out_dir, use_cpu=True, bf16=False, per_device_train_batch_size=n,
                     num_generations=a.group, max_completion_length=a.max_new, num_iterations=1, beta=0.0,
                     temperature=1.0, top_k=0, learning_rate=1e-5, max_steps=a.steps + 1, logging_steps=1,
                     save_strategy="no", report_to=[], shuffle_dataset=False, disable_dropout=True, seed=0,
                     dataloader_num_workers=0,
                     **({} if gradient_checkpointing is None else {"gradient_checkpointing": gradient_checkpointing}))
    tok = AutoTokenizer.from_pretrained(model)
    prompt_tokens = statistics.mean(len(tok(tok.apply_chat_template(r["prompt"], tokenize=False,
                                                                     add_generation_prompt=True),
                                             add_special_tokens=False)["input_ids"]) for r in data)
    tok.padding_side = "left"
    clock = Clock()
    trainer = GRPOTrainer(model=AutoModelForCausalLM.from_pretrained(model), reward_funcs=reward, args=cfg,
                          train_dataset=data, processing_class=tok, callbacks=[clock])
    trainer.train()
    times = [b - a_ for a_, b in zip(clock.marks[1:-1], clock.marks[2:], strict=True)]
    # rollout tokens as the harness counts them: prompt + completion of every sample
    tokens = [n * (rec["completions/mean_length"] + prompt_tokens)
              for rec in trainer.state.log_history[1:] if "completions/mean_length" in rec]
    gc = cfg.gradient_checkpointing
    return _rates(f"trl GRPOTrainer (gradient_checkpointing={gc})", n, times, tokens[:len(times)])


def _rates(name: str, n: int, times: list[float], tokens: list[float]) -> dict[str, Any]:
    med = statistics.median(times)
    out: dict[str, Any] = {"name": name, "samples_per_step": n, "steps": len(times), "s_per_step": med,
                           "samples_per_s": n / med}
    if tokens:
        out["tokens_per_s"] = sum(tokens) / sum(times[:len(tokens)])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=6, help="timed steps (after one warm-up step)")
    ap.add_argument("--prompts", type=int, default=4)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--max-new", type=int, default=48)
    ap.add_argument("--out", type=Path, default=None, help="write the results as JSON here")
    ap.add_argument("--threads", type=int, default=1, help="torch threads for both sides")
    a = ap.parse_args()
    import torch

    from harness_plugins.hf.tiny import make_tiny

    torch.set_num_threads(max(1, a.threads))
    model = make_tiny("llama", Path(tempfile.mkdtemp()) / "llama")
    results = [bench_harness(model, a), bench_trl(model, a, None), bench_trl(model, a, False)]
    ratios = {r["name"]: results[0]["samples_per_s"] / r["samples_per_s"] for r in results[1:]}
    report = {"results": results, "harness_speedup_samples_per_s": ratios, "config": vars(a) | {"out": str(a.out)},
              "torch_threads": torch.get_num_threads()}
    text = json.dumps(report, indent=2)
    print(text)
    if a.out:
        a.out.write_text(text)


if __name__ == "__main__":
    main()
