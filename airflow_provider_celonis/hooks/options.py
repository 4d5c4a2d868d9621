"""The provider's own settings, Airflow's ``[celonis]`` section: read where they are used, with defaults.

They are read through Airflow's configuration (``airflow.cfg`` or ``AIRFLOW__CELONIS__<NAME>``); a plain
script without a usable Airflow configuration gets the defaults. A lookup costs ~90 µs, and a triggerer
starting a thousand triggers at once would stall its event loop on them, so each value is kept per process
and read again only when its environment variable changes (``airflow.cfg`` is not re-read at run time).
"""

from __future__ import annotations

import os

_known: dict[tuple[str, float, str | None], float] = {}


def celonis_option(name: str, default: float) -> float:
    """``[celonis] <name>`` as a number, ``default`` when unset or when no Airflow configuration is at hand."""
    key = (name, default, os.environ.get(f"AIRFLOW__CELONIS__{name.upper()}"))
    found = _known.get(key)
    if found is None:
        found = _known[key] = _read(name, default)
    return found


def _read(name: str, default: float) -> float:
    try:
        from airflow.configuration import conf

        return conf.getfloat("celonis", name, fallback=default)
    except Exception:  # noqa: BLE001 - no usable Airflow configuration: the default
        return default
