"""Shapes built from labelled solid primitives (boxes, cylinders), with exact occupancy.

A shape is the union of its parts.  Because each part is a simple solid, inside/outside
is exact (no winding numbers needed) and the surface of the union is sampled by sampling
each part's surface and dropping the samples that lie inside another part.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import trimesh

_AXIS_ROTATION = {  # maps the +Z axis of trimesh's cylinder onto the part axis
    0: trimesh.transformations.rotation_matrix(np.pi / 2, [0, 1, 0]),
    1: trimesh.transformations.rotation_matrix(-np.pi / 2, [1, 0, 0]),
    2: np.eye(4),
}


@dataclass(frozen=True)
class Part:
    kind: str  # "box", "cylinder" or "ellipsoid"
    center: tuple[float, float, float]
    size: tuple[float, float, float]  # box: full extents; cylinder: (radius, height, -); ellipsoid: radii
    label: int
    axis: int = 1  # cylinder axis (0=x, 1=y, 2=z)
    rotation: tuple[float, float, float] = (0.0, 0.0, 0.0)  # Euler angles (x, y, z), radians

    def _matrix(self) -> np.ndarray:
        return trimesh.transformations.euler_matrix(*self.rotation, axes="sxyz")[:3, :3]

    def mesh(self) -> trimesh.Trimesh:
        if self.kind == "box":
            m = trimesh.creation.box(extents=self.size)
        elif self.kind == "cylinder":
            m = trimesh.creation.cylinder(radius=self.size[0], height=self.size[1], sections=20)
            m.apply_transform(_AXIS_ROTATION[self.axis])
        elif self.kind == "ellipsoid":
            m = trimesh.creation.icosphere(subdivisions=3)
            m.apply_scale(self.size)
        else:
            raise ValueError(f"unknown primitive kind {self.kind!r}")
        transform = np.eye(4)
        transform[:3, :3] = self._matrix()
        transform[:3, 3] = self.center
        m.apply_transform(transform)
        return m

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Strictly inside, shrunk by `margin` (so samples on a shared face count as outside)."""
        d = (points - np.asarray(self.center)) @ self._matrix()  # into the part's own frame
        if self.kind == "box":
            return (np.abs(d) < np.asarray(self.size) / 2 - margin).all(axis=1)
        if self.kind == "ellipsoid":
            radii = np.asarray(self.size) - margin
            return ((d / radii) ** 2).sum(axis=1) < 1.0
        radial = np.delete(d, self.axis, axis=1)
        return (np.linalg.norm(radial, axis=1) < self.size[0] - margin) & (
            np.abs(d[:, self.axis]) < self.size[1] / 2 - margin
        )


@dataclass
class Assembly:
    """A labelled shape: the union of parts.  `names[label]` names each label."""

    parts: list[Part]
    names: dict[int, str] = field(default_factory=dict)

    @property
    def labels_present(self) -> set[int]:
        return {p.label for p in self.parts}

    def mesh(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(vertices, faces, per-face labels) of the parts' meshes (overlapping, not booleaned)."""
        meshes = [p.mesh() for p in self.parts]
        labels = np.concatenate([np.full(len(m.faces), p.label) for p, m in zip(self.parts, meshes)])
        joined = trimesh.util.concatenate(meshes)
        return np.asarray(joined.vertices), np.asarray(joined.faces), labels

    def occupancy(self, points: np.ndarray) -> np.ndarray:
        inside = np.zeros(len(points), dtype=bool)
        for p in self.parts:
            inside |= p.contains(points)
        return inside

    def sample_surface(self, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(points, outward normals, labels) on the boundary of the union, area-weighted."""
        rng = np.random.default_rng(seed)
        meshes = [p.mesh() for p in self.parts]
        areas = np.array([m.area for m in meshes])
        pts, nrm, lab = [], [], []
        got = 0
        while got < count:  # oversample, then drop samples hidden inside other parts
            want = int((count - got) * 1.5) + 16
            per_part = rng.multinomial(want, areas / areas.sum())
            for i, (part, m, k) in enumerate(zip(self.parts, meshes, per_part)):
                if k == 0:
                    continue
                p, fi = trimesh.sample.sample_surface(m, k, seed=int(rng.integers(2**31)))
                n = m.face_normals[fi]
                # On the union's boundary only if just outside it is outside every other part:
                # this drops samples inside other parts and on faces shared with them.
                probe = p + n * 1e-4
                hidden = np.zeros(len(p), dtype=bool)
                for j, other in enumerate(self.parts):
                    if j != i:
                        hidden |= other.contains(probe)
                pts.append(p[~hidden])
                nrm.append(n[~hidden])
                lab.append(np.full((~hidden).sum(), part.label))
                got += int((~hidden).sum())
        order = rng.permutation(got)[:count]
        return np.concatenate(pts)[order], np.concatenate(nrm)[order], np.concatenate(lab)[order]
