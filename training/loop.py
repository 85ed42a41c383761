"""The inner training loop: batching and one optimizer step, the trainer's and the tests' and benchmarks' alike."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from model.losses import LossWeights, stage_losses
from model.networks import ImplicitCorrespondenceNet


def augment_scale(rng: np.random.Generator, low: float = 0.5, high: float = 1.5) -> np.ndarray:
    """A random per-axis scale, as the paper augments shapes."""
    return rng.uniform(low, high, 3)


def make_batch(
    samples: Sequence[dict[str, np.ndarray]],
    rng: np.random.Generator,
    resolution: int,
    encoder_points: int,
    surface_points: int = 1024,
    occupancy_points: int = 2048,
    augment: bool = False,
    device: str | torch.device = "cpu",
    encoder_normals: bool = False,
) -> dict[str, torch.Tensor]:
    """Stack per-shape samples into tensors, drawing random subsets of their points.

    With `augment`, each shape is scaled per axis by a factor in [0.5, 1.5] and
    renormalised to a unit bounding-box diagonal (occupancy is unchanged by scaling
    shape and samples together; normals follow the inverse scale).  With
    `encoder_normals`, E's points carry the samples' `estimated_normals` (those the
    engine will estimate from bare points) as 3 more columns.
    """

    def pick(n_have: int, n_want: int) -> np.ndarray:
        return rng.choice(n_have, n_want, replace=n_have < n_want)

    keys = ("encoder_points", "occ_points", "occ_values", "surface_points", "surface_normals", "surface_labels")
    batch: dict[str, list[np.ndarray]] = {k: [] for k in keys}
    for s in samples:
        surface, normals = s["surface_points"], s["surface_normals"]
        occ_p, occ_v = s[f"occ_points_{resolution}"], s[f"occ_values_{resolution}"]
        e = pick(len(surface), encoder_points)
        enc = surface[e]
        o = pick(len(occ_p), occupancy_points)
        su = pick(len(surface), surface_points)
        occ_p, surf, nrm = occ_p[o], surface[su], normals[su]
        enc_nrm = s["estimated_normals"][e] if encoder_normals else None
        if augment:
            scale = augment_scale(rng)
            scale = scale / np.linalg.norm(np.ptp(surface, axis=0) * scale)
            enc, occ_p, surf = enc * scale, occ_p * scale, surf * scale
            nrm = _scaled_normals(nrm, scale)
            if encoder_normals:
                enc_nrm = _scaled_normals(enc_nrm, scale)
        if encoder_normals:
            enc = np.concatenate([enc, enc_nrm], axis=1)
        labels = s.get("surface_labels", np.full(len(surface), -1))[su]
        for key, value in zip(keys, (enc, occ_p, occ_v[o], surf, nrm, labels)):
            batch[key].append(value)
    out = {k: torch.as_tensor(np.stack(v), dtype=torch.float32, device=device) for k, v in batch.items()}
    out["surface_labels"] = out["surface_labels"].long()
    return out


def _scaled_normals(normals: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Normals of a surface scaled per axis by `scale`: the inverse scale, renormalised."""
    normals = normals / scale
    return normals / np.linalg.norm(normals, axis=1, keepdims=True).clip(1e-12)


def make_optimizer(net: ImplicitCorrespondenceNet, lr: float = 1e-4) -> torch.optim.Adam:
    """Adam with the paper's betas."""
    return torch.optim.Adam(net.parameters(), lr=lr, betas=(0.5, 0.999))


class StageLoss(nn.Module):
    """The stage loss of a network as a module, so that DistributedDataParallel can wrap it."""

    def __init__(self, net: ImplicitCorrespondenceNet, weights: LossWeights | None = None):
        super().__init__()
        self.net, self.weights = net, weights

    def forward(self, batch: dict[str, torch.Tensor], stage: int) -> tuple[torch.Tensor, dict[str, float]]:
        return stage_losses(self.net, batch, stage, self.weights)


def train_step(
    model: ImplicitCorrespondenceNet | nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: dict[str, torch.Tensor],
    stage: int,
    weights: LossWeights | None = None,
) -> dict[str, float]:
    """One optimizer step on `batch` -> the loss terms and their weighted `total`.

    `model` is a network (its stage loss is taken with `weights`) or a StageLoss, as the
    trainer passes it, possibly wrapped in DistributedDataParallel.
    """
    objective = StageLoss(model, weights) if isinstance(model, ImplicitCorrespondenceNet) else model
    objective.train()
    optimizer.zero_grad(set_to_none=True)
    total, terms = objective(batch, stage)
    total.backward()
    optimizer.step()
    terms["total"] = float(total.detach())
    return terms
