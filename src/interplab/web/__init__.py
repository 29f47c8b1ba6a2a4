"""The web UI and JSON API over a dashboards database and a reports folder (`interplab serve`)."""

from interplab.web.app import create_app

__all__ = ["create_app"]
