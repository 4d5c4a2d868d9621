"""Apache Airflow provider for Celonis."""

from __future__ import annotations

__version__ = "0.1.0"
