"""Route milestones, instruction sentences and turn labels, built as the paper's V-IRL env builds them.

A route's ``milestone_info`` text holds one ``{ ... }`` block per leg, one ``"key": "value"`` pair a line
(trailing commas allowed). :func:`parse_milestone_text` reads it the way the paper's ``parse_navigation_string``
does: split on ``}``, drop leading ``{``, split each line at its first ``:``, strip quotes from key and value.

From the milestones, :func:`build_instructions` makes, for leg ``j`` (heading ``h_j``, named ``d_j``):

* the absolute action ``turn_direction(d_j)`` and the relative one from the previous heading (the start heading
  for the first leg). The relative label uses the *plain* difference ``h_j - h_prev`` without wrapping it into
  [-180, 180]: below -45 is ``left``, above 45 ``right``, -45..0 ``slightly left``, 0..45 ``slightly right``.
  So a turn from 350 to 10 degrees is labelled ``left`` (a compass would say slightly right): the paper's quirk,
  kept because its labels are what its models were trained and scored on.
* two sentences: ``"First, turn"`` (later ``"Turn"``) ``" <relative> to face <d_j>."``, then ``"Move forward until
  you reach next intersection."`` - with ``" where <landmarks>"`` before the period when the milestone names one
  - and for the last leg ``"Move forward until you reach destination where <landmarks>."`` (even when that text
  is "No landmark nearby", as in the paper).
"""

from __future__ import annotations

from dataclasses import dataclass

NO_LANDMARK = "No landmark nearby"  # the milestone default (singular), as in the paper
NO_LANDMARKS = "No landmarks nearby"  # what points without a landmark observe (plural), as in the paper


class MilestoneError(ValueError):
    """A milestone the paper's env could not use (its code would crash); the message says which field."""


@dataclass(frozen=True)
class Milestone:
    landmarks: str  # e.g. "Starbucks is on your right front", or NO_LANDMARK
    heading: int  # degrees, the number before the brackets in "177 (south)"
    direction: str  # the name in the brackets


def parse_milestone_text(text: str) -> list[dict[str, str]]:
    """The paper's ``parse_navigation_string``: a list of dicts, one per non-empty ``{...}`` block."""
    out: list[dict[str, str]] = []
    for block in text.split("}"):
        block = block.strip().lstrip("{").strip()
        if not block:
            continue
        fields: dict[str, str] = {}
        for line in block.split("\n"):
            line = line.strip().rstrip(",")
            if not line or ":" not in line:
                continue
            key, value = line.split(":", 1)
            fields[key.strip().strip("\"'")] = value.strip().strip("\"'")
        if fields:
            out.append(fields)
    return out


def parse_heading(text: str) -> tuple[int, str]:
    """``"177 (south)"`` -> ``(177, "south")`` exactly as the paper splits it, or :class:`MilestoneError`."""
    parts = text.split("(")
    if len(parts) < 2:
        raise MilestoneError(f"'to_next_intersection_heading' {text[:80]!r} has no '(direction)'")
    direction = parts[1].split(")")[0]
    number = parts[0].strip()
    if len(number) > 12:
        raise MilestoneError(f"'to_next_intersection_heading' {text[:80]!r}: the heading is not a small integer")
    try:
        deg = int(number)
    except ValueError:
        raise MilestoneError(f"'to_next_intersection_heading' {text[:80]!r}: {number[:20]!r} is not an integer "
                             "number of degrees") from None
    if not -720 <= deg <= 720:
        raise MilestoneError(f"'to_next_intersection_heading' {text[:80]!r}: {deg} degrees is out of range")
    return deg, direction


def milestones_from_dicts(blocks: list[dict[str, str]]) -> list[Milestone]:
    out = []
    for j, block in enumerate(blocks):
        heading = block.get("to_next_intersection_heading")
        if heading is None:
            raise MilestoneError(f"milestone {j}: missing 'to_next_intersection_heading'")
        try:
            deg, direction = parse_heading(heading)
        except MilestoneError as exc:
            raise MilestoneError(f"milestone {j}: {exc}") from None
        out.append(Milestone(block.get("landmarks", NO_LANDMARK), deg, direction))
    return out


def relative_label(diff: float) -> str:
    """The paper's relative turn label for an unwrapped heading difference."""
    if diff < -45:
        return "left"
    if diff > 45:
        return "right"
    if diff <= 0:
        return "slightly left"
    return "slightly right"


@dataclass(frozen=True)
class Instructions:
    sentences: tuple[str, ...]
    absolute_actions: tuple[str, ...]  # one per milestone, then "stop()"
    relative_actions: tuple[str, ...]
    headings: tuple[float, ...]  # the start heading, then each milestone's
    observations: tuple[str, ...]  # per rail stop: NO_LANDMARKS at the start, then each milestone's landmarks

    @property
    def text(self) -> str:
        """The numbered instruction the prompt shows (one ``"N. sentence"`` a line)."""
        return "".join(f"{i + 1}. {s}\n" for i, s in enumerate(self.sentences))


def build_instructions(milestones: list[Milestone], start_heading: float) -> Instructions:
    sentences: list[str] = []
    absolute: list[str] = []
    relative: list[str] = []
    headings: list[float] = [start_heading]
    prev = start_heading
    last = len(milestones) - 1
    for j, m in enumerate(milestones):
        rel = relative_label(m.heading - prev)
        headings.append(m.heading)
        prev = m.heading
        absolute.append(f"turn_direction({m.direction})")
        relative.append(f"turn_direction({rel})")
        if j == last:
            sentences.append(f"Turn {rel} to face {m.direction}.")
            sentences.append(f"Move forward until you reach destination where {m.landmarks}.")
        else:
            sentences.append(f"{'First, turn' if j == 0 else 'Turn'} {rel} to face {m.direction}.")
            sentences.append("Move forward until you reach next intersection." if m.landmarks == NO_LANDMARK
                             else f"Move forward until you reach next intersection where {m.landmarks}.")
    return Instructions(tuple(sentences), (*absolute, "stop()"), (*relative, "stop()"), tuple(headings),
                        (NO_LANDMARKS, *(m.landmarks for m in milestones)))
