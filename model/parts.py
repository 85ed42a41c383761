"""Which parts a shape has, and which part each source sample is matched as."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# A branch is a part of a shape when it wins on at least this fraction of its surface: a
# few stray points where an absent part's branch barely wins (an armrest branch along the
# edge of an armless seat) are no part, and must neither take that part's label nor match
# onto that part of another shape.
MIN_PART_FRACTION = 0.02
# A source label is matched as one model part when at least this fraction of it is that
# branch (and of the branch, that label); "left half" or "painted red" are no parts.
MIN_LABEL_AGREEMENT = 0.6
# ... or when it is at least MIN_LABEL_AGREEMENT of a branch that covers at least this
# fraction of it: f half-finds a real part (an airliner's engines, half of them taken
# for wing), and the branch it did find tells which part the whole label is.
MIN_LABEL_COVER = 0.3
# A label that is most (MIN_LABEL_AGREEMENT) of two or more of the shape's parts, each at
# least this fraction of the label, is several parts under one name ("base" for seat and
# legs): its samples keep f's parts, as unlabelled ones do ...
MIN_UNION_SHARE = 0.2
# ... unless one branch is over this fraction of it: one part, of which f took a share for
# another (a quarter of a PSB airliner's wing called engine) ...
ONE_PART_SHARE = 0.7
# ... or unless it covers at least this fraction of the shape: one label for the whole of
# a table is no one part, however much of it the top is (over 70% on most PSB tables).
WHOLE_SHAPE_SHARE = 0.9


def presence_of(parts: np.ndarray, n_parts: int, weights: np.ndarray | None = None) -> np.ndarray:
    """(k,) the fraction of the points (or of their `weights`: a point cloud's areas) whose
    part is each branch."""
    counts = np.bincount(parts, weights, minlength=n_parts)
    return counts / max(counts.sum(), 1e-12) if len(parts) else counts


def present(presence: np.ndarray) -> np.ndarray:
    """(k,) bool: the branches that are parts of the shape (the largest one at least)."""
    return presence >= min(MIN_PART_FRACTION, presence.max())


def without_absent(emb: np.ndarray, presence: np.ndarray) -> np.ndarray:
    """The embedding with the branches of parts the shape lacks set to 0."""
    return emb * present(presence)


@dataclass(frozen=True)
class Embedded:
    """f at a shape's surface samples under one code."""

    raw: np.ndarray  # (S, k) f (with the part offsets)
    presence: np.ndarray  # (k,) fraction of the surface whose argmax branch is each branch
    embedding: np.ndarray  # (S, k) raw with the branches of absent parts zeroed
    weights: np.ndarray | None = None  # (S,) the area each sample stands for (point clouds); None: equal

    @classmethod
    def of(cls, raw: np.ndarray, weights: np.ndarray | None = None) -> "Embedded":
        presence = presence_of(raw.argmax(axis=1), raw.shape[1], weights)
        return cls(raw, presence, without_absent(raw, presence), weights)

    def parts(self, labels: np.ndarray | None = None) -> np.ndarray:
        """The branch each sample is matched as.

        Without labels: the argmax of f.  With the shape's own labels at the samples (-1:
        unlabelled), each label's samples all take the branch most of them have: f blurs
        thin parts into the part they touch (a table's apron into its top), and a label
        tells which of the two the whole apron is.  A label that is several whole parts
        (`MIN_UNION_SHARE`) tells nothing of the kind: its samples keep f's parts.
        """
        parts = self.embedding.argmax(axis=1)
        if labels is None:
            return parts
        guided = parts.copy()
        weights = np.ones(len(parts)) if self.weights is None else self.weights
        k = self.raw.shape[1]
        branch_size = np.bincount(parts, weights, minlength=k)
        known = np.flatnonzero(labels >= 0)
        if not len(known):
            return guided
        # every label at once (one row each): a cloud may come with a label per point
        ids, row = np.unique(labels[known], return_inverse=True)
        counts = np.bincount(row * k + parts[known], weights[known], minlength=len(ids) * k).reshape(len(ids), k)
        size, every = counts.sum(axis=1), np.arange(len(ids))
        part = counts.argmax(axis=1)
        bulk = np.argmax(counts / np.maximum(branch_size, 1e-12), axis=1)  # the branch each label is most of
        whole = counts[every, part] >= MIN_LABEL_AGREEMENT * np.maximum(size, branch_size[part])
        covered = ((counts[every, bulk] >= MIN_LABEL_AGREEMENT * branch_size[bulk])
                   & (counts[every, bulk] >= MIN_LABEL_COVER * size))
        holds = (counts >= MIN_LABEL_AGREEMENT * branch_size) & (branch_size >= MIN_PART_FRACTION * weights.sum())
        balanced = (((holds & (counts >= MIN_UNION_SHARE * size[:, None])).sum(axis=1) >= 2)
                    & (counts[every, part] <= ONE_PART_SHARE * size))
        union = balanced | ((holds.sum(axis=1) >= 2) & (size >= WHOLE_SHAPE_SHARE * weights.sum()))
        choice = np.where(union, -1, np.where(whole, part, np.where(covered, bulk, -1)))[row]
        guided[known[choice >= 0]] = choice[choice >= 0]
        return guided

    def source_presence(self, labels: np.ndarray | None) -> np.ndarray:
        """Which parts the shape has as a source: with its labels, the parts they were
        matched as (an engine branch winning on 2% of an engineless airplane's wing roots
        is no engine its labels know of); without, where f's branches win."""
        if labels is None:
            return self.presence
        return presence_of(self.parts(labels), self.raw.shape[1], self.weights)
