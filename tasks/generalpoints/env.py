"""GeneralPoints as a :class:`harness.simple_task.SimpleTask` (gp-l: cards in text, gp-vl: cards in an image).

One episode is one solvable hand. The model answers; a wrong answer gets ``"You failed this trial because
..."`` as the next user turn of the same conversation (the image only in the first turn) and answers again.
Up to ``verify_iter`` answers are judged (5 by default, as in the paper); a +5 ends the episode. When the budget
is spent the paper's env asks once more and scores that answer -1 without reading it (``step_limit_reached``),
then stops; ``answer_after_budget=false`` ends the episode right after the last judged answer instead.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from harness.checks import as_bool
from harness.simple_task import Judgement, SimpleTask
from harness.types import MetricSpec, Observation, SplitSpec
from harness_tasks.generalpoints import solver
from harness_tasks.generalpoints.cards import (
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
from harness_tasks.generalpoints.prompts import make_prompt
from harness_tasks.generalpoints.render import DEFAULT_SIZE, parse_size, render_hand
from harness_tasks.generalpoints.render import card_images as load_card_images
from harness_tasks.generalpoints.verifier import MAX_ANSWER_CHARS, Judge, parse_answer

PAPER_EPISODES = 234  # the paper's evaluation size per split (evaluation/configs/llama_gp_*.yaml)
PAPER_MAX_NEW_TOKENS = 256
# "paper-1": the paper's protocol (answer reading, summed penalties, feedback turns, dealing, image layout).
# Runs recorded by earlier harness versions (no task version) are never resumed into or mixed with these.
VERSION = "paper-1"


@dataclass(frozen=True)
class Hand:
    cards: tuple[Card, ...]  # (rank, suit) in dealt order
    values: tuple[int, ...]  # the numbers they stand for under the split's rule
    plain: tuple[str, ...]  # plain rank names, as the paper compares recognised cards
    judge: Judge

    @property
    def names(self) -> list[str]:
        return [card_name(r) + SUIT_GLYPHS[s] for r, s in self.cards]


class GeneralPoints(SimpleTask):
    """Task args: ``rule`` (``train``: J/Q/K = 10, ``ood``: 11/12/13), ``suits`` (``black``, ``red``, ``all`` or
    names), ``target``, ``face_card`` (deal one face card into every hand; default: on for the ood rule),
    ``image_size`` (N or WxH), ``card_images`` (a directory of the paper's card PNGs), ``prompt``, ``prompt_file``,
    ``face_card_msg`` (see :mod:`harness_tasks.generalpoints.prompts`), ``answer_after_budget`` (the paper's extra,
    unjudged answer). ``reset(options={"cards": [...]})`` deals a given hand."""

    vision: ClassVar[bool] = False
    verify_iter = 5  # the paper's budget for GeneralPoints
    action_field = "formula"
    version = VERSION
    parse_answer = staticmethod(parse_answer)
    max_answer_chars = MAX_ANSWER_CHARS  # longer answers are judged unread, so history keeps no more

    def __init__(self, *, rule: str = "train", suits: str | Sequence[str] = "all",
                 target: int | str = solver.DEFAULT_TARGET, face_card: bool | str | None = None,
                 image_size: object = DEFAULT_SIZE, card_images: str | None = None, prompt: str | None = None,
                 prompt_file: str | None = None, face_card_msg: str | None = None,
                 answer_after_budget: bool | str = True) -> None:
        self.rule = check_rule(rule)
        self.suits = parse_suits(suits)
        self.target = _as_int(target, "target")
        self.face_card = self.rule == "ood" if face_card is None else as_bool(face_card, "face_card")
        self.answer_after_budget = as_bool(answer_after_budget, "answer_after_budget")
        self.image_size = parse_size(image_size)
        self.card_images = load_card_images(str(card_images)) if card_images and self.vision else None
        if face_card_msg is not None and not isinstance(face_card_msg, str):
            raise ValueError(f"face_card_msg must be text, got {face_card_msg!r}")
        self.prompt_template = make_prompt(self.vision, prompt, prompt_file, face_card_msg)
        solver.solution_table(self.target)  # validates the target and builds the table once
        self._check_some_hand_solvable()

    def _check_some_hand_solvable(self) -> None:
        """The paper redraws until solvable: that must be able to end."""
        for key in solver.ALL_KEYS:  # rank multisets
            if self.face_card and not FACE_RANKS.intersection(key):
                continue
            if solver.is_solvable(hand_values(key, self.rule), self.target):
                return
        raise ValueError(f"no hand under rule {self.rule!r} can make {self.target}")

    # ----------------------------------------------------------------------------------------- problem
    def problem(self, rng: random.Random, options: Mapping[str, Any]) -> Hand:
        if options.get("cards") is not None:
            cards = self._given_hand(options["cards"], rng)
        else:
            while True:
                cards = deal(rng, self.face_card, self.suits)
                if solver.is_solvable(hand_values([r for r, _ in cards], self.rule), self.target):
                    break
        values = tuple(hand_values([r for r, _ in cards], self.rule))
        plain = tuple(card_name(r) for r, _ in cards)
        return Hand(tuple(cards), values, plain, Judge(values, plain, self.target, self.vision))

    def _given_hand(self, cards: Any, rng: random.Random) -> list[Card]:
        if not isinstance(cards, list | tuple) or len(cards) != 4:
            raise ValueError(f"options['cards'] must list 4 cards, got {cards!r}")
        return [parse_card(c, default_suit=rng.choice(self.suits)) for c in cards]

    def prompt(self, hand: Hand) -> Observation:
        text = self.prompt_template.render(hand.plain, self.rule, self.target)
        images = (render_hand(hand.cards, self.image_size, self.card_images),) if self.vision else ()
        return Observation(text=text, images=images, new_context=True)

    def reset_info(self, hand: Hand) -> dict[str, Any]:
        return {"cards": hand.names}

    # --------------------------------------------------------------------------------------- judging
    def judge(self, hand: Hand, answer: str) -> Judgement:
        v = hand.judge(answer)
        fields: dict[str, Any] = {"verdict": v.verdict, "messages": list(v.messages)}
        metrics: dict[str, Any] = {}
        if self.vision:
            fields["cards_correct"] = v.cards_correct
            metrics["recognition_accuracy"] = bool(v.cards_correct)
        return Judgement(v.reward, v.verdict == "success", v.feedback, fields, metrics)

    def summary(self, hand: Hand, judgements: Sequence[Judgement]) -> tuple[dict[str, Any], dict[str, Any]]:
        metrics, _ = super().summary(hand, judgements)
        details = {"cards": hand.names, "plain_cards": list(hand.plain), "values": list(hand.values),
                   "target": self.target, "rule": self.rule, "answers_judged": len(judgements),
                   "solution": solver.preferred_solution(hand.values, self.target)}
        return metrics, details

    # -------------------------------------------------------------------------------------- policies
    def expert(self, hand: Hand) -> str:
        """A correct answer in the layout the paper's SFT data uses (not strict JSON: single-quoted card names,
        a trailing comma, one field a line)."""
        sol = solver.preferred_solution(hand.values, self.target)
        return paper_layout(hand.plain, hand.values, f"{sol}={self.target}" if sol else "")

    def random_answer(self, hand: Hand, rng: random.Random) -> str:
        """A formula over four numbers with random order, operators and bracket placement, in the paper's layout.
        On gp-l the cards are given, so the policy copies them; on gp-vl it cannot see, so it guesses four ranks
        and uses their values."""
        if self.vision:
            ranks = deal_ranks(rng, False)
            names, values = [card_name(r) for r in ranks], hand_values(ranks, self.rule)
        else:
            names, values = list(hand.plain), list(hand.values)
        order = list(values)
        rng.shuffle(order)
        ops = tuple(rng.choice(solver.OPS) for _ in range(3))
        text = solver.layout(tuple(order), ops, rng.choice(solver.BRACKETS))
        return paper_layout(names, values, f"{text}={self.target}")


GP_L_SPLITS = (
    SplitSpec("id", "training rule (J, Q, K = 10); all four suits", "id", {"rule": "train", "suits": "all"}),
    SplitSpec("ood-rule", "OOD rule (J, Q, K = 11, 12, 13); every hand has a face card", "ood",
              {"rule": "ood", "suits": "all"}),
)
GP_VL_SPLITS = (
    SplitSpec("id", "training rule, black suits (spades, clubs)", "id", {"rule": "train", "suits": "black"}),
    SplitSpec("ood-rule", "OOD rule (J, Q, K = 11, 12, 13), black suits; every hand has a face card", "ood",
              {"rule": "ood", "suits": "black"}),
    SplitSpec("ood-visual", "training rule, red suits (hearts, diamonds) never seen in training", "ood",
              {"rule": "train", "suits": "red"}, aliases=("ood-visual-red",)),
)


class GeneralPointsL(GeneralPoints):
    name = "gp-l"
    description = ("GeneralPoints (24 game), cards given as text; answer a formula reaching the target (the "
                   "paper's protocol)")
    splits = GP_L_SPLITS
    gym_id = "harness/gp-l-v0"


class GeneralPointsVL(GeneralPoints):
    name = "gp-vl"
    description = ("GeneralPoints from a rendered image of four cards: recognise them, then reach the target (the "
                   "paper's protocol)")
    modality = "vision"
    vision = True
    splits = GP_VL_SPLITS
    metrics = (MetricSpec("recognition_accuracy", "judged answers whose recognised cards match the hand",
                          kind="ratio"),)
    gym_id = "harness/gp-vl-v0"


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


