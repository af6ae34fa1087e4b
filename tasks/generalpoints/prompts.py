"""The first user turn of a GeneralPoints episode.

The built-in templates keep the paper's structure and placeholders - a task description with the face-card
rule, the cards as input (gp-l only), and the output layout with the fields ``cards``, ``number`` and
``formula`` - in harness's own words. ``prompt=example`` adds an output example, as the paper's API
evaluations do; the paper's Llama evaluations use the form without it (``prompt=default``).

``prompt_file=PATH`` takes a user's template instead: a text file, or a Python module of prompt constants such
as the paper's ``prompt_lib/prompts.py`` (read, never executed; ``prompt=NAME`` picks the constant, by default
``Q_GeneralPoint_EQN_L`` for gp-l and ``Q_GeneralPoint_EQN_VL`` for gp-vl). Placeholders:

* ``{target_number}``: the target (24);
* ``{face_card_msg}``: the face-card rule in one clause (``face_card_msg=...`` replaces harness's wording);
* ``{cards}``: the hand's plain ranks as a Python list, e.g. ``['4', 'A', '10', 'K']``.
"""

from __future__ import annotations

from collections.abc import Sequence

from harness import templates

PLACEHOLDERS = ("target_number", "face_card_msg", "cards")
FACE_CARD_MSG = {
    "train": "the face cards 'J', 'Q' and 'K' are all worth '10'",
    "ood": "the face cards 'J', 'Q' and 'K' are worth '11', '12' and '13'",
}
PAPER_PROMPT_NAMES = {False: "Q_GeneralPoint_EQN_L", True: "Q_GeneralPoint_EQN_VL"}

_DESCRIPTION = """
[Task Description]
You play the {{target_number}}-points card game and you are good at it. {where}
Mind that {{face_card_msg}}, and that every card is used exactly once.
Write a formula that makes {{target_number}} from the numbers on the cards, joined only by '+', '-', '*', '/', \
'(', ')' and '='.
"""
_INPUT = """
[Input]
Cards: {cards}
"""
_OUTPUT = """
[Output]
Reply in this JSON layout:
{{
  "cards": [x, y, z, w], the four cards, where {face_card_msg},
  "number": [a, b, c, d], the number each card stands for,
  "formula": 'your equation, equal to {target_number}',
}}
"""
_EXAMPLE = """
[Output Example]
{{
  "cards": ['3', '8', '4', '5'],
  "number": [3, 8, 4, 5],
  "formula": "3*8*(5-4)=24",
}}

Reply with the JSON object only.
"""


def builtin_template(vision: bool, example: bool) -> str:
    where = "The image shows four playing cards." if vision else "You are dealt four playing cards."
    text = _DESCRIPTION.format(where=where) + ("" if vision else _INPUT) + _OUTPUT
    return text + (_EXAMPLE if example else "\n")


class Prompt:
    """A checked template; everything but the cards is filled once per (rule, target)."""

    def __init__(self, template: str, face_card_msg: dict[str, str]) -> None:
        self.template = template
        self.face_card_msg = face_card_msg
        self._fixed: dict[tuple[str, int], str] = {}

    def render(self, plain_cards: Sequence[str], rule: str, target: int) -> str:
        fixed = self._fixed.get((rule, target))
        if fixed is None:  # the cards go into a slot no checked template can contain (templates have no NUL)
            fixed = self._fixed[rule, target] = templates.render(self.template, {
                "target_number": target, "face_card_msg": self.face_card_msg[rule], "cards": _CARDS_SLOT})
        return fixed.replace(_CARDS_SLOT, "[" + ", ".join(f"'{c}'" for c in plain_cards) + "]")


_CARDS_SLOT = "\x00cards\x00"


def make_prompt(vision: bool, prompt: str | None = None, prompt_file: str | None = None,
                face_card_msg: str | None = None) -> Prompt:
    """The prompt an env uses. Raises :class:`harness.templates.TemplateError` with the reason."""
    text, where = templates.choose_template(prompt, prompt_file, lambda example: builtin_template(vision, example),
                                            (PAPER_PROMPT_NAMES[vision],), PLACEHOLDERS)
    if "\x00" in text:
        raise templates.TemplateError(f"{where} contains NUL characters")
    msgs = dict(FACE_CARD_MSG) if face_card_msg is None else {"train": face_card_msg, "ood": face_card_msg}
    return Prompt(text, msgs)
