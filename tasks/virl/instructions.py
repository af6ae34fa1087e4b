"""Route instructions in the paper's wording, and the normalisation used to judge a quoted sentence."""

from __future__ import annotations

import re

from tasks.virl.geometry import relative_turn, side_of
from tasks.virl.routes import Route, Sighting


def _where(cue: Sighting, heading: float) -> str:
    return f"{cue.name} is on your {side_of(cue.bearing - heading)}"


def instruction_sentences(route: Route) -> list[str]:
    """Sentence ``2j`` turns onto leg ``j``, sentence ``2j+1`` walks it.

    The side named for a landmark is taken relative to the leg's heading, i.e. the way the agent faces when
    it arrives, which is also the side its observation reports there.
    """
    out: list[str] = []
    prev = route.init_heading
    last = len(route.headings) - 1
    for j, h in enumerate(route.headings):
        lead = "First, turn" if j == 0 else "Turn"
        out.append(f"{lead} {relative_turn(prev, h)} to face {route.directions[j]}.")
        cue = route.cues[j]
        if j == last:
            out.append(f"Move forward until you reach destination where {_where(cue, h)}." if cue
                       else "Move forward until you reach destination.")
        elif cue is None:
            out.append("Move forward until you reach next intersection.")
        else:
            out.append(f"Move forward until you reach next intersection where {_where(cue, h)}.")
        prev = h
    return out


def format_instruction(sentences: list[str]) -> str:
    return "\n".join(f"{i + 1}. {s}" for i, s in enumerate(sentences))


_NUMBERING = re.compile(r"^\s*(?:step\s*)?\d{1,3}\s*[.):-]\s*", re.IGNORECASE)
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise_sentence(text: str) -> str:
    """Case, punctuation, spacing and a leading number ("3. ") don't matter; the words do."""
    text = _NUMBERING.sub("", text.strip()[:2000])
    return " ".join(_NON_WORD.sub(" ", text.lower()).split())
