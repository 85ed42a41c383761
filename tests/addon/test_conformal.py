"""Transferred UVs relaxed toward a conformal map (blender_addon/conformal.py), bpy-free."""
import numpy as np
import pytest

from blender_addon import conformal

from .test_pure import grid


def bent_sheet(n: int = 24):
    """An n x n grid of quads over the unit square, bent into a quarter cylinder and split
    into triangles with one corner per triangle corner (L = 3 T): a curved chart whose
    true UVs are its unrolled (x, y)."""
    flat, quads = grid(n)
    angle = flat[:, 0] * np.pi / 2
    verts = np.column_stack([np.sin(angle) * 2 / np.pi, flat[:, 1], (1 - np.cos(angle)) * 2 / np.pi])
    triangles = np.concatenate([quads[:, [0, 1, 2]], quads[:, [0, 2, 3]]])
    loops = np.arange(triangles.size).reshape(-1, 3)
    return verts, triangles, loops, flat[triangles.ravel(), :2]


def stretch(verts, triangles, loops, uv):
    """Per triangle, sigma_max / sigma_min of its 3D -> UV map (1: a similarity)."""
    grad, area = conformal._gradients(verts[triangles])
    gu, gv = (uv[loops][:, :, 0:1] * grad).sum(1), (uv[loops][:, :, 1:2] * grad).sum(1)
    sv = np.linalg.svd(np.stack([gu, gv], 1), compute_uv=False)
    return sv[:, 0] / np.maximum(sv[:, 1], 1e-12)


def test_a_conformal_layout_stays_where_it_is():
    verts, triangles, loops, uv = bent_sheet()
    uv = 0.3 * uv @ np.array([[0.6, 0.8], [-0.8, 0.6]]) + [0.2, 0.5]  # turned, scaled, moved: still conformal
    chart = np.zeros(len(uv), np.int64)
    out = conformal.relax(verts, triangles, loops, uv, chart, np.ones(len(uv)))
    assert np.abs(out - uv).max() < 1e-4


def test_jitter_is_smoothed_and_the_layout_kept():
    verts, triangles, loops, truth = bent_sheet()
    rng = np.random.default_rng(0)
    vertex_noise = rng.normal(scale=0.01, size=(len(verts), 2))  # a noisy match: one error per vertex
    noisy = truth + vertex_noise[triangles.ravel()]
    for mirror in (1.0, -1.0):  # a mirrored layout (v flipped) stays mirrored
        want, given = truth * [1, mirror], noisy * [1, mirror]
        out = conformal.relax(verts, triangles, loops, given, np.zeros(len(given), np.int64), np.ones(len(given)))
        before, after = stretch(verts, triangles, loops, given), stretch(verts, triangles, loops, out)
        assert np.median(after) < 1.1 < 1.5 < np.median(before)
        assert np.abs(out - want).mean() < 0.5 * np.abs(given - want).mean()
        gu = (out[loops][:, :, 0:1] * conformal._gradients(verts[triangles])[0]).sum(1)
        gv = (out[loops][:, :, 1:2] * conformal._gradients(verts[triangles])[0]).sum(1)
        assert np.all(np.sign(gu[:, 0] * gv[:, 1] - gu[:, 1] * gv[:, 0]) == mirror)


def test_charts_move_apart_and_undecided_corners_stay():
    verts, triangles, loops, uv = bent_sheet(6)
    rng = np.random.default_rng(1)
    uv = uv + rng.normal(scale=0.02, size=uv.shape)
    left = verts[triangles].mean(1)[:, 0] < 0.5
    chart = np.repeat(np.where(left, 7, 3), 3)  # two islands, meeting along a seam of shared vertices
    chart[np.repeat(np.arange(len(triangles)) == 0, 3)] = -1  # a polygon with no island decided
    uv[np.repeat(~left, 3)] += [5.0, 0.0]  # the right chart sits elsewhere in the atlas
    pull = np.ones(len(uv))
    pull[:3] = 0.0
    out = conformal.relax(verts, triangles, loops, uv, chart, pull)
    assert np.array_equal(out[:3], uv[:3])
    assert np.isfinite(out).all()
    right = np.repeat(~left, 3)
    assert (out[right, 0] > 4).all() and (out[~right, 0] < 1.5).all()  # each chart stays on its island
    # a vertex's corners within one chart share one UV
    for c in (7, 3):
        sel = chart == c
        v, u = triangles.ravel()[sel], out[sel]
        for vertex in np.unique(v)[:20]:
            assert np.ptp(u[v == vertex], axis=0).max() < 1e-12


def test_a_texture_the_source_stretches_is_stretched_alike():
    # the source's UVs squeeze x by 3 (a planar projection down a slope, say): the relaxed
    # target keeps that shape instead of making it conformal
    verts, triangles, loops, truth = bent_sheet()
    truth = truth * [1 / 3, 1]
    rng = np.random.default_rng(2)
    noisy = truth + rng.normal(scale=0.005, size=(len(verts), 2))[triangles.ravel()]
    faces = np.repeat(np.arange(len(triangles))[:, None], 3, 1)  # the target is the source: each on its own
    metric = conformal.source_metric(verts, triangles, loops, truth, faces, np.ones(faces.shape, bool))
    chart, pull = np.zeros(len(noisy), np.int64), np.ones(len(noisy))
    followed = conformal.relax(verts, triangles, loops, noisy, chart, pull, metric)
    conformal_only = conformal.relax(verts, triangles, loops, noisy, chart, pull)
    assert np.median(stretch(verts, triangles, loops, followed)) == pytest.approx(3, rel=0.1)
    assert np.abs(followed - truth).mean() < 0.6 * np.abs(noisy - truth).mean()
    assert np.abs(followed - truth).mean() < 0.6 * np.abs(conformal_only - truth).mean()
    # squeezed past MAX_ANISOTROPY (a projection along the surface): not followed, left as matched
    flat = truth * [1e-3, 1]
    metric = conformal.source_metric(verts, triangles, loops, flat, faces, np.ones(faces.shape, bool))
    assert np.isnan(metric).all()
    assert np.allclose(conformal.relax(verts, triangles, loops, flat, chart, pull, metric), flat)
