"""STRING lengths measured from the data: characters as Celonis counts them, whatever the byte lengths."""

from __future__ import annotations

import pyarrow as pa

from airflow_provider_celonis.datapath.schema import plan_schema


def test_the_longest_value_in_characters_across_batches() -> None:
    plan = plan_schema(pa.schema([("s", pa.string()), ("t", pa.string())]))
    batches = [
        {"s": ["é" * 10, None], "t": [None, None]},  # 10 characters in 20 bytes
        {"s": ["a" * 15, "b"], "t": ["", None]},  # more bytes and more characters
        {"s": ["é" * 12, "ab"], "t": [None, ""]},  # more bytes (24) but fewer characters
        {"s": ["€" * 16, None], "t": ["x" * 3, None]},  # 16 characters in 48 bytes
        {"s": ["abc", None], "t": ["yz", None]},  # nothing longer: never scanned
    ]
    for columns in batches:
        plan.observe(pa.RecordBatch.from_pydict(columns, schema=plan.target))
    lengths = {c["columnName"]: c["fieldLength"] for c in plan.table_schema()}
    assert plan.lengths == {"s": 16, "t": 3}
    assert lengths == {"s": 16, "t": 3}
