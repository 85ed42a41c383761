"""How sure a match is: does the target point's part exist on the source, and do the
paper's maps agree with it."""
from __future__ import annotations

import numpy as np

from .parts import present
from .runner import branch_logits
from .settings import Calibration

# The existence is a softmax over the branch logits at this sharpness: soft enough that a
# point on a part boundary is unsure, sharp enough that a point inside a part is not.
EXISTENCE_SHARPNESS = 4.0


def existence(emb: np.ndarray, source_presence: np.ndarray) -> np.ndarray:
    """Per point, how surely its part is one the source has: its soft part membership
    summed over the source's parts."""
    logits = EXISTENCE_SHARPNESS * branch_logits(emb)
    weights = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (weights @ present(source_presence)) / weights.sum(axis=1)


def confidence(exists: np.ndarray, surface: np.ndarray, embedding: np.ndarray, cycle: np.ndarray,
               cal: Calibration) -> np.ndarray:
    """The existence times a Gaussian factor per distance, at the checkpoint's sigmas."""
    return exists * np.exp(-0.5 * ((surface / cal.surface_sigma) ** 2 + (embedding / cal.embedding_sigma) ** 2
                                   + (cycle / cal.cycle_sigma) ** 2))
