import gzip
import os
import shutil

import numpy as np
import pytest
import trimesh
from scipy.io import savemat

from training.prepare import main as prepare_main, mat_sample, mesh_sample, prepare_meshes
from training.samples import POINTS_PER_RESOLUTION, RESOLUTIONS


def _check_occupancy(sample, signed_distance):
    """Voxels wholly inside must read 1, wholly outside 0 (boundary voxels may be either)."""
    for r in RESOLUTIONS:
        pts, occ = sample[f"occ_points_{r}"], sample[f"occ_values_{r}"]
        assert len(pts) == min(POINTS_PER_RESOLUTION[r], r**3)
        half_diag = np.sqrt(3) / (2 * r)
        d = signed_distance(pts)  # negative inside
        inside, outside = d < -half_diag, d > half_diag
        assert inside.sum() > 5 and outside.sum() > 20, r
        assert occ[inside].min() == 1 and occ[outside].max() == 0, r
        near_frac = np.mean(np.abs(d) < 3 / r)
        assert near_frac > 0.3 or r == 16, (r, near_frac)  # near-surface voxels come first


def test_sphere_occupancy_at_every_resolution(tmp_path):
    mesh = trimesh.creation.icosphere(subdivisions=4, radius=3.0)
    mesh.apply_translation([10, -4, 2])
    path = tmp_path / "ball.obj"
    mesh.export(path)
    sample = mesh_sample(path)
    # normalised: centred, unit bounding-box diagonal -> radius 1 / (2 sqrt 3)
    radius = 1 / (2 * np.sqrt(3))
    _check_occupancy(sample, lambda p: np.linalg.norm(p, axis=1) - radius)
    assert np.allclose(np.linalg.norm(sample["surface_points"], axis=1), radius, atol=2e-3)


def test_a_leftover_piece_far_off_is_framed_and_sampled_as_the_engine_does(tmp_path):
    """A small piece left far off (and an unused vertex) neither shrinks the shape in its
    frame nor lends it surface samples: the sample is the clean mesh's, as the engine's frame is."""
    ball = trimesh.creation.icosphere(subdivisions=4, radius=3.0)
    leftover = trimesh.creation.icosphere(subdivisions=2, radius=0.3).apply_translation([4.6, 0, 0])  # in the grid
    both = trimesh.util.concatenate([ball, leftover])
    ball.export(tmp_path / "ball.obj")
    both.export(tmp_path / "both.obj")
    clean, junk = mesh_sample(tmp_path / "ball.obj"), mesh_sample(tmp_path / "both.obj")
    assert np.allclose(junk["surface_points"], clean["surface_points"])
    for r in RESOLUTIONS:
        assert np.array_equal(junk[f"occ_values_{r}"], clean[f"occ_values_{r}"])


def test_torus_occupancy_at_every_resolution(tmp_path):
    mesh = trimesh.creation.torus(major_radius=2.0, minor_radius=0.7, major_sections=96, minor_sections=48)
    path = tmp_path / "ring.ply"
    mesh.export(path)
    sample = mesh_sample(path)
    scale = np.linalg.norm(mesh.bounds[1] - mesh.bounds[0])
    R, r = 2.0 / scale, 0.7 / scale

    def sdf(p):  # torus around the z axis
        q = np.stack([np.linalg.norm(p[:, :2], axis=1) - R, p[:, 2]], axis=1)
        return np.linalg.norm(q, axis=1) - r

    _check_occupancy(sample, sdf)
    # the hole is empty: voxels near the axis are outside
    pts, occ = sample["occ_points_64"], sample["occ_values_64"]
    axis = np.linalg.norm(pts[:, :2], axis=1) < R - r - 0.05
    assert axis.any() and occ[axis].max() == 0


