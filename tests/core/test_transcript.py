"""What the model saw, per turn: recorded compactly, rebuilt exactly, images re-rendered or saved once."""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from harness import store, transcript
from harness.runner import EvalConfig, Runner
from harness.types import Completion, GenParams, Request
from harness_tasks.generalpoints.plugin import harness_tasks as gp_tasks
from harness_tasks.virl.plugin import harness_tasks as virl_tasks

TASKS = {t.name: t for t in (*gp_tasks(), *virl_tasks())}


class Recording:
    """Answers like the oracle most of the time and at random otherwise, so episodes take several turns
    (feedback turns, V-IRL's re-prompts), and keeps every request exactly as the backend got it."""

    def __init__(self, wrong: float = 0.4) -> None:
        self.seen: dict[tuple[int, int], Request] = {}
        self.rng = random.Random(1)
        self.wrong = wrong

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        out = []
        for r in requests:
            self.seen[(r.episode_seed, r.turn)] = r
            wrong = r.random_answer is not None and self.rng.random() < self.wrong
            out.append(Completion(r.random_answer(self.rng) if wrong else r.expert()))
        return out

    def close(self) -> None:
        pass


def _run(tmp_path: Path, task: str, episodes: int, wrong: float = 0.4, **kw) -> tuple[Recording, list[dict], dict]:
    backend = Recording(wrong)
    cfg = EvalConfig(task=task, split="id", model="rec", backend="rec", episodes=episodes, batch_size=3, **kw)
    Runner(TASKS[task], backend, cfg, tmp_path / task).run()
    scan = store.scan_samples(tmp_path / task / "samples.jsonl")
    assert not scan.invalid and not scan.torn
    record = orjson.loads((tmp_path / task / "run.json").read_bytes())
    return backend, [r for _, r in sorted(scan.records.items())], record


@pytest.mark.parametrize("task", ["gp-l", "gp-vl", "virl-l", "virl-vl"])
def test_every_turn_rebuilds_the_conversation_the_backend_got(tmp_path: Path, task: str) -> None:
    backend, samples, record = _run(tmp_path, task, 4 if "virl" in task else 8)
    turns_seen = 0
    for s in samples:
        texts = transcript.turn_texts(s["turns"])
        replay = transcript.replay(TASKS[task], record, s)
        assert replay.diverged is None and replay.error is None
        for k in range(len(s["turns"])):
            sent = backend.seen[(s["episode_seed"], k)].messages
            rebuilt = transcript.conversation(s["turns"], k, texts)
            assert [m.role for m in rebuilt] == [m.role for m in sent]
            assert [m.text for m in rebuilt] == [m.text for m in sent]
            assert [[tuple(r["size"]) for r in m.images] for m in rebuilt] == [[im.size for im in m.images]
                                                                              for m in sent]
            # the replay draws exactly the pixels the model was sent
            shown = replay.observations[k]
            assert shown is not None and shown.text == sent[-1].text
            assert [transcript.digest(im) for im in shown.images] == [transcript.digest(im)
                                                                      for im in sent[-1].images]
            turns_seen += 1
    assert turns_seen > len(samples)  # several turns per episode: feedback turns and re-prompts were covered


def test_virl_reprompts_are_stored_linearly(tmp_path: Path) -> None:
    """V-IRL re-prompts every step with the whole history: stored whole, that is quadratic in the steps."""
    _, samples, _ = _run(tmp_path, "virl-l", 4, wrong=0.0)  # whole routes: many steps each
    for s in samples:
        full = sum(len(t) for t in transcript.turn_texts(s["turns"]) if t)
        stored = sum(len(t["shown"].get("text", "")) for t in s["turns"])
        assert len(s["turns"]) > 5 and stored < full / 3
        assert any(isinstance(t["shown"].get("from"), list) for t in s["turns"])


def test_save_images_stores_each_distinct_image_once(tmp_path: Path) -> None:
    _, samples, record = _run(tmp_path, "gp-vl", 6, save_images=True)
    assert record["save_images"] is True
    refs = [r for s in samples for t in s["turns"] for r in t["shown"].get("images", [])]
    assert len(refs) == 6 and all(store.is_digest(r["sha256"]) for r in refs)
    files = sorted((tmp_path / "gp-vl" / transcript.IMAGE_DIR).iterdir())
    assert [f.name for f in files] == sorted({f"{r['sha256']}.png" for r in refs})
    from PIL import Image

    for f in files:  # lossless: the saved file decodes to the very pixels that were hashed
        with Image.open(f) as im:
            assert transcript.digest(im.convert("RGB")) == f.name.removesuffix(".png")
    # a second store of the same image writes nothing new
    images = transcript.ImageStore(tmp_path / "gp-vl")
    with Image.open(files[0]) as im:
        rgb = im.convert("RGB")
    before = files[0].stat().st_mtime_ns
    assert images.save(rgb) == files[0].name.removesuffix(".png") and files[0].stat().st_mtime_ns == before


