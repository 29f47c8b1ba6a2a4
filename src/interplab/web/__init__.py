"""The web UI and JSON API over a dashboards database and a reports folder (`interplab serve`)."""

from interplab.web.app import create_app
from interplab.web.guards import GuardConfig

__all__ = ["GuardConfig", "create_app"]
