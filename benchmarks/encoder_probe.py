"""Can a PointNet of E's size tell from a shape's points that a thin part is there?

For procedural samples (`data/<category>`, seeds from the file names) it trains two
PointNets with the `small` preset's encoder widths to say whether the shape has the
category's thin part (table: an apron under the top; airplane: engines; chair: arms),
one on points alone (the paper's E) and one on points with the normals the engine
estimates from them (`--encoder_normals`), and prints their held-out accuracy beside the
base rate (always answering the commoner case), in one run:

    .venv/bin/python benchmarks/encoder_probe.py --category table [--epochs 40]

Every fifth shape is held out.  Takes about a minute per network on 2 CPU cores; the
samples need `estimated_normals` (training with `--encoder_normals` adds them).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from model.config import preset  # noqa: E402
from training.families import ARM, ENGINE, SUPPORT, sample_shape  # noqa: E402


def has_thin_part(category: str, seed: int) -> bool:
    parts = sample_shape(category, np.random.default_rng([seed, 7])).parts
    if category == "table":  # the apron: boards as tall as the generator's 0.08 under the top
        return any(p.label == SUPPORT and p.size[1] == 0.08 for p in parts)
    thin = {"airplane": ENGINE, "chair": ARM}[category]
    return any(p.label == thin for p in parts)


def pointnet(inputs: int) -> nn.Module:
    cfg = preset("small")
    widths = (inputs, *cfg.encoder_widths)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.ModuleDict({"points": nn.Sequential(*layers),
                          "head": nn.Sequential(nn.Linear(widths[-1], 256), nn.ReLU(), nn.Linear(256, 1))})


def accuracy(points: torch.Tensor, labels: torch.Tensor, held_out: torch.Tensor, epochs: int, n: int) -> float:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    net = pointnet(points.shape[-1])
    opt = torch.optim.Adam(net.parameters(), 1e-3)

    def logits(ids: torch.Tensor) -> torch.Tensor:
        pick = torch.as_tensor(np.stack([rng.choice(points.shape[1], n, replace=False) for _ in ids]))
        x = torch.gather(points[ids], 1, pick[..., None].expand(-1, -1, points.shape[-1]))
        return net["head"](net["points"](x).max(dim=1).values)[:, 0]

    train = torch.nonzero(~held_out)[:, 0]
    for _ in range(epochs):
        for batch in train[torch.randperm(len(train))].split(32):
            opt.zero_grad()
            nn.functional.binary_cross_entropy_with_logits(logits(batch), labels[batch]).backward()
            opt.step()
    with torch.no_grad():
        test = torch.nonzero(held_out)[:, 0]
        return float(((logits(test) > 0).float() == labels[test]).float().mean())


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--category", default="table", choices=("table", "airplane", "chair"))
    ap.add_argument("--data_dir", default="")
    ap.add_argument("--epochs", type=int, default=40)
    args = ap.parse_args()
    files = sorted(Path(args.data_dir or f"data/{args.category}").glob(f"{args.category}_*.npz"))
    if not files:
        print(f"no {args.category} samples in {args.data_dir or f'data/{args.category}'}", file=sys.stderr)
        return 1
    points, normals, labels = [], [], []
    for f in files:
        with np.load(f) as npz:
            if "estimated_normals" not in npz.files:
                print(f"{f} has no estimated_normals; train with --encoder_normals once first", file=sys.stderr)
                return 1
            points.append(npz["surface_points"])
            normals.append(npz["estimated_normals"])
        labels.append(has_thin_part(args.category, int(f.stem.rsplit("_", 1)[1])))
    xyz = torch.as_tensor(np.stack(points))
    with_normals = torch.cat([xyz, torch.as_tensor(np.stack(normals))], dim=-1)
    y = torch.as_tensor(labels, dtype=torch.float32)
    held_out = torch.arange(len(y)) % 5 == 0
    n = preset("small").encoder_points
    base = float(max(y[held_out].mean(), 1 - y[held_out].mean()))
    print(f"{args.category}: {len(y)} shapes, {int(y.sum())} with the thin part; held-out base rate {base:.3f}")
    for name, x in (("points", xyz), ("points + estimated normals", with_normals)):
        print(f"  {name:28s} held-out accuracy {accuracy(x, y, held_out, args.epochs, n):.3f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
