"""The web UI and JSON API over a dashboards database and a reports folder (`interplab serve`)."""

from interplab.web.app import create_app
from interplab.web.guards import GuardConfig
from interplab.web.live import bound_malloc_arenas

__all__ = ["GuardConfig", "bound_malloc_arenas", "create_app"]
