"""Fixtures for the web app tests: one real database + SAE + reports folder per session, and a TestClient."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from interplab.web.app import create_app
from web_data import WebData, build_web_data, local_client


@pytest.fixture(scope="session")
def web_data(tmp_path_factory, tiny_model_dir) -> WebData:
    return build_web_data(tmp_path_factory.mktemp("web"), tiny_model_dir("gpt2"))


@pytest.fixture(scope="session")
def client(web_data: WebData) -> TestClient:
    app = create_app(web_data.db_path, reports_dir=web_data.reports_dir, device="cpu")
    return local_client(app)
