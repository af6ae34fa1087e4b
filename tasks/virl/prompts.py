"""What the model reads each step: the task, the whole instruction, its history, the current observation."""

from __future__ import annotations

from tasks.virl.instructions import format_instruction
from tasks.virl.routes import RailStep
from tasks.virl.verifier import FORMAT_HINT

GRID_LAYOUT = ("You observe a 2x2 grid of street views around you: front (top left), right (top right), "
               "back (bottom left), left (bottom right).")
_SIDE_PHRASE = {"right": "on your right", "left": "on your left", "front": "in front of you",
                "back": "behind you"}
INTERSECTION = "You observe an intersection."


def landmark_phrase(visible: list[tuple[str, str]]) -> str:
    if not visible:
        return "No landmarks nearby."
    parts = [f"{name} {_SIDE_PHRASE[side]}" for name, side in visible]
    listed = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
    return f"You observe {listed}."


def full_observation(step: RailStep) -> str:
    """Everything there is to see at a rail step, landmarks named: virl-l's observation, and what a perfect
    observer answers in ``current observation`` (the oracle's answer on virl-vl too)."""
    text = landmark_phrase(step.visible())
    return f"{text} {INTERSECTION}" if step.is_intersection else text


def shown_observation(step: RailStep, vision: bool) -> str:
    """The observation text the model is given. With images it never names a landmark."""
    if not vision:
        return full_observation(step)
    return f"{GRID_LAYOUT} {INTERSECTION}" if step.is_intersection else GRID_LAYOUT


def history_observation(step: RailStep, vision: bool) -> str:
    if not vision:
        return full_observation(step)
    return "Street views. " + INTERSECTION if step.is_intersection else "Street views."


def action_space_text(actions: tuple[str, ...]) -> str:
    turns = [a[len("turn_direction("):-1] for a in actions if a.startswith("turn_direction(")]
    return ('"forward()": move forward one step along the street\n'
            '"turn_direction(x)": turn to face x and start walking that way; x is one of '
            + ", ".join(turns) + "\n"
            '"stop()": you have reached the destination; the navigation is finished')


TASK = ("You are navigating a city on foot by following a route instruction. Each step you get the whole "
        "instruction, what you observed and did at the previous steps, and your current observation. Work out "
        "which sentence of the instruction you are carrying out now, then take one action.")


def build_prompt(sentences: list[str], history: list[tuple[str, str]], current: str, history_now: str,
                 actions: tuple[str, ...]) -> str:
    lines = [f"O_{i + 1}: {o}\nA_{i + 1}: {a}" for i, (o, a) in enumerate(history)]
    n = len(history) + 1
    lines.append(f"O_{n}: {history_now}\nA_{n}:")
    return (f"[Task]\n{TASK}\n\n[Instruction]\n{format_instruction(sentences)}\n\n[Action space]\n"
            f"{action_space_text(actions)}\n\n[Observations and actions so far]\n" + "\n".join(lines)
            + f"\n\n[Current observation]\n{current}\n\n[Output]\n{FORMAT_HINT}")
