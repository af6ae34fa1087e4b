"""The openai backend against a real, scriptable HTTP server on 127.0.0.1 (tests/backends/fault_server.py)."""

from __future__ import annotations

import asyncio
import base64
import io
import itertools
import logging
import random
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

pytest.importorskip("openai")
pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from PIL import Image

from harness.env import TextEnv
from harness.plugins import load_registry
from harness.runner import EvalConfig, Runner, episode_seed
from harness.types import (
    Completion,
    GenParams,
    Message,
    MetricSpec,
    Observation,
    Request,
    SplitSpec,
    TaskSpec,
)
from harness_plugins.openai_backend.backend import OpenAIBackend, OpenAIConfig, make_backend, scrub
from harness_plugins.openai_backend.messages import to_chat_messages
from tests.backends.fault_server import FaultState, ServerThread, fault_server

pytestmark = pytest.mark.timeout(60)

KEY_ENV = "HARNESS_TEST_OPENAI_KEY"
KEY = "sk-test-" + secrets.token_hex(16)


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerThread, FaultState]]:
    with fault_server() as (srv, state):
        yield srv, state


@pytest.fixture
def fault(server: tuple[ServerThread, FaultState], monkeypatch: pytest.MonkeyPatch) -> FaultState:
    monkeypatch.setenv(KEY_ENV, KEY)
    state = server[1]
    state.reset()
    return state


@pytest.fixture
def url(server: tuple[ServerThread, FaultState]) -> str:
    return server[0].base_url


def backend(url: str, **args: Any) -> OpenAIBackend:
    base = {"model": "fault-model", "base_url": url, "api_key_env": KEY_ENV, "backoff_base": 0.01,
            "max_retries": 2, "timeout": 5}
    return make_backend({**base, **args})


def ask(text: str = "What is 2 + 3?", images: tuple[Image.Image, ...] = ()) -> Request:
    return Request((Message.make("user", text, images),), episode_seed=1, turn=0)


def one(be: OpenAIBackend, request: Request | None = None, params: GenParams | None = None) -> Completion:
    return be.generate([request or ask()], params or GenParams())[0]


# ------------------------------------------------------------------------------------------ config


def test_model_args_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ValueError, match="model=NAME"):
        OpenAIConfig.from_args({"base_url": "http://127.0.0.1:1/v1"})
    with pytest.raises(ValueError, match="environment only"):
        OpenAIConfig.from_args({"model": "m", "api_key": "sk-abc"})
    with pytest.raises(ValueError, match=r"unknown openai model argument.*'max_conections'"):
        OpenAIConfig.from_args({"model": "m", "max_conections": 3})
    with pytest.raises(ValueError, match="extra_body must be a JSON object"):
        OpenAIConfig.from_args({"model": "m", "extra_body": "{nope"})
    with pytest.raises(ValueError, match="max_connections must be >= 1"):
        OpenAIConfig.from_args({"model": "m", "max_connections": 0})
    cfg = OpenAIConfig.from_args({"model": "m", "extra_body": '{"top_k": 5}', "image_format": "jpg"})
    assert (cfg.max_connections, cfg.max_retries, cfg.api_key_env, cfg.base_url) == (16, 4, "OPENAI_API_KEY", None)
    assert cfg.extra_body == {"top_k": 5} and cfg.image_format == "jpeg"
    # No key and no base URL: a clear error naming the variable, not a crash at the first request.
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        cfg.api_key()
    # A local server needs no key; the base URL may come from the environment.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    cfg = OpenAIConfig.from_args({"model": "m"})
    assert cfg.base_url == "http://127.0.0.1:9/v1" and cfg.api_key() == "EMPTY"


def test_registered_as_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HARNESS_DISABLE_ENTRYPOINTS", "1")
    spec = load_registry(["harness_plugins.openai_backend.plugin"]).backend("openai")
    assert spec.extra == "openai"
    with pytest.raises(ValueError, match="model"):
        spec.factory({})


def test_scrub_masks_keys() -> None:
    text = f"Incorrect API key provided: {KEY}. Authorization: Bearer {KEY} sk-live-abcdef123456"
    out = scrub(text, [KEY])
    assert KEY not in out and "abcdef123456" not in out and "Bearer ***" in out


# ------------------------------------------------------------------------------------ happy path


