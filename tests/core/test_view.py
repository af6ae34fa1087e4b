"""``harness view`` pages and ``harness show-obs``, without a browser (the browser test is beside this one)."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
from collections.abc import Sequence
from pathlib import Path

import orjson
import pytest

from harness import transcript
from harness.runner import EvalConfig, Runner, episode_seed
from harness.types import Completion, GenParams, Request
from harness.view import build, load_run, task_resolver
from tests.core.test_transcript import TASKS
from tests.leaderboard.helpers import run_cli as _cli

HOSTILE = "</pre><script>alert(1)</script><img src=x onerror=alert(2)>\u202eevil"


class Hostile:
    """Answers with markup on even episodes' first turns, then like the oracle."""

    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        return [Completion(HOSTILE if r.turn == 0 and r.episode_seed % 2 == 0 else r.expert()) for r in requests]

    def close(self) -> None:
        pass


def _run(root: Path, task: str = "gp-vl", n: int = 6, **kw) -> Path:
    cfg = EvalConfig(task=task, split="id", model="hostile<b>", backend="x", episodes=n, batch_size=4, **kw)
    run_dir = root / f"{task}-run"
    Runner(TASKS[task], Hostile(), cfg, run_dir).run()
    return run_dir


class _Registry:
    def task(self, name: str):
        return TASKS[name]

    def provenance(self, name: str) -> dict:
        return {}


def _page(run_dir: Path, **kw) -> str:
    return build([load_run(run_dir)], task_resolver(_Registry()), limit=kw.pop("limit", 100), **kw)


def test_page_escapes_everything_from_the_run(tmp_path: Path) -> None:
    page = _page(_run(tmp_path))
    assert "<script>alert" not in page and "<img src=x" not in page and "\u202e" not in page
    assert "&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;" in page and "\\u202eevil" in page
    assert "hostile&lt;b&gt;" in page
    assert page.count("<script>") == 1  # the page's own, which the CSP pins by its hash
    assert re.search(r"script-src 'sha256-[A-Za-z0-9+/=]+'", page)


def test_images_come_from_saved_files_else_from_the_seed(tmp_path: Path) -> None:
    saved = _page(_run(tmp_path / "a", save_images=True))
    assert saved.count("saved with the run (digest checked)") == 6 and "data:image/png;base64," in saved
    drawn = _page(_run(tmp_path / "b"))
    assert drawn.count("re-rendered from the episode seed") == 6 and "saved with" not in drawn
    # a saved file that was tampered with is not shown as what the model saw: it is drawn again and checked
    run_dir = tmp_path / "a" / "gp-vl-run"
    victim = next((run_dir / transcript.IMAGE_DIR).iterdir())
    from PIL import Image

    Image.new("RGB", (1200, 1200), "red").save(victim)
    page = _page(run_dir)
    assert page.count("identical to what the model saw") == 1
    assert "does not match the recorded digest" in page


def test_old_records_are_rebuilt_by_replay(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, task="gp-l", n=4)
    lines = (run_dir / "samples.jsonl").read_bytes().splitlines()
    old = []
    for line in lines:
        rec = orjson.loads(line)
        rec["turns"] = [{k: v for k, v in t.items() if k != "shown"} for t in rec["turns"]]
        old.append(orjson.dumps(rec))
    (run_dir / "samples.jsonl").write_bytes(b"\n".join(old) + b"\n")
    page = _page(run_dir)
    assert page.count("rebuilt by replaying the episode") >= 4 and "[Task Description]" in page


def test_limit_and_filters_markup(tmp_path: Path) -> None:
    page = _page(_run(tmp_path), limit=2)
    assert page.count("<li class=episode") == 2 and "the first 2 of 6 recorded episodes" in page
    assert "data-outcome='solved'" in page and "<option value='gp-vl/id'>" in page


def test_view_command_writes_the_page_and_resolves_run_ids(tmp_path: Path, capsys) -> None:
    code, _, err = _cli(capsys, "eval", "-m", "random", "-t", "gp-l", "-n", "3", "-o", str(tmp_path))
    assert code == 0, err
    run_dir = next(tmp_path.glob("gp-l_id_random_*"))
    code, out, err = _cli(capsys, "view", run_dir.name[:12], "--runs", str(tmp_path))
    assert code == 0, err
    assert (run_dir / "view.html").is_file() and "3 episodes" in out
    code, _, err = _cli(capsys, "view", "nope", "--runs", str(tmp_path))
    assert code == 2 and "no run 'nope'" in err
    (run_dir / "run.json").write_text('{"run_id": 5}')
    code, _, err = _cli(capsys, "view", str(run_dir))
    assert code == 2 and "run.json" in err


