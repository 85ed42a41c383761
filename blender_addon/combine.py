"""One target from several sources: part labels voted with confidence weights (the
engine's `vote`, model/labels.py), every other value taken from the source that matches each
target vertex best (per polygon for corner and face values, so a polygon's UVs and material
come from one source).  Plain numpy: tests call it without bpy.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import transfer as tx
from .inpaint import most_common
from .labels import vote


@dataclass
class Match:
    """One source's correspondence to the target, with the source's channels to carry."""

    source: tx.MeshArrays
    corr: dict[str, np.ndarray]
    channels: list[tx.Channel]


def target_writes(matches: list[Match], target: tx.MeshArrays, threshold: float = 0.5, fill: str = "FILL"
                  ) -> list[tx.Write]:
    """The attributes to write on `target` from one or several sources; with several, also
    `corr_source_object` (INT): the index of the source each vertex's values came from."""
    if len(matches) == 1:
        m = matches[0]
        return tx.target_writes(m.source, target, m.corr, m.channels, threshold, fill)
    winner = np.stack([m.corr["confidence"] for m in matches]).argmax(axis=0)
    per_source = [tx.target_writes(m.source, target, m.corr, [c for c in m.channels if c.kind != "labels"],
                                   threshold, fill) for m in matches]
    poly, corner_winner = tx.loop_polygons(target), polygon_winners(winner, target)
    face_winner = np.zeros(tx.polygon_count(target), winner.dtype)
    face_winner[poly[poly >= 0]] = corner_winner[poly >= 0]
    pick = {"POINT": winner, "CORNER": corner_winner, "FACE": face_winner}
    writes = [_picked(ws, pick) for ws in zip(*per_source)]
    writes.append(tx.Write("corr_source_object", "attribute", "POINT", "INT", winner.astype(np.int32)))
    labelled = [(m, c) for m in matches for c in m.channels if c.kind == "labels"]
    if labelled:
        writes += voted_labels(labelled, target, threshold, fill)
    return writes


def polygon_winners(winner: np.ndarray, target: tx.MeshArrays) -> np.ndarray:
    """(L,) per corner: the source most of its polygon's corners' vertices took values from."""
    corners = winner[target.loop_vertices]
    poly = tx.loop_polygons(target)
    ok = poly >= 0
    if not ok.any():
        return corners
    polys, best = most_common(poly[ok], corners[ok])
    by_poly = np.zeros(poly.max() + 1, dtype=winner.dtype)
    by_poly[polys] = best
    out = corners.copy()
    out[ok] = by_poly[poly[ok]]
    return out


def _picked(ws: tuple[tx.Write, ...], pick: dict[str, np.ndarray]) -> tx.Write:
    """One write from the same write of each source: element i from source pick[domain][i]."""
    first = ws[0]
    for w in ws[1:]:
        if (w.name, w.domain, w.data_type) != (first.name, first.domain, first.data_type):
            raise ValueError(f"the sources differ in {first.name!r}: {first.domain} {first.data_type} on one, "
                             f"{w.name!r} {w.domain} {w.data_type} on another; give it one type and domain on every "
                             f"source (a point cloud's values are per point: Attribute > Convert on the others)")
    n = len(first.values)
    choose, rows = pick[first.domain], np.arange(n)
    values = np.stack([w.values for w in ws])[choose, rows]
    keeps = [w.keep for w in ws]
    keep = None if all(k is None for k in keeps) else np.stack(
        [np.zeros(n, bool) if k is None else k for k in keeps])[choose, rows]
    return tx.Write(first.name, first.kind, first.domain, first.data_type, values, keep, first.names)


def voted_labels(labelled: list[tuple[Match, tx.Channel]], target: tx.MeshArrays, threshold: float, fill: str
                 ) -> list[tx.Write]:
    """Each target vertex takes the label with the most confidence summed over the sources
    (a label on a sliver of the target counts with confidence 0); it is confident when
    some source that gave that label is."""
    got, conf = [], []
    for m, ch in labelled:
        values = tx.values_at(ch, m.source, m.corr).astype(np.int64)
        got.append(values)
        conf.append(np.where(tx.label_slivers(ch, m.source, target, values), 0.0, m.corr["confidence"]))
    voted, support = vote(np.stack(got), np.stack(conf))
    values, keep = tx.resolve(voted, (support >= threshold) & (voted >= 0), fill, target.edges, vote=True, mark=-1)
    return tx.label_writes(values, keep)
