"""The inner training loop shared by the trainer and the tests: batching and one step."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from model.losses import LossWeights, stage_losses
from model.networks import ImplicitCorrespondenceNet


def make_batch(
    samples: Sequence[dict[str, np.ndarray]],
    rng: np.random.Generator,
    encoder_points: int,
    surface_points: int = 1024,
    occupancy_points: int = 2048,
    device: str | torch.device = "cpu",
) -> dict[str, torch.Tensor]:
    """Stack per-shape samples into tensors, drawing random subsets of their points."""

    def pick(arr: np.ndarray, n: int) -> np.ndarray:
        return arr[rng.choice(len(arr), n, replace=len(arr) < n)]

    batch: dict[str, list[np.ndarray]] = {k: [] for k in ("encoder_points", "occ_points", "occ_values", "surface_points", "surface_normals")}
    for s in samples:
        batch["encoder_points"].append(pick(s["surface_points"], encoder_points))
        occ = rng.choice(len(s["occ_points"]), occupancy_points, replace=len(s["occ_points"]) < occupancy_points)
        batch["occ_points"].append(s["occ_points"][occ])
        batch["occ_values"].append(s["occ_values"][occ])
        surf = rng.choice(len(s["surface_points"]), surface_points, replace=len(s["surface_points"]) < surface_points)
        batch["surface_points"].append(s["surface_points"][surf])
        batch["surface_normals"].append(s["surface_normals"][surf])
    return {k: torch.as_tensor(np.stack(v), dtype=torch.float32, device=device) for k, v in batch.items()}


def make_optimizer(net: ImplicitCorrespondenceNet, lr: float = 1e-4) -> torch.optim.Adam:
    """Adam with the paper's betas."""
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))


def train_step(
    net: ImplicitCorrespondenceNet,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    stage: int,
    weights: LossWeights | None = None,
) -> dict[str, float]:
    net.train()
    optimizer.zero_grad(set_to_none=True)
    total, terms = stage_losses(net, batch, stage, weights)
    total.backward()
    optimizer.step()
    terms["total"] = float(total.detach())
    return terms