def test_serve_answers_on_localhost_only_with_the_page(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, task="gp-l", n=2)
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "view", str(run_dir), "--serve", "--out",
                             str(tmp_path / "p.html")], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in proc.stdout:  # wait for the state (the URL printed), never for a time
            m = re.search(r"serving (http://127\.0\.0\.1:\d+/)", line)
            if m:
                url = m.group(1)
                break
        assert url, proc.stderr.read()
        body = urllib.request.urlopen(url, timeout=30).read().decode()
        assert body == (tmp_path / "p.html").read_text()
        with pytest.raises(urllib.error.HTTPError):
            urllib.request.urlopen(url + "run.json", timeout=30)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_show_obs_writes_what_the_runner_shows(tmp_path: Path, capsys) -> None:
    out_png = tmp_path / "o.png"
    code, out, err = _cli(capsys, "show-obs", "--task", "gp-vl", "--split", "ood-visual", "--index", "3",
                          "--seed", "7", "--out", str(out_png))
    assert code == 0, err
    env = TASKS["gp-vl"].new_env("ood-visual")
    obs, _ = env.reset(seed=episode_seed("gp-vl", "ood-visual", 7, 3), options={"episode_index": 3})
    from PIL import Image

    with Image.open(out_png) as im:
        assert transcript.digest(im.convert("RGB")) == transcript.digest(obs.images[0])
    assert out.strip() == obs.text.strip() and "1200x1200" in err
    # the same episode as a run plays it
    cfg = EvalConfig(task="gp-vl", split="ood-visual", model="m", backend="b", episodes=4, seed=7)
    Runner(TASKS["gp-vl"], Hostile(), cfg, tmp_path / "r").run()
    recs = [orjson.loads(line) for line in (tmp_path / "r" / "samples.jsonl").read_bytes().splitlines()]
    rec = next(r for r in recs if r["index"] == 3)
    assert transcript.turn_texts(rec["turns"])[0] == obs.text
    code, out, _ = _cli(capsys, "show-obs", "-t", "gp-l", "-i", "0", "--json")
    assert code == 0 and orjson.loads(out)["images"] == [] and "Cards:" in orjson.loads(out)["text"]
    code, _, err = _cli(capsys, "show-obs", "-t", "gp-l", "-s", "ood-visual")
    assert code == 2 and "valid splits" in err


VALUES = [None, 1, -1, 2**70, 1.5, "x", "<b>", [], {}, [1, 2], {"a": 1}, True, "\ud800", "../x", "a" * 64,
          [5, 5], {"size": [9, 9], "mode": "RGB", "sha256": "0" * 64}]


def _mutate(obj: object, rng) -> object:
    """``obj`` with one value somewhere inside replaced by a hostile one (or its subtree mutated further)."""
    if isinstance(obj, dict) and obj and rng.random() < 0.8:
        key = rng.choice(list(obj))
        obj[key] = _mutate(obj[key], rng) if rng.random() < 0.6 else rng.choice(VALUES)
    elif isinstance(obj, list) and obj and rng.random() < 0.8:
        i = rng.randrange(len(obj))
        obj[i] = _mutate(obj[i], rng) if rng.random() < 0.6 else rng.choice(VALUES)
    return obj


def test_damaged_records_never_break_the_page(tmp_path: Path) -> None:
    """Records are untrusted: a damaged line is left out (it fails validation), a damaged run.json is an
    error naming the file, and whatever passes validation is shown, escaped, without an exception."""
    import random

    from harness import store
    from harness.view import ViewError

    good = _run(tmp_path / "good", n=3, save_images=True, task_args={"image_size": 200})  # small: fast
    lines = [orjson.loads(x) for x in (good / "samples.jsonl").read_bytes().splitlines()]
    record = orjson.loads((good / "run.json").read_bytes())
    rng = random.Random(0)
    shown = 0
    for trial in range(80):
        d = tmp_path / f"f{trial}"
        d.mkdir()
        (d / transcript.IMAGE_DIR).symlink_to(good / transcript.IMAGE_DIR)  # saved images, some refs now wrong
        samples = [_mutate(orjson.loads(orjson.dumps(s)), rng) for s in lines]
        rec = _mutate(orjson.loads(orjson.dumps(record)), rng) if trial % 3 == 0 else record
        (d / "samples.jsonl").write_bytes(b"\n".join(store.dumps(s) for s in samples) + b"\n")
        (d / "run.json").write_bytes(store.dumps(rec))
        try:
            data = load_run(d)
        except ViewError as exc:
            assert "run.json" in str(exc)
            continue
        page = build([data], task_resolver(_Registry()), limit=10)
        assert "<script>alert" not in page and "<b>" not in page.split("<style>")[0]
        shown += len(data.samples)
    assert shown > 80  # most damaged runs still had episodes worth showing


def test_a_multiprocess_run_still_going_shows_its_part_files(tmp_path: Path) -> None:
    run_dir = _run(tmp_path, task="gp-l", n=4)
    lines = (run_dir / "samples.jsonl").read_bytes().splitlines()
    (run_dir / "samples.jsonl").write_bytes(b"\n".join(lines[:2]) + b"\n")
    (run_dir / "samples.part-1.jsonl").write_bytes(b"\n".join(lines[2:]) + b"\n{torn")
    data = load_run(run_dir)
    assert sorted(s["index"] for s in data.samples) == [0, 1, 2, 3] and data.skipped_lines == 1
