"""Build test DAGs from Python objects instead of source strings (the ``make_dag`` fixture in tests/conftest.py).

Airflow 3's ``dag.test()`` needs the DAG in a file of the DAGs folder. The file written here holds no test
logic: it looks its operator class and keyword arguments up in ``SPECS`` by DAG id, so a test passes real
objects (a callable, a DataFrame, a ``Path``) rather than text patched with ``.replace()``. A DAG of several
tasks comes from a function that creates them (``tasks=``), called inside the DAG's context.
"""

from __future__ import annotations

import datetime
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.helpers import load_dag

#: DAG id -> what to build; filled by the fixture, read by the DAG file when Airflow imports it.
SPECS: dict[str, DagSpec] = {}

# The docstring names "airflow" and "dag": Airflow's safe-mode parse skips files that mention neither.
DAG_FILE = """\
\"\"\"An Airflow DAG built by tests/dag_builder.py from the objects a test passed.\"\"\"

from tests.dag_builder import build

dag = build({dag_id!r}, __file__)
"""


@dataclass
class DagSpec:
    """One task ``operator(task_id=task_id, **kwargs)``, or whatever ``tasks()`` creates."""

    operator: type | None
    task_id: str
    kwargs: dict[str, Any]
    dag_kwargs: dict[str, Any] = field(default_factory=dict)
    tasks: Callable[[], object] | None = None


def build(dag_id: str, fileloc: str) -> Any:
    """The DAG of ``SPECS[dag_id]``: its task(s), no schedule, started 2024-01-01.

    Its ``fileloc`` is the DAG file (not this module), as for a DAG written by hand: templates are then
    found next to it in the DAGs folder.
    """
    from airflow.sdk import DAG

    spec = SPECS.get(dag_id)
    if spec is None:
        raise RuntimeError(
            f"DAG {dag_id} was built by make_dag in another process: its objects live only there. dag.test() "
            "runs tasks in that process; a real scheduler or executor needs a real DAG file (see tests/e2e)"
        )
    dag_kwargs: dict[str, Any] = {
        "schedule": None,
        "start_date": datetime.datetime(2024, 1, 1),
        "catchup": False,
    }
    dag_kwargs.update(spec.dag_kwargs)
    with DAG(dag_id, **dag_kwargs) as dag:
        if spec.tasks is not None:
            spec.tasks()
        elif spec.operator is not None:
            spec.operator(task_id=spec.task_id, **spec.kwargs)
    dag.fileloc = fileloc
    return dag


@contextmanager
def dag_file(
    operator: type | None = None,
    *,
    task_id: str = "push",
    tasks: Callable[[], object] | None = None,
    dag_kwargs: dict[str, Any] | None = None,
    **operator_kwargs: Any,
) -> Iterator[Any]:
    """Write a DAG file for these objects into the DAGs folder and load it; removed again on exit.

    ``operator`` (default ``DataPushOperator``) with ``operator_kwargs`` as task ``task_id``, or the tasks
    ``tasks()`` creates. The ``make_dag`` fixture is this for one test; a module-scoped fixture uses it directly.
    """
    if tasks is not None and (operator is not None or operator_kwargs):
        raise TypeError("give tasks= or an operator and its arguments, not both")
    if operator is None and tasks is None:
        from airflow_provider_celonis.operators.data_push import DataPushOperator

        operator = DataPushOperator
    dag_id = f"t_{uuid.uuid4().hex[:10]}"
    SPECS[dag_id] = DagSpec(operator, task_id, operator_kwargs, dag_kwargs or {}, tasks)
    path = Path(os.environ["AIRFLOW__CORE__DAGS_FOLDER"]) / f"{dag_id}.py"
    path.write_text(DAG_FILE.format(dag_id=dag_id))
    try:
        yield load_dag(path, dag_id)
    finally:
        SPECS.pop(dag_id, None)
        path.unlink(missing_ok=True)
