"""Apache Airflow provider for Celonis."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    # One source of truth: the version in pyproject.toml, as installed (also for an editable install).
    __version__ = version("airflow-provider-celonis")
except PackageNotFoundError:  # a source tree on sys.path that was never installed
    __version__ = "0.0.0+unknown"
