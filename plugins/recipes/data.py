"""SFT data: expert transcripts played through the task's own env and the runner's conversation logic,
or the paper's own SFT records read from disk (:func:`llava_records`).

An episode is played with :class:`harness.runner.Episode`, the object the runner uses, so roles,
ordering, system prompts and feedback turns are exactly what evaluation will show. Some episodes start
with a wrong answer (the task's random policy, or the expert answer with a digit changed); the env's
verifier then appends its feedback and the expert's correct revision follows, so the model learns the
revision format. Only the expert's turns are training targets: a wrong answer sits in the prompt of the
next turn and is never a target.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.env import TextEnv
from harness.runner import Episode, episode_seed
from harness.types import Completion, Message, TaskSpec


@dataclass(frozen=True)
class Example:
    """One training target: the conversation so far and the expert's answer to it."""

    messages: tuple[Message, ...]
    answer: str
    revision: bool  # the answer follows verifier feedback on a wrong answer


def wrong_answer(env: TextEnv, rng: random.Random) -> str:
    """A plausible but (usually) wrong answer: the random policy, else a corrupted expert answer."""
    try:
        return env.random_action(rng)
    except NotImplementedError:
        pass
    expert = env.expert_action()
    digits = [i for i, ch in enumerate(expert) if ch.isdigit()]
    if not digits:
        return expert[::-1] or "?"
    i = rng.choice(digits)
    return expert[:i] + str((int(expert[i]) + rng.randint(1, 9)) % 10) + expert[i + 1:]


def expert_episode(env: TextEnv, seed: int, rng: random.Random, n_wrong: int, budget: int) -> list[Example]:
    """Play one episode: ``n_wrong`` wrong answers (fewer if the answer budget or luck ends it), then the
    expert."""
    ep = Episode(0, seed, env)
    out: list[Example] = []
    wrong_left = n_wrong
    while True:
        if wrong_left > 0:
            answer, is_expert = wrong_answer(env, rng), False
            wrong_left -= 1
        else:
            answer, is_expert = env.expert_action(), True
        if is_expert:
            out.append(Example(tuple(ep.messages), answer, revision=len(ep.turns) > 0))
        before = len(ep.turns)
        over = ep.apply(Completion(answer))
        if over:
            return out
        if wrong_left > 0 and before + 2 >= budget:
            wrong_left = 0  # keep the last answer of the budget for the correct revision


def expert_stream(task: TaskSpec, split: str, *, seed: int, verify_iter: int | None, revision_frac: float,
                  max_wrong: int, dataset_size: int = 0, stream: str = "sft") -> Iterator[Example]:
    """Endless expert examples. Episode seeds come from a stream named apart from evaluation's, so
    training never replays the evaluation episodes. ``dataset_size`` > 0 cycles over a fixed set."""
    env = task.new_env(split, verify_iter)
    budget = verify_iter or task.default_verify_iter  # the answer budget, as the runner applies it
    rng = random.Random(f"{seed}:{stream}")
    cache: list[list[Example]] = []
    i = 0
    while True:
        if dataset_size and len(cache) == dataset_size:
            yield from cache[i % dataset_size]
            i += 1
            continue
        wrong = 0
        if budget > 1 and max_wrong > 0 and rng.random() < revision_frac:
            wrong = rng.randint(1, min(max_wrong, budget - 1))
        examples = expert_episode(env, episode_seed(task.name, f"{split}/{stream}", seed, i), rng, wrong, budget)
        i += 1
        if dataset_size:
            cache.append(examples)
            if len(cache) == dataset_size:
                i = 0
        yield from examples


# ------------------------------------------------------------------------ the paper's SFT records

_IMAGE_TOKEN = re.compile(r"<image>\n?")
_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant", "system": "system"}
DATA_SUFFIXES = (".json", ".jsonl")


class DataError(ValueError):
    """A data file or record that cannot be trained on; the message names the file and the record."""


def data_files(path: str | Path) -> list[Path]:
    p = Path(path).expanduser()
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and f.suffix in DATA_SUFFIXES)
        if not files:
            raise DataError(f"{p}: no {' or '.join(DATA_SUFFIXES)} files in this folder")
        return files
    if not p.is_file():
        raise DataError(f"{p}: no such data file or folder")
    return [p]


