"""Normals estimated from bare points, and the network whose E sees them."""
import numpy as np
import pytest
import torch

from model.config import preset
from model.networks import ImplicitCorrespondenceNet, with_encoder_normals
from model.normals import estimate_normals, pca_normals
from training.families import sample_shape
from training.samples import assembly_sample


def test_pca_normals_of_a_noisy_plane_are_its_axis():
    rng = np.random.default_rng(0)
    plane = np.c_[rng.random((800, 2)), 1e-3 * rng.random(800)]
    assert np.all(np.abs(pca_normals(plane)[:, 2]) > 0.99)


def test_a_spheres_estimated_normals_point_out():
    p = np.random.default_rng(0).normal(size=(3000, 3))
    p /= np.linalg.norm(p, axis=1, keepdims=True)
    assert np.mean((estimate_normals(p) * p).sum(1) > 0.95) > 0.99


def test_a_tables_estimated_normals_mostly_agree_with_its_faces():
    # thin legs and edges blur the directions; concave corners (under the top, between
    # apron and legs) are where the signs are hard (a table with an apron, 88% right)
    s = assembly_sample(sample_shape("table", np.random.default_rng([12, 7])), seed=12)
    est = estimate_normals(s["surface_points"].astype(np.float64))
    cos = (est * s["surface_normals"]).sum(1)
    assert np.mean(np.abs(cos) > 0.9) > 0.7  # the direction
    assert np.mean(cos > 0) > 0.85  # and the outward sign
    centre_only = np.where(((s["surface_points"] - 0) * est).sum(1, keepdims=True) >= 0, est, -est)
    assert np.mean(cos > 0) > np.mean((centre_only * s["surface_normals"]).sum(1) > 0) + 0.05


def test_widening_e_for_normals_keeps_the_function_until_trained():
    torch.manual_seed(0)
    net = ImplicitCorrespondenceNet(preset("tiny")).eval()
    wide = with_encoder_normals(net)
    assert wide.cfg.encoder_normals and wide.encoder.point_layers[0].in_features == 6
    pts = torch.rand(2, 64, 3) - 0.5
    with_normals = torch.cat([pts, torch.nn.functional.normalize(torch.randn(2, 64, 3), dim=-1)], -1)
    assert torch.allclose(net.encode(pts), wide.encode(with_normals), atol=1e-6)
    assert with_encoder_normals(wide) is wide
    with pytest.raises(ValueError, match="E expects 6 values per point, got 3"):
        wide.encode(pts)


def test_an_engine_whose_e_sees_normals_takes_clouds_meshes_and_turns():
    import trimesh

    from model import Correspondence
    from model.preparation import encoder_input

    torch.manual_seed(0)
    engine = Correspondence(ImplicitCorrespondenceNet(preset("tiny").with_(encoder_normals=True)), device="cpu")
    box = trimesh.creation.box(extents=(1.0, 2.0, 0.5)).subdivide().subdivide()
    cloud = np.random.default_rng(0).random((6000, 3))  # more points than E's normals are estimated from
    result = engine.correspond((np.asarray(box.vertices), np.asarray(box.faces)), cloud)
    assert result.mapped.shape == (6000, 3) and np.isfinite(result.confidence).all()
    prepared = engine.prepare(cloud)
    enc = encoder_input(prepared.shape, prepared.frame, engine.cfg, seed=0)
    assert enc.shape == (engine.cfg.encoder_points, 6)
    assert np.allclose(np.linalg.norm(enc[:, 3:], axis=1), 1.0)
    assert engine.align(cloud).shape == (3, 3)  # turns the normals with the points
