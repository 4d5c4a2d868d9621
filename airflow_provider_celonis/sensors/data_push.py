"""``DataPushJobSensor``: waits for a data push job submitted elsewhere (another task, another system)."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    conf,
)

from airflow_provider_celonis.hooks.celonis import TERMINAL_STATUSES, CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisJobFailedError
from airflow_provider_celonis.hooks.status_log import StatusLog
from airflow_provider_celonis.sensors.base import CelonisSensor
from airflow_provider_celonis.triggers.data_push import DataPushJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class DataPushJobSensor(CelonisSensor):
    """Succeeds when the job is DONE; fails (without retrying) on ERROR or CANCELED, quoting the job's logs.

    Works in poke and reschedule modes, or deferred to the triggerer with ``deferrable=True``. The sensor
    does not own the job: when its ``timeout`` passes it fails with ``AirflowSensorTimeout`` (skipped
    with ``soft_fail``) and leaves the job alone, in every mode.

    :param job_id: the data push job (templated), e.g. ``"{{ ti.xcom_pull('push')['job_id'] }}"``.
    :param data_pool_id: its data pool (templated); defaults to the connection's ``data_pool_id``.
    :param celonis_conn_id: the ``celonis`` connection.
    :param deferrable: wait in the triggerer (default ``[operators] default_deferrable``).
    """

    template_fields: Sequence[str] = ("job_id", "data_pool_id")
    ui_color = "#1e3a8a"
    ui_fgcolor = "#ffffff"

    def __init__(
        self,
        *,
        job_id: str,
        data_pool_id: str | None = None,
        celonis_conn_id: str = CelonisHook.default_conn_name,
        deferrable: bool = conf.getboolean("operators", "default_deferrable", fallback=False),
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.data_pool_id = data_pool_id
        self.celonis_conn_id = celonis_conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> CelonisHook:
        return CelonisHook(self.celonis_conn_id)

    @cached_property
    def _status_log(self) -> StatusLog:
        return StatusLog(self.log, self.job_id)

    def poke(self, context: Context) -> bool:  # noqa: ARG002 - Airflow's signature
        job = self.hook.get_job(self.job_id, self.data_pool_id)
        status = job.get("status")
        self._status_log.seen(status)
        if status == "DONE":
            return True
        if status in TERMINAL_STATUSES:
            raise AirflowFailException(
                str(CelonisJobFailedError(self.job_id, str(status), job.get("logs") or []))
            )
        return False

    def trigger(self, **kwargs: Any) -> DataPushJobTrigger:
        pool = self.hook.resolve_pool(self.data_pool_id)
        return DataPushJobTrigger(
            job_id=self.job_id, data_pool_id=pool, celonis_conn_id=self.celonis_conn_id, **kwargs
        )

    def succeeded(self, event: dict[str, Any]) -> None:
        self.log.info("Celonis job %s is DONE", event.get("job_id"))

    def failed(self, event: dict[str, Any]) -> str:
        if event.get("job_status"):
            job_id, status, logs = str(event["job_id"]), str(event["job_status"]), event.get("logs") or []
            return str(CelonisJobFailedError(job_id, status, logs))
        return f"Waiting for Celonis job {event.get('job_id')} failed: {event.get('message')}"
