"""Learned implicit functions for topology-varying dense shape correspondence (Liu & Liu 2020).

    from model import Correspondence
    engine = Correspondence.load()
    res = engine.correspond(src_points, tgt_points)
"""
from .checkpoint import Checkpoint, CheckpointError, load_checkpoint, save_checkpoint
from .config import PRESETS, ModelConfig, preset
from .engine import (
    Correspondence,
    CorrespondenceResult,
    PreparedShape,
    ReconstructedMesh,
    default_device,
    shipped_categories,
)
from .networks import ImplicitCorrespondenceNet

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "Correspondence",
    "CorrespondenceResult",
    "ImplicitCorrespondenceNet",
    "ModelConfig",
    "PRESETS",
    "PreparedShape",
    "ReconstructedMesh",
    "default_device",
    "load_checkpoint",
    "preset",
    "save_checkpoint",
    "shipped_categories",
]
