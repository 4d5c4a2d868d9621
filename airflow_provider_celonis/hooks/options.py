"""The provider's own settings, Airflow's ``[celonis]`` section: read where they are used, with defaults.

They are read through Airflow's configuration (``airflow.cfg`` or ``AIRFLOW__CELONIS__<NAME>``); a plain
script without a usable Airflow configuration gets the defaults.
"""

from __future__ import annotations


def celonis_option(name: str, default: float) -> float:
    """``[celonis] <name>`` as a number, ``default`` when unset or when no Airflow configuration is at hand."""
    try:
        from airflow.configuration import conf

        return conf.getfloat("celonis", name, fallback=default)
    except Exception:  # noqa: BLE001 - no usable Airflow configuration: the default
        return default
