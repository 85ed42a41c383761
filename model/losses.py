"""Training losses of the three stages, in plain PyTorch (CPU and CUDA alike).

Stage 1: occupancy.  Stage 2: + self-reconstruction.  Stage 3: + cross-reconstruction,
which swaps part embeddings between the shapes of a batch and asks g to land them on the
other shape: Chamfer + EMD + normal consistency + smoothness.

EMD is approximated with entropic optimal transport (log-domain Sinkhorn, uniform
weights, Euclidean cost).  On random sets of 64 points in the unit cube the defaults
over-estimate the exact assignment (scipy's linear_sum_assignment) by 0.6% on average,
0.9% at most; the test suite checks a 2% bound.  Stage 3 evaluates it on a random
subset of `LossWeights.emd_points` points per shape, since each Sinkhorn iteration is
quadratic in the set size.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.nn import functional as F

from .networks import ImplicitCorrespondenceNet


def occupancy_loss(embedding: torch.Tensor, occupancy: torch.Tensor) -> torch.Tensor:
    """MSE between max-pooled branches (B, Q, k) and 0/1 occupancy (B, Q)."""
    return ((embedding.max(dim=-1).values - occupancy) ** 2).mean()


def self_reconstruction_loss(reconstructed: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Mean squared distance |g(f(x, z), z) - x|^2 over points."""
    return ((reconstructed - points) ** 2).sum(dim=-1).mean()


