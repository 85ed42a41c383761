"""CurveZMQ for a keyed server (`--curve`): each connection's handshake authenticates both
ends and encrypts what follows, so a peer without the key gets no message read at all (the
signed messages of protocol.py are refused only once ZeroMQ has read them whole).

Both ends derive their key pairs from the shared key, so there is nothing more to hand out:
each side's Curve25519 secret key is HMAC-SHA256(key, "corr-curve-server" or
"corr-curve-client") Z85-encoded, and its public key follows from it.  A client written in
another language derives the same pairs.  The server admits only the client public key
derived from its own key (a ZAP handler).
"""
from __future__ import annotations

import hashlib
import hmac
import os

import zmq
from zmq.utils import z85

SIDES = ("server", "client")
ZAP_DOMAIN = "corr"
ENVIRONMENT = "CORR_SERVER_CURVE"  # "1" turns CurveZMQ on for a client, and for a server as --curve does
TRUE_WORDS = ("1", "true", "yes", "on")

# what a client's socket monitor reports of a handshake that went wrong
HANDSHAKE_FAILED = zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL | zmq.EVENT_HANDSHAKE_FAILED_AUTH | \
    zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL


def in_environment() -> bool:
    """Whether CORR_SERVER_CURVE asks for CurveZMQ."""
    return os.environ.get(ENVIRONMENT, "").strip().lower() in TRUE_WORDS


def key_pair(key: str | bytes, side: str) -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys of `side` ("server" or "client") for the shared `key`."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    if not key:
        raise ValueError("CurveZMQ needs the key shared with the " + ("client" if side == "server" else "server"))
    if not zmq.has("curve"):
        raise ValueError(f"this pyzmq (libzmq {zmq.zmq_version()}) was built without CurveZMQ")
    raw = key if isinstance(key, bytes) else key.encode("utf-8")
    secret = z85.encode(hmac.new(raw, f"corr-curve-{side}".encode(), hashlib.sha256).digest())
    return zmq.curve_public(secret), secret


class _OnlyOurClient:
    """ZAP credentials: the one client public key the shared key derives."""

    def __init__(self, client_public: bytes):
        self.client_public = client_public

    def callback(self, domain: str, key: bytes) -> bool:
        return hmac.compare_digest(key, self.client_public)


def serve(sock: zmq.Socket, key: str):
    """Make `sock` (before it binds) a CurveZMQ server that admits only clients holding
    `key`.  Returns the started authenticator: stop it before the socket's context ends."""
    from zmq.auth.thread import ThreadAuthenticator

    public, secret = key_pair(key, "server")
    auth = ThreadAuthenticator(sock.context)
    auth.start()
    auth.configure_curve_callback(ZAP_DOMAIN, credentials_provider=_OnlyOurClient(key_pair(key, "client")[0]))
    # without a ZAP handler libzmq admits any client key: with the domain enforced it admits none
    sock.zap_domain = ZAP_DOMAIN.encode()
    sock.setsockopt(zmq.ZAP_ENFORCE_DOMAIN, 1)
    sock.curve_server = True
    sock.curve_publickey, sock.curve_secretkey = public, secret
    return auth


def connect(sock: zmq.Socket, key: str) -> None:
    """Make `sock` (before it connects) a CurveZMQ client of a server holding `key`."""
    sock.curve_serverkey = key_pair(key, "server")[0]
    sock.curve_publickey, sock.curve_secretkey = key_pair(key, "client")


def handshake_error(event: int, value: int, address: str, curve: bool) -> str | None:
    """What a failed handshake (a socket monitor's event and value) means, said for the
    user; None for any other event.  Which side broke off first is a race, so a mismatch of
    mechanisms often reads as a bare failure: the message names both causes."""
    if not event & HANDSHAKE_FAILED:
        return None
    if event == zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL and value == zmq.EAGAIN:  # timed out: a slow or stalled peer
        return None
    mismatch = event == zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL and value == zmq.PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH
    if curve and mismatch:
        return (f"the server at {address} does not speak CurveZMQ (it was started without --curve): "
                "connect without curve (unset CORR_SERVER_CURVE)")
    if curve:
        return (f"the server at {address} refused this client's CurveZMQ handshake: check that this client "
                "has the server's key, and that the server was started with --curve")
    return (f"the handshake with the server at {address} failed: if it was started with --curve, it takes only "
            "clients with its key and curve=True (or CORR_SERVER_CURVE=1)")
