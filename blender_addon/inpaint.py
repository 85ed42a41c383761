"""Fill vertices that have no correspondence from their confident neighbours on the mesh graph.

Grows the known region one ring at a time: an unknown vertex with known neighbours takes
their mean (continuous values) or their most common value (labels), then counts as known.
Vertices in a connected piece with no known vertex at all stay unknown.  Plain numpy.
"""
from __future__ import annotations

import numpy as np


def fill(values: np.ndarray, known: np.ndarray, edges: np.ndarray, vote: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """-> (values with unknown vertices filled, mask of vertices that now have a value).

    values (V, ...) per vertex; known (V,) bool; edges (E, 2) vertex index pairs.
    `vote` picks the most common neighbour value instead of the mean (for labels).
    """
    values = np.array(values, copy=True)
    known = np.asarray(known, dtype=bool).copy()
    edges = np.asarray(edges, dtype=np.int64).reshape(-1, 2)
    both = np.concatenate([edges, edges[:, ::-1]])  # directed: (to, from)
    while not known.all():
        usable = known[both[:, 1]] & ~known[both[:, 0]]
        if not usable.any():
            break
        to, frm = both[usable, 0], both[usable, 1]
        ring = np.unique(to)
        values[ring] = _vote(values, to, frm, ring) if vote else _mean(values, to, frm, ring, len(known))
        known[ring] = True
    return values, known


def _mean(values, to, frm, ring, n):
    flat = values.reshape(len(values), -1).astype(np.float64)
    sums = np.zeros((n, flat.shape[1]))
    np.add.at(sums, to, flat[frm])
    counts = np.bincount(to, minlength=n)[ring, None]
    return (sums[ring] / counts).reshape((len(ring),) + values.shape[1:]).astype(values.dtype)


def _vote(values, to, frm, ring):
    keys, winners = most_common(to, values[frm])
    winner = dict(zip(keys.tolist(), winners.tolist()))
    return np.array([winner[v] for v in ring.tolist()], dtype=values.dtype)


def most_common(groups: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """-> (each group, its most frequent value: a row where values have several columns),
    ties to the smaller value."""
    rows, ids = np.unique(values.reshape(len(values), -1), axis=0, return_inverse=True)
    pairs, counts = np.unique(np.stack([groups, ids.reshape(-1)], axis=1), axis=0, return_counts=True)
    order = np.lexsort((pairs[:, 1], -counts, pairs[:, 0]))
    pairs = pairs[order]
    first = np.concatenate([[True], pairs[1:, 0] != pairs[:-1, 0]])
    return pairs[first, 0], rows[pairs[first, 1]].reshape((-1,) + values.shape[1:])
