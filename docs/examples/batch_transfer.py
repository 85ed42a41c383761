"""Batch job: carry part labels, a UV map and vertex-group weights from one mesh to many.

    python -m server &                                   # or: corr-server
    blender --background scene.blend --python docs/examples/batch_transfer.py -- Source "Target.*"
    # or, with the pip bpy module:  python docs/examples/batch_transfer.py -- scene.blend Source "Target.*"

Writes the attributes onto each target (part_label, part_color, corr_* and the
transferred ones) and saves the file next to the original as *_transferred.blend.
"""
import re
import sys

import bpy

try:  # the installed extension
    from bl_ext.user_default.implicit_correspondence import api
except ImportError:  # a checkout of the repository on sys.path
    from blender_addon import api

args = sys.argv[sys.argv.index("--") + 1:] if "--" in sys.argv else []
if args and args[0].endswith(".blend"):
    bpy.ops.wm.open_mainfile(filepath=args.pop(0))
source_name, pattern = (args + ["Source", "Target.*"])[:2]
source = bpy.data.objects[source_name]
targets = [o for o in bpy.data.objects if o.type == "MESH" and o is not source and re.fullmatch(pattern, o.name)]

report = api.transfer(
    source, targets,
    labels=True,
    uv_map=source.data.uv_layers.active.name if source.data.uv_layers else "",
    vertex_groups=None,          # all of the source's groups
    threshold=0.5, fill="FILL",  # below 0.5: fill from confident neighbours
)
for name, r in report.items():
    print(f"{name}: mean confidence {r['mean_confidence']:.2f}, {r['below_threshold']} vertices below the threshold "
          "(filled from confident neighbours where the mesh connects them)")
    for warning in r["warnings"]:  # a low mean confidence, a mesh unlike the model's category
        print(f"  warning: {warning}")
bpy.ops.wm.save_as_mainfile(filepath=bpy.data.filepath.replace(".blend", "_transferred.blend") or "transferred.blend")
