"""The engine's contract: shapes, frames, validation.  Uses an untrained network: these
tests check mechanics, never the meaning of the answers."""
import dataclasses

import numpy as np
import pytest
import torch
import trimesh

from model import Correspondence, CheckpointError, ImplicitCorrespondenceNet, preset, save_checkpoint, Checkpoint


@pytest.fixture(scope="module")
def engine():
    torch.manual_seed(0)
    return Correspondence(ImplicitCorrespondenceNet(preset("tiny")), device="cpu")


@pytest.fixture(scope="module")
def box_mesh():
    m = trimesh.creation.box(extents=(1.0, 2.0, 0.5)).subdivide().subdivide()
    return np.asarray(m.vertices), np.asarray(m.faces)


def rng_points(n, seed=0):
    return np.random.default_rng(seed).random((n, 3))


def test_correspond_shapes(engine):
    src, tgt = rng_points(500), rng_points(300, 1)
    res = engine.correspond(src, tgt)
    assert res.mapped.shape == (300, 3) and res.confidence.shape == (300,)
    assert res.source_index.shape == (300,) and res.source_face is None
    assert np.all((res.confidence >= 0) & (res.confidence <= 1))
    # point sources: mapped points are source points
    assert np.allclose(res.mapped, src[res.source_index])


def test_results_come_back_in_the_callers_frame(engine):
    src, tgt = rng_points(400), rng_points(300, 1)
    a = engine.correspond(src, tgt)
    b = engine.correspond(src * 7.5 + [3, -2, 100], tgt * 0.01 - 4)
    assert np.allclose(b.mapped, a.mapped * 7.5 + [3, -2, 100], atol=1e-6)
    assert np.allclose(b.confidence, a.confidence, atol=1e-6)
    assert np.array_equal(b.source_index, a.source_index)


def test_mesh_source_gives_faces_and_barycentrics(engine, box_mesh):
    v, f = box_mesh
    res = engine.correspond((v, f), rng_points(200))
    assert res.source_face.shape == (200,) and res.source_bary.shape == (200, 3)
    assert np.allclose(res.source_bary.sum(1), 1) and res.source_bary.min() >= 0
    rebuilt = (v[f[res.source_face]] * res.source_bary[..., None]).sum(1)
    assert np.allclose(rebuilt, res.mapped, atol=1e-6)
    # the mapped point lies on the box surface: one coordinate at +-half extent
    half = np.array([0.5, 1.0, 0.25])
    assert np.all(np.isclose(np.abs(res.mapped), half, atol=1e-6).any(axis=1))
    # trimesh objects are accepted too, and give the same answer
    again = engine.correspond(trimesh.Trimesh(v, f, process=False), rng_points(200))
    assert np.allclose(again.mapped, res.mapped)


def test_mesh_target_answers_per_vertex(engine, box_mesh):
    v, f = box_mesh
    res = engine.correspond(rng_points(300), (v, f))
    assert res.mapped.shape == (len(v), 3)


def test_transfer_labels_per_point_per_vertex_per_face(engine, box_mesh):
    src = rng_points(300)
    labels = np.arange(300) % 4
    out, conf = engine.transfer_labels(src, labels, rng_points(100, 2))
    res = engine.correspond(src, rng_points(100, 2), source_labels=labels)
    assert np.array_equal(out, labels[res.source_index]) and conf.shape == (100,)
    v, f = box_mesh
    face_labels = np.arange(len(f)) % 3
    out_f, _ = engine.transfer_labels((v, f), face_labels, rng_points(50))
    res = engine.correspond((v, f), rng_points(50), source_labels=face_labels)
    assert np.array_equal(out_f, face_labels[res.source_face])
    vert_labels = np.arange(len(v)) % 5
    out_v, _ = engine.transfer_labels((v, f), vert_labels, rng_points(50))
    res = engine.correspond((v, f), rng_points(50), source_labels=vert_labels)
    assert np.array_equal(out_v, vert_labels[res.source_index])