def test_answer_usage_params_and_auth(fault: FaultState, url: str) -> None:
    be = backend(url, extra_body={"top_k": 7}, max_tokens_field="max_completion_tokens")
    fault.push({"kind": "ok", "text": "hello", "usage": (123, 45)})
    comp = one(be, params=GenParams(temperature=0.7, max_tokens=33, top_p=0.9, seed=5))
    be.close()
    assert comp == Completion("hello", prompt_tokens=123, completion_tokens=45)
    [req] = fault.requests()
    body = req["body"]
    assert req["authorization"] == f"Bearer {KEY}"
    assert body["model"] == "fault-model" and body["messages"] == [{"role": "user", "content": "What is 2 + 3?"}]
    assert (body["temperature"], body["top_p"], body["max_completion_tokens"], body["seed"]) == (0.7, 0.9, 33, 5)
    assert body["top_k"] == 7 and "max_tokens" not in body


def test_generate_batch_keeps_order_and_limits_concurrency(fault: FaultState, url: str) -> None:
    be = backend(url, max_connections=2)
    fault.push(*[{"kind": "slow", "delay": 0.15}] * 6)
    reqs = [ask(f"What is {i} + 1?") for i in range(6)]
    t0 = time.monotonic()
    out = be.generate(reqs, GenParams())
    elapsed = time.monotonic() - t0
    assert [c.text for c in out] == [str(i + 1) for i in range(6)]
    assert fault.max_in_flight == 2
    assert elapsed >= 0.4  # 3 waves of 0.15 s
    assert be.generate([], GenParams()) == []
    # A second event loop (the runner starts one per run) gets its own client and still works.
    assert asyncio.run(be.agenerate(ask(), GenParams())).text == "5"
    be.close()


def test_images_arrive_as_data_urls(fault: FaultState, url: str) -> None:
    be = backend(url, image_detail="low")
    img = Image.new("RGB", (64, 48), (0, 128, 0))
    assert one(be, ask("What is 1 + 1?", (img,))).text == "2"
    be.close()
    be = backend(url, image_format="jpeg")
    one(be, ask("Describe.", (img.convert("RGBA"),)))
    be.close()
    png_req, jpeg_req = fault.requests()
    [msg] = png_req["body"]["messages"]
    assert [p["type"] for p in msg["content"]] == ["image_url", "text"]
    part = msg["content"][0]["image_url"]
    assert part["detail"] == "low" and part["url"].startswith("data:image/png;base64,")
    decoded = Image.open(io.BytesIO(base64.b64decode(part["url"].split(",", 1)[1])))
    assert decoded.format == "PNG" and decoded.size == (64, 48)
    jurl = jpeg_req["body"]["messages"][0]["content"][0]["image_url"]["url"]
    assert jurl.startswith("data:image/jpeg;base64,")
    assert Image.open(io.BytesIO(base64.b64decode(jurl.split(",", 1)[1]))).size == (64, 48)


def test_message_conversion_keeps_roles_and_text_only_strings() -> None:
    msgs = (Message.make("system", "be brief"), Message.make("user", "hi"), Message.make("assistant", "yo"))
    assert to_chat_messages(msgs) == [{"role": "system", "content": "be brief"},
                                      {"role": "user", "content": "hi"},
                                      {"role": "assistant", "content": "yo"}]


# ------------------------------------------------------------------------------------------ faults


@pytest.mark.parametrize("action", [
    {"kind": "status", "code": 500},
    {"kind": "status", "code": 503},
    {"kind": "status", "code": 429},
    {"kind": "reset"},
    {"kind": "garbage", "body": "<html>502 Bad Gateway</html>"},
    {"kind": "garbage", "body": '{"choices": [', "content_type": "application/json"},
    {"kind": "json", "body": {"object": "chat.completion"}},
], ids=["500", "503", "429", "reset", "html", "truncated-json", "no-choices"])
def test_transient_fault_is_retried(fault: FaultState, url: str, action: dict[str, Any]) -> None:
    be = backend(url)
    fault.push(action, {"kind": "ok", "text": "recovered"})
    comp = one(be)
    be.close()
    assert comp.error is None and comp.text == "recovered"
    assert len(fault.requests()) == 2


