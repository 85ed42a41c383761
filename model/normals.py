"""Normals of a bare point cloud: directions by PCA, outward signs by a visibility test.

E of a network with `encoder_normals` sees each point's outward normal beside it, and
callers often send point clouds without normals; training and inference both take
them from here, from the points alone, so E learns on the normals it will be given.
"""
from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def pca_normals(points: np.ndarray, k: int = 16) -> np.ndarray:
    """Unit normals (unsigned) of a point cloud: the least-variance axis of each point's k neighbours."""
    _, nb = cKDTree(points).query(points, min(k, len(points)))
    local = points[nb] - points[nb].mean(axis=1, keepdims=True)
    return np.linalg.eigh(np.einsum("nki,nkj->nij", local, local))[1][:, :, 0]


def point_spacing(cloud: np.ndarray) -> float:
    """Median distance from a point to its 4th nearest neighbour."""
    return float(np.median(cKDTree(cloud).query(cloud, min(5, len(cloud)))[0][:, -1]))


def blocked_both_ways(cloud: np.ndarray, points: np.ndarray, directions: np.ndarray, radius: float,
                      chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Whether the ray from each point along its direction (and against it) passes within
    `radius` of a cloud point further than `radius` / 2 along it (the point's own
    neighbours do not count) -> (forward, backward) bools."""
    # distances along and across each ray from dot products: two matrix products per chunk
    # instead of a (chunk, cloud, 3) array of offsets; both rays share the distance across
    cloud_sq = (cloud**2).sum(axis=1)
    forward, backward = np.zeros(len(points), dtype=bool), np.zeros(len(points), dtype=bool)
    for i in range(0, len(points), chunk):
        p, d = points[i : i + chunk], directions[i : i + chunk]
        t = d @ cloud.T - (p * d).sum(axis=1, keepdims=True)
        near = cloud_sq[None] - 2 * p @ cloud.T + (p**2).sum(axis=1, keepdims=True) - t**2 < radius**2
        forward[i : i + chunk] = (near & (t > radius / 2)).any(axis=1)
        backward[i : i + chunk] = (near & (t < -radius / 2)).any(axis=1)
    return forward, backward


def visible_side(cloud: np.ndarray, points: np.ndarray, normals: np.ndarray) -> np.ndarray:
    """Per point +1 where the ray along its normal escapes the cloud and the opposite ray
    does not, -1 for the reverse, 0 where both or neither escape."""
    up, down = blocked_both_ways(cloud, points, normals, 1.5 * point_spacing(cloud))
    return np.where(down & ~up, 1.0, np.where(up & ~down, -1.0, 0.0))


def estimate_normals(points: np.ndarray, k: int = 10) -> np.ndarray:
    """Outward unit normals of a point cloud (N, 3): PCA directions, signed toward the side
    a ray escapes, else away from the bounding-box centre."""
    normals = pca_normals(points, k)
    center = (points.min(axis=0) + points.max(axis=0)) / 2
    away = np.where(((points - center) * normals).sum(axis=1) >= 0, 1.0, -1.0)
    side = visible_side(points, points, normals)
    return normals * np.where(side != 0, side, away)[:, None]
