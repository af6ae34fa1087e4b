"""The run record schema (``run.json``, version ``harness.store.SCHEMA_VERSION``) and one ``samples.jsonl``
line, as typed structures: what an observer's ``harness_run_finished(run, run_dir)`` receives and what tools
reading run directories may rely on. Written by :mod:`harness.runner`; every line read back is checked by
:func:`harness.store.sample_problem` first. New fields may be added within a schema version; removing or
changing one raises the version."""

from __future__ import annotations

from typing import Any, Literal, TypedDict

RunStatus = Literal["running", "complete", "interrupted", "failed"]


class Metric(TypedDict):
    value: float
    ci_low: float
    ci_high: float
    n: int  # episodes the value is over


class Tokens(TypedDict):
    prompt: int
    completion: int


class ModelInfo(TypedDict):
    name: str
    backend: str
    args: dict[str, Any]  # secrets redacted
    identity: dict[str, Any] | None  # the weights' content hash, or the API model's name and server


class PluginInfo(TypedDict):
    plugin: str  # the plugin's name in harness's plugin manager
    module: str
    distribution: str | None  # the installed distribution that provides it
    version: str | None
    editable: bool
    source_sha256: str | None  # for editable installs and --plugin modules: a hash of the plugin's source
    id: str  # the one-line form that goes into run identities


class RunRecord(TypedDict):
    schema_version: int
    run_id: str  # the run directory's name
    identity: dict[str, Any]  # everything the directory's hash covers
    task: str
    task_version: str
    split: str
    distribution: Literal["id", "ood"]
    model: ModelInfo
    gen: dict[str, Any]  # temperature, max_tokens, top_p, seed
    seed: int
    episodes: int
    verify_iter: int
    task_args: dict[str, Any]
    batch_size: int
    processes: int
    save_images: bool
    created: float  # Unix time of the first start
    versions: dict[str, str]  # harness, the plugins' distributions and the libraries that shape results
    plugins: dict[str, PluginInfo]  # by role: task, backend
    git_commit: str | None
    training: dict[str, Any] | None  # recipe, step, flops, checkpoint: for runs of a training checkpoint
    status: RunStatus
    advice: str | None  # what to do next, for runs that are not complete
    error: str | None
    finished: float
    wall_time_s: float
    episodes_ok: int
    episodes_failed: int
    failure_reasons: dict[str, int]
    metrics: dict[str, Metric]  # success_rate first, then the task's metrics
    tokens: Tokens


# What the model received in one turn (harness.transcript). "from" (a keyword, hence this form): "feedback"
# when the text is the previous turn's feedback, or [earlier turn, prefix, suffix] when "text" is the middle
# of that turn's text with its first `prefix` and last `suffix` characters kept.
Shown = TypedDict("Shown", {
    "text": str,
    "from": Any,
    "images": list[dict[str, Any]],  # {"size": [w, h], "mode": ..., "sha256": ...}: references, never pixels
    "new_context": bool,  # the conversation restarted here
    "system": str,
}, total=False)


class Turn(TypedDict, total=False):
    """The runner's fields; the task's per-answer fields (``info["turn"]``) sit beside them, never over them."""

    answer: str
    reward: float
    feedback: str
    answer_truncated_from: int  # the answer's length before harness cut it
    shown: Shown


class SampleRecord(TypedDict):
    schema_version: int
    index: int  # the episode's number in the run
    episode_seed: int
    status: Literal["ok", "error"]
    success: bool
    reward: float
    error: str | None  # for status "error": what went wrong (an env bug names its last frame)
    metrics: dict[str, Any]
    details: dict[str, Any]  # the task's per-episode fields
    tokens: Tokens
    turns: list[Turn]
