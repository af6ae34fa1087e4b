"""The GeneralPoints Gymnasium environment (gp-l: cards in text, gp-vl: cards in an image).

One episode is one solvable hand. The model answers; a wrong answer gets the verifier's message as the
next user turn and may answer again, up to ``verify_iter`` answers; a correct formula ends the episode.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import orjson

from harness.env import TextEnv
from harness.types import Observation
from tasks.generalpoints import solver
from tasks.generalpoints.cards import (
    FACE_RANKS,
    SUIT_GLYPHS,
    Card,
    card_name,
    check_rule,
    hand_values,
    make_deck,
    parse_suits,
)
from tasks.generalpoints.prompts import build_prompt
from tasks.generalpoints.render import DEFAULT_SIZE, parse_size, render_hand
from tasks.generalpoints.solver import combine
from tasks.generalpoints.verifier import Judge

_REMINDER = ' Answer again with the JSON object {"cards": [...], "number": [...], "formula": "..."}.'


class GeneralPointsEnv(TextEnv):
    """Args: ``vision`` (gp-vl), ``rule`` (``train``: J/Q/K = 10, ``ood``: 11/12/13), ``suits``
    (``black``, ``red``, ``all`` or names), ``target``, ``face_card`` (require a J/Q/K in the hand; default:
    on for the ood rule), ``image_size`` (N or WxH), ``verify_iter`` (answers allowed per episode)."""

    def __init__(self, *, vision: bool = False, rule: str = "train", suits: str | Sequence[str] = "all",
                 target: int | str = solver.DEFAULT_TARGET, face_card: bool | str | None = None,
                 image_size: object = DEFAULT_SIZE, verify_iter: int | str = 5) -> None:
        self.vision = bool(vision)
        self.rule = check_rule(rule)
        self.suits = parse_suits(suits)
        self.target = _as_int(target, "target")
        self.verify_iter = _as_int(verify_iter, "verify_iter")
        if self.verify_iter < 1:
            raise ValueError(f"verify_iter must be >= 1, got {self.verify_iter}")
        self.face_card = self.rule == "ood" if face_card is None else _as_bool(face_card)
        self.image_size = parse_size(image_size)
        self.deck: tuple[Card, ...] = make_deck(self.suits)
        self.table = solver.load_table(self.target)
        self._values = hand_values(range(14), self.rule)  # rank -> value, as a tuple for speed
        self._check_some_hand_eligible()
        self._rng = random.Random()
        self.hand: list[Card] = []
        self._judge: Judge | None = None
        self._solution = ""
        self._answers = 0
        self._card_hits = 0
        self._done = True

    def _check_some_hand_eligible(self) -> None:
        """Rejection sampling would never stop if no hand the deck can deal is solvable."""
        per_rank = len(self.suits)
        for key in solver.ALL_KEYS:  # rank multisets: the table is over values, so map through the rule
            if any(key.count(r) > per_rank for r in set(key)):
                continue
            if self.face_card and not FACE_RANKS.intersection(key):
                continue
            if self.table[tuple(sorted(self._values[r] for r in key))]:  # type: ignore[index]
                return
        raise ValueError(f"no hand dealt from suits {list(self.suits)} under rule {self.rule!r} "
                         f"can make {self.target}")

    # ------------------------------------------------------------------------------------ gymnasium
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        if seed is not None:
            self._rng = random.Random(seed)
        rng, deck, table, vals, face = self._rng, self.deck, self.table, self._values, self.face_card
        while True:  # rejection sampling keeps the deck's natural distribution over solvable hands
            hand = rng.sample(deck, 4)
            ranks = [c[0] for c in hand]
            if face and ranks[0] < 11 and ranks[1] < 11 and ranks[2] < 11 and ranks[3] < 11:
                continue
            values = [vals[r] for r in ranks]
            sols = table[tuple(sorted(values))]  # type: ignore[index]
            if sols:
                break
        self.hand = hand
        self._ranks = ranks
        self._hand_values = values
        self._solution = sols[0]
        self._judge = Judge(ranks, values, self.target, self.vision)
        self._answers = 0
        self._card_hits = 0
        self._done = False
        names = [card_name(r) for r in ranks]
        self._names = names
        text = build_prompt(names, self.rule, self.target, self.vision)
        images = (render_hand(hand, self.image_size),) if self.vision else ()
        return Observation(text=text, images=images, new_context=True), {}

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self._done or self._judge is None:
            raise RuntimeError("the episode is over; call reset() first")
        v = self._judge(action if isinstance(action, str) else str(action))
        self._answers += 1
        success = v.verdict == "success"
        turn: dict[str, Any] = {"verdict": v.verdict}
        if self.vision:
            turn["cards_correct"] = v.cards_correct
            self._card_hits += bool(v.cards_correct)
        terminated = success or self._answers >= self.verify_iter
        info: dict[str, Any] = {"feedback": v.message, "turn": turn}
        if terminated:
            self._done = True
            info["episode"] = self._summary(success)
            return Observation(text=v.message), v.reward, True, False, info
        return Observation(text=v.message + _REMINDER), v.reward, False, False, info

    def _summary(self, success: bool) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if self.vision:
            metrics["recognition_accuracy"] = (self._card_hits, self._answers)
        details = {
            "cards": [card_name(r) + SUIT_GLYPHS[s] for r, s in self.hand],
            "values": self._hand_values,
            "target": self.target,
            "rule": self.rule,
            "solution": self._solution,
        }
        return {"success": success, "metrics": metrics, "details": details}

    # ------------------------------------------------------------------------------------- policies
    def expert_action(self) -> str:
        """The hand's shortest known solution, with the cards read correctly."""
        return orjson.dumps({"cards": self._names, "number": self._hand_values,
                             "formula": f"{self._solution}={self.target}"}).decode()

    def random_action(self, rng: random.Random) -> str:
        """A formula over four numbers with random order, operators and tree shape: well-formed, using
        every card once, right only by chance. On gp-l the cards are given in the prompt, so the policy
        copies them; on gp-vl it cannot see, so it guesses four ranks and uses their values."""
        if self.vision:
            ranks = [rng.randint(1, 13) for _ in range(4)]
            names = [card_name(r) for r in ranks]
            values = [self._values[r] for r in ranks]
        else:
            names, values = self._names, list(self._hand_values)
        items = [(str(v), 3) for v in values]
        rng.shuffle(items)
        while len(items) > 1:
            i = rng.randrange(len(items) - 1)
            items[i:i + 2] = [combine(items[i], rng.choice("+-*/"), items[i + 1])]
        return orjson.dumps({"cards": names, "number": values, "formula": f"{items[0][0]}={self.target}"}).decode()

    # ----------------------------------------------------------------------------------- inspection
    @property
    def values(self) -> list[int]:
        return list(self._hand_values)

    @property
    def solutions(self) -> tuple[str, ...]:
        """Every known solution of the current hand (canonical minimal-parenthesis form)."""
        return solver.all_solutions(tuple(sorted(self._hand_values)), self.target)


def _as_int(x: object, name: str) -> int:
    if isinstance(x, bool):
        raise ValueError(f"{name} must be an integer, got {x!r}")
    try:
        return int(x)  # type: ignore[call-overload]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be an integer, got {x!r}") from None


def _as_bool(x: object) -> bool:
    if isinstance(x, str):
        if x.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if x.strip().lower() in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"expected a boolean, got {x!r}")
    return bool(x)
