"""Transferred UVs relaxed so that the match they encode is locally conformal, chart by chart.

UVs interpolated at each target vertex's match follow the match's jitter: on the big
polygons of low-poly furniture a triangle's corners land at nearly collinear UVs and the
texture stretches along it.  Within each chart (target polygons given one source island,
joined through shared vertices) the UVs become those with the least conformal (LSCM)
energy of the map from the target onto the source, pulled toward the transferred UV at
each vertex.  The map onto the source is the UV map followed by the inverse of the source
triangle's own UV map (`source_metric`), so a texture the source stretches on purpose (a
planar projection down a side) is stretched alike on the target, and a conformal source
layout gives a conformal target one.  Plain numpy, solved by conjugate gradients: Blender's
Python has no scipy.
"""
from __future__ import annotations

import numpy as np

from .seams import components

# The match's jitter is smoothed over about this length (share of the target's
# bounding-box diagonal): a vertex's pull toward its UV is weighted by its area / length².
SMOOTHING = 0.05
MOVED_WEIGHT = 0.1  # pull of a corner that was moved onto its polygon's island
LEAST_PULL = 0.01  # every corner's, so that no chart floats free
MAX_ANISOTROPY = 10.0  # a source triangle's UV map squeezed more than this is not followed
CG_STEPS = 100  # 400 changed the texture stretch of real chairs by under 2%
CG_TOLERANCE = 1e-10  # on the squared residual, relative to the right-hand side's


def relax(vertices: np.ndarray, triangles: np.ndarray, triangle_loops: np.ndarray, uv: np.ndarray,
          chart: np.ndarray, pull: np.ndarray, metric: np.ndarray | None = None) -> np.ndarray:
    """(L, 2) corner UVs relaxed toward a conformal match.

    vertices (V, 3), triangles (T, 3) and triangle_loops (T, 3): the target's triangles and
    their corners; uv (L, 2): the transferred corner UVs; chart (L,): the source island of
    each corner's polygon (-1: left as it is); pull (L,): how firmly each corner holds its
    UV, in [0, 1] (0: free); metric (T, 2, 2): per target triangle, UV -> the source's
    surface (`source_metric`; None: the identity, a conformal UV map; NaN: no conformal
    term on that triangle).  Corners of one vertex in one chart share one UV.
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
    metric = np.broadcast_to(np.eye(2), (len(loops), 2, 2)) if metric is None else np.asarray(metric)[use]
    shaped = np.isfinite(metric).all(axis=(1, 2))
    metric = np.where(shaped[:, None, None], metric, np.eye(2))
    shaped_area = np.where(shaped, area, 0.0)
    sign = _orientation(uv[loops], grad, metric, shaped_area, unknown, len(keys))
    pull = np.asarray(pull, np.float64)

    # each unknown's pull: its corners' area share (a third of each triangle) times their pull
    at, corner_uv = unknown.ravel(), uv[loops.ravel()]
    corner_area = np.maximum(area, 1e-12 * max(area.max(), 1e-30)) / 3
    corner_pull = np.repeat(corner_area, 3) * np.maximum(pull[loops.ravel()], LEAST_PULL)
    weight = np.bincount(at, corner_pull, len(keys))
    anchor = np.stack([np.bincount(at, corner_pull * corner_uv[:, i], len(keys)) for i in (0, 1)], 1) / weight[:, None]
    length = SMOOTHING * np.linalg.norm(np.ptp(np.asarray(vertices, np.float64), axis=0))
    weight = weight / max(length, 1e-12) ** 2

    system = _System(*_residual_terms(grad, metric, sign), shaped_area, unknown, weight, len(keys))
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


def source_metric(vertices: np.ndarray, triangles: np.ndarray, triangle_loops: np.ndarray, uv: np.ndarray,
                  faces: np.ndarray, use: np.ndarray) -> np.ndarray:
    """(T, 2, 2) per target triangle: the inverse of the UV map of the source triangles its
    corners land on (faces (T, 3); the mean over the corners marked in use (T, 3)), scaled
    to determinant +-1: only its shape counts.  NaN where none is usable (degenerate, or
    squeezed in UV past MAX_ANISOTROPY): there the target's UVs stay as matched."""
    grad, area = _gradients(np.asarray(vertices, np.float64)[triangles])
    corner_uv = np.asarray(uv, np.float64)[triangle_loops]
    jac = np.stack([(corner_uv[:, :, 0:1] * grad).sum(1), (corner_uv[:, :, 1:2] * grad).sum(1)], 1)  # rows: grad u, grad v
    sv = np.linalg.svd(jac, compute_uv=False)
    ok = (area > 0) & (sv[:, 1] > 0) & (sv[:, 0] < MAX_ANISOTROPY * np.maximum(sv[:, 1], 1e-300))
    inv = np.broadcast_to(np.eye(2), jac.shape).copy()
    inv[ok] = np.linalg.inv(jac[ok]) * np.sqrt(np.abs(np.linalg.det(jac[ok])))[:, None, None]
    per_corner = inv[faces] * (use & ok[faces])[..., None, None]
    count = (use & ok[faces]).sum(1)
    out = np.full((len(faces), 2, 2), np.nan)
    some = count > 0
    out[some] = per_corner[some].sum(1) / count[some, None, None]
    return out


