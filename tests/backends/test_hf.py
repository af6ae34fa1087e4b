"""The hf backend: arguments, errors, chunking, sampling, and end-to-end runs through the real runner."""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from PIL import Image

from harness.env import TextEnv
from harness.plugins import load_registry
from harness.runner import EvalConfig, Runner
from harness.types import GenParams, Message, MetricSpec, Observation, Request, SplitSpec, TaskSpec
from harness_plugins.hf.backend import (
    CheckpointNotFoundError,
    HFBackend,
    TextOnlyModelError,
    create,
)
from harness_plugins.hf.tiny import make_tiny
from harness_plugins.images import fit_rgb


@pytest.fixture(scope="module")
def vlm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny("qwen2-vl", tmp_path_factory.mktemp("tiny") / "qwen2-vl")


@pytest.fixture(scope="module")
def vlm(vlm_dir: Path) -> HFBackend:
    return create({"pretrained": str(vlm_dir), "max_batch_size": 16, "dtype": "float32", "device": "cpu"})


@pytest.fixture(scope="module")
def text_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny("llama", tmp_path_factory.mktemp("tiny") / "llama")


def _req(i: int, image: bool = True, turn: int = 0) -> Request:
    ims = [Image.new("RGB", (64 + 8 * i, 64), (10 * i, 100, 200))] if image else []
    return Request((Message.make("user", f"Card {i}: what is its rank?", ims),), 7 * i + 1, turn)


# ----------------------------------------------------------------------------------------- errors


