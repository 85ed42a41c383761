"""The engine's label rules (model/labels.py), from the copy bundled in the built extension
or from the repository: one implementation for the engine, the add-on and the CLI."""
try:
    from .vendor.labels import PALETTE, face_areas, label_colors, nearest_corner, slivers, vertex_areas, vote  # inside the built extension
except ImportError:  # running from a checkout
    from model.labels import PALETTE, face_areas, label_colors, nearest_corner, slivers, vertex_areas, vote

__all__ = ["PALETTE", "face_areas", "label_colors", "nearest_corner", "slivers", "vertex_areas", "vote"]
