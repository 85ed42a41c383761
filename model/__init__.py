"""Learned implicit functions for topology-varying dense shape correspondence (Liu & Liu 2020).

    from model import Correspondence
    engine = Correspondence.load()
    res = engine.correspond(src_points, tgt_points)

Names are imported on first use, so that `model.labels` (numpy only; the Blender add-on
ships a copy of it) can be imported without torch.
"""
from importlib import import_module
from typing import Any

_EXPORTS = {
    "Calibration": "settings", "Settings": "settings",
    "Checkpoint": "checkpoint", "CheckpointError": "checkpoint", "load_checkpoint": "checkpoint",
    "save_checkpoint": "checkpoint",
    "PRESETS": "config", "ModelConfig": "config", "preset": "config",
    "Correspondence": "engine", "CorrespondenceResult": "engine", "shipped_categories": "engine",
    "PreparedShape": "preparation", "ReconstructedMesh": "reconstruction", "default_device": "runner",
    "ImplicitCorrespondenceNet": "networks",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'model' has no attribute {name!r}")
    return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
