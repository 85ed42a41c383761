"""A folder of per-shape samples (.npz), split into training and validation shapes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from tqdm import tqdm

from .families import FAMILIES
from .prepare import prepare_procedural
from .samples import load_sample


class ShapeDataset:
    def __init__(self, folder: Path, val_fraction: float = 0.1, seed: int = 123, limit: int = 0,
                 progress: bool = True):
        files = sorted(Path(folder).glob("*.npz"))
        if not files:
            raise FileNotFoundError(f"no .npz samples in {folder}; make them with `python -m training.prepare`")
        if limit:
            files = files[:limit]
        self.names = [f.stem for f in files]
        samples = []
        for f in tqdm(files, desc="load samples", unit="shape", leave=False, disable=not progress or len(files) < 200):
            samples.append(load_sample(f))
        order = np.random.default_rng(seed).permutation(len(samples))
        n_val = int(round(len(samples) * val_fraction)) if len(samples) > 2 else 0
        self.val_ids = sorted(order[:n_val].tolist())
        self.train_ids = sorted(order[n_val:].tolist())
        self.train = [samples[i] for i in self.train_ids]
        self.val = [samples[i] for i in self.val_ids]


def ensure_data(category: str, folder: Path, count: int, progress: bool = True) -> None:
    """Generate a procedural family into `folder` when it holds no samples yet."""
    if folder.is_dir() and any(folder.glob("*.npz")):
        return
    if category not in FAMILIES:
        raise FileNotFoundError(
            f"no samples in {folder} and no procedural family {category!r}; prepare your meshes with "
            f"`python -m training.prepare --meshes DIR --out {folder}`")
    print(f"no samples in {folder}: generating {count} procedural {category} shapes")
    prepare_procedural(category, count, folder, progress=progress)
