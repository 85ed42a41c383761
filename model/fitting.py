"""Fitting a shape's code to its own surface at inference.

E sees a shape once and guesses its code; f's surface under that code is close to the
shape's but blurs thin parts (an engine nacelle under a wing, a table's apron under its
top).  A few gradient steps on the code alone (f and g fixed) pull the occupancy to 1
just inside each surface point and to 0 just outside, along the outward normal, which
moves f's part boundaries onto the shape's.  Point clouds have no normals and meshes
may have flipped faces, so the normals' directions come from the points (PCA) or faces
and their outward sign from a visibility test, or, where that cannot tell, from the
model's own occupancy.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from .normals import visible_side

# Points per forward and backward pass of a fitting step: on CPU a 512-point chunk's
# activations stay in cache, and a step over 2,048 points runs 1.2 times as fast as in
# two 1,024-point passes (docs/model.md, Speed).  The gradient is the same sum.
FIT_CHUNK = 512


def orient_outward(points: np.ndarray, normals: np.ndarray, cloud: np.ndarray,
                   occupancy: Callable[[np.ndarray], np.ndarray], offset: float) -> np.ndarray:
    """Normals flipped to point out of the shape.

    Where one direction's ray escapes the cloud and the other's hits it, the escaping one
    is out (right for 98 % of procedural airplanes' points where it decides, about 3 in
    4 of them).  Elsewhere (concave spots, thin plates) the side where `occupancy` is
    lower at `offset` from the point is out.
    """
    side = visible_side(cloud, points, normals)
    model_says = np.where(occupancy(points + offset * normals) > occupancy(points - offset * normals), -1.0, 1.0)
    return normals * np.where(side != 0, side, model_says)[:, None]


def fit_code(embed: Callable[[torch.Tensor, torch.Tensor], torch.Tensor], code: torch.Tensor,
             points: np.ndarray, normals: np.ndarray, steps: int = 30, lr: float = 1e-2,
             offset: float = 0.01, on_step: Callable[[int, int], None] | None = None) -> torch.Tensor:
    """The code after `steps` Adam steps toward occupancy 1 at `offset` inside each
    surface point (against its outward normal) and 0 at `offset` outside.  `on_step(done,
    steps)` after each step reports progress (and may raise to stop)."""
    device = code.device
    p = torch.as_tensor(points, dtype=torch.float32, device=device)
    n = torch.as_tensor(normals, dtype=torch.float32, device=device)
    n = n / n.norm(dim=1, keepdim=True).clamp_min(1e-12)
    x = torch.cat([p - offset * n, p + offset * n])[None]  # inside, then outside
    occupied = torch.cat([torch.ones(len(p)), torch.zeros(len(p))]).to(device)[None]
    chunk = FIT_CHUNK if device.type == "cpu" else len(x[0])
    z = code.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    with torch.enable_grad():
        for step in range(steps):
            # the mean squared error inside plus that outside; the code's gradient only: f stays untouched
            z.grad = sum(torch.autograd.grad(((embed(x[:, i : i + chunk], z).max(-1).values
                                               - occupied[:, i : i + chunk]) ** 2).sum() / max(len(p), 1), z)[0]
                         for i in range(0, x.shape[1], chunk))
            opt.step()
            if on_step is not None:
                on_step(step + 1, steps)
    return z.detach()
