"""What the model saw, recorded per turn and rebuilt on demand.

Each turn of a samples.jsonl record holds ``shown``: the user message the model received that turn (its
``text``, ``images`` as references, ``new_context: true`` when the conversation restarted there, with the
``system`` prompt if any). The conversation of turn *t* is rebuilt from turns 0..t: restart where
``new_context`` is set, else append the previous answer and the next user message (:func:`conversation`).

Texts are stored once: a task that re-prompts with its whole state every step (V-IRL: instruction, action
space and a growing history) would otherwise store its history quadratically. A text that shares a long
prefix and suffix with the last long prompt is stored as ``from: [turn, prefix, suffix]`` plus the middle
that differs: ``text = T[turn][:prefix] + middle + T[turn][len - suffix:]``; a text that is the previous
turn's verifier feedback (verification-revision) is stored as ``from: "feedback"``.

An image is referenced by where it was shown (episode index and seed, turn, position in the message) with
its ``size`` and ``mode``; that is enough to draw it again, since a task's env is deterministic in its
episode seed and the answers it was given (:func:`replay`). With ``--save-images`` each distinct image is
also stored once, as a PNG named by its ``sha256`` (of the raw pixels, mode and size) under
``<run>/images/``, and the reference carries the digest, so a re-rendered image can be checked against
what the model saw. Hashing is not done by default: a 1200x1200 image costs about 3.5 ms to hash, several
times what drawing it costs (benchmarks/README.md).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness import store

if TYPE_CHECKING:
    from PIL.Image import Image

    from harness.types import Observation, TaskSpec

IMAGE_DIR = "images"
IMAGE_SUFFIX = ".png"
DELTA_MIN = 256  # texts shorter than this are stored whole: a delta would save next to nothing
MAX_REPLAY_PAD = 10_000_000  # a record's answer length is padded back only up to this (records are untrusted)
_SURROGATE = re.compile("[\ud800-\udfff]")  # written as U+FFFD or joined: lengths would no longer fit


def digest(image: Image) -> str:
    """sha256 of an image's raw pixels, with its mode and size (not of an encoding, which can change)."""
    h = hashlib.sha256(f"{image.mode} {image.size[0]}x{image.size[1]}\n".encode())
    h.update(image.tobytes())
    return h.hexdigest()


