"""A 20,000-row CSV with unicode, quotes, embedded newlines, 300-character strings and 20 % empty
fields lands value for value, NULLs included, through both file types (issue 12, "done when")."""

from __future__ import annotations

import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_celonis.operators.data_push import DataPushOperator
from tests.datatypes.cases import _csv_field
from tests.helpers import EmulatorClient, task_states

ROWS = 20_000
TEXTS = ['say "hi", {i}', "Ünïcödé 日本 😀 {i}", "line one\nline two {i}", "crlf\r\ninside {i}", "plain {i}"]


def rows() -> list[dict[str, Any]]:
    rnd = random.Random(12)

    def maybe(value: Any) -> Any:
        return None if rnd.random() < 0.2 else value

    out = []
    for i in range(ROWS):
        text = maybe(rnd.choice(TEXTS).format(i=i))
        if text is not None and rnd.random() < 0.05:
            text = ""  # a quoted "" is an empty string, not NULL
        long = "".join(rnd.choice('abcdéü日😀 ,"') for _ in range(299)) + "Z"
        out.append(
            {
                "id": i,
                "text": text,
                "long": maybe(long),
                "amount": maybe(rnd.randint(-(10**12), 10**12)),
                "price": maybe(round(rnd.uniform(-1000, 1000), 2)),
            }
        )
    return out


@pytest.mark.usefixtures("celonis_conn")
def test_twenty_thousand_rows_land_value_for_value_through_both_file_types(
    make_dag: Callable[..., Any], landed: EmulatorClient, tmp_path: Path
) -> None:
    expected = rows()
    assert 0.15 < sum(r["amount"] is None for r in expected) / ROWS < 0.25
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as f:
        f.write(",".join(expected[0]) + "\n")
        for row in expected:
            f.write(",".join(_csv_field(v) for v in row.values()) + "\n")

    def tasks() -> None:
        DataPushOperator(task_id="parquet", source=str(path), target_table="big_parquet", poll_interval=0.2)
        DataPushOperator(
            task_id="csv",
            source=str(path),
            target_table="big_csv",
            file_type="CSV",
            fallback_varchar_length=300,
            poll_interval=0.2,
        )

    run = make_dag(tasks=tasks).test()
    assert task_states(run) == {"parquet": "success", "csv": "success"}
    for table in ("big_parquet", "big_csv"):
        got = sorted(landed.rows(table), key=lambda r: r["id"])
        assert len(got) == ROWS, table
        mismatches = [(e, g) for e, g in zip(expected, got, strict=True) if e != g]
        assert not mismatches, f"{table}: {len(mismatches)} rows differ, first {mismatches[0]}"
