"""Playing cards for GeneralPoints: ranks, suits, the two face-card rules, and dealing as the paper deals.

A card is a ``(rank, suit)`` pair with rank 1..13 (1 = ace, 11..13 = J, Q, K) and suit one of ``SUITS``.
A *rule* maps ranks to the numbers the model computes with.

Dealing (the paper's ``_generate_cards``): four ranks independent and uniform on 1..13 (repeats allowed); with
``face_card`` (the OOD-rule split), three uniform ranks plus one uniform face rank (11..13), shuffled; each
card's suit independent and uniform on the split's colour set. The whole hand is redrawn until the paper's
solver finds a solution (:mod:`harness_tasks.generalpoints.solver`).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from typing import Literal

Rule = Literal["train", "ood"]
Card = tuple[int, str]

RANKS: tuple[int, ...] = tuple(range(1, 14))
RANK_NAMES: dict[int, str] = {1: "A", 11: "J", 12: "Q", 13: "K"} | {r: str(r) for r in range(2, 11)}
RANK_LETTERS: dict[int, str] = {**RANK_NAMES, 10: "T"}  # the paper's card file names
FACE_RANKS = frozenset({11, 12, 13})

SUITS: tuple[str, ...] = ("hearts", "spades", "diamonds", "clubs")
BLACK_SUITS: tuple[str, ...] = ("spades", "clubs")
RED_SUITS: tuple[str, ...] = ("hearts", "diamonds")
SUIT_GLYPHS: dict[str, str] = {"spades": "♠", "clubs": "♣", "hearts": "♥", "diamonds": "♦"}
SUIT_LETTERS: dict[str, str] = {"spades": "S", "clubs": "C", "hearts": "H", "diamonds": "D"}

RULES: tuple[str, ...] = ("train", "ood")
_VALUES: dict[str, tuple[int, ...]] = {  # indexed by rank (index 0 unused)
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


def hand_values(ranks: Sequence[int], rule: str) -> list[int]:
    table = _VALUES[rule]
    return [table[r] for r in ranks]


def card_name(rank: int) -> str:
    """The plain rank name the paper compares recognised cards with: ``A``, ``2``..``10``, ``J``, ``Q``, ``K``."""
    return RANK_NAMES[rank]


def parse_suits(spec: str | Sequence[str]) -> tuple[str, ...]:
    """``"black"``, ``"red"``, ``"all"``, or a list/comma-separated string of suit names."""
    if isinstance(spec, str):
        key = spec.strip().lower()
        if key == "black":
            return BLACK_SUITS
        if key == "red":
            return RED_SUITS
        if key in ("all", "any", "mixed"):
            return SUITS
        spec = [s for s in re.split(r"[,\s]+", key) if s]
    suits = tuple(dict.fromkeys(str(s).strip().lower() for s in spec))
    bad = [s for s in suits if s not in SUITS]
    if bad or not suits:
        raise ValueError(f"unknown suits {bad or spec!r}; use black, red, all, or names from {', '.join(SUITS)}")
    return suits


def deal_ranks(rng: random.Random, face_card: bool) -> list[int]:
    if not face_card:
        return [rng.randint(1, 13) for _ in range(4)]
    ranks = [rng.randint(1, 13) for _ in range(3)] + [rng.randint(11, 13)]
    rng.shuffle(ranks)
    return ranks


def deal(rng: random.Random, face_card: bool, suits: Sequence[str]) -> list[Card]:
    """One hand drawn as the paper draws it (before the solvability check)."""
    ranks = deal_ranks(rng, face_card)
    return [(r, rng.choice(suits)) for r in ranks]


_LETTER_RANK = {v: k for k, v in RANK_LETTERS.items()} | {"10": 10, "1": 1}
_LETTER_SUIT = {v: k for k, v in SUIT_LETTERS.items()}
_GLYPH_SUIT = {v: k for k, v in SUIT_GLYPHS.items()}


def parse_card(text: object, default_suit: str | None = None) -> Card:
    """A card given by name, for ``reset(options={"cards": [...]})``: the paper's file names (``SA``, ``HT``,
    ``D10``), rank then glyph (``K♠``, ``10♥``), or a plain rank (``7``, ``Q``) which takes ``default_suit``."""
    if not isinstance(text, str) or not 1 <= len(text.strip()) <= 4:
        raise ValueError(f"bad card {text!r}: use names like 'SA', 'HT', 'K♠' or a plain rank like 'Q'")
    t = text.strip().upper()
    if t[0] in _LETTER_SUIT and t[1:] in _LETTER_RANK:
        return _LETTER_RANK[t[1:]], _LETTER_SUIT[t[0]]
    if t[-1] in _GLYPH_SUIT and t[:-1] in _LETTER_RANK:
        return _LETTER_RANK[t[:-1]], _GLYPH_SUIT[t[-1]]
    if t in _LETTER_RANK and default_suit is not None:
        return _LETTER_RANK[t], default_suit
    raise ValueError(f"bad card {text!r}: use names like 'SA', 'HT', 'K♠' or a plain rank like 'Q'")
