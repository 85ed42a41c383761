import numpy as np
import pytest

from training.families import FAMILIES, PART_NAMES, chair, sample_shape


@pytest.mark.parametrize("category", sorted(FAMILIES))
def test_families_vary_in_parts_and_are_seeded(category):
    shapes = [sample_shape(category, np.random.default_rng(i)) for i in range(40)]
    present = [frozenset(s.labels_present) for s in shapes]
    assert len(set(present)) >= 2  # some shapes lack a part others have
    assert set().union(*present) == set(PART_NAMES[category])
    counts = {len(s.parts) for s in shapes}
    assert len(counts) >= 4  # part counts (legs, slats, engines...) vary
    a = sample_shape(category, np.random.default_rng(3)).sample_surface(500, seed=1)
    b = sample_shape(category, np.random.default_rng(3)).sample_surface(500, seed=1)
    assert all(np.array_equal(x, y) for x, y in zip(a, b))


def test_surface_samples_lie_on_the_union_boundary():
    shape = chair(arms=True, back="slats")
    pts, normals, labels = shape.sample_surface(3000, seed=0)
    # no sample is strictly inside another part; stepping outward leaves the solid
    assert shape.occupancy(pts + normals * 1e-3).mean() < 0.02
    assert shape.occupancy(pts - normals * 1e-3).mean() > 0.98
    assert set(np.unique(labels)) == {0, 1, 2, 3}


def test_slatted_back_has_holes():
    solid, slats = chair(back="solid"), chair(back="slats", slats=3)
    x = np.linspace(-0.2, 0.2, 41)
    # a line through the middle of the back, left to right
    probe = lambda s: s.occupancy(np.c_[x, np.full_like(x, 0.51 + 0.25), np.full_like(x, 0.22)])
    assert probe(solid).all() and not probe(slats).all() and probe(slats).any()
