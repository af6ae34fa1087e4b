"""Playing cards for GeneralPoints: ranks, suits, the two face-card rules, and name parsing.

A card is a ``(rank, suit)`` pair with rank 1..13 (1 = ace, 11..13 = J, Q, K) and suit one of
``SUITS``. A *rule* maps ranks to the numbers the model must compute with.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Literal

Rule = Literal["train", "ood"]
Card = tuple[int, str]

RANKS: tuple[int, ...] = tuple(range(1, 14))
RANK_NAMES: dict[int, str] = {1: "A", 11: "J", 12: "Q", 13: "K"} | {r: str(r) for r in range(2, 11)}
FACE_RANKS = frozenset({11, 12, 13})

SUITS: tuple[str, ...] = ("spades", "clubs", "hearts", "diamonds")
BLACK_SUITS: tuple[str, ...] = ("spades", "clubs")
RED_SUITS: tuple[str, ...] = ("hearts", "diamonds")
SUIT_GLYPHS: dict[str, str] = {"spades": "♠", "clubs": "♣", "hearts": "♥", "diamonds": "♦"}

RULES: tuple[str, ...] = ("train", "ood")
RULE_TEXT: dict[str, str] = {
    "train": "'J', 'Q' and 'K' all count as 10",
    "ood": "'J' counts as 11, 'Q' as 12 and 'K' as 13",
}

# Value of each rank under each rule, indexed by rank (index 0 unused) so lookups are a list index.
_VALUES: dict[str, tuple[int, ...]] = {
    "train": (0, *range(1, 11), 10, 10, 10),
    "ood": (0, *range(1, 14)),
}


def check_rule(rule: str) -> Rule:
    if rule not in _VALUES:
        raise ValueError(f"unknown face-card rule {rule!r}; valid rules: {', '.join(RULES)}")
    return rule  # type: ignore[return-value]


def rank_value(rank: int, rule: str) -> int:
    """The number a card of this rank stands for under ``rule``."""
    return _VALUES[rule][rank]


def hand_values(ranks: Iterable[int], rule: str) -> tuple[int, ...]:
    table = _VALUES[rule]
    return tuple(table[r] for r in ranks)


def card_name(rank: int) -> str:
    return RANK_NAMES[rank]


def parse_suits(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"black"``, ``"red"``, ``"all"``, or a list/comma-separated string of suit names."""
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "black":
            return BLACK_SUITS
        if key == "red":
            return RED_SUITS
        if key in ("all", "any"):
            return SUITS
        spec = [s for s in re.split(r"[,\s]+", key) if s]
    suits = tuple(dict.fromkeys(str(s).strip().lower() for s in spec))
    bad = [s for s in suits if s not in SUITS]
    if bad or not suits:
        raise ValueError(f"unknown suits {bad or spec!r}; use black, red, all, or names from {', '.join(SUITS)}")
    return suits


def make_deck(suits: Sequence[str]) -> tuple[Card, ...]:
    """One card of every rank in every given suit (a standard deck restricted to those suits)."""
    return tuple((r, s) for s in suits for r in RANKS)


# ------------------------------------------------------------------------------------- name parsing

# Spellings models commonly use for a rank. Keys are lower-case with spaces removed.
_RANK_WORDS: dict[str, int] = {
    "a": 1, "ace": 1, "1": 1, "one": 1,
    "t": 10, "ten": 10,
    "j": 11, "jack": 11, "knave": 11,
    "q": 12, "queen": 12,
    "k": 13, "king": 13,
}
_NUMBER_WORDS = ("two", "three", "four", "five", "six", "seven", "eight", "nine")
for _i, _w in enumerate(_NUMBER_WORDS, start=2):
    _RANK_WORDS[_w] = _i
for _r in range(2, 11):
    _RANK_WORDS[str(_r)] = _r

# Suit decorations stripped before reading the rank: "A♠", "Ace of spades", "10 (hearts)", "KS".
_SUIT_NOISE = re.compile(r"spades?|clubs?|hearts?|diamonds?|[♠♣♥♦♤♧♡♢]|\bof\b|[\s()\[\]'\".,_:-]+")


def parse_rank(text: object) -> int | None:
    """The rank a model meant by ``text`` ('A', 'Ace', '1', '10', 'T', 'J', 'Jack', 'K♠', ...), or None."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text if 1 <= text <= 13 else None
    if not isinstance(text, str) or len(text) > 40:
        return None
    key = text.lower()
    hit = _RANK_WORDS.get(key.strip())
    if hit is not None:
        return hit
    key = _SUIT_NOISE.sub("", key)
    hit = _RANK_WORDS.get(key)
    if hit is None and len(key) >= 2 and key[-1] in "shcd":  # compact forms like "KS", "10H"
        hit = _RANK_WORDS.get(key[:-1])
    return hit
