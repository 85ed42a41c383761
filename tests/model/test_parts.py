import numpy as np

from model.parts import Embedded


def embedded(parts: np.ndarray, k: int = 4) -> Embedded:
    raw = np.full((len(parts), k), 0.1)
    raw[np.arange(len(parts)), parts] = 0.9
    return Embedded.of(raw)


def test_a_label_mostly_one_branch_is_matched_as_that_branch():
    # label 1: 8 of its 10 samples are branch 2
    parts = np.array([0] * 20 + [2] * 8 + [0] * 2)
    labels = np.array([0] * 20 + [1] * 10)
    guided = embedded(parts).parts(labels)
    assert (guided[labels == 1] == 2).all() and (guided[labels == 0] == 0).all()


def test_a_half_found_part_is_matched_as_the_branch_it_is_the_bulk_of():
    """An airliner's engines (label 3): f calls 45% of them engine, 55% wing. They are
    all of the engine branch and a small share of the wing: they are the engine."""
    parts = np.array([1] * 100 + [1] * 11 + [3] * 9)
    labels = np.array([1] * 100 + [3] * 20)
    guided = embedded(parts).parts(labels)
    assert (guided[labels == 3] == 3).all()
    assert (guided[labels == 1] == 1).all()


def test_a_label_that_is_no_part_guides_nothing():
    # "the left half": half of every branch
    parts = np.array([0, 1, 2, 3] * 10)
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1] * 5)
    assert (embedded(parts).parts(labels) == parts).all()
    # a stray branch of 2 samples inside a large label does not capture it
    parts = np.array([0] * 5 + [2] * 2 + [0] * 13)
    labels = np.array([0] * 5 + [1] * 15)
    guided = embedded(parts).parts(labels)
    assert (guided[labels == 1] == 0).all()


def test_a_label_per_point_takes_time_in_proportion_to_the_points():
    """A cloud may come with a label per point (the server takes any integers): every
    label is judged at once, not one pass over the samples per label."""
    import time

    rng = np.random.default_rng(0)
    n = 200_000
    parts = rng.integers(0, 4, n)
    guided = embedded(parts)
    start = time.perf_counter()
    out = guided.parts(np.arange(n))
    assert time.perf_counter() - start < 5.0  # one pass per label: minutes
    assert (out == parts).all()  # a one-point label is all its branch
    labels = np.where(rng.random(n) < 0.5, -1, parts + 10)  # half unlabelled, the rest one label per branch
    assert (guided.parts(labels) == parts).all()


def test_a_label_of_several_whole_parts_keeps_fs_parts():
    """One label for the whole shape, or "base" for seat and legs: folded into one branch,
    every other part would be missing from the source, and the target's points of those
    parts would have nothing to match."""
    parts = np.array([0] * 30 + [1] * 30 + [2] * 40)
    shape = embedded(parts)
    for labels in (np.zeros(100, int), np.array([0] * 30 + [1] * 30 + [0] * 40)):
        assert (shape.parts(labels) == parts).all()
        assert (shape.source_presence(labels) == shape.presence).all()
    labels = np.zeros(100, int)
    labels[:5] = -1  # a few unlabelled samples change nothing
    assert (shape.parts(labels) == parts).all()
    # one label for a whole shape is several parts however much of it one part is (a table's top)
    for parts in (np.array([0] * 75 + [1] * 25), np.array([0] * 68 + [1] * 19 + [2] * 13)):
        assert (embedded(parts).parts(np.zeros(len(parts), int)) == parts).all()


def test_a_part_of_which_f_took_a_share_for_another_stays_one_part():
    """A PSB airliner's wing label: 75% wing branch, 25% engine branch, nearly all of each."""
    parts = np.array([0] * 50 + [1] * 75 + [2] * 25 + [2])
    labels = np.array([0] * 50 + [1] * 100 + [0])
    guided = embedded(parts).parts(labels)
    assert (guided[labels == 1] == 1).all()