def _orientation(corner_uv: np.ndarray, grad: np.ndarray, metric: np.ndarray, area: np.ndarray,
                 unknown: np.ndarray, n_unknowns: int) -> np.ndarray:
    """(T,) +1 where a triangle's chart maps onto the source keeping the winding, -1 where it
    mirrors it: the area-weighted majority of its triangles' transferred UVs, per connected chart."""
    gu = (corner_uv[:, :, 0:1] * grad).sum(1)
    gv = (corner_uv[:, :, 1:2] * grad).sum(1)
    det = (gu[:, 0] * gv[:, 1] - gu[:, 1] * gv[:, 0]) * np.linalg.det(metric)
    piece = components(n_unknowns, np.concatenate([unknown[:, 0], unknown[:, 1]]),
                       np.concatenate([unknown[:, 1], unknown[:, 2]]))[unknown[:, 0]]
    vote = np.zeros(n_unknowns)
    np.add.at(vote, piece, area * np.sign(det))
    return np.where(vote[piece] < 0, -1.0, 1.0)


def _residual_terms(grad: np.ndarray, metric: np.ndarray, sign: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(alpha, beta), each (T, 3, 2): triangle t's conformal residual is sum over its corners
    of u_i alpha_i + v_i beta_i.  The map onto the source is A = metric @ [grad u; grad v];
    the residual is (A00 - s A11, A01 + s A10), zero when A is a scaled rotation (s = +1)
    or reflection (s = -1)."""
    gx, gy = grad[..., 0], grad[..., 1]
    p, q, r, w = (metric[:, i, j][:, None] for i, j in ((0, 0), (0, 1), (1, 0), (1, 1)))
    s = sign[:, None]
    alpha = np.stack([p * gx - s * r * gy, p * gy + s * r * gx], -1)
    beta = np.stack([q * gx - s * w * gy, q * gy + s * w * gx], -1)
    return alpha, beta


class _System:
    """x -> (sum over triangles of area * C_t^T C_t + diag(weight)) x, x (K, 2) UVs, where
    C_t x, triangle t's residual, is sum over its corners of u_i alpha_i + v_i beta_i."""

    def __init__(self, alpha, beta, area, unknown, weight, n):
        self.alpha, self.beta, self.area, self.unknown, self.weight, self.n = alpha, beta, area, unknown, weight, n
        at = unknown.ravel()
        self.diagonal = weight[:, None] + np.stack(
            [np.bincount(at, (area[:, None] * (c ** 2).sum(2)).ravel(), n) for c in (alpha, beta)], 1)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        c = x[self.unknown]  # (T, 3, 2)
        r = self.area[:, None] * ((c[:, :, 0:1] * self.alpha).sum(1) + (c[:, :, 1:2] * self.beta).sum(1))  # (T, 2)
        du, dv = (self.alpha * r[:, None]).sum(2), (self.beta * r[:, None]).sum(2)  # (T, 3)
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
