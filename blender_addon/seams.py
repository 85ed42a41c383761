"""UVs that keep every target polygon on one island of the source's UV layout.

Interpolating the source UV per target vertex is exact inside an island, but a target
polygon whose corners land on both sides of a source seam would get corners from two
islands and stretch across the texture atlas.  Such a polygon takes the island most of its
corners landed on, each corner counting by how well the source's surface there faces as the
polygon does (a cap's corners on a cylinder's rim land on the side as often as on the cap);
its other corners take the UV of the nearest point of that island (looked
for first among the source triangles around where they landed, where the seam runs).  Plain numpy.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .interpolate import corner_values, point_values


def components(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component id (the smallest member) of n nodes joined by edges a[i]-b[i]."""
    parent = np.arange(n)
    while True:
        pa, pb = parent[a], parent[b]
        differ = pa != pb
        if not differ.any():
            return parent
        # hook the larger root under the smaller, then compress every path to its root
        np.minimum.at(parent, np.maximum(pa, pb)[differ], np.minimum(pa, pb)[differ])
        while True:
            nxt = parent[parent]
            if np.array_equal(nxt, parent):
                break
            parent = nxt


def islands(triangles: np.ndarray, triangle_loops: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """(T,) island of each triangle: triangles sharing an edge with equal UVs at both ends."""
    t = len(triangles)
    quant = np.round(np.asarray(uv, np.float64)[triangle_loops] * 2**20).astype(np.int64)  # (T, 3, 2)
    rows = []
    for i, j in ((0, 1), (1, 2), (2, 0)):
        va, vb = triangles[:, i], triangles[:, j]
        ua, ub = quant[:, i], quant[:, j]
        swap = (va > vb)[:, None]
        lo_uv, hi_uv = np.where(swap, ub, ua), np.where(swap, ua, ub)
        rows.append(np.column_stack([np.minimum(va, vb), np.maximum(va, vb), lo_uv, hi_uv, np.arange(t)]))
    rows = np.concatenate(rows)
    rows = rows[np.lexsort(rows[:, :6].T[::-1])]
    same = np.all(rows[1:, :6] == rows[:-1, :6], axis=1)  # consecutive rows of one shared edge
    return components(t, rows[1:, 6][same], rows[:-1, 6][same])


def closest_on_triangles(p: np.ndarray, tri: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Closest point of each triangle tri (K, 3, 3) to p (3,) -> (squared distances (K,), barycentrics (K, 3))."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    ab, ac = b - a, c - a
    n = np.cross(ab, ac)
    nn = np.maximum((n * n).sum(1), 1e-30)
    # barycentrics of the projection onto each plane
    ap = p - a
    v = (np.cross(ap, ac) * n).sum(1) / nn
    w = (np.cross(ab, ap) * n).sum(1) / nn
    bary = np.column_stack([1 - v - w, v, w])
    inside = (bary >= 0).all(1)
    best_d = np.full(len(tri), np.inf)
    best_b = bary.copy()
    q = (bary[:, :, None] * tri).sum(1)
    best_d[inside] = ((q - p) ** 2).sum(1)[inside]
    # outside: the closest point lies on an edge
    for i, j in ((0, 1), (1, 2), (2, 0)):
        e0, e1 = tri[:, i], tri[:, j]
        d = e1 - e0
        s = np.clip(((p - e0) * d).sum(1) / np.maximum((d * d).sum(1), 1e-30), 0, 1)
        q = e0 + s[:, None] * d
        dist = ((q - p) ** 2).sum(1)
        better = ~inside & (dist < best_d)
        best_d[better] = dist[better]
        eb = np.zeros((len(tri), 3))
        eb[:, i], eb[:, j] = 1 - s, s
        best_b[better] = eb[better]
    return best_d, best_b


class IslandUVs(NamedTuple):
    uv: np.ndarray  # (L, 2) target corner UVs
    island: np.ndarray  # (L,) the source island of each corner's polygon; -1: none decided
    moved: np.ndarray  # (L,) bool: corners moved onto their polygon's island


def corner_uvs(uv: np.ndarray, source_vertices: np.ndarray, source_triangles: np.ndarray,
               source_triangle_loops: np.ndarray, face: np.ndarray, bary: np.ndarray,
               loop_vertices: np.ndarray, loop_polygons: np.ndarray, vertex_uv: np.ndarray | None = None,
               trusted: np.ndarray | None = None, facing: np.ndarray | None = None) -> IslandUVs:
    """Target corner UVs with each target polygon on one source island.

    uv: (Ls, 2) source corner UVs; face, bary: the correspondence per target vertex;
    loop_vertices, loop_polygons: vertex and polygon of each target corner; vertex_uv:
    the per-vertex UVs to start from (default: interpolated at face/bary); trusted: target
    vertices whose face/bary decide islands (default all; filled vertices keep their UV);
    facing: (L,) how much each corner's island counts in its polygon's choice (default alike).
    """
    island = islands(source_triangles, source_triangle_loops, uv)
    if vertex_uv is None:
        vertex_uv = corner_values(uv, source_triangle_loops, face, bary)
    out = np.asarray(vertex_uv, np.float64)[loop_vertices].copy()
    trusted = np.ones(len(face), bool) if trusted is None else np.asarray(trusted, bool)
    loop_island = np.where(trusted[loop_vertices] & (loop_polygons >= 0), island[face[loop_vertices]], -1)
    chosen = _majority(loop_polygons, loop_island, np.ones(len(out)) if facing is None else facing)
    loop_chosen = np.full(len(out), -1)
    in_polygon = loop_polygons >= 0
    loop_chosen[in_polygon] = chosen[loop_polygons[in_polygon]]
    wrong = np.flatnonzero((loop_island >= 0) & (loop_island != loop_chosen))
    moved = np.zeros(len(out), bool)
    moved[wrong] = True
    if len(wrong) == 0:
        return IslandUVs(out.astype(np.asarray(uv).dtype), loop_chosen, moved)
    ring = _triangle_ring(source_triangles, len(source_vertices))
    landed = point_values(source_vertices, source_triangles, face, bary)
    for loop in wrong:
        v, want = loop_vertices[loop], chosen[loop_polygons[loop]]
        near = ring(face[v])
        cand = near[island[near] == want]
        if len(cand) == 0:  # landed far from the chosen island: search all of it
            cand = np.flatnonzero(island == want)
        d, b = closest_on_triangles(landed[v], source_vertices[source_triangles[cand]])
        k = int(np.argmin(d))
        out[loop] = (uv[source_triangle_loops[cand[k]]] * b[k][:, None]).sum(0)
    return IslandUVs(out.astype(np.asarray(uv).dtype), loop_chosen, moved)


def _majority(groups: np.ndarray, values: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Per group, the non-negative value of the largest summed weight (ties to the smaller);
    -1 for groups with none."""
    out = np.full(int(groups.max()) + 1 if len(groups) else 0, -1, dtype=np.int64)
    ok = values >= 0
    if ok.any():
        pairs, at = np.unique(np.stack([groups[ok], values[ok]], axis=1), axis=0, return_inverse=True)
        total = np.bincount(at.reshape(-1), weights=weights[ok], minlength=len(pairs))
        order = np.lexsort((pairs[:, 1], -total, pairs[:, 0]))
        first = order[np.r_[True, pairs[order[1:], 0] != pairs[order[:-1], 0]]]
        out[pairs[first, 0]] = pairs[first, 1]
    return out


def _triangle_ring(triangles: np.ndarray, n_vertices: int):
    """-> function: triangle index -> triangles within two vertex rings of it."""
    flat = triangles.ravel()
    order = np.argsort(flat, kind="stable")
    by_vertex = order // 3  # triangles sorted by vertex
    starts = np.searchsorted(flat[order], np.arange(n_vertices + 1))

    def around(tris: np.ndarray) -> np.ndarray:
        verts = np.unique(triangles[tris])
        return np.unique(np.concatenate([by_vertex[starts[v]:starts[v + 1]] for v in verts]))

    def ring(tri: int) -> np.ndarray:
        return around(around(np.array([tri])))

    return ring
