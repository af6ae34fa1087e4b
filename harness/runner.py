"""The episode loop.

Episodes are numbered 0..N-1 and seeded from (task, split, seed, index), so one command always plays the
same episodes, on any machine, in any batch size. Local backends are driven in lock-step: every live
episode's next request goes into one batched ``generate`` call. Backends with ``agenerate`` (remote
APIs) get a sliding window of concurrent episodes instead, so one slow request holds up only its own
episode. A finished episode is appended to samples.jsonl at once; ``resume`` skips finished episodes and
retries failed ones.

Every turn records what the model was shown (``shown``, :mod:`harness.transcript`) next to its answer,
reward and verdict. Under torchrun / accelerate launch each process plays its share of the episodes and
the main process records the one run (:mod:`harness.distributed`).

A run directory has one writer at a time (:mod:`harness.runlock`). Its record's ``status`` says what
happened: ``running`` (a process holds the directory; shown as ``interrupted`` once that process is gone),
``interrupted`` (Ctrl-C or SIGTERM), ``failed`` (episodes failed, or an error stopped the run; ``error``
and ``advice`` say what and what to do) or ``complete``. Everything the run is configured with is checked
before its directory is created (:meth:`EvalConfig.__post_init__`, and one env built from the task
arguments), so a mistyped argument never leaves a run behind.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import os
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from harness import distributed, store
from harness.checks import ConfigError, check_args, check_int, check_value
from harness.env import TextEnv
from harness.metrics import MetricsAccumulator
from harness.runlock import RunLock
from harness.transcript import ImageStore, Recorder
from harness.types import (
    Backend,
    Completion,
    GenParams,
    Message,
    MetricSpec,
    MetricValue,
    Observation,
    Request,
    RunResult,
    SplitSpec,
    TaskSpec,
)

MAX_RECORDED_ANSWER = 100_000  # characters of a model answer kept in samples.jsonl and in the history
MAX_EPISODES = store.MAX_EPISODE_INDEX
TRAINING_INFO_FILE = "harness-training.json"  # written by recipes beside a checkpoint
SAMPLES_FILE = "samples.jsonl"
REJECTED_FILE = "samples.rejected.jsonl"  # lines of samples.jsonl that were not valid records, kept aside
RECORD_FILE = "run.json"


def episode_seed(task: str, split: str, seed: int, index: int) -> int:
    """A 63-bit seed that depends only on its inputs (not on Python's hash randomisation)."""
    digest = hashlib.sha256(f"{task}\x1f{split}\x1f{seed}\x1f{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


class RunExistsError(Exception):
    """The run directory holds a run this command may not continue (the message says what to pass)."""


class RecordWarning(UserWarning):
    """Something read from a run directory was not trusted (the message names the file and line)."""


class RunInterrupted(KeyboardInterrupt):
    """The run was interrupted (Ctrl-C, SIGTERM); its record is saved with status ``interrupted``."""

    def __init__(self, result: RunResult) -> None:
        super().__init__(result.record.get("advice") or "interrupted")
        self.result = result


class RunFailed(RuntimeError):
    """An error stopped the run; its record is saved with status ``failed``, the error and advice."""

    def __init__(self, result: RunResult, error: BaseException) -> None:
        super().__init__(f"{type(error).__name__}: {error}")
        self.result = result
        self.error = error


@dataclass(frozen=True)
class EvalConfig:
    """One run's configuration, validated on construction (before any directory exists)."""

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
    # What the model is (harness.fingerprint.identify_model: a checkpoint's content hash), when known.
    model_identity: Mapping[str, Any] | None = None
    task_version: str = ""  # TaskSpec.version
    # The plugins behind the run (Registry.provenance: distribution, version, source hash of editable code).
    # The task plugin's code is part of the identity: an edited task never resumes into old episodes.
    plugins: Mapping[str, Any] | None = None
    # Store each distinct image shown as a PNG under <run>/images/ (harness.transcript). Not part of the
    # identity: it changes what is kept, not the results.
    save_images: bool = False

    def __post_init__(self) -> None:
        for name in ("task", "split", "model", "backend"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
            check_value(getattr(self, name), name)
        if not isinstance(self.gen, GenParams):
            raise ConfigError(f"gen must be GenParams, got {type(self.gen).__name__}")
        check_int(self.episodes, "episodes", 1, MAX_EPISODES)
        check_int(self.seed, "seed")
        if self.verify_iter is not None:
            check_int(self.verify_iter, "verify_iter", 1, 10_000)
        check_int(self.batch_size, "batch_size", 1, 1_000_000)
        check_int(self.max_connections, "max_connections", 1, 1_000_000)
        check_args(self.model_args, "model arg")
        check_args(self.task_args, "task arg")
        if not isinstance(self.task_version, str):
            raise ConfigError(f"task_version must be a string, got {self.task_version!r}")
        if self.plugins is not None:
            check_args(self.plugins, "plugin provenance")
        if self.model_identity is not None:
            check_args(self.model_identity, "model identity")
        if type(self.save_images) is not bool:
            raise ConfigError(f"save_images must be true or false, got {self.save_images!r}")

    def identity(self) -> dict[str, Any]:
        """What determines the results, as it reads back from JSON. Episode count is excluded so a run can
        be extended with resume."""
        ident: dict[str, Any] = {
            "task": self.task, "split": self.split, "model": self.model, "backend": self.backend,
            "model_args": store.redact(self.model_args), "gen": self.gen.as_dict(), "seed": self.seed,
            "verify_iter": self.verify_iter, "task_args": dict(self.task_args)}
        if self.model_identity is not None:
            ident["model_identity"] = dict(self.model_identity)
        if self.task_version:  # absent when empty, so tasks without a version keep their run ids
            ident["task_version"] = self.task_version
        task_plugin = (self.plugins or {}).get("task")
        if task_plugin:
            ident["task_plugin"] = str(task_plugin.get("id", ""))
        return orjson.loads(store.dumps(ident))


# versions recorded when installed
LIBRARIES = ("torch", "transformers", "tokenizers", "accelerate", "peft", "vllm", "openai")


class TaskContractError(ValueError):
    """An env returned something the runner cannot record (a NaN reward, a metric of the wrong type)."""


def _finite_reward(reward: Any) -> float:
    if isinstance(reward, bool) or not isinstance(reward, int | float):
        raise TaskContractError(f"env.step returned a reward of type {type(reward).__name__}, not a number")
    value = float(reward)
    if not math.isfinite(value):
        raise TaskContractError(f"env.step returned a non-finite reward ({value})")
    return value


def _summary(info: Mapping[str, Any], kinds: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``info['episode']`` checked against the env contract (harness/env.py): present when the episode ends,
    ``success`` a bool, ``metrics`` only the task's declared metrics with values of their kind, ``details`` a
    mapping. ``kinds`` maps declared metric names to their kind (None: names and kinds are not checked)."""
    raw = info.get("episode")
    if raw is None:
        raise TaskContractError("the episode ended but info has no 'episode' summary ({'success': ..., ...})")
    if type(raw) is not dict and not isinstance(raw, Mapping):
        raise TaskContractError(f"info['episode'] must be a mapping, got {type(raw).__name__}")
    if type(raw.get("success")) is not bool:
        raise TaskContractError(f"info['episode']['success'] must be true or false, got {raw.get('success')!r}")
    metrics = raw.get("metrics") or {}
    details = raw.get("details") or {}
    if not (type(metrics) is dict or isinstance(metrics, Mapping)) or not (
            type(details) is dict or isinstance(details, Mapping)):
        raise TaskContractError("info['episode'] 'metrics' and 'details' must be mappings")
    clean = {}
    for name, v in metrics.items():
        kind = kinds.get(name) if kinds is not None else None
        if kinds is not None and kind is None:
            raise TaskContractError(f"episode metric {name!r} is not declared in the task's metrics "
                                    f"({', '.join(kinds) or 'none'})")
        v = list(v) if isinstance(v, tuple) else v
        why = (_kind_problem(v, kind) if kind else None) or store.metric_value_problem(v)
        if why:
            raise TaskContractError(f"episode metric {name!r} {why}, got {v!r}")
        clean[str(name)] = v
    return {"success": raw["success"], "metrics": clean, "details": dict(details)}


def _kind_problem(v: Any, kind: str) -> str | None:
    """Is ``v`` a value of a metric of this kind (None means "no value this episode")?"""
    if v is None:
        return None
    if kind == "rate" and not (type(v) is bool or v in (0, 1)):
        return "is a rate metric: it must be true/false (or 0/1)"
    if kind == "mean" and isinstance(v, list):
        return "is a mean metric: it must be a number"
    if kind == "ratio" and not (isinstance(v, list) and all(type(x) is int for x in v) and v[0] <= v[1]):
        return "is a ratio metric: it must be [hits, total] with whole numbers, hits <= total"
    return None


def _count(n: Any) -> int:
    """A token count from a backend: a non-negative int, else 0 (never a value JSON cannot hold)."""
    return n if isinstance(n, int) and not isinstance(n, bool) and 0 <= n < 2**53 else 0


def _cut(answer: str, cap: int) -> str:
    return answer if len(answer) <= cap else answer[:cap] + f"\n[... {len(answer) - cap} more characters cut]"


class Episode:
    """One live episode: its env, the conversation so far, and what it has scored. Public: recipes drive
    episodes with it exactly as evaluation does (``request()`` is what the model is sent, ``apply(completion)``
    feeds an answer to the env and returns True when the episode is over, ``record()`` is the samples.jsonl
    record, each turn with what the model was shown that turn).

    An answer longer than ``answer_cap`` characters is kept (in the history the model sees next and in the
    record) only up to the cap: the verifier has judged it already, and resending megabytes every turn
    would cost more than the whole rest of the run."""

    __slots__ = ("_recorder", "_shown", "answer_cap", "completion_tokens", "env", "index", "messages",
                 "metric_kinds", "obs", "prompt_tokens", "reward", "seed", "summary", "turns")

    def __init__(self, index: int, seed: int, env: TextEnv, answer_cap: int = MAX_RECORDED_ANSWER,
                 metric_kinds: Mapping[str, str] | None = None, images: ImageStore | None = None) -> None:
        self.index = index
        self.seed = seed
        self.env = env
        self.answer_cap = answer_cap
        self.metric_kinds = metric_kinds  # the task's declared metrics (None: not checked)
        self._recorder = Recorder(images)  # what the model is shown, per turn (harness/transcript.py)
        self._shown: dict[str, Any] = {}
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
        turns = self.turns
        self._shown = self._recorder.shown(obs, len(turns), turns[-1]["feedback"] if turns else None)

    def request(self) -> Request:
        env = self.env
        return Request(tuple(self.messages), self.seed, len(self.turns), env.expert_action, env.random_action)

    def apply(self, completion: Completion) -> bool:
        """Feed the model's answer to the env; True when the episode is over."""
        self.prompt_tokens += _count(completion.prompt_tokens)
        self.completion_tokens += _count(completion.completion_tokens)
        answer = completion.text
        obs, reward, terminated, truncated, info = self.env.step(answer)
        reward = _finite_reward(reward)
        if type(info) is not dict and not isinstance(info, Mapping):
            raise TaskContractError(f"env.step returned info of type {type(info).__name__}, not a dict")
        feedback = info.get("feedback", "")
        turn: dict[str, Any] = {"answer": answer[:self.answer_cap], "reward": reward,
                                "feedback": feedback if isinstance(feedback, str) else str(feedback)}
        if len(answer) > self.answer_cap:
            turn["answer_truncated_from"] = len(answer)
        turn["shown"] = self._shown
        extra = info.get("turn")
        if extra and (type(extra) is dict or isinstance(extra, Mapping)):
            # the task's fields, but never over the runner's own: answer, reward and what was shown are facts
            turn = {**turn, **extra, **turn}
        if terminated or truncated:
            self.summary = _summary(info, self.metric_kinds)
        self.reward += reward
        self.turns.append(turn)
        if terminated or truncated:
            return True
        self.messages.append(Message.make("assistant", _cut(answer, self.answer_cap)))
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
    if isinstance(exc, TaskContractError):
        return f"task contract: {exc}"
    tb = traceback.extract_tb(exc.__traceback__)[-1:]
    where = f" at {tb[0].filename}:{tb[0].lineno}" if tb else ""
    return f"env raised {type(exc).__name__}: {exc}{where}"


ProgressFn = Callable[[int, int, Mapping[str, Any] | None], None]


def read_training_info(checkpoint: str | Path) -> dict[str, Any] | None:
    """The training information beside a checkpoint directory (None when there is none), validated: a
    file that is not what a recipe writes is an error naming the file and the field."""
    from harness.index import training_problem

    path = Path(checkpoint) / TRAINING_INFO_FILE
    if not path.is_file():
        return None
    try:
        info = orjson.loads(path.read_bytes())
    except (OSError, orjson.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read as JSON ({exc})") from None
    why = training_problem(info)
    if why:
        raise ConfigError(f"{path}: {why}")
    return info


MAX_FAILURE_REASONS = 100  # distinct reasons kept in a record; the rest are counted under one key
OTHER_REASONS = "(other reasons)"


class RunTally:
    """What a run's record says about its episodes, counted as each record goes by: the metrics over ok
    episodes (streaming, :class:`harness.metrics.MetricsAccumulator`), failure counts and reasons, token
    totals. Memory does not grow with the number of episodes."""

    def __init__(self, task_metrics: Sequence[MetricSpec]) -> None:
        self.metrics = MetricsAccumulator(task_metrics)
        self.ok = self.failed = self.env_bugs = 0
        self.first_env_bug: str | None = None
        self.reasons: dict[str, int] = {}
        self.prompt_tokens = self.completion_tokens = 0

    def add(self, rec: Mapping[str, Any]) -> None:
        if rec["status"] == "ok":
            self.ok += 1
            self.metrics.add(rec)
            self.prompt_tokens += rec["tokens"]["prompt"]
            self.completion_tokens += rec["tokens"]["completion"]
            return
        self.failed += 1
        reason = str(rec.get("error") or "unknown")
        if reason.startswith(("env raised", "task contract")):
            self.env_bugs += 1
            self.first_env_bug = self.first_env_bug or reason
        key = store.scrub_secrets(reason)[:200]
        if key not in self.reasons and len(self.reasons) >= MAX_FAILURE_REASONS:
            key = OTHER_REASONS
        self.reasons[key] = self.reasons.get(key, 0) + 1


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
        self.answer_cap = min(task.max_answer_chars or MAX_RECORDED_ANSWER, MAX_RECORDED_ANSWER)
        self.metric_kinds = {m.name: m.kind for m in task.metrics}
        self.done = 0
        self.writer: store.SampleWriter | None = None
        self.tally = RunTally(task.metrics)
        self._spare: list[TextEnv] = []
        self.training: dict[str, Any] | None = None
        self.images = ImageStore(run_dir) if cfg.save_images else None
        self._share_total = 0  # with several processes: this process's share of the episodes (progress)
        self._processes = 1

    def make_env(self) -> TextEnv:
        if self._spare:
            return self._spare.pop()
        return self.task.new_env(self.split.name, self.verify_iter, **dict(self.cfg.task_args))

    def _new_episode(self, i: int, env: TextEnv) -> Episode:
        return Episode(i, self._seed(i), env, self.answer_cap, self.metric_kinds, self.images)

    def _finish(self, ep: Episode, error: str | None = None) -> None:
        rec = ep.record(error)
        assert self.writer is not None
        self.writer.write(rec)
        self.tally.add(rec)
        self.done += 1
        if self.progress:
            self.progress(self.done, self._share_total or self.cfg.episodes, rec)

    # ---------------------------------------------------------------- lock-step (local engines)
    def play_lockstep(self, indices: Iterable[int]) -> None:
        cfg = self.cfg
        pending = iter(indices)  # taken one at a time: nothing is held per episode not yet started
        nxt = next(pending, None)
        live: list[Episode] = []
        free: list[TextEnv] = []  # envs are built as episodes start, up to the batch size, then reused
        built = 0
        while nxt is not None or live:
            while nxt is not None and (free or built < cfg.batch_size):
                if not free:
                    free.append(self.make_env())
                    built += 1
                i, nxt = nxt, next(pending, None)
                env = free.pop()
                try:
                    live.append(self._new_episode(i, env))
                except Exception as exc:
                    err = Episode.__new__(Episode)
                    _blank(err, i, self._seed(i), env)
                    self._finish(err, _env_error(exc))
                    free.append(env)
            if not live:
                continue
            completions = self.backend.generate([ep.request() for ep in live], cfg.gen)
            if len(completions) != len(live):
                raise RuntimeError(f"backend returned {len(completions)} completions for {len(live)} requests")
            still: list[Episode] = []
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
    async def _play_async(self, indices: Iterable[int]) -> None:
        """``max_connections`` workers, each playing one episode at a time with its own env (built when it
        starts its first episode) and taking the next index when it is done: a sliding window that holds
        nothing per episode not yet started."""
        agenerate = self.backend.agenerate  # type: ignore[attr-defined]
        pending = iter(indices)

        async def one(i: int, env: TextEnv) -> None:
            try:
                ep = self._new_episode(i, env)
            except Exception as exc:
                ep = Episode.__new__(Episode)
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

        async def worker() -> None:
            env: TextEnv | None = None
            for i in pending:  # one shared iterator: each index is taken by exactly one worker
                env = env or self.make_env()
                await one(i, env)

        await asyncio.gather(*(worker() for _ in range(max(1, self.cfg.max_connections))))

    def _seed(self, index: int) -> int:
        # computed when an episode starts and when its record is read back; never cached per episode
        return episode_seed(self.task.name, self.split.name, self.cfg.seed, index)

    # --------------------------------------------------------------------------------- a run
    def run(self, *, resume: bool = False, overwrite: bool = False,
            group: distributed.Group | None = None) -> RunResult:
        """Play the episodes not yet recorded. Raises :class:`RunExistsError` (a run is there and neither
        ``resume`` nor ``overwrite`` was given), :class:`harness.runlock.RunLockedError` (another process
        writes this directory), :class:`RunInterrupted` and :class:`RunFailed` (the record is saved).
        With ``group`` (several processes, :mod:`harness.distributed`) each process plays its share and the
        main process records the one run."""
        # Everything the configuration names is checked before the directory exists: one env is built from
        # the task arguments (bad arguments, a missing --data file fail here) and kept for the first episode.
        self._spare = [self.make_env()]
        ckpt = self.cfg.model_args.get("pretrained")
        self.training = read_training_info(ckpt) if isinstance(ckpt, str) and ckpt else None
        if group is not None and group.world > 1:
            return self._run_main(group, resume, overwrite) if group.main else self._run_peer(group)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        with RunLock(self.run_dir):
            record, previous, todo = self._open(resume, overwrite)
            t0 = time.perf_counter()
            stop = self._play(todo)
            return self._close(record, previous, time.perf_counter() - t0, stop)

    def _previous(self, resume: bool, overwrite: bool, found: store.SampleIndex) -> dict[str, Any]:
        """The existing record to continue, or {} for a fresh start; refuses what would lose or mix data."""
        from harness.index import RecordError, validate

        record_path = self.run_dir / RECORD_FILE
        if overwrite:
            for name in (SAMPLES_FILE, RECORD_FILE):
                (self.run_dir / name).unlink(missing_ok=True)
            return {}
        if not found.has_results:  # nothing recorded yet (e.g. the last attempt failed at its start): start afresh
            return {}
        if not resume:
            raise RunExistsError(f"a run with this configuration already exists at {self.run_dir}; "
                                 "pass --resume to continue it or --overwrite to start again")
        previous: dict[str, Any] = {}
        if record_path.exists():
            try:
                previous = orjson.loads(record_path.read_bytes())
                validate(previous, record_path)
            except (OSError, orjson.JSONDecodeError, RecordError) as exc:
                raise RunExistsError(f"{record_path} cannot be trusted ({exc}); move it away to resume from "
                                     f"{SAMPLES_FILE} alone, or pass --overwrite") from None
            if previous.get("identity") != self.cfg.identity():
                raise RunExistsError(f"{self.run_dir} holds a run with another configuration; "
                                     "use another --output or --overwrite")
        recorded = max(int(previous.get("episodes") or 0), found.max_index + 1)
        if recorded > self.cfg.episodes:
            raise RunExistsError(f"{self.run_dir} holds a run of {recorded} episodes; resuming it with "
                                 f"{self.cfg.episodes} would shrink it. Pass --episodes {recorded} (or more), "
                                 "or --overwrite")
        return previous

    def _compact(self, found: store.SampleIndex) -> bytearray:
        """Rewrite samples.jsonl with the records to keep (valid, ok, played with this run's episode seeds),
        one at a time, counting each into the run's tally; returns a flag per episode, 1 = kept. Lines that
        are not valid records are moved to samples.rejected.jsonl (never silently lost) and their episodes
        played again; failed episodes are dropped, to be retried."""
        done = bytearray(self.cfg.episodes)
        samples_path = self.run_dir / SAMPLES_FILE
        if not samples_path.exists():
            return done
        rejected: list[tuple[int, str]] = []
        with contextlib.ExitStack() as stack:
            rej: list[BinaryIO] = []  # opened at the first rejected line only

            def reject(n: int, why: str, raw: bytes) -> None:
                if not rej:
                    rej.append(stack.enter_context((self.run_dir / REJECTED_FILE).open("ab")))
                rejected.append((n, why))
                rej[0].write(raw + b"\n")

            for n, why, raw in found.invalid:
                reject(n, why, raw)

            def kept() -> Iterator[bytes]:
                for i, raw, rec in found.records():
                    if rec["episode_seed"] != self._seed(i):
                        reject(-1, f"episode {i} has episode_seed {rec['episode_seed']}, not this run's "
                                   f"{self._seed(i)}", raw)
                    elif rec["status"] == "ok":
                        done[i] = 1
                        self.tally.add(rec)
                        yield raw

            store.write_lines_atomic(samples_path, kept())
        if rejected:
            shown = "; ".join(f"line {n}: {why}" if n > 0 else why for n, why in rejected[:3])
            warnings.warn(f"{samples_path}: {len(rejected)} line(s) are not valid episode records ({shown}); moved "
                          f"to {REJECTED_FILE}, their episodes will be played again", RecordWarning, stacklevel=4)
        return done

    def _open(self, resume: bool, overwrite: bool) -> tuple[dict[str, Any], dict[str, Any], Iterable[int]]:
        """Under the lock: fold in what other processes left, check what may be continued, compact
        samples.jsonl, mark the run running. Returns (record, previous record, episodes to play)."""
        cfg = self.cfg
        samples_path = self.run_dir / SAMPLES_FILE
        self._fold_parts()  # what the processes of a killed multi-process run left in their part files
        found = store.index_samples(samples_path, cfg.episodes)
        previous = self._previous(resume, overwrite, found)
        if overwrite:
            found = store.SampleIndex(path=samples_path, limit=cfg.episodes)
        self.tally = RunTally(self.task.metrics)
        done = self._compact(found)
        self.writer = store.SampleWriter(samples_path)
        self.done = sum(done)
        todo = (i for i in range(cfg.episodes) if not done[i])
        record = self._record(previous, status="running")
        store.write_json_atomic(self.run_dir / RECORD_FILE, record)
        if self.progress:
            self.progress(self.done, cfg.episodes, None)
        return record, previous, todo

    def _play(self, todo: Iterable[int]) -> BaseException | None:
        """Play ``todo`` into ``self.writer``; what stopped it (recorded by the caller), or None."""
        assert self.writer is not None
        try:
            if self.done < self.cfg.episodes:
                if hasattr(self.backend, "agenerate"):
                    asyncio.run(self._play_async(todo))
                else:
                    self.play_lockstep(todo)
        except BaseException as exc:  # recorded, then raised again
            return exc
        finally:
            self.writer.close()
        return None

    def _close(self, record: dict[str, Any], previous: Mapping[str, Any], elapsed: float,
               stop: BaseException | None) -> RunResult:
        result = self.finalize(record, elapsed + float(previous.get("wall_time_s") or 0.0), stop=stop)
        if stop is None:
            return result
        if isinstance(stop, KeyboardInterrupt):
            raise RunInterrupted(result) from stop
        if isinstance(stop, Exception):
            raise RunFailed(result, stop) from stop
        raise stop

    def _fold_parts(self, count: bool = False) -> None:
        """Append the valid lines of other processes' ``samples.part-<rank>.jsonl`` to samples.jsonl, then
        remove them (a kill in between leaves duplicates, and the last record per episode wins anyway). With
        ``count`` (at the end of a multi-process run) the folded records of this run are counted into its
        tally, as this process's own records were when written."""
        parts = sorted(self.run_dir.glob(f"{distributed.PART_PREFIX}*.jsonl"))
        if not parts:
            return
        samples_path = self.run_dir / SAMPLES_FILE
        rejected: list[tuple[int, str, bytes]] = []
        with samples_path.open("ab+") as f:
            if f.tell() and (f.seek(-1, 2), f.read(1))[1] != b"\n":
                f.write(b"\n")  # a torn last line stays one unreadable line, never glued to the next record
            for part in parts:
                with part.open("rb") as lines:
                    for n, line in enumerate(lines, 1):
                        try:
                            rec = orjson.loads(line)
                        except orjson.JSONDecodeError:
                            continue  # torn by a kill: that episode is played again
                        why = store.sample_problem(rec)
                        if why:
                            rejected.append((n, f"{part.name} line {n}: {why}", line.rstrip(b"\n")))
                            continue
                        f.write(line.rstrip(b"\n") + b"\n")
                        if count and rec["index"] < self.cfg.episodes and rec["episode_seed"] == self._seed(
                                rec["index"]):
                            self.tally.add(rec)
            f.flush()
            os.fsync(f.fileno())
        if rejected:
            with (self.run_dir / REJECTED_FILE).open("ab") as f:
                for _, _, raw in rejected:
                    f.write(raw + b"\n")
            warnings.warn(f"{len(rejected)} line(s) of part files are not valid episode records "
                          f"({rejected[0][1]}); moved to {REJECTED_FILE}", RecordWarning, stacklevel=3)
        for part in parts:
            part.unlink(missing_ok=True)

    # ------------------------------------------------------------------ several processes
    def _run_main(self, group: distributed.Group, resume: bool, overwrite: bool) -> RunResult:
        """The main process of a multi-process run: decides, plays share 0, folds, records."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._processes = group.world
        lock = RunLock(self.run_dir)
        try:
            lock.acquire()
            record, previous, todo = self._open(resume, overwrite)
        except BaseException as exc:
            lock.release()
            group.broadcast({"error": distributed.outcome(exc), "type": type(exc).__name__})
            raise
        try:
            todo = list(todo)  # the plan every process shares
            group.broadcast({"todo": todo})
            mine = group.mine(todo)
            self.done, total = self.cfg.episodes - len(todo), self.cfg.episodes - len(todo) + len(mine)
            self._share_total = total
            t0 = time.perf_counter()
            stop = self._play(mine)
            stop = stop or distributed.combined(group.all_gather(distributed.outcome(stop)))
            try:
                self._fold_parts(count=True)
                result = self._close(record, previous, time.perf_counter() - t0, stop)
            except (RunInterrupted, RunFailed) as exc:
                group.broadcast({"record": exc.result.record, "raise": type(exc).__name__})
                raise
            except BaseException as exc:
                group.broadcast({"error": distributed.outcome(exc), "type": type(exc).__name__})
                raise
            group.broadcast({"record": result.record})
            return result
        finally:
            lock.release()

    def _run_peer(self, group: distributed.Group) -> RunResult:
        """Another process: plays its share of what the main process says is left, into its part file."""
        plan = group.broadcast()
        if "error" in plan:
            raise _peer_error(plan)
        part = self.run_dir / f"{distributed.PART_PREFIX}{group.rank}.jsonl"
        self.writer = store.SampleWriter(part) if group.records else store.NullWriter()
        self.done = 0
        stop = self._play(group.mine(plan["todo"]))
        group.all_gather(distributed.outcome(stop))
        final = group.broadcast()
        if "error" in final:
            raise _peer_error(final)
        record = final["record"]
        result = RunResult(run_dir=str(self.run_dir), record=record,
                           metrics={k: MetricValue(**v) for k, v in record["metrics"].items()})
        if final.get("raise") == "RunInterrupted":
            raise RunInterrupted(result)
        if final.get("raise") == "RunFailed":
            raise RunFailed(result, distributed.PeerError(str(record.get("error") or "the run failed")))
        return result

    def finalize(self, record: dict[str, Any], wall: float, stop: BaseException | None = None) -> RunResult:
        """The record's results from the run's tally: every kept record was counted as it was compacted and
        every new one as it was written, so nothing is read back or held per episode."""
        cfg, tally = self.cfg, self.tally
        metrics = tally.metrics.result(failed=tally.failed)
        status, advice, error = _outcome(tally.ok, tally.failed, cfg.episodes, stop)
        if tally.env_bugs and status == "failed" and stop is None:
            # a task bug, not a flaky server: say whose, and that retrying alone will not help
            plugin = (cfg.plugins or {}).get("task") or {}
            who = f"task plugin {plugin.get('plugin')!r} ({plugin.get('id')})" if plugin else f"task {cfg.task!r}"
            error = (f"{tally.env_bugs} episode(s) failed inside the task's env: a bug in {who}: "
                     f"{tally.first_env_bug}")
            advice = (f"{tally.failed} of {cfg.episodes} episodes failed (they count as unsolved in success_rate); "
                      f"{tally.env_bugs} of them in the task's env, which --resume replays but cannot fix: report it "
                      f"to the task's author, or fix the task and run again")
        record.update({
            "status": status,
            "advice": advice,
            "error": error,
            "finished": time.time(),
            "wall_time_s": wall,
            "episodes_ok": tally.ok,
            "episodes_failed": tally.failed,
            "failure_reasons": dict(tally.reasons),
            "metrics": {k: v.as_dict() for k, v in metrics.items()},
            "tokens": {"prompt": tally.prompt_tokens, "completion": tally.completion_tokens},
        })
        store.write_json_atomic(self.run_dir / RECORD_FILE, record)
        return RunResult(run_dir=str(self.run_dir), record=record, metrics=metrics)

    def _record(self, previous: Mapping[str, Any], status: str) -> dict[str, Any]:
        cfg = self.cfg
        return {
            "schema_version": store.SCHEMA_VERSION,
            "run_id": self.run_dir.name,
            "identity": cfg.identity(),
            "task": cfg.task,
            "task_version": cfg.task_version,
            "split": self.split.name,
            "distribution": self.split.distribution,
            "model": {"name": cfg.model, "backend": cfg.backend, "args": store.redact(cfg.model_args),
                      "identity": dict(cfg.model_identity) if cfg.model_identity else None},
            "gen": cfg.gen.as_dict(),
            "seed": cfg.seed,
            "episodes": cfg.episodes,
            "verify_iter": self.verify_iter,
            "task_args": dict(cfg.task_args),
            "batch_size": cfg.batch_size,
            "processes": self._processes,
            "save_images": cfg.save_images or bool(previous.get("save_images")),
            "created": previous.get("created") or time.time(),
            "versions": store.versions([*(p.get("distribution") for p in (cfg.plugins or {}).values()),
                                        *LIBRARIES]),
            "plugins": dict(cfg.plugins or {}),
            "git_commit": store.git_commit(),
            "training": self.training,
            "status": status,
            "advice": "in progress; if its process is gone, rerun the same command with --resume to continue",
        }


def _outcome(ok: int, failed: int, episodes: int, stop: BaseException | None) -> tuple[str, str | None, str | None]:
    """(status, advice, error) of a run that ended with ``ok`` and ``failed`` episodes recorded."""
    done = ok + failed
    if stop is not None and not isinstance(stop, Exception):
        return ("interrupted", f"interrupted after {done} of {episodes} episodes; rerun the same command with "
                "--resume to continue", None)
    if stop is not None:
        error = store.scrub_secrets(f"{type(stop).__name__}: {stop}")[:2000]
        if done == 0:
            return ("failed", "the run stopped before any episode finished and nothing was recorded; fix the "
                    "cause and run the command again", error)
        return ("failed", f"the run stopped after {done} of {episodes} episodes (they are saved); fix the cause, "
                "then rerun the same command with --resume to continue", error)
    if failed or ok < episodes:
        return ("failed", f"{failed} of {episodes} episodes failed (see failure_reasons; they count as unsolved "
                "in success_rate); rerun the same command with --resume to retry them", None)
    return "complete", None, None


def _peer_error(payload: Mapping[str, Any]) -> BaseException:
    """The main process's error, raised again on another process (the same class where callers catch it)."""
    from harness.runlock import RunLockedError

    what = payload.get("error") or {}
    if what.get("kind") == "interrupt":
        return KeyboardInterrupt()
    message = str(what.get("message", "")).partition(": ")[2] or str(what.get("message", ""))
    kinds: dict[str, type[Exception]] = {"RunExistsError": RunExistsError, "RunLockedError": RunLockedError,
                                         "ConfigError": ConfigError}
    return kinds.get(str(payload.get("type")), distributed.PeerError)(message)


def _blank(ep: Episode, index: int, seed: int, env: TextEnv) -> None:
    """An episode that failed before its first observation (reset raised)."""
    ep.index, ep.seed, ep.env = index, seed, env
    ep.messages, ep.turns, ep.summary = [], [], {}
    ep.reward, ep.prompt_tokens, ep.completion_tokens = 0.0, 0, 0
    ep.answer_cap = MAX_RECORDED_ANSWER
    ep._recorder, ep._shown = Recorder(), {}


def model_label(model: str) -> str:
    """The model part of a run id: a local path (``/abs/ckpt/step-000200``, or ``hf:/abs/...``) by its last
    two parts, which say what it is without this machine's folders; anything else as named."""
    prefix, sep, rest = model.partition(":")
    path = rest if sep and rest.startswith("/") else model
    if not path.startswith("/"):
        return store.slug(model)
    tail = "-".join(Path(path).parts[-2:])
    return store.slug(f"{prefix}-{tail}" if path is rest else tail)


def run_dir_for(output: Path, cfg: EvalConfig) -> Path:
    return output / f"{cfg.task}_{cfg.split}_{model_label(cfg.model)}_{store.config_hash(cfg.identity())}"


def format_metric(m: MetricValue, pct: bool) -> str:
    def f(x: float) -> str:
        if math.isnan(x):
            return "n/a"
        return f"{100 * x:.1f}" if pct else f"{x:.3f}"

    if math.isnan(m.value):
        return "n/a"
    return f"{f(m.value)}{'%' if pct else ''} [{f(m.ci_low)}, {f(m.ci_high)}]"


__all__ = ["Episode", "EvalConfig", "RecordWarning", "RunExistsError", "RunFailed", "RunInterrupted", "Runner",
           "TaskContractError", "episode_seed", "format_metric", "model_label", "read_training_info", "run_dir_for"]
