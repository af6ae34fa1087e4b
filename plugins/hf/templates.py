"""Chat-template rendering with a bounded cost.

A checkpoint's chat template is a Jinja program from outside: transformers runs it in Jinja's sandbox, so it
cannot reach Python internals, but nothing bounds its work. ``{% for i in range(99999) %}`` nested three
deep runs for hours, and a loop that keeps printing grows the prompt until memory runs out. Here the
rendering is traced: every line the compiled template executes counts one step, and every piece of text
it yields counts its length; past ``max_steps`` or ``max_chars`` it is stopped with
:class:`TemplateBudgetError`. The budget is counted in steps, not seconds, so the verdict is the same on
a busy machine as on an idle one. Real templates use a few thousand steps for a long conversation.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from types import FrameType
from typing import Any, TypeVar

MAX_TEMPLATE_STEPS = 2_000_000
MAX_PROMPT_CHARS = 8_000_000
_TEMPLATE_FILES = ("<template>",)  # the filename Jinja gives code compiled from a string

_T = TypeVar("_T")


class TemplateBudgetError(ValueError):
    """A chat template did more work, or wrote more text, than a prompt can need."""


def render_bounded(render: Callable[[], _T], *, max_steps: int = MAX_TEMPLATE_STEPS,
                   max_chars: int = MAX_PROMPT_CHARS, what: str = "the chat template") -> _T:
    """Call ``render()`` (which renders a Jinja template) and stop it once the template's own code has run
    ``max_steps`` lines or yielded ``max_chars`` characters. A tracer already installed (a debugger,
    coverage) keeps seeing every frame but the template's."""
    steps = 0
    chars = 0
    previous = sys.gettrace()

    def local(frame: FrameType, event: str, arg: Any) -> Any:
        nonlocal steps, chars
        steps += 1
        if event == "return" and isinstance(arg, str):
            chars += len(arg)
            if chars > max_chars:
                raise TemplateBudgetError(f"{what} wrote more than {max_chars:,} characters for one prompt")
        if steps > max_steps:
            raise TemplateBudgetError(f"{what} ran more than {max_steps:,} steps for one prompt (a loop that "
                                      "does not end in reasonable time?)")
        return local

    def tracer(frame: FrameType, event: str, arg: Any) -> Any:
        if frame.f_code.co_filename in _TEMPLATE_FILES:
            return local(frame, event, arg)
        return previous(frame, event, arg) if previous is not None else None

    sys.settrace(tracer)
    try:
        return render()
    finally:
        sys.settrace(previous)


__all__ = ["MAX_PROMPT_CHARS", "MAX_TEMPLATE_STEPS", "TemplateBudgetError", "render_bounded"]