def _pairwise_sq(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.cdist(a, b).pow(2)


def nearest_indices(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """For each point of a (B, N, 3), the index of its nearest point in b (B, M, 3)."""
    return torch.cdist(a, b).argmin(dim=-1)


def chamfer_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Symmetric Chamfer distance with squared distances, averaged over points and batch."""
    d = _pairwise_sq(a, b)
    return d.min(dim=2).values.mean() + d.min(dim=1).values.mean()


def emd_sinkhorn(
    a: torch.Tensor, b: torch.Tensor, eps: float = 0.005, iters: int = 200
) -> torch.Tensor:
    """Approximate Earth Mover's Distance: mean transport length between equal-weight sets.

    a: (B, N, 3), b: (B, M, 3).  The transport plan comes from log-domain Sinkhorn with
    entropy `eps` (in units of squared scene size); it is computed without gradient and
    the cost is differentiated through the distances, as for an exact assignment.
    """
    cost = torch.cdist(a, b)  # (B, N, M)
    n, m = cost.shape[1], cost.shape[2]
    with torch.no_grad():
        # Kernel form in float64: exp(-1/eps) stays far above float64's smallest number,
        # and each iteration is two batched mat-vec products (fast on CPU and GPU).
        c = cost.detach().double()
        c = c / c.amax(dim=(1, 2), keepdim=True).clamp_min(1e-12)
        kernel = torch.exp(-c / eps)
        u = torch.full((c.shape[0], n, 1), 1.0 / n, dtype=c.dtype, device=c.device)
        v = torch.full((c.shape[0], m, 1), 1.0 / m, dtype=c.dtype, device=c.device)
        for _ in range(iters):
            u = (1.0 / n) / (kernel @ v).clamp_min(1e-300)
            v = (1.0 / m) / (kernel.transpose(1, 2) @ u).clamp_min(1e-300)
        plan = u * kernel * v.transpose(1, 2)
        plan = (plan / plan.sum(dim=(1, 2), keepdim=True)).to(cost.dtype)
    return (plan * cost).sum(dim=(1, 2)).mean()


PROBE_STEP = 0.01  # how far the tangent probes lie from their point
# The mapped normal is normalize(cross of the mapped tangents), whose gradient grows as 1/|cross|:
# a patch the map squashes (onto a thin leg) would get an unbounded one.  Below this share of
# an undistorted patch's |cross| (PROBE_STEP^2) the normalisation stops shrinking it.
NORMAL_EPS = 1e-2 * PROBE_STEP**2


def tangent_probes(points: torch.Tensor, normals: torch.Tensor, step: float = PROBE_STEP) -> torch.Tensor:
    """(B, N, 3) -> (B, 4N, 3): each point, then the point moved along two tangents and the normal."""
    helper = torch.where(
        normals[..., :1].abs() < 0.9,
        torch.tensor([1.0, 0.0, 0.0], device=points.device).expand_as(normals),
        torch.tensor([0.0, 1.0, 0.0], device=points.device).expand_as(normals),
    )
    t1 = F.normalize(torch.cross(normals, helper, dim=-1), dim=-1)
    t2 = torch.cross(normals, t1, dim=-1)
    return torch.cat([points, points + step * t1, points + step * t2, points + step * normals], dim=1)


def normals_from_probes(mapped_probes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mapped `tangent_probes` -> (mapped points, their normals), differentiable.

    The mapped normal is the cross product of the two mapped tangents, oriented like
    the mapped original normal (finite differences of the map's Jacobian).
    """
    base, m1, m2, mn = mapped_probes.chunk(4, dim=1)
    normal = F.normalize(torch.cross(m1 - base, m2 - base, dim=-1), dim=-1, eps=NORMAL_EPS)
    flip = torch.sign(((mn - base) * normal).sum(-1, keepdim=True))
    return base, normal * torch.where(flip == 0, torch.ones_like(flip), flip)


def mapped_normals(map_fn, points: torch.Tensor, normals: torch.Tensor, step: float = PROBE_STEP) -> torch.Tensor:
    """Normals of the image of a surface under `map_fn`, with gradients through the map."""
    return normals_from_probes(map_fn(tangent_probes(points, normals, step)))[1]


def normal_consistency_loss(
    pred_points: torch.Tensor,
    pred_normals: torch.Tensor,
    target_points: torch.Tensor,
    target_normals: torch.Tensor,
) -> torch.Tensor:
    """1 - |cos| between each predicted normal and the normal of its nearest target point."""
    idx = nearest_indices(pred_points.detach(), target_points)
    nearest = torch.gather(target_normals, 1, idx.unsqueeze(-1).expand(-1, -1, 3))
    cos = (F.normalize(pred_normals, dim=-1) * F.normalize(nearest, dim=-1)).sum(-1)
    return (1.0 - cos.abs()).mean()


def knn_indices(points: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (B, N, k) of each point's k nearest other points."""
    d = torch.cdist(points, points)
    return d.topk(k + 1, dim=-1, largest=False).indices[..., 1:]


def smoothness_loss(mapped: torch.Tensor, neighbours: torch.Tensor) -> torch.Tensor:
    """Mean squared umbrella Laplacian of the mapped points over the source's kNN graph.

    mapped: (B, N, 3); neighbours: (B, N, k) indices of each source point's neighbours.
    Zero when every mapped point is the mean of its mapped neighbours.
    """
    lap = mapped - _gather_rows(mapped, neighbours).mean(dim=2)
    return (lap**2).sum(-1).mean()


def _gather_rows(points: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """points (B, N, D), idx (B, N, k) -> (B, N, k, D)."""
    b, n, k = idx.shape
    flat = idx.reshape(b, n * k, 1).expand(-1, -1, points.shape[-1])
    return torch.gather(points, 1, flat).reshape(b, n, k, points.shape[-1])


def part_supervision_loss(embedding: torch.Tensor, labels: torch.Tensor, balance: bool = False) -> torch.Tensor:
    """Cross-entropy over branch logits at labelled points (label -1 = unknown, ignored).

    `balance` weighs each part by 1/sqrt of its share of the batch's labelled points: a
    small part (an airplane's engines, a tenth of the surface) otherwise loses its border
    to the large part it touches.
    """
    logits = torch.logit(embedding.clamp(1e-6, 1 - 1e-6))
    labels = labels.long().reshape(-1)
    if not (labels >= 0).any():
        return logits.sum() * 0.0
    weight = None
    if balance:
        counts = torch.bincount(labels[labels >= 0], minlength=logits.shape[-1]).to(logits.dtype)
        # (cross_entropy divides by the targets' summed weight: the loss keeps its scale)
        weight = torch.where(counts > 0, counts.clamp(min=1).rsqrt(), torch.zeros_like(counts))
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels, weight=weight, ignore_index=-1)


@dataclass
class LossWeights:
    occupancy: float = 1.0
    self_recon: float = 1.0
    chamfer: float = 1.0
    emd: float = 1.0
    normal: float = 0.01
    smooth: float = 0.1
    knn: int = 8
    emd_points: int = 256
    # Optional part supervision (BAE-NET's supervised variant): where surface points carry
    # part labels, the branch of their label must win.  0 reproduces the paper.
    part: float = 0.0
    part_balance: bool = False  # weigh parts by 1/sqrt(share) (part_supervision_loss)


def stage_losses(
    net: ImplicitCorrespondenceNet,
    batch: dict[str, torch.Tensor],
    stage: int,
    weights: LossWeights | None = None,
) -> tuple[torch.Tensor, dict[str, float]]:
    """Total loss of a training stage (1, 2 or 3) and its named terms.

    batch: `encoder_points` (B, N, 3) fed to E; `occ_points` (B, Q, 3) with `occ_values`
    (B, Q) in {0, 1}; for stages 2-3 `surface_points` and `surface_normals` (B, P, 3).
    Stage 3 pairs shape i with shape i+1 (mod B), so it needs B >= 2.
    """
    if stage not in (1, 2, 3):
        raise ValueError(f"stage must be 1, 2 or 3, got {stage}")
    w = weights or LossWeights()
    z = net.encode(batch["encoder_points"])
    terms: dict[str, torch.Tensor] = {}
    terms["occupancy"] = occupancy_loss(net.embed(batch["occ_points"], z), batch["occ_values"])
    if stage == 2:
        surface = batch["surface_points"]
        terms["self_recon"] = self_reconstruction_loss(net.invert(net.embed(surface, z), z), surface)
    if stage == 3:
        surface, normals = batch["surface_points"], batch["surface_normals"]
        if surface.shape[0] < 2:
            raise ValueError("stage 3 needs at least 2 shapes per batch")
        # One pass of f over the points and their tangent probes serves both terms.
        o_probes = net.embed(tangent_probes(surface, normals), z)
        o = o_probes[:, : surface.shape[1]]
        terms["self_recon"] = self_reconstruction_loss(net.invert(o, z), surface)
        z_other = torch.roll(z, shifts=-1, dims=0)
        other = torch.roll(surface, shifts=-1, dims=0)
        other_normals = torch.roll(normals, shifts=-1, dims=0)
        # A's embeddings decoded with B's code must land on B.
        crossed, crossed_normals = normals_from_probes(net.invert(o_probes, z_other))
        terms["chamfer"] = chamfer_distance(crossed, other)
        pick = torch.randperm(surface.shape[1], device=surface.device)[: w.emd_points]
        terms["emd"] = emd_sinkhorn(crossed[:, pick], other[:, pick])
        terms["normal"] = normal_consistency_loss(crossed, crossed_normals, other, other_normals)
        terms["smooth"] = smoothness_loss(crossed, knn_indices(surface, w.knn))
    if w.part > 0 and "surface_labels" in batch:
        terms["part"] = part_supervision_loss(net.embed(batch["surface_points"], z), batch["surface_labels"],
                                              w.part_balance)
    total = sum(getattr(w, name) * value for name, value in terms.items())
    return total, {name: float(value.detach()) for name, value in terms.items()}
