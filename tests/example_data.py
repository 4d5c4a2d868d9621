"""What the example DAGs land, as both their ``dag.test()`` tests and the end-to-end tests check it."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[1] / "example_dags"

#: ``customer_revenue`` as example_celonis_pipeline's data job builds it from orders.csv and customers.csv
#: (CANCELLED orders left out), sorted by customer.
CUSTOMER_REVENUE: list[dict[str, Any]] = [
    {"customer": "ACME, Inc.", "country": "US", "segment": "Enterprise", "orders": 28, "revenue": 75235.15},
    {"customer": "Müller GmbH", "country": "DE", "segment": "Mid-market", "orders": 28, "revenue": 62469.0},
    {"customer": "Nordic Oy", "country": "FI", "segment": "Mid-market", "orders": 25, "revenue": 68498.5},
    {
        "customer": "Société Générale",
        "country": "FR",
        "segment": "Enterprise",
        "orders": 23,
        "revenue": 57362.06,
    },
    {
        "customer": 'Zoë\'s "Café"',
        "country": "BE",
        "segment": "Small business",
        "orders": 26,
        "revenue": 69868.94,
    },
    {"customer": "東京商事", "country": "JP", "segment": "Enterprise", "orders": 26, "revenue": 60795.88},
]


def orders() -> list[dict[str, Any]]:
    """The rows of example_dags/data/orders.csv, as strings."""
    with (EXAMPLES / "data" / "orders.csv").open(newline="") as handle:
        return list(csv.DictReader(handle))


def customers() -> list[dict[str, Any]]:
    """The rows of example_dags/data/customers.csv, sorted by customer."""
    with (EXAMPLES / "data" / "customers.csv").open(newline="") as handle:
        return by_customer(list(csv.DictReader(handle)))


def as_csv_row(row: dict[str, Any]) -> dict[str, str]:
    """A landed orders row as orders.csv writes it."""
    created = str(row["created_at"]).replace("T", " ")[:19]
    return {
        "order_id": str(row["order_id"]),
        "customer": row["customer"],
        "amount": f"{row['amount']:g}" if isinstance(row["amount"], float) else str(row["amount"]),
        "status": row["status"],
        "created_at": created,
    }


def normalise(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Orders rows by id, amounts in one notation."""
    return sorted(
        ({**r, "amount": f"{float(r['amount']):g}"} for r in rows), key=lambda r: int(r["order_id"])
    )


def by_customer(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: str(r["customer"]))
