"""The worker's web endpoints and live dashboard (served by Faust's web server)."""

from streams.web.views import WebState, register_web

__all__ = ["WebState", "register_web"]
