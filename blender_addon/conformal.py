"""Transferred UVs relaxed toward a conformal map, chart by chart.

UVs interpolated at each target vertex's match follow the match's jitter: on the big
polygons of low-poly furniture a triangle's corners land at nearly collinear UVs and the
texture stretches along it.  Within each chart (target polygons given one source island,
joined through shared vertices) the UVs become the map with the least conformal (LSCM)
energy, pulled toward the transferred UV at each vertex: the layout stays where the match
put it while each triangle keeps the texture's shape.  Plain numpy, solved by conjugate
gradients: Blender's Python has no scipy.
"""
from __future__ import annotations

import numpy as np

from .seams import components

# The match's jitter is smoothed over about this length (share of the target's
# bounding-box diagonal): a vertex's pull toward its UV is weighted by its area / length².
SMOOTHING = 0.05
MOVED_WEIGHT = 0.1  # pull of a corner that was moved onto its polygon's island
LEAST_PULL = 0.01  # every corner's, so that no chart floats free
CG_STEPS = 100  # 400 changed the texture stretch of real chairs by under 2%
CG_TOLERANCE = 1e-10  # on the squared residual, relative to the right-hand side's


def relax(vertices: np.ndarray, triangles: np.ndarray, triangle_loops: np.ndarray, uv: np.ndarray,
          chart: np.ndarray, pull: np.ndarray) -> np.ndarray:
    """(L, 2) corner UVs relaxed toward a conformal map.

    vertices (V, 3), triangles (T, 3) and triangle_loops (T, 3): the target's triangles and
    their corners; uv (L, 2): the transferred corner UVs; chart (L,): the source island of
    each corner's polygon (-1: left as it is); pull (L,): how firmly each corner holds its
    UV, in [0, 1] (0: free).  Corners of one vertex in one chart share one UV.
    """
    uv = np.asarray(uv, np.float64)
    out = uv.copy()
    tri_chart = chart[triangle_loops[:, 0]]
    use = tri_chart >= 0
    if not use.any():
        return out
    loops = triangle_loops[use]
    # one unknown per (vertex, chart): the corners of a vertex on one island move together
    key = np.stack([triangles[use].ravel(), tri_chart[use].repeat(3)], 1)
    keys, unknown = np.unique(key, axis=0, return_inverse=True)
    unknown = unknown.reshape(-1, 3)
    grad, area = _gradients(np.asarray(vertices, np.float64)[triangles[use]])
    sign = _orientation(uv[loops], grad, area, unknown, len(keys))
    pull = np.asarray(pull, np.float64)

    # each unknown's pull: its corners' area share (a third of each triangle) times their pull
    at, corner_uv = unknown.ravel(), uv[loops.ravel()]
    corner_pull = np.repeat(np.maximum(area, 1e-12 * area.max()) / 3, 3) * np.maximum(pull[loops.ravel()], LEAST_PULL)
    weight = np.bincount(at, corner_pull, len(keys))
    anchor = np.stack([np.bincount(at, corner_pull * corner_uv[:, i], len(keys)) for i in (0, 1)], 1) / weight[:, None]
    length = SMOOTHING * np.linalg.norm(np.ptp(np.asarray(vertices, np.float64), axis=0))
    weight = weight / max(length, 1e-12) ** 2

    system = _System(grad, area, sign, unknown, weight, len(keys))
    solved = _conjugate_gradients(system, weight[:, None] * anchor, anchor)
    out[loops.ravel()] = solved[unknown.ravel()]
    return out


