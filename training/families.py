"""Procedural shape families with named parts and varying topology."""
from __future__ import annotations

from .primitives import Assembly, Part

CHAIR_PARTS = {0: "seat", 1: "back", 2: "leg", 3: "arm"}


def chair(
    seat_height: float = 0.45,
    seat_width: float = 0.5,
    seat_depth: float = 0.5,
    seat_thickness: float = 0.06,
    back_height: float = 0.5,
    leg_thickness: float = 0.05,
    arms: bool = False,
    arm_height: float = 0.22,
) -> Assembly:
    """A four-legged chair in the model convention: +Y up, front facing -Z, back at +Z."""
    w, d, t = seat_width, seat_depth, seat_thickness
    top = seat_height + t
    parts = [Part("box", (0, seat_height + t / 2, 0), (w, t, d), 0)]
    parts.append(Part("box", (0, top + back_height / 2, d / 2 - 0.03), (w, back_height, 0.06), 1))
    lt = leg_thickness
    for sx in (-1, 1):
        for sz in (-1, 1):
            c = (sx * (w / 2 - lt / 2), seat_height / 2, sz * (d / 2 - lt / 2))
            parts.append(Part("box", c, (lt, seat_height, lt), 2))
    if arms:
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.03)
            parts.append(Part("box", (x, top + arm_height, -0.03), (0.06, 0.04, d - 0.06), 3))
            parts.append(Part("box", (x, top + arm_height / 2, -d / 2 + 0.06), (0.04, arm_height, 0.04), 3))
    return Assembly(parts, dict(CHAIR_PARTS))
