"""The ``rl`` recipe: PPO as in the paper (or GRPO advantages) on multi-turn verification-revision episodes.

One step = one rollout per process + ``epochs`` passes of minibatch updates. The rollout is either
``n_envs`` whole episodes (default) or, with ``turns_per_update`` > 0, exactly that many turns from env
streams that carry on across steps (the paper's rollout; ``preset=paper`` sets it). A turn (one model
answer) is a PPO sample: its state is the conversation so far, its action the sampled answer, its
log-prob ``lambda * sum log p(thought) + sum log p(action)`` (see :mod:`harness_plugins.recipes.action`), its
reward the verifier's. Advantages: GAE over the turns of each episode (gamma 0.9, lambda 0.95) with a
value head on the prompt's last hidden state, or GRPO's group-normalised episode returns. No KL term.

Several processes: every process pads its turns to the same count (the largest process's, rounded up to
whole minibatches) with filler turns that carry no loss, so forwards, backwards and gradient syncs line
up whatever the episodes' lengths; a minibatch's loss is normalised by its real turns over all processes.

FLOPs: rollout tokens (prompt prefill + generated), the no-grad pass for old log-probs and values, and
every update pass (forward + backward), booked by :class:`harness.compute.FlopsModel`.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch

from harness.runner import episode_seed
from harness.types import TrainJob
from harness_plugins.recipes import grpo, ppo
from harness_plugins.recipes.action import SPANS, token_weights
from harness_plugins.recipes.config import RLArgs, parse_args
from harness_plugins.recipes.presets import RL_PRESETS, with_preset
from harness_plugins.recipes.rollout import EpisodeLog, Streams, Turn, play
from harness_plugins.recipes.trainer import Trainer, log, metrics_line

DEFAULT_LR_FULL = 1e-6  # the paper's setting for a full fine-tune
DEFAULT_LR_LORA = 1e-5
DEFAULT_VALUE_LR = 1e-4
STAT_KEYS = ("pg_loss", "v_loss", "clipfrac", "approx_kl", "samples", "reward", "success", "episodes", "turns")


def _widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in str(text).replace(",", ":").split(":") if w.strip()]
    except ValueError:
        raise ValueError(f"value_widths must be ':'-separated integers, got {text!r}") from None
    if not widths or min(widths) < 1:
        raise ValueError(f"value_widths must be ':'-separated positive integers, got {text!r}")
    return widths


def _validate(job: TrainJob, a: RLArgs) -> None:
    if a.advantage not in ("gae", "grpo"):
        raise ValueError(f"advantage must be gae or grpo, got {a.advantage!r}")
    if a.rollout_engine not in ("hf", "vllm"):
        raise ValueError(f"rollout_engine must be hf or vllm, got {a.rollout_engine!r}")
    if a.action_span not in SPANS:
        raise ValueError(f"action_span must be one of {', '.join(SPANS)}, got {a.action_span!r}")
    if a.advantage == "grpo" and a.turns_per_update:
        raise ValueError("advantage=grpo compares whole episodes: it needs turns_per_update=0")
    for name in ("n_envs", "minibatch", "micro_batch", "epochs"):
        if getattr(a, name) < 1:
            raise ValueError(f"{name} must be >= 1, got {getattr(a, name)}")
    if job.steps is None and job.budget_flops is None and not a.updates:
        raise ValueError("give --steps N or --budget FLOPS (or updates=N, which preset=paper sets)")


class RLTrainer:
    """Rollout, advantage estimation and PPO updates; ``step_once`` is one RL step (tests drive it)."""

    def __init__(self, job: TrainJob, args: RLArgs) -> None:
        _validate(job, args)
        self.job, self.args = job, args
        gae = args.advantage == "gae"
        steps = job.steps if (job.steps is not None or job.budget_flops is not None) else args.updates
        self.tr = Trainer(job, args, lr=args.lr_or(DEFAULT_LR_FULL, DEFAULT_LR_LORA), value_head=gae,
                          value_lr=args.value_lr or DEFAULT_VALUE_LR, steps=steps,
                          micro_batches=math.ceil(args.minibatch / args.micro_batch), value_widths=_widths(
                              args.value_widths), disable_dropout=True)
        self.policy = self.tr.policy
        self.field = job.task.action_field if args.action_field == "auto" else (args.action_field or None)
        group = args.group_size if not gae else 1
        if args.n_envs % group:
            raise ValueError(f"n_envs ({args.n_envs}) must be a multiple of group_size ({group}) for grpo")
        self.group = group
        self.envs = [job.task.new_env(job.split, job.verify_iter) for _ in range(args.n_envs)]
        self.streams = Streams(self.envs, self._seed) if args.turns_per_update else None
        self.vllm = None
        if args.rollout_engine == "vllm":
            from harness_plugins.recipes.vllm_engine import VLLMGenerator

            self.vllm = VLLMGenerator(self.tr, gpu_memory_utilization=args.vllm_gpu_memory, seed=job.seed,
                                      sleep_level=args.vllm_sleep)
        self.episodes_played = 0
        self.rng = random.Random(job.seed)

    def _seed(self, k: int) -> int:
        """The k-th episode seed of this process: streams disjoint across processes and from evaluation."""
        tr = self.tr
        return episode_seed(self.job.task.name, f"{self.job.split}/rl", self.job.seed,
                            k * tr.world + tr.acc.process_index)

    # ------------------------------------------------------------------------------------ rollout
    def _generate(self, convs: Sequence[Any], max_new: int, temperature: float, seed: int
                  ) -> tuple[list[list[int]], list[int]]:
        if self.vllm is not None:
            ids, counts = self.vllm.generate(convs, max_new, temperature, seed)
        else:
            with self.tr.full_params(), self.tr.autocast():
                ids, counts = self.policy.generate(convs, max_new_tokens=max_new, temperature=temperature,
                                                   seed=seed, lm=self.tr.unwrapped().lm,
                                                   synced_gpus=self.tr.sharded and self.tr.world > 1)
        fm = self.policy.flops
        for conv, c, n in zip(convs, ids, counts, strict=True):
            self.tr.count(rollout=n + len(c), rollout_flops=fm.generate(n, len(c), self.policy.images_of(conv)))
        return ids, counts

    def rollout(self) -> list[EpisodeLog]:
        """This process's episodes (or episode pieces) of one step."""
        tr, job, a = self.tr, self.job, self.args
        sample_seed = job.seed * 1_000_003 + tr.step * tr.world + tr.acc.process_index
        if self.streams is not None:
            logs = self.streams.collect(self._generate, self.policy.decode, a.turns_per_update,
                                        max_new_tokens=a.max_new_tokens, temperature=a.temperature,
                                        sample_seed=sample_seed)
        else:
            n_states = a.n_envs // self.group
            base = self.episodes_played
            seeds, groups = [], []
            for k in range(n_states):
                seeds += [self._seed(base + k)] * self.group
                groups += [base + k] * self.group
            self.episodes_played += n_states
            sync = (lambda live: tr.sum([float(live)])[0] > 0) if tr.world > 1 else None
            logs = play(self._generate, self.policy.decode, self.envs, seeds, groups,
                        max_new_tokens=a.max_new_tokens, temperature=a.temperature, sample_seed=sample_seed,
                        sync=sync)
        for ep in logs:
            for t in ep.turns:
                t.weights = token_weights(t.ids, t.text, self.policy.decode, self.field, a.thought_coef,
                                          a.action_span)
        return logs

    # --------------------------------------------------------------------------------- estimation
    @staticmethod
    def _chunks(items: Sequence[Any], size: int) -> list[list[Any]]:
        return [list(items[i:i + size]) for i in range(0, len(items), size)]

    def _forward(self, turns: Sequence[Turn], want_values: bool, train: bool = False, book_pads: bool = False
                 ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Weighted log-probs (and values) of ``turns``; books the pass's tokens and FLOPs (filler turns'
        only with ``book_pads``: they exist to keep processes in step, not to learn from)."""
        enc = self.policy.encode([t.messages for t in turns], [t.ids for t in turns])
        with self.tr.autocast():
            token_logp, values = self.tr.model(enc.inputs, enc.n_completion, self.args.temperature, want_values)
        fm, values_on = self.policy.flops, want_values and values is not None
        passes = [p for p, t in zip(enc.passes, turns, strict=True) if book_pads or not t.pad]
        tokens = sum(p.tokens for p in passes)
        if train:
            self.tr.count(trained=tokens, trained_flops=fm.train(passes, frozen_base=self.args.lora, values=values_on))
        else:
            self.tr.count(forward=tokens, forward_flops=fm.forward(passes, values=values_on))
        w = torch.zeros_like(token_logp)
        for i, t in enumerate(turns):
            if not t.pad:
                w[i, :len(t.weights)] = torch.tensor(t.weights, dtype=w.dtype)
        return ppo.weighted_logprob(token_logp, w), values

    def _padded(self, turns: list[Turn]) -> list[Turn]:
        """``turns`` plus filler turns up to the largest process's count, rounded up to whole minibatches
        (the same list length on every process)."""
        n = self.tr.max(len(turns))
        target = math.ceil(n / self.args.minibatch) * self.args.minibatch
        if len(turns) == target:
            return turns
        conv = turns[0].messages if turns else (self.streams.prompts()[0] if self.streams else self._filler())
        fill = Turn(conv, [self.policy.eos_id], "", 0.0, 0, weights=[0.0], pad=True)
        return turns + [fill] * (target - len(turns))

    def _filler(self) -> Any:
        from harness.runner import Episode

        return tuple(Episode(0, self._seed(0), self.job.task.new_env(self.job.split, self.job.verify_iter)).messages)

    @torch.no_grad()
    def estimate(self, logs: Sequence[EpisodeLog]) -> list[Turn]:
        """Old log-probs (and values) for every turn, then advantages and returns. Returns the padded
        list of turns to train on."""
        a = self.args
        kept = [ep for ep in logs if ep.error is None and ep.turns]
        turns = self._padded([t for ep in kept for t in ep.turns])
        # Without a value head, and when one minibatch holds every turn, no weight changes before the
        # first update pass has seen every sample: that pass's own (detached) log-probs are the old ones,
        # and a separate no-grad pass would only repeat it.
        reuse_first_pass = self.group > 1 and len(turns) <= a.minibatch
        with self.policy.eval_mode():
            for chunk in [] if reuse_first_pass else self._chunks(turns, a.micro_batch):
                logp, values = self._forward(chunk, want_values=self.group == 1)
                for i, t in enumerate(chunk):
                    t.old_logp = float(logp[i])
                    t.value = float(values[i]) if values is not None else 0.0
            if self.group == 1 and self.streams is not None:
                self._bootstrap(kept)
        if reuse_first_pass:
            for t in turns:
                t.old_logp = None
        if self.group == 1:
            for ep in kept:
                adv, ret = ppo.gae([t.reward for t in ep.turns], [t.value for t in ep.turns], a.gamma,
                                   a.gae_lambda, last_value=0.0 if ep.finished else ep.next_value)
                for t, ad, r in zip(ep.turns, adv, ret, strict=True):
                    t.advantage, t.ret = ad, r
        else:
            returns = [grpo.episode_return([t.reward for t in ep.turns]) for ep in kept]
            for ep, ad in zip(kept, grpo.group_advantages(returns, [ep.group for ep in kept]), strict=True):
                for t in ep.turns:
                    t.advantage = ad
        return turns

    def _bootstrap(self, kept: Sequence[EpisodeLog]) -> None:
        """V of every stream's next prompt (all streams, so every process does the same passes); an
        unfinished piece's GAE starts from it."""
        assert self.streams is not None
        prompts = self.streams.prompts()
        probes = [Turn(c, [self.policy.eos_id], "", 0.0, 0, weights=[0.0], pad=True) for c in prompts]
        values: list[float] = []
        for chunk in self._chunks(probes, self.args.micro_batch):
            _, v = self._forward(chunk, want_values=True, book_pads=True)
            values += [float(x) for x in v] if v is not None else [0.0] * len(chunk)
        for ep in kept:
            if not ep.finished:
                ep.next_value = values[ep.stream]

    # ------------------------------------------------------------------------------------- update
    def update(self, turns: list[Turn]) -> dict[str, float]:
        """``epochs`` passes over the turns in minibatches; returns sums over this process's real turns."""
        a, tr = self.args, self.tr
        real = [t for t in turns if not t.pad]
        if a.norm_adv and self.group == 1 and real:  # GRPO advantages are already normalised within groups
            for t, ad in zip(real, ppo.normalize(torch.tensor([t.advantage for t in real])).tolist(), strict=True):
                t.advantage = ad
        pads = [t for t in turns if t.pad]
        stats = {"pg_loss": 0.0, "v_loss": 0.0, "clipfrac": 0.0, "approx_kl": 0.0, "samples": 0.0}
        for _ in range(a.epochs):
            order = real[:]
            self.rng.shuffle(order)
            order += pads  # fillers last: every minibatch but the last ones is all real turns
            for mb in self._chunks(order, a.minibatch):
                n_real = tr.sum([sum(not t.pad for t in mb)])[0]
                micro = self._chunks(mb, a.micro_batch)
                tr.micro_steps(len(micro), lambda i, micro=micro, n_real=n_real: self._loss(micro[i], n_real,
                                                                                               stats))
        tr.end_update()
        return stats

    def _loss(self, chunk: list[Turn], n_real: float, stats: dict[str, float]) -> torch.Tensor:
        a, tr = self.args, self.tr
        logp, values = self._forward(chunk, want_values=self.group == 1, train=True)
        dev = logp.device
        for i, t in enumerate(chunk):
            if t.old_logp is None:  # see estimate(): the first pass defines the old policy
                t.old_logp = float(logp[i].detach())
        real = torch.tensor([0.0 if t.pad else 1.0 for t in chunk], device=dev)
        old = torch.tensor([t.old_logp for t in chunk], device=dev)
        adv = torch.tensor([t.advantage for t in chunk], device=dev)
        pg, clipped = ppo.policy_losses(logp, old, adv, a.clip, a.ratio_guard)
        per_sample = pg
        if values is not None:
            vl = ppo.value_losses(values, torch.tensor([t.ret for t in chunk], device=dev),
                                  torch.tensor([t.value for t in chunk], device=dev), a.value_clip)
            per_sample = per_sample + a.value_coef * vl
            stats["v_loss"] += float((vl.detach() * real).sum())
        stats["pg_loss"] += float((pg.detach() * real).sum())
        stats["clipfrac"] += float((clipped * real).sum())
        log_ratio = (logp - old).detach()  # KL(old || new) estimated per sample as (r - 1) - log r (Schulman's k3)
        stats["approx_kl"] += float(((torch.exp(log_ratio) - 1 - log_ratio) * real).sum())
        stats["samples"] += float(real.sum())
        # sum over this chunk's real turns / real turns of the minibatch over all processes, times the
        # process count (gradient syncs average over processes): the minibatch's mean loss
        return (per_sample * real).sum() * tr.world / max(1.0, n_real)

    def sync_engine(self) -> None:
        if self.vllm is not None:
            self.vllm.sync(self.policy)

    def step_once(self) -> dict[str, float]:
        if self.vllm is not None:
            self.vllm.wake()
        logs = self.rollout()
        if self.vllm is not None:
            self.vllm.sleep()
        turns = self.estimate(logs)
        stats = self.update(turns) if turns else dict.fromkeys(("pg_loss", "v_loss", "clipfrac", "approx_kl",
                                                                 "samples"), 0.0)
        self.sync_engine()
        ok = [ep for ep in logs if ep.error is None]
        ended = [ep for ep in ok if ep.finished]
        stats.update(reward=sum(ep.reward for ep in ended), success=float(sum(ep.success for ep in ended)),
                     episodes=float(len(ended)), turns=float(sum(len(ep.turns) for ep in ok)))
        s = dict(zip(STAT_KEYS, self.tr.sum([stats[k] for k in STAT_KEYS]), strict=True))  # one collective
        samples, episodes = max(1.0, s["samples"]), max(1.0, s["episodes"])
        return {"pg_loss": s["pg_loss"] / samples, "v_loss": s["v_loss"] / samples,
                "clipfrac": s["clipfrac"] / samples, "approx_kl": s["approx_kl"] / samples,
                "reward": s["reward"] / episodes, "success": s["success"] / episodes, "turns": s["turns"] / episodes,
                "episodes": s["episodes"], "lr": self.tr.lr_used}


def run(job: TrainJob) -> Mapping[str, Any]:
    args = parse_args(RLArgs, with_preset(job.recipe_args, job.task.name, RL_PRESETS), "rl")
    rl = RLTrainer(job, args)
    tr = rl.tr
    t0 = time.perf_counter()
    history: list[dict[str, float]] = []
    while True:
        stats = rl.step_once()
        history.append(stats)
        if tr.main and args.log_every and (tr.step + 1) % args.log_every == 0:
            log.info(metrics_line(tr.step + 1, {**stats, "s": time.perf_counter() - t0}))
        if tr.end_step(stats, advantage=args.advantage, rollout_reward=stats["reward"],
                       rollout_success=stats["success"]):
            break
    if rl.vllm is not None:
        rl.vllm.close()
    tr.finish()
    return tr.summary(advantage=args.advantage, preset=args.preset or None, final=history[-1] if history else {},
                      wall_s=time.perf_counter() - t0)


__all__ = ["DEFAULT_LR_FULL", "DEFAULT_LR_LORA", "RLTrainer", "run"]
