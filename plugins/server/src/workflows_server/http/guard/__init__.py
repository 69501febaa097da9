"""What makes the server safe to expose to browsers and networks (docs/security.md, "Deploying the server").

Pure ASGI middleware and small functions, each module one job:

- ``hosts``: the ``Host`` header must name this server (against DNS rebinding);
- ``origins``: state-changing requests from another origin are refused (against CSRF),
  and bodies must be JSON;
- ``headers``: the security headers of every response (CSP, framing, sniffing, referrer);
- ``requests``: request ids (taken or made, echoed, on the span, in log lines) and the
  answer to an unexpected error;
- ``limits``: hostile input (NUL, JSON nesting, handler ids, integer ranges, search text)
  answered with a 4xx naming the field and the limit;
- ``sessions``: bearer tokens (full and read-only) and the debugger's login session cookie;
- ``exposure``: store URLs with their password masked, the warning for an open server.
"""

from __future__ import annotations

from workflows_server.http.guard.exposure import exposure_warning, mask_url
from workflows_server.http.guard.headers import SecurityHeaders
from workflows_server.http.guard.hosts import HostCheck, allowed_hosts
from workflows_server.http.guard.limits import InputCheck, check_handler_id, integer_param, parse_json, search_text
from workflows_server.http.guard.origins import CrossSiteCheck
from workflows_server.http.guard.requests import RequestIds, RequestIdFilter, current_request_id, log_config
from workflows_server.http.guard.sessions import Auth, Sessions

__all__ = [
    "Auth",
    "CrossSiteCheck",
    "HostCheck",
    "InputCheck",
    "RequestIdFilter",
    "RequestIds",
    "SecurityHeaders",
    "Sessions",
    "allowed_hosts",
    "check_handler_id",
    "current_request_id",
    "exposure_warning",
    "integer_param",
    "log_config",
    "mask_url",
    "parse_json",
    "search_text",
]
