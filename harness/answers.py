"""Reading fields out of a model's answer the way the paper's code does (its ``re_match``).

The paper's models answer with a JSON-like object, often not strict JSON (single-quoted list items, a
trailing comma). Its reader takes a field in two tries:

1. the whole text as JSON; if that gives an object holding the field, the field's value (any JSON type);
2. otherwise a per-field pattern on the raw text: ``"NAME": "<text up to the next quote, on one line>"`` for
   string fields, ``"NAME": [<text up to the next ']'>]`` for list fields (the part inside the brackets);
3. otherwise the string ``"None"`` (:data:`NOT_FOUND`), which the verifiers then judge like any other text.

Tasks reproduce their verdicts on top of this, so it is kept exact: Python's own JSON decoder (which also
takes NaN and big integers) and the same patterns. The list pattern is scanned by hand so that a hostile
answer full of ``"cards": [`` with no closing bracket stays linear (the regular expression would be
quadratic there). Nothing here raises.
"""

from __future__ import annotations

import json
import re
from typing import Any

NOT_FOUND = "None"  # what the paper's reader returns for a field it cannot find
MISSING: Any = object()  # "the JSON object has no such field" (distinct from any JSON value)


class Answer:
    """One answer, decoded once; :meth:`field` reads fields from it."""

    __slots__ = ("_doc", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self._doc: Any = json.loads(text)
        except Exception:
            self._doc = MISSING

    def json_value(self, name: str) -> Any:
        """The field from the JSON object, or :data:`MISSING` (not JSON, not an object, or no such key)."""
        doc = self._doc
        if isinstance(doc, dict) and name in doc:
            return doc[name]
        return MISSING

    def string_field(self, name: str) -> Any:
        """A field the paper reads with ``"NAME": "(.*?)"``: the JSON value, else the pattern's text, else
        :data:`NOT_FOUND`."""
        value = self.json_value(name)
        if value is not MISSING:
            return value
        found = string_pattern(name).search(self.text)
        return found.group(1) if found else NOT_FOUND

    def list_field(self, name: str) -> Any:
        """A field the paper reads with ``"NAME": \\[([^\\]]+)\\]``: the JSON value, else the text inside the
        brackets, else :data:`NOT_FOUND`."""
        value = self.json_value(name)
        if value is not MISSING:
            return value
        inner = list_pattern_search(self.text, name)
        return NOT_FOUND if inner is None else inner


_STRING_PATTERNS: dict[str, re.Pattern[str]] = {}


def string_pattern(name: str) -> re.Pattern[str]:
    pat = _STRING_PATTERNS.get(name)
    if pat is None:
        pat = _STRING_PATTERNS[name] = re.compile('"' + re.escape(name) + '": "(.*?)"')
    return pat


def list_pattern_search(text: str, name: str) -> str | None:
    """What ``re.search(r'"NAME": \\[([^\\]]+)\\]', text).group(1)`` gives, in linear time.

    At an occurrence of ``"NAME": [`` the pattern takes everything up to the next ``]`` (newlines included)
    and needs at least one character; if the next ``]`` follows at once it tries the next occurrence, and if
    there is no ``]`` at all after an occurrence, no later occurrence can match either.
    """
    head = f'"{name}": ['
    start = text.find(head)
    while start >= 0:
        body = start + len(head)
        close = text.find("]", body)
        if close < 0:
            return None
        if close > body:
            return text[body:close]
        start = text.find(head, start + 1)
    return None
