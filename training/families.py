"""Procedural shape families with named parts and real topology variation.

Every shape is in the model convention (+Y up, front facing -Z) and is an `Assembly` of
labelled solids, so occupancy is exact and each surface sample carries its part label.
`sample_<family>(rng)` draws the parameters; `<family>(**params)` builds the shape, so a
test can ask for one exact shape.

Topology varies on purpose: stools without a back, armrests or none, 3/4 legs, swivel
bases with five spokes, sled bases, stretchers, slatted or framed backs (holes change the
genus), pedestal and trestle tables, shelves, wing/engine/tail variants.
"""
from __future__ import annotations

import math

import numpy as np

from .primitives import Assembly, Part

CHAIR_PARTS = {0: "seat", 1: "back", 2: "leg", 3: "arm"}
TABLE_PARTS = {0: "top", 1: "leg", 2: "support"}
AIRPLANE_PARTS = {0: "body", 1: "wing", 2: "tail", 3: "engine"}

SEAT, BACK, LEG, ARM = 0, 1, 2, 3
TOP, TLEG, SUPPORT = 0, 1, 2
BODY, WING, TAIL, ENGINE = 0, 1, 2, 3


def _leg(center, height, thickness, round_, label) -> Part:
    if round_:
        return Part("cylinder", center, (thickness / 2, height, 0), label, axis=1)
    return Part("box", center, (thickness, height, thickness), label)


def _leg_positions(base: str, width: float, depth: float, inset: float) -> list[tuple[float, float]]:
    """(x, z) of the legs under a top: four at the corners or three on a circle; none otherwise."""
    if base == "legs4":
        return [(sx * (width / 2 - inset), sz * (depth / 2 - inset)) for sx in (-1, 1) for sz in (-1, 1)]
    if base == "legs3":
        r = min(width, depth) / 2 - inset
        return [(r * math.cos(a), r * math.sin(a)) for a in (math.pi / 2, math.pi * 7 / 6, math.pi * 11 / 6)]
    return []


def _spokes(y, length, thickness, count, label, phase=0.0) -> list[Part]:
    """`count` horizontal bars radiating from the Y axis at height y."""
    parts = []
    for i in range(count):
        a = phase + 2 * math.pi * i / count
        c = (math.cos(a) * length / 2, y, math.sin(a) * length / 2)
        parts.append(Part("box", c, (length, thickness, thickness), label, rotation=(0.0, -a, 0.0)))
    return parts


# ----------------------------------------------------------------------------- chairs
def chair(
    seat_height: float = 0.45,
    seat_width: float = 0.5,
    seat_depth: float = 0.5,
    seat_thickness: float = 0.06,
    seat_round: bool = False,
    base: str = "legs4",  # legs4 | legs3 | swivel | sled
    leg_thickness: float = 0.05,
    leg_round: bool = False,
    stretchers: bool = False,
    back: str = "solid",  # solid | slats | frame | none
    back_height: float = 0.5,
    back_thickness: float = 0.06,
    back_tilt: float = 0.0,  # radians, leaning backwards
    slats: int = 3,
    arms: bool = False,
    arm_height: float = 0.22,
    arm_panel: bool = False,
) -> Assembly:
    """A chair: seat, optional back, legs or another base, optional arms."""
    w, d, t = seat_width, seat_depth, seat_thickness
    top = seat_height + t
    parts: list[Part] = []
    if seat_round:
        parts.append(Part("cylinder", (0, seat_height + t / 2, 0), (min(w, d) / 2, t, 0), SEAT, axis=1))
        w = d = min(w, d) / math.sqrt(2) * 1.2
    else:
        parts.append(Part("box", (0, seat_height + t / 2, 0), (w, t, d), SEAT))
    lt = leg_thickness
    corners = _leg_positions(base, w, d, lt / 2)
    for x, z in corners:
        parts.append(_leg((x, seat_height / 2, z), seat_height, lt, leg_round, LEG))
    if stretchers and corners:
        y = seat_height * 0.3
        for (x0, z0), (x1, z1) in zip(corners, corners[1:] + corners[:1]):
            if base == "legs4" and x0 != x1 and z0 != z1:
                continue  # no diagonals across a square base
            length = math.hypot(x1 - x0, z1 - z0)
            a = math.atan2(z1 - z0, x1 - x0)
            parts.append(Part("box", ((x0 + x1) / 2, y, (z0 + z1) / 2), (length, lt * 0.6, lt * 0.6), LEG,
                              rotation=(0.0, -a, 0.0)))
    if base == "swivel":
        parts.append(Part("cylinder", (0, seat_height / 2 + 0.02, 0), (lt * 0.6, seat_height - 0.04, 0), LEG))
        parts += _spokes(0.03, max(w, d) * 1.0, 0.04, 5, LEG, phase=math.pi / 2)
    elif base == "sled":
        for sx in (-1, 1):
            x = sx * (w / 2 - lt / 2)
            parts.append(Part("box", (x, lt / 2, 0), (lt, lt, d * 1.05), LEG))
            for sz in (-1, 1):
                parts.append(Part("box", (x, seat_height / 2, sz * (d / 2 - lt / 2)), (lt, seat_height, lt), LEG))
    if back != "none":
        parts += _chair_back(back, w, d, top, back_height, back_thickness, back_tilt, slats)
    if arms:
        for sx in (-1, 1):
            x = sx * (w / 2 - 0.03)
            if arm_panel:
                parts.append(Part("box", (x, top + arm_height / 2, 0.0), (0.05, arm_height, d * 0.9), ARM))
            else:
                parts.append(Part("box", (x, top + arm_height, -0.03), (0.06, 0.04, d - 0.06), ARM))
                parts.append(Part("box", (x, top + arm_height / 2, -d / 2 + 0.06), (0.04, arm_height, 0.04), ARM))
    return Assembly(parts, dict(CHAIR_PARTS))


