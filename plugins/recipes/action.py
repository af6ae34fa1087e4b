"""Which generated tokens are the action and which are the "thought", for the paper's weighted log-prob.

The action is the value of one JSON field of the answer, named by the task's ``TaskSpec.action_field``
(``formula`` for GeneralPoints, ``action`` for V-IRL). We find the characters of that value in the decoded
completion, then map characters to tokens with each token's character extent in the decoded text: no token
ids are assumed, so it works for any tokenizer. Token k's extent ends at ``len(decode(ids[:k+1]))``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from functools import lru_cache

_DECODER = json.JSONDecoder()


@lru_cache(maxsize=16)
def _key_pattern(field: str) -> re.Pattern[str]:
    return re.compile(r'"\s*' + re.escape(field) + r'\s*"\s*:\s*', re.IGNORECASE)


SPANS = ("value", "key-to-end")


def action_span(text: str, field: str | None, mode: str = "value") -> tuple[int, int] | None:
    """Character span [start, end) of the first well-formed value of ``field`` in ``text`` (a string
    value without its quotes), or None when there is no such field. ``mode="key-to-end"`` spans from the
    field's opening key quote to the end of the text instead (where the paper's trainer puts the action)."""
    if not field:
        return None
    for m in _key_pattern(field).finditer(text):
        start = m.end()
        if mode == "key-to-end":
            return m.start(), len(text)
        try:
            _, end = _DECODER.raw_decode(text, start)
        except ValueError:
            continue
        if text[start] == '"':
            return (start + 1, end - 1) if end - 1 > start + 1 else (start, end)
        return start, end
    return None


def token_char_ends(ids: Sequence[int], decode: Callable[[Sequence[int]], str]) -> list[int]:
    """Where each token's text ends in ``decode(ids)``; special tokens have zero width."""
    return [len(decode(ids[:k + 1])) for k in range(len(ids))]


def token_weights(ids: Sequence[int], text: str, decode: Callable[[Sequence[int]], str], field: str | None,
                  thought_coef: float, mode: str = "value") -> list[float]:
    """1 for tokens overlapping the action's characters, ``thought_coef`` for the rest. Without a
    locatable action the whole answer is the action (weight 1): e.g. a bare number, or unparseable text.
    In ``key-to-end`` mode every token from the field's key on is the action, end-of-turn included."""
    span = action_span(text, field, mode)
    if span is None:
        return [1.0] * len(ids)
    lo, hi = span
    to_end = mode == "key-to-end"
    weights, prev = [], 0
    for end in token_char_ends(ids, decode):
        inside = (prev < hi and end > lo and end > prev) or (to_end and prev >= lo)
        weights.append(1.0 if inside else thought_coef)
        prev = end
    return weights


__all__ = ["SPANS", "action_span", "token_char_ends", "token_weights"]
