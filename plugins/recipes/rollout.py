"""Rollouts: multi-turn verification-revision episodes played in lock-step across parallel envs.

Each live episode is the runner's own :class:`harness.runner.Episode`, so the conversation a policy
answers during training is built exactly as in evaluation (feedback turns included). Every round, the
next prompt of every live episode goes into one batched sampling call; each answer becomes a
:class:`Turn` holding the sampled token ids (log-probs are later computed on these very ids) and the
verifier's reward. Generation goes through the policy's hf model, or a vLLM engine on a GPU
(:mod:`harness_plugins.recipes.vllm_engine`).

Two shapes of rollout:

- :func:`play`: whole episodes, one per env, to their end. With several processes the rounds are kept in
  step (``sync``): a process whose episodes are all over keeps answering a filler prompt (one token,
  discarded) until every process is done, so sharded models (FSDP, ZeRO-3), whose every forward is a
  collective, see the same number of ``generate`` calls everywhere.
- :class:`Streams`: the paper's rollout. ``n`` env streams carry on across steps (a finished episode is
  replaced by a fresh one at once) and a step collects exactly ``n_turns`` turns, which is the same work
  on every process by construction. An episode cut by the end of a step continues in the next one; its
  last turn of the step is bootstrapped with the value of the prompt it leads to.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from harness.env import TextEnv
from harness.runner import Episode
from harness.types import Completion, Message

log = logging.getLogger(__name__)

# (conversations, max_new_tokens, temperature, seed) -> (completion ids, prompt token counts)
Generate = Callable[[Sequence[Sequence[Message]], int, float, int], tuple[list[list[int]], list[int]]]
Decode = Callable[[Sequence[int]], str]


@dataclass
class Turn:
    messages: tuple[Message, ...]
    ids: list[int]
    text: str
    reward: float
    prompt_tokens: int
    weights: list[float] = field(default_factory=list)  # per-token lambda / 1, filled by the RL recipe
    advantage: float = 0.0
    ret: float = 0.0
    value: float = 0.0
    old_logp: float | None = 0.0  # None: taken from the first update pass (see RLTrainer.estimate)
    pad: bool = False  # a filler that keeps every process's update the same size; never trained on


@dataclass
class EpisodeLog:
    """An episode's turns within one step (with :class:`Streams`, possibly a piece of an episode)."""

    seed: int
    group: int
    turns: list[Turn]
    success: bool = False
    error: str | None = None
    finished: bool = False  # the episode ended within this step (else: it goes on in the next)
    stream: int = -1
    next_value: float = 0.0  # V of the prompt an unfinished piece leads to (filled by the RL recipe)

    @property
    def reward(self) -> float:
        return sum(t.reward for t in self.turns)


def _answer(ep: Episode, log_: EpisodeLog, ids: list[int], n_prompt: int, decode: Decode) -> bool:
    """Feed one sampled answer to an episode and record the turn; True when the episode is over."""
    text = decode(ids)
    msgs = tuple(ep.messages)
    try:
        over = ep.apply(Completion(text, prompt_tokens=n_prompt, completion_tokens=len(ids)))
    except Exception as exc:  # a task bug must not end training
        log_.error = f"step: {type(exc).__name__}: {exc}"
        log.warning("episode %s dropped: %s", ep.seed, log_.error)
        return True
    log_.turns.append(Turn(msgs, list(ids), text, ep.turns[-1]["reward"], n_prompt))
    if over:
        log_.finished = True
        log_.success = bool(ep.summary.get("success", False))
    return over


