from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "e2e: starts a real Airflow (api-server, scheduler, dag-processor, triggerer, workers)"
    )
