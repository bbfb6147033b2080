"""Serving: the HTTP server, the landing page, the runbooks and the container healthcheck."""
