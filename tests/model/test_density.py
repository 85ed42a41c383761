"""Uneven point clouds: an even subset, each point's area, and the engine reading a cloud
dense in places as the same shape."""
import numpy as np
import pytest
import trimesh

from model.density import (apart, farthest_points, ground, loose, outliers, point_areas, uneven_areas,
                           weighted_percentiles)
from model.geometry import bounding_frame, sample_surface
from model.matching import into_part_frame
from model.validation import as_shape


def uneven_square(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A unit square in the xz plane, its left tenth holding 90% of the points; and which
    points are there."""
    rng = np.random.default_rng(seed)
    dense = np.c_[rng.uniform(0, 0.1, 9000), np.zeros(9000), rng.uniform(0, 1, 9000)]
    sparse = np.c_[rng.uniform(0.1, 1, 1000), np.zeros(1000), rng.uniform(0, 1, 1000)]
    return np.concatenate([dense, sparse]), np.r_[np.ones(9000, bool), np.zeros(1000, bool)]


def test_farthest_points_cover_the_shape_evenly():
    points, dense = uneven_square()
    pick = farthest_points(points, 200, seed=1)
    assert len(np.unique(pick)) == 200
    # the dense tenth of the square gets about a tenth of an even cover (a random pick: 90%)
    assert dense[pick].mean() < 0.2
    assert np.array_equal(farthest_points(points[:50], 200), np.arange(50))  # few points: all


def test_point_areas_undo_the_density():
    points, dense = uneven_square()
    areas = point_areas(points)
    # each dense point stands for 1/81 of a sparse one's area ((0.1 / 9000) / (0.9 / 1000))
    ratio = np.median(areas[~dense]) / np.median(areas[dense])
    assert 50 < ratio < 120, ratio
    share = areas[dense].sum() / areas.sum()  # the dense strip is a tenth of the square
    assert 0.06 < share < 0.15, share
    assert np.array_equal(point_areas(points[:5]), np.ones(5))


def test_only_an_uneven_cloud_is_weighted():
    points, _ = uneven_square()
    assert uneven_areas(points) is not None
    even = np.random.default_rng(4).uniform(0, 1, (30000, 3)) * [1, 0, 1]  # judged on a probe of 20,000
    assert uneven_areas(even) is None
    strip = np.random.default_rng(5).uniform(0, 1, (40000, 3)) * [0.1, 0, 1]  # 14 times as dense there
    assert uneven_areas(np.concatenate([even, strip])) is not None


def test_points_apart_from_the_cloud_are_outliers_and_sparse_feet_are_not():
    rng = np.random.default_rng(0)
    seat = np.c_[rng.random(2000), np.zeros(2000), rng.random(2000)]  # dense
    feet = np.concatenate([[x, -1.0, z] + 0.01 * rng.random((4, 3)) for x in (0, 1) for z in (0, 1)])  # 4 points each
    chair = np.r_[seat, feet]
    assert not outliers(chair).any()
    for stray in ([3.0, 0, 0], [0.5, 0.4, 0.5], [[0.5, 2.0, 0.5], [0.52, 2.0, 0.5]]):  # inside the box, two together
        found = outliers(np.r_[chair, np.reshape(stray, (-1, 3))])
        assert not found[:len(chair)].any() and found[len(chair):].all()
    swarm = rng.normal(size=(160, 3))  # 7% scattered about the chair, 1-2 of its sizes off
    swarm = [0.5, 0, 0.5] + swarm / np.linalg.norm(swarm, axis=1, keepdims=True) * rng.uniform(1.5, 3, (160, 1))
    found = outliers(np.r_[chair, swarm])
    assert not found[:len(chair)].any() and found[len(chair):].all()
    repeated = np.r_[np.repeat(chair, 10, axis=0), [[0.5, -1.1, 0.5]]]  # no spacing to judge strays by: all kept
    assert not outliers(repeated).any()


def test_a_point_floating_near_a_dense_surface_is_an_outlier_and_a_thin_sparse_part_is_not():
    rng = np.random.default_rng(2)
    top = np.c_[rng.random(4000), np.zeros(4000), rng.random(4000)]  # a table top, densely sampled
    legs = np.concatenate([np.c_[np.full(25, x), -np.arange(1, 26) * 0.04, np.full(25, z)]  # a point every 0.04
                           for x in (0.05, 0.95) for z in (0.05, 0.95)])
    table = np.r_[top, legs]
    assert not outliers(table).any()
    floating = np.c_[rng.uniform(0.2, 0.8, (6, 1)), rng.uniform(0.1, 0.15, (6, 1)), rng.uniform(0.2, 0.8, (6, 1))]
    floating = np.r_[floating, floating[:1] + [0.03, 0, 0]]  # two side by side: each off the plane of the top
    found = outliers(np.r_[table, floating])  # 3-4 typical spacings up: far only against the top's own spacing
    assert not found[:len(table)].any() and found[len(table):].all()
    plate = trimesh.creation.box(extents=(1, 0.02, 1)).subdivide().subdivide().subdivide()
    assert not outliers(np.unique(plate.vertices, axis=0)).any()  # a thin plate's sparse vertices lie in its planes


def table_cloud(points: int = 2500) -> np.ndarray:
    """A flat table (a top on four legs) as an area-uniform cloud, +Y up."""
    parts = [trimesh.creation.box([1.0, 0.04, 0.6]).apply_translation([0, 0.2, 0])]
    parts += [trimesh.creation.box([0.04, 0.2, 0.04]).apply_translation([x, 0.08, z])
              for x in (-0.45, 0.45) for z in (-0.25, 0.25)]
    table = trimesh.util.concatenate(parts)
    return sample_surface(np.asarray(table.vertices), np.asarray(table.faces), points, seed=3)[0]


def test_points_a_few_spacings_off_a_flat_top_stand_loose_and_leave_its_frame_as_it_was():
    table = table_cloud()
    rng = np.random.default_rng(6)
    # about 0.09 of the diagonal above the top: too near its surface to be outliers, yet they
    # would stretch the frame of a shape this flat by half of that
    floating = np.c_[rng.uniform(-0.4, 0.4, (5, 1)), rng.uniform(0.32, 0.33, (5, 1)), rng.uniform(-0.2, 0.2, (5, 1))]
    cloud = np.r_[table, floating]
    assert not outliers(cloud).any()
    assert not loose(table).any() and loose(cloud)[len(table):].all() and not loose(cloud)[:len(table)].any()
    clean, shape = bounding_frame(table), as_shape(cloud)
    assert len(shape.kept) == len(cloud)  # still matched, each a label of its own
    stretched = bounding_frame(cloud)
    assert np.linalg.norm(stretched.center - clean.center) > 0.03 * clean.scale
    framed = bounding_frame(shape.spanning)
    assert np.allclose(framed.center, clean.center) and np.isclose(framed.scale, clean.scale)


def test_a_small_piece_far_off_a_mesh_is_apart_and_one_close_by_or_a_needle_is_not():
    rng = np.random.default_rng(1)
    square = np.array([[0, 0, 0], [1, 0, 0], [1, 0, 1], [0, 0, 1.0]])
    seat = np.c_[rng.random(20000), np.zeros(20000), rng.random(20000)]  # its area-uniform samples
    ball = trimesh.creation.icosphere(subdivisions=1, radius=0.02)  # 0.3% of the area: 60 samples
    sphere = rng.normal(size=(60, 3))
    sphere = 0.02 * sphere / np.linalg.norm(sphere, axis=1, keepdims=True)
    for centre, far in (([0.5, 1.5, 0.5], True), ([0.5, 0.06, 0.5], False), ([2.5, 0.0, 0.5], True)):
        vertices = np.r_[square, centre + np.asarray(ball.vertices)]
        faces = np.r_[[[0, 1, 2], [0, 2, 3]], np.asarray(ball.faces) + 4]
        found = apart(vertices, faces, np.r_[seat, centre + sphere])
        assert not found[:4].any() and found[4:].all() == far and found[4:].any() == far
    needle = np.array([[0, 0, 0], [1, 0, 0], [0.5, 1e-4, 0]])  # its sharp ends far from its few samples
    samples = sample_surface(needle, np.array([[0, 1, 2]]), 20000)[0]
    assert not apart(needle, np.array([[0, 1, 2]]), samples).any()


def square_at(height: float, lo: tuple, hi: tuple) -> tuple[np.ndarray, np.ndarray]:
    """A square of two triangles at a height (+Y up), from lo to hi in x and z."""
    (x0, z0), (x1, z1) = lo, hi
    return np.array([[x0, height, z0], [x1, height, z0], [x1, height, z1], [x0, height, z1]]), \
        np.array([[0, 2, 1], [0, 3, 2]])


def test_a_flat_piece_under_a_mesh_as_wide_as_all_of_it_is_a_ground_plane():
    stool = trimesh.creation.box([0.4, 0.05, 0.4])  # a seat on four legs, loose parts
    stool.apply_translation([0, 0.45, 0])
    legs = [trimesh.creation.box([0.04, 0.45, 0.04]).apply_translation([x, 0.225, z])
            for x in (-0.18, 0.18) for z in (-0.18, 0.18)]
    body = trimesh.util.concatenate([stool] + legs)
    v, f = np.asarray(body.vertices), np.asarray(body.faces)

    def with_piece(piece):
        pv, pf = piece
        return ground(np.r_[v, pv], np.r_[f, pf + len(v)])

    assert not ground(v, f).any()
    found = with_piece(square_at(0.0, (-0.3, -0.3), (0.3, 0.3)))  # a shadow catcher under the feet
    assert not found[:len(v)].any() and found[len(v):].all()
    assert not with_piece(square_at(0.0, (-0.2, -0.2), (0.2, 0.2))).any()  # exactly the footprint: a box's bottom
    rug, pattern = square_at(0.0, (-0.3, -0.3), (0.3, 0.3)), square_at(0.0, (-0.1, -0.1), (0.1, 0.1))
    assert not ground(np.r_[rug[0], pattern[0]], np.r_[rug[1], pattern[1] + 4]).any()  # a pattern lying on a rug
    unwelded = square_at(0.0, (-0.3, -0.3), (0.3, 0.3))  # each triangle its own corners
    assert ground(np.r_[v, unwelded[0][[0, 2, 1, 0, 3, 2]]], np.r_[f, len(v) + np.arange(6).reshape(2, 3)])[len(v):].all()
    assert not with_piece(square_at(0.0, (-0.1, -0.1), (0.1, 0.1))).any()  # a rug under part of it
    assert not with_piece(square_at(0.9, (-0.3, -0.3), (0.3, 0.3))).any()  # a flat top above
    assert not with_piece(square_at(0.1, (-0.3, -0.3), (0.3, 0.3))).any()  # a shelf between the legs
    plate = trimesh.creation.box([0.6, 0.02, 0.6]).apply_translation([0, -0.01, 0])  # a base plate has thickness
    assert not with_piece((np.asarray(plate.vertices), np.asarray(plate.faces))).any()
    assert not ground(*square_at(0.0, (-0.3, -0.3), (0.3, 0.3))).any()  # a plane alone is the shape
    pv, pf = square_at(0.0, (-0.3, -0.3), (0.3, 0.3))
    shape = as_shape((np.r_[v, pv], np.r_[f, pf + len(v)]))  # what the engine leaves out of the shape
    assert shape.outliers[len(v):].all() and not shape.outliers[:len(v)].any() and len(shape.body) == len(f)


def test_weighted_percentiles():
    rng = np.random.default_rng(2)
    values = rng.normal(size=(501, 3))
    ones = weighted_percentiles(values, np.ones(501), [2.0, 50.0, 98.0])
    assert np.allclose(ones, np.percentile(values, [2.0, 50.0, 98.0], axis=0, method="hazen"))
    twice = np.concatenate([values, values[:100]])  # a point counted twice weighs 2
    weights = np.r_[np.full(100, 2.0), np.ones(401)]
    assert np.allclose(weighted_percentiles(values, weights, [10.0, 90.0]),
                       np.percentile(twice, [10.0, 90.0], axis=0, method="hazen"), atol=0.02)


def test_a_parts_frame_is_read_by_area_not_by_point_count():
    points, _ = uneven_square()
    even = np.random.default_rng(3).uniform(0, 1, (10000, 3)) * [1, 0, 1]
    corner = np.array([[1.0, 0.0, 1.0]])
    # by point count the uneven square's centre lies near its dense edge, and its far
    # corner is pushed off the even square's
    assert np.abs(into_part_frame(corner, points, even) - corner).max() > 0.2
    moved = into_part_frame(corner, points, even, point_areas(points), np.ones(len(even)))
    assert np.abs(moved - corner).max() < 0.05, moved


def procedural_chair(index: int, points: int = 2500) -> tuple[np.ndarray, np.ndarray]:
    from training.families import sample_shape
    shape = sample_shape("chair", np.random.default_rng([2_000_000 + index, 7]))
    pts, _, labels = shape.sample_surface(points, seed=index)
    return pts, labels


def denser(points: np.ndarray, labels: np.ndarray, part: int, times: int) -> np.ndarray:
    """The points with `times` more near each point of `part` (a scan dense in one place)."""
    rng = np.random.default_rng(0)
    extra = np.repeat(points[labels == part], times, axis=0)
    return np.concatenate([points, extra + rng.normal(0, 0.002 * np.ptp(points, axis=0).max(), extra.shape)])


@pytest.fixture(scope="module")
def chair_engine():
    from model import Correspondence
    return Correspondence.load(category="chair", device="cpu")


def test_a_cloud_dense_in_one_part_takes_labels_as_an_even_one_does(chair_engine):
    from training.evaluate import shape_miou
    points, source_labels = procedural_chair(0)
    source = chair_engine.prepare(points)
    scores = []
    # legs ten times as dense: read by point count, E, the fitted code and the legs' frame
    # see another chair (0.84 and 0.87 mIoU on these; 0.91 and 0.94 read by area)
    for index in (1, 2):
        target, truth = procedural_chair(index)
        labels = chair_engine.transfer_labels(source, source_labels, denser(target, truth, 2, 9))[0]
        scores.append(shape_miou(labels[: len(target)], truth, range(4))[0])
    assert np.mean(scores) > 0.89, scores
    # the seat ten times as dense: 0.66 read by point count, 0.95 by area
    target, truth = procedural_chair(1)
    labels = chair_engine.transfer_labels(source, source_labels, denser(target, truth, 0, 9))[0]
    assert shape_miou(labels[: len(target)], truth, range(4))[0] > 0.9
