"""The three networks of the paper: PointNet encoder E, part embedding f, inverse implicit g.

Shapes are batched: points (B, N, 3), codes (B, C), embeddings (B, N, k).  The first
layer of f and g sees concat(point, z); since z is constant over a shape, that layer is
split into a per-point product and a per-shape product, which is the same arithmetic as
the concatenation (same weights, same state dict) at a fraction of the cost.
"""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from .config import ModelConfig


def _init_point_columns(layer: nn.Linear, n: int) -> None:
    """Initialise the weights of the first n inputs as for an n-input layer.

    PyTorch's default scales by the whole fan-in (n + code size), which leaves the point
    (or embedding) a few percent of the pre-activation next to the code; occupancy then
    learns several times slower.
    """
    with torch.no_grad():
        layer.weight[:, :n].uniform_(-(n**-0.5), n**-0.5)


def _split_linear(layer: nn.Linear, per_point: torch.Tensor, per_shape: torch.Tensor) -> torch.Tensor:
    """layer(concat(per_point, per_shape broadcast)) computed without building the concat."""
    n = per_point.shape[-1]
    w_point, w_shape = layer.weight[:, :n], layer.weight[:, n:]
    # float32 under a bfloat16 autocast: a fitted code's small steps must reach f, and adding
    # a float32 code term to a bfloat16 product is slower than this whole layer in float32
    with torch.autocast(per_point.device.type, enabled=False):
        shape_term = F.linear(per_shape.float(), w_shape, layer.bias)  # (B, H)
        return F.linear(per_point.float(), w_point).add_(shape_term.unsqueeze(1))  # linear's backward needs no output


def _leaky_relu(h: torch.Tensor, slope: float) -> torch.Tensor:
    """In place at inference: on CPU, allocating a fresh (points x width) tensor per layer
    costs as much as the layer's matmul."""
    return F.leaky_relu(h, slope) if torch.is_grad_enabled() else F.leaky_relu_(h, slope)


def _full_precision(layer: nn.Linear, h: torch.Tensor) -> torch.Tensor:
    """The output layer in float32 under a reduced-precision autocast: bfloat16 keeps 8
    significant bits, too coarse for occupancy near the 0.5 level marching cubes
    interpolates, and this layer is a tiny share of the work."""
    with torch.autocast(h.device.type, enabled=False):
        return layer(h.float())


class Encoder(nn.Module):
    """PointNet: shared per-point MLP, max-pool, FC layers -> shape code z.

    Input (B, N, 3) points, or (B, N, 6) points and normals with `encoder_normals`.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        widths = (6 if cfg.encoder_normals else 3, *cfg.encoder_widths)
        self.point_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        fc = (widths[-1], *cfg.encoder_fc, cfg.code_dim)
        self.fc_layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(fc[:-1], fc[1:]))

    def forward(self, points: torch.Tensor) -> torch.Tensor:
        if points.shape[-1] != self.point_layers[0].in_features:
            raise ValueError(f"E expects {self.point_layers[0].in_features} values per point, got {points.shape[-1]}")
        h = points
        for layer in self.point_layers:
            h = F.relu(layer(h))
        h = h.max(dim=1).values
        for i, layer in enumerate(self.fc_layers):
            h = layer(h)
            if i < len(self.fc_layers) - 1:
                h = F.relu(h)
        return h


class PartEmbedding(nn.Module):
    """f(x, z) -> o in [0,1]^k, one sigmoid branch per part (BAE-NET).

    With `f_frequencies` L > 0, x enters as (x, sin(2^l pi x), cos(2^l pi x)) for l < L: a
    shallow ReLU network of CPU size blurs boards a few voxels thick into the part they
    touch, and these features let it resolve them.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.register_buffer("frequencies", torch.pi * 2.0 ** torch.arange(cfg.f_frequencies), persistent=False)
        n_point = 3 + 6 * cfg.f_frequencies
        widths = (n_point + cfg.code_dim, *cfg.f_hidden, cfg.n_parts)
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        _init_point_columns(self.layers[0], n_point)
        self.slope = cfg.leaky_slope

    def point_features(self, x: torch.Tensor) -> torch.Tensor:
        if not len(self.frequencies):
            return x
        a = (x[..., None] * self.frequencies).flatten(-2)  # (..., 3 L)
        return torch.cat([x, torch.sin(a), torch.cos(a)], dim=-1)

    def forward(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = _split_linear(self.layers[0], self.point_features(x), z)
        for layer in self.layers[1:-1]:
            h = layer(_leaky_relu(h, self.slope))
        return torch.sigmoid(_full_precision(self.layers[-1], _leaky_relu(h, self.slope)))


class InverseImplicit(nn.Module):
    """g(o, z) -> x: hidden FC layers with the input re-injected before layer `g_skip`, tanh out."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        d_in = cfg.n_parts + cfg.code_dim
        self.skip = cfg.g_skip
        self.layers = nn.ModuleList()
        for i in range(cfg.g_layers):
            fan_in = d_in if i == 0 else cfg.g_width + (d_in if i == cfg.g_skip and i > 0 else 0)
            self.layers.append(nn.Linear(fan_in, cfg.g_width))
        self.out = nn.Linear(cfg.g_width, 3)
        _init_point_columns(self.layers[0], cfg.n_parts)
        self.slope = cfg.leaky_slope

    def forward(self, o: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = _split_linear(self.layers[0], o, z)
        for i, layer in enumerate(self.layers[1:], start=1):
            h = _leaky_relu(h, self.slope)
            if i == self.skip:
                h = _split_linear(layer, torch.cat([h, o], dim=-1), z)
            else:
                h = layer(h)
        return torch.tanh(_full_precision(self.out, _leaky_relu(h, self.slope)))


class ImplicitCorrespondenceNet(nn.Module):
    """E, f and g together, with the few compositions the losses and the engine need."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.f = PartEmbedding(cfg)
        self.g = InverseImplicit(cfg)

    def encode(self, points: torch.Tensor) -> torch.Tensor:
        return self.encoder(points)

    def embed(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.f(x, z)

    def invert(self, o: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return self.g(o, z)

    @staticmethod
    def occupancy(o: torch.Tensor) -> torch.Tensor:
        """Occupancy is the max over part branches."""
        return o.max(dim=-1).values


def with_encoder_normals(net: ImplicitCorrespondenceNet) -> ImplicitCorrespondenceNet:
    """The same network with E's input widened to points and normals.

    The normals' weights start at 0, so the widened network computes what the given one
    did until training teaches E to use them (a fine-tune, not a new run).
    """
    if net.cfg.encoder_normals:
        return net
    wide = ImplicitCorrespondenceNet(net.cfg.with_(encoder_normals=True)).to(next(net.parameters()).device)
    state = net.state_dict()
    first = wide.encoder.point_layers[0].weight
    state["encoder.point_layers.0.weight"] = torch.cat([state["encoder.point_layers.0.weight"],
                                                        torch.zeros_like(first[:, 3:])], dim=1)
    wide.load_state_dict(state)
    return wide.train(net.training)
