"""The engine's settings: a checkpoint's calibration, and the few knobs a caller may turn.

Each is a frozen record validated once, on construction, with an error naming the field.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from .validation import DEFAULT_MAX_POINTS


@dataclass(frozen=True)
class Calibration:
    """What export measures on held-out shapes and stores in the checkpoint."""

    surface_sigma: float = 0.03  # confidence: distance of g's map from the source surface
    embedding_sigma: float = 0.25  # confidence: distance of the part embeddings
    cycle_sigma: float = 0.05  # confidence: distance of the round trip target -> source -> target
    part_bias: tuple[float, ...] = ()  # logit offset per branch in every part decision (training.export)
    fit_steps: int = 0  # steps fitting each shape's code to its surface (model/fitting.py); 0: E's code
    embedding_weight: float = 0.5  # the match's weight of the part embedding against position (with labels)

    def __post_init__(self) -> None:
        object.__setattr__(self, "part_bias", _offsets(self.part_bias))
        object.__setattr__(self, "fit_steps", _integer("fit_steps", self.fit_steps))
        for name in ("surface_sigma", "embedding_sigma", "cycle_sigma"):
            if not _finite(getattr(self, name)) or getattr(self, name) <= 0:
                raise ValueError(f"{name} must be a finite number > 0, got {getattr(self, name)!r}")
        if self.fit_steps < 0:
            raise ValueError(f"fit_steps must be >= 0, got {self.fit_steps}")
        if not _finite(self.embedding_weight) or self.embedding_weight < 0:
            raise ValueError(f"embedding_weight must be a finite number >= 0, got {self.embedding_weight!r}")

    def bias(self, n_parts: int) -> np.ndarray:
        """The offsets as a vector over all `n_parts` branches (0 past the stored ones)."""
        if len(self.part_bias) > n_parts:
            raise ValueError(f"part_bias has {len(self.part_bias)} offsets; the network has {n_parts} branches")
        out = np.zeros(n_parts)
        out[: len(self.part_bias)] = self.part_bias
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["part_bias"] = list(self.part_bias)
        return d

    @classmethod
    def from_checkpoint(cls, extra: dict[str, Any]) -> "Calibration":
        """The record of a checkpoint's `extra`: `calibration` (format 2), or the separate
        keys format 1 exports wrote (`confidence` sigmas, `fit_steps`, ...)."""
        if "calibration" in extra:
            stored = dict(extra["calibration"])
        else:
            stored = dict(extra.get("confidence") or {})
            stored.update({k: extra[k] for k in ("fit_steps", "embedding_weight", "part_bias") if k in extra})
        unknown = set(stored) - {f.name for f in fields(cls)}
        if unknown:
            raise ValueError(f"checkpoint calibration has unknown keys {sorted(unknown)}")
        return cls(**stored)


@dataclass(frozen=True)
class Settings:
    """Knobs of an engine that are not the checkpoint's."""

    chunk: int | None = None  # points per forward pass: bounds memory; None: by device (model/runner.py)
    max_points: int = DEFAULT_MAX_POINTS  # largest shape accepted
    seed: int = 0  # surface sampling and subsets: the same input gives the same answer
    # where a target point looks for its match: 1 its own canonical position, 0 g's inverse
    # map (the paper's correspondence), in between a blend
    position_prior: float = 1.0

    def __post_init__(self) -> None:
        for name, low in (("chunk", 1), ("max_points", 2), ("seed", 0)):
            if name == "chunk" and self.chunk is None:
                continue
            value = _integer(name, getattr(self, name))
            if value < low:
                raise ValueError(f"{name} must be >= {low}, got {value}")
            object.__setattr__(self, name, value)
        if not _finite(self.position_prior) or not 0 <= self.position_prior <= 1:
            raise ValueError(f"position_prior must be in [0, 1], got {self.position_prior!r}")


def split_settings(options: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Keyword options -> (calibration overrides, settings); an unknown name is an error."""
    cal = {f.name for f in fields(Calibration)}
    own = {f.name for f in fields(Settings)}
    unknown = set(options) - cal - own
    if unknown:
        raise ValueError(f"unknown engine option(s) {sorted(unknown)}; calibration: {sorted(cal)}, "
                         f"settings: {sorted(own)}")
    return ({k: v for k, v in options.items() if k in cal}, {k: v for k, v in options.items() if k in own})


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
        and math.isfinite(value)


def _integer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    return int(value)


def _offsets(values: Any) -> tuple[float, ...]:
    arr = np.asarray([] if values is None else values, dtype=object)
    if arr.ndim != 1 or not all(_finite(v) for v in arr):
        raise ValueError(f"part_bias must be finite logit offsets, one per branch, got {values!r}")
    return tuple(float(v) for v in arr)