def _chair_back(style, w, d, top, height, thick, tilt, slats) -> list[Part]:
    # The back leans by `tilt` about the X axis through its bottom edge.
    z0 = d / 2 - thick / 2

    def place(x, y_rel, size):
        y = top + y_rel * math.cos(tilt)
        z = z0 + y_rel * math.sin(tilt)
        return Part("box", (x, y, z), size, BACK, rotation=(tilt, 0.0, 0.0))

    if style == "solid":
        return [place(0.0, height / 2, (w, height, thick))]
    post = max(0.035, thick)
    parts = [place(sx * (w / 2 - post / 2), height / 2, (post, height, thick)) for sx in (-1, 1)]
    rail = 0.06
    parts.append(place(0.0, height - rail / 2, (w, rail, thick)))
    if style == "frame":
        parts.append(place(0.0, height * 0.35, (w, rail, thick)))
    elif style == "slats":
        inner = w - 2 * post
        slat_w = inner / (2 * slats + 1)
        for i in range(slats):
            x = -inner / 2 + slat_w * (2 * i + 1.5)
            parts.append(place(x, height / 2, (slat_w, height, thick * 0.7)))
    return parts


def sample_chair(rng: np.random.Generator) -> Assembly:
    base = rng.choice(["legs4", "legs3", "swivel", "sled"], p=[0.6, 0.1, 0.2, 0.1])
    return chair(
        seat_height=rng.uniform(0.3, 0.55),
        seat_width=rng.uniform(0.4, 0.7),
        seat_depth=rng.uniform(0.4, 0.65),
        seat_thickness=rng.uniform(0.03, 0.12),
        seat_round=bool(base == "legs3" or rng.random() < 0.1),
        base=str(base),
        leg_thickness=rng.uniform(0.03, 0.08),
        leg_round=bool(rng.random() < 0.3),
        stretchers=bool(rng.random() < 0.3),
        back=str(rng.choice(["solid", "slats", "frame", "none"], p=[0.5, 0.2, 0.2, 0.1])),
        back_height=rng.uniform(0.3, 0.75),
        back_thickness=rng.uniform(0.03, 0.1),
        back_tilt=rng.uniform(0.0, 0.35),
        slats=int(rng.integers(2, 6)),
        arms=bool(rng.random() < 0.35),
        arm_height=rng.uniform(0.15, 0.3),
        arm_panel=bool(rng.random() < 0.3),
    )


