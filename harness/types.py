"""Typed records shared by the core and every plugin: conversations, specs and results.

Everything here is a frozen dataclass so plugins can't mutate shared state by accident, and so specs
are hashable and cheap to compare. Images are PIL images held in memory; records on disk never embed
pixels.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

if TYPE_CHECKING:  # PIL is only needed by code that actually builds images.
    from PIL.Image import Image

    from harness.env import TextEnv

Role = Literal["system", "user", "assistant"]

MAX_NEW_TOKENS = 10_000_000  # a sanity bound on max_tokens; no model writes more in one answer


@dataclass(frozen=True, slots=True)
class ContentPart:
    """One piece of a message: text, or an image."""

    type: Literal["text", "image"]
    text: str = ""
    image: Image | None = None

    @staticmethod
    def of_text(text: str) -> ContentPart:
        return ContentPart("text", text=text)

    @staticmethod
    def of_image(image: Image) -> ContentPart:
        return ContentPart("image", image=image)


@dataclass(frozen=True, slots=True)
class Message:
    role: Role
    content: tuple[ContentPart, ...]

    @staticmethod
    def make(role: Role, text: str, images: Sequence[Image] = ()) -> Message:
        """Images first, then the text: the layout chat templates of current VLMs expect."""
        parts = tuple(ContentPart.of_image(im) for im in images)
        return Message(role, (*parts, ContentPart.of_text(text)) if text or not parts else parts)

    @property
    def text(self) -> str:
        return "".join(p.text for p in self.content if p.type == "text")

    @property
    def images(self) -> list[Image]:
        return [p.image for p in self.content if p.type == "image" and p.image is not None]


@dataclass(frozen=True, slots=True)
class Observation:
    """What an environment shows the model next.

    ``new_context`` starts a fresh conversation (the first turn of an episode, or a task that re-prompts
    with its full state each step, like V-IRL); otherwise the observation is appended as the next user
    turn after the model's previous answer (verification-revision feedback).
    """

    text: str
    images: tuple[Image, ...] = ()
    new_context: bool = False
    system: str | None = None


# ---------------------------------------------------------------------------------------------- tasks


@dataclass(frozen=True)
class SplitSpec:
    """A named evaluation split. ``options`` go to the task's env factory unchanged."""

    name: str
    description: str
    distribution: Literal["id", "ood"] = "id"
    options: Mapping[str, Any] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class MetricSpec:
    """A task-specific metric. Episodes report it in ``info['episode']['metrics']``.

    kind ``rate``: a 0/1 per episode (Wilson interval); ``mean``: a float per episode (normal interval);
    ``ratio``: a (hits, total) pair per episode, pooled over episodes (micro-average, Wilson interval).
    """

    name: str
    description: str
    kind: Literal["rate", "mean", "ratio"] = "mean"


@dataclass(frozen=True)
class TaskSpec:
    """A task plugin's full description.

    ``make_env(split, verify_iter=..., **task_args)`` returns a fresh :class:`harness.env.TextEnv`.
    ``parse_answer`` exposes the answer parser on its own (fuzzing, tooling); the env uses it internally.
    """

    name: str
    description: str
    modality: Literal["text", "vision"]
    splits: tuple[SplitSpec, ...]
    make_env: Callable[..., TextEnv]
    default_verify_iter: int = 1
    metrics: tuple[MetricSpec, ...] = ()
    parse_answer: Callable[[str], Any] | None = None
    gym_id: str | None = None
    # The answer's JSON field that holds the action (the rest is "thought"); RL recipes weight the two apart.
    action_field: str | None = None
    # Bump whenever a change can change results (verdicts, rewards, prompts, dealing): it is part of every run's
    # identity, so episodes recorded under an older protocol are never resumed into or mixed with new ones.
    version: str = ""
    # The most characters of one answer the task's verifier reads. Longer answers are cut to this in the
    # conversation history sent back to the model and in samples.jsonl (None: the runner's default cap).
    max_answer_chars: int | None = None

    def split(self, name: str) -> SplitSpec:
        for s in self.splits:
            if name == s.name or name in s.aliases:
                return s
        valid = ", ".join(s.name + (f" (alias {', '.join(s.aliases)})" if s.aliases else "") for s in self.splits)
        raise KeyError(f"task {self.name!r} has no split {name!r}; valid splits: {valid}")

    def new_env(self, split: str, verify_iter: int | None = None, **task_args: Any) -> TextEnv:
        """A fresh env of ``split`` (name or alias): the split's options with ``task_args`` on top, and the
        task's default answer budget when ``verify_iter`` is None. Evaluation and training both build theirs
        here."""
        spec = self.split(split)
        return self.make_env(spec.name, verify_iter=verify_iter or self.default_verify_iter,
                             **{**dict(spec.options), **task_args})