@pytest.mark.parametrize(("action", "reason"), [
    ({"kind": "status", "code": 500}, "HTTP 500 after 3 attempts"),
    ({"kind": "reset"}, "connection error after 3 attempts: ReadError"),
    ({"kind": "garbage"}, "malformed response after 3 attempts: body is not JSON"),
    ({"kind": "json", "body": {"error": {"message": "overloaded"}}},
     "malformed response after 3 attempts: no choices (error: overloaded)"),
], ids=["500", "reset", "garbage", "error-body"])
def test_persistent_fault_becomes_error_completion(fault: FaultState, url: str, action: dict[str, Any],
                                                   reason: str) -> None:
    be = backend(url, max_retries=2)
    fault.push(*[action] * 5)
    comp = one(be)
    be.close()
    assert comp.text == "" and comp.error is not None and comp.error.startswith(reason)
    assert len(fault.requests()) == 3  # 1 + max_retries, never more


def test_backoff_is_exponential_and_bounded(fault: FaultState, url: str) -> None:
    be = backend(url, max_retries=3, backoff_base=0.08, backoff_max=0.2)
    fault.push(*[{"kind": "status", "code": 502}] * 4)
    assert one(be).error == "HTTP 502 after 4 attempts"
    be.close()
    t = [r["t"] for r in fault.requests()]
    gaps = [b - a for a, b in itertools.pairwise(t)]
    # Jitter keeps each wait within [0.5, 1] x min(backoff_max, base * 2**k).
    for gap, nominal in zip(gaps, (0.08, 0.16, 0.2), strict=True):
        assert 0.5 * nominal - 0.01 <= gap <= nominal + 0.25, gaps
    rng_backend = OpenAIBackend(OpenAIConfig.from_args({"model": "m", "base_url": url, "backoff_base": 1,
                                                        "backoff_max": 10}), rng=random.Random(0))
    assert all(0.5 * min(10, 2 ** (k - 1)) <= rng_backend.backoff(k) <= min(10, 2 ** (k - 1))
               for k in range(1, 8))
    rng_backend.close()


def test_retry_after_is_honoured_and_capped(fault: FaultState, url: str) -> None:
    be = backend(url, backoff_base=0.001, retry_after_max=0.5)
    fault.push({"kind": "status", "code": 429, "retry_after": 0.3}, {"kind": "ok"},
               {"kind": "status", "code": 429, "retry_after": 3600}, {"kind": "ok"})
    assert one(be).text == "5"
    t0 = time.monotonic()
    assert one(be).text == "5"
    capped = time.monotonic() - t0
    be.close()
    t = [r["t"] for r in fault.requests()]
    assert t[1] - t[0] >= 0.29  # the server asked for 0.3 s: the tiny backoff base is not used
    assert 0.45 <= capped < 2.0  # an hour's Retry-After is capped at retry_after_max


@pytest.mark.parametrize("code", [400, 401, 404, 422])
def test_client_errors_are_not_retried(fault: FaultState, url: str, code: int) -> None:
    be = backend(url)
    fault.push({"kind": "status", "code": code, "body": {"error": {"message": f"nope {code}"}}})
    comp = one(be)
    be.close()
    assert comp.error == f"HTTP {code}: nope {code}"
    assert len(fault.requests()) == 1


def test_null_content_is_an_error_without_retry(fault: FaultState, url: str) -> None:
    be = backend(url)
    fault.push({"kind": "json", "body": {"choices": [{"index": 0, "finish_reason": "content_filter",
                                                      "message": {"role": "assistant", "content": None}}]}},
               {"kind": "json", "body": {"choices": [{"message": {"content": None, "refusal": "I can't"}}]}},
               {"kind": "json", "body": {"choices": [{"message": {"content": [{"type": "text", "text": "a"},
                                                                              {"type": "text", "text": "b"}]}}],
                                         "usage": None}})
    first, second, third = (one(be) for _ in range(3))
    be.close()
    assert first.error == "no text in response (finish_reason=content_filter)"
    assert second.error == "no text in response (refusal: I can't)"
    assert third == Completion("ab")  # content parts are joined; missing usage counts 0
    assert len(fault.requests()) == 3


def test_timeout_is_retried_then_reported(fault: FaultState, url: str) -> None:
    be = backend(url, timeout=0.2, max_retries=1)
    fault.push({"kind": "slow", "delay": 0.6}, {"kind": "slow", "delay": 0.6})
    t0 = time.monotonic()
    comp = one(be)
    elapsed = time.monotonic() - t0
    be.close()
    assert comp.error == "timeout (0.2s) after 2 attempts"
    assert elapsed < 1.5 and len(fault.requests()) == 2


