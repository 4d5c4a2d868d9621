"""The shared test fixtures do what other tests rely on: ``make_dag`` runs real objects, ``airflow_conn`` registers."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd
import pytest

from tests.helpers import POOL, EmulatorClient, task_states, xcom


@pytest.mark.usefixtures("celonis_conn")
def test_make_dag_runs_an_operator_built_from_objects(
    make_dag: Callable[..., Any], landed: EmulatorClient
) -> None:
    """A DataFrame and a callable pass through as objects (no source text); the run and the rows are checked."""
    frame = pd.DataFrame({"id": [1, 2, 3], "name": ["a", "b", "c"]})
    dag = make_dag(source=lambda: frame, target_table="harness", keys=["id"], poll_interval=0.2)
    run = dag.test()
    assert task_states(run) == {"push": "success"}
    assert sorted(r["id"] for r in landed.rows("harness")) == [1, 2, 3]
    assert xcom(run, "push")["rows"] == 3


def test_airflow_conn_splits_fields_from_extra(airflow_conn: Callable[..., str], emulator: Any) -> None:
    from airflow.sdk import Connection

    conn_id = airflow_conn(
        "harness_conn", host=emulator.url, password="secret-0123456789", login=None, data_pool_id=POOL
    )
    conn = Connection.get(conn_id)
    assert (conn.conn_type, conn.host, conn.password, conn.login) == (
        "celonis",
        emulator.url,
        "secret-0123456789",
        None,
    )
    assert conn.extra_dejson == {"data_pool_id": POOL}


def test_make_dag_takes_tasks_or_an_operator_not_both(make_dag: Callable[..., Any]) -> None:
    with pytest.raises(TypeError, match="not both"):
        make_dag(tasks=lambda: None, source="x.csv")


def test_free_port_is_outside_the_range_outgoing_connections_take() -> None:
    """A port an outgoing connection may take would race the server it is meant for (CI: EADDRINUSE)."""
    import socket

    from tests.local_servers import free_port, outside_span

    span = outside_span()
    if span is None:
        pytest.skip("this machine's ephemeral port range leaves no span outside it")
    ports = [free_port() for _ in range(50)]
    assert len(set(ports)) == 50  # never the same port twice in one process
    assert all(span[0] <= port < span[1] for port in ports)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", ports[0]))  # free when handed out