# -------------------------------------------------------------------------------------------- backends


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters, validated on construction (a bad value names itself, before any run exists)."""

    temperature: float = 0.0
    max_tokens: int = 512
    top_p: float = 1.0
    seed: int | None = None

    def __post_init__(self) -> None:
        from harness.checks import check_float, check_int

        object.__setattr__(self, "temperature", check_float(self.temperature, "gen arg 'temperature'", 0.0, 100.0))
        object.__setattr__(self, "top_p", check_float(self.top_p, "gen arg 'top_p'", 0.0, 1.0, low_open=True))
        check_int(self.max_tokens, "gen arg 'max_tokens'", 1, MAX_NEW_TOKENS)
        if self.seed is not None:
            check_int(self.seed, "gen arg 'seed'")

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "max_tokens": self.max_tokens, "top_p": self.top_p,
                "seed": self.seed}


@dataclass(frozen=True, slots=True)
class Request:
    """One conversation to complete.

    ``expert`` and ``random_answer`` are the task's own policies for the current state; only the baseline
    backends (oracle, random) read them. Model backends see only ``messages``.
    """

    messages: tuple[Message, ...]
    episode_seed: int
    turn: int
    expert: Callable[[], str] | None = None
    random_answer: Callable[[random.Random], str] | None = None


@dataclass(frozen=True, slots=True)
class Completion:
    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # set when the backend gave up on this request (after its retries)


@runtime_checkable
class Backend(Protocol):
    """A model. ``generate`` completes a batch; backends that talk to remote APIs may also offer
    ``async agenerate(request, params)`` and are then driven with a sliding window of episodes."""

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class BackendSpec:
    name: str
    description: str
    factory: Callable[[Mapping[str, Any]], Backend]  # factory(model_args) -> Backend
    default_batch_size: int = 16
    extra: str | None = None  # the pip extra it needs, named in error messages
    # identify(model_args) -> what the model is (e.g. a content hash of its weights), or None. Part of the run
    # identity, so a changed model never reuses old episodes. Default: the content hash of a local directory
    # named by ``pretrained``/``model`` (harness.fingerprint).
    identify: Callable[[Mapping[str, Any]], Mapping[str, Any] | None] | None = None


@dataclass(frozen=True)
class ModelAlias:
    """A friendly name for a backend plus its arguments (``llama-3.2-vision`` -> hf + a checkpoint)."""

    name: str
    backend: str
    model_args: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""


# --------------------------------------------------------------------------------------------- recipes


@dataclass(frozen=True)
class TrainJob:
    """Everything a recipe needs, resolved by the core. A recipe trains, saves checkpoints, and calls
    ``evaluate(checkpoint_dir, training_info)`` for each one: the core writes ``training_info`` beside the
    checkpoint (recipe, step, FLOPs, ...), evaluates it on every split of the task through the normal
    runner, indexes the runs, and returns their records."""

    recipe: str
    model: str  # as the user named it (alias, backend or path)
    model_args: Mapping[str, Any]  # resolved backend arguments; ``pretrained`` is the base checkpoint
    task: TaskSpec
    split: str  # the training split
    out_dir: str
    evaluate: Callable[[str, Mapping[str, Any]], list[Mapping[str, Any]]]
    seed: int = 0
    steps: int | None = None
    budget_flops: float | None = None
    verify_iter: int | None = None
    eval_episodes: int = 100
    recipe_args: Mapping[str, Any] = field(default_factory=dict)
    # Called on the main process after every recipe step with {"step", "flops", "lr", "tokens_per_s",
    # "step_s", ...the recipe's own numbers (loss, reward, clipfrac, ...)}: the CLI's progress bar and the
    # training curves (harness.tracking: every finite number becomes a curve). Recipes never draw anything.
    on_step: Callable[[Mapping[str, Any]], None] | None = None


@dataclass(frozen=True)
class RecipeSpec:
    """A post-training recipe. ``run(job)`` returns a summary (checkpoints, FLOPs, final metrics)."""

    name: str
    description: str
    run: Callable[[TrainJob], Mapping[str, Any]]
    extra: str | None = None  # the pip extra it needs, named when one of its packages is missing


# ---------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True)
class MetricValue:
    value: float
    ci_low: float
    ci_high: float
    n: int

    def as_dict(self) -> dict[str, float | int]:
        return {"value": self.value, "ci_low": self.ci_low, "ci_high": self.ci_high, "n": self.n}


@dataclass(frozen=True)
class RunResult:
    """What ``harness eval`` produced: the run directory, its record, and the aggregated metrics."""

    run_dir: str
    record: Mapping[str, Any]
    metrics: Mapping[str, MetricValue]
