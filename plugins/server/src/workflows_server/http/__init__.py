"""The HTTP face of the server: the routes (``routes``), their wire format (``wire``), and what
wraps every request (``middleware``: spans and errors; ``guard``: hosts, origins, headers,
sessions, request ids and input limits)."""
