"""What a task instance keeps across tries in Airflow's ``task_state_store`` (Airflow >= 3.3).

Airflow 3.3 keeps that state past a success (``[state_store] clear_on_success`` is off by default), so
an operator tells a retry (take the earlier try's job or run over) from a cleared task (start anew) by
the mark the returning try leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

FINISHED = "finished"


def mark_finished(store: Any, key: str) -> None:
    """The try is returning: a later run of this task instance is a cleared task, not a retry."""
    saved = store.get(key) if store is not None else None
    if isinstance(saved, Mapping):
        store.set(key, {**saved, FINISHED: True})


def was_finished(saved: Mapping[str, Any]) -> bool:
    """Whether the try that saved this returned (see ``mark_finished``)."""
    return bool(saved.get(FINISHED))