def test_segment_and_reconstruct_shapes(engine):
    pts = rng_points(1000)
    parts = engine.segment(pts)
    assert parts.shape == (1000,) and parts.dtype == np.int64
    assert parts.min() >= 0 and parts.max() < engine.cfg.n_parts
    mesh = engine.reconstruct(pts, resolution=16)
    assert mesh.faces.ndim == 2 and len(mesh.parts) == len(mesh.vertices)
    with pytest.raises(ValueError, match="resolution"):
        engine.reconstruct(pts, resolution=2)


def test_part_offsets_move_part_decisions_only():
    """`part_bias` shifts which branch wins (segment) but not f's occupancy (reconstruct)
    nor what g is given (the raw map)."""
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    plain = Correspondence(net, "cpu")
    favour = int(np.bincount(plain.segment(rng_points(2000)), minlength=net.cfg.n_parts).argmin())
    biased = Correspondence(net, "cpu", part_bias=[0.0] * favour + [3.0])
    pts, src = rng_points(2000), rng_points(1500, 1)
    assert np.mean(biased.segment(pts) == favour) > np.mean(plain.segment(pts) == favour) + 0.05
    assert np.allclose(biased.correspond(src, pts).raw, plain.correspond(src, pts).raw, atol=1e-4)
    a, b = plain.reconstruct(pts, resolution=16), biased.reconstruct(pts, resolution=16)
    assert np.array_equal(a.faces, b.faces) and np.allclose(a.vertices, b.vertices)
    assert biased.info()["part_bias"][favour] == 3.0
    for bad in ([float("nan")], [0.0] * (net.cfg.n_parts + 1), [[1.0]]):
        with pytest.raises(ValueError, match="part_bias"):
            Correspondence(net, "cpu", part_bias=bad)


@pytest.mark.parametrize("option, value, message", [
    ("chunk", 0, "chunk must be >= 1"), ("surface_sigma", 0.0, "surface_sigma must be a finite number > 0"),
    ("fit_steps", -1, "fit_steps must be >= 0"), ("fit_steps", 2.5, "fit_steps must be an integer"),
    ("embedding_weight", float("nan"), "embedding_weight"), ("position_prior", 1.5, "position_prior must be in"),
    ("max_points", 1, "max_points must be >= 2"), ("part_frames", False, "unknown engine option"),
])
def test_every_setting_is_checked_once_with_its_name(option, value, message):
    with pytest.raises(ValueError, match=message):
        Correspondence(ImplicitCorrespondenceNet(preset("tiny")), "cpu", **{option: value})


def test_a_prepared_shape_is_refused_by_an_engine_it_was_not_made_for():
    """Its samples and codes depend on the network, the seed, fit_steps and the offsets."""
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    a = Correspondence(net, "cpu")
    prep = a.prepare(rng_points(500))
    assert np.array_equal(Correspondence(net, "cpu", chunk=99).segment(prep), a.segment(prep))
    for other in (Correspondence(net, "cpu", seed=1), Correspondence(net, "cpu", part_bias=[1.0]),
                  Correspondence(ImplicitCorrespondenceNet(preset("tiny")), "cpu")):
        with pytest.raises(ValueError, match="prepared by an engine with another network or settings"):
            other.correspond(prep, rng_points(300, 1))
    with pytest.raises(dataclasses.FrozenInstanceError):
        prep.code = prep.encoder_code


def test_chunked_equals_unchunked():
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny"))
    big = Correspondence(net, "cpu", chunk=1 << 16)
    small = Correspondence(net, "cpu", chunk=777)
    src, tgt = rng_points(5000), rng_points(4000, 1)
    a, b = big.correspond(src, tgt), small.correspond(src, tgt)
    assert np.allclose(a.raw, b.raw, atol=1e-5) and np.allclose(a.confidence, b.confidence, atol=1e-5)


