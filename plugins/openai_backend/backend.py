"""An OpenAI-compatible chat-completions backend with bounded retries and a concurrency limit.

The official ``AsyncOpenAI`` client does the HTTP; its own retries are switched off (``max_retries=0``)
and this module retries instead, so the policy is explicit and capped:

* retried: HTTP 408, 409, 429 and 5xx; connection errors (refused, reset, closed mid-body); timeouts;
  and a 200 answer whose body is garbage (not JSON, or no ``choices``) - proxies and overloaded servers
  produce those transiently, so they are treated like a 5xx;
* not retried: any other 4xx (bad request, auth, unknown model: retrying cannot help), and a well-formed
  answer whose message has no text (``content: null``: a refusal, a content filter, a tool call), which
  is deterministic at a fixed seed;
* backoff: ``backoff_base * 2**(attempt-1)`` seconds capped at ``backoff_max``, times a jitter factor in
  [0.5, 1]; a ``Retry-After`` / ``retry-after-ms`` header replaces it (capped at ``retry_after_max``).
* deadline: ``timeout`` bounds each attempt as a whole (connect, send, and the full response body), not
  just each read: a server that drips one byte at a time is cut off at ``timeout`` like one that is silent.
  One request therefore takes at most ``(1 + max_retries) * timeout`` plus the backoff waits.

A request that still fails after ``1 + max_retries`` attempts, or fails in a way not worth retrying,
returns ``Completion(text="", error=reason)`` instead of raising: the runner records that episode as
failed with the reason and ``--resume`` retries it later. API keys come from the environment only and are
scrubbed from every reason string and log line this module writes.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import email.utils
import json
import logging
import math
import os
import random
import re
import time
import weakref
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from harness.store import scrub_secrets
from harness.types import Completion, GenParams, Request
from harness_plugins.openai_backend.messages import to_chat_messages

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger("harness.backends.openai")

PLACEHOLDER_KEY = "EMPTY"  # sent to local servers that ignore the key
_T = TypeVar("_T")


# ------------------------------------------------------------------------------------------- config


@dataclass(frozen=True)
class OpenAIConfig:
    """The backend's model arguments (``--model-args k=v,...``), validated."""

    model: str
    base_url: str | None = None  # None: $OPENAI_BASE_URL, else the client library's default
    api_key_env: str = "OPENAI_API_KEY"
    max_connections: int = 16
    max_retries: int = 4
    timeout: float = 120.0
    backoff_base: float = 1.0
    backoff_max: float = 30.0
    retry_after_max: float = 60.0
    image_detail: str | None = None  # "low" | "high" | "auto"; None leaves it to the server
    image_format: Literal["png", "jpeg"] = "png"
    extra_body: Mapping[str, Any] | None = None  # merged into every request body
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"

    @classmethod
    def from_args(cls, args: Mapping[str, Any]) -> OpenAIConfig:
        args = dict(args)
        for key in list(args):
            if key.lower() in ("api_key", "apikey", "key", "token", "api_token"):
                raise ValueError(f"model argument {key!r} is not accepted: API keys are read from the "
                                 "environment only; put the key in an environment variable and name that "
                                 "variable with api_key_env=VAR (default OPENAI_API_KEY)")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(args) - known)
        if unknown:
            raise ValueError(f"unknown openai model argument(s) {', '.join(map(repr, unknown))}; "
                             f"valid: {', '.join(sorted(known))}")
        model = args.get("model")
        if not model or not isinstance(model, str):
            raise ValueError("the openai backend needs the served model's name: "
                             "--model-args model=NAME[,base_url=http://host:port/v1]")
        extra = args.get("extra_body")
        if isinstance(extra, str):
            try:
                extra = json.loads(extra) if extra.strip() else None
            except json.JSONDecodeError as exc:
                raise ValueError(f"extra_body must be a JSON object: {exc}") from None
        if extra is not None and not isinstance(extra, Mapping):
            raise ValueError(f"extra_body must be a JSON object, got {type(extra).__name__}")
        base_url = args.get("base_url") or os.environ.get("OPENAI_BASE_URL") or None
        cfg = cls(
            model=model,
            base_url=str(base_url) if base_url else None,
            api_key_env=str(args.get("api_key_env") or "OPENAI_API_KEY"),
            max_connections=_num(args, "max_connections", 16, int, 1),
            max_retries=_num(args, "max_retries", 4, int, 0),
            timeout=_num(args, "timeout", 120.0, float, 0.001),
            backoff_base=_num(args, "backoff_base", 1.0, float, 0.0),
            backoff_max=_num(args, "backoff_max", 30.0, float, 0.0),
            retry_after_max=_num(args, "retry_after_max", 60.0, float, 0.0),
            image_detail=str(args["image_detail"]) if args.get("image_detail") else None,
            image_format=_choice(args, "image_format", ("png", "jpeg")),  # type: ignore[arg-type]
            extra_body=dict(extra) if extra else None,
            max_tokens_field=_choice(args, "max_tokens_field",  # type: ignore[arg-type]
                                     ("max_tokens", "max_completion_tokens")),
        )
        return cfg

    def api_key(self) -> str:
        """The key from ``$api_key_env``; a placeholder for a local server (base_url set) without one."""
        key = os.environ.get(self.api_key_env, "").strip()
        if key:
            return key
        if self.base_url:
            return PLACEHOLDER_KEY
        raise ValueError(f"no API key: set the {self.api_key_env} environment variable (or choose another "
                         "variable with api_key_env=VAR), or point base_url at a local server")


