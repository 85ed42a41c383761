"""The shipped default chair model, on held-out procedural chairs and on real PSB chairs."""

from functools import cache

import numpy as np
import pytest
import torch

from model import Correspondence
from model.engine import shipped_categories
from model.parts import MIN_PART_FRACTION
from model.runner import has_bfloat16_units
from training.evaluate import evaluate, procedural_shapes, shape_miou
from training.families import CHAIR_PARTS, TABLE_PARTS, table
from training.prepare import load_psb_upright
from training.samples import assembly_sample

SEAT, BACK, LEG, ARM = 0, 1, 2, 3


@pytest.fixture(scope="module")
def chair_engine():
    assert "chair" in shipped_categories()
    return Correspondence.load(device="cpu")  # chair is the default


@pytest.fixture(scope="module")
def held_out():
    return procedural_shapes("chair", 23, first=2_000_000)


@cache
def shipped_engine(category: str) -> Correspondence:
    """One engine per shipped category, loaded on first use (the tests only read it)."""
    return Correspondence.load(category=category, device="cpu")


def test_default_is_the_trained_chair_model(chair_engine):
    info = chair_engine.info()
    assert info["category"] == "chair" and info["stage"] == 3


def test_segment_names_the_parts_of_unseen_chairs(chair_engine, held_out):
    acc = [np.mean(chair_engine.segment(s["surface_points"]) == s["surface_labels"]) for s in held_out]
    assert np.mean(acc) > 0.8, acc


def test_label_transfer_beats_nearest_neighbour_and_flags_missing_parts(chair_engine, held_out):
    scores = evaluate(chair_engine, held_out, CHAIR_PARTS, n_sources=3, progress=False)
    model, nn = scores["model"], scores["nn"]
    assert model.miou > 85 and model.miou > nn.miou + 10, (model, nn)
    assert model.auroc > 0.9 and model.auroc > nn.auroc, (model, nn)


def test_armless_chairs_get_no_stray_armrest_points(chair_engine, held_out):
    """A branch that wins on a sliver of the surface is not a part of that shape."""
    armless = [s for s in held_out if ARM not in s["surface_labels"]]
    armed = [s for s in held_out if ARM in s["surface_labels"]]
    assert len(armless) >= 5 and len(armed) >= 3
    stray = [np.sum(chair_engine.segment(s["surface_points"]) == ARM) for s in armless]
    assert np.mean(np.equal(stray, 0)) >= 0.9, stray
    found = [np.mean(chair_engine.segment(s["surface_points"]) == ARM) for s in armed]
    assert min(found) > 0.05, found


def test_existence_is_low_where_the_source_lacks_the_part(chair_engine, held_out):
    source = next(s for s in held_out if ARM not in s["surface_labels"])
    target = next(s for s in held_out if ARM in s["surface_labels"])
    res = chair_engine.correspond(source["surface_points"], target["surface_points"])
    arm = target["surface_labels"] == ARM
    assert np.median(res.existence[arm]) < 0.2 and np.median(res.existence[~arm]) > 0.9
    assert np.median(res.confidence[arm]) < 0.2 * np.median(res.confidence[~arm])
    # the other way round every part of the target exists on the source
    back = chair_engine.correspond(target["surface_points"], source["surface_points"])
    assert np.median(back.existence) > 0.9


def test_real_chairs_are_segmented_bottom_to_top(chair_engine, psb_dir):
    ordered = 0
    paths = sorted((psb_dir / "chair").glob("*.off.gz"))
    for path in paths:
        mesh = load_psb_upright(path)
        v = np.asarray(mesh.vertices)
        parts = chair_engine.segment((v, np.asarray(mesh.faces)))
        height = {p: v[parts == p, 1].mean() for p in (SEAT, BACK, LEG) if (parts == p).sum() > 20}
        if len(height) == 3 and height[LEG] < height[SEAT] < height[BACK]:
            ordered += 1
    assert ordered >= 0.8 * len(paths), f"{ordered} of {len(paths)}"