def test_half_a_million_points(engine):
    tgt = rng_points(500_000, 3)
    res = engine.correspond(rng_points(20_000), tgt)
    assert res.mapped.shape == (500_000, 3) and np.isfinite(res.confidence).all()


def test_a_dense_clouds_surroundings_are_searched_on_as_many_samples_as_a_meshs(engine, box_mesh):
    from model.preparation import MATCH_SAMPLES

    dense, mesh = engine.prepare(rng_points(3 * MATCH_SAMPLES, 4)), engine.prepare(box_mesh)
    kept = dense.surface_samples
    assert len(kept) == MATCH_SAMPLES and len(np.unique(kept)) == MATCH_SAMPLES and kept.max() < len(dense.sample_points)
    assert len(mesh.surface_samples) == len(mesh.sample_points) == MATCH_SAMPLES
    assert len(engine.prepare(rng_points(2500)).surface_samples) == 2500  # a sparse cloud: every point


BAD_INPUTS = [
    (np.zeros((0, 3)), "is empty"),
    (np.zeros((1, 3)), "single point"),
    (np.zeros((5, 2)), r"shape \(N, 3\)"),
    (np.zeros((5, 3, 1)), r"shape \(N, 3\)"),
    (np.array([[0, 0, 0], [1, np.nan, 0]]), "NaN or infinity"),
    (np.array([[0, 0, 0], [np.inf, 0, 0]]), "NaN or infinity"),
    (np.array([["a", "b", "c"], ["d", "e", "f"]]), "numeric"),
    (np.ones((10, 3)), "degenerate"),
    (np.c_[np.linspace(0, 1, 50), np.linspace(0, 2, 50), np.zeros(50)], "lie on a line"),
    (np.random.default_rng(0).random((50, 3)) * 1e160, "too large to compute with"),
    ([[0, 0, 0], [1, 1]], r"not an \(N, 3\) array of numbers"),
    ((np.eye(3), np.array([[0, 1, 5]])), "vertex indices"),
    ((np.eye(3), np.array([[0.0, 1.0, 2.0]])), "integer"),
    ((np.array([[0, 0, 0], [1, 0, 0], [2, 0, 0.0]]), np.array([[0, 1, 2]])), "zero total area"),
    ("chair.obj", "got the path 'chair.obj'; pass the shape itself"),
]


@pytest.mark.parametrize("bad,message", BAD_INPUTS)
def test_bad_input_raises_value_error_naming_it(engine, bad, message):
    with pytest.raises(ValueError, match=message):
        engine.correspond(rng_points(10), bad)
    with pytest.raises(ValueError, match=message):
        engine.segment(bad)


def test_a_vertex_no_face_uses_moves_nothing(engine, box_mesh):
    v, f = box_mesh
    src = rng_points(300)
    plain = engine.correspond(src, (v, f))
    stray = engine.correspond(src, (np.r_[v, [[40.0, 0, 0]]], f))  # left over in a file, far off
    assert np.array_equal(stray.source_index[:-1], plain.source_index)
    assert np.allclose(stray.confidence[:-1], plain.confidence)


def test_points_apart_from_a_cloud_change_nothing_and_correspond_to_nothing(engine):
    cloud, other = rng_points(400, 1), rng_points(300, 2)
    strays = np.r_[cloud, [[5.0, 0.5, 0.5], [0.5, 3.0, 0.5], [0.52, 3.0, 0.5]]]  # a scanner's stray returns
    plain, stray = engine.prepare(cloud), engine.prepare(strays)
    assert np.allclose(stray.frame.center, plain.frame.center) and stray.frame.scale == plain.frame.scale
    assert torch.equal(stray.code, plain.code) and stray.points.shape == (403, 3)  # they are still answered for
    as_target, clean = engine.correspond(other, stray), engine.correspond(other, plain)
    assert np.array_equal(as_target.source_index[:400], clean.source_index)
    assert np.allclose(as_target.confidence[:400], clean.confidence) and np.all(as_target.confidence[400:] == 0)
    labels = np.arange(403) % 3
    got, conf = engine.transfer_labels(other, labels[:300], stray)
    assert np.all(conf[400:] == 0) and len(got) == 403
    as_source, clean = engine.correspond(stray, other), engine.correspond(plain, other)
    assert np.array_equal(as_source.source_index, clean.source_index) and as_source.source_index.max() < 400
    got, _ = engine.transfer_labels(stray, labels, other)
    assert np.array_equal(got, engine.transfer_labels(plain, labels[:400], other)[0])


