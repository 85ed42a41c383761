"""Checkpoint file format: one file with weights, config, category, stage/epoch and optimizer.

Files are written by torch.save and read with torch.load(weights_only=True), so loading
a checkpoint can never run code.  Everything besides tensors is plain Python data.
"""
from __future__ import annotations

import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from .config import ModelConfig
from .files import write_atomically
from .networks import ImplicitCorrespondenceNet

FORMAT = "implicit-correspondence-checkpoint"
FORMAT_VERSION = 2  # 2: the calibration is one `extra["calibration"]` record (model/settings.py)
READABLE_VERSIONS = (1, 2)


class CheckpointError(ValueError):
    """A file that is not a loadable checkpoint of this format."""


@dataclass
class Checkpoint:
    config: ModelConfig
    state_dict: dict[str, torch.Tensor]
    category: str = "unknown"
    stage: int = 1
    epoch: int = 0
    resolution: int = 0
    optimizer: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # trainer state, metrics, notes

    def build(self, device: str | torch.device = "cpu") -> ImplicitCorrespondenceNet:
        """A network with these weights, in eval mode, on `device`."""
        try:
            net = ImplicitCorrespondenceNet(self.config)
        except (TypeError, ValueError) as exc:  # a config whose fields are of the wrong kind
            raise CheckpointError(f"checkpoint config cannot build a network: {exc}") from None
        try:
            net.load_state_dict(self.state_dict)
        except (RuntimeError, TypeError) as exc:
            raise CheckpointError(f"checkpoint weights do not match its config: {exc}") from None
        return net.to(device).eval()


def save_checkpoint(path: str | os.PathLike, ckpt: Checkpoint) -> None:
    """Write atomically: a crash mid-write never leaves a truncated file under `path`."""
    path = Path(path)
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "config": ckpt.config.to_dict(),
        "category": ckpt.category,
        "stage": int(ckpt.stage),
        "epoch": int(ckpt.epoch),
        "resolution": int(ckpt.resolution),
        "state_dict": {k: v.detach().cpu() for k, v in ckpt.state_dict.items()},
        "optimizer": ckpt.optimizer,
        "extra": ckpt.extra,
    }
    write_atomically(path, lambda tmp: torch.save(payload, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> Checkpoint:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - junk bytes raise anything from the unpickler (IndexError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a mesh or text file is none
            first = "not a torch.save file (.pth), or truncated"
        elif first.startswith("Weights only load failed"):  # torch's advice to unpickle it anyway is not ours
            first = "it holds objects other than tensors and plain values, which are not loaded"
        raise CheckpointError(
            f"{path} is not a readable checkpoint (truncated, corrupt, or not a safe "
            f"weights-only file): {first}"
        ) from None
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an {FORMAT} file")
    version = payload.get("format_version")
    if version not in READABLE_VERSIONS:
        raise CheckpointError(
            f"{path} has checkpoint format version {version}; this program reads versions "
            f"{', '.join(map(str, READABLE_VERSIONS))}"
        )
    if not isinstance(payload.get("state_dict"), dict) or not all(
            isinstance(v, torch.Tensor) for v in payload["state_dict"].values()):
        raise CheckpointError(f"{path} has a malformed checkpoint payload: state_dict is not a dict of tensors")
    try:
        config = ModelConfig.from_dict(payload["config"])
        return Checkpoint(
            config=config,
            state_dict=payload["state_dict"],
            category=str(payload.get("category", "unknown")),
            stage=int(payload.get("stage", 1)),
            epoch=int(payload.get("epoch", 0)),
            resolution=int(payload.get("resolution", 0)),
            optimizer=payload.get("optimizer"),
            extra=dict(payload.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"{path} has a malformed checkpoint payload: {exc}") from None
