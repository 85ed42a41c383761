"""The engine's label rules (model/labels.py), from the copy bundled in the built extension
or from the repository: one implementation for the engine, the add-on and the CLI."""
try:
    from .vendor.labels import PALETTE, label_colors, nearest_corner, slivers  # inside the built extension
except ImportError:  # running from a checkout
    from model.labels import PALETTE, label_colors, nearest_corner, slivers

__all__ = ["PALETTE", "label_colors", "nearest_corner", "slivers"]