class ImageStore:
    """``<run>/images/<sha256>.png``: each distinct image once, written atomically. PNG because it is
    lossless (the page shows exactly the pixels the model got, and the digest can be checked), every browser
    shows it, and it costs about 25 ms for a 1200x1200 GeneralPoints image at level 1 (WEBP lossless is 3x
    smaller but 4x slower to write; JPEG blurs the card ranks the model has to read)."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = Path(run_dir) / IMAGE_DIR
        self._known: set[str] = set()

    def path(self, sha: str) -> Path:
        if not store.is_digest(sha):
            raise ValueError(f"not an image digest: {sha!r}")
        return self.dir / f"{sha}{IMAGE_SUFFIX}"

    def save(self, image: Image) -> str:
        sha = digest(image)
        if sha not in self._known:
            target = self.path(sha)
            if not target.is_file():
                self.dir.mkdir(parents=True, exist_ok=True)
                with store.atomic_path(target) as tmp:
                    image.save(tmp, format="PNG", compress_level=1)
            self._known.add(sha)
        return sha


def image_ref(image: Image, images: ImageStore | None = None) -> dict[str, Any]:
    ref: dict[str, Any] = {"size": [int(image.size[0]), int(image.size[1])], "mode": str(image.mode)}
    if images is not None:
        ref["sha256"] = images.save(image)
    return ref


def _common_prefix(a: str, b: str) -> int:
    n = min(len(a), len(b))
    if a[:n] == b[:n]:
        return n
    lo, hi = 0, n  # a[:lo] == b[:lo] and a[:hi] != b[:hi]: halve, comparing only the new part (C speed)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[lo:mid] == b[lo:mid]:
            lo = mid
        else:
            hi = mid
    return lo


def _common_suffix(a: str, b: str, limit: int) -> int:
    """The longest common suffix of ``a`` and ``b``, at most ``limit`` characters."""
    if a[len(a) - limit:] == b[len(b) - limit:]:
        return limit
    lo, hi = 0, limit  # the suffix of length lo matches, the one of length hi does not
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if a[len(a) - mid:len(a) - lo] == b[len(b) - mid:len(b) - lo]:
            lo = mid
        else:
            hi = mid
    return lo


@dataclass(slots=True)
class Recorder:
    """Builds each turn's ``shown`` entry for one episode (the runner's :class:`~harness.runner.Episode`)."""

    images: ImageStore | None = None
    _ref_turn: int = -1  # the last turn whose text was stored whole-ish and long: later texts are deltas of it
    _ref_text: str = ""

    def shown(self, obs: Observation, turn: int, feedback: str | None = None) -> dict[str, Any]:
        """``feedback``: the previous turn's verifier message, which is usually this turn's whole text."""
        text = obs.text if isinstance(obs.text, str) else str(obs.text)
        entry: dict[str, Any] = {"text": text}
        if feedback is not None and text == feedback and not obs.new_context:
            entry = {"from": "feedback"}
        elif len(text) >= DELTA_MIN and (text.isascii() or not _SURROGATE.search(text)):
            ref = self._ref_text
            if ref:
                p = _common_prefix(ref, text)
                s = _common_suffix(ref, text, min(len(ref), len(text)) - p)
                if p + s >= DELTA_MIN:
                    entry = {"text": text[p:len(text) - s], "from": [self._ref_turn, p, s]}
            self._ref_turn, self._ref_text = turn, text
        if obs.images:
            entry["images"] = [image_ref(im, self.images) for im in obs.images]
        if obs.new_context:
            entry["new_context"] = True
            if obs.system:
                entry["system"] = obs.system if isinstance(obs.system, str) else str(obs.system)
        return entry


# ------------------------------------------------------------------------------------------ reading


def turn_texts(turns: Sequence[Mapping[str, Any]]) -> list[str | None]:
    """The full user text of every turn (None where the record has none: runs made before harness recorded
    what the model saw). Deltas are resolved in order; one that does not fit its reference gives None."""
    out: list[str | None] = []
    for t in turns:
        shown = t.get("shown")
        shown = shown if isinstance(shown, Mapping) else {}
        ref = shown.get("from")
        if ref == "feedback":
            before = turns[len(out) - 1].get("feedback") if out else None
            out.append(before if isinstance(before, str) else None)
            continue
        text = shown.get("text")
        if not isinstance(text, str):
            out.append(None)
            continue
        if ref is not None:
            j, p, s = ref
            base = out[j] if 0 <= j < len(out) else None
            text = None if base is None or p + s > len(base) else base[:p] + text + base[len(base) - s:]
        out.append(text)
    return out


def cut_answer(turn: Mapping[str, Any]) -> str:
    """An answer as the model saw it in the history of later turns (cut answers carry the runner's note)."""
    answer = turn.get("answer")
    answer = answer if isinstance(answer, str) else ""
    full = turn.get("answer_truncated_from")
    if type(full) is int and full > len(answer):
        return answer + f"\n[... {full - len(answer)} more characters cut]"
    return answer


@dataclass
class Message:
    """One message of a rebuilt conversation; ``images`` are the record's references."""

    role: str
    text: str | None
    images: list[Mapping[str, Any]] = field(default_factory=list)
    turn: int = 0  # the turn whose ``shown`` (or answer) this is


def conversation(turns: Sequence[Mapping[str, Any]], upto: int, texts: Sequence[str | None] | None = None
                 ) -> list[Message]:
    """The messages the model received at turn ``upto`` (its prompt), rebuilt from the record."""
    texts = turn_texts(turns) if texts is None else texts
    msgs: list[Message] = []
    for k in range(upto + 1):
        shown = turns[k].get("shown")
        shown = shown if isinstance(shown, Mapping) else {}
        if shown.get("new_context") is True:
            msgs = [Message("system", shown["system"], [], k)] if isinstance(shown.get("system"), str) else []
        elif k > 0:
            msgs.append(Message("assistant", cut_answer(turns[k - 1]), [], k - 1))
        images = [r for r in shown.get("images") or [] if isinstance(r, Mapping)]
        msgs.append(Message("user", texts[k], images, k))
    return msgs


# ------------------------------------------------------------------------------------------ replay


@dataclass
class Replay:
    """An episode played again from its seed with its recorded answers. ``observations[k]`` is what turn
    ``k`` showed; ``diverged`` is the first turn whose reward differs from the record (observations after it
    are not what the model saw), ``error`` why the replay stopped early."""

    observations: list[Observation | None]
    diverged: int | None = None
    error: str | None = None


def replay_answer(turn: Mapping[str, Any]) -> str:
    """The answer to feed the env again. A cut answer is padded back to its length with spaces: the task's
    verifier reads no more than ``max_answer_chars`` (the cut), so what it judged is the kept part and the
    length."""
    answer = turn.get("answer")
    answer = answer if isinstance(answer, str) else ""
    full = turn.get("answer_truncated_from")
    if type(full) is int and len(answer) < full <= MAX_REPLAY_PAD:
        answer += " " * (full - len(answer))
    return answer


def replay(task: TaskSpec, run: Mapping[str, Any], sample: Mapping[str, Any], env: Any = None) -> Replay:
    """Rebuild an episode's observations: the task's env from the run record (split, task args, verify_iter)
    reset with the episode's seed, then stepped with the recorded answers. ``env`` reuses one built before."""
    turns = sample.get("turns") or []
    obs_list: list[Observation | None] = [None] * len(turns)
    try:
        if env is None:
            env = make_env(task, run)
        obs, _ = env.reset(seed=sample["episode_seed"], options={"episode_index": sample["index"]})
    except Exception as exc:  # a task that is gone, changed or broken: say so, show the rest
        return Replay(obs_list, None, f"{type(exc).__name__}: {exc}")
    for k, t in enumerate(turns):
        obs_list[k] = obs
        try:
            obs, reward, terminated, truncated, _ = env.step(replay_answer(t))
            recorded = t.get("reward")
            if isinstance(recorded, int | float) and float(reward) != float(recorded):
                return Replay(obs_list, k)
        except Exception as exc:
            return Replay(obs_list, None, f"the env raised {type(exc).__name__} at turn {k}: {exc}")
        if terminated or truncated:
            break
    return Replay(obs_list)


def make_env(task: TaskSpec, run: Mapping[str, Any]) -> Any:
    """The env a run's episodes were played in, from its record."""
    args = run.get("task_args") if isinstance(run.get("task_args"), Mapping) else {}
    verify_iter = run.get("verify_iter") if type(run.get("verify_iter")) is int else None
    return task.new_env(str(run.get("split")), verify_iter, **dict(args))


__all__ = ["IMAGE_DIR", "ImageStore", "Message", "Recorder", "Replay", "conversation", "cut_answer", "digest",
           "image_ref", "make_env", "replay", "replay_answer", "turn_texts"]
