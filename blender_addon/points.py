"""A point cloud made visible: Blender draws no loose vertices outside Edit Mode.

`show_points` gives a mesh of vertices only a Geometry Nodes modifier that adds a sphere
per point, in a material coloured by one of its colour attributes (`part_color`,
`corr_color`, ...), seen in Material Preview and Rendered view.  The modifier joins the
points to the mesh it is given, so the evaluated mesh keeps every vertex (*Use modifiers*
reads the same cloud).
"""
from __future__ import annotations

import bpy
import numpy as np

MODIFIER = "Correspondence points"
# A sphere's radius, in the cloud's bounding-box diagonal over the root of its point count
# (about the spacing of points spread over a chair's surface: half of it).
RADIUS_SHARE = 0.5


def show_points(obj: bpy.types.Object, color: str = "part_color") -> None:
    """Draw the vertices of `obj` (a mesh without faces) as spheres coloured by its colour
    attribute `color`, or a Point Cloud object's points at that size in that colour; a
    second call changes the colour and the size, and adds nothing."""
    data = obj.data if obj is not None and obj.type in ("MESH", "POINTCLOUD") else None
    if data is None:
        raise ValueError(f"{getattr(obj, 'name', obj)!r} is not a mesh or point cloud object")
    cloud = obj.type == "POINTCLOUD"
    points = data.points if cloud else data.vertices
    if not len(points):
        raise ValueError(f"{obj.name!r} has no {'points' if cloud else 'vertices'} to show")
    if not cloud and len(data.polygons):
        raise ValueError(f"{obj.name!r} has faces: only a point cloud (a mesh of vertices only) is shown as points")
    if color not in data.color_attributes:
        raise ValueError(f"{obj.name!r} has no colour attribute named {color!r}: run Segment, Preview or Transfer first")
    modifier = obj.modifiers.get(MODIFIER)
    if modifier is None:
        modifier = obj.modifiers.new(MODIFIER, "NODES")
    modifier.node_group = _node_group(_material(color), cloud)
    co = np.empty(3 * len(points), np.float32)
    points.foreach_get("co", co)
    co = co.reshape(-1, 3)
    modifier[_radius_socket(modifier.node_group)] = float(
        RADIUS_SHARE * np.linalg.norm(np.ptp(co, axis=0)) / np.sqrt(len(co)))
    obj.update_tag()


def _material(color: str) -> bpy.types.Material:
    """A material whose base colour is the points' colour attribute `color`."""
    name = f"{MODIFIER}: {color}"
    mat = bpy.data.materials.get(name)
    if mat is not None and mat.library is None:
        return mat
    mat = bpy.data.materials.new(name)
    if mat.node_tree is None:  # Blender before 5.0 gives a new material no nodes
        mat.use_nodes = True
    nodes = mat.node_tree.nodes
    shader = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    attribute = nodes.new("ShaderNodeAttribute")
    attribute.attribute_name = color
    mat.node_tree.links.new(attribute.outputs["Color"], shader.inputs["Base Color"])
    return mat


def _node_group(material: bpy.types.Material, cloud: bool = False) -> bpy.types.NodeTree:
    """Mesh -> the mesh joined with a sphere per vertex in `material`; with `cloud`, a Point
    Cloud's points -> the same points at the radius in `material` (one group per material
    and kind)."""
    name = material.name + (" (point cloud)" if cloud else "")
    group = bpy.data.node_groups.get(name)
    if group is not None and group.library is None:
        return group
    group = bpy.data.node_groups.new(name, "GeometryNodeTree")
    group.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    radius = group.interface.new_socket("Radius", in_out="INPUT", socket_type="NodeSocketFloat")
    radius.min_value, radius.default_value = 0.0, 0.01
    group.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = group.nodes, group.links
    given, out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    if cloud:
        sized, painted = nodes.new("GeometryNodeSetPointRadius"), nodes.new("GeometryNodeSetMaterial")
        painted.inputs["Material"].default_value = material
        links.new(given.outputs["Geometry"], sized.inputs["Points"])
        links.new(given.outputs["Radius"], sized.inputs["Radius"])
        links.new(sized.outputs["Points"], painted.inputs["Geometry"])
        links.new(painted.outputs["Geometry"], out.inputs["Geometry"])
        return group
    points = nodes.new("GeometryNodeMeshToPoints")
    painted = nodes.new("GeometryNodeSetMaterial")
    painted.inputs["Material"].default_value = material
    join = nodes.new("GeometryNodeJoinGeometry")
    links.new(given.outputs["Geometry"], points.inputs["Mesh"])
    links.new(given.outputs["Radius"], points.inputs["Radius"])
    links.new(points.outputs["Points"], painted.inputs["Geometry"])
    links.new(painted.outputs["Geometry"], join.inputs["Geometry"])
    links.new(given.outputs["Geometry"], join.inputs["Geometry"])
    links.new(join.outputs["Geometry"], out.inputs["Geometry"])
    return group


def _radius_socket(group: bpy.types.NodeTree) -> str:
    """The modifier's key for the group's Radius input."""
    return next(item.identifier for item in group.interface.items_tree
                if item.item_type == "SOCKET" and item.in_out == "INPUT" and item.name == "Radius")