def test_a_small_piece_far_off_a_mesh_changes_nothing_and_corresponds_to_nothing(engine, box_mesh):
    v, f = box_mesh
    piece = trimesh.creation.icosphere(subdivisions=1, radius=0.02)  # an artist's leftover, far off
    junk = (np.r_[v, np.asarray(piece.vertices) + [3.0, 0, 0]], np.r_[f, np.asarray(piece.faces) + len(v)])
    plain, stray = engine.prepare((v, f)), engine.prepare(junk)
    assert np.allclose(stray.frame.center, plain.frame.center) and stray.frame.scale == plain.frame.scale
    assert torch.equal(stray.code, plain.code) and np.all(stray.sample_face < len(f))
    other = rng_points(300, 2)
    as_target, clean = engine.correspond(other, stray), engine.correspond(other, plain)
    assert np.array_equal(as_target.source_index[:len(v)], clean.source_index)
    assert np.allclose(as_target.confidence[:len(v)], clean.confidence) and np.all(as_target.confidence[len(v):] == 0)
    as_source, clean = engine.correspond(stray, other), engine.correspond(plain, other)
    assert np.array_equal(as_source.source_face, clean.source_face)


def test_trimesh_clouds_are_accepted_and_scenes_named(engine, box_mesh):
    points = rng_points(200, 3)
    assert np.array_equal(engine.segment(trimesh.PointCloud(points)), engine.segment(points))
    with pytest.raises(ValueError, match="a scene of several meshes"):
        engine.segment(trimesh.Scene([trimesh.Trimesh(*box_mesh)]))


def test_a_handful_of_points_can_be_auto_aligned(engine):
    points = rng_points(3, 5)
    assert engine.align(points).shape == (3, 3)
    assert engine.correspond(rng_points(200), points, align=True).mapped.shape == (3, 3)


def test_bad_labels(engine):
    with pytest.raises(ValueError, match="has 3 entries but the shape has 10"):
        engine.transfer_labels(rng_points(10), np.arange(3), rng_points(5))
    with pytest.raises(ValueError, match="integer labels"):
        engine.transfer_labels(rng_points(10), np.zeros(10), rng_points(5))
    with pytest.raises(ValueError, match="has 4 entries but the shape has 10"):
        engine.correspond(rng_points(10), rng_points(5), source_labels=np.arange(4))
    for labels in (np.arange(10) - 5, np.full(10, 2**63, dtype=np.uint64)):  # -5; wraps to a negative int64
        with pytest.raises(ValueError, match="out of range"):
            engine.transfer_labels(rng_points(10), labels, rng_points(5))
    with pytest.raises(ValueError, match="source_labels: missing"):
        engine.transfer_labels(rng_points(10), None, rng_points(5))
    with pytest.raises(ValueError, match="list of label arrays"):
        engine.vote_labels([rng_points(10)], None, rng_points(5))
    # a prepared source's labels are checked before the target is prepared
    prepare = engine.prepare
    with pytest.raises(ValueError, match="has 4 entries"):
        engine.transfer_labels(prepare(rng_points(10)), np.arange(4), np.full((5, 3), np.nan))


