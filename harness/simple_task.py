"""Tasks in a few lines: write the problem, the judge, the expert and a random answer; harness does the rest.

A :class:`SimpleTask` subclass says how to make a problem from a seeded ``random.Random``, what the model is
shown, how one answer is judged (:class:`Judgement`: reward, success, feedback, fields to record, metric
values), the expert's answer and a random one. Harness owns everything around it: the answer budget
(``verify_iter``), the verification-revision loop (a wrong answer's feedback becomes the next user turn of the
same conversation), the episode summary, the Gymnasium env and the :class:`~harness.types.TaskSpec`::

    class Countdown(SimpleTask):
        name, description = "countdown", "reach the target with + - * of the numbers"
        splits = (SplitSpec("id", "targets up to 50"), SplitSpec("ood", "targets up to 500", "ood",
                                                              {"high": 500}))

        def __init__(self, *, high: int = 50) -> None:   # its keyword arguments are the task args
            self.high = high

        def problem(self, rng, options):
            return rng.randint(1, self.high)
        def prompt(self, target):
            return f"Make {target} from 3, 7 and 11."
        def judge(self, target, answer):
            ...
            return Judgement(reward=1.0 if ok else -1.0, success=ok, feedback="" if ok else "Wrong, try again.")
        def expert(self, target): ...
        def random_answer(self, target, rng): ...

    @hookimpl
    def harness_tasks():
        return [Countdown.spec()]

Split options and ``--task-args`` both go to the constructor, and are checked against its signature: a
misspelt task arg fails with the list of valid ones. ``reset(options=...)`` passes its options to
:meth:`SimpleTask.problem` (harness's runner passes ``episode_index``).

Per-answer metric values (``Judgement.metrics``) are combined per episode by the metric's kind: ``ratio`` counts
answers with a true value over answers judged, ``mean`` averages the values, ``rate`` keeps the last answer's.
Override :meth:`SimpleTask.summary` for anything else.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from harness.checks import as_bool
from harness.env import TextEnv
from harness.types import MetricSpec, Observation, SplitSpec, TaskSpec

BUDGET_SPENT = "step_limit_reached"


@dataclass(frozen=True)
class Judgement:
    """The verdict on one answer."""

    reward: float
    success: bool = False
    feedback: str = ""  # the next user turn when the answer is not a success
    fields: Mapping[str, Any] = field(default_factory=dict)  # recorded with the answer in samples.jsonl
    metrics: Mapping[str, Any] = field(default_factory=dict)  # per-answer values of the task's metrics


class SimpleTask:
    """Base class of simple tasks; see the module docstring. Class attributes describe the task."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    splits: ClassVar[tuple[SplitSpec, ...]] = ()
    modality: ClassVar[str] = "text"
    verify_iter: ClassVar[int] = 1  # the default answer budget
    metrics: ClassVar[tuple[MetricSpec, ...]] = ()
    action_field: ClassVar[str | None] = None
    version: ClassVar[str] = ""
    gym_id: ClassVar[str | None] = None
    parse_answer: ClassVar[Any] = None  # optional: the answer parser on its own (fuzzing, tooling)
    max_answer_chars: ClassVar[int | None] = None  # the most of one answer the judge reads (history is cut to it)
    # After the budget is spent, ask once more and score that answer without reading it (the paper's envs do).
    answer_after_budget: bool = False
    budget_spent_reward: float = -1.0

    # ---------------------------------------------------------------------------------- the task's part
    def problem(self, rng: random.Random, options: Mapping[str, Any]) -> Any:
        """A fresh problem drawn from ``rng`` (seeded per episode). ``options`` are ``reset``'s."""
        raise NotImplementedError

    def prompt(self, problem: Any) -> str | Observation:
        """The first user turn: text, or an :class:`Observation` with images."""
        raise NotImplementedError

    def judge(self, problem: Any, answer: str) -> Judgement:
        raise NotImplementedError

    def expert(self, problem: Any) -> str:
        """A correct answer: the oracle baseline and the SFT data."""
        raise NotImplementedError

    def random_answer(self, problem: Any, rng: random.Random) -> str:
        """A well-formed answer picked at random: the random baseline."""
        raise NotImplementedError

    def reset_info(self, problem: Any) -> dict[str, Any]:
        """The ``info`` dict ``reset`` returns (empty by default)."""
        return {}

    def summary(self, problem: Any, judgements: Sequence[Judgement]) -> tuple[dict[str, Any], dict[str, Any]]:
        """(metrics, details) of a finished episode. By default metrics combine the per-answer values by
        kind (see the module docstring) and details are empty."""
        out: dict[str, Any] = {}
        for m in self.metrics:
            values = [j.metrics[m.name] for j in judgements if m.name in j.metrics]
            if not values:
                continue
            if m.kind == "ratio":
                out[m.name] = (sum(1 for v in values if v), len(values))
            elif m.kind == "mean":
                out[m.name] = sum(float(v) for v in values) / len(values)
            else:
                out[m.name] = bool(values[-1])
        return out, {}

    # ---------------------------------------------------------------------------------- harness's part
    @classmethod
    def task_args(cls) -> tuple[str, ...]:
        """The keyword arguments the constructor takes: the valid task args and split options."""
        params = inspect.signature(cls.__init__).parameters.values()
        return tuple(p.name for p in params if p.name != "self" and p.kind in (p.KEYWORD_ONLY,
                                                                                  p.POSITIONAL_OR_KEYWORD))

    @classmethod
    def make_env(cls, split: str | None = None, verify_iter: int | None = None, **task_args: Any) -> SimpleEnv:
        """An env of ``split`` (its options, then ``task_args`` on top), with ``verify_iter`` answers judged."""
        split = split or cls.splits[0].name
        spec = next((s for s in cls.splits if split == s.name or split in s.aliases), None)
        if spec is None:
            raise KeyError(f"task {cls.name!r} has no split {split!r}; valid splits: "
                           f"{', '.join(s.name for s in cls.splits)}")
        options = {**dict(spec.options), **task_args}
        valid = cls.task_args()
        has_kwargs = any(p.kind == p.VAR_KEYWORD for p in inspect.signature(cls.__init__).parameters.values())
        unknown = sorted(k for k in options if k not in valid and k != "answer_after_budget")
        if unknown and not has_kwargs:
            raise TypeError(f"task {cls.name!r} got unknown task args {unknown}; valid: "
                            f"{', '.join(valid) or '(none)'}")
        after = options.pop("answer_after_budget", None) if "answer_after_budget" not in valid else None
        task = cls(**options)
        if after is not None:
            task.answer_after_budget = as_bool(after, "answer_after_budget")
        return SimpleEnv(task, int(verify_iter or cls.verify_iter))

    @classmethod
    def spec(cls) -> TaskSpec:
        """The :class:`TaskSpec` a plugin returns from ``harness_tasks``."""
        if not cls.name or not cls.splits:
            raise TypeError(f"{cls.__name__} needs a name and at least one split")
        return TaskSpec(name=cls.name, description=cls.description, modality=cls.modality,  # type: ignore[arg-type]
                        splits=tuple(cls.splits), make_env=cls.make_env, default_verify_iter=cls.verify_iter,
                        metrics=tuple(cls.metrics), action_field=cls.action_field, gym_id=cls.gym_id,
                        version=cls.version, parse_answer=_inherited_parser(cls),
                        max_answer_chars=cls.max_answer_chars)

    @classmethod
    def register_gym(cls) -> None:
        """Register ``gym_id`` with Gymnasium (``gymnasium.make(gym_id, split=...)``)."""
        import gymnasium

        if cls.gym_id and cls.gym_id not in gymnasium.registry:
            # gym.make's passive checker wants array spaces; ours hold Observation objects and free text.
            # gymnasium.utils.env_checker.check_env passes on the unwrapped env.
            gymnasium.register(id=cls.gym_id, entry_point=cls.make_env, disable_env_checker=True)


