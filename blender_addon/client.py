"""The server's client, from the copy bundled in the built extension or from the repository."""
try:
    from .vendor.client import DEFAULT_ADDRESS, Client, ServerError  # inside the built extension
except ImportError:  # running from a checkout
    from server.client import DEFAULT_ADDRESS, Client, ServerError

import os

__all__ = ["DEFAULT_ADDRESS", "Client", "ServerError", "default_address"]


def default_address() -> str:
    """CORR_SERVER_ADDRESS when set (batch jobs, tests), else the server's default."""
    return os.environ.get("CORR_SERVER_ADDRESS") or DEFAULT_ADDRESS