def test_shapenet_style_point_clouds(chair_engine, psb_dir):
    """2,500 surface points per chair, no faces, as ShapeNet part clouds come (+Y up, front -Z);
    every other PSB chair (the meshes themselves: test_real_chairs_are_segmented_bottom_to_top)."""
    ordered, errors = 0, []
    paths = sorted((psb_dir / "chair").glob("*.off.gz"))[::2]
    for i, path in enumerate(paths):
        mesh = load_psb_upright(path)
        a = mesh.sample(2500, seed=i)
        b = mesh.sample(2500, seed=1000 + i)  # another sampling of the same chair
        parts = chair_engine.segment(a)
        height = {p: a[parts == p, 1].mean() for p in (SEAT, BACK, LEG) if (parts == p).sum() > 20}
        ordered += len(height) == 3 and height[LEG] < height[SEAT] < height[BACK]
        res = chair_engine.correspond(b, a)  # each point of a lands near itself on b
        errors.append(np.median(np.linalg.norm(res.mapped - a, axis=1)) / np.linalg.norm(np.ptp(a, axis=0)))
    assert ordered >= 0.8 * len(paths), f"{ordered} of {len(paths)}"
    assert np.median(errors) < 0.02, errors


@pytest.mark.parametrize("category", ["table", "airplane"])
def test_other_shipped_models(category, psb_dir):
    """Each shipped model is a finished stage-3 model with calibrated confidence that segments
    real meshes (every other PSB mesh: the dev set scores them all, docs/models.md)."""
    if category not in shipped_categories():
        pytest.fail(f"no shipped {category} checkpoint")
    engine = shipped_engine(category)
    info = engine.info()
    assert info["category"] == category and info["stage"] == 3
    paths = sorted((psb_dir / category).glob("*.off.gz"))[::2]
    found = []
    for path in paths:
        mesh = load_psb_upright(path)
        v = np.asarray(mesh.vertices)
        parts = engine.segment((v, np.asarray(mesh.faces)))
        found.append(len(np.unique(parts)))
        if category == "table":  # the top is above the legs
            top, leg = v[parts == 0, 1], v[parts == 1, 1]
            assert len(top) > 20 and len(leg) > 20 and top.mean() > leg.mean(), path.name
        else:  # the wings reach further sideways than the body
            body, wing = v[parts == 0, 0], v[parts == 1, 0]
            assert len(body) > 20 and len(wing) > 20 and np.ptp(wing) > np.ptp(body), path.name
    assert np.median(found) >= 2, found


def test_parts_of_other_proportions_match_by_relative_position():
    """The corners of a narrow table top land on the corners of a wide one (not at the
    same absolute position, part-way along the wide top's edges)."""
    engine = shipped_engine("table")
    narrow = assembly_sample(table(width=0.7, depth=0.6), seed=1)
    wide = assembly_sample(table(width=1.6, depth=0.9), seed=2)

    def corner(shape, direction):
        top = np.flatnonzero(shape["surface_labels"] == 0)
        return top[np.argmax(shape["surface_points"][top] @ np.asarray(direction))]

    res = engine.correspond(wide["surface_points"], narrow["surface_points"])
    diagonal = np.linalg.norm(np.ptp(wide["surface_points"], axis=0))
    for direction in ((1, 0.1, 1), (1, 0.1, -1), (-1, 0.1, 1), (-1, 0.1, -1)):
        landed = res.mapped[corner(narrow, direction)]
        error = np.linalg.norm(landed - wide["surface_points"][corner(wide, direction)]) / diagonal
        assert error < 0.05, (direction, error)


def test_the_sources_own_labels_guide_the_match():
    """Where f's parts and the source's labels disagree near a border (a table's apron
    against its top), the labels decide: the top of a target no longer lands on the
    source's apron (and takes its label)."""
    engine = shipped_engine("table")
    shapes = procedural_shapes("table", 15)  # the evaluation's: its first source, 12 of its targets
    src, targets = shapes[0], shapes[3:]
    points, labels = src["surface_points"], src["surface_labels"]
    prep = engine.prepare(points)
    plain, guided = [], []
    for tgt in targets:
        tp, tl = tgt["surface_points"], tgt["surface_labels"]
        plain.append(shape_miou(engine.labels_from(engine.correspond(prep, tp), prep, labels)[0], tl, TABLE_PARTS)[0])
        guided.append(shape_miou(engine.transfer_labels(prep, labels, tp)[0], tl, TABLE_PARTS)[0])
    plain, guided = np.asarray(plain), np.asarray(guided)
    assert guided.mean() > plain.mean() + 0.02, (plain, guided)
    assert np.sum(guided >= plain - 0.01) >= len(targets) - 2, (plain, guided)
    # labels that cut across the model's parts (halves of the table) mend no part: the match
    # is as with no label at all (with labels given, close calls go to the nearer match either way)
    halves = (points[:, 0] > np.median(points[:, 0])).astype(int)
    tp = targets[0]["surface_points"]
    unlabelled = engine.correspond(prep, tp, source_labels=np.full(len(points), -1))
    assert np.array_equal(engine.correspond(prep, tp, source_labels=halves).source_index, unlabelled.source_index)
    # nor do labels coarser than its parts: one for the whole table, or one for its top and legs
    same = [np.mean(engine.correspond(prep, tp, source_labels=coarse).source_index == unlabelled.source_index)
            for coarse in (np.zeros(len(points), int), (labels == 2).astype(int))]
    assert same[0] == 1.0 and same[1] > 0.95, same  # the support's label still decides its own close calls


