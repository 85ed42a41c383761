"""The one config object that describes a network and travels inside every checkpoint."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class ModelConfig:
    """Sizes of E, f and g.  The defaults are the paper's network."""

    code_dim: int = 256  # shape code z
    n_parts: int = 12  # branches k of the part embedding f
    encoder_widths: tuple[int, ...] = (64, 64, 64, 128, 1024)  # per-point layers of E
    encoder_fc: tuple[int, ...] = (512,)  # FC layers after the max-pool, before code_dim
    f_hidden: tuple[int, ...] = (3072, 384)  # f: concat(x, z) -> ... -> n_parts
    f_frequencies: int = 0  # octaves of sin/cos features of x added to f's input (0: the paper's f)
    g_width: int = 512
    g_layers: int = 8  # hidden FC layers of g
    g_skip: int = 4  # the input is re-concatenated before this hidden layer (0-based: the 5th)
    leaky_slope: float = 0.02
    encoder_points: int = 2048  # surface points E sees per shape
    # E also sees each point's outward normal, estimated from the points (model/normals.py):
    # without it E's max-pooled coordinates miss thin parts inside the hull (a table's
    # apron, an airplane's engines); False is the paper's E
    encoder_normals: bool = False

    def __post_init__(self) -> None:
        for name in ("code_dim", "n_parts", "g_width", "g_layers", "encoder_points"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"ModelConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0 <= self.f_frequencies <= 12:
            raise ValueError(f"ModelConfig.f_frequencies must be in [0, 12], got {self.f_frequencies}")
        if self.n_parts < 2:
            raise ValueError(f"ModelConfig.n_parts must be >= 2, got {self.n_parts}")
        if not 0 <= self.g_skip < self.g_layers:
            raise ValueError(f"ModelConfig.g_skip must be in [0, g_layers), got {self.g_skip}")
        if not self.encoder_widths or not self.f_hidden:
            raise ValueError("ModelConfig.encoder_widths and f_hidden must not be empty")

    def to_dict(self) -> dict[str, Any]:
        """Plain Python types only, so a checkpoint loads with weights_only=True."""
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "ModelConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown model config keys: {sorted(unknown)}")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)

    def with_(self, **changes: Any) -> "ModelConfig":
        return replace(self, **changes)


PRESETS: dict[str, ModelConfig] = {
    # The network of the paper (about 4.9 M parameters).
    "paper": ModelConfig(),
    # A CPU-sized network with the same architecture, for training inside a session and for tests.
    "small": ModelConfig(
        code_dim=128,
        encoder_widths=(64, 64, 128, 256),
        encoder_fc=(256,),
        f_hidden=(1024, 256),
        g_width=256,
        encoder_points=1024,
    ),
    # Tiny: unit tests that train for seconds.
    "tiny": ModelConfig(
        code_dim=64,
        n_parts=8,
        encoder_widths=(32, 64, 128),
        encoder_fc=(128,),
        f_hidden=(256, 64),
        g_width=128,
        g_layers=6,
        g_skip=3,
        encoder_points=512,
    ),
}


def preset(name: str) -> ModelConfig:
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