def test_missing_local_checkpoint_says_where_and_how(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(CheckpointNotFoundError) as err:
        create({"pretrained": str(missing)})
    msg = str(err.value)
    assert str(missing) in msg and "Hugging Face cache" in msg and "pretrained=/path/to/checkpoint" in msg


def test_missing_hub_id_names_cache_and_download(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(CheckpointNotFoundError) as err:
        create({"pretrained": "nobody-here/not-a-model", "cache_dir": str(tmp_path / "hfcache")})
    msg = str(err.value)
    assert "huggingface-cli download nobody-here/not-a-model" in msg
    assert str(tmp_path / "hfcache") in msg


def test_argument_errors(vlm_dir: Path) -> None:
    with pytest.raises(ValueError, match="needs pretrained"):
        create({})
    with pytest.raises(ValueError, match="unknown model args bogus"):
        create({"pretrained": str(vlm_dir), "bogus": 1})
    with pytest.raises(ValueError, match="dtype must be one of"):
        create({"pretrained": str(vlm_dir), "dtype": "float8"})


def test_text_only_model_rejects_images_clearly(text_dir: Path) -> None:
    backend = create({"pretrained": str(text_dir)})
    assert not backend.is_vision
    out = backend.generate([_req(1, image=False)], GenParams(max_tokens=4))
    assert out[0].completion_tokens >= 1
    with pytest.raises(TextOnlyModelError, match=r"text-only.*gp-l instead of gp-vl"):
        backend.generate([_req(1, image=False), _req(2, image=True)], GenParams(max_tokens=4))


def test_resize_caps_long_side_and_keeps_caller_image() -> None:
    big = Image.new("L", (3000, 1000))
    small = fit_rgb(big, 1024)
    assert small.size == (1024, 341) and small.mode == "RGB"
    assert big.size == (3000, 1000) and big.mode == "L"
    assert fit_rgb(Image.new("RGB", (50, 40)), 1024).size == (50, 40)


# ------------------------------------------------------------------------------------- generation


def test_chunks_of_max_batch_size_match_one_big_batch(vlm: HFBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    reqs = [_req(i, image=i % 3 != 0) for i in range(5)]
    params = GenParams(max_tokens=6)
    whole = vlm.generate(reqs, params)
    calls: list[int] = []
    real = vlm.model.generate

    def counting(**kw: Any) -> Any:
        calls.append(kw["input_ids"].shape[0])
        return real(**kw)

    monkeypatch.setattr(vlm, "max_batch_size", 2)
    monkeypatch.setattr(vlm.model, "generate", counting)
    chunked = vlm.generate(reqs, params)
    assert calls == [2, 2, 1]
    assert [c.text for c in chunked] == [c.text for c in whole]
    assert [c.prompt_tokens for c in chunked] == [c.prompt_tokens for c in whole]


def test_sampling_is_seeded_and_greedy_is_deterministic(vlm: HFBackend) -> None:
    reqs = [_req(i) for i in range(3)]
    hot = GenParams(temperature=1.0, max_tokens=12, seed=1)
    a, b = vlm.generate(reqs, hot), vlm.generate(reqs, hot)
    assert [c.text for c in a] == [c.text for c in b]
    other = vlm.generate(reqs, GenParams(temperature=1.0, max_tokens=12, seed=2))
    assert [c.text for c in other] != [c.text for c in a]
    cold = GenParams(max_tokens=12)
    assert [c.text for c in vlm.generate(reqs, cold)] == [c.text for c in vlm.generate(reqs, cold)]


def test_multi_turn_conversation_with_assistant_turns(vlm: HFBackend) -> None:
    im = Image.new("RGB", (56, 56), (0, 0, 255))
    msgs = (Message.make("system", "Be brief."), Message.make("user", "Which card?", [im]),
            Message.make("assistant", '{"cards": ["A"]}'), Message.make("user", "Wrong, try again."))
    out = vlm.generate([Request(msgs, 1, 1)], GenParams(max_tokens=5))[0]
    prompt = vlm._prompt(vlm._conversation(Request(msgs, 1, 1))[0])
    assert prompt.count("<|image_pad|>") == 1 and prompt.endswith("<|im_start|>assistant\n")
    assert out.prompt_tokens > 20 and 1 <= out.completion_tokens <= 5


# --------------------------------------------------------------------------------- runner, end to end


class _CardEnv(TextEnv):
    """A two-turn vision task: name the colour of a square; feedback after a wrong first answer."""

    def __init__(self, verify_iter: int = 2, **_: Any) -> None:
        self.verify_iter = verify_iter

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        self.rng = random.Random(seed)
        self.colour = self.rng.choice(["red", "green", "blue"])
        self.tries = 0
        rgb = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255)}[self.colour]
        return Observation("What colour is the square? One word.", (Image.new("RGB", (48, 48), rgb),),
                           new_context=True, system="You are a careful observer."), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self.tries += 1
        ok = self.colour in action.lower()
        done = ok or self.tries >= self.verify_iter
        info: dict[str, Any] = {"feedback": "" if ok else "Wrong."}
        if done:
            info["episode"] = {"success": ok, "metrics": {"tries": float(self.tries)}}
        return Observation("Wrong. Look again."), float(ok), done, False, info

    def expert_action(self) -> str:
        return self.colour

    def random_action(self, rng: random.Random) -> str:
        return rng.choice(["red", "green", "blue"])


_TASK = TaskSpec("colour-vl", "toy colour naming", "vision", (SplitSpec("id", "all colours"),),
                 lambda split, verify_iter=2, **kw: _CardEnv(verify_iter, **kw), default_verify_iter=2,
                 metrics=(MetricSpec("tries", "answers used"),))


def test_runner_end_to_end_with_tiny_vlm(vlm: HFBackend, tmp_path: Path) -> None:
    cfg = EvalConfig(task="colour-vl", split="id", model="tiny-qwen2-vl", backend="hf",
                     model_args={"pretrained": "tiny"}, gen=GenParams(max_tokens=6), episodes=5, batch_size=4)
    result = Runner(_TASK, vlm, cfg, tmp_path / "run").run()
    rec = result.record
    assert rec["status"] == "complete" and rec["episodes_ok"] == 5
    assert rec["tokens"]["prompt"] > 5 * 20 and rec["tokens"]["completion"] >= 5
    assert result.metrics["tries"].n == 5


def test_local_directory_resolves_to_hf(vlm_dir: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = load_registry()
    spec, args, how = reg.resolve_model(str(vlm_dir))
    assert spec.name == "hf" and args == {"pretrained": str(vlm_dir)} and "hf" in how


def test_make_tiny_cli(tmp_path: Path) -> None:
    from harness.cli import main

    with pytest.raises(SystemExit) as exit_:
        main(["models", "make-tiny", "llava", str(tmp_path / "llava")])
    assert exit_.value.code in (0, None)
    assert (tmp_path / "llava" / "model.safetensors").is_file()


def test_every_registered_task_runs_two_episodes_with_a_tiny_vlm(vlm: HFBackend, tmp_path: Path) -> None:
    """Whatever tasks are installed (gp-l, gp-vl, virl-l, virl-vl, third-party ones), a tiny VLM plays them."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reg = load_registry()
    if not reg.tasks:
        pytest.skip("no task plugins registered yet")
    ran = []
    for name, task in sorted(reg.tasks.items()):
        split = task.splits[0].name
        cfg = EvalConfig(task=name, split=split, model="tiny-qwen2-vl", backend="hf", gen=GenParams(max_tokens=8),
                         episodes=2, batch_size=2, verify_iter=2)
        try:
            result = Runner(task, vlm, cfg, tmp_path / name).run()
        except FileNotFoundError as exc:  # a task that needs a data file this machine doesn't have
            warnings.warn(f"task {name} skipped: {exc}", stacklevel=1)
            continue
        rec = result.record
        assert rec["episodes_ok"] + rec["episodes_failed"] == 2, name
        assert rec["episodes_ok"] == 2, (name, rec["failure_reasons"])
        assert rec["tokens"]["prompt"] > 0 and rec["tokens"]["completion"] > 0, name
        ran.append(name)
    assert ran, "no registered task could run"


# ------------------------------------------------------------------------------------- chat templates

LOOPS = "{% for i in range(99999) %}{% for j in range(99999) %}{% for k in range(99999) %}{% endfor %}" \
        "{% endfor %}{% endfor %}{{ messages[0]['content'] }}"
GROWS = "{% for i in range(99999) %}{% for j in range(99999) %}{{ 'spam ' * 1000 }}{% endfor %}{% endfor %}"


@pytest.mark.parametrize(("template", "needle"), [(LOOPS, "steps"), (GROWS, "characters")])
def test_template_rendering_is_bounded(template: str, needle: str) -> None:
    from transformers.utils.chat_template_utils import render_jinja_template

    from harness_plugins.hf.templates import TemplateBudgetError, render_bounded

    msgs = [{"role": "user", "content": "hi"}]
    with pytest.raises(TemplateBudgetError, match=needle):
        render_bounded(lambda: render_jinja_template([msgs], chat_template=template))
    plain = "{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    assert render_bounded(lambda: render_jinja_template([msgs], chat_template=plain))[0] == ["user: hi\n"]


def test_hostile_template_fails_its_episodes_not_the_machine(text_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    hostile = tmp_path / "hostile"
    shutil.copytree(text_dir, hostile)
    cfg_path = hostile / "tokenizer_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["chat_template"] = LOOPS
    cfg_path.write_text(json.dumps(cfg))
    (hostile / "chat_template.jinja").unlink(missing_ok=True)
    be = create({"pretrained": str(hostile), "device": "cpu"})
    reg = load_registry(["harness_toy.plugin"], entry_points=False)
    cfg_ = EvalConfig(task="toy-add", split="id", model="hostile", backend="hf", episodes=3, batch_size=3,
                      gen=GenParams(max_tokens=4))
    res = Runner(reg.task("toy-add"), be, cfg_, tmp_path / "run").run()
    be.close()
    assert res.record["episodes_failed"] == 3
    (reason,) = res.record["failure_reasons"]
    assert "chat template" in reason and "steps" in reason


def test_library_noise_only_with_verbose(text_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    """transformers' loading bars stay out of an eval's normal output; --verbose shows them."""
    from transformers.utils import logging as tf_logging

    from harness.cli import main

    for key in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY", "DATASETS_VERBOSITY",
                "TRANSFORMERS_NO_ADVISORY_WARNINGS"):
        monkeypatch.delenv(key, raising=False)  # restored after the test, as quieting sets them
    tf_logging.enable_progress_bar()  # the library's default, whatever an earlier test did
    verbosity = tf_logging.get_verbosity()

    def run(*extra: str) -> str:
        try:
            main(["eval", "--model", str(text_dir), "--task", "gp-l", "-n", "1", "--max-tokens", "4",
                  "--verify-iter", "1", "-o", str(tmp_path / str(len(extra))), *extra])
        except SystemExit as exc:
            assert not exc.code
        return capsys.readouterr().err

    try:
        assert "Loading weights" in run("--verbose")
        quiet = run()
        assert "Loading weights" not in quiet and "it/s" not in quiet, quiet
    finally:
        tf_logging.enable_progress_bar()
        tf_logging.set_verbosity(verbosity)


def test_run_ids_come_from_the_absolute_normalised_path(text_dir: Path, tmp_path: Path, capsys, monkeypatch) -> None:
    import json

    from harness.cli import main

    sub = text_dir.parent / "sub"
    sub.mkdir(exist_ok=True)
    monkeypatch.chdir(sub)

    def run(model: str) -> int:
        try:
            main(["eval", "--model", model, "--task", "gp-l", "-n", "1", "--max-tokens", "4", "--verify-iter", "1",
                  "-o", str(tmp_path), "--json"])
        except SystemExit as exc:
            return int(exc.code or 0)
        return 0

    assert run("../llama") == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"]["name"] == str(text_dir) and record["model"]["args"]["pretrained"] == str(text_dir)
    (run_dir,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    assert ".." not in run_dir.name and run_dir.name.startswith(f"gp-l_id_{text_dir.parent.name}-llama_")
    assert run(str(text_dir)) == 2  # the same model typed another way is the same run: refused without --resume
    assert "already exists" in capsys.readouterr().err
