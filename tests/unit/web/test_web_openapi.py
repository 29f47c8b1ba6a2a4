"""The committed OpenAPI file matches the app's schema."""

from __future__ import annotations

import json

from interplab.web.openapi import OPENAPI_PATH, REGENERATE, openapi_text


def test_committed_openapi_file_matches_the_app() -> None:
    committed = OPENAPI_PATH.read_text(encoding="utf-8") if OPENAPI_PATH.exists() else ""
    assert openapi_text() == committed, (
        f"the API schema drifted from {OPENAPI_PATH.name}; if the change is intended, regenerate it with "
        f"`{REGENERATE}` and commit the diff")


def test_openapi_documents_the_api_only(client) -> None:
    schema = json.loads(OPENAPI_PATH.read_text(encoding="utf-8"))
    assert schema["paths"] and all(p.startswith("/api/") for p in schema["paths"])
    assert client.get("/api/openapi.json").json()["paths"].keys() == schema["paths"].keys()
    assert client.get("/docs").status_code == 404  # Swagger UI would load assets from a CDN
