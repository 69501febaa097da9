"""What an operator is told: store URLs with their password masked, and the warning for an open server."""

from __future__ import annotations

import ipaddress
import re

from workflows_server.guard.refuse import env

MASK = "***"
_SECRET_PARAMS = re.compile(r"([?&](?:password|passwd|pwd|sslpassword|secret|token)=)[^&#]*", re.IGNORECASE)


def mask_url(url: str) -> str:
    """``url`` with any password in it replaced by ``***`` (in ``user:password@`` and in
    ``?password=`` style parameters); other URLs come back unchanged."""
    scheme, sep, rest = url.partition("://")
    if sep:
        authority, slash, tail = _split_authority(rest)
        credentials, at, host = authority.rpartition("@")
        if at and ":" in credentials:
            user = credentials.split(":", 1)[0]
            rest = f"{user}:{MASK}@{host}{slash}{tail}"
    return _SECRET_PARAMS.sub(lambda m: m.group(1) + MASK, scheme + sep + rest)


def _split_authority(rest: str) -> tuple[str, str, str]:
    # The authority ends at the first '/', '?' or '#' after the last '@' (a password may hold '/').
    start = rest.rfind("@") + 1
    for index in range(start, len(rest)):
        if rest[index] in "/?#":
            return rest[:index], rest[index], rest[index + 1:]
    return rest, "", ""


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