def test_the_sources_labels_tell_which_parts_it_has():
    """A branch winning on a few stray points of a source is not a part the source's labels
    know of: with the labels, target points of that part keep a low existence.  (An engine
    offset just large enough makes the engine branch win on a few points of this
    engineless source, a part of it without labels.)"""
    shapes = procedural_shapes("airplane", 20)
    src = shapes[2]  # no engines
    assert not (src["surface_labels"] == 3).any()
    for offset in np.arange(0.5, 6.01, 0.5):
        engine = Correspondence.load(category="airplane", device="cpu", fit_steps=0, part_bias=[0, 0, 0, offset])
        prep = engine.prepare(src["surface_points"])
        if prep.judged.presence[3] >= MIN_PART_FRACTION:
            break
    assert prep.judged.presence[3] < 0.2, "the offset made engines of most of the source"
    targets = [s for s in shapes[3:] if (s["surface_labels"] == 3).any()][:3]
    for tgt in targets:
        engines = tgt["surface_labels"] == 3
        unguided = engine.correspond(prep, tgt["surface_points"]).existence[engines].mean()
        guided = engine.correspond(prep, tgt["surface_points"], source_labels=src["surface_labels"]).existence
        assert unguided > 0.9 and guided[engines].mean() < 0.5, (unguided, guided[engines].mean())
        assert np.median(guided[~engines]) > 0.9  # the parts the source has still exist


def test_bfloat16_agrees_with_float32_on_real_chairs(chair_engine, psb_dir):
    """CPUs with AMX run f and g in bfloat16 (model/runner.py).  The fitted code must still
    follow float32's (a bfloat16 code would swallow the fit's small steps), and the parts
    and matches must be float32's."""
    if not has_bfloat16_units(torch.device("cpu")):
        pytest.skip("this CPU has no AMX: the engine runs float32 only (bfloat16 would be emulated, minutes)")
    paths = sorted((psb_dir / "chair").glob("*.off.gz"))[:2]
    source, target = [load_psb_upright(p) for p in paths]
    source, target = [(np.asarray(m.vertices), np.asarray(m.faces)) for m in (source, target)]
    runner, was = chair_engine.runner, chair_engine.runner.bfloat16
    out = {}
    try:
        for bfloat16 in (False, True):
            runner.bfloat16 = bfloat16
            prep = chair_engine.prepare(target)
            out[bfloat16] = (prep.code, prep.encoder_code, chair_engine.segment(target),
                             chair_engine.correspond(source, target).mapped)
    finally:
        runner.bfloat16 = was
    (code, start, parts, mapped), (code16, _, parts16, mapped16) = out[False], out[True]
    moved = (code - start).abs().max().item()
    assert moved > 0.05 and (code16 - code).abs().max().item() < 0.1 * moved
    assert np.mean(parts16 == parts) > 0.99
    diagonal = np.linalg.norm(np.ptp(source[0], axis=0))
    assert np.median(np.linalg.norm(mapped16 - mapped, axis=1)) < 0.01 * diagonal


def test_one_label_for_a_whole_real_table_guides_as_no_label(psb_dir):
    """PSB table 141's top is over 70% of it: one label for the whole table is still no one
    part (before, every sample was matched as top, and the target's legs had nothing to match)."""
    engine = shipped_engine("table")
    src, tgt = (engine.prepare(load_psb_upright(psb_dir / "table" / f"{n}.off.gz")) for n in (141, 145))
    n = len(src.shape.vertices)
    unlabelled = engine.correspond(src, tgt, source_labels=np.full(n, -1))
    whole = engine.correspond(src, tgt, source_labels=np.zeros(n, int))
    assert np.array_equal(whole.source_index, unlabelled.source_index)
