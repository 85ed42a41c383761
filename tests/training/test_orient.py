import json
from pathlib import Path

import numpy as np
import pytest

from training.families import chair
from training.orient import candidate_rotations, orient, templates_for
from training.prepare import PSB_ROTATIONS


def test_candidates_are_rotations_and_include_identity():
    cands = candidate_rotations(turns=4)
    assert cands.shape == (24, 3, 3)
    assert np.allclose(np.einsum("nij,nkj->nik", cands, cands), np.eye(3), atol=1e-9)
    assert np.allclose(np.linalg.det(cands), 1)
    assert any(np.allclose(c, np.eye(3)) for c in cands)


def test_orient_stands_a_lying_chair_up_and_faces_it_front():
    pts = chair(back_height=0.6, seat_height=0.45).sample_surface(768, seed=0)[0]
    lying = np.array([[0.0, -1, 0], [1, 0, 0], [0, 0, 1]]) @ np.array([[-1.0, 0, 0], [0, 1, 0], [0, 0, -1]])
    rot, _ = orient(pts @ lying.T, templates_for("chair", 6), candidate_rotations(turns=4))
    total = rot @ lying
    assert np.allclose(total @ [0, 1, 0], [0, 1, 0], atol=1e-6)  # up is up
    assert np.allclose(total @ [0, 0, 1], [0, 0, 1], atol=1e-6)  # the back is behind


def test_psb_rotation_file_covers_chairs_tables_airplanes(psb_dir):
    data = json.loads(PSB_ROTATIONS.read_text())
    for category in ("chair", "table", "airplane"):
        names = {p.name.split(".")[0] for p in (psb_dir / category).glob("*.off.gz")}
        assert names <= set(data["rotations"]), category
    for rot in data["rotations"].values():
        r = np.asarray(rot)
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-4) and np.isclose(np.linalg.det(r), 1, atol=1e-4)


def test_the_command_skips_broken_meshes_saves_as_it_goes_and_goes_on(tmp_path, capsys, monkeypatch):
    import trimesh

    from training import orient as orient_module

    meshes, out = tmp_path / "in", tmp_path / "rotations.json"
    meshes.mkdir()
    trimesh.creation.box().export(meshes / "box.off")
    (meshes / "flat.off").write_text("OFF\n3 1 0\n0 0 0\n1 0 0\n2 0 0\n3 0 1 2\n")  # zero area
    args = ["--meshes", str(meshes), "--category", "chair", "--out", str(out), "--templates", "2"]
    assert orient_module.main(args) == 1
    said = capsys.readouterr()
    assert "skipped" in said.out + said.err
    assert list(json.loads(out.read_text())["rotations"]) == ["box"]
    monkeypatch.setattr(orient_module, "orient", lambda *a: (_ for _ in ()).throw(AssertionError("redone")))
    assert orient_module.main(args) == 1  # the box is not oriented again
    with pytest.raises(SystemExit, match="2"):
        orient_module.main(args[:2] + ["--category", "sofa", "--out", str(out)])
