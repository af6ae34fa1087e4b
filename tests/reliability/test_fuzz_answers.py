"""Model output is untrusted: every task's parser and verifier must judge any answer quickly, never raise.

Each example resets an env of a registered task and feeds it a generated answer through ``env.step``, the
path a real model's answer takes. The answer must get a finite reward and a string feedback within 10 ms
of CPU time (CPU time, so a busy machine does not make the test flaky). CI runs a modest number of
examples; ``HARNESS_FUZZ_EXAMPLES=25000`` (benchmarks/fuzz_answers.sh) runs 100,000 over the four tasks.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harness.plugins import PluginWarning, load_registry

EXAMPLES = int(os.environ.get("HARNESS_FUZZ_EXAMPLES", "150"))
BUDGET_S = 0.010
TASKS = ["gp-l", "gp-vl", "virl-l", "virl-vl"]

with warnings.catch_warnings():
    warnings.simplefilter("ignore", PluginWarning)
    _REG = load_registry()

HOSTILE = [
    "", " ", "\x00", "\x00" * 4096, "{", "}", "{}", "[]", "null", "1e999999", "-0", "NaN", "Infinity",
    "{" * 100_000, "[" * 50_000 + "]" * 50_000, '{"a":' * 5000 + "1" + "}" * 5000,
    "x" * (1 << 20), "9" * 200_000, '"' + "\\u0000" * 10_000 + '"',
    '{"formula": "9**9**9"}', '{"formula": "9^9^9^9"}', '{"formula": "' + "(" * 10_000 + "1" + ")" * 10_000 + '"}',
    '{"formula": "' + "9" * 100_000 + '"}', '{"formula": "1/0"}', '{"formula": "(1-1)/(2-2)"}',
    '{"cards": ' + "[" * 3000 + "]" * 3000 + ', "number": [], "formula": "1+1"}',
    '{"action": "' + "forward()" * 50_000 + '"}', '{"action": "turn_direction(' + "north" * 10_000 + ')"}',
    '{"current observation": null, "current instruction": 5, "action": ["stop()"]}',
    "```json\n{\"formula\": \"__import__('os').system('echo pwned')\"}\n```",
    '{"formula": "eval(\\"1\\")"}', "\ud800\udfff\U0010ffff", "🂡🂮🂭🂫 = 24", "\u202e{}\u202d",
]


def _env(task: str):
    spec = _REG.tasks.get(task)
    if spec is None:  # first-party tasks must load; a silent skip would hide a broken plugin
        pytest.fail(f"task {task} is not registered: {[p.error for p in _REG.plugins if p.error]}")
    env = spec.make_env(spec.splits[0].name, verify_iter=3, **dict(spec.splits[0].options))
    return env


def _judge(env, answer: str, seed: int) -> None:
    env.reset(seed=seed)
    t0 = time.thread_time()
    _obs, reward, _terminated, _truncated, info = env.step(answer)
    spent = time.thread_time() - t0
    assert isinstance(reward, float | int) and math.isfinite(reward)
    assert isinstance(info.get("feedback", ""), str)
    assert spent < BUDGET_S, f"{spent * 1000:.1f} ms for an answer of {len(answer)} chars: {answer[:80]!r}"


@pytest.mark.parametrize("task", TASKS)
def test_hostile_answers(task: str) -> None:
    env = _env(task)
    for i, answer in enumerate(HOSTILE):
        _judge(env, answer, seed=i)


def _json_values() -> st.SearchStrategy:
    leaves = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=30)
    return st.recursive(leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c,
                                                                                      max_size=4), max_leaves=20)


@st.composite
def near_misses(draw: st.DrawFn, expert: str) -> str:
    """The correct answer, damaged: a character deleted, replaced or inserted, a field's value swapped."""
    kind = draw(st.sampled_from(["delete", "replace", "insert", "field", "wrap", "repeat"]))
    if kind == "field":
        try:
            obj = json.loads(expert)
        except json.JSONDecodeError:
            obj = None
        if isinstance(obj, dict) and obj:
            key = draw(st.sampled_from(sorted(obj)))
            obj[key] = draw(_json_values())
            return json.dumps(obj)
        kind = "insert"
    if kind == "wrap":
        return draw(st.text(max_size=40)) + expert + draw(st.text(max_size=40))
    if kind == "repeat":
        return expert * draw(st.integers(2, 300))
    pos = draw(st.integers(0, max(0, len(expert) - 1)))
    ch = draw(st.characters())
    if kind == "delete":
        return expert[:pos] + expert[pos + 1:]
    if kind == "replace":
        return expert[:pos] + ch + expert[pos + 1:]
    return expert[:pos] + ch + expert[pos:]


@pytest.mark.parametrize("task", TASKS)
def test_generated_answers(task: str) -> None:
    env = _env(task)

    @settings(max_examples=EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=st.data(), seed=st.integers(0, 2**31))
    def check(data: st.DataObject, seed: int) -> None:
        env.reset(seed=seed)
        expert = env.expert_action()
        answer = data.draw(st.one_of(
            near_misses(expert),
            st.text(),
            _json_values().map(json.dumps),
            st.binary(max_size=200).map(lambda b: b.decode("latin-1")),
        ))
        _judge(env, answer, seed)

    check()
