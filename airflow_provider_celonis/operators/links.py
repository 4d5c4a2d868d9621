"""Extra links to the Celonis UI: the data push job's pool, the data job, the data model.

Each task publishes what the link needs (team URL, pool, id) as an XCom when it starts its run; the link
reads it back, so the button works while the task is still deferred.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from airflow.providers.common.compat.sdk import BaseOperator, BaseOperatorLink, XCom

if TYPE_CHECKING:
    from airflow.sdk.types import TaskInstanceKey

XCOM_RUN_KEY = "celonis_run"


def quiet_xcom(ti_key: TaskInstanceKey, key: str) -> Any:
    """An XCom that may well be missing: its absence is normal here, not an error worth a log line."""
    client_log = logging.getLogger("airflow.sdk.api.client")
    level = client_log.level
    client_log.setLevel(logging.CRITICAL)
    try:
        return XCom.get_value(ti_key=ti_key, key=key)
    except Exception:  # noqa: BLE001 - no stored value, whatever the reason, means no link
        return None
    finally:
        client_log.setLevel(level)


def data_job_url(team_url: str, pool: str, job_id: str) -> str:
    """The data job in Celonis' Data Integration UI (the address Celonis' docs give for a job's ids)."""
    return f"{team_url}/integration/ui/pools/{quote(pool)}/data-configuration/data-jobs?jobId={quote(job_id)}"


def data_model_url(team_url: str, pool: str, model_id: str) -> str:
    """The data model in the Data Integration UI (our assumption of its address; see docs/celonis-contract.md)."""
    return f"{team_url}/integration/ui/pools/{quote(pool)}/data-configuration/process-data-models/{quote(model_id)}"


class _RunLink(BaseOperatorLink):
    """A link built from the ``celonis_run`` XCom the task published."""

    def url(self, run: dict[str, Any]) -> str:
        raise NotImplementedError

    def get_link(self, operator: BaseOperator, *, ti_key: TaskInstanceKey) -> str:
        run = getattr(operator, "_published", None) or quiet_xcom(ti_key, XCOM_RUN_KEY)
        return self.url(run) if run else ""


class CelonisDataJobLink(_RunLink):
    name = "Celonis data job"

    def url(self, run: dict[str, Any]) -> str:
        return data_job_url(run["team_url"], run["data_pool_id"], run["id"])


class CelonisDataModelLink(_RunLink):
    name = "Celonis data model"

    def url(self, run: dict[str, Any]) -> str:
        return data_model_url(run["team_url"], run["data_pool_id"], run["id"])