def _inherited_parser(cls: type) -> Any:
    for klass in cls.__mro__:
        fn = klass.__dict__.get("parse_answer")
        if fn is not None:
            return fn.__func__ if isinstance(fn, staticmethod) else fn
    return None


class SimpleEnv(TextEnv):
    """The Gymnasium env harness builds around a :class:`SimpleTask`."""

    def __init__(self, task: SimpleTask, verify_iter: int) -> None:
        if not isinstance(verify_iter, int) or isinstance(verify_iter, bool) or verify_iter < 1:
            raise ValueError(f"verify_iter must be an integer >= 1, got {verify_iter!r}")
        self.task = task
        self.verify_iter = verify_iter
        self.problem: Any = None
        self.judgements: list[Judgement] = []
        self._done = True

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        self.problem = self.task.problem(self.episode_rng(seed), dict(options or {}))
        self.judgements = []
        self._done = False
        first = self.task.prompt(self.problem)
        if isinstance(first, str):
            first = Observation(text=first, new_context=True)
        elif not first.new_context:
            first = Observation(first.text, first.images, True, first.system)
        return first, self.task.reset_info(self.problem)

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self._done:
            raise RuntimeError("the episode is over; call reset() first")
        if len(self.judgements) >= self.verify_iter:  # the extra, unjudged answer
            return self._end(self.task.budget_spent_reward, {"feedback": "", "turn": {"verdict": BUDGET_SPENT}},
                             success=False)
        j = self.task.judge(self.problem, action if isinstance(action, str) else "")
        self.judgements.append(j)
        info: dict[str, Any] = {"feedback": "" if j.success else j.feedback, "turn": dict(j.fields)}
        if j.success:
            return self._end(j.reward, info, success=True)
        if len(self.judgements) >= self.verify_iter and not self.task.answer_after_budget:
            return self._end(j.reward, info, success=False)
        return Observation(text=j.feedback), float(j.reward), False, False, info

    def _end(self, reward: float, info: dict[str, Any], success: bool
             ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self._done = True
        metrics, details = self.task.summary(self.problem, self.judgements)
        info["episode"] = {"success": success, "metrics": metrics, "details": details}
        return Observation(text=""), float(reward), success, not success, info

    def expert_action(self) -> str:
        return self.task.expert(self.problem)

    def random_action(self, rng: random.Random) -> str:
        return self.task.random_answer(self.problem, rng)




__all__ = ["BUDGET_SPENT", "Judgement", "SimpleEnv", "SimpleTask"]