def test_without_save_images_nothing_is_hashed_or_written(tmp_path: Path) -> None:
    _, samples, _ = _run(tmp_path, "gp-vl", 3)
    refs = [r for s in samples for t in s["turns"] for r in t["shown"].get("images", [])]
    assert refs and all(set(r) == {"size", "mode"} for r in refs)
    assert not (tmp_path / "gp-vl" / transcript.IMAGE_DIR).exists()


def test_a_cut_answer_replays_to_the_recorded_verdict(tmp_path: Path) -> None:
    """GeneralPoints judges answers over its cap unread; the record keeps the cap and the length."""
    from tests.core.helpers import ScriptedBackend

    spec = TASKS["gp-l"]
    cfg = EvalConfig(task="gp-l", split="id", model="s", backend="s", episodes=2, batch_size=2)
    Runner(spec, ScriptedBackend("huge", size=spec.max_answer_chars + 5000), cfg, tmp_path / "r").run()
    record = orjson.loads((tmp_path / "r" / "run.json").read_bytes())
    for s in store.scan_samples(tmp_path / "r" / "samples.jsonl").records.values():
        assert s["turns"][0]["answer_truncated_from"] == spec.max_answer_chars + 5000
        assert transcript.replay(spec, record, s).diverged is None
        assert transcript.conversation(s["turns"], 1)[1].text.endswith("[... 5000 more characters cut]")


BAD_SHOWN = [
    ({"text": 3}, "'shown.text' must be text"),
    ({"text": "x", "images": [{"size": [0, 5], "mode": "RGB"}]}, "size"),
    ({"text": "x", "images": [{"size": [5, 5], "mode": "RGB", "sha256": "../../etc/passwd"}]}, "sha256"),
    ({"text": "x", "images": [{"size": [5, 5], "mode": "RGB", "sha256": "A" * 64}]}, "sha256"),
    ({"text": "x", "from": [0, 1, 1]}, "'shown.from'"),  # a delta of its own turn
    ({"from": "feedback"}, "first turn"),
    ({"text": "x", "new_context": "yes"}, "new_context"),
    ("text", "'shown' must be an object"),
]


@pytest.mark.parametrize(("shown", "needle"), BAD_SHOWN)
def test_malformed_shown_is_refused_naming_the_field(shown: object, needle: str) -> None:
    rec = {"index": 0, "status": "ok", "episode_seed": 1, "success": False, "reward": 0.0, "error": None,
           "turns": [{"answer": "a", "reward": 0.0, "feedback": "", "shown": shown}], "metrics": {}, "details": {},
           "tokens": {"prompt": 0, "completion": 0}}
    why = store.sample_problem(rec)
    assert why is not None and needle in why and "turns[0]" in why


def test_records_without_shown_stay_valid_and_rebuild_by_replay(tmp_path: Path) -> None:
    _, samples, record = _run(tmp_path, "gp-l", 3)
    for s in samples:
        old = {**s, "turns": [{k: v for k, v in t.items() if k != "shown"} for t in s["turns"]]}
        assert store.sample_problem(old) is None
        assert transcript.turn_texts(old["turns"]) == [None] * len(old["turns"])
        replay = transcript.replay(TASKS["gp-l"], record, old)
        assert [o.text for o in replay.observations] == transcript.turn_texts(s["turns"])


def test_a_changed_task_is_caught_by_the_replay(tmp_path: Path) -> None:
    _, samples, record = _run(tmp_path, "gp-l", 4)
    s = next(s for s in samples if len(s["turns"]) > 1)
    tampered = {**s, "turns": [{**s["turns"][0], "reward": 123.0}, *s["turns"][1:]]}
    assert transcript.replay(TASKS["gp-l"], record, tampered).diverged == 0
    gone = transcript.replay(TASKS["gp-l"], {**record, "task_args": {"no_such_arg": 1}}, s)
    assert gone.error and "no_such_arg" in gone.error