def _load(file: Path) -> Any:
    import datasets

    try:
        return datasets.load_dataset("json", data_files=str(file), split="train")
    except Exception as exc:  # malformed JSON, inconsistent record types, ...
        raise DataError(f"{file}: not a JSON / JSON Lines list of records ({type(exc).__name__}: {exc})") from None


def record_examples(rec: Mapping[str, Any], where: str, image_folder: Path) -> list[Example]:
    """One LLaVA-style record -> one example per assistant turn (the turns before it as context).

    ``conversations`` alternates ``{"from": "human", "value": ...}`` and ``{"from": "gpt", ...}``; each
    ``<image>`` placeholder in a human turn stands for the next of the record's ``image`` files, which are
    attached to that turn (images first, as the runner builds prompts)."""
    convs = rec.get("conversations")
    if not isinstance(convs, list) or not convs:
        raise DataError(f"{where}: 'conversations' must be a non-empty list of {{'from', 'value'}} turns")
    files = rec.get("image")
    files = [] if files is None else [files] if isinstance(files, str) else files
    if not isinstance(files, list) or not all(isinstance(f, str) for f in files):
        raise DataError(f"{where}: 'image' must be a file name or a list of file names")
    images = [_open_image(image_folder / f if not Path(f).is_absolute() else Path(f), where) for f in files]
    messages: list[Message] = []
    out: list[Example] = []
    for k, turn in enumerate(convs):
        if not isinstance(turn, Mapping) or not isinstance(turn.get("value"), str):
            raise DataError(f"{where}: conversations[{k}] needs a string 'value'")
        role = _ROLES.get(str(turn.get("from", "")).lower())
        if role is None:
            raise DataError(f"{where}: conversations[{k}] has from={turn.get('from')!r}; expected human or gpt")
        text = turn["value"]
        if role == "assistant":
            if not messages or messages[-1].role == "assistant":
                raise DataError(f"{where}: conversations[{k}] is an answer with no question before it")
            out.append(Example(tuple(messages), text, revision=any(m.role == "assistant" for m in messages)))
            messages.append(Message.make("assistant", text))
            continue
        n = len(_IMAGE_TOKEN.findall(text))
        if n > len(images):
            raise DataError(f"{where}: conversations[{k}] has {n} <image> placeholders but only {len(images)} "
                            "image files are left")
        mine, images = images[:n], images[n:]
        messages.append(Message.make(role, _IMAGE_TOKEN.sub("", text).strip() if n else text, mine))
    if images:
        raise DataError(f"{where}: {len(images)} image files have no <image> placeholder")
    if not out:
        raise DataError(f"{where}: no answer ('gpt' turn) to train on")
    return out


def _open_image(path: Path, where: str) -> Any:
    from PIL import Image

    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"{where}: image {str(path)!r} not found") from None
    except Exception as exc:  # truncated, not an image, decompression bomb
        raise DataError(f"{where}: image {str(path)!r} cannot be read ({type(exc).__name__}: {exc})") from None


def llava_records(path: str | Path, *, seed: int, image_folder: str | Path | None = None) -> Iterator[Example]:
    """Endless examples from the paper's SFT data (LLaVA-style records in JSON / JSON Lines files, read
    with the ``datasets`` library), epoch after epoch, each epoch in a fresh seeded order. Records are
    checked as they are read; a bad one stops training with the file and record index."""
    files = data_files(path)
    tables = [(f, _load(f)) for f in files]
    index = [(fi, i) for fi, (_, t) in enumerate(tables) for i in range(len(t))]
    if not index:
        raise DataError(f"{path}: no records")
    rng = random.Random(f"{seed}:sft-data")
    while True:
        order = index[:]
        rng.shuffle(order)
        for fi, i in order:
            file, table = tables[fi]
            folder = Path(image_folder).expanduser() if image_folder else file.parent
            yield from record_examples(table[i], f"{file} record {i}", folder)


__all__ = ["DataError", "Example", "data_files", "expert_episode", "expert_stream",
           "llava_records", "record_examples", "wrong_answer"]