# ----------------------------------------------------------------------------- tables
def table(
    height: float = 0.75,
    width: float = 1.2,
    depth: float = 0.7,
    top_thickness: float = 0.05,
    top_round: bool = False,
    base: str = "legs4",  # legs4 | legs3 | pedestal | trestle
    leg_thickness: float = 0.06,
    leg_round: bool = False,
    apron: bool = False,
    stretchers: bool = False,
    shelf: bool = False,
) -> Assembly:
    """A table: top, legs or another base, optional apron, stretchers and shelf."""
    t, lt = top_thickness, leg_thickness
    leg_h = height - t
    parts: list[Part] = []
    if top_round:
        r = min(width, depth) / 2
        parts.append(Part("cylinder", (0, height - t / 2, 0), (r, t, 0), TOP))
        width = depth = r * math.sqrt(2)
    else:
        parts.append(Part("box", (0, height - t / 2, 0), (width, t, depth), TOP))
    inset = lt / 2 + 0.02
    corners = _leg_positions(base, width, depth, inset)
    for x, z in corners:
        parts.append(_leg((x, leg_h / 2, z), leg_h, lt, leg_round, TLEG))
    if base == "pedestal":
        parts.append(Part("cylinder", (0, leg_h / 2, 0), (lt * 1.2, leg_h, 0), TLEG))
        parts += _spokes(0.025, min(width, depth) * 0.8, 0.05, 4, TLEG, phase=math.pi / 4)
    elif base == "trestle":
        for sx in (-1, 1):
            x = sx * (width / 2 - 0.1)
            parts.append(Part("box", (x, leg_h / 2, 0), (lt, leg_h, depth * 0.8), TLEG))
        parts.append(Part("box", (0, leg_h * 0.4, 0), (width - 0.2, lt, lt), SUPPORT))
    if apron and base in ("legs4", "legs3") and not top_round:
        ah = 0.08
        for sz in (-1, 1):
            parts.append(Part("box", (0, leg_h - ah / 2, sz * (depth / 2 - inset)), (width - 2 * inset, ah, 0.02), SUPPORT))
        for sx in (-1, 1):
            parts.append(Part("box", (sx * (width / 2 - inset), leg_h - ah / 2, 0), (0.02, ah, depth - 2 * inset), SUPPORT))
    if stretchers and base == "legs4":
        for sz in (-1, 1):
            parts.append(Part("box", (0, leg_h * 0.2, sz * (depth / 2 - inset)), (width - 2 * inset, lt * 0.6, lt * 0.6), SUPPORT))
    if shelf and base == "legs4":
        parts.append(Part("box", (0, leg_h * 0.25, 0), (width - 2 * inset, 0.03, depth - 2 * inset), SUPPORT))
    return Assembly(parts, dict(TABLE_PARTS))


def sample_table(rng: np.random.Generator) -> Assembly:
    base = str(rng.choice(["legs4", "legs3", "pedestal", "trestle"], p=[0.6, 0.1, 0.15, 0.15]))
    return table(
        height=rng.uniform(0.45, 0.85),
        width=rng.uniform(0.6, 1.6),
        depth=rng.uniform(0.5, 0.9),
        top_thickness=rng.uniform(0.02, 0.1),
        top_round=bool(base in ("legs3", "pedestal") and rng.random() < 0.7),
        base=base,
        leg_thickness=rng.uniform(0.03, 0.1),
        leg_round=bool(rng.random() < 0.3),
        apron=bool(rng.random() < 0.4),
        stretchers=bool(rng.random() < 0.3),
        shelf=bool(rng.random() < 0.2),
    )


