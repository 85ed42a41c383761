"""Implicit Correspondence for Blender: segment meshes into parts and transfer labels,
colours, UVs, vertex-group weights and attributes between shapes of different topology.

Works as a Blender 4.2+ extension (blender_manifest.toml) and as a legacy add-on
(bl_info).  Talks to the model server through its client; never imports torch.
"""
bl_info = {
    "name": "Implicit Correspondence",
    "author": "Implicit Correspondence contributors",
    "version": (0, 1, 0),
    "blender": (4, 1, 0),  # the legacy zip carries cp311 wheels: Blender 4.0 embeds Python 3.10
    "location": "3D Viewport > Sidebar > Correspondence",
    "description": "Dense correspondence between shapes of different topology: transfer parts, colours, UVs, weights",
    "category": "Mesh",
}


def register() -> None:
    from . import deps

    deps.ensure_zmq()
    from . import ui

    ui.register()


def unregister() -> None:
    from . import ui

    ui.unregister()