def test_sparse_label_ids_are_voted_without_a_row_per_id():
    from model.labels import vote
    ids = np.array([[10**12, 7, -1], [10**12, 2**40, -1]])
    voted, support = vote(ids, np.array([[0.9, 0.2, 0.5], [0.3, 0.4, 0.5]]))
    assert voted.tolist() == [10**12, 2**40, -1] and support.tolist() == [0.9, 0.4, 0.0]


def test_a_prepared_shape_keeps_its_alignment_and_is_not_shared_with_results(engine):
    src, tgt = rng_points(300), rng_points(200, 1)
    upright = engine.prepare(src)
    with pytest.raises(ValueError, match="prepared with align=False, and this call asks align=True"):
        engine.correspond(upright, tgt, align=True)
    turned = engine.prepare(src, align=True)
    res = engine.correspond(turned, tgt, align=True)
    assert np.allclose(res.source_rotation, engine.align(src)) and np.allclose(engine.align(turned), engine.align(src))
    assert engine.correspond(turned, tgt).mapped.shape == (200, 3)  # used as prepared
    res.source_rotation[:] = 0  # the result's own copy
    assert np.allclose(engine.correspond(turned, tgt, align=True).source_rotation, engine.align(src))
    # the command line's names for the modes
    assert np.allclose(engine.correspond(turned, tgt, align="any").source_rotation, engine.align(src))
    assert engine.prepare(src, align="off").align is False and engine.prepare(src, align="any").align is True
    with pytest.raises(ValueError, match="align must be False, True or 'yaw' \\('off', 'any'\\), got 'sideways'"):
        engine.prepare(src, align="sideways")


def test_size_limit():
    e = Correspondence(ImplicitCorrespondenceNet(preset("tiny")), "cpu", max_points=100)
    with pytest.raises(ValueError, match="exceed the limit of 100"):
        e.segment(rng_points(101))


def test_load_paths(tmp_path, monkeypatch):
    net = ImplicitCorrespondenceNet(preset("tiny"))
    path = tmp_path / "m.pth"
    save_checkpoint(path, Checkpoint(preset("tiny"), net.state_dict(), "table", stage=3, epoch=7,
                                     extra={"confidence": {"cycle_sigma": 0.07}}))
    e = Correspondence.load(path)  # a format-1 checkpoint: its sigmas under `confidence`
    assert e.category == "table" and e.device.type in ("cpu", "cuda") and e.calibration.cycle_sigma == 0.07
    assert e.info()["epoch"] == 7
    monkeypatch.setattr("model.engine.CHECKPOINT_DIR", tmp_path / "none")
    with pytest.raises(CheckpointError, match="no default checkpoint for category 'chair'"):
        Correspondence.load()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA is not available"):
            Correspondence.load(path, device="cuda")
    for device in ("gpu", "mps"):
        with pytest.raises(ValueError, match=f"device '{device}': expected 'cpu' or 'cuda'"):
            Correspondence.load(path, device=device)
    beyond = f"cuda:{torch.cuda.device_count()}"
    with pytest.raises(ValueError, match="CUDA is not available" if not torch.cuda.is_available() else "CUDA device"):
        Correspondence.load(path, device=beyond)
    monkeypatch.undo()
    with pytest.raises(CheckpointError, match="no default checkpoint for category '../checkpoints/chair'"):
        Correspondence.load(category="../checkpoints/chair")  # a category is a name, never a path
    first = tmp_path / "Corr-1.pth"
    save_checkpoint(first, Checkpoint(preset("tiny"), net.state_dict(), "table", stage=1, epoch=1))
    with pytest.warns(UserWarning, match="stage-1 checkpoint: its inverse map g is untrained"):
        Correspondence.load(first, device="cpu")


