"""The ``rl`` recipe: PPO as in the paper (or GRPO advantages) on multi-turn verification-revision episodes.

One step = one rollout of ``n_envs`` episodes (per process) + ``epochs`` passes of minibatch updates.
A turn (one model answer) is a PPO sample: its state is the conversation so far, its action the sampled
answer, its log-prob ``lambda * sum log p(thought) + sum log p(action)`` (see :mod:`plugins.recipes.action`),
its reward the verifier's. Advantages: GAE over the turns of each episode (gamma 0.9, lambda 0.95) with a
value head on the prompt's last hidden state, or GRPO's group-normalised episode returns. No KL term.

FLOPs: rollout tokens (prompt prefill + generated) at 2 N, the no-grad pass for old log-probs and values
at 2 N, and every update pass at 6 N per token.
"""

from __future__ import annotations

import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from harness.runner import episode_seed
from harness.types import TrainJob
from plugins.recipes import grpo, ppo
from plugins.recipes.action import token_weights
from plugins.recipes.config import RLArgs, parse_args
from plugins.recipes.rollout import EpisodeLog, Turn, play
from plugins.recipes.trainer import Trainer, log, metrics_line

DEFAULT_LR_FULL = 1e-6  # the paper's setting for a full fine-tune
DEFAULT_LR_LORA = 1e-5
DEFAULT_VALUE_LR = 1e-4


