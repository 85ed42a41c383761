"""The server's client, from the copy bundled in the built extension or from the repository."""
try:
    from .vendor.client import (DEFAULT_ADDRESS, LOW_CONFIDENCE, Client, ServerError,  # in the extension
                                key_from_file, unlike_warning)
    from .vendor.protocol import AUTO_CATEGORY
except ImportError:  # running from a checkout
    from server.client import DEFAULT_ADDRESS, LOW_CONFIDENCE, Client, ServerError, key_from_file, unlike_warning
    from server.protocol import AUTO_CATEGORY

import os

__all__ = ["AUTO_CATEGORY", "DEFAULT_ADDRESS", "LOW_CONFIDENCE", "Client", "ServerError", "connection",
           "default_address", "unlike_warning"]


def default_address() -> str:
    """CORR_SERVER_ADDRESS when set (batch jobs, tests), else the server's default."""
    return os.environ.get("CORR_SERVER_ADDRESS") or DEFAULT_ADDRESS


def connection(key_file: str = "", curve: bool = False) -> dict:
    """The Client's `secret` and `curve` for the preferences' key file (empty: the key in
    CORR_SERVER_SECRET, if any) and CurveZMQ box (unticked: as CORR_SERVER_CURVE says).
    A key file others can read, or without a key, raises ValueError."""
    return {"secret": key_from_file(key_file) if key_file else None, "curve": True if curve else None}
