from __future__ import annotations

import hashlib

import pytest
from PIL import ImageChops

from harness_tasks.virl.env import VirlEnv, _Drawn
from harness_tasks.virl.render import StreetViewRenderer, sign_slots, sign_view
from harness_tasks.virl.routes import Scene, Sighting


def _step(heading: float, sightings: tuple[Sighting, ...], inter: bool = True) -> _Drawn:
    return _Drawn(heading, Scene(inter, sightings, (0.0, 90.0, 180.0, 270.0)), inter, 0)


def _differs(a, b, box) -> bool:
    return ImageChops.difference(a.crop(box), b.crop(box)).getbbox() is not None


def test_sign_view_by_side() -> None:
    # right of the heading -> right view (1); left -> left view (3); dead ahead/behind -> front/back
    assert sign_view(45)[0] == 1 and sign_view(135)[0] == 1 and sign_view(90) == (1, 0.0)
    assert sign_view(225)[0] == 3 and sign_view(315)[0] == 3
    assert sign_view(0) == (0, 0.0) and sign_view(180) == (2, 0.0)
    # ahead-right is left of centre in the right view, behind-right right of centre
    (v1, x1, _), (v2, x2, _) = sign_slots([45.0, 135.0])
    assert v1 == v2 == 1 and x1 < 0.5 < x2
    (_, xa, _), = sign_slots([45.0])
    (_, xb, _), = sign_slots([135.0])
    assert xa < 0.5 < xb


@pytest.mark.parametrize("heading", [0.0, 90.0, 225.0])
def test_landmark_drawn_in_the_right_view_and_side(heading: float) -> None:
    r = StreetViewRenderer("nyc", 512)
    ahead_right = Sighting("Hudson Coffee", "cafe", (heading + 45) % 360)
    behind_left = Sighting("Astor Bank", "bank", (heading + 225) % 360)
    step = _step(heading, (ahead_right, behind_left))
    bare = r.render(step, with_signs=False)
    full = r.render(step)
    slots = sign_slots([45.0, 225.0])
    right_box = r.sign_box(*slots[0][:2], slots[0][2])
    left_box = r.sign_box(*slots[1][:2], slots[1][2])
    assert slots[0][0] == 1 and slots[1][0] == 3
    assert _differs(full, bare, right_box) and _differs(full, bare, left_box)
    # front and back views are untouched; the right view's other half too
    for view in (0, 2):
        ox, oy = r.origin(view)
        assert not _differs(full, bare, (ox, oy, ox + r.v, oy + r.v))
    ox, oy = r.origin(1)
    assert not _differs(full, bare, (ox + r.v // 2 + 4, oy, ox + r.v, oy + r.v))
    # the sign carries the name: two different names give different pixels in the same box
    other = r.render(_step(heading, (Sighting("Hudson Books", "cafe", ahead_right.bearing), behind_left)))
    assert _differs(full, other, right_box)


def test_env_draws_the_landmark_the_instruction_names() -> None:
    env = VirlEnv(vision=True, image_size=128)
    checked = 0
    for seed in range(6):
        env.reset(seed=seed)
        for step in env.rail:
            if step.stop is None or not env.route.scenes[step.stop].sightings:
                continue
            scene = env.route.scenes[step.stop]
            bare = StreetViewRenderer("nyc", 128).render(_Drawn(step.heading, scene, scene.is_intersection,
                                                                 7 * step.leg + step.index), with_signs=False)
            assert _differs(env.render(step), bare, (0, 0, bare.width, bare.height))
            # the landmark the milestone text names is among those drawn there
            if step.landmarks != "No landmarks nearby" and " is on your " in step.landmarks:
                assert step.landmarks.split(" is on your ")[0] in {s.name for s in scene.sightings}
            checked += 1
    assert checked >= 10


def _digest(style: str, seed: int, size: int = 128) -> str:
    env = VirlEnv(vision=True, styles=(style,), image_size=size)
    obs, _ = env.reset(seed=seed)
    h = hashlib.sha256(obs.images[0].tobytes())
    for _ in range(4):
        obs = env.step(env.expert_action())[0]
        h.update(obs.images[0].tobytes())
    return h.hexdigest()


def test_same_seed_same_pixels() -> None:
    assert _digest("nyc", 7) == _digest("nyc", 7)
    assert _digest("nyc", 7) != _digest("nyc", 8)
    assert _digest("paris", 7) != _digest("nyc", 7)


def test_image_size_is_per_view_with_the_papers_gaps() -> None:
    env = VirlEnv(vision=True, image_size=300)
    obs, _ = env.reset(seed=1)
    assert obs.images[0].size == (605, 605) and obs.images[0].mode == "RGB"
    assert obs.images[0].getpixel((302, 10)) == (0, 0, 0)
    with pytest.raises(ValueError):
        VirlEnv(vision=True, image_size=10)