def test_key_never_in_errors_or_logs(fault: FaultState, url: str, caplog: pytest.LogCaptureFixture) -> None:
    # Real APIs echo (part of) a bad key back; the server here echoes the whole Authorization header.
    be = backend(url)
    fault.push({"kind": "status", "code": 401,
                "body": {"error": {"message": f"Incorrect API key provided: {KEY} (Bearer {KEY})"}}},
               *[{"kind": "status", "code": 500, "body": {"error": {"message": KEY}}}] * 3)
    with caplog.at_level(logging.DEBUG):
        errors = [one(be).error, one(be).error]
    be.close()
    assert errors[0] is not None and errors[0].startswith("HTTP 401: Incorrect API key provided: ***")
    assert errors[1] == "HTTP 500 after 3 attempts"
    assert all(KEY not in (e or "") for e in errors)
    assert KEY not in caplog.text and "HTTP 401" in caplog.text


def test_bad_request_content_never_raises(fault: FaultState, url: str) -> None:
    be = backend(url)
    bad = Request((Message.make("assistant", "x", (Image.new("RGB", (4, 4)),)),), 1, 0)
    comp = one(be, bad)
    be.close()
    assert comp.error is not None and "images are only supported in user messages" in comp.error
    assert fault.requests() == []


# ------------------------------------------------------------------------- end to end, via Runner


def tag_of(seed: int) -> str:
    return ("[flaky]", "[hiccup]", "[careless]", "")[seed % 4]


class SumEnv(TextEnv):
    """A sum to compute; the prompt carries a tag that tells the fault server how to behave."""

    def __init__(self, split: str, verify_iter: int = 2, **_: Any) -> None:
        self.verify_iter = verify_iter
        self.a = self.b = self.answers = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        rng = random.Random(seed)
        self.a, self.b, self.answers = rng.randint(0, 99), rng.randint(0, 99), 0
        return Observation(f"{tag_of(seed or 0)} What is {self.a} + {self.b}?", new_context=True), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self.answers += 1
        ok = action.strip() == str(self.a + self.b)
        done = ok or self.answers >= self.verify_iter
        info: dict[str, Any] = {"feedback": "" if ok else "Wrong sum, try again."}
        if done:
            info["episode"] = {"success": ok, "metrics": {"first_try": ok and self.answers == 1}}
        return Observation(info["feedback"]), 1.0 if ok else -1.0, done, False, info

    def expert_action(self) -> str:
        return str(self.a + self.b)

    def random_action(self, rng: random.Random) -> str:
        return str(rng.randint(0, 198))


SUM_TASK = TaskSpec(name="sum", description="add two numbers", modality="text",
                    splits=(SplitSpec("id", "two-digit sums"),), make_env=SumEnv, default_verify_iter=2,
                    metrics=(MetricSpec("first_try", "right on the first answer", "rate"),))


