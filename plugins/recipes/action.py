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


def action_span(text: str, field: str | None) -> tuple[int, int] | None:
    """Character span [start, end) of the first well-formed value of ``field`` in ``text`` (a string
    value without its quotes), or None when there is no such field."""
    if not field:
        return None
    for m in _key_pattern(field).finditer(text):
        start = m.end()
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
                  thought_coef: float) -> list[float]:
    """1 for tokens overlapping the action's characters, ``thought_coef`` for the rest. Without a
    locatable action the whole answer is the action (weight 1): e.g. a bare number, or unparseable text."""
    span = action_span(text, field)
    if span is None:
        return [1.0] * len(ids)
    lo, hi = span
    weights, prev = [], 0
    for end in token_char_ends(ids, decode):
        weights.append(1.0 if prev < hi and end > lo and end > prev else thought_coef)
        prev = end
    return weights


__all__ = ["action_span", "token_char_ends", "token_weights"]
