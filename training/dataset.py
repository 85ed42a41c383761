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
        self.train_ids, self.val_ids = split(len(samples), val_fraction, seed)
        self.train = [samples[i] for i in self.train_ids]
        self.val = [samples[i] for i in self.val_ids]


def split(n: int, val_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """-> (training, validation) indices of n samples, seeded."""
    order = np.random.default_rng(seed).permutation(n)
    n_val = int(round(n * val_fraction)) if n > 2 else 0
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


def validation_labels(folder: Path, val_fraction: float, seed: int) -> tuple[list[np.ndarray], int]:
    """The part labels of the validation shapes `ShapeDataset` would hold out, and how many
    samples there are, read without loading the rest of each sample."""
    files = sorted(Path(folder).glob("*.npz"))
    _, val_ids = split(len(files), val_fraction, seed)
    labels = []
    for i in val_ids:
        with np.load(files[i]) as npz:
            labels.append(npz["surface_labels"] if "surface_labels" in npz.files else np.full(1, -1))
    return labels, len(files)


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