def test_folder_restart_and_broken_meshes(tmp_path, psb_dir, capsys):
    meshes = tmp_path / "in"
    meshes.mkdir()
    shutil.copy(psb_dir / "chair" / "101.off.gz", meshes)
    shutil.copy(psb_dir / "chair" / "101.seg", meshes)
    trimesh.creation.box().export(meshes / "box.stl")
    (meshes / "broken.obj").write_text("v 0 0 0\nv nan 1 0\nv 0 1 0\nf 1 2 3\n")
    (meshes / "empty.off").write_text("OFF\n0 0 0\n")
    out = tmp_path / "out"
    new, old, failures = prepare_meshes(meshes, out, workers=2)
    assert (new, old) == (2, 0)
    assert sorted(f[0].split("/")[-1] for f in failures) == ["broken.obj", "empty.off"]
    assert sorted(p.name for p in out.iterdir()) == ["101.npz", "box.npz"]
    chair = np.load(out / "101.npz")
    assert "segment_ids" in chair.files and (chair["surface_labels"] == -1).all()
    new, old, failures = prepare_meshes(meshes, out, workers=1)  # a restart skips finished shapes
    assert (new, old) == (0, 2) and len(failures) == 2
    # a new rotation for one mesh, or an edited file, makes that sample again
    turn = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])
    before = np.load(out / "box.npz")["surface_points"]
    new, old, _ = prepare_meshes(meshes, out, {"box": turn}, workers=1)
    assert (new, old) == (1, 1) and "1 sample(s) made again" in capsys.readouterr().err
    assert not np.array_equal(np.load(out / "box.npz")["surface_points"], before)
    assert prepare_meshes(meshes, out, {"box": turn}, workers=1)[:2] == (0, 2)
    trimesh.creation.icosphere(1).export(meshes / "box.stl")
    assert prepare_meshes(meshes, out, {"box": turn}, workers=1)[:2] == (1, 1)
    (meshes / "101.seg").write_text((meshes / "101.seg").read_text() + "\n")  # an edited .seg too
    assert prepare_meshes(meshes, out, {"box": turn}, workers=1)[:2] == (1, 1)
    # a sample from before the record is kept as it is, unless labels are now asked for
    old_sample = {k: v for k, v in np.load(out / "101.npz").items() if k != "made_from"}
    np.savez(out / "101.npz", **old_sample)
    assert prepare_meshes(meshes, out, {"box": turn}, workers=1)[:2] == (0, 2)
    assert prepare_main(["--meshes", str(tmp_path / "nowhere"), "--out", str(out)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_authors_mat_files(tmp_path):
    rng = np.random.default_rng(0)
    data = {f"data_{r}": np.c_[rng.integers(0, r, (100, 3)), rng.integers(0, 2, 100)].astype(np.float64)
            for r in RESOLUTIONS}
    data["shape"] = rng.uniform(-0.4, 0.4, (500, 3))
    path = tmp_path / "s.mat"
    savemat(path, data)
    sample = mat_sample(path)
    for r in RESOLUTIONS:
        pts = sample[f"occ_points_{r}"]
        assert pts.shape == (100, 3) and pts.min() >= -0.5 and pts.max() <= 0.5  # voxel indices mapped
        assert np.array_equal(sample[f"occ_values_{r}"], data[f"data_{r}"][:, 3])
    assert sample["surface_normals"].shape == (500, 3)
    data["points"] = data.pop("shape")  # the key the authors' code reads now
    savemat(path, data)
    assert np.allclose(mat_sample(path)["surface_points"], sample["surface_points"])
    del data["data_32"]
    savemat(path, data)
    with pytest.raises(ValueError, match="lacks 'data_32'"):
        mat_sample(path)


def test_procedural_cli(tmp_path, capsys):
    assert prepare_main(["--procedural", "table", "--count", "3", "--out", str(tmp_path), "--workers", "1"]) == 0
    assert "3 prepared" in capsys.readouterr().out
    s = np.load(tmp_path / "table_00000.npz")
    assert set(np.unique(s["surface_labels"])) <= {0, 1, 2} and 0 in s["labels_present"]
    assert prepare_main(["--procedural", "sofa", "--count", "1", "--out", str(tmp_path)]) != 0


def test_quiet_generation_and_loading(tmp_path, capfd):
    """The trainer's --no_progress reaches the data steps: no bars, same samples."""
    from training.dataset import ShapeDataset
    from training.prepare import add_estimated_normals, prepare_procedural
    assert prepare_procedural("table", 2, tmp_path, workers=1, progress=False)[0] == 2
    assert add_estimated_normals(sorted(tmp_path.glob("*.npz")), workers=1, progress=False) == []
    assert len(ShapeDataset(tmp_path, val_fraction=0.0, progress=False).train) == 2
    err = capfd.readouterr().err
    assert "generate" not in err and "estimate normals" not in err, err
    prepare_procedural("table", 3, tmp_path, workers=1)  # the default shows the bar
    assert "generate table" in capfd.readouterr().err


def test_meshes_of_one_name_rotations_and_sheets(tmp_path, capsys):
    meshes = tmp_path / "in"
    for sub in ("a", "b"):
        (meshes / sub).mkdir(parents=True)
        trimesh.creation.box().export(meshes / sub / "chair.ply")
    with pytest.raises(ValueError, match="both named 'chair'"):
        prepare_meshes(meshes, tmp_path / "out", workers=1)
    shutil.rmtree(meshes / "b")
    trimesh.Trimesh([[0, 0, 0], [1, 0, 0], [0, 1, 0]], [[0, 1, 2]]).export(meshes / "sheet.obj")
    new, old, failures = prepare_meshes(meshes, tmp_path / "out", workers=1)
    assert (new, old) == (1, 0)
    assert [(f[0].split("/")[-1], "encloses no volume" in f[1]) for f in failures] == [("sheet.obj", True)]
    assert not (tmp_path / "out" / "sheet.npz").exists()
    for text, message in (("{", "not JSON"), ('{"turns": {}}', "expected"),
                          ('{"rotations": {"chair": [[1, 0], [0, 1]]}}', "not a 3x3 matrix")):
        (tmp_path / "r.json").write_text(text)
        assert prepare_main(["--meshes", str(meshes), "--out", str(tmp_path / "o2"), "--rotations",
                             str(tmp_path / "r.json")]) == 2
        assert message in capsys.readouterr().err
    assert prepare_main(["--meshes", str(meshes), "--out", str(tmp_path / "o2"), "--rotations",
                         str(tmp_path / "missing.json")]) == 2
    assert "no such file" in capsys.readouterr().err


def test_psb_folders_take_their_orientations_without_a_warning(tmp_path, capsys):
    """The PSB table covers every category: a folder of one category uses its part quietly."""
    folder = tmp_path / "psb" / "chair"
    folder.mkdir(parents=True)
    trimesh.creation.box().export(folder / "101.obj")
    assert prepare_main(["--meshes", str(folder), "--out", str(tmp_path / "out"), "--workers", "1"]) == 0
    said = capsys.readouterr()
    assert "using the PSB orientations" in said.out and "warning" not in said.err


def test_a_run_where_every_mesh_fails_exits_nonzero(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.off").write_text("")
    assert prepare_main(["--meshes", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--workers", "1"]) == 1
    said = capsys.readouterr()
    assert "no sample could be made" in said.err and "empty.off: empty file" in said.out


def test_samples_are_readable_by_others_and_a_broken_one_is_named(tmp_path):
    from training.samples import load_sample
    prepare_main(["--procedural", "chair", "--count", "1", "--out", str(tmp_path), "--workers", "1"])
    (path,) = tmp_path.glob("*.npz")
    mask = os.umask(0)
    os.umask(mask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~mask  # as open() makes them, not mkstemp's 0600
    assert set(load_sample(path)) >= {"surface_points", "occ_values_64"}
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz: not a readable sample"):
        load_sample(junk)
    part = dict(np.load(path))
    del part["occ_values_16"]
    np.savez(tmp_path / "part.npz", **part)
    with pytest.raises(ValueError, match="part.npz: not a whole sample .no occ_values_16"):
        load_sample(tmp_path / "part.npz")


def test_consistent_seg_ids_become_part_labels_that_evaluation_reads(tmp_path, capsys):
    """One's own category: meshes whose .seg ids mean the same part everywhere, prepared
    with --seg_labels (over samples prepared without them) and scored with numbered parts."""
    import torch

    from model import Checkpoint, ImplicitCorrespondenceNet, preset, save_checkpoint
    from training.evaluate import main as evaluate_main
    meshes = tmp_path / "in"
    meshes.mkdir()
    for i, height in enumerate((0.5, 0.8, 1.1, 1.4)):  # a slab on a post: part 0 the slab, 1 the post
        slab = trimesh.creation.box(extents=(1, 0.1, 1))
        slab.apply_translation((0, height, 0))
        post = trimesh.creation.box(extents=(0.15, height, 0.15))
        post.apply_translation((0, height / 2, 0))
        trimesh.util.concatenate([slab, post]).export(meshes / f"lamp{i}.ply")
        (meshes / f"lamp{i}.seg").write_text("\n".join(["0"] * len(slab.faces) + ["1"] * len(post.faces)))
    out = tmp_path / "out"
    assert prepare_main(["--meshes", str(meshes), "--out", str(out), "--workers", "1"]) == 0
    old = {k: v for k, v in np.load(out / "lamp0.npz").items() if k != "made_from"}
    np.savez(out / "lamp0.npz", **old)  # as samples prepared before the record was kept
    assert prepare_main(["--meshes", str(meshes), "--out", str(out), "--seg_labels", "--workers", "1"]) == 0
    assert "4 sample(s) made again" in capsys.readouterr().err
    sample = np.load(out / "lamp0.npz")
    assert set(np.unique(sample["surface_labels"])) == {0, 1} and "segment_ids" not in sample.files
    top = sample["surface_points"][sample["surface_labels"] == 0][:, 1].mean()
    assert top > sample["surface_points"][sample["surface_labels"] == 1][:, 1].mean()  # the slab is on top
    torch.manual_seed(0)
    ck = tmp_path / "lamp.pth"
    save_checkpoint(ck, Checkpoint(preset("tiny"), ImplicitCorrespondenceNet(preset("tiny")).state_dict(), "lamp", stage=3))
    capsys.readouterr()
    assert evaluate_main(["--checkpoint", str(ck), "--data", str(out), "--sources", "1"]) == 0
    assert "IoU part 1" in capsys.readouterr().out
    (meshes / "lamp3.seg").unlink()  # a mesh without its .seg is named and skipped
    assert prepare_main(["--meshes", str(meshes), "--out", str(tmp_path / "o2"), "--seg_labels",
                         "--workers", "1"]) == 0
    assert "no lamp3.seg beside it" in capsys.readouterr().out


def test_a_mesh_that_now_fails_loses_its_old_sample_and_broken_samples_are_made_again(tmp_path):
    meshes, out = tmp_path / "in", tmp_path / "out"
    meshes.mkdir()
    trimesh.creation.box().export(meshes / "box.off")
    trimesh.creation.icosphere(1).export(meshes / "ball.off")
    assert prepare_meshes(meshes, out, workers=1)[:2] == (2, 0)
    (meshes / "box.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n0 1 0\n3 0 1 2\n")  # now one triangle
    (out / "ball.npz").write_bytes((out / "ball.npz").read_bytes()[:3000])  # a truncated zip
    (out / "ball.npz.x1y2.tmp.npz").write_bytes(b"killed mid-write by an older run")
    new, old, failures = prepare_meshes(meshes, out, workers=1)
    assert (new, old) == (1, 0) and failures[0][1].endswith("(its old sample removed)")
    assert sorted(p.name for p in out.iterdir()) == ["ball.npz"]  # nothing left to train on but the ball
    assert np.load(out / "ball.npz")["occ_values_64"].any()


def test_inside_out_meshes_odd_seg_files_and_non_utf8_names_are_prepared(tmp_path):
    meshes, out = tmp_path / "in", tmp_path / "out"
    meshes.mkdir()
    trimesh.creation.box().invert().export(meshes / "inverted.off")  # every face wound inward
    trimesh.creation.box().export(meshes / "seg.off")
    (meshes / "seg.seg").write_text("0\n1\n")  # 2 ids for 12 faces: only segment ids are lost
    trimesh.creation.box().export(meshes / "caf\udce9.off")  # a Latin-1 byte in the name
    new, _, failures = prepare_meshes(meshes, out, workers=1)
    assert (new, failures) == (3, [])
    inside = {p.stem: np.load(p)["occ_values_64"].mean() for p in out.glob("*.npz")}
    assert all(0.2 < share < 0.8 for share in inside.values()), inside
    assert "segment_ids" not in np.load(out / "seg.npz").files


def test_a_worker_that_dies_is_reported_not_raised():
    from training.prepare import run_jobs

    failures = run_jobs(os._exit, [1, 1, 1], workers=2, desc="die", progress=False)
    assert failures[0][0] == "3 shape(s)" and "worker process died" in failures[0][1]
