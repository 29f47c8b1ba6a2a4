"""Feature dashboards: streaming statistics over an activation store, written to the dashboards DB."""

from interplab.dashboards.build import BuildResult, build_dashboards
from interplab.dashboards.config import DashboardConfig

__all__ = ["BuildResult", "DashboardConfig", "build_dashboards"]
