"""Store URLs as they may be shown: with any password masked (banner, ``/api/replica``, logs, errors)."""

from __future__ import annotations

import re

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


__all__ = ["MASK", "mask_url"]