def _gradients(corners: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per triangle (T, 3, 3): the gradient (T, 3, 2) of each corner's hat function in the
    triangle's own 2D frame (x along its first edge, y by its winding), and its area (T,).
    Degenerate triangles get zero gradients and area."""
    e1, e2 = corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0]
    n = np.cross(e1, e2)
    area = np.linalg.norm(n, axis=1) / 2
    len1 = np.linalg.norm(e1, axis=1)
    ok = (area > 1e-12 * np.maximum(len1, 1e-30) ** 2) & (len1 > 0)
    x = e1 / np.maximum(len1, 1e-30)[:, None]
    y = np.cross(n / np.maximum(2 * area, 1e-30)[:, None], x)
    # rows: edges 1 and 2 in local coordinates; grad f = M^-1 (f1 - f0, f2 - f0)
    m = np.stack([np.stack([len1, np.zeros_like(len1)], 1), np.stack([(e2 * x).sum(1), (e2 * y).sum(1)], 1)], 1)
    m[~ok] = np.eye(2)
    inv = np.linalg.inv(m)  # (T, 2, 2)
    basis = np.array([[-1.0, 1.0, 0.0], [-1.0, 0.0, 1.0]])
    grad = np.einsum("tij,jk->tki", inv, basis)  # (T, 3 corners, 2)
    grad[~ok] = 0.0
    return grad, np.where(ok, area, 0.0)


def _orientation(corner_uv: np.ndarray, grad: np.ndarray, area: np.ndarray, unknown: np.ndarray,
                 n_unknowns: int) -> np.ndarray:
    """(T,) +1 where a triangle's chart keeps the winding in UV, -1 where it mirrors it:
    the area-weighted majority of its triangles' transferred UVs, per connected chart."""
    gu = (corner_uv[:, :, 0:1] * grad).sum(1)
    gv = (corner_uv[:, :, 1:2] * grad).sum(1)
    det = gu[:, 0] * gv[:, 1] - gu[:, 1] * gv[:, 0]
    piece = components(n_unknowns, np.concatenate([unknown[:, 0], unknown[:, 1]]),
                       np.concatenate([unknown[:, 1], unknown[:, 2]]))[unknown[:, 0]]
    vote = np.zeros(n_unknowns)
    np.add.at(vote, piece, area * np.sign(det))
    return np.where(vote[piece] < 0, -1.0, 1.0)


class _System:
    """x -> (sum over triangles of area * C_t^T C_t + diag(weight)) x, x (K, 2) UVs, where
    C_t x is triangle t's conformal residual: grad u - s J grad v, J (a, b) = (b, -a)."""

    def __init__(self, grad, area, sign, unknown, weight, n):
        self.grad, self.area, self.sign, self.unknown, self.weight, self.n = grad, area, sign, unknown, weight, n
        diag = np.zeros(n)
        np.add.at(diag, unknown.ravel(), (area[:, None] * (grad ** 2).sum(2)).ravel())
        self.diagonal = (diag + weight)[:, None]

    def __call__(self, x: np.ndarray) -> np.ndarray:
        g, s = self.grad, self.sign[:, None]
        c = x[self.unknown]  # (T, 3, 2)
        gu, gv = (c[:, :, 0:1] * g).sum(1), (c[:, :, 1:2] * g).sum(1)  # (T, 2)
        r = self.area[:, None] * np.stack([gu[:, 0] - s[:, 0] * gv[:, 1], gu[:, 1] + s[:, 0] * gv[:, 0]], 1)
        du = (r[:, None, 0] * g[:, :, 0] + r[:, None, 1] * g[:, :, 1])
        dv = s * (-r[:, None, 0] * g[:, :, 1] + r[:, None, 1] * g[:, :, 0])
        at = self.unknown.ravel()
        return self.weight[:, None] * x + np.stack([np.bincount(at, du.ravel(), self.n),
                                                    np.bincount(at, dv.ravel(), self.n)], 1)


def _conjugate_gradients(apply: _System, rhs: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradients from x (both UV coordinates at once: the
    system is one symmetric positive definite operator on (K, 2))."""
    r = rhs - apply(x)
    z = r / apply.diagonal
    p = z.copy()
    rz = (r * z).sum()
    stop = CG_TOLERANCE * max((rhs * rhs).sum(), 1e-30)
    for _ in range(CG_STEPS):
        if (r * r).sum() <= stop:
            break
        ap = apply(p)
        alpha = rz / max((p * ap).sum(), 1e-300)
        x = x + alpha * p
        r = r - alpha * ap
        z = r / apply.diagonal
        rz, rz_old = (r * z).sum(), rz
        p = z + (rz / max(rz_old, 1e-300)) * p
    return x
