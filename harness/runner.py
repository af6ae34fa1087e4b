"""The episode loop.

Episodes are numbered 0..N-1 and seeded from (task, split, seed, index), so one command always plays the
same episodes, on any machine, in any batch size. Local backends are driven in lock-step: every live
episode's next request goes into one batched ``generate`` call. Backends with ``agenerate`` (remote
APIs) get a sliding window of concurrent episodes instead, so one slow request holds up only its own
episode. A finished episode is appended to samples.jsonl at once; ``resume`` skips finished episodes and
retries failed ones.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import orjson

from harness import store
from harness.env import TextEnv
from harness.metrics import aggregate
from harness.types import (
    Backend,
    Completion,
    GenParams,
    Message,
    MetricValue,
    Observation,
    Request,
    RunResult,
    SplitSpec,
    TaskSpec,
)

MAX_RECORDED_ANSWER = 100_000  # characters of a model answer kept in samples.jsonl
TRAINING_INFO_FILE = "harness-training.json"  # written by recipes beside a checkpoint


def episode_seed(task: str, split: str, seed: int, index: int) -> int:
    """A 63-bit seed that depends only on its inputs (not on Python's hash randomisation)."""
    digest = hashlib.sha256(f"{task}\x1f{split}\x1f{seed}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class RunExistsError(Exception):
    pass


@dataclass(frozen=True)
class EvalConfig:
    task: str
    split: str
    model: str
    backend: str
    model_args: Mapping[str, Any] = field(default_factory=dict)
    gen: GenParams = field(default_factory=GenParams)
    episodes: int = 100
    seed: int = 0
    verify_iter: int | None = None
    task_args: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    max_connections: int = 16
    task_version: str = ""  # TaskSpec.version

    def identity(self) -> dict[str, Any]:
        """What determines the results. Episode count is excluded so a run can be extended with resume."""
        ident = {"task": self.task, "split": self.split, "model": self.model, "backend": self.backend,
                 "model_args": store.redact(self.model_args), "gen": self.gen.as_dict(), "seed": self.seed,
                 "verify_iter": self.verify_iter, "task_args": dict(self.task_args)}
        if self.task_version:  # absent when empty, so tasks without a version keep their run ids
            ident["task_version"] = self.task_version
        return ident


class _Episode:
    """One live episode: its env, the conversation so far, and what it has scored."""

    __slots__ = ("completion_tokens", "env", "index", "messages", "obs", "prompt_tokens", "reward", "seed",
                 "summary", "turns")

    def __init__(self, index: int, seed: int, env: TextEnv) -> None:
        self.index = index
        self.seed = seed
        self.env = env
        obs, _ = env.reset(seed=seed, options={"episode_index": index})
        self.obs: Observation = obs
        self.messages: list[Message] = []
        self.turns: list[dict[str, Any]] = []
        self.reward = 0.0
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.summary: dict[str, Any] = {}
        self._absorb(obs)

    def _absorb(self, obs: Observation) -> None:
        if obs.new_context:
            self.messages = [Message.make("system", obs.system)] if obs.system else []
        self.messages.append(Message.make("user", obs.text, obs.images))

    def request(self) -> Request:
        env = self.env
        return Request(tuple(self.messages), self.seed, len(self.turns), env.expert_action, env.random_action)

    def apply(self, completion: Completion) -> bool:
        """Feed the model's answer to the env; True when the episode is over."""
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens
        answer = completion.text
        obs, reward, terminated, truncated, info = self.env.step(answer)
        self.reward += float(reward)
        turn = {"answer": answer if len(answer) <= MAX_RECORDED_ANSWER else answer[:MAX_RECORDED_ANSWER],
                "reward": float(reward), "feedback": info.get("feedback", "")}
        if len(answer) > MAX_RECORDED_ANSWER:
            turn["answer_truncated_from"] = len(answer)
        if "turn" in info:
            turn.update(info["turn"])
        self.turns.append(turn)
        if terminated or truncated:
            self.summary = dict(info.get("episode") or {})
            return True
        self.messages.append(Message.make("assistant", answer))
        self._absorb(obs)
        return False

    def record(self, error: str | None = None) -> dict[str, Any]:
        return {
            "schema_version": store.SCHEMA_VERSION,
            "index": self.index,
            "episode_seed": self.seed,
            "status": "error" if error else "ok",
            "error": error,
            "success": bool(self.summary.get("success", False)) if not error else False,
            "reward": self.reward,
            "turns": self.turns,
            "metrics": self.summary.get("metrics", {}),
            "details": self.summary.get("details", {}),
            "tokens": {"prompt": self.prompt_tokens, "completion": self.completion_tokens},
        }


def _env_error(exc: BaseException) -> str:
    tb = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" at {tb[0].filename}:{tb[0].lineno}" if tb else ""
    return f"env raised {type(exc).__name__}: {exc}{where}"


ProgressFn = Callable[[int, int, Mapping[str, Any] | None], None]


class Runner:
    """Plays ``cfg.episodes`` episodes of one task split against one backend and records them."""

    def __init__(self, task: TaskSpec, backend: Backend, cfg: EvalConfig, run_dir: Path,
                 progress: ProgressFn | None = None) -> None:
        if task.version and cfg.task_version != task.version:
            cfg = replace(cfg, task_version=task.version)
        self.task = task
        self.split: SplitSpec = task.split(cfg.split)
        self.backend = backend
        self.cfg = cfg
        self.run_dir = run_dir
        self.progress = progress
        self.verify_iter = cfg.verify_iter or task.default_verify_iter
        self.done = 0
        self.writer: store.SampleWriter | None = None

    def make_env(self) -> TextEnv:
        return self.task.new_env(self.split.name, self.verify_iter, **dict(self.cfg.task_args))

    def _finish(self, ep: _Episode, error: str | None = None) -> None:
        rec = ep.record(error)
        assert self.writer is not None
        self.writer.write(rec)
        self.done += 1
        if self.progress:
            self.progress(self.done, self.cfg.episodes, rec)

    # ---------------------------------------------------------------- lock-step (local engines)
    def play_lockstep(self, indices: Sequence[int]) -> None:
        cfg = self.cfg
        pending = list(reversed(indices))
        envs = [self.make_env() for _ in range(min(cfg.batch_size, len(indices)))]
        live: list[_Episode] = []
        free = envs[:]
        seed_of = self._seed
        while pending or live:
            while free and pending:
                i = pending.pop()
                env = free.pop()
                try:
                    live.append(_Episode(i, seed_of(i), env))
                except Exception as exc:
                    err = _Episode.__new__(_Episode)
                    _blank(err, i, seed_of(i), env)
                    self._finish(err, _env_error(exc))
                    free.append(env)
            if not live:
                continue
            completions = self.backend.generate([ep.request() for ep in live], cfg.gen)
            if len(completions) != len(live):
                raise RuntimeError(f"backend returned {len(completions)} completions for {len(live)} requests")
            still: list[_Episode] = []
            for ep, comp in zip(live, completions, strict=True):
                if comp.error is not None:
                    self._finish(ep, f"backend: {comp.error}")
                    free.append(ep.env)
                    continue
                try:
                    over = ep.apply(comp)
                except Exception as exc:  # a task bug must not take the run down with it
                    self._finish(ep, _env_error(exc))
                    free.append(ep.env)
                    continue
                if over:
                    self._finish(ep)
                    free.append(ep.env)
                else:
                    still.append(ep)
            live = still

    # ------------------------------------------------------------- sliding window (remote APIs)
    async def _play_async(self, indices: Sequence[int]) -> None:
        agenerate = self.backend.agenerate  # type: ignore[attr-defined]
        window = max(1, self.cfg.max_connections)
        envs: asyncio.Queue[TextEnv] = asyncio.Queue()
        for _ in range(min(window, len(indices))):
            envs.put_nowait(self.make_env())

        async def one(i: int) -> None:
            env = await envs.get()
            try:
                try:
                    ep = _Episode(i, self._seed(i), env)
                except Exception as exc:
                    ep = _Episode.__new__(_Episode)
                    _blank(ep, i, self._seed(i), env)
                    self._finish(ep, _env_error(exc))
                    return
                while True:
                    comp = await agenerate(ep.request(), self.cfg.gen)
                    if comp.error is not None:
                        self._finish(ep, f"backend: {comp.error}")
                        return
                    try:
                        over = ep.apply(comp)
                    except Exception as exc:
                        self._finish(ep, _env_error(exc))
                        return
                    if over:
                        self._finish(ep)
                        return
            finally:
                envs.put_nowait(env)

        await asyncio.gather(*(one(i) for i in indices))

    def _seed(self, index: int) -> int:
        return episode_seed(self.task.name, self.split.name, self.cfg.seed, index)

    # --------------------------------------------------------------------------------- a run
    def run(self, *, resume: bool = False, overwrite: bool = False) -> RunResult:
        cfg = self.cfg
        run_dir = self.run_dir
        samples_path = run_dir / "samples.jsonl"
        record_path = run_dir / "run.json"
        previous: dict[str, Any] = {}
        if record_path.exists() or samples_path.exists():
            if overwrite:
                samples_path.unlink(missing_ok=True)
                record_path.unlink(missing_ok=True)
            elif not resume:
                raise RunExistsError(f"a run with this configuration already exists at {run_dir}; "
                                     "pass --resume to continue it or --overwrite to start again")
            elif record_path.exists():
                previous = orjson.loads(record_path.read_bytes())
                if previous.get("identity") != cfg.identity():
                    raise RunExistsError(f"{run_dir} holds a run with another configuration; "
                                         "use another --output or --overwrite")
        run_dir.mkdir(parents=True, exist_ok=True)
        records, torn = store.read_samples(samples_path)
        kept = [r for i, r in sorted(records.items()) if r.get("status") == "ok"]
        done_idx = {r["index"] for r in kept}
        self.writer = store.SampleWriter(samples_path, keep=kept if (records or torn) else None)
        todo = [i for i in range(cfg.episodes) if i not in done_idx]
        self.done = cfg.episodes - len(todo)
        record = self._record(previous, status="running")
        store.write_json_atomic(record_path, record)
        if self.progress:
            self.progress(self.done, cfg.episodes, None)
        t0 = time.perf_counter()
        try:
            if todo:
                if hasattr(self.backend, "agenerate"):
                    asyncio.run(self._play_async(todo))
                else:
                    self.play_lockstep(todo)
        finally:
            self.writer.close()
        wall = time.perf_counter() - t0 + float(previous.get("wall_time_s", 0.0))
        return self.finalize(record, wall)

    def finalize(self, record: dict[str, Any], wall: float) -> RunResult:
        records, _ = store.read_samples(self.run_dir / "samples.jsonl")
        in_range = [r for i, r in sorted(records.items()) if i < self.cfg.episodes]
        ok = [r for r in in_range if r.get("status") == "ok"]
        errors = [r for r in in_range if r.get("status") != "ok"]
        metrics = aggregate(ok, self.task.metrics)
        record.update({
            "status": "complete" if not errors and len(ok) == self.cfg.episodes else "incomplete",
            "finished": time.time(),
            "wall_time_s": wall,
            "episodes_ok": len(ok),
            "episodes_failed": len(errors),
            "failure_reasons": _count_reasons(errors),
            "metrics": {k: v.as_dict() for k, v in metrics.items()},
            "tokens": {"prompt": sum(r["tokens"]["prompt"] for r in ok),
                       "completion": sum(r["tokens"]["completion"] for r in ok)},
        })
        store.write_json_atomic(self.run_dir / "run.json", record)
        return RunResult(run_dir=str(self.run_dir), record=record, metrics=metrics)

    def _record(self, previous: Mapping[str, Any], status: str) -> dict[str, Any]:
        cfg = self.cfg
        training = None
        ckpt = cfg.model_args.get("pretrained")
        if ckpt and (Path(str(ckpt)) / TRAINING_INFO_FILE).is_file():
            training = orjson.loads((Path(str(ckpt)) / TRAINING_INFO_FILE).read_bytes())
        return {
            "schema_version": store.SCHEMA_VERSION,
            "run_id": self.run_dir.name,
            "identity": cfg.identity(),
            "task": cfg.task,
            "task_version": cfg.task_version,
            "split": self.split.name,
            "distribution": self.split.distribution,
            "model": {"name": cfg.model, "backend": cfg.backend, "args": store.redact(cfg.model_args)},
            "gen": cfg.gen.as_dict(),
            "seed": cfg.seed,
            "episodes": cfg.episodes,
            "verify_iter": self.verify_iter,
            "task_args": dict(cfg.task_args),
            "batch_size": cfg.batch_size,
            "created": previous.get("created", time.time()),
            "versions": store.versions([]),
            "git_commit": store.git_commit(),
            "training": training,
            "status": status,
        }


def _blank(ep: _Episode, index: int, seed: int, env: TextEnv) -> None:
    """An episode that failed before its first observation (reset raised)."""
    ep.index, ep.seed, ep.env = index, seed, env
    ep.messages, ep.turns, ep.summary = [], [], {}
    ep.reward, ep.prompt_tokens, ep.completion_tokens = 0.0, 0, 0


def _count_reasons(errors: Sequence[Mapping[str, Any]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in errors:
        key = str(r.get("error") or "unknown")[:200]
        out[key] = out.get(key, 0) + 1
    return out


def run_dir_for(output: Path, cfg: EvalConfig) -> Path:
    return output / f"{cfg.task}_{cfg.split}_{store.slug(cfg.model)}_{store.config_hash(cfg.identity())}"


def format_metric(m: MetricValue, pct: bool) -> str:
    if pct:
        return f"{100 * m.value:.1f}% [{100 * m.ci_low:.1f}, {100 * m.ci_high:.1f}]"
    return f"{m.value:.3f} [{m.ci_low:.3f}, {m.ci_high:.3f}]"


__all__ = ["EvalConfig", "RunExistsError", "Runner", "episode_seed", "format_metric", "run_dir_for"]

