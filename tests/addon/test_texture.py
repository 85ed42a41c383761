"""Texture (UV) transfer between real textured chairs: Sweet Home 3D's furniture (Debian
package sweethome3d-furniture, BlendSwap CC-0 models), imported from OBJ into real bpy,
transferred through the real chair server.  The package is fetched outside git:

    mkdir -p ~/.cache/implicit-correspondence && cd ~/.cache/implicit-correspondence
    apt-get download sweethome3d-furniture

Two figures: the share of target polygons whose corners all land in one source UV island
(a polygon across islands would stretch over the texture atlas), and the texture-space
stretch of the target (area-weighted mean ratio of the singular values of its 3D -> UV
map on each triangle) against the source's own.
"""
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from blender_addon import api, seams

from .test_blender import attr

CACHE = Path.home() / ".cache" / "implicit-correspondence"
MODELS = CACHE / "sh3d" / "blendswap-cc-0"
SOURCE, TARGET = "antiqueChair", "chair"  # textured (UV-mapped) chairs, about 5k vertices each

pytestmark = pytest.mark.usefixtures("scene")


def sweet_home_models() -> Path:
    if not (MODELS / SOURCE).is_dir():
        debs = sorted(CACHE.glob("sweethome3d-furniture_*.deb"))
        if not debs:
            pytest.skip(f"no sweethome3d-furniture package in {CACHE} (see this file's docstring)")
        out = CACHE / "sh3d" / "deb"
        out.mkdir(parents=True, exist_ok=True)
        subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(out)], check=True)
        with zipfile.ZipFile(out / "usr/share/sweethome3d/furniture/BlendSwap-CC-0.sh3f") as z:
            z.extractall(CACHE / "sh3d")
    return MODELS


def textured_chair(bpy, name):
    """The OBJ model as one mesh object (its pieces joined), Z-up."""
    before = set(bpy.data.objects)
    bpy.ops.wm.obj_import(filepath=str(sweet_home_models() / name / f"{name}.obj"))
    pieces = [o for o in bpy.data.objects if o not in before and o.type == "MESH"]
    with bpy.context.temp_override(active_object=pieces[0], selected_editable_objects=pieces):
        bpy.ops.object.join()
    pieces[0].name = name
    return pieces[0]


def uv_triangles(ob):
    me = ob.data
    me.calc_loop_triangles()
    loops = np.array([t.loops[:] for t in me.loop_triangles])
    verts = np.array([t.vertices[:] for t in me.loop_triangles])
    polys = np.array([t.polygon_index for t in me.loop_triangles])
    _, uv = attr(ob, "UVMap", "vector")
    co = np.array([v.co for v in me.vertices])
    return loops, verts, polys, uv, co


def one_island_share(src, tgt) -> float:
    """Share of target polygons whose corners (vertices) all land, through the correspondence
    (`corr_source_face`), on triangles of one source UV island."""
    s_loops, s_verts, _, s_uv, _ = uv_triangles(src)
    island = seams.islands(s_verts, s_loops, s_uv)
    _, face = attr(tgt, "corr_source_face")
    loop_vertex = np.array([lp.vertex_index for lp in tgt.data.loops])
    corner_island = island[face[loop_vertex]]
    poly_of = np.repeat(np.arange(len(tgt.data.polygons)), [p.loop_total for p in tgt.data.polygons])
    lo, hi = np.full(len(tgt.data.polygons), np.iinfo(np.int64).max), np.full(len(tgt.data.polygons), -1)
    np.minimum.at(lo, poly_of, corner_island)
    np.maximum.at(hi, poly_of, corner_island)
    return float(np.mean(lo == hi))


def stretch(ob) -> np.ndarray:
    """Per triangle (weighted by area: a sample of the surface), sigma_max / sigma_min of its
    3D -> UV map: 1 is no stretch; a triangle squeezed to a line in UV is 1000."""
    loops, verts, _, uv, co = uv_triangles(ob)
    p, q = co[verts], uv[loops].astype(np.float64)
    e1, e2 = p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]
    n = np.cross(e1, e2)
    area = np.linalg.norm(n, axis=1) / 2
    x = e1 / np.maximum(np.linalg.norm(e1, axis=1, keepdims=True), 1e-20)
    y = np.cross(n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-20), x)
    local = np.stack([np.stack([(e1 * x).sum(1), (e1 * y).sum(1)], 1), np.stack([(e2 * x).sum(1), (e2 * y).sum(1)], 1)], 1)
    duv = np.stack([q[:, 1] - q[:, 0], q[:, 2] - q[:, 0]], 1)  # (T, 2 edges, 2)
    ok = (area > 1e-12) & (np.abs(np.linalg.det(local)) > 1e-18)
    jac = np.linalg.solve(local[ok], duv[ok])  # maps local 3D coordinates to UV
    sv = np.linalg.svd(jac, compute_uv=False)
    ratio = np.clip(sv[:, 0] / np.maximum(sv[:, 1], 1e-12), 1, 1e3)
    return np.repeat(ratio, np.maximum(1, np.round(1000 * area[ok] / area[ok].sum()).astype(int)))


def test_uvs_travel_between_real_textured_chairs(bpy):
    src, tgt = textured_chair(bpy, SOURCE), textured_chair(bpy, TARGET)
    tgt.data.uv_layers.remove(tgt.data.uv_layers["UVMap"])  # the target's own UVs: replaced by the transfer
    api.transfer(src, [tgt], uv_map="UVMap", labels=False, materials=True)
    share, s_stretch, t_stretch = one_island_share(src, tgt), stretch(src), stretch(tgt)
    print(f"texture transfer {SOURCE} -> {TARGET}: {share:.3f} of target polygons land on one source island; "
          f"stretch median {np.median(t_stretch):.1f} (source {np.median(s_stretch):.2f}), "
          f"{np.mean(t_stretch < 4):.2f} of the target's area under 4 (source {np.mean(s_stretch < 4):.2f})")
    # Measured 2026-12-03: 0.569 on one island; stretch median 1.25 (source 1.13), 0.85 of the
    # area under 4 (source 0.97); without the relaxation (blender_addon/conformal.py)
    # 7.8 and 0.42.  2026-12-05, with the outward move (docs/model.md, *Outward*): 0.521,
    # 1.2, 0.84; 0.488 when it also moved the points around a corner.  The island share is a regression guard (see docs/blender.md: big polygons
    # of low-poly furniture land across the source's parts).
    assert share > 0.5
    assert np.median(t_stretch) < 1.5 and np.mean(t_stretch < 4) > 0.75
    assert np.median(s_stretch) < 1.5  # the metric itself: the source's own UVs barely stretch
    # the source's materials (cherry wood, woven cane) with its texture, each on the polygons it lands on
    assert [m.name for m in tgt.data.materials] == [m.name for m in src.data.materials]
    index = np.array([p.material_index for p in tgt.data.polygons])
    assert np.bincount(index, minlength=len(src.data.materials)).min() > 0.05 * len(index)
