"""What an operator is told: store URLs with their password masked (``store.urls``), and the warning for an open server."""

from __future__ import annotations

import ipaddress

from workflows_server.http.guard.refuse import env
from workflows_server.store.urls import MASK, mask_url

def is_loopback(host: str) -> bool:
    """Whether listening on ``host`` keeps the server reachable from this machine only."""
    name = host.strip("[]").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def exposure_warning(host: str, token: str | None) -> str | None:
    """The warning to print when the server listens beyond loopback with no token, else ``None``."""
    if token or is_loopback(host):
        return None
    return (
        f"listening on {host}, reachable from other machines, with no token: anyone who can reach this port can "
        f"start, answer and cancel runs and read every run. Set {env('token')} (and {env('read_token')} for "
        "read-only viewers), or listen on 127.0.0.1."
    )


__all__ = ["MASK", "exposure_warning", "is_loopback", "mask_url"]