def _num(args: Mapping[str, Any], key: str, default: Any, kind: type, low: float) -> Any:
    if args.get(key) is None:
        return default
    try:
        value = kind(args[key])
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{key} must be a number, got {args[key]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{key} must be a finite number, got {args[key]!r}")
    if value < low:
        raise ValueError(f"{key} must be >= {low}, got {value}")
    return value


def _choice(args: Mapping[str, Any], key: str, options: tuple[str, ...]) -> str:
    value = str(args.get(key) or options[0]).lower()
    if value == "jpg":
        value = "jpeg"
    if value not in options:
        raise ValueError(f"{key} must be one of {', '.join(options)}; got {value!r}")
    return value


# ----------------------------------------------------------------------------------- secret scrubbing

_BEARER = re.compile(r"(bearer\s+)[^\s\"',;]+", re.I)


def scrub(text: str, secrets: Sequence[str] = ()) -> str:
    """Mask API keys in ``text``: the given secrets verbatim, bearer tokens, URL userinfo, secret query
    parameters and ``sk-...`` strings (:func:`harness.store.scrub_secrets`)."""
    for s in secrets:
        if s and len(s) >= 4 and s != PLACEHOLDER_KEY:
            text = text.replace(s, "***")
    text = _BEARER.sub(r"\1***", text)
    return scrub_secrets(text)


# --------------------------------------------------------------------------------- one attempt's end


@dataclass(frozen=True)
class _Failure:
    reason: str  # short, already scrubbed
    retryable: bool
    retry_after: float | None = None  # seconds the server asked us to wait


class _BadBody(Exception):
    def __init__(self, reason: str, retryable: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retryable = retryable


def parse_retry_after(headers: Mapping[str, str] | Any) -> float | None:
    """Seconds from ``retry-after-ms`` or ``Retry-After`` (seconds or an HTTP date); None if absent/bad."""
    try:
        ms = headers.get("retry-after-ms")
        if ms is not None:
            return max(0.0, float(ms) / 1000.0)
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return max(0.0, when.timestamp() - time.time()) if when is not None else None


def parse_body(raw: bytes) -> tuple[str, int, int]:
    """(text, prompt_tokens, completion_tokens) from a chat-completions JSON body, or raise _BadBody."""
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise _BadBody("malformed response: body is not JSON", retryable=True) from None
    if not isinstance(body, dict):
        raise _BadBody("malformed response: body is not a JSON object", retryable=True)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        err = body.get("error")
        msg = err.get("message") if isinstance(err, dict) else err
        detail = f" (error: {str(msg)[:120]})" if msg else ""
        raise _BadBody(f"malformed response: no choices{detail}", retryable=True)
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise _BadBody("malformed response: choice has no message", retryable=True)
    content = message.get("content")
    if isinstance(content, list):  # some servers answer with content parts
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict)
                          and isinstance(p.get("text"), str)) if content else None
    if content is None:
        refusal = message.get("refusal")
        why = f"refusal: {str(refusal)[:120]}" if refusal else f"finish_reason={choice.get('finish_reason')}"
        raise _BadBody(f"no text in response ({why})", retryable=False)
    if not isinstance(content, str):
        raise _BadBody(f"malformed response: content is a {type(content).__name__}, not text", retryable=True)
    usage = body.get("usage") if isinstance(body.get("usage"), dict) else {}
    return content, _int(usage.get("prompt_tokens")), _int(usage.get("completion_tokens"))


