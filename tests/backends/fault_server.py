"""A scriptable OpenAI-compatible server for tests: FastAPI on uvicorn, in a thread, on 127.0.0.1.

``/v1/chat/completions`` answers with the next scripted action if there is one, else with its "model":
for a prompt containing ``What is A + B?`` it answers the sum (off by one on the first answer when the
prompt says ``[careless]``, so verifier feedback gets exercised), otherwise ``ok``. With ``flaky`` on,
prompts tagged ``[flaky]`` always fail and prompts tagged ``[hiccup]`` fail on their first attempt.

Actions (dicts), consumed one per request in order:
  {"kind": "ok", "text": ...}                       a normal answer (usage included)
  {"kind": "status", "code": 429, "retry_after": 1}  an error status, optional Retry-After header
  {"kind": "reset"}                                  close the TCP connection abruptly (RST), no answer
  {"kind": "slow", "delay": 2.0}                     sleep, then answer normally
  {"kind": "garbage", "body": "...", "content_type": "text/html"}   200 with a non-JSON body
  {"kind": "json", "body": {...}}                    200 with this JSON (missing choices, null content)
  {"kind": "drip", "interval": 0.1, "count": 10000}  200 whose body comes one byte per interval (a server
                                                     that is never silent long enough for a read timeout)

Every request is logged (time, Authorization header, JSON body) for the tests to inspect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct
import threading
import time
import zlib
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

SUM = re.compile(r"What is (-?\d+) \+ (-?\d+)\?")
FAULT_CYCLE = ({"kind": "status", "code": 500}, {"kind": "status", "code": 429, "retry_after": 0},
               {"kind": "reset"}, {"kind": "garbage", "body": "<html>bad gateway</html>"})


@dataclass
class FaultState:
    script: deque[dict[str, Any]] = field(default_factory=deque)
    log: list[dict[str, Any]] = field(default_factory=list)
    flaky: bool = False
    seen: dict[str, int] = field(default_factory=dict)  # attempts per conversation (for [hiccup])
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def reset(self) -> None:
        with self.lock:
            self.script.clear()
            self.log.clear()
            self.seen.clear()
            self.flaky = False
            self.in_flight = self.max_in_flight = 0

    def push(self, *actions: dict[str, Any]) -> None:
        with self.lock:
            self.script.extend(actions)

    def requests(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.log)


def _text_of(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    return "".join(p.get("text", "") for p in content or [] if isinstance(p, dict))


def model_answer(messages: list[dict[str, Any]]) -> str:
    """What the scripted "model" says: the sum asked in the first user turn (see the module doc)."""
    users = [_text_of(m) for m in messages if m.get("role") == "user"]
    match = SUM.search(users[0]) if users else None
    if not match:
        return "ok"
    total = int(match.group(1)) + int(match.group(2))
    if "[careless]" in users[0] and len(users) == 1:
        total += 1
    return str(total)


def completion_body(text: str, prompt_tokens: int = 11, completion_tokens: int = 3) -> dict[str, Any]:
    return {
        "id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": "fault",
        "choices": [{"index": 0, "finish_reason": "stop",
                     "message": {"role": "assistant", "content": text}}],
        "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                  "total_tokens": prompt_tokens + completion_tokens},
    }


def _abort_connection(request: Request) -> None:
    """Reset the client's TCP connection: SO_LINGER 0 then close sends an RST instead of a FIN."""
    receive = request.receive
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if transport is None:
        raise RuntimeError("could not reach the connection's transport to reset it")
    sock = transport.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()


def make_app(state: FaultState) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> Response:
        with state.lock:
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
        try:
            return await answer(request)
        finally:
            with state.lock:
                state.in_flight -= 1

    async def answer(request: Request) -> Response:
        raw = await request.body()
        try:
            body = json.loads(raw)
        except json.JSONDecodeError:
            return JSONResponse({"error": {"message": "request is not JSON"}}, status_code=400)
        messages = body.get("messages") or []
        first_user = next((_text_of(m) for m in messages if m.get("role") == "user"), "")
        with state.lock:
            state.log.append({"t": time.monotonic(), "authorization": request.headers.get("authorization"),
                              "body": body})
            action = state.script.popleft() if state.script else None
            if action is None and state.flaky:
                key = json.dumps(messages, sort_keys=True)
                state.seen[key] = state.seen.get(key, 0) + 1
                if "[flaky]" in first_user or ("[hiccup]" in first_user and state.seen[key] == 1):
                    action = FAULT_CYCLE[zlib.crc32(first_user.encode()) % len(FAULT_CYCLE)]
        action = action or {"kind": "ok"}
        kind = action["kind"]
        if kind == "slow":
            await asyncio.sleep(float(action.get("delay", 1.0)))
            kind = "ok"
        if kind == "ok":
            text = action.get("text", model_answer(messages))
            return JSONResponse(completion_body(text, *action.get("usage", (11, 3))))
        if kind == "status":
            headers = {}
            if action.get("retry_after") is not None:
                headers["Retry-After"] = str(action["retry_after"])
            payload = action.get("body", {"error": {"message": f"scripted {action['code']}",
                                                    "type": "test"}})
            return JSONResponse(payload, status_code=int(action["code"]), headers=headers)
        if kind == "reset":
            _abort_connection(request)
            return Response(status_code=500)  # never reaches the client
        if kind == "garbage":
            return Response(action.get("body", "not json {"), status_code=200,
                            media_type=action.get("content_type", "text/html"))
        if kind == "json":
            return JSONResponse(action["body"])
        if kind == "drip":
            interval, count = float(action.get("interval", 0.1)), int(action.get("count", 10_000))
            body = json.dumps(completion_body("dripped")).encode()

            async def drip() -> Any:
                for i in range(count):
                    await asyncio.sleep(interval)
                    yield body[i:i + 1] if i < len(body) else b" "

            return StreamingResponse(drip(), media_type="application/json")
        raise ValueError(f"unknown scripted action {kind!r}")

    return app


class ServerThread:
    """Runs an ASGI app with uvicorn in a daemon thread on a free 127.0.0.1 port."""

    def __init__(self, app: Any) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port: int = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="critical", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=1)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 10.0) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=5)
        self.sock.close()


@contextlib.contextmanager
def fault_server() -> Iterator[tuple[ServerThread, FaultState]]:
    """Start the fault server; yields (server, state) and stops it afterwards."""
    state = FaultState()
    server = ServerThread(make_app(state)).start()
    try:
        yield server, state
    finally:
        server.stop()
