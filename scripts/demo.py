"""The demo: part labels and a texture carried between real chairs of different topology.

Run by scripts/demo.sh (which sets up and starts the server).  Builds a Blender scene from
PSB meshes, segments the source, transfers its part labels and its UV-mapped texture to two
other chairs through the server, and writes the scene (.blend), each target as a PLY with
its transferred labels and confidence, and a Workbench render of the result.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import bpy
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import blender_addon  # noqa: E402
from blender_addon import api, frames  # noqa: E402
from model.meshio import read_mesh, write_ply  # noqa: E402
from training.prepare import psb_rotation  # noqa: E402

PSB = ROOT.parent / "shared" / "data" / "psb"


def step(name: str, t0: list[float]) -> None:
    now = time.perf_counter()
    print(f"[demo] {name}: {now - t0[0]:.1f} s", flush=True)
    t0[0] = now


def load_psb(category: str, name: str, x: float) -> bpy.types.Object:
    """A PSB mesh, turned upright with the recorded rotation, standing on the floor at x."""
    v, f, _ = read_mesh(PSB / category / f"{name}.off.gz")
    rot = psb_rotation(name)
    world = frames.to_blender(v @ rot.T)
    world = (world - world.mean(0)) / np.linalg.norm(np.ptp(world, 0))
    world += [x, 0, -world[:, 2].min()]
    me = bpy.data.meshes.new(f"{category}_{name}")
    me.from_pydata(world.tolist(), [], f.tolist())
    me.update()
    ob = bpy.data.objects.new(me.name, me)
    bpy.context.scene.collection.objects.link(ob)
    return ob


def values(mesh: bpy.types.Mesh, name: str) -> np.ndarray:
    """A single-valued attribute's values."""
    return np.array([d.value for d in mesh.attributes[name].data])


def texture_source(ob: bpy.types.Object) -> None:
    """Give the source a UV map (a box projection) and a colour-grid texture to carry."""
    me = ob.data
    co = np.array([v.co for v in me.vertices])
    loop_v = np.array([lp.vertex_index for lp in me.loops])
    lo, hi = co.min(0), co.max(0)
    uv = np.stack([(co[:, 0] - lo[0]) / (hi - lo)[0], (co[:, 2] - lo[2]) / (hi - lo)[2]], 1)
    me.uv_layers.new(name="UVMap").data.foreach_set("uv", uv[loop_v].ravel())
    me.materials.append(grid_material())


def grid_material() -> bpy.types.Material:
    """A material showing Blender's generated colour grid (active: Workbench draws it)."""
    image = bpy.data.images.new("grid", 1024, 1024)
    image.generated_type = "COLOR_GRID"
    mat = bpy.data.materials.new("grid")
    if mat.node_tree is None:  # Blender before 5.0 gives a new material no nodes
        mat.use_nodes = True
    tex = mat.node_tree.nodes.new("ShaderNodeTexImage")
    tex.image = image
    mat.node_tree.links.new(tex.outputs["Color"], mat.node_tree.nodes["Principled BSDF"].inputs["Base Color"])
    mat.node_tree.nodes.active = tex
    return mat


def render(path: Path, color_type: str) -> None:
    scene = bpy.context.scene
    scene.render.engine = "BLENDER_WORKBENCH"
    scene.render.resolution_x, scene.render.resolution_y = 1200, 420
    scene.render.film_transparent = False
    shading = scene.display.shading
    names = shading.bl_rna.properties["color_type"].enum_items.keys()
    shading.color_type = color_type if color_type in names else "VERTEX"
    shading.light = "STUDIO"
    scene.render.filepath = str(path)
    bpy.ops.render.render(write_still=True)


def add_camera(xs: list[float]) -> None:
    cam = bpy.data.objects.new("camera", bpy.data.cameras.new("camera"))
    bpy.context.scene.collection.objects.link(cam)
    cam.data.type = "ORTHO"
    cam.data.ortho_scale = (max(xs) - min(xs)) + 1.2
    centre = (max(xs) + min(xs)) / 2
    cam.location = (centre + 2.2, -6.5, 2.6)
    direction = np.array([centre, 0, 0.35]) - np.array(cam.location)
    import mathutils

    cam.rotation_euler = mathutils.Vector(direction).to_track_quat("-Z", "Y").to_euler()
    bpy.context.scene.camera = cam


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "out" / "demo")
    ap.add_argument("--address", default=None)
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    options = {"address": args.address} if args.address else {}
    t0 = [time.perf_counter()]

    bpy.ops.wm.read_factory_settings(use_empty=True)
    blender_addon.register()
    xs = [0.0, 1.2, 2.4]
    source, *targets = [load_psb("chair", n, x) for n, x in zip(("101", "105", "110"), xs)]
    texture_source(source)
    step("scene", t0)

    api.segment([source], **options)
    step("segment source", t0)
    report = api.transfer(source, targets, uv_map="UVMap", threshold=0.3, fill="FILL", **options)
    for t in targets:
        t.data.materials.append(source.data.materials[0])
    step("transfer labels and UVs", t0)
    for name, r in report.items():
        print(f"[demo]   {name}: mean confidence {r['mean_confidence']:.2f}, "
              f"{r['below_threshold']} vertices filled from neighbours")

    for t in targets:
        me = t.data
        write_ply(args.out / f"{t.name}.ply", np.array([v.co for v in me.vertices]),
                  np.array([p.vertices[:] for p in me.polygons]),
                  colors=(np.array([d.color for d in me.attributes["part_color"].data])[:, :3] * 255).astype(np.uint8),
                  part_label=values(me, "part_label").astype(np.int32),
                  corr_confidence=values(me, "corr_confidence").astype(np.float32))
    blend = args.out / "demo.blend"
    bpy.ops.wm.save_as_mainfile(filepath=str(blend))
    step("save .blend and .ply", t0)

    add_camera(xs)
    render(args.out / "parts.png", "ATTRIBUTE")
    render(args.out / "texture.png", "TEXTURE")
    step("render", t0)
    print(f"[demo] results in {args.out}: demo.blend, {', '.join(t.name + '.ply' for t in targets)}, "
          "parts.png, texture.png")
    blender_addon.unregister()
    return 0


if __name__ == "__main__":
    sys.exit(main())