def _int(value: Any) -> int:
    """A token count from the server: a non-negative integer below 2**53, else 0 (a server's 1e300 must not
    reach the run record as a number JSON cannot hold)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return 0
    return int(value) if 0 <= value < 2**53 else 0


# ------------------------------------------------------------------------------------------ backend


@dataclass
class _LoopState:
    client: AsyncOpenAI
    semaphore: asyncio.Semaphore
    closer: AsyncIterator[None]


class OpenAIBackend:
    """Chat completions against any OpenAI-compatible server.

    ``agenerate`` is what the runner drives (a sliding window of episodes); ``generate`` completes a batch
    concurrently for callers that batch. At most ``max_connections`` requests are in flight per event loop.
    """

    def __init__(self, cfg: OpenAIConfig, *, rng: random.Random | None = None) -> None:
        import openai  # noqa: F401 - fail now, with the extra's name, if the client isn't installed

        self.cfg = cfg
        self._key = cfg.api_key()  # validated now, so a missing key fails at startup
        self._secrets = (self._key,)
        self._rng = rng or random.Random()
        # One client per event loop: the client's connection pool belongs to the loop that opened it, and
        # the runner starts a new loop (asyncio.run) for every run. See _state().
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopState] = (
            weakref.WeakKeyDictionary())
        self._closed = False
        self.stats = {"requests": 0, "attempts": 0, "retries": 0, "failures": 0}

    # ------------------------------------------------------------------ client per event loop
    async def _state(self) -> _LoopState:
        loop = asyncio.get_running_loop()
        state = self._loops.get(loop)
        if state is None:
            if self._closed:
                raise RuntimeError("the openai backend is closed")
            from openai import AsyncOpenAI

            client = AsyncOpenAI(api_key=self._key, base_url=self.cfg.base_url, timeout=self.cfg.timeout,
                                 max_retries=0)
            closer = self._close_at_loop_end(loop, client)
            state = _LoopState(client, asyncio.Semaphore(self.cfg.max_connections), closer)
            self._loops[loop] = state
            # Started inside this loop, the generator is closed by loop.shutdown_asyncgens(), which
            # asyncio.run() calls before closing the loop: the client is closed on its own loop.
            await closer.__anext__()
        return state

    # --------------------------------------------------------------------------------- requests
    def _payload(self, request: Request, params: GenParams) -> dict[str, Any]:
        cfg = self.cfg
        body: dict[str, Any] = {
            "model": cfg.model,
            "messages": to_chat_messages(request.messages, image_format=cfg.image_format,
                                         image_detail=cfg.image_detail),
            "temperature": params.temperature,
            "top_p": params.top_p,
            cfg.max_tokens_field: params.max_tokens,
        }
        if params.seed is not None:
            body["seed"] = params.seed
        return body

    async def agenerate(self, request: Request, params: GenParams) -> Completion:
        """Complete one conversation; never raises for server or network trouble (see module doc)."""
        self.stats["requests"] += 1
        try:
            payload = self._payload(request, params)
        except Exception as exc:  # an image that can't be encoded, an image in an assistant turn
            return self._fail(f"could not build the request: {type(exc).__name__}: {exc}")
        state = await self._state()
        attempts = 1 + self.cfg.max_retries
        last: _Failure | None = None
        for attempt in range(1, attempts + 1):
            async with state.semaphore:
                self.stats["attempts"] += 1
                try:
                    result = await self._attempt(state.client, payload)
                except Exception as exc:  # nothing a server sends may take the run down
                    return self._fail(f"unexpected {type(exc).__name__}: {exc}")
            if isinstance(result, Completion):
                return result
            last = result
            if not result.retryable:
                return self._fail(result.reason)
            if attempt == attempts:
                break
            delay = self.backoff(attempt, result.retry_after)
            self.stats["retries"] += 1
            log.info("openai request failed (%s); retry %d/%d in %.2fs", result.reason, attempt,
                     self.cfg.max_retries, delay)
            await asyncio.sleep(delay)
        assert last is not None
        n = f"{attempts} attempt" + ("s" if attempts != 1 else "")
        reason = last.reason
        head, sep, tail = reason.partition(": ")
        return self._fail(f"{head} after {n}{sep}{tail}")

    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt`` (1-based)."""
        cfg = self.cfg
        if retry_after is not None:
            return min(retry_after, cfg.retry_after_max)
        base = min(cfg.backoff_max, cfg.backoff_base * 2 ** (attempt - 1))
        return base * (0.5 + 0.5 * self._rng.random())

    async def _attempt(self, client: AsyncOpenAI, payload: Mapping[str, Any]) -> Completion | _Failure:
        import openai

        extra = dict(self.cfg.extra_body) if self.cfg.extra_body else None

        async def call() -> bytes:
            raw = await client.chat.completions.with_raw_response.create(**payload, extra_body=extra)
            return raw.http_response.content

        try:
            # the client's timeout is per read; this is the deadline for the whole attempt
            content = await asyncio.wait_for(call(), timeout=self.cfg.timeout)
        except openai.APIStatusError as exc:
            code = exc.status_code
            retryable = code in (408, 409, 429) or code >= 500
            detail = "" if retryable else _status_detail(exc)
            reason = self._scrub(f"HTTP {code}" + (f": {detail}" if detail else ""))
            return _Failure(reason, retryable, parse_retry_after(exc.response.headers) if retryable else None)
        except (openai.APITimeoutError, TimeoutError):
            return _Failure(f"timeout ({self.cfg.timeout:g}s)", True)
        except openai.APIConnectionError as exc:
            what = _cause_chain(exc)
            return _Failure(self._scrub(f"connection error: {what}"), True)
        except openai.APIError as exc:  # anything else the client raises about the response
            return _Failure(self._scrub(f"API error: {type(exc).__name__}"), True)
        try:
            text, prompt_tokens, completion_tokens = parse_body(content)
        except _BadBody as bad:
            return _Failure(self._scrub(bad.reason), bad.retryable)
        return Completion(text, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)

    def _scrub(self, text: str) -> str:
        return scrub(text, self._secrets)

    def _fail(self, reason: str) -> Completion:
        reason = self._scrub(reason)[:300]
        self.stats["failures"] += 1
        log.info("openai request gave up: %s", reason)
        return Completion("", error=reason)

    async def _close_at_loop_end(self, loop: asyncio.AbstractEventLoop, client: AsyncOpenAI
                                 ) -> AsyncIterator[None]:
        try:
            yield
        finally:
            self._loops.pop(loop, None)
            try:
                await client.close()
            except Exception as exc:
                log.debug("closing an openai client failed: %s", type(exc).__name__)

    # ----------------------------------------------------------------------------- sync batch
    def generate(self, requests: Sequence[Request], params: GenParams) -> list[Completion]:
        """Complete a batch concurrently (up to ``max_connections`` at once); order is kept."""
        if not requests:
            return []

        async def batch() -> list[Completion]:
            return list(await asyncio.gather(*(self.agenerate(r, params) for r in requests)))

        return _run_sync(batch())

    def close(self) -> None:
        """Close the clients of event loops that are still open; clients of finished loops were closed
        when their loop ended. Idempotent."""
        self._closed = True
        for loop, state in list(self._loops.items()):
            if not loop.is_closed() and not loop.is_running():
                try:
                    loop.run_until_complete(state.client.close())
                except Exception as exc:  # closing must not mask the run's own outcome
                    log.debug("closing an openai client failed: %s", type(exc).__name__)
        self._loops.clear()


def _cause_chain(exc: BaseException) -> str:
    """The transport error under a client error, and its root: ``ReadError (ConnectionResetError)``."""
    chain: list[BaseException] = []
    cur = exc.__cause__ or exc.__context__
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    if not chain:
        return "unknown"
    first = type(chain[0]).__name__
    root = next((type(e).__name__ for e in reversed(chain) if isinstance(e, OSError)), None)
    return f"{first} ({root})" if root and root != first else first


def _status_detail(exc: Any) -> str:
    body = getattr(exc, "body", None)
    msg = None
    if isinstance(body, dict):
        err = body.get("error", body)
        msg = err.get("message") if isinstance(err, dict) else err
    if not msg:
        msg = getattr(exc, "message", "") or ""
    return " ".join(str(msg).split())[:200]


def _run_sync(coro: Coroutine[Any, Any, _T]) -> _T:
    """``asyncio.run`` that also works when the caller is itself inside a running event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def make_backend(args: Mapping[str, Any]) -> OpenAIBackend:
    """The plugin factory: ``factory(model_args) -> Backend``."""
    return OpenAIBackend(OpenAIConfig.from_args(args))
