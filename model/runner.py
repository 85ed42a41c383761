"""E, f and g on numpy arrays, on one device, in bounded chunks."""
from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch

from .networks import ImplicitCorrespondenceNet


# Points per forward pass by device: on CPU a chunk whose activations stay in cache runs
# twice as fast as 16,384 points; a GPU wants large launches.
CPU_CHUNK = 4096
GPU_CHUNK = 65536


def default_device() -> str:
    return "cuda" if torch.cuda.is_available() else "cpu"


def default_chunk(device: torch.device) -> int:
    return CPU_CHUNK if device.type == "cpu" else GPU_CHUNK


def has_bfloat16_units(device: torch.device) -> bool:
    """A CPU with AMX tiles runs f and g's hidden layers in bfloat16 at several times
    float32's speed; with AVX-512 BF16 alone a whole correspond is slower than in float32
    (docs/model.md, Speed), and without either bfloat16 is emulated."""
    return device.type == "cpu" and bool(torch.cpu.get_capabilities().get("amx_bf16"))


def branch_logits(emb: np.ndarray) -> np.ndarray:
    """The logits behind f's branch outputs (sigmoids), clipped away from 0 and 1."""
    p = np.clip(emb.astype(np.float64), 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def biased(emb: np.ndarray, bias: np.ndarray) -> np.ndarray:
    """sigmoid(logit(emb) + bias), on the branches with an offset only (the rest unchanged)."""
    if not bias.any():
        return emb
    out = emb.copy()
    cols = np.flatnonzero(bias)
    out[:, cols] = 1.0 / (1.0 + np.exp(-(branch_logits(emb[:, cols]) + bias[cols])))
    return out


class Runner:
    """The network on `device`; every call takes and returns numpy arrays.

    `part_bias` are logit offsets of f's branches (set at export: training.export): `embed`
    adds them, for every part decision; `invert` takes them off again, as g was trained
    on f's own output.
    """

    def __init__(self, net: ImplicitCorrespondenceNet, device: torch.device, chunk: int | None,
                 part_bias: np.ndarray):
        self.net = net.to(device).eval()
        self.device = device
        self.chunk = chunk or default_chunk(device)
        self.part_bias = part_bias
        self.bfloat16 = has_bfloat16_units(device)
        self.on_chunk: Callable[[int, int], None] | None = None  # (points done, points in the pass)
        self.step_name = ""  # what the passes that follow are for (`step`)

    def step(self, name: str) -> None:
        """Name the passes that follow for progress reports, and report their start: also
        work between passes (a nearest-neighbour search) shows as a step of its own."""
        self.step_name = name
        if self.on_chunk is not None:
            self.on_chunk(0, 1)

    def precision(self) -> contextlib.AbstractContextManager:
        """The context f and g run in: bfloat16 hidden layers where the CPU has AMX (the
        first and output layers stay float32: networks.py), float32 elsewhere."""
        return torch.autocast("cpu", torch.bfloat16) if self.bfloat16 else contextlib.nullcontext()

    def tensor(self, a: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(np.ascontiguousarray(a), dtype=torch.float32, device=self.device)

    @torch.no_grad()
    def encode(self, encoder_points: np.ndarray) -> torch.Tensor:
        return self.net.encode(self.tensor(encoder_points)[None])

    @torch.no_grad()
    def f(self, points: np.ndarray, code: torch.Tensor) -> np.ndarray:
        """f's own output (occupancy: its max over the branches)."""
        with self.precision():
            out = self._chunked(lambda part: self.net.embed(part, code), points)
        return torch.cat(out).numpy() if out else np.zeros((0, self.net.cfg.n_parts), np.float32)

    @torch.no_grad()
    def g(self, emb: np.ndarray, code: torch.Tensor) -> np.ndarray:
        with self.precision():
            out = self._chunked(lambda part: self.net.invert(part, code), emb)
        return torch.cat(out).numpy().astype(np.float64)

    def _chunked(self, fn: Callable[[torch.Tensor], torch.Tensor], rows: np.ndarray) -> list[torch.Tensor]:
        """fn over the rows in chunks, each chunk reported to `on_chunk` when set."""
        out = []
        for i in range(0, len(rows), self.chunk):
            out.append(fn(self.tensor(rows[i : i + self.chunk])[None])[0].cpu())
            if self.on_chunk is not None:
                self.on_chunk(min(i + self.chunk, len(rows)), len(rows))
        return out

    def embed(self, points: np.ndarray, code: torch.Tensor) -> np.ndarray:
        """The part embedding parts are decided by: f with the offsets added."""
        return biased(self.f(points, code), self.part_bias)

    def invert(self, emb: np.ndarray, code: torch.Tensor) -> np.ndarray:
        """g of an embedding from `embed`."""
        return self.g(biased(emb, -self.part_bias), code)

    def unbiased(self, emb: np.ndarray) -> np.ndarray:
        """An embedding from `embed` as f gave it: positions within parts are f's own."""
        return biased(emb, -self.part_bias)
