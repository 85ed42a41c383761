"""The server's client, from the copy bundled in the built extension or from the repository."""
try:
    from .vendor.client import DEFAULT_ADDRESS, Client, ServerError  # inside the built extension
except ImportError:  # running from a checkout
    from server.client import DEFAULT_ADDRESS, Client, ServerError

__all__ = ["DEFAULT_ADDRESS", "Client", "ServerError"]
