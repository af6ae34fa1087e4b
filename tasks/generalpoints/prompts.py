"""The task prompt for gp-l (cards as text) and gp-vl (cards only in the image)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

from tasks.generalpoints.cards import RULE_TEXT

_HEAD = (
    "You are playing GeneralPoints, a card game of arithmetic. {where} "
    "Your goal is an equation that combines the values of all four cards to make exactly {target}.\n"
    "Card values: 'A' counts as 1, the cards '2' to '10' count as their number, and {rule}.\n"
    "Use each card exactly once: every card's value appears in the formula as many times as the card "
    "is in the hand, no more and no less. Other numbers are not allowed.\n"
    "Only these operators may appear in the formula: + - * / ( ) =\n"
)
_TAIL = (
    "Reply with a JSON object with three fields:\n"
    '  "cards": the four cards you {see}, e.g. ["5", "J", "A", "9"],\n'
    '  "number": their values under the rule above, e.g. [5, {j}, 1, 9],\n'
    '  "formula": an equation over those values equal to {target}, shaped like "(a+b)*c-d={target}".\n'
    'Example shape: {{"cards": [...], "number": [...], "formula": "..."}}'
)


@lru_cache(maxsize=64)
def _template(vision: bool, rule: str, target: int) -> str:
    """Everything but the hand, formatted once per (modality, rule, target)."""
    where = ("The image shows four playing cards." if vision else "You are given four playing cards.")
    j = "10" if rule == "train" else "11"
    head = _HEAD.format(where=where, target=target, rule=RULE_TEXT[rule])
    tail = _TAIL.format(see="see in the image" if vision else "were given", j=j, target=target)
    if vision:
        return head + tail
    # the "{cards}" slot is added after formatting and filled per hand with one str.replace
    return head + "Your cards: {cards}\n" + tail


def build_prompt(card_names: Sequence[str], rule: str, target: int, vision: bool) -> str:
    """The first user message of an episode. gp-vl names no card: reading them is part of the task."""
    text = _template(vision, rule, target)
    if vision:
        return text
    return text.replace("{cards}", "[" + ", ".join(f"'{c}'" for c in card_names) + "]", 1)