class RLTrainer:
    """Rollout, advantage estimation and PPO updates; ``step_once`` is one RL step (tests drive it)."""

    def __init__(self, job: TrainJob, args: RLArgs) -> None:
        if args.advantage not in ("gae", "grpo"):
            raise ValueError(f"advantage must be gae or grpo, got {args.advantage!r}")
        if args.rollout_engine not in ("hf", "vllm"):
            raise ValueError(f"rollout_engine must be hf or vllm, got {args.rollout_engine!r}")
        self.job, self.args = job, args
        gae = args.advantage == "gae"
        self.tr = Trainer(job, args, lr=args.lr_or(DEFAULT_LR_FULL, DEFAULT_LR_LORA), value_head=gae,
                          value_lr=args.value_lr or DEFAULT_VALUE_LR)
        self.policy = self.tr.policy
        self.field = job.task.action_field if args.action_field == "auto" else (args.action_field or None)
        group = args.group_size if not gae else 1
        if args.n_envs % group:
            raise ValueError(f"n_envs ({args.n_envs}) must be a multiple of group_size ({group}) for grpo")
        self.group = group
        self.envs = [job.task.new_env(job.split, job.verify_iter) for _ in range(args.n_envs)]
        self.vllm = None
        if args.rollout_engine == "vllm":
            from plugins.recipes.vllm_engine import VLLMGenerator

            self.vllm = VLLMGenerator(self.policy.pretrained, gpu_memory_utilization=args.vllm_gpu_memory,
                                      seed=job.seed)
        self.episodes_played = 0
        self.rng = random.Random(job.seed)

    # ------------------------------------------------------------------------------------ rollout
    def _generate(self, convs: Sequence[Any], max_new: int, temperature: float, seed: int
                  ) -> tuple[list[list[int]], list[int]]:
        if self.vllm is not None:
            return self.vllm.generate(convs, max_new, temperature, seed)
        with self.tr.full_params():
            return self.policy.generate(convs, max_new_tokens=max_new, temperature=temperature, seed=seed,
                                        lm=self.tr.unwrapped().lm)

    def rollout(self) -> list[EpisodeLog]:
        """``n_envs`` episodes on this process; GRPO groups replay one start state ``group_size`` times."""
        tr, job, a = self.tr, self.job, self.args
        n_states = a.n_envs // self.group
        base = self.episodes_played
        seeds, groups = [], []
        for k in range(n_states):
            index = (base + k) * tr.world + tr.acc.process_index  # disjoint streams across processes
            s = episode_seed(job.task.name, f"{job.split}/rl", job.seed, index)
            seeds += [s] * self.group
            groups += [index] * self.group
        self.episodes_played += n_states
        sample_seed = job.seed * 1_000_003 + base * tr.world + tr.acc.process_index
        logs = play(self._generate, self.policy.decode, self.envs, seeds, groups, max_new_tokens=a.max_new_tokens,
                    temperature=a.temperature, sample_seed=sample_seed)
        for ep in logs:
            for t in ep.turns:
                tr.count(rollout=t.prompt_tokens + len(t.ids))
                t.weights = token_weights(t.ids, t.text, self.policy.decode, self.field, a.thought_coef)
        return logs

    # --------------------------------------------------------------------------------- estimation
    def _chunks(self, turns: Sequence[Turn], size: int) -> list[list[Turn]]:
        return [list(turns[i:i + size]) for i in range(0, len(turns), size)]

    def _forward(self, turns: Sequence[Turn], want_values: bool) -> tuple[torch.Tensor, torch.Tensor | None, int]:
        enc = self.policy.encode([t.messages for t in turns], [t.ids for t in turns])
        token_logp, values = self.tr.model(enc.inputs, enc.n_completion, self.args.temperature, want_values)
        w = torch.zeros_like(token_logp)
        for i, t in enumerate(turns):
            w[i, :len(t.weights)] = torch.tensor(t.weights, dtype=w.dtype)
        return ppo.weighted_logprob(token_logp, w), values, enc.tokens

    @torch.no_grad()
    def estimate(self, logs: Sequence[EpisodeLog]) -> list[Turn]:
        """Old log-probs (and values) for every turn, then advantages and returns."""
        a = self.args
        turns = [t for ep in logs if ep.error is None for t in ep.turns if t.ids]
        # Without a value head, and when one minibatch holds every turn, no weight changes before the
        # first update pass has seen every sample: that pass's own (detached) log-probs are the old ones,
        # and a separate no-grad pass would only repeat it.
        reuse_first_pass = self.group > 1 and len(turns) <= a.minibatch
        for chunk in [] if reuse_first_pass else self._chunks(turns, a.micro_batch):
            logp, values, tokens = self._forward(chunk, want_values=self.group == 1)
            self.tr.count(forward=tokens)
            for i, t in enumerate(chunk):
                t.old_logp = float(logp[i])
                t.value = float(values[i]) if values is not None else 0.0
        if reuse_first_pass:
            for t in turns:
                t.old_logp = None
        kept = [ep for ep in logs if ep.error is None and ep.turns]
        if self.group == 1:
            for ep in kept:
                adv, ret = ppo.gae([t.reward for t in ep.turns], [t.value for t in ep.turns], a.gamma, a.gae_lambda)
                for t, ad, r in zip(ep.turns, adv, ret, strict=True):
                    t.advantage, t.ret = ad, r
        else:
            returns = [grpo.episode_return([t.reward for t in ep.turns]) for ep in kept]
            for ep, ad in zip(kept, grpo.group_advantages(returns, [ep.group for ep in kept]), strict=True):
                for t in ep.turns:
                    t.advantage = ad
        return [t for t in turns if t.ids]

    # ------------------------------------------------------------------------------------- update
    def update(self, turns: list[Turn]) -> dict[str, float]:
        a, tr = self.args, self.tr
        adv_all = torch.tensor([t.advantage for t in turns], dtype=torch.float32)
        if a.norm_adv and self.group == 1:  # GRPO advantages are already normalised within groups
            adv_all = ppo.normalize(adv_all)
        for t, ad in zip(turns, adv_all.tolist(), strict=True):
            t.advantage = ad
        stats = {"pg_loss": 0.0, "v_loss": 0.0, "clipfrac": 0.0}
        n = 0
        for _ in range(a.epochs):
            order = turns[:]
            self.rng.shuffle(order)
            for mb in self._chunks(order, a.minibatch):
                for chunk in self._chunks(mb, a.micro_batch):
                    logp, values, tokens = self._forward(chunk, want_values=self.group == 1)
                    dev = logp.device
                    for i, t in enumerate(chunk):
                        if t.old_logp is None:  # see estimate(): the first pass defines the old policy
                            t.old_logp = float(logp[i].detach())
                    old = torch.tensor([t.old_logp for t in chunk], device=dev)
                    adv = torch.tensor([t.advantage for t in chunk], device=dev)
                    pg, clipfrac = ppo.policy_loss(logp, old, adv, a.clip)
                    loss = pg
                    if values is not None:
                        vl = ppo.value_loss(values, torch.tensor([t.ret for t in chunk], device=dev))
                        loss = loss + a.value_coef * vl
                        stats["v_loss"] += float(vl.detach())
                    tr.acc.backward(loss * len(chunk) / len(mb))
                    tr.count(trained=tokens)
                    stats["pg_loss"] += float(pg.detach())
                    stats["clipfrac"] += float(clipfrac)
                    n += 1
                tr.optimizer_step()
        return {k: v / max(1, n) for k, v in stats.items()}

    def sync_engine(self) -> None:
        if self.vllm is not None:
            self.vllm.sync(self.policy.plain_weights(self.tr.acc.get_state_dict(self.tr.model)))

    def step_once(self) -> dict[str, float]:
        logs = self.rollout()
        turns = self.estimate(logs)
        stats = self.update(turns) if turns else {}
        self.sync_engine()
        ok = [ep for ep in logs if ep.error is None]
        stats["reward"] = sum(ep.reward for ep in ok) / max(1, len(ok))
        stats["success"] = sum(ep.success for ep in ok) / max(1, len(ok))
        stats["turns"] = sum(len(ep.turns) for ep in ok) / max(1, len(ok))
        return {k: self.tr.mean(v) for k, v in stats.items()}


def run(job: TrainJob) -> Mapping[str, Any]:
    args = parse_args(RLArgs, job.recipe_args, "rl")
    rl = RLTrainer(job, args)
    tr = rl.tr
    t0 = time.perf_counter()
    history: list[dict[str, float]] = []
    while True:
        stats = rl.step_once()
        history.append(stats)
        if tr.main and args.log_every and (tr.step + 1) % args.log_every == 0:
            log.info(metrics_line(tr.step + 1, {**stats, "s": time.perf_counter() - t0}))
        if tr.end_step(advantage=args.advantage, rollout_reward=stats["reward"], rollout_success=stats["success"]):
            break
    if rl.vllm is not None:
        rl.vllm.close()
    return tr.summary(advantage=args.advantage, final=history[-1] if history else {},
                      wall_s=time.perf_counter() - t0)


__all__ = ["DEFAULT_LR_FULL", "DEFAULT_LR_LORA", "RLTrainer", "run"]