# ----------------------------------------------------------------------------- airplanes
def airplane(
    length: float = 1.0,
    radius: float = 0.06,
    wing_span: float = 1.0,
    wing_chord: float = 0.18,
    wing_sweep: float = 0.3,  # radians
    wing_z: float = 0.0,  # along the body, fraction of length (negative = forward)
    wing_y: float = 0.0,  # fraction of radius (-1 low wing, +1 high wing)
    dihedral: float = 0.05,
    tail: str = "conventional",  # conventional | t_tail | twin | none
    engines: int = 2,  # 0, 2 or 4 under the wings; -2 for two at the rear of the body
    engine_radius: float = 0.035,
) -> Assembly:
    """An airplane along Z, nose towards -Z: body, wings, tail surfaces, engines."""
    L, r = length, radius
    body_len = L * 0.6
    parts = [
        Part("cylinder", (0, 0, 0), (r, body_len, 0), BODY, axis=2),
        Part("ellipsoid", (0, 0, -body_len / 2), (r, r, L * 0.15), BODY),
        Part("ellipsoid", (0, r * 0.3, body_len / 2), (r * 0.8, r * 0.7, L * 0.25), BODY),
    ]
    half = wing_span / 2
    wy, wz = wing_y * r * 0.7, wing_z * L
    wing_t = max(0.012, wing_chord * 0.1)
    tips = []
    for sx in (-1, 1):
        # each half-wing is a box from the body axis outwards, swept back (+Z) and tilted up
        cx = sx * half / 2 * math.cos(wing_sweep)
        cz = wz + half / 2 * math.sin(wing_sweep)
        cy = wy + half / 2 * math.sin(dihedral)
        parts.append(Part("box", (cx, cy, cz), (half, wing_t, wing_chord), WING,
                          rotation=(0.0, -sx * wing_sweep, sx * dihedral)))
        tips.append((sx, cx, cy, cz))
    tail_z = body_len / 2 + L * 0.12
    fin_h = r * 2.5 + 0.05
    stab_span = wing_span * 0.35
    if tail in ("conventional", "twin"):
        parts.append(Part("box", (0, r * 0.4, tail_z), (stab_span, 0.015, wing_chord * 0.6), TAIL))
    if tail in ("conventional", "t_tail"):
        parts.append(Part("box", (0, r * 0.4 + fin_h / 2, tail_z), (0.015, fin_h, wing_chord * 0.8), TAIL,
                          rotation=(0.3, 0.0, 0.0)))
    if tail == "t_tail":
        parts.append(Part("box", (0, r * 0.4 + fin_h * 0.95, tail_z + 0.05), (stab_span, 0.015, wing_chord * 0.5), TAIL))
    if tail == "twin":
        for sx in (-1, 1):
            parts.append(Part("box", (sx * stab_span / 2, r * 0.4 + fin_h / 3, tail_z), (0.015, fin_h * 0.66, wing_chord * 0.6), TAIL))
    er = engine_radius
    if engines in (2, 4):
        stations = (0.35,) if engines == 2 else (0.3, 0.65)
        for sx in (-1, 1):
            for f in stations:
                x = sx * half * f * math.cos(wing_sweep)
                z = wz + half * f * math.sin(wing_sweep) - wing_chord * 0.3
                y = wy + half * f * math.sin(dihedral) - wing_t / 2 - er * 0.9
                parts.append(Part("cylinder", (x, y, z), (er, wing_chord * 1.3, 0), ENGINE, axis=2))
    elif engines == -2:
        for sx in (-1, 1):
            parts.append(Part("cylinder", (sx * (r + er * 0.9), r * 0.5, body_len / 2 - 0.05), (er, wing_chord * 1.2, 0), ENGINE, axis=2))
    return Assembly(parts, dict(AIRPLANE_PARTS))


def sample_airplane(rng: np.random.Generator) -> Assembly:
    return airplane(
        length=1.0,
        radius=rng.uniform(0.035, 0.09),
        wing_span=rng.uniform(0.6, 1.2),
        wing_chord=rng.uniform(0.1, 0.3),
        wing_sweep=rng.uniform(0.0, 0.7),
        wing_z=rng.uniform(-0.15, 0.1),
        wing_y=rng.uniform(-1.0, 1.0),
        dihedral=rng.uniform(-0.05, 0.15),
        tail=str(rng.choice(["conventional", "t_tail", "twin", "none"], p=[0.55, 0.25, 0.1, 0.1])),
        engines=int(rng.choice([0, 2, 4, -2], p=[0.2, 0.45, 0.2, 0.15])),
        engine_radius=rng.uniform(0.02, 0.05),
    )


FAMILIES = {"chair": sample_chair, "table": sample_table, "airplane": sample_airplane}
PART_NAMES = {"chair": CHAIR_PARTS, "table": TABLE_PARTS, "airplane": AIRPLANE_PARTS}


def sample_shape(category: str, rng: np.random.Generator) -> Assembly:
    try:
        return FAMILIES[category](rng)
    except KeyError:
        raise ValueError(f"no procedural family {category!r}; choose one of {sorted(FAMILIES)}") from None
