"""Feature dashboards: streaming statistics over an activation store, written to the dashboards DB (db.py).

The builder (build.py) needs the model stack (transformers), so it is imported on first use: the web
server, which only reads the database, starts without loading it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from interplab.dashboards.config import DashboardConfig
from interplab.dashboards.db import (
    DashboardDB,
    ExampleRecord,
    ExplanationRecord,
    FeatureHit,
    FeaturePage,
    FeatureRecord,
    MetaRecord,
    SaeRecord,
    database_url,
)
from interplab.dashboards.db_access import masked_url, model_location, sae_locations

if TYPE_CHECKING:
    from interplab.dashboards.build import BuildResult, build_dashboards
    from interplab.dashboards.meta_links import add_meta_latents

_LAZY = {"BuildResult", "build_dashboards"}
_LAZY_META = {"add_meta_latents"}

__all__ = [
    "BuildResult",
    "DashboardConfig",
    "DashboardDB",
    "ExampleRecord",
    "ExplanationRecord",
    "FeatureHit",
    "FeaturePage",
    "FeatureRecord",
    "MetaRecord",
    "SaeRecord",
    "add_meta_latents",
    "build_dashboards",
    "database_url",
    "masked_url",
    "model_location",
    "sae_locations",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        from interplab.dashboards import build

        return getattr(build, name)
    if name in _LAZY_META:  # trains with torch: not loaded by the web server
        from interplab.dashboards import meta_links

        return getattr(meta_links, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
