"""The server's client, from the copy bundled in the built extension or from the repository."""
try:
    from .vendor.client import DEFAULT_ADDRESS, LOW_CONFIDENCE, Client, ServerError, unlike_warning  # in the extension
    from .vendor.protocol import AUTO_CATEGORY
except ImportError:  # running from a checkout
    from server.client import DEFAULT_ADDRESS, LOW_CONFIDENCE, Client, ServerError, unlike_warning
    from server.protocol import AUTO_CATEGORY

import os

__all__ = ["AUTO_CATEGORY", "DEFAULT_ADDRESS", "LOW_CONFIDENCE", "Client", "ServerError", "default_address",
           "unlike_warning"]


def default_address() -> str:
    """CORR_SERVER_ADDRESS when set (batch jobs, tests), else the server's default."""
    return os.environ.get("CORR_SERVER_ADDRESS") or DEFAULT_ADDRESS
