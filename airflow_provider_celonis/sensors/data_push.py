"""``DataPushJobSensor``: waits for a data push job submitted elsewhere (another task, another system)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.common.compat.sdk import (
    AirflowFailException,
    AirflowSensorTimeout,
    BaseSensorOperator,
    conf,
)

from airflow_provider_celonis.hooks.celonis import TERMINAL_STATUSES, CelonisHook
from airflow_provider_celonis.hooks.errors import CelonisJobFailedError
from airflow_provider_celonis.hooks.status_log import StatusLog
from airflow_provider_celonis.triggers.data_push import DEFER_MARGIN, DataPushJobTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context


class DataPushJobSensor(BaseSensorOperator):
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

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        pool = self.hook.resolve_pool(self.data_pool_id)
        self.defer(
            trigger=DataPushJobTrigger(
                job_id=self.job_id,
                data_pool_id=pool,
                celonis_conn_id=self.celonis_conn_id,
                poll_interval=self.poke_interval,
                end_time=time.time() + self.timeout,
                cancel_on_kill=False,
                cancel_at_deadline=False,
            ),
            method_name="execute_complete",
            # The trigger's own deadline fires first and says what happened; this is only a backstop.
            timeout=timedelta(seconds=self.timeout + DEFER_MARGIN),
        )

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:  # noqa: ARG002 - Airflow's signature
        if event.get("status") == "success":
            self.log.info("Celonis job %s is DONE", event.get("job_id"))
            return
        if event.get("status") == "timeout":
            # Raised here, soft_fail turns it into a skip (BaseSensorOperator.resume_execution).
            raise AirflowSensorTimeout(f"Sensor timed out waiting for Celonis: {event.get('message')}")
        if event.get("job_status"):
            raise AirflowFailException(
                str(
                    CelonisJobFailedError(
                        str(event["job_id"]), str(event["job_status"]), event.get("logs") or []
                    )
                )
            )
        raise AirflowFailException(
            f"Waiting for Celonis job {event.get('job_id')} failed: {event.get('message')}"
        )