def test_runner_end_to_end_with_faults_and_resume(fault: FaultState, url: str, tmp_path: Path) -> None:
    episodes = 16
    seeds = [episode_seed("sum", "id", 0, i) for i in range(episodes)]
    flaky = {i for i, s in enumerate(seeds) if tag_of(s) == "[flaky]"}
    careless = {i for i, s in enumerate(seeds) if tag_of(s) == "[careless]"}
    assert flaky and careless and len(flaky) < episodes
    args = {"model": "fault-model", "base_url": url, "api_key_env": KEY_ENV, "max_retries": 1,
            "backoff_base": 0.005, "max_connections": 4}
    cfg = EvalConfig(task="sum", split="id", model="fault-model", backend="openai", model_args=args,
                     episodes=episodes, max_connections=4)
    run_dir = tmp_path / "run"

    fault.flaky = True
    be = make_backend(args)
    first = Runner(SUM_TASK, be, cfg, run_dir).run()
    be.close()
    recs = [orjson.loads(line) for line in (run_dir / "samples.jsonl").read_bytes().splitlines()]
    assert sorted(r["index"] for r in recs) == list(range(episodes))  # nothing lost
    failed = {r["index"] for r in recs if r["status"] == "error"}
    assert failed == flaky
    for r in recs:
        if r["status"] == "error":
            assert r["error"].startswith("backend: ") and "after 2 attempts" in r["error"]
        else:
            assert r["success"] and r["tokens"]["prompt"] > 0
            assert len(r["turns"]) == (2 if r["index"] in careless else 1)
    assert first.record["status"] == "failed" and first.record["episodes_failed"] == len(flaky)
    # A [hiccup] episode's first request failed and the backend's retry saved it within the run.
    hiccup_first_try = [r for r in fault.requests() if r["body"]["messages"][0]["content"].startswith("[hiccup]")
                        and len(r["body"]["messages"]) == 1]
    hiccups = sum(tag_of(s) == "[hiccup]" for s in seeds)
    assert hiccups and len(hiccup_first_try) == 2 * hiccups
    assert sum(first.record["failure_reasons"].values()) == len(flaky)

    # Faults off; resume asks the server only about the failed episodes.
    fault.flaky = False
    before = len(fault.requests())
    be = make_backend(args)
    final = Runner(SUM_TASK, be, cfg, run_dir).run(resume=True)
    be.close()
    resumed_prompts = {r["body"]["messages"][0]["content"] for r in fault.requests()[before:]}
    assert resumed_prompts and all(p.startswith("[flaky]") for p in resumed_prompts)
    assert len(resumed_prompts) == len(flaky)
    lines = (run_dir / "samples.jsonl").read_bytes().splitlines()
    recs = [orjson.loads(line) for line in lines]
    assert sorted(r["index"] for r in recs) == list(range(episodes))  # exactly one record each
    assert all(r["status"] == "ok" and r["success"] for r in recs)
    assert final.record["status"] == "complete" and final.record["episodes_ok"] == episodes
    assert final.metrics["success_rate"].value == 1.0 and final.metrics["success_rate"].n == episodes

    # The key went out in every request's Authorization header, and into no file the run wrote.
    assert {r["authorization"] for r in fault.requests()} == {f"Bearer {KEY}"}
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert written and all(KEY.encode() not in p.read_bytes() for p in written)


def test_unexpected_exception_becomes_error_completion(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)
    be = backend(url)

    async def boom(*_: Any) -> Completion:
        raise KeyError(f"weird {KEY}")

    monkeypatch.setattr(be, "_attempt", boom)
    comp = one(be)
    be.close()
    assert comp.error is not None and comp.error.startswith("unexpected KeyError") and KEY not in comp.error


def test_dripping_server_is_cut_off_at_the_deadline(fault: FaultState, url: str) -> None:
    """`timeout` bounds the whole request: a body that trickles in a byte at a time never resets it."""
    import threading

    be = backend(url, timeout=0.5, max_retries=0)
    fault.push({"kind": "drip", "interval": 0.05, "count": 100_000})
    done: list[Completion] = []
    worker = threading.Thread(target=lambda: done.append(one(be)), daemon=True)
    worker.start()
    worker.join(60)  # a generous cap on a wait for a state, not a timing threshold: without a deadline, hours
    assert done, "the request was still running after 60 s"
    be.close()
    assert done[0].error == "timeout (0.5s) after 1 attempt" and len(fault.requests()) == 1


def test_lone_surrogate_from_the_server_is_recorded(fault: FaultState, url: str, tmp_path: Path) -> None:
    args = {"model": "fault-model", "base_url": url, "api_key_env": KEY_ENV, "max_retries": 0}
    body = '{"choices": [{"message": {"role": "assistant", "content": "x\\ud800y"}}]}'
    fault.push(*[{"kind": "garbage", "body": body, "content_type": "application/json"}] * 4)
    cfg = EvalConfig(task="sum", split="id", model="fault-model", backend="openai", model_args=args, episodes=2,
                     verify_iter=1)
    be = make_backend(args)
    res = Runner(SUM_TASK, be, cfg, tmp_path / "s").run()
    be.close()
    assert res.record["episodes_ok"] == 2
    lines = (tmp_path / "s" / "samples.jsonl").read_bytes().splitlines()
    assert orjson.loads(lines[0])["turns"][0]["answer"] == "x\ufffdy"
    be = make_backend(args)
    res = Runner(SUM_TASK, be, EvalConfig(**{**cfg.__dict__, "episodes": 4}), tmp_path / "s").run(resume=True)
    be.close()
    assert res.record["episodes_ok"] == 4


def test_absurd_usage_numbers_stay_recordable(fault: FaultState, url: str) -> None:
    be = backend(url)
    fault.push({"kind": "ok", "text": "5", "usage": (1e300, -7)})
    comp = one(be)
    be.close()
    assert comp.text == "5" and comp.prompt_tokens == 0 and comp.completion_tokens == 0
