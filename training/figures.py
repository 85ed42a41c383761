"""Pictures for the model card: part labels transferred from a procedural source shape
onto the real PSB meshes of the same category (needs matplotlib: pip install -e .[docs]).

    python -m training.figures --category chair --out docs/images/chair_psb_transfer.png
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from model import Correspondence

from .families import PART_NAMES, sample_shape
from .prepare import find_meshes, load_psb_upright, mesh_name

PART_COLORS = np.array([[0.90, 0.30, 0.25], [0.25, 0.55, 0.90], [0.30, 0.75, 0.35], [0.95, 0.70, 0.15],
                        [0.60, 0.35, 0.75], [0.20, 0.75, 0.75]])
NO_MATCH = np.array([0.6, 0.6, 0.6])


def pyplot():
    """matplotlib's pyplot, drawing off screen (imported late: matplotlib is an optional extra)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def render_grid(meshes, face_colors, titles, out: Path, cols: int = 4) -> None:
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    plt = pyplot()

    rows = (len(meshes) + cols - 1) // cols
    fig = plt.figure(figsize=(3 * cols, 3.2 * rows))
    for i, ((v, f), colors, title) in enumerate(zip(meshes, face_colors, titles)):
        ax = fig.add_subplot(rows, cols, i + 1, projection="3d")
        # model frame (+Y up, front -Z) shown with Y as the vertical axis, seen from the front-left
        tri = v[f][:, :, [0, 2, 1]] * [1, -1, 1]
        light = np.abs(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) @ np.array([0.4, -0.6, 0.7]))
        light = light / (np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1) + 1e-12)
        shade = colors * (0.45 + 0.55 * light[:, None])
        ax.add_collection3d(Poly3DCollection(tri, facecolors=np.clip(shade, 0, 1), linewidths=0))
        lo, hi = tri.reshape(-1, 3).min(0), tri.reshape(-1, 3).max(0)
        c, r = (lo + hi) / 2, (hi - lo).max() / 2
        ax.set_xlim(c[0] - r, c[0] + r); ax.set_ylim(c[1] - r, c[1] + r); ax.set_zlim(c[2] - r, c[2] + r)
        ax.view_init(elev=18, azim=-60)
        ax.set_axis_off()
        ax.set_title(title, fontsize=9)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=90)


def transfer_figure(engine: Correspondence, category: str, psb: Path, out: Path, count: int = 7,
                    threshold: float = 0.05, seed: int = 4) -> None:
    source = sample_shape(category, np.random.default_rng([seed, 3]))
    sv, sf, slab = source.mesh()
    src = engine.prepare((sv, sf))
    meshes, colors, titles = [(src.points, sf)], [PART_COLORS[slab]], ["source (procedural)"]
    for path in find_meshes(psb / category)[:count]:
        mesh = load_psb_upright(path)
        v, f = np.asarray(mesh.vertices), np.asarray(mesh.faces)
        tgt = engine.prepare((v, f))
        vert_label, vert_conf = engine.transfer_labels(src, slab, tgt)  # per-face source labels
        face_label = vert_label[f[:, 0]]
        face_conf = vert_conf[f].mean(axis=1)
        col = np.where((face_conf >= threshold)[:, None], PART_COLORS[face_label], NO_MATCH)
        meshes.append((tgt.points, f))
        colors.append(col)
        titles.append(f"PSB {mesh_name(path)}")
    render_grid(meshes, colors, titles, out)


def main(argv: Iterable[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m training.figures", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--category", default="chair", choices=sorted(PART_NAMES))
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--psb", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data" / "psb")
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--count", type=int, default=7)
    args = ap.parse_args(list(argv) if argv is not None else None)
    engine = Correspondence.load(args.checkpoint, category=args.category if args.checkpoint is None else None)
    transfer_figure(engine, args.category, args.psb, args.out, args.count)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
