"""The GeneralPoints Gymnasium environment (gp-l: cards in text, gp-vl: cards in an image), with the paper's
episode flow.

One episode is one solvable hand. The model answers; a wrong answer gets ``"You failed this trial because
..."`` as the next user turn of the same conversation (the image only in the first turn) and answers again.
Up to ``verify_iter`` answers are judged (5 by default, as in the paper); a +5 ends the episode. When the budget
is spent the paper's env asks once more and scores that answer -1 without reading it (``step_limit_reached``),
then stops; ``answer_after_budget=false`` ends the episode right after the last judged answer instead.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

from harness.env import TextEnv
from harness.types import Observation
from tasks.generalpoints import solver
from tasks.generalpoints.cards import (
    FACE_RANKS,
    SUIT_GLYPHS,
    Card,
    card_name,
    check_rule,
    deal,
    deal_ranks,
    hand_values,
    parse_card,
    parse_suits,
)
from tasks.generalpoints.prompts import make_prompt
from tasks.generalpoints.render import DEFAULT_SIZE, parse_size, render_hand
from tasks.generalpoints.render import card_images as load_card_images
from tasks.generalpoints.verifier import R_NO_SOLUTION, Judge

STEP_LIMIT = "step_limit_reached"


class GeneralPointsEnv(TextEnv):
    """Args: ``vision`` (gp-vl), ``rule`` (``train``: J/Q/K = 10, ``ood``: 11/12/13), ``suits`` (``black``, ``red``,
    ``all`` or names), ``target``, ``face_card`` (deal one face card into every hand; default: on for the ood
    rule), ``image_size`` (N or WxH), ``card_images`` (a directory of the paper's card PNGs), ``prompt``,
    ``prompt_file``, ``face_card_msg`` (see :mod:`tasks.generalpoints.prompts`), ``verify_iter`` (answers
    judged per episode), ``answer_after_budget`` (the paper's extra, unjudged answer)."""

    def __init__(self, *, vision: bool = False, rule: str = "train", suits: str | Sequence[str] = "all",
                 target: int | str = solver.DEFAULT_TARGET, face_card: bool | str | None = None,
                 image_size: object = DEFAULT_SIZE, card_images: str | None = None, prompt: str | None = None,
                 prompt_file: str | None = None, face_card_msg: str | None = None,
                 answer_after_budget: bool | str = True, verify_iter: int | str = 5) -> None:
        self.vision = bool(vision)
        self.rule = check_rule(rule)
        self.suits = parse_suits(suits)
        self.target = _as_int(target, "target")
        self.verify_iter = _as_int(verify_iter, "verify_iter")
        if self.verify_iter < 1:
            raise ValueError(f"verify_iter must be >= 1, got {self.verify_iter}")
        self.face_card = self.rule == "ood" if face_card is None else _as_bool(face_card, "face_card")
        self.answer_after_budget = _as_bool(answer_after_budget, "answer_after_budget")
        self.image_size = parse_size(image_size)
        self.card_images = load_card_images(str(card_images)) if card_images and self.vision else None
        if face_card_msg is not None and not isinstance(face_card_msg, str):
            raise ValueError(f"face_card_msg must be text, got {face_card_msg!r}")
        self.prompt = make_prompt(self.vision, prompt, prompt_file, face_card_msg)
        solver.solution_table(self.target)  # validates the target and builds the table once
        self._check_some_hand_solvable()
        self._rng: random.Random | None = None
        self.hand: list[Card] = []
        self._values: list[int] = []
        self._plain: list[str] = []
        self._judge: Judge | None = None
        self._done = True

    def _check_some_hand_solvable(self) -> None:
        """The paper redraws until solvable: that must be able to end."""
        for key in solver.ALL_KEYS:  # rank multisets
            if self.face_card and not FACE_RANKS.intersection(key):
                continue
            if solver.is_solvable(hand_values(key, self.rule), self.target):
                return
        raise ValueError(f"no hand under rule {self.rule!r} can make {self.target}")

    # ------------------------------------------------------------------------------------ gymnasium
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Observation, dict[str, Any]]:
        super().reset(seed=seed)
        if seed is not None:
            self._rng = random.Random(seed)
        elif self._rng is None:
            self._rng = random.Random(int(self.np_random.integers(0, 2**62)))
        rng = self._rng
        if options and options.get("cards") is not None:
            hand = self._given_hand(options["cards"], rng)
        else:
            while True:
                hand = deal(rng, self.face_card, self.suits)
                if solver.is_solvable(hand_values([r for r, _ in hand], self.rule), self.target):
                    break
        self.hand = hand
        self._values = hand_values([r for r, _ in hand], self.rule)
        self._plain = [card_name(r) for r, _ in hand]
        self._judge = Judge(self._values, self._plain, self.target, self.vision)
        self._answers = 0
        self._card_hits = 0
        self._success = False
        self._done = False
        text = self.prompt.render(self._plain, self.rule, self.target)
        images = (render_hand(hand, self.image_size, self.card_images),) if self.vision else ()
        return Observation(text=text, images=images, new_context=True), {"cards": self.card_names}

    def _given_hand(self, cards: Any, rng: random.Random) -> list[Card]:
        if not isinstance(cards, list | tuple) or len(cards) != 4:
            raise ValueError(f"options['cards'] must list 4 cards, got {cards!r}")
        return [parse_card(c, default_suit=rng.choice(self.suits)) for c in cards]

    def step(self, action: str) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        if self._done or self._judge is None:
            raise RuntimeError("the episode is over; call reset() first")
        if self._answers >= self.verify_iter:  # the paper's one extra answer after the budget
            return self._end(R_NO_SOLUTION, {"feedback": "", "turn": {"verdict": STEP_LIMIT}}, truncated=True)
        v = self._judge(action if isinstance(action, str) else "")
        self._answers += 1
        turn: dict[str, Any] = {"verdict": v.verdict, "messages": list(v.messages)}
        if self.vision:
            turn["cards_correct"] = v.cards_correct
            self._card_hits += bool(v.cards_correct)
        info: dict[str, Any] = {"feedback": v.feedback, "turn": turn}
        if v.verdict == "success":
            self._success = True
            return self._end(v.reward, info, truncated=False)
        if self._answers >= self.verify_iter and not self.answer_after_budget:
            return self._end(v.reward, info, truncated=True)
        return Observation(text=v.feedback), v.reward, False, False, info

    def _end(self, reward: float, info: dict[str, Any], truncated: bool
             ) -> tuple[Observation, float, bool, bool, dict[str, Any]]:
        self._done = True
        info["episode"] = self._summary()
        return Observation(text=""), reward, not truncated, truncated, info

    def _summary(self) -> dict[str, Any]:
        metrics: dict[str, Any] = {}
        if self.vision:
            metrics["recognition_accuracy"] = (self._card_hits, self._answers)
        details = {"cards": self.card_names, "plain_cards": list(self._plain), "values": list(self._values),
                   "target": self.target, "rule": self.rule, "answers_judged": self._answers,
                   "solution": solver.preferred_solution(self._values, self.target)}
        return {"success": self._success, "metrics": metrics, "details": details}

    # ------------------------------------------------------------------------------------- policies
    def expert_action(self) -> str:
        """A correct answer in the layout the paper's SFT data uses (not strict JSON: single-quoted card names,
        a trailing comma, one field a line)."""
        sol = solver.preferred_solution(self._values, self.target)
        return paper_layout(self._plain, self._values, f"{sol}={self.target}" if sol else "")

    def random_action(self, rng: random.Random) -> str:
        """A formula over four numbers with random order, operators and bracket placement, in the paper's layout.
        On gp-l the cards are given, so the policy copies them; on gp-vl it cannot see, so it guesses four ranks
        and uses their values."""
        if self.vision:
            ranks = deal_ranks(rng, False)
            names, values = [card_name(r) for r in ranks], hand_values(ranks, self.rule)
        else:
            names, values = list(self._plain), list(self._values)
        order = list(values)
        rng.shuffle(order)
        ops = tuple(rng.choice(solver.OPS) for _ in range(3))
        text = solver.layout(tuple(order), ops, rng.choice(solver.BRACKETS))
        return paper_layout(names, values, f"{text}={self.target}")

    # ----------------------------------------------------------------------------------- inspection
    @property
    def card_names(self) -> list[str]:
        return [card_name(r) + SUIT_GLYPHS[s] for r, s in self.hand]

    @property
    def values(self) -> list[int]:
        return list(self._values)

    @property
    def solutions(self) -> tuple[str, ...]:
        """The paper's solution strings for the current hand."""
        return solver.solutions(self._values, self.target)


def paper_layout(cards: Sequence[str], numbers: Sequence[int], formula: str) -> str:
    """An answer in the paper's response layout: ``{`` / one field a line / a trailing comma / ``}``."""
    card_list = "[" + ", ".join(f"'{c}'" for c in cards) + "]"
    number_list = "[" + ", ".join(str(n) for n in numbers) + "]"
    return f'{{\n  "cards": {card_list},\n  "number": {number_list},\n  "formula": "{formula}",\n}}'


def _as_int(x: object, name: str) -> int:
    if isinstance(x, bool) or (isinstance(x, float) and not x.is_integer()):
        raise ValueError(f"{name} must be an integer, got {x!r}")
    try:
        return int(x)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        raise ValueError(f"{name} must be an integer, got {x!r}") from None


def _as_bool(x: object, name: str) -> bool:
    if isinstance(x, bool):
        return x
    if isinstance(x, str):
        if x.strip().lower() in ("1", "true", "yes", "on"):
            return True
        if x.strip().lower() in ("0", "false", "no", "off"):
            return False
    raise ValueError(f"{name} must be true or false, got {x!r}")

