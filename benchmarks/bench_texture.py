"""UV (texture) transfer between real textured chairs, with and without the conformal
relaxation (blender_addon/conformal.py), side by side in one run.

Sweet Home 3D's BlendSwap CC-0 chairs (Debian package sweethome3d-furniture, fetched as
tests/addon/test_texture.py says) are imported from OBJ into real bpy and transferred
through a real chair server on loopback.  Per pair: the share of target polygons whose
corners land on one source UV island, and the target's texture stretch (sigma_max /
sigma_min of each triangle's 3D -> UV map, area-weighted; the source's own is about 1.1).
The last line:

    stretch_median=<relaxed> without=<not relaxed> ratio=<relaxed / not> area_under_2=<relaxed> without=<...>

    .venv/bin/python benchmarks/bench_texture.py [--figure docs/images/texture_sh3d.png]

--figure renders the picture in the README: the source and three targets as they come,
with the source's texture transferred, and with a colour grid on the source's UVs,
transferred without and with the relaxation (Workbench).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bpy  # noqa: E402  (the pip bpy module: headless Blender)

import blender_addon  # noqa: E402
from blender_addon import api, transfer  # noqa: E402
from blender_addon.conformal import _gradients  # noqa: E402
from tests.addon.test_blender import attr  # noqa: E402
from tests.addon.test_texture import one_island_share, stretch, textured_chair, uv_triangles  # noqa: E402
from tests.server.conftest import ServerProcess  # noqa: E402

sys.path.insert(0, str(ROOT / "scripts"))
from demo import grid_material  # noqa: E402

CHECKPOINT = ROOT / "model" / "checkpoints" / "chair.pth"
PAIRS = [("antiqueChair", "chair"), ("antiqueChair", "oakChair"), ("antiqueChair", "chairWithCushion"),
         ("chairWithCushion", "chair"), ("chair", "antiqueChair"), ("osakaChair", "chairWithCushion"),
         ("antiqueChair", "plasticChair"), ("chairWithCushion", "designChair")]
FIGURE_SOURCE, FIGURE_TARGETS = "chairWithCushion", ("chair", "oakChair", "plasticChair")
SPACING = 1.4  # metres between the figure's chairs
ROWS = {"as they come": f"As they come: the source ({FIGURE_SOURCE}), then three targets",
        "texture": "The source's UVs transferred (each target polygon takes the material its corners land on)",
        "grid as matched": "A colour grid on the source's UVs, transferred as the match places it",
        "grid relaxed": "The same, relaxed so that the texture keeps the shape it has on the source (the add-on's Transfer)"}


def transfer_uvs(src: bpy.types.Object, targets: list[bpy.types.Object], relaxed: bool, **options) -> float:
    """The source's UVMap onto the targets (their own UVMap dropped), with or without the
    relaxation -> seconds."""
    for tgt in targets:
        if "UVMap" in tgt.data.uv_layers:
            tgt.data.uv_layers.remove(tgt.data.uv_layers["UVMap"])
    relax = transfer.conformal.relax
    if not relaxed:
        transfer.conformal.relax = lambda vertices, triangles, triangle_loops, uv, *rest: uv
    try:
        t = time.perf_counter()
        api.transfer(src, targets, uv_map="UVMap", labels=False, **options)
        return time.perf_counter() - t
    finally:
        transfer.conformal.relax = relax


def transferred(source: str, target: str, relaxed: bool) -> tuple[bpy.types.Object, bpy.types.Object, float]:
    """A fresh scene with the pair imported, the source's UVMap transferred -> (source, target, seconds)."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    src, tgt = textured_chair(bpy, source), textured_chair(bpy, target)
    return src, tgt, transfer_uvs(src, [tgt], relaxed)


def distortion(src: bpy.types.Object, tgt: bpy.types.Object) -> np.ndarray:
    """Per target triangle (area-weighted like `stretch`), sigma_max / sigma_min of the map
    from the target onto the source through the UVs: target -> UV -> the source triangle its
    first corner landed on.  1: the texture looks on the target as it does on the source."""
    t_loops, t_verts, _, t_uv, t_co = uv_triangles(tgt)
    s_loops, s_verts, _, s_uv, s_co = uv_triangles(src)
    _, face = attr(tgt, "corr_source_face")

    def jacobian(co, verts, uv, loops):
        grad, area = _gradients(co[verts].astype(np.float64))
        q = uv[loops].astype(np.float64)
        return np.stack([(q[:, :, 0:1] * grad).sum(1), (q[:, :, 1:2] * grad).sum(1)], 1), area

    g, area = jacobian(t_co, t_verts, t_uv, t_loops)
    k, s_area = jacobian(s_co, s_verts, s_uv, s_loops)
    k = k[face[t_verts[:, 0]]]
    ok = (area > 0) & (np.abs(np.linalg.det(k)) > 1e-12) & (s_area[face[t_verts[:, 0]]] > 0)
    sv = np.linalg.svd(np.linalg.inv(k[ok]) @ g[ok], compute_uv=False)
    ratio = np.clip(sv[:, 0] / np.maximum(sv[:, 1], 1e-12), 1, 1e3)
    return np.repeat(ratio, np.maximum(1, np.round(1000 * area[ok] / area[ok].sum()).astype(int)))