def play(generate: Generate, decode: Decode, envs: Sequence[TextEnv], seeds: Sequence[int],
         groups: Sequence[int], *, max_new_tokens: int, temperature: float, sample_seed: int,
         sync: Callable[[bool], bool] | None = None) -> list[EpisodeLog]:
    """Play one episode per (env, seed) to the end. ``groups`` tags episodes that share a start state
    (GRPO). An env that raises ends its episode with ``error`` set (its turns are dropped from training).
    ``sync(this_process_has_live_episodes)`` returns whether any process has; while it does, an idle
    process answers a filler prompt so that every process makes the same ``generate`` calls."""
    logs = [EpisodeLog(s, g, []) for s, g in zip(seeds, groups, strict=True)]
    live: list[tuple[int, Episode]] = []
    filler: tuple[Message, ...] | None = None
    for i, (env, s) in enumerate(zip(envs, seeds, strict=True)):
        try:
            ep = Episode(i, s, env)
        except Exception as exc:
            logs[i].error = f"reset: {type(exc).__name__}: {exc}"
            continue
        live.append((i, ep))
        filler = filler or tuple(ep.messages)
    rnd = 0
    while sync(bool(live)) if sync is not None else live:
        seed = sample_seed * 1009 + rnd
        rnd += 1
        if not live:  # idle: keep the other processes' collectives matched
            if filler is None:
                raise RuntimeError("no episode could be started on this process (every env reset failed)")
            generate([filler], 1, temperature, seed)
            continue
        ids, prompt_tokens = generate([tuple(ep.messages) for _, ep in live], max_new_tokens, temperature, seed)
        live = [(i, ep) for (i, ep), c, n in zip(live, ids, prompt_tokens, strict=True)
                if not _answer(ep, logs[i], c, n, decode)]
    return logs


class Streams:
    """``len(envs)`` env streams that carry on across steps (see the module docstring)."""

    def __init__(self, envs: Sequence[TextEnv], seed_for: Callable[[int], int], max_reset_tries: int = 3) -> None:
        self.envs = list(envs)
        self.seed_for = seed_for
        self.max_reset_tries = max_reset_tries
        self.started = 0  # episodes started on this process (the index of the next seed)
        self.live: list[Episode] = [self._start(i) for i in range(len(self.envs))]
        self.logs: list[EpisodeLog] = [EpisodeLog(ep.seed, ep.seed, [], stream=i) for i, ep in enumerate(self.live)]

    def _start(self, i: int) -> Episode:
        last: Exception | None = None
        for _ in range(self.max_reset_tries):
            seed = self.seed_for(self.started)
            self.started += 1
            try:
                return Episode(i, seed, self.envs[i])
            except Exception as exc:  # a task bug on one seed: try the next
                last = exc
                log.warning("env reset failed for seed %s: %s: %s", seed, type(exc).__name__, exc)
        raise RuntimeError(f"env reset failed {self.max_reset_tries} times in a row; last: "
                           f"{type(last).__name__}: {last}") from last

    def prompts(self) -> list[tuple[Message, ...]]:
        """Every stream's current conversation (what its next turn would answer)."""
        return [tuple(ep.messages) for ep in self.live]

    def collect(self, generate: Generate, decode: Decode, n_turns: int, *, max_new_tokens: int, temperature: float,
                sample_seed: int) -> list[EpisodeLog]:
        """Exactly ``n_turns`` turns (fewer only when an env raises): rounds over all streams, the last
        round over the first streams only. Returns the step's episode pieces, finished or not."""
        out: list[EpisodeLog] = []
        done, rnd, n = 0, 0, len(self.live)
        while done < n_turns:
            k = min(n, n_turns - done)
            ids, prompt_tokens = generate(self.prompts()[:k], max_new_tokens, temperature, sample_seed * 1009 + rnd)
            rnd += 1
            done += k
            for i in range(k):
                if _answer(self.live[i], self.logs[i], ids[i], prompt_tokens[i], decode):
                    out.append(self.logs[i])
                    self.live[i] = self._start(i)
                    self.logs[i] = EpisodeLog(self.live[i].seed, self.live[i].seed, [], stream=i)
        out += [lg for lg in self.logs if lg.turns]  # pieces that go on in the next step
        self.logs = [EpisodeLog(lg.seed, lg.group, [], stream=lg.stream) for lg in self.logs]
        return out


__all__ = ["EpisodeLog", "Generate", "Streams", "Turn", "play"]
