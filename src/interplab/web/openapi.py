"""The committed OpenAPI schema of the JSON API: `python -m interplab.web.openapi` rewrites web/openapi.json.

A unit test compares the app's schema with the committed file, so an API change shows up in review as a
diff of openapi.json (regenerate it with the command above when the change is intended).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

OPENAPI_PATH = Path(__file__).parent / "openapi.json"
REGENERATE = "PYTHONPATH=src python -m interplab.web.openapi"


def openapi_text() -> str:
    """The app's OpenAPI schema, pretty-printed with sorted keys (stable across runs)."""
    from interplab.dashboards.db import DashboardDB
    from interplab.web.app import create_app

    db = DashboardDB("sqlite://")  # in memory: the schema does not depend on the data
    try:
        schema = create_app(db).openapi()
    finally:
        db.close()
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main() -> None:
    OPENAPI_PATH.write_text(openapi_text(), encoding="utf-8")
    sys.stderr.write(f"wrote {OPENAPI_PATH}\n")


if __name__ == "__main__":
    main()
