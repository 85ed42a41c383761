import json

import numpy as np
import pytest
import trimesh

from server.cli import LOW_CONFIDENCE, main


def _ply_vertex_data(path):
    mesh = trimesh.load(path, process=False)
    return mesh, mesh.metadata["_ply_raw"]["vertex"]["data"]


def test_ping_info(server, capsys):
    assert main(["--address", server.address, "ping"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
    assert main(["--address", server.address, "info"]) == 0
    assert json.loads(capsys.readouterr().out)["device"] == "cpu"


def test_segment_and_correspond_write_ply_with_attributes(server, tmp_path, capsys):
    src, tgt = trimesh.creation.box().subdivide(), trimesh.creation.icosphere(2)
    src.export(tmp_path / "src.obj")
    tgt.export(tmp_path / "tgt.off")
    # --align takes its mode, so the subcommand after it is not read as one
    assert main(["--address", server.address, "--align", "yaw", "segment", str(tmp_path / "src.obj"),
                 "--out", str(tmp_path / "s.ply")]) == 0
    # the common options also after the command; there they override those before it
    assert main(["--address", "tcp://127.0.0.1:9", "segment", str(tmp_path / "src.obj"), "--out",
                 str(tmp_path / "s2.ply"), "--address", server.address, "--align", "yaw"]) == 0
    assert (tmp_path / "s2.ply").read_bytes() == (tmp_path / "s.ply").read_bytes()
    mesh, data = _ply_vertex_data(tmp_path / "s.ply")
    assert len(mesh.vertices) == len(src.vertices) and "part_label" in data.dtype.names
    face_labels = (np.abs(src.face_normals).argmax(1)).astype(int)  # 0/1/2 by face orientation
    np.savetxt(tmp_path / "labels.txt", face_labels, fmt="%d")
    out = tmp_path / "t.ply"
    assert main(["--address", server.address, "correspond", str(tmp_path / "src.obj"), str(tmp_path / "tgt.off"),
                 "--out", str(out), "--source-labels", str(tmp_path / "labels.txt")]) == 0
    mesh, data = _ply_vertex_data(out)
    assert len(mesh.vertices) == len(tgt.vertices)
    assert set(np.unique(data["part_label"])) <= {0, 1, 2}
    said = capsys.readouterr()
    assert f"mean confidence {data['corr_confidence'].mean():.2f}" in said.out
    assert "model: chair; rebuild distance src.obj " in said.out  # the tiny model explains neither shape
    assert f"{tmp_path / 'tgt.off'} does not look like a chair to its model" in said.err
    assert "--category auto" not in said.err  # this server has no other model to try
    assert said.err.count("if a mesh is not upright or not facing front (-Z), try --align yaw") == 1  # once
    assert ("low confidence (mean" in said.err) == (data["corr_confidence"].mean() < LOW_CONFIDENCE)
    # turned about the up axis already: what is left to try is any rotation
    assert main(["--address", server.address, "--align", "yaw", "correspond", str(tmp_path / "src.obj"),
                 str(tmp_path / "tgt.off"), "--out", str(out)]) == 0
    said = capsys.readouterr()
    assert "try --align any" in said.err and "--align yaw" not in said.err
    assert ((data["corr_confidence"] >= 0) & (data["corr_confidence"] <= 1)).all()
    assert ((data["corr_source_face"] >= 0) & (data["corr_source_face"] < len(src.faces))).all()


def test_transfer_colours_and_errors(server, tmp_path, capsys):
    src = trimesh.creation.box().subdivide()
    src.visual.vertex_colors = np.c_[np.full((len(src.vertices), 3), [10, 200, 30]), np.full(len(src.vertices), 255)]
    src.export(tmp_path / "src.ply")
    trimesh.creation.icosphere(1).export(tmp_path / "tgt.stl")
    out = tmp_path / "t.ply"
    assert main(["--address", server.address, "transfer", str(tmp_path / "src.ply"), str(tmp_path / "tgt.stl"),
                 "--out", str(out), "--threshold", "0"]) == 0
    mesh, _ = _ply_vertex_data(out)
    assert (np.asarray(mesh.visual.vertex_colors)[:, :3] == [10, 200, 30]).all()
    assert len(mesh.vertices) == 42  # the STL's vertices welded, not one per corner
    trimesh.creation.box().export(tmp_path / "plain.obj")
    asked = server_handled(server.address, "correspond")
    assert main(["--address", server.address, "transfer", str(tmp_path / "plain.obj"), str(tmp_path / "tgt.stl"),
                 "--out", str(out)]) == 2
    assert "no vertex colours" in capsys.readouterr().err
    assert server_handled(server.address, "correspond") == asked  # said before the server's work
    np.savetxt(tmp_path / "bad.txt", [1, 2, 3], fmt="%d")
    assert main(["--address", server.address, "correspond", str(tmp_path / "plain.obj"), str(tmp_path / "tgt.stl"),
                 "--out", str(out), "--source-labels", str(tmp_path / "bad.txt")]) == 2
    assert main(["--address", server.address, "segment", str(tmp_path / "missing.obj"), "--out", str(out)]) == 2
    assert main(["--address", server.address, "segment", str(tmp_path), "--out", str(out)]) == 2
    assert f"{tmp_path}: a folder, not a mesh file" in capsys.readouterr().err
    assert main(["--address", "tcp://127.0.0.1:9", "--timeout", "0.5", "ping"]) == 1
    assert "no server answers at tcp://127.0.0.1:9 (within 0.5 s): start one" in capsys.readouterr().err
    assert main(["segment", str(tmp_path / "plain.obj"), "--out", str(tmp_path / "parts.obj")]) == 2
    assert "write a .ply file" in capsys.readouterr().err  # not PLY under another name
    handled = server_handled(server.address)
    assert main(["--address", server.address, "segment", str(tmp_path / "plain.obj"),
                 "--out", str(tmp_path / "no" / "parts.ply")]) == 2  # refused before the server does the work
    assert f"cannot write into {tmp_path / 'no'}" in capsys.readouterr().err
    assert server_handled(server.address) == handled
    with pytest.raises(SystemExit):  # argparse: exit 2 with the flag named
        main(["--address", server.address, "--timeout", "-1", "ping"])
    assert "--timeout must be a number of seconds > 0" in capsys.readouterr().err
    assert main(["--address", "nonsense", "ping"]) == 2
    assert "cannot connect to 'nonsense'" in capsys.readouterr().err
    (tmp_path / "words.txt").write_text("vm\n")
    assert main(["--address", server.address, "correspond", str(tmp_path / "plain.obj"), str(tmp_path / "tgt.stl"),
                 "--out", str(out), "--source-labels", str(tmp_path / "words.txt")]) == 2
    assert f"--source-labels {tmp_path / 'words.txt'}: expected one integer per line" in capsys.readouterr().err


def test_point_cloud_files_are_matched_as_points(server, tmp_path, capsys):
    box = trimesh.creation.box().subdivide()
    points = trimesh.sample.sample_surface(trimesh.creation.box(), 400, seed=0)[0]
    colours = np.c_[(points > 0) * 200, np.full(len(points), 255)].astype(np.uint8)  # each octant its own
    trimesh.PointCloud(points, colors=colours).export(tmp_path / "scan.ply")
    np.savetxt(tmp_path / "scan.xyz", points[:300])
    box.export(tmp_path / "box.obj")
    box.export(tmp_path / "box.off")
    cmd = ["--address", server.address]
    assert main(cmd + ["segment", str(tmp_path / "scan.xyz"), "--out", str(tmp_path / "parts.ply")]) == 0
    cloud, data = _ply_vertex_data(tmp_path / "parts.ply")
    assert isinstance(cloud, trimesh.PointCloud) and len(data["part_label"]) == 300  # written as points again
    # a cloud as the source: each target vertex takes its matched point's colour
    out = tmp_path / "t.ply"
    assert main(cmd + ["transfer", str(tmp_path / "scan.ply"), str(tmp_path / "box.off"), "--out", str(out),
                       "--threshold", "0"]) == 0
    mesh, data = _ply_vertex_data(out)
    assert (data["corr_source_face"] == -1).all()
    assert (np.asarray(mesh.visual.vertex_colors)[:, :3] == colours[data["corr_source_vertex"], :3]).all()
    # a cloud as the target, labels from the source's vertices
    np.savetxt(tmp_path / "labels.txt", (box.vertices[:, 2] > 0).astype(int), fmt="%d")
    assert main(cmd + ["correspond", str(tmp_path / "box.obj"), str(tmp_path / "scan.ply"), "--out", str(out),
                       "--source-labels", str(tmp_path / "labels.txt")]) == 0
    cloud, data = _ply_vertex_data(out)
    assert len(cloud.vertices) == 400 and (data["corr_source_face"] >= 0).all()
    assert (data["part_label"] == (box.vertices[data["corr_source_vertex"], 2] > 0)).all()
    np.savetxt(tmp_path / "two.xyz", points[:2])
    assert main(cmd + ["segment", str(tmp_path / "two.xyz"), "--out", str(out)]) == 2
    assert "a point cloud needs at least 3 points" in capsys.readouterr().err


def server_handled(address, op="segment"):
    from server.client import Client
    with Client(address) as c:
        return c.ping()["handled"].get(op, 0)


def test_files_as_they_are_listed_and_bad_ones_refused_cleanly(server, tmp_path, capsys):
    box = trimesh.creation.box().subdivide()
    lines = [f"v {x} {y} {z}" for x, y, z in box.vertices]
    lines += [f"vt {i / 300:.4f} 0.5" for i in range(3 * len(box.faces))]  # a UV per corner: seams everywhere
    lines += [f"f {a + 1}/{3 * i + 1} {b + 1}/{3 * i + 2} {c + 1}/{3 * i + 3}"
              for i, (a, b, c) in enumerate(box.faces)]
    (tmp_path / "uv.obj").write_text("\n".join(lines) + "\n")
    segment = ["--address", server.address, "segment"]
    assert main(segment + [str(tmp_path / "uv.obj"), "--out", str(tmp_path / "s.ply")]) == 0
    assert len(_ply_vertex_data(tmp_path / "s.ply")[0].vertices) == len(box.vertices)  # not split at the seams
    (tmp_path / "bad.ply").write_text("ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
                                      "property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
                                      "end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 9\n")
    assert main(segment + [str(tmp_path / "bad.ply"), "--out", str(tmp_path / "o.ply")]) == 2
    assert "a face names vertex 9, but the file has vertices 0 to 2" in capsys.readouterr().err
    (tmp_path / "taken.ply").mkdir()  # --out names a folder: refused, and no temporary file left
    assert main(segment + [str(tmp_path / "uv.obj"), "--out", str(tmp_path / "taken.ply")]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.ply", "s.ply", "taken.ply", "uv.obj"]
    with pytest.raises(SystemExit):
        main(["--address", server.address, "--timeout", "inf", "ping"])


def test_ctrl_c_takes_the_request_back(server, tmp_path, capsys, monkeypatch):
    from server.client import Client

    trimesh.creation.box().export(tmp_path / "box.obj")
    wait = Client._wait

    def interrupted_once(self, sock, give_up):  # Ctrl-C while the segment runs: after the size check's info
        if self._server_limit is not None and not given_up:
            raise KeyboardInterrupt
        return wait(self, sock, give_up)

    given_up, give_up = [], Client._give_up

    def giving_up(self, request_id):
        given_up.append(request_id)
        return give_up(self, request_id)

    monkeypatch.setattr(Client, "_wait", interrupted_once)
    monkeypatch.setattr(Client, "_give_up", giving_up)
    assert main(["--address", server.address, "segment", str(tmp_path / "box.obj"),
                 "--out", str(tmp_path / "o.ply")]) == 130
    assert "interrupted: the request was taken back" in capsys.readouterr().err
    assert len(given_up) == 1  # the segment's cancel sent (and answered: no traceback)
    monkeypatch.undo()
    with Client(server.address) as c:  # and a result is the caller's to edit
        parts = c.segment(*(np.asarray(a) for a in (trimesh.creation.box().vertices, trimesh.creation.box().faces)))
        parts[:] = 0


def test_the_module_runs_as_a_command(server):
    import subprocess
    import sys

    from ..conftest import child_env
    done = subprocess.run([sys.executable, "-m", "server.cli", "--address", server.address, "ping"],
                          capture_output=True, text=True, env=child_env(), timeout=60)
    assert done.returncode == 0 and json.loads(done.stdout)["ok"] is True


def test_a_shape_far_from_the_origin_keeps_its_shape_labels_and_positions(server, tmp_path, capsys):
    """Coordinates in the millions (georeferenced scans): float32 on the wire keeps about 7
    digits, so the client sends shapes less their centre and puts positions back."""
    chair = trimesh.creation.box(extents=(0.5, 0.9, 0.5)).subdivide().subdivide()
    chair.vertices += np.random.default_rng(0).normal(0, 0.003, chair.vertices.shape)
    far = chair.copy()
    far.vertices += (5e6, 0.0, 4e6)
    for name, mesh in (("near", chair), ("far", far)):
        mesh.export(tmp_path / f"{name}.obj")  # 8 decimals
        assert main(["--address", server.address, "segment", str(tmp_path / f"{name}.obj"),
                     "--out", str(tmp_path / f"{name}_parts.ply")]) == 0
    near_out, near_data = _ply_vertex_data(tmp_path / "near_parts.ply")
    far_out, far_data = _ply_vertex_data(tmp_path / "far_parts.ply")
    assert np.array_equal(near_data["part_label"], far_data["part_label"])
    assert np.abs(far_out.vertices - far.vertices).max() < 1e-7  # written as doubles
    assert near_data["x"].dtype == np.float32 and far_data["x"].dtype == np.float64

    from server.client import Client
    with Client(server.address) as client:
        near = client.correspond(chair.vertices, chair.vertices, chair.faces, chair.faces, both=True)
        far_reply = client.correspond(far.vertices, far.vertices, far.faces, far.faces, both=True)
    for key in ("mapped", "reverse_mapped"):
        assert np.abs(far_reply[key] - (5e6, 0.0, 4e6) - near[key]).max() < 1e-5
    assert np.array_equal(far_reply["source_face"], near["source_face"])