@pytest.mark.parametrize("strays", [10, 200])
def test_labels_landing_on_a_sliver_of_the_target_get_no_confidence(engine, strays):
    src, tgt = rng_points(1000), rng_points(1000, 1)
    prep = engine.prepare(src)
    labels = (np.arange(1000) >= 700).astype(np.int64)  # label 1 covers 30% of the source
    res = engine.correspond(prep, tgt)
    # the target takes label 1 on `strays` points: 1% is a sliver (< 0.2 x 30%), 20% is not
    forced = dataclasses.replace(res, source_index=np.where(np.arange(1000) < strays, 900, 100))
    out, conf = engine.labels_from(forced, prep, labels)
    assert np.array_equal(out, (np.arange(1000) < strays).astype(np.int64))
    if strays == 10:
        assert np.all(conf[:strays] == 0) and np.array_equal(conf[strays:], res.confidence[strays:])
    else:
        assert np.array_equal(conf, res.confidence)


def test_slivers_on_a_mesh_target_are_judged_by_area(engine):
    dense = trimesh.creation.box().subdivide().subdivide().subdivide()
    coarse = trimesh.creation.box().apply_translation((3, 0, 0))  # a low-poly part, as much surface
    both = trimesh.util.concatenate([dense, coarse])
    v, f = np.asarray(both.vertices), np.asarray(both.faces)
    prep, tgt = engine.prepare(rng_points(1000)), engine.prepare((v, f))
    labels = (np.arange(1000) >= 700).astype(np.int64)  # label 1 covers 30% of the source
    res = engine.correspond(prep, tgt)
    on_coarse = np.arange(len(v)) >= len(dense.vertices)  # 8 of 394 vertices, half the surface
    forced = dataclasses.replace(res, source_index=np.where(on_coarse, 900, 100))
    assert np.all(engine.labels_from(forced, prep, labels)[1][on_coarse] == 0)  # by count: a sliver
    out, conf = engine.labels_from(forced, prep, labels, tgt)
    assert np.array_equal(out, on_coarse.astype(np.int64)) and np.array_equal(conf, res.confidence)
    guided = engine.correspond(prep, tgt, source_labels=labels)  # transfer_labels weighs by area too
    assert np.array_equal(engine.transfer_labels(prep, labels, (v, f))[1],
                          engine.labels_from(guided, prep, labels, tgt)[1])


def test_long_calls_report_their_progress_chunk_by_chunk(box_mesh):
    torch.manual_seed(0)
    engine = Correspondence(ImplicitCorrespondenceNet(preset("tiny")), device="cpu", chunk=1000)
    seen = []
    with engine.reporting(lambda stage, done, total: seen.append((stage, done, total))):
        engine.correspond(box_mesh, rng_points(5000))
        engine.segment(box_mesh)  # a mesh: f runs at its vertices
    stages = list(dict.fromkeys(stage for stage, _, _ in seen))  # each pass named, and the work between them
    assert stages == [f"preparing the {name}: {step}" for name in ("source", "target")
                      for step in ("checking the points", "E's code", "f at the surface samples")] + [
                      "matching: f at the target", "matching: g onto the source", "matching: f there",
                      "matching: g back onto the target", "matching: the nearest source samples",
                      "matching: corners and tips outward", "matching: confidence",
                      "preparing the points: checking the points", "preparing the points: E's code",
                      "preparing the points: f at the surface samples", "segmenting"]
    pass_g = [(done, total) for stage, done, total in seen if stage == "matching: g onto the source"]
    assert pass_g == [(0, 1), (1000, 5000), (2000, 5000), (3000, 5000), (4000, 5000), (5000, 5000)]  # a step starts at 0
    assert all(0 < done <= total or (done, total) == (0, 1) for _, done, total in seen)
    assert engine.runner.on_chunk is None  # reported only within the block
    before = len(seen)
    engine.segment(rng_points(2500, 2))
    assert len(seen) == before