def measure() -> dict[bool, np.ndarray]:
    rows: dict[bool, list] = {False: [], True: []}
    for source, target in PAIRS:
        for relaxed in (False, True):
            src, tgt, seconds = transferred(source, target, relaxed)
            s, d = stretch(tgt), distortion(src, tgt)
            rows[relaxed].append((one_island_share(src, tgt), np.median(s), np.mean(s < 2), np.mean(s < 4), seconds,
                                  np.median(d), np.mean(d < 2)))
            print(f"{source:>16s} -> {target:<16s} {'relaxed' if relaxed else 'as matched':10s} "
                  f"one island {rows[relaxed][-1][0]:.3f}  stretch median {np.median(s):6.2f}  "
                  f"area under 2 {np.mean(s < 2):.2f}, under 4 {np.mean(s < 4):.2f}  "
                  f"against the source: median {np.median(d):6.2f}, under 2 {np.mean(d < 2):.2f}  "
                  f"({len(tgt.data.vertices)} vertices, {seconds:.2f} s)", flush=True)
    return {k: np.array(v) for k, v in rows.items()}


def show_textures(ob: bpy.types.Object) -> None:
    """Workbench's texture view draws each material's active image node: make it the image."""
    for mat in ob.data.materials:
        if mat and mat.use_nodes:
            images = [n for n in mat.node_tree.nodes if n.type == "TEX_IMAGE" and n.image]
            if images:
                mat.node_tree.nodes.active = images[0]


def row(objects: list[bpy.types.Object], path: Path) -> None:
    """Render the objects side by side, each 1 m tall on the floor, turned a little."""
    import mathutils

    for i, ob in enumerate(objects):
        world = np.array(ob.matrix_world)
        co = np.array([v.co for v in ob.data.vertices]) @ world[:3, :3].T + world[:3, 3]
        lo, hi = co.min(0), co.max(0)
        place = mathutils.Matrix.Translation((i * SPACING, 0, 0.5)) @ mathutils.Matrix.Rotation(0.5, 4, "Z") \
            @ mathutils.Matrix.Scale(1.0 / (hi[2] - lo[2]), 4) @ mathutils.Matrix.Translation((-(lo + hi) / 2).tolist())
        ob.matrix_world = place @ ob.matrix_world
    scene = bpy.context.scene
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    scene.collection.objects.link(cam)
    cam.data.type, cam.data.ortho_scale = "ORTHO", SPACING * len(objects) * 1.1
    centre = SPACING * (len(objects) - 1) / 2
    cam.location = (centre + 1.5, -5.0, 2.4)
    cam.rotation_euler = (mathutils.Vector((centre, 0, 0.5)) - cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    if scene.world is None:
        scene.world = bpy.data.worlds.new("white")
    scene.world.color = (1.0, 1.0, 1.0)
    scene.view_settings.view_transform = "Standard"
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = 300 * len(objects), 330
    scene.display.shading.color_type = "TEXTURE"
    scene.display.shading.light = "STUDIO"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def figure(out: Path) -> None:
    import matplotlib.image as mpimg

    names = (FIGURE_SOURCE, *FIGURE_TARGETS)
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for step in ROWS:
            bpy.ops.wm.read_factory_settings(use_empty=True)
            obs = [textured_chair(bpy, n) for n in names]
            src, targets = obs[0], obs[1:]
            if step == "as they come":
                for ob in obs:
                    show_textures(ob)
            else:
                if step.startswith("grid"):
                    src.data.materials.clear()
                    src.data.materials.append(grid_material())
                transfer_uvs(src, targets, relaxed=step != "grid as matched", materials=True)
                show_textures(src)
            parts.append(Path(tmp) / f"{len(parts)}.png")
            row(obs, parts[-1])
        _labelled(out, [mpimg.imread(p)[..., :3] for p in parts])
    print(f"wrote {out}")


def _labelled(out: Path, images: list[np.ndarray]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    h, w = images[0].shape[:2]
    fig, axes = plt.subplots(len(images), 1, figsize=(w / 100, len(images) * (h + 24) / 100), dpi=100)
    for ax, image, title in zip(axes, images, ROWS.values()):
        ax.imshow(image)
        ax.set_title(title, fontsize=11, loc="left")
        ax.axis("off")
    fig.subplots_adjust(left=0, right=1, top=0.97, bottom=0, hspace=0.12)
    fig.savefig(out, dpi=100)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--figure", type=Path, help="also render the README's before/after picture here")
    ap.add_argument("--figure-only", action="store_true", help="render the picture without measuring")
    args = ap.parse_args()
    blender_addon.register()
    server = ServerProcess(CHECKPOINT).wait_ready(120)
    os.environ["CORR_SERVER_ADDRESS"] = server.address
    try:
        if args.figure:
            figure(args.figure)
        if args.figure_only:
            return
        r = measure()
    finally:
        server.stop()
        blender_addon.unregister()
    on, off = r[True], r[False]
    print(f"# {len(PAIRS)} pairs; medians over pairs of each pair's median stretch, means of the shares")
    print(f"stretch_median={np.median(on[:, 1]):.2f} without={np.median(off[:, 1]):.2f} "
          f"ratio={np.median(on[:, 1]) / np.median(off[:, 1]):.3f} area_under_2={on[:, 2].mean():.2f} "
          f"without={off[:, 2].mean():.2f} area_under_4={on[:, 3].mean():.2f} without={off[:, 3].mean():.2f} "
          f"one_island={on[:, 0].mean():.3f} seconds={on[:, 4].mean():.2f} without={off[:, 4].mean():.2f}")
    print(f"against_source_median={np.median(on[:, 5]):.2f} without={np.median(off[:, 5]):.2f} "
          f"area_under_2={on[:, 6].mean():.2f} without={off[:, 6].mean():.2f}")


if __name__ == "__main__":
    main()
