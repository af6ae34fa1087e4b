"""Prompt templates for task plugins: safe formatting and reading a user's prompt file.

A template is Python ``str.format`` text (``{name}`` placeholders, ``{{``/``}}`` for literal braces), but it is
filled by :func:`render`, which accepts bare placeholder names only: no attribute or index access, no format
specs or conversions, so a template from a file cannot reach into the objects it is given.

:func:`load_prompt_file` reads either a plain text file (the whole file is the template) or a Python module of
prompt constants such as the paper's ``prompt_lib/prompts.py``: its top-level ``NAME = "..."`` assignments of
string literals are read with :mod:`ast` (never imported or executed) and one is picked by name.
"""

from __future__ import annotations

import ast
import string
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

MAX_PROMPT_FILE_BYTES = 1_000_000


class TemplateError(ValueError):
    """A template or prompt file that cannot be used; the message says which file and why."""


def placeholders(template: str) -> list[str]:
    """The placeholder names a template uses, in order of first use. Raises :class:`TemplateError` for
    anything but bare names (``{a.b}``, ``{a[0]}``, ``{a!r}``, ``{a:>5}``, ``{}``) or unbalanced braces."""
    names: list[str] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise TemplateError(f"the template is not valid format text: {exc}") from None
    for _literal, field, spec, conversion in parsed:
        if field is None:
            continue
        if not field.isidentifier() or spec or conversion:
            shown = "{" + field + ("!" + conversion if conversion else "") + (":" + spec if spec else "") + "}"
            raise TemplateError(f"placeholder {shown} is not allowed: use plain names like {{target_number}}")
        if field not in names:
            names.append(field)
    return names


def check(template: str, valid: Iterable[str], where: str = "the prompt") -> None:
    """Fail when ``template`` uses a placeholder outside ``valid``, listing the valid ones."""
    valid = list(valid)
    unknown = [n for n in placeholders(template) if n not in valid]
    if unknown:
        raise TemplateError(f"{where} uses unknown placeholder(s) {', '.join('{' + n + '}' for n in unknown)}; "
                            f"valid: {', '.join('{' + n + '}' for n in valid)}")


def render(template: str, values: Mapping[str, object]) -> str:
    """Fill a template that :func:`check` accepted."""
    out = []
    for literal, field, _spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if field is not None:
            out.append(str(values[field]))
    return "".join(out)


def read_constants(path: Path, text: str) -> dict[str, str]:
    """Top-level ``NAME = <string literal>`` assignments of a Python file, without executing it."""
    try:
        tree = ast.parse(text, filename=str(path))
    except (SyntaxError, ValueError, RecursionError, MemoryError) as exc:
        raise TemplateError(f"{path}: not a readable Python file: {exc}") from None
    out: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for t in targets:
                if isinstance(t, ast.Name):
                    out[t.id] = value.value
    return out


def load_prompt_file(path: str | Path, name: str | None = None, default_names: Iterable[str] = ()) -> str:
    """The template text of a prompt file.

    For a ``.py`` file, ``name`` picks the constant; without it the first of ``default_names`` the file
    defines is used, or its only constant. A text file is used whole (``name`` must then be unset).
    """
    p = Path(path).expanduser()
    try:
        size = p.stat().st_size
    except OSError as exc:
        raise TemplateError(f"prompt file {p}: {exc.strerror or exc}") from None
    if not p.is_file():
        raise TemplateError(f"prompt file {p}: not a file")
    if size > MAX_PROMPT_FILE_BYTES:
        raise TemplateError(f"prompt file {p}: {size} bytes; prompt files are limited to {MAX_PROMPT_FILE_BYTES}")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TemplateError(f"prompt file {p}: cannot be read as UTF-8 text: {exc}") from None
    if p.suffix != ".py":
        if name:
            raise TemplateError(f"prompt file {p} is a plain template; prompt={name!r} only applies to .py files")
        return text
    constants = read_constants(p, text)
    if not constants:
        raise TemplateError(f"prompt file {p}: no top-level string constants (NAME = \"...\") found")
    if name:
        if name not in constants:
            raise TemplateError(f"prompt file {p} defines no string constant {name!r}; it defines: "
                                f"{', '.join(sorted(constants))}")
        return constants[name]
    for candidate in default_names:
        if candidate in constants:
            return constants[candidate]
    if len(constants) == 1:
        return next(iter(constants.values()))
    raise TemplateError(f"prompt file {p} defines several prompts; pick one with prompt=NAME: "
                        f"{', '.join(sorted(constants))}")


def choose_template(prompt: str | None, prompt_file: str | None, builtin: Callable[[bool], str],
                    default_names: Iterable[str], valid: Iterable[str]) -> tuple[str, str]:
    """A task's ``prompt`` / ``prompt_file`` task args resolved to a checked template, and where it came from
    (for error messages): the user's file (``prompt`` then names a constant in it), else the built-in
    ``prompt=default`` or ``prompt=example`` (``builtin(example)``)."""
    if prompt_file:
        text = load_prompt_file(prompt_file, prompt, default_names=default_names)
        where = f"prompt file {prompt_file}"
    else:
        if prompt not in (None, "default", "example"):
            raise TemplateError(f"prompt={prompt!r}: the built-in prompts are 'default' and 'example' "
                                "(or give prompt_file=PATH)")
        text = builtin(prompt == "example")
        where = "the built-in prompt"
    check(text, valid, where)
    return text, where