def test_fitting_a_code_reports_each_step_and_stops_when_told(box_mesh):
    torch.manual_seed(0)
    engine = Correspondence(ImplicitCorrespondenceNet(preset("tiny")), device="cpu", fit_steps=7)
    seen = []
    with engine.reporting(lambda stage, done, total: seen.append((stage, done, total))):
        engine.prepare(box_mesh)
    assert [done for _, done, total in seen if total == 7] == list(range(1, 8))

    class Stop(Exception):
        pass

    def stop_at_step_3(stage, done, total):
        if total == 7 and done == 3:
            raise Stop

    with engine.reporting(stop_at_step_3), pytest.raises(Stop):  # as the server's cancel does
        engine.prepare(box_mesh)


def test_the_match_weighs_each_shapes_extremity(engine, box_mesh, monkeypatch):
    from model import matching
    source = engine.prepare(box_mesh)
    target = engine.prepare(trimesh.creation.box(extents=(1.2, 1.8, 0.6)).sample(3000, seed=1))
    # a box's corner vertex points back into the box; its face centres barely do
    corner = np.argmax(np.abs(source.points).sum(1))
    assert np.linalg.norm(source.point_extremity[corner]) > 0.3
    assert np.sign(source.point_extremity[corner]).tolist() == (-np.sign(source.points[corner])).tolist()
    weighed = engine.correspond(source, target).source_index
    monkeypatch.setattr(matching, "EXTREMITY_WEIGHT", 0.0)
    assert np.mean(engine.correspond(source, target).source_index != weighed) > 0.05


def test_the_embedding_weighs_less_without_the_sources_labels(monkeypatch):
    from model import matching
    from training.devset import load_devset
    engine = Correspondence.load(category="chair", device="cpu")  # a trained embedding: the tiny one is flat
    chairs = load_devset("chair")[:2]
    source, target = (engine.prepare(c["surface_points"]) for c in chairs)
    labels = chairs[0]["surface_labels"]
    plain, labelled = engine.correspond(source, target), engine.correspond(source, target, source_labels=labels)
    monkeypatch.setattr(matching, "UNLABELLED_EMBEDDING_SHARE", 1.0)
    # without labels the share changes the match; with them the checkpoint's weight is used whole
    assert np.mean(engine.correspond(source, target).source_index != plain.source_index) > 0.1
    assert np.array_equal(engine.correspond(source, target, source_labels=labels).source_index,
                          labelled.source_index)


def test_labels_voted_over_several_sources_by_their_confidence():
    from model.labels import vote
    labels = np.array([[0, 1, -1, 2], [1, 1, -1, 2], [1, 0, -1, 2]])
    conf = np.array([[0.9, 0.2, 0.5, 0.0], [0.3, 0.4, 0.5, 0.0], [0.3, 0.1, 0.5, 0.0]])
    voted, support = vote(labels, conf)
    # one sure source outvotes two unsure ones; no source, no label; all unsure still vote
    assert voted.tolist() == [0, 1, -1, 2]
    assert support.tolist() == [0.9, 0.4, 0.0, 0.0]
    with pytest.raises(ValueError, match="differ in shape"):
        vote(labels, conf[:2])


def test_vote_labels_takes_a_list_of_sources_with_one_label_array_each(engine):
    src, other, tgt = rng_points(400), rng_points(400, 1), rng_points(300, 2)
    lab, other_lab = (src[:, 1] > 0.5).astype(np.int64), (other[:, 1] > 0.5).astype(np.int64)
    alone, conf = engine.transfer_labels(src, lab, tgt)
    voted, support = engine.vote_labels([src, src], [lab, lab], tgt)
    assert np.array_equal(voted, alone) and np.allclose(support, conf)
    voted, _ = engine.vote_labels([src, other], [lab, other_lab], tgt)
    assert set(np.unique(voted)) <= {0, 1} and len(voted) == len(tgt)
    with pytest.raises(ValueError, match="list of shapes"):
        engine.vote_labels((src, np.zeros((0, 3), int)), [lab], tgt)  # a tuple is one mesh, not two sources
    with pytest.raises(ValueError, match="one label array per source: 2 sources, 1 label arrays"):
        engine.vote_labels([src, other], [lab], tgt)
